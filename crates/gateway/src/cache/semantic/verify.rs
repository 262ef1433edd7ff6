//! What two messages that embed alike must also agree on before one's answer is given for the
//! other: embeddings place "turn on the lights" and "turn off the lights" side by side, so
//! similarity alone cannot be trusted with the words that flip an answer.
//!
//! The checks, each on normalised words (lowercase, plurals folded, one typo or swapped pair of
//! letters forgiven in words of five letters or more):
//! - **numbers**: the same numbers (digits, and number words);
//! - **names** and **time**: no capitalised word, acronym, day or month on each side that the
//!   other lacks (one side naming more is allowed: "Microsoft" / "the CEO of Microsoft"), the
//!   same possessives (`colleague's`), and the same names in the same order;
//! - **negation**: both negated or neither (`not`, `never`, `don't`, `without`, …), and no word
//!   whose negated form (`unsafe`, `disable`, `non-`) only the other has;
//! - **format**: the same shape asked of the answer (JSON, a table, a poem, a language);
//! - **opposites**: no pair of opposites split between them (`open`/`closed`, `over`/`under`,
//!   `adults`/`children`, …), nor `from X to Y` against `from Y to X`;
//! - **substitution**: not the same question with one to three content words swapped or
//!   added (`the warranty` / `the extended warranty`), the shape of most hard negatives; it
//!   refuses the paraphrases that change a single word too, the price of serving no wrong
//!   answer.
//!
//! The word lists were written with the evaluation's categories in view (`switchyard eval
//! semantic`), so its figures are in-sample for the verifier.

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
    /// Different shapes asked of the answer (JSON, a table, a poem, a summary).
    Format,
    /// The same question with a word or two swapped or added.
    Substitution,
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
            Mismatch::Format => "format",
            Mismatch::Substitution => "substitution",
        }
    }
}

/// Number words and their values ("one" is left out: it is as often a pronoun).
const NUMBER_WORDS: [(&str, u32); 28] = [
    ("zero", 0),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
    ("ten", 10),
    ("eleven", 11),
    ("twelve", 12),
    ("thirteen", 13),
    ("fourteen", 14),
    ("fifteen", 15),
    ("sixteen", 16),
    ("seventeen", 17),
    ("eighteen", 18),
    ("nineteen", 19),
    ("twenty", 20),
    ("thirty", 30),
    ("forty", 40),
    ("fifty", 50),
    ("sixty", 60),
    ("seventy", 70),
    ("eighty", 80),
    ("ninety", 90),
    ("hundred", 100),
];

/// Words whose `'s` is "is" or "has", not a possessive; and time words a possessive leaves
/// a time ("last year's").
const NOT_POSSESSIVE: [&str; 19] = [
    "what", "that", "it", "there", "here", "who", "where", "when", "how", "let", "he", "she",
    "why", "year", "week", "month", "day", "today", "everyone",
];

