//! The scanner: recognizers (a pattern, a base score, a validator, context words) run over a
//! text, their findings scored, filtered by threshold and freed of overlaps.
//!
//! Scores follow Presidio's scheme: a pattern alone gives its base score; a validator that
//! passes (a checksum, a registry) makes it certain, one that fails throws the match out; a
//! context word shortly before the match ("card", "born", "ssn") adds
//! [`CONTEXT_BOOST`]. A finding is kept at or above its entity's threshold. Where findings
//! overlap, the higher score wins, then the longer span.

use std::collections::HashMap;
use std::sync::Arc;

use regex::{Regex, RegexSet};

use crate::validate;

/// What a context word adds to a score.
pub const CONTEXT_BOOST: f32 = 0.35;

/// How far before a match context words are looked for, in bytes.
const CONTEXT_WINDOW: usize = 48;

/// Whether an entity is personal data or a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// Personal data: redacted, masked, hashed or tokenized (and restored).
    Pii,
    /// Credentials: blocked or redacted, never restored.
    Secret,
    /// Links that carry data out (markdown images in an answer).
    Link,
    /// Terms and topics an answer must not hold (the config's lists).
    Banned,
    /// The system prompt or its canary copied into an answer ([`crate::leak`]).
    Leak,
}

/// Something found in a text.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The entity (`EMAIL`, `CREDIT_CARD`, `OPENAI_KEY`, or a custom name).
    pub entity: Arc<str>,
    /// Personal data or a secret.
    pub category: Category,
    /// Where it starts, in bytes.
    pub start: usize,
    /// Where it ends, in bytes.
    pub end: usize,
    /// How sure, 0 to 1.
    pub score: f32,
}

/// How a match is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    None,
    Luhn,
    Iban,
    Ssn,
    Ipv4,
    Ipv6,
    BitcoinBase58,
    BitcoinBech32,
    Jwt,
    PhoneDigits,
    Entropy,
}

impl Check {
    /// The score after the check and the length of the value (`None`: not a finding). An
    /// IBAN is as long as its country says, so a match that ran on into the next word is cut
    /// there.
    fn apply(self, text: &str, base: f32) -> Option<(f32, usize)> {
        if self == Check::Iban {
            let length = validate::iban_length(text)?;
            let mut seen = 0;
            let end = text.char_indices().find_map(|(i, c)| {
                if c.is_ascii_alphanumeric() {
                    seen += 1;
                }
                (seen == length).then_some(i + c.len_utf8())
            })?;
            return validate::iban(&text[..end]).then_some((1.0, end));
        }
        self.score(text, base).map(|score| (score, text.len()))
    }

    fn score(self, text: &str, base: f32) -> Option<f32> {
        match self {
            Check::None => Some(base),
            Check::Luhn => validate::card(text).then_some(1.0),
            Check::Iban => None,
            Check::Ssn => validate::us_ssn(text).then_some(base),
            Check::Ipv4 => text.parse::<std::net::Ipv4Addr>().ok().map(|_| base),
            Check::Ipv6 => text.parse::<std::net::Ipv6Addr>().ok().map(|_| base),
            Check::BitcoinBase58 => validate::bitcoin_base58(text).then_some(1.0),
            Check::BitcoinBech32 => validate::bitcoin_bech32(text).then_some(1.0),
            Check::Jwt => validate::jwt(text).then_some(1.0),
            Check::PhoneDigits => validate::phone_score(text, base),
            Check::Entropy => {
                let has = |f: fn(&u8) -> bool| text.as_bytes().iter().any(f);
                let mixed = has(u8::is_ascii_digit)
                    && has(u8::is_ascii_lowercase)
                    && has(u8::is_ascii_uppercase);
                (mixed && validate::entropy(text) >= 4.3 && !validate::base64_of_prose(text))
                    .then_some(base)
            }
        }
    }
}

/// One recognizer.
#[derive(Debug, Clone)]
pub struct Recognizer {
    entity: Arc<str>,
    category: Category,
    regex: Regex,
    /// The capture group that is the value (0: the whole match).
    group: usize,
    score: f32,
    check: Check,
    context: Vec<String>,
}

