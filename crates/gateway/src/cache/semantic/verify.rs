//! What two messages that embed alike must also agree on before one's answer is given for the
//! other: embeddings place "turn on the lights" and "turn off the lights" side by side, so
//! similarity alone cannot be trusted with the words that flip an answer.
//!
//! The checks, each on normalised words (lowercase, plurals folded, one typo forgiven in words
//! of five letters or more):
//! - **numbers**: the same numbers (digits, and number words up to twenty), percentages and
//!   currency signs;
//! - **names**: the same capitalised words that do not start a sentence, acronyms, and
//!   possessives (`colleague's`);
//! - **time**: the same days, months and relative days (`tomorrow`, `weekend`);
//! - **negation**: both negated or neither (`not`, `never`, `don't`, `without`, …), and no word
//!   whose negated form (`unsafe`, `disable`, `non-`) the other has;
//! - **opposites**: no pair of opposites split between them (`open`/`closed`, `over`/`under`,
//!   `before`/`after`, `adults`/`children`, …).

use std::collections::BTreeSet;

/// Why a candidate was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// Different numbers.
    Numbers,
    /// Different names.
    Names,
    /// Different days or dates.
    Time,
    /// One is negated, the other not.
    Negation,
    /// A pair of opposites split between them.
    Opposites,
}

impl Mismatch {
    /// Its label on `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Mismatch::Numbers => "numbers",
            Mismatch::Names => "names",
            Mismatch::Time => "time",
            Mismatch::Negation => "negation",
            Mismatch::Opposites => "opposites",
        }
    }
}

const NUMBER_WORDS: [&str; 21] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];

const ORDINALS: [&str; 10] = [
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
];

const TIME_WORDS: [&str; 33] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "weekend",
    "weekday",
    "today",
    "tomorrow",
    "yesterday",
    "tonight",
    "morning",
    "afternoon",
    "evening",
    "night",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "spring",
    "summer",
    "autumn",
    "winter",
];

const NEGATIONS: [&str; 12] = [
    "not", "no", "never", "none", "nothing", "nobody", "neither", "nor", "without", "cannot",
    "cant", "nowhere",
];

/// Pairs (and groups) of words that flip an answer.
const OPPOSITES: [&[&str]; 45] = [
    &["full-time", "part-time"],
    &["open", "closed", "close"],
    &["on", "off"],
    &["before", "after"],
    &["over", "under"],
    &["above", "below"],
    &["more", "less", "fewer"],
    &["most", "least"],
    &["increase", "decrease", "reduce"],
    &["add", "remove", "delete"],
    &["buy", "sell"],
    &["import", "export"],
    &["upload", "download"],
    &["enable", "disable"],
    &["start", "stop"],
    &["begin", "end"],
    &["allow", "block", "deny", "forbid"],
    &["accept", "reject", "decline"],
    &["include", "exclude"],
    &["encrypt", "decrypt"],
    &["true", "false"],
    &["yes", "no"],
    &["first", "last"],
    &["min", "max", "minimum", "maximum"],
    &["high", "low", "higher", "lower", "highest", "lowest"],
    &["cheap", "expensive", "cheapest"],
    &["hot", "cold"],
    &["early", "late", "earliest", "latest"],
    &["input", "output"],
    &["inbound", "outbound"],
    &["incoming", "outgoing"],
    &["public", "private"],
    &["send", "receive"],
    &["win", "lose"],
    &["pass", "fail"],
    &["full", "empty"],
    &[
        "adult", "child", "children", "kid", "teen", "teenager", "baby", "infant",
    ],
    &["men", "women", "man", "woman", "male", "female"],
    &["left", "right"],
    &["north", "south", "east", "west"],
    &["up", "down"],
    &["in", "out"],
    &["join", "leave"],
    &["lock", "unlock"],
    &["online", "offline"],
];

/// Prefixes that negate the word they precede.
const NEGATING_PREFIXES: [&str; 5] = ["un", "in", "dis", "non", "im"];

/// A message's words, normalised, and what the checks read from it.
#[derive(Debug, Default)]
struct Reading {
    words: BTreeSet<String>,
    numbers: Vec<String>,
    names: Vec<String>,
    time: BTreeSet<String>,
    negated: bool,
}

/// A word folded for comparison: lowercase, a plural `s` off.
fn fold(word: &str) -> String {
    let lower = word.to_lowercase();
    match lower.strip_suffix('s') {
        Some(stem) if stem.len() >= 3 && !stem.ends_with('s') => stem.to_owned(),
        _ => lower,
    }
}