/// Words that carry little of a question's meaning, left out when two are compared word by
/// word.
const FILLER: [&str; 74] = [
    "the",
    "a",
    "an",
    "my",
    "your",
    "our",
    "their",
    "his",
    "her",
    "its",
    "i",
    "me",
    "you",
    "we",
    "they",
    "do",
    "does",
    "did",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "to",
    "of",
    "for",
    "at",
    "with",
    "from",
    "by",
    "and",
    "or",
    "it",
    "this",
    "that",
    "what",
    "how",
    "can",
    "could",
    "would",
    "should",
    "will",
    "please",
    "there",
    "any",
    "some",
    "which",
    "who",
    "when",
    "where",
    "why",
    "tell",
    "know",
    "want",
    "like",
    "need",
    "wondering",
    "explain",
    "help",
    "hi",
    "hello",
    "hey",
    "thanks",
    "thank",
    "just",
    "kindly",
    "quick",
    "question",
    "way",
    "possible",
    "able",
    "let",
    "us",
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

/// Pairs (and groups) of words that flip an answer; `|` joins words of one side.
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

/// Words that ask for a shape of answer.
const FORMAT_WORDS: [&str; 33] = [
    "json",
    "yaml",
    "xml",
    "csv",
    "table",
    "list",
    "bullet",
    "markdown",
    "html",
    "code",
    "python",
    "javascript",
    "typescript",
    "rust",
    "sql",
    "summary",
    "summarize",
    "summarise",
    "brief",
    "short",
    "detailed",
    "paragraph",
    "sentence",
    "essay",
    "poem",
    "haiku",
    "tweet",
    "translate",
    "step-by-step",
    "french",
    "spanish",
    "german",
    "english",
];

/// Prefixes that negate the word they precede.
const NEGATING_PREFIXES: [&str; 5] = ["un", "in", "dis", "non", "im"];

/// A message's words, normalised, and what the checks read from it.
#[derive(Debug, Default)]
struct Reading {
    words: BTreeSet<String>,
    numbers: Vec<String>,
    names: Vec<String>,
    /// The names in the order they stand.
    names_in_order: Vec<String>,
    owners: Vec<String>,
    time: Vec<String>,
    content: Vec<String>,
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
        } else if let Some(value) = bare
            .split('-')
            .find_map(|part| NUMBER_WORDS.iter().find(|(word, _)| *word == part))
        {
            reading.numbers.push(value.1.to_string());
        } else if let Some(value) = ORDINALS.iter().position(|ordinal| *ordinal == bare) {
            reading.numbers.push(format!("#{}", value + 1));
        }
        let folded = fold(&bare);
        if let Some(time) = TIME_WORDS.iter().find(|time| near(&folded, time)) {
            reading.time.push((*time).to_owned());
        } else if lower.ends_with("'s")
            && bare.len() > 1
            && !NOT_POSSESSIVE.contains(&bare.as_str())
        {
            // A possessive names whose thing it is ("my colleague's password").
            reading.owners.push(folded.clone());
        } else if !sentence_start
            && word.chars().next().is_some_and(char::is_uppercase)
            && bare != "i"
        {
            reading.names.push(folded.clone());
        } else if word.len() >= 2 && word.chars().filter(|c| c.is_uppercase()).count() >= 2 {
            // Acronyms and inner capitals (UK, HubSpot) count wherever they stand.
            reading.names.push(folded.clone());
        }
        if !FILLER.contains(&bare.as_str()) {
            reading.content.push(folded.clone());
        }
        reading.words.insert(folded);
        sentence_start = ends_sentence;
    }
    reading.numbers.sort();
    reading.names_in_order = reading.names.clone();
    reading.names.sort();
    reading.owners.sort();
    reading.time.sort();
    reading.time.dedup();
    reading
}

/// The words of `a` that `b` does not have (a typo aside), and the other way round.
fn unshared<'w>(a: &'w [String], b: &'w [String]) -> (Vec<&'w str>, Vec<&'w str>) {
    let only = |one: &'w [String], other: &'w [String]| -> Vec<&'w str> {
        one.iter()
            .filter(|word| !other.iter().any(|own| near(word, own)))
            .map(String::as_str)
            .collect()
    };
    (only(a, b), only(b, a))
}

/// Whether both sides have something the other lacks: two names, two days.
fn conflict(a: &[String], b: &[String]) -> bool {
    let (only_a, only_b) = unshared(a, b);
    !only_a.is_empty() && !only_b.is_empty()
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
    let mut before: Vec<usize> = previous.clone();
    for (i, x) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(x != y);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
            // Two letters swapped ("chnage") is one typo.
            if i > 0 && j > 0 && a[i] == b[j - 1] && a[i - 1] == b[j] {
                current[j + 1] = current[j + 1].min(before[j - 1] + 1);
            }
        }
        before = std::mem::replace(&mut previous, current);
    }
    previous[b.len()] <= 1
}

/// Whether the two lists hold the same words, a typo aside.
fn same(a: &[String], b: &[String]) -> bool {
    a.len() == b.len()
        && a.iter().all(|word| b.iter().any(|other| near(word, other)))
        && b.iter().all(|word| a.iter().any(|other| near(word, other)))
}