impl Recognizer {
    fn new(
        entity: &str,
        category: Category,
        pattern: &str,
        score: f32,
        check: Check,
        context: &[&str],
    ) -> Result<Recognizer, regex::Error> {
        Ok(Recognizer {
            entity: Arc::from(entity),
            category,
            regex: Regex::new(pattern)?,
            group: 0,
            score,
            check,
            context: context.iter().map(|word| (*word).to_owned()).collect(),
        })
    }

    /// A recognizer from the config: `pattern` (linear-time regex syntax), its score, context
    /// words that raise it.
    pub fn custom(
        entity: &str,
        category: Category,
        pattern: &str,
        score: f32,
        context: &[String],
    ) -> Result<Recognizer, regex::Error> {
        Ok(Recognizer {
            entity: Arc::from(entity),
            category,
            regex: regex::RegexBuilder::new(pattern)
                .size_limit(1 << 20)
                .build()?,
            group: 0,
            score: score.clamp(0.0, 1.0),
            check: Check::None,
            context: context.iter().map(|word| word.to_lowercase()).collect(),
        })
    }

    /// A recognizer of exact terms (a deny list), case-insensitive, on word boundaries.
    pub fn deny_list(
        entity: &str,
        category: Category,
        terms: &[String],
    ) -> Result<Recognizer, regex::Error> {
        let alternatives: Vec<String> = terms.iter().map(|term| regex::escape(term)).collect();
        let pattern = format!(r"(?i)\b(?:{})\b", alternatives.join("|"));
        Recognizer::custom(entity, category, &pattern, 1.0, &[])
    }

    /// The entity it finds.
    pub fn entity(&self) -> &str {
        &self.entity
    }

    fn with_group(mut self, group: usize) -> Recognizer {
        self.group = group;
        self
    }
}

/// The built-in recognizers of personal data.
pub fn pii_recognizers() -> Vec<Recognizer> {
    let pii = |entity, pattern, score, check, context: &[&str]| {
        Recognizer::new(entity, Category::Pii, pattern, score, check, context)
    };
    let recognizers = [
        pii(
            "EMAIL",
            r"(?i)(?-u:\b)[a-z0-9][a-z0-9._%+-]{0,63}@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}(?-u:\b)",
            1.0,
            Check::None,
            &[],
        ),
        pii(
            "CREDIT_CARD",
            r"(?-u:\b)(?:[0-9][ -]?){12,18}[0-9](?-u:\b)",
            0.3,
            Check::Luhn,
            &["card", "credit", "visa", "mastercard", "amex", "cc"],
        ),
        pii(
            "IBAN",
            r"(?i)(?-u:\b)[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}(?-u:\b)",
            0.5,
            Check::Iban,
            &["iban", "account", "bank"],
        ),
        pii(
            "US_SSN",
            r"(?-u:\b)[0-9]{3}([- ])[0-9]{2}([- ])[0-9]{4}(?-u:\b)",
            0.5,
            Check::Ssn,
            &["ssn", "social security", "social"],
        ),
        pii(
            "US_SSN",
            r"(?-u:\b)[0-9]{9}(?-u:\b)",
            0.15,
            Check::Ssn,
            &["ssn", "social security"],
        ),
        pii(
            "PHONE",
            r"\+[0-9]{1,3}(?:[ .-]?(?:\([0-9]{1,4}\)|[0-9]{1,5})){1,6}(?-u:\b)",
            0.7,
            Check::PhoneDigits,
            &[
                "phone", "call", "tel", "mobile", "cell", "number", "whatsapp", "fax", "reach",
            ],
        ),
        pii(
            "PHONE",
            r"(?:\([0-9]{2,4}\)[ .-]?|(?-u:\b)[0-9]{2,4}[ .-])[0-9]{2,4}[ .-][0-9]{2,5}(?:[ .-][0-9]{2,4})?(?-u:\b)",
            0.35,
            Check::PhoneDigits,
            &[
                "phone", "call", "tel", "mobile", "cell", "number", "whatsapp", "fax", "reach",
            ],
        ),
        pii(
            "IP_ADDRESS",
            r"(?-u:\b)(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?-u:\b)",
            0.6,
            Check::Ipv4,
            &["ip", "address", "server", "host"],
        ),
        pii(
            "IP_ADDRESS",
            r"(?i)(?-u:\b)(?:[0-9a-f]{1,4}:){2,7}(?::?[0-9a-f]{1,4})+(?-u:\b)|(?i)(?-u:\b)(?:[0-9a-f]{1,4}:){1,7}:(?:[0-9a-f]{1,4}(?-u:\b))?",
            0.6,
            Check::Ipv6,
            &["ip", "address", "ipv6"],
        ),
        pii(
            "DATE_OF_BIRTH",
            r"(?i)(?-u:\b)(?:[0-9]{1,2}[/.-][0-9]{1,2}[/.-](?:[0-9]{4}|[0-9]{2})|[0-9]{4}-[0-9]{2}-[0-9]{2}|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? [0-9]{1,2},? [0-9]{4}|[0-9]{1,2} (?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? [0-9]{4})(?-u:\b)",
            0.15,
            Check::None,
            &["born", "birth", "dob", "birthday", "b."],
        ),
        pii(
            "CRYPTO_WALLET",
            r"(?-u:\b)[13][a-km-zA-HJ-NP-Z1-9]{25,34}(?-u:\b)",
            0.5,
            Check::BitcoinBase58,
            &[],
        ),
        pii(
            "CRYPTO_WALLET",
            r"(?i)(?-u:\b)bc1[a-z0-9]{8,87}(?-u:\b)",
            0.5,
            Check::BitcoinBech32,
            &[],
        ),
        pii(
            "CRYPTO_WALLET",
            r"(?-u:\b)0x[a-fA-F0-9]{40}(?-u:\b)",
            0.5,
            Check::None,
            &["wallet", "eth", "ethereum", "address", "send"],
        ),
    ];
    recognizers.into_iter().filter_map(Result::ok).collect()
}

