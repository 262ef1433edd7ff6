//! The PII evaluation: a labelled set made from sentence templates and fake identities (the
//! ones `presidio-evaluator` ships, fetched by `scripts/fetch-eval-data`), scored per entity
//! (precision, recall, F2), and the scanner's time on prompts of a given size.
//!
//! Values the scanner should find are generated with their real structure (cards that pass
//! Luhn in the usual groupings, IBANs of several countries with their check digits, issued
//! SSN ranges, the identities' phone numbers and e-mail addresses, IPv4 and IPv6, birth dates
//! in three spellings); the rest of each template (names, companies, addresses, ages, years,
//! zip codes, URLs) is filled from the identities too and stands as the negatives a pattern
//! must not take for personal data.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::scan::Scanner;

pub mod injection;
pub mod secrets;

/// One fake person.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    given: String,
    surname: String,
    email: String,
    phone: String,
    country_code: String,
    birthday: String,
    street: String,
    city: String,
    zip: String,
    country: String,
    company: String,
    occupation: String,
    domain: String,
}

/// A sentence and where its labelled values are.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The text.
    pub text: String,
    /// Entity, start and end of each labelled value.
    pub truth: Vec<(Arc<str>, usize, usize)>,
}

/// Splits CSV text into records (RFC 4180: quoted fields may hold commas and quotes).
fn csv_records(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let (mut record, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => record.push(std::mem::take(&mut field)),
            ('\n', false) => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            ('\r', false) => {}
            (c, _) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

/// The identities of `FakeNameGenerator.com_3000.csv`.
pub fn identities(csv: &str) -> Vec<Identity> {
    let records = csv_records(csv.trim_start_matches('\u{feff}'));
    let Some((header, rows)) = records.split_first() else {
        return Vec::new();
    };
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == name)
    };
    let get = |row: &[String], index: Option<usize>| {
        index.and_then(|i| row.get(i)).cloned().unwrap_or_default()
    };
    let columns = [
        "GivenName",
        "Surname",
        "EmailAddress",
        "TelephoneNumber",
        "TelephoneCountryCode",
        "Birthday",
        "StreetAddress",
        "City",
        "ZipCode",
        "CountryFull",
        "Company",
        "Occupation",
        "Domain",
    ]
    .map(column);
    rows.iter()
        .filter(|row| row.len() == header.len())
        .map(|row| Identity {
            given: get(row, columns[0]),
            surname: get(row, columns[1]),
            email: get(row, columns[2]),
            phone: get(row, columns[3]),
            country_code: get(row, columns[4]),
            birthday: get(row, columns[5]),
            street: get(row, columns[6]),
            city: get(row, columns[7]),
            zip: get(row, columns[8]),
            country: get(row, columns[9]),
            company: get(row, columns[10]),
            occupation: get(row, columns[11]),
            domain: get(row, columns[12]),
        })
        .collect()
}

fn luhn_complete(mut digits: Vec<u8>) -> Vec<u8> {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    digits.push(((10 - sum % 10) % 10) as u8);
    digits
}

fn card(rng: &mut fastrand::Rng) -> String {
    let (prefix, length): (&[u8], usize) = match rng.u8(0..4) {
        0 => (&[4], 16),
        1 => (&[5, rng.u8(1..6)], 16),
        2 => (&[3, if rng.bool() { 4 } else { 7 }], 15),
        _ => (&[6, 0, 1, 1], 16),
    };
    let mut digits = prefix.to_vec();
    while digits.len() < length - 1 {
        digits.push(rng.u8(0..10));
    }
    let digits: String = luhn_complete(digits)
        .iter()
        .map(|d| char::from(b'0' + d))
        .collect();
    let separator = match rng.u8(0..3) {
        0 => "",
        1 => " ",
        _ => "-",
    };
    if separator.is_empty() {
        return digits;
    }
    let groups: Vec<&str> = if length == 15 {
        vec![&digits[..4], &digits[4..10], &digits[10..]]
    } else {
        (0..4).map(|i| &digits[i * 4..i * 4 + 4]).collect()
    };
    groups.join(separator)
}