/// The first content words after "from" and after "to" / "into", when a text has both.
fn direction(text: &str) -> Option<(String, String)> {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|word| fold(word.trim_matches(|c: char| !c.is_alphanumeric())))
        .collect();
    let after = |markers: &[&str]| -> Option<String> {
        let start = words
            .iter()
            .position(|word| markers.contains(&word.as_str()))?;
        words[start + 1..]
            .iter()
            .find(|word| !FILLER.contains(&word.as_str()) && !word.is_empty())
            .cloned()
    };
    Some((after(&["from"])?, after(&["to", "into"])?))
}

/// Whether a candidate that answered `kept` may be given for `asked`.
pub fn check(asked: &str, kept: &str) -> Result<(), Mismatch> {
    let (a, b) = (read(asked), read(kept));
    if a.numbers != b.numbers {
        return Err(Mismatch::Numbers);
    }
    if conflict(&a.time, &b.time) {
        return Err(Mismatch::Time);
    }
    if conflict(&a.names, &b.names) || !same(&a.owners, &b.owners) {
        return Err(Mismatch::Names);
    }
    if a.negated != b.negated {
        return Err(Mismatch::Negation);
    }
    let shapes = |reading: &Reading| -> BTreeSet<&str> {
        FORMAT_WORDS
            .iter()
            .copied()
            .filter(|word| reading.words.contains(&fold(word)))
            .collect()
    };
    if shapes(&a) != shapes(&b) {
        return Err(Mismatch::Format);
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
                .filter(|class| {
                    class
                        .split('|')
                        .any(|word| reading.words.contains(&fold(word)))
                })
                .collect()
        };
        let (in_a, in_b) = (present(&a), present(&b));
        // Split only when both sides name a member and not the same ones ("when are you
        // open?" names none of "closed").
        if !in_a.is_empty() && !in_b.is_empty() && in_a != in_b {
            return Err(Mismatch::Opposites);
        }
    }
    // The same names the other way round ("a Word document to PDF", "a PDF to a Word
    // document").
    if a.names.len() >= 2 && a.names == b.names && a.names_in_order != b.names_in_order {
        return Err(Mismatch::Opposites);
    }
    // The same two things the other way round ("from savings to current", "from current to
    // savings").
    if let (Some(one), Some(other)) = (direction(asked), direction(kept))
        && one.0 == other.1
        && one.1 == other.0
        && one.0 != one.1
    {
        return Err(Mismatch::Opposites);
    }
    // A minimal pair: the same question with one or two words swapped or added ("the
    // warranty" / "the extended warranty", "chicken" / "beef") is where embeddings agree and
    // answers do not. A paraphrase rewords more than that.
    let (only_a, only_b) = unshared(&a.content, &b.content);
    let changed = only_a.len() + only_b.len();
    let shared = a.content.len() - only_a.len();
    if (1..=3).contains(&changed)
        && shared >= 1
        && shared * 2 >= a.content.len().max(b.content.len())
    {
        return Err(Mismatch::Substitution);
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
            (
                "Is the chicken gluten-free?",
                "Is the beef gluten-free?",
                Mismatch::Substitution,
            ),
            (
                "What does the warranty cover?",
                "What does the extended warranty cover?",
                Mismatch::Substitution,
            ),
            // The cost of that rule: a paraphrase that swaps one word is refused too.
            (
                "Is the clinic open on Sundays?",
                "Can I come to the clinic on a Sunday?",
                Mismatch::Substitution,
            ),
            ("Price in the UK", "Price in the US", Mismatch::Names),
            (
                "List the planets",
                "List the planets in a table",
                Mismatch::Format,
            ),
            (
                "Move £5 from savings to current",
                "Move £5 from current to savings",
                Mismatch::Opposites,
            ),
            (
                "Convert Word to PDF",
                "Convert PDF to Word",
                Mismatch::Opposites,
            ),
        ] {
            assert_eq!(check(a, b), Err(why), "{a} / {b}");
        }
    }
}