/// The built-in recognizers of secrets.
pub fn secret_recognizers() -> Vec<Recognizer> {
    let secret = |entity, pattern, score, check| {
        Recognizer::new(entity, Category::Secret, pattern, score, check, &[])
    };
    let mut recognizers: Vec<Recognizer> = [
        secret("ANTHROPIC_KEY", r"(?-u:\b)sk-ant-[A-Za-z0-9_-]{20,}", 1.0, Check::None),
        secret("OPENAI_KEY", r"(?-u:\b)sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}", 0.95, Check::None),
        secret("SWITCHYARD_KEY", r"(?-u:\b)sy-[A-Za-z0-9_-]{32,}", 1.0, Check::None),
        secret("AWS_ACCESS_KEY", r"(?-u:\b)(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?-u:\b)", 1.0, Check::None),
        secret("GITHUB_TOKEN", r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,})", 1.0, Check::None),
        secret("SLACK_TOKEN", r"(?-u:\b)xox[abposr]-[A-Za-z0-9-]{10,}", 1.0, Check::None),
        secret("STRIPE_KEY", r"(?-u:\b)(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}", 1.0, Check::None),
        secret("GOOGLE_API_KEY", r"(?-u:\b)AIza[0-9A-Za-z_-]{35}", 1.0, Check::None),
        secret(
            "PRIVATE_KEY",
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
            1.0,
            Check::None,
        ),
        secret("JWT", r"(?-u:\b)eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}", 0.5, Check::Jwt),
        secret(
            "CONNECTION_STRING",
            r"(?i)(?-u:\b)(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver)://[^\s:/@]+:[^\s@/]+@[^\s/?#]+",
            1.0,
            Check::None,
        ),
        secret("HIGH_ENTROPY_TOKEN", r"(?-u:\b)[A-Za-z0-9+/_-]{32,}={0,2}", 0.7, Check::Entropy),
    ]
    .into_iter()
    .filter_map(Result::ok)
    .collect();
    if let Ok(aws) = Recognizer::new(
        "AWS_SECRET_KEY",
        Category::Secret,
        r#"(?i)aws.{0,24}?(?:secret|private).{0,24}?[=:"' ]+([A-Za-z0-9/+]{40})(?-u:\b)"#,
        1.0,
        Check::None,
        &[],
    ) {
        recognizers.push(aws.with_group(1));
    }
    recognizers
}