fn iban(rng: &mut fastrand::Rng) -> String {
    let (country, length) = [
        ("DE", 22),
        ("GB", 22),
        ("FR", 27),
        ("NL", 18),
        ("ES", 24),
        ("IT", 27),
    ][rng.usize(0..6)];
    let bban: String = (0..length - 4)
        .map(|i| {
            if matches!(country, "GB" | "NL") && i < 4 {
                char::from(b'A' + rng.u8(0..26))
            } else {
                char::from(b'0' + rng.u8(0..10))
            }
        })
        .collect();
    let rearranged = format!("{bban}{country}00");
    let remainder = crate::validate::mod97(rearranged.bytes());
    let compact = format!("{country}{:02}{bban}", 98 - remainder);
    if rng.bool() {
        compact
    } else {
        compact
            .as_bytes()
            .chunks(4)
            .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn ssn(rng: &mut fastrand::Rng) -> String {
    let area = loop {
        let area = rng.u16(1..900);
        if area != 666 {
            break area;
        }
    };
    let separator = if rng.u8(0..4) == 0 { " " } else { "-" };
    format!(
        "{area:03}{separator}{:02}{separator}{:04}",
        rng.u8(1..100),
        rng.u16(1..10000)
    )
}

fn ip(rng: &mut fastrand::Rng) -> String {
    if rng.u8(0..4) == 0 {
        format!(
            "2001:db8:{:x}:{:x}::{:x}",
            rng.u16(..),
            rng.u16(..),
            rng.u16(1..)
        )
    } else {
        format!(
            "{}.{}.{}.{}",
            rng.u8(1..224),
            rng.u8(..),
            rng.u8(..),
            rng.u8(1..255)
        )
    }
}

fn phone(rng: &mut fastrand::Rng, person: &Identity) -> String {
    let digits: String = person.phone.chars().filter(char::is_ascii_digit).collect();
    match rng.u8(0..3) {
        0 if !person.country_code.is_empty() && digits.len() >= 7 => {
            format!("+{} {}", person.country_code, person.phone.trim())
        }
        1 => format!(
            "({}) {}-{}",
            rng.u16(201..990),
            rng.u16(200..1000),
            rng.u16(1000..10000)
        ),
        _ => format!(
            "{}-{}-{}",
            rng.u16(201..990),
            rng.u16(200..1000),
            rng.u16(1000..10000)
        ),
    }
}

fn birth_date(rng: &mut fastrand::Rng, person: &Identity) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let (month, day, year) = (rng.usize(1..13), rng.u8(1..29), rng.u16(1940..2006));
    match rng.u8(0..3) {
        0 if !person.birthday.is_empty() => person.birthday.clone(),
        1 => format!("{} {day}, {year}", MONTHS[month - 1]),
        _ => format!("{year}-{month:02}-{day:02}"),
    }
}

/// The value for `placeholder` and the entity it is labelled as (`None`: a negative).
fn fill(
    placeholder: &str,
    person: &Identity,
    rng: &mut fastrand::Rng,
) -> (String, Option<&'static str>) {
    match placeholder {
        "email" => (person.email.clone(), Some("EMAIL")),
        "credit_card_number" => (card(rng), Some("CREDIT_CARD")),
        "iban" => (iban(rng), Some("IBAN")),
        "ssn" => (ssn(rng), Some("US_SSN")),
        "phone_number" => (phone(rng, person), Some("PHONE")),
        "ip_address" => (ip(rng), Some("IP_ADDRESS")),
        "date_of_birth" => (birth_date(rng, person), Some("DATE_OF_BIRTH")),
        name if name.contains("last_name") => (person.surname.clone(), None),
        name if name.contains("first_name") || name.starts_with("name") => {
            (person.given.clone(), None)
        }
        "person" => (format!("{} {}", person.given, person.surname), None),
        "organization" => (person.company.clone(), None),
        "address" => (
            format!("{}, {} {}", person.street, person.city, person.zip),
            None,
        ),
        "street_name" | "secondary_address" => (person.street.clone(), None),
        "city" => (person.city.clone(), None),
        "country" | "nationality" | "nation_woman" | "nation_plural" => {
            (person.country.clone(), None)
        }
        "building_number" => (rng.u16(1..2000).to_string(), None),
        "age" => (rng.u8(18..95).to_string(), None),
        "year" => (rng.u16(1950..2025).to_string(), None),
        "postcode" | "zipcode" => (person.zip.clone(), None),
        "url" => (format!("https://www.{}/about", person.domain), None),
        "job" => (person.occupation.clone(), None),
        name if name.starts_with("prefix") => {
            ((if rng.bool() { "Mr." } else { "Ms." }).to_owned(), None)
        }
        "date_time" => (
            format!(
                "{}-{:02}-{:02} {:02}:{:02}",
                rng.u16(2015..2025),
                rng.u8(1..13),
                rng.u8(1..29),
                rng.u8(0..24),
                rng.u8(0..60)
            ),
            None,
        ),
        "day_of_week" => ("Tuesday".to_owned(), None),
        "state_abbr" => ("CA".to_owned(), None),
        "us_driver_license" => (format!("D{}", rng.u32(1_000_000..9_999_999)), None),
        _ => ("something".to_owned(), None),
    }
}

/// `per_template` samples of each template, filled from `identities` (seeded: the same set
/// every run).
pub fn generate(
    templates: &str,
    identities: &[Identity],
    per_template: usize,
    seed: u64,
) -> Vec<Sample> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let fallback = [Identity::default()];
    let people = if identities.is_empty() {
        &fallback[..]
    } else {
        identities
    };
    let mut samples = Vec::new();
    for template in templates
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
    {
        // The templates write line breaks as `\n`.
        let template = template.replace("\\n", "\n");
        let template = template.as_str();
        for _ in 0..per_template {
            let person = &people[rng.usize(0..people.len())];
            let (mut text, mut truth) = (String::new(), Vec::new());
            let mut rest = template;
            while let Some(open) = rest.find("{{") {
                let Some(close) = rest[open..].find("}}").map(|close| open + close) else {
                    break;
                };
                text.push_str(&rest[..open]);
                let (value, entity) = fill(rest[open + 2..close].trim(), person, &mut rng);
                let start = text.len();
                text.push_str(&value);
                if let Some(entity) = entity {
                    truth.push((Arc::from(entity), start, text.len()));
                }
                rest = &rest[close + 2..];
            }
            text.push_str(rest);
            samples.push(Sample { text, truth });
        }
    }
    samples
}