fn read(text: &str) -> Reading {
    let mut reading = Reading::default();
    let mut sentence_start = true;
    for raw in text.split(|c: char| c.is_whitespace() || c == '/') {
        let ends_sentence = raw.ends_with(['.', '?', '!', ':']);
        let word = raw.trim_matches(|c: char| !(c.is_alphanumeric() || "%£$€'-".contains(c)));
        let word = word.trim_matches(|c: char| c == '\'' || c == '-');
        if word.is_empty() {
            sentence_start |= ends_sentence;
            continue;
        }
        let lower = word.to_lowercase();
        // Contractions: "don't", "can't", "isn't".
        if lower.ends_with("n't") {
            reading.negated = true;
        }
        let bare = lower
            .trim_end_matches("'s")
            .trim_end_matches("n't")
            .replace('\'', "");
        if NEGATIONS.contains(&bare.as_str()) {
            reading.negated = true;
        }
        // Numbers: digits with what qualifies them (%, currency), and number words.
        if word.chars().any(|c| c.is_ascii_digit()) {
            let number: String = word
                .chars()
                .filter(|c| c.is_ascii_digit() || "%£$€.,".contains(*c))
                .collect();
            reading
                .numbers
                .push(number.trim_end_matches(['.', ',']).to_owned());
        } else if let Some(value) = NUMBER_WORDS.iter().position(|number| *number == bare) {
            reading.numbers.push(value.to_string());
        } else if let Some(value) = ORDINALS.iter().position(|ordinal| *ordinal == bare) {
            reading.numbers.push(format!("#{}", value + 1));
        }
        let folded = fold(&bare);
        if let Some(time) = TIME_WORDS.iter().find(|time| near(&folded, time)) {
            reading.time.insert((*time).to_owned());
        } else if lower.ends_with("'s") && bare.len() > 1 {
            // A possessive names whose thing it is ("my colleague's password").
            reading.names.push(folded.clone());
        } else if !sentence_start
            && word.chars().next().is_some_and(char::is_uppercase)
            && bare != "i"
        {
            reading.names.push(folded.clone());
        } else if word.len() >= 2 && word.chars().filter(|c| c.is_uppercase()).count() >= 2 {
            // Acronyms and inner capitals (UK, HubSpot) count wherever they stand.
            reading.names.push(folded.clone());
        }
        reading.words.insert(folded);
        sentence_start = ends_sentence;
    }
    reading.numbers.sort();
    reading.names.sort();
    reading
}

/// Whether `a` and `b` differ by at most one edit (a typo), for words of five or more letters.
fn near(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    if a.chars().count().min(b.chars().count()) < 5 {
        return false;
    }
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(x != y);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()] <= 1
}

/// Whether the two lists hold the same words, a typo aside.
fn same(a: &[String], b: &[String]) -> bool {
    a.len() == b.len()
        && a.iter().all(|word| b.iter().any(|other| near(word, other)))
        && b.iter().all(|word| a.iter().any(|other| near(word, other)))
}

/// Whether a candidate that answered `kept` may be given for `asked`.
pub fn check(asked: &str, kept: &str) -> Result<(), Mismatch> {
    let (a, b) = (read(asked), read(kept));
    if a.numbers != b.numbers {
        return Err(Mismatch::Numbers);
    }
    if a.time != b.time {
        return Err(Mismatch::Time);
    }
    if !same(&a.names, &b.names) {
        return Err(Mismatch::Names);
    }
    if a.negated != b.negated {
        return Err(Mismatch::Negation);
    }
    for (one, other) in [(&a, &b), (&b, &a)] {
        for word in &one.words {
            for prefix in NEGATING_PREFIXES {
                if other.words.contains(&format!("{prefix}{word}"))
                    && !one.words.contains(&format!("{prefix}{word}"))
                {
                    return Err(Mismatch::Negation);
                }
            }
        }
    }
    for group in OPPOSITES {
        let present = |reading: &Reading| -> BTreeSet<&str> {
            group
                .iter()
                .copied()
                .filter(|word| reading.words.contains(&fold(word)))
                .collect()
        };
        let (in_a, in_b) = (present(&a), present(&b));
        // Split only when both sides name a member and not the same ones ("when are you
        // open?" names none of "closed").
        if !in_a.is_empty() && !in_b.is_empty() && in_a != in_b {
            return Err(Mismatch::Opposites);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Mismatch, check};

    #[test]
    fn paraphrases_and_typos_pass() {
        for (a, b) in [
            (
                "How do I cancel my subscription?",
                "I'd like to end my subscription, how do I do that?",
            ),
            ("What are your opening hours?", "When are you open?"),
            (
                "Is the clinic open on Sundays?",
                "Can I come to the clinic on a Sunday?",
            ),
            (
                "What time does the gym open on Mondays?",
                "What time does the gym open on Mondys?",
            ),
            (
                "How do I change the email address on my account?",
                "How do I chnage the email adress on my acount?",
            ),
            ("Turn on the lights", "Please turn the lights on"),
        ] {
            assert_eq!(check(a, b), Ok(()), "{a} / {b}");
        }
    }

    #[test]
    fn what_flips_the_answer_is_caught() {
        for (a, b, why) in [
            (
                "Turn on the lights",
                "Turn off the lights",
                Mismatch::Opposites,
            ),
            (
                "Cancel my order",
                "Don't cancel my order",
                Mismatch::Negation,
            ),
            (
                "Is it safe to drive?",
                "Is it unsafe to drive?",
                Mismatch::Negation,
            ),
            (
                "What is 15% of 200?",
                "What is 50% of 200?",
                Mismatch::Numbers,
            ),
            (
                "Book a table for two",
                "Book a table for four",
                Mismatch::Numbers,
            ),
            ("Ship it on Saturday", "Ship it on Sunday", Mismatch::Time),
            (
                "Flights from Paris to Rome",
                "Flights from Paris to Madrid",
                Mismatch::Names,
            ),
            (
                "Reset my password",
                "Reset my manager's password",
                Mismatch::Names,
            ),
            ("Dose for adults", "Dose for children", Mismatch::Opposites),
            ("Price in the UK", "Price in the US", Mismatch::Names),
        ] {
            assert_eq!(check(a, b), Err(why), "{a} / {b}");
        }
    }
}