/// Markdown images that point at a URL: in an answer, the way injected instructions make a
/// client fetch `https://attacker/?data=…` and so carry the conversation out.
pub fn link_recognizers() -> Vec<Recognizer> {
    Recognizer::new(
        "MARKDOWN_IMAGE",
        Category::Link,
        // Unbounded rather than counted repetitions of these (Unicode) classes: a class
        // repeated 2048 times is an automaton too large for the fast engines.
        r"!\[[^\]\n]*\]\(\s*<?(?i:https?|ftp)://[^)\s]+(?:\s+[^)]*)?\)",
        1.0,
        Check::None,
        &[],
    )
    .into_iter()
    .collect()
}

/// Recognizers run together, with their thresholds.
#[derive(Debug, Clone)]
pub struct Scanner {
    recognizers: Vec<Recognizer>,
    /// Which recognizers may match at all, in one pass.
    set: RegexSet,
    thresholds: HashMap<Arc<str>, f32>,
    threshold: f32,
}

impl Scanner {
    /// A scanner of `recognizers`, keeping findings at or above `threshold` (or the entity's
    /// own in `thresholds`).
    pub fn new(
        recognizers: Vec<Recognizer>,
        threshold: f32,
        thresholds: HashMap<Arc<str>, f32>,
    ) -> Result<Scanner, regex::Error> {
        let set = RegexSet::new(recognizers.iter().map(|r| r.regex.as_str()))?;
        Ok(Scanner {
            recognizers,
            set,
            thresholds,
            threshold,
        })
    }

    /// Whether it has any recognizer.
    pub fn is_empty(&self) -> bool {
        self.recognizers.is_empty()
    }

    /// Everything found in `text`, in order, without overlaps.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        if self.recognizers.is_empty() || text.is_empty() {
            return Vec::new();
        }
        let mut found = Vec::new();
        for index in self.set.matches(text).iter() {
            let recognizer = &self.recognizers[index];
            let values: Box<dyn Iterator<Item = regex::Match<'_>>> = if recognizer.group == 0 {
                Box::new(recognizer.regex.find_iter(text))
            } else {
                Box::new(
                    recognizer
                        .regex
                        .captures_iter(text)
                        .filter_map(|captures| captures.get(recognizer.group)),
                )
            };
            for value in values {
                // A number after `+` is a phone number's, whatever its checksum.
                if recognizer.check == Check::Luhn && text[..value.start()].ends_with('+') {
                    continue;
                }
                let Some((mut score, length)) =
                    recognizer.check.apply(value.as_str(), recognizer.score)
                else {
                    continue;
                };
                if score < 1.0 && has_context(text, value.start(), &recognizer.context) {
                    score = (score + CONTEXT_BOOST).min(1.0);
                }
                let threshold = self
                    .thresholds
                    .get(&recognizer.entity)
                    .copied()
                    .unwrap_or(self.threshold);
                if score >= threshold {
                    found.push(Finding {
                        entity: Arc::clone(&recognizer.entity),
                        category: recognizer.category,
                        start: value.start(),
                        end: value.start() + length,
                        score,
                    });
                }
            }
        }
        resolve_overlaps(found)
    }
}

/// Whether one of `words` appears shortly before `at` (case-insensitive, as a word).
fn has_context(text: &str, at: usize, words: &[String]) -> bool {
    if words.is_empty() {
        return false;
    }
    let mut from = at.saturating_sub(CONTEXT_WINDOW);
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    let window = text[from..at].to_lowercase();
    words.iter().any(|word| {
        window.match_indices(word.as_str()).any(|(i, _)| {
            let before = window[..i].chars().next_back();
            let after = window[i + word.len()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        })
    })
}

/// Keeps, among overlapping findings, the higher score, then the longer span, then the earlier.
fn resolve_overlaps(mut found: Vec<Finding>) -> Vec<Finding> {
    found.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(a.start.cmp(&b.start))
    });
    let mut kept: Vec<Finding> = Vec::with_capacity(found.len());
    for finding in found {
        if kept
            .iter()
            .all(|other| finding.end <= other.start || finding.start >= other.end)
        {
            kept.push(finding);
        }
    }
    kept.sort_by_key(|finding| finding.start);
    kept
}

#[cfg(test)]
mod tests;