/// Counts for one entity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Labelled values.
    pub truth: u32,
    /// Findings that match a labelled value of their entity.
    pub true_positives: u32,
    /// Findings that match none.
    pub false_positives: u32,
    /// Labelled values no finding matched.
    pub false_negatives: u32,
}

impl Counts {
    /// TP / (TP + FP).
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// TP / (TP + FN).
    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    /// F-beta with beta 2 (recall weighs four times precision).
    pub fn f2(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            5.0 * p * r / (4.0 * p + r)
        }
    }
}

fn ratio(a: u32, b: u32) -> f64 {
    if b == 0 {
        1.0
    } else {
        f64::from(a) / f64::from(b)
    }
}

/// Scores `scanner` on `samples`: a finding matches a labelled value of the same entity that
/// it overlaps.
pub fn evaluate(scanner: &Scanner, samples: &[Sample]) -> BTreeMap<Arc<str>, Counts> {
    let mut counts: BTreeMap<Arc<str>, Counts> = BTreeMap::new();
    for sample in samples {
        let found = scanner.scan(&sample.text);
        let overlaps = |a: (usize, usize), b: (usize, usize)| a.0 < b.1 && b.0 < a.1;
        for (entity, start, end) in &sample.truth {
            let entry = counts.entry(Arc::clone(entity)).or_default();
            entry.truth += 1;
            if !found
                .iter()
                .any(|f| f.entity == *entity && overlaps((f.start, f.end), (*start, *end)))
            {
                entry.false_negatives += 1;
            }
        }
        for finding in &found {
            let entry = counts.entry(Arc::clone(&finding.entity)).or_default();
            if sample.truth.iter().any(|(entity, start, end)| {
                *entity == finding.entity && overlaps((finding.start, finding.end), (*start, *end))
            }) {
                entry.true_positives += 1;
            } else {
                entry.false_positives += 1;
            }
        }
    }
    counts
}

/// Up to `limit` missed values and false findings per entity, as `(entity, what)` lines.
pub fn mistakes(scanner: &Scanner, samples: &[Sample], limit: usize) -> Vec<(String, String)> {
    let mut shown: BTreeMap<String, usize> = BTreeMap::new();
    let mut lines = Vec::new();
    for sample in samples {
        let found = scanner.scan(&sample.text);
        let overlaps = |a: (usize, usize), b: (usize, usize)| a.0 < b.1 && b.0 < a.1;
        for (entity, start, end) in &sample.truth {
            if !found
                .iter()
                .any(|f| f.entity == *entity && overlaps((f.start, f.end), (*start, *end)))
            {
                let count = shown.entry(format!("{entity} missed")).or_default();
                if *count < limit {
                    *count += 1;
                    lines.push((
                        format!("{entity} missed"),
                        format!("{:?} in {:?}", &sample.text[*start..*end], sample.text),
                    ));
                }
            }
        }
        for f in &found {
            if !sample.truth.iter().any(|(entity, start, end)| {
                *entity == f.entity && overlaps((f.start, f.end), (*start, *end))
            }) {
                let count = shown.entry(format!("{} false", f.entity)).or_default();
                if *count < limit {
                    *count += 1;
                    lines.push((
                        format!("{} false", f.entity),
                        format!("{:?} in {:?}", &sample.text[f.start..f.end], sample.text),
                    ));
                }
            }
        }
    }
    lines
}

/// The scanner's time on prompts of about `size` bytes made from `samples`: p50 and p99 over
/// `runs` scans.
pub fn latency(
    guard: impl Fn(&str),
    samples: &[Sample],
    size: usize,
    runs: usize,
) -> (Duration, Duration) {
    let mut prompts = Vec::new();
    let mut current = String::new();
    for sample in samples {
        current.push_str(&sample.text);
        current.push(' ');
        if current.len() >= size {
            prompts.push(std::mem::take(&mut current));
        }
    }
    if prompts.is_empty() {
        prompts.push(current);
    }
    let mut times: Vec<Duration> = (0..runs.max(1))
        .map(|run| {
            let prompt = &prompts[run % prompts.len()];
            let started = Instant::now();
            guard(std::hint::black_box(prompt));
            started.elapsed()
        })
        .collect();
    times.sort_unstable();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    (at(0.5), at(0.99))
}

/// A held-out set for the PII scanner from other text than the templates: each of `turns`
/// (people's chat turns) with one value of a pattern entity put after its first sentence or
/// line, in a short phrase that names it ("my card is …"), labelled; the turn's own text is
/// unlabelled, so what the scanner finds there is counted as a false finding even when it is
/// real personal data (a lower bound on precision).
pub fn in_turns(turns: &[&str], identities: &[Identity], seed: u64) -> Vec<Sample> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let phrases: [(&str, &str); 6] = [
        ("email", "You can reach me at {} if needed."),
        ("credit_card_number", "Charge it to my card {} please."),
        ("iban", "Transfer the refund to IBAN {} by Friday."),
        ("ssn", "My SSN is {} for the form."),
        ("phone_number", "Call me on {} after five."),
        (
            "ip_address",
            "The server's address is {} in case it matters.",
        ),
    ];
    let mut samples = Vec::new();
    for (n, turn) in turns.iter().enumerate() {
        let person = &identities[rng.usize(..identities.len().max(1))];
        let (placeholder, phrase) = phrases[n % phrases.len()];
        let (value, entity) = fill(placeholder, person, &mut rng);
        let Some(entity) = entity else {
            continue;
        };
        let at = turn
            .find(['\n', '?', '!'])
            .or_else(|| turn.find(". "))
            .map_or(turn.len(), |i| i + 1);
        let (before, rest) = phrase.split_once("{}").unwrap_or((phrase, ""));
        let head = format!("{} {before}", &turn[..at]);
        let text = format!("{head}{value}{rest} {}", &turn[at..]);
        samples.push(Sample {
            truth: vec![(Arc::from(entity), head.len(), head.len() + value.len())],
            text,
        });
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_put_into_turns_are_labelled_where_they_are() {
        let people = identities(
            "GivenName,Surname,EmailAddress,TelephoneNumber,TelephoneCountryCode,Birthday\n\
             Ada,Lovelace,ada@example.com,020 7946 0018,44,12/10/1815\n",
        );
        let turns = [
            "How do I sort a list? Thanks.",
            "no sentence end here",
            "line one\nline two",
        ];
        let samples = in_turns(&turns, &people, 1);
        assert_eq!(samples.len(), 3);
        let (entity, start, end) = &samples[0].truth[0];
        assert_eq!(
            (&**entity, &samples[0].text[*start..*end]),
            ("EMAIL", "ada@example.com")
        );
        assert!(
            samples[0]
                .text
                .starts_with("How do I sort a list? You can reach me at ada@example.com"),
            "{}",
            samples[0].text
        );
        for sample in &samples {
            let (_, start, end) = &sample.truth[0];
            assert!(end > start && sample.text.is_char_boundary(*start));
        }
    }

    #[test]
    fn generated_values_carry_their_checks_and_labels() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..200 {
            assert!(crate::validate::luhn(&card(&mut rng)));
            assert!(crate::validate::iban(&iban(&mut rng)), "iban");
            assert!(crate::validate::us_ssn(&ssn(&mut rng)));
        }
        let templates =
            "My card {{credit_card_number}} is lost, call {{ phone_number }}.\nHi {{first_name}}";
        let samples = generate(templates, &[], 3, 1);
        assert_eq!(samples.len(), 6);
        let sample = &samples[0];
        assert_eq!(sample.truth.len(), 2);
        let (entity, start, end) = &sample.truth[0];
        assert_eq!(&**entity, "CREDIT_CARD");
        assert!(crate::validate::luhn(&sample.text[*start..*end]));
        assert!(samples[5].truth.is_empty());
    }

    #[test]
    fn csv_fields_may_be_quoted() {
        let records = csv_records("a,\"b, c\",\"d \"\"e\"\"\"\n1,2,3\n");
        assert_eq!(
            records,
            vec![vec!["a", "b, c", "d \"e\""], vec!["1", "2", "3"]]
        );
    }
}
