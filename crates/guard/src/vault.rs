//! Operators (what becomes of a finding) and the vault that makes tokenization reversible.
//!
//! A [`Vault`] belongs to one request, never shared: the same value gets the same placeholder
//! in every message of the request (`[EMAIL_1]` twice for one address), different values get
//! different numbers, and only placeholders this vault issued are restored. A [`Restorer`]
//! restores a stream delta by delta, holding back only a tail that may still be the start of
//! a placeholder.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use ring::hmac;

use crate::scan::Finding;

/// What happens to a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// Replaced by `[REDACTED]`.
    Redact,
    /// Every character but the last four replaced by `*`.
    Mask,
    /// Replaced by its entity's name: `[EMAIL]`.
    Label,
    /// Replaced by a keyed hash: `[EMAIL:1f3a…]` (HMAC-SHA256, the tenant's key).
    Hash,
    /// Replaced by a placeholder (`[EMAIL_1]`) restored in the answer.
    Tokenize,
}

impl Operator {
    /// The operator named `name` (`redact`, `mask`, `label`, `hash`, `tokenize`).
    pub fn parse(name: &str) -> Option<Operator> {
        Some(match name {
            "redact" => Operator::Redact,
            "mask" => Operator::Mask,
            "label" => Operator::Label,
            "hash" => Operator::Hash,
            "tokenize" => Operator::Tokenize,
            _ => return None,
        })
    }
}

/// One request's placeholders and the values they stand for.
#[derive(Debug, Default)]
pub struct Vault {
    by_value: HashMap<(Arc<str>, String), String>,
    by_placeholder: HashMap<String, String>,
    counters: HashMap<Arc<str>, u32>,
    longest: usize,
}

impl Vault {
    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.by_placeholder.is_empty()
    }

    /// Placeholders issued.
    pub fn len(&self) -> usize {
        self.by_placeholder.len()
    }

    /// Each placeholder and the value it stands for, in placeholder order.
    pub fn pairs(&self) -> Vec<(&str, &str)> {
        let mut pairs: Vec<(&str, &str)> = self
            .by_placeholder
            .iter()
            .map(|(placeholder, value)| (placeholder.as_str(), value.as_str()))
            .collect();
        pairs.sort_unstable();
        pairs
    }

    /// The placeholder of `value` (an `entity`): the one it already has, or the next number.
    pub fn tokenize(&mut self, entity: &Arc<str>, value: &str) -> String {
        if let Some(placeholder) = self.by_value.get(&(Arc::clone(entity), value.to_owned())) {
            return placeholder.clone();
        }
        let counter = self.counters.entry(Arc::clone(entity)).or_insert(0);
        *counter += 1;
        let placeholder = format!("[{entity}_{counter}]");
        self.longest = self.longest.max(placeholder.len());
        self.by_value
            .insert((Arc::clone(entity), value.to_owned()), placeholder.clone());
        self.by_placeholder
            .insert(placeholder.clone(), value.to_owned());
        placeholder
    }

    /// `text` with every placeholder of this vault replaced by its value; as JSON string
    /// content (escaped) when `json`, for tool-call arguments.
    pub fn restore<'t>(&self, text: &'t str, json: bool) -> Cow<'t, str> {
        if self.is_empty() || !text.contains('[') {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        let mut changed = false;
        while let Some(open) = rest.find('[') {
            let Some(close) = rest[open..].find(']').map(|close| open + close) else {
                break;
            };
            let candidate = &rest[open..=close];
            match self.by_placeholder.get(candidate) {
                Some(value) => {
                    out.push_str(&rest[..open]);
                    if json {
                        let quoted = serde_json::to_string(value).unwrap_or_default();
                        out.push_str(&quoted[1..quoted.len() - 1]);
                    } else {
                        out.push_str(value);
                    }
                    rest = &rest[close + 1..];
                    changed = true;
                }
                None => {
                    out.push_str(&rest[..=open]);
                    rest = &rest[open + 1..];
                }
            }
        }
        if !changed {
            return Cow::Borrowed(text);
        }
        out.push_str(rest);
        Cow::Owned(out)
    }
}

/// Restores a stream of text deltas (one per content block or tool call).
#[derive(Debug, Default)]
pub struct Restorer {
    held: String,
}

impl Restorer {
    /// The text to pass on for `delta`: restored, less a tail held back while it may still be
    /// the start of a placeholder.
    pub fn feed(&mut self, vault: &Vault, delta: &str, json: bool) -> String {
        self.held.push_str(delta);
        let keep_from = match self.held.rfind('[') {
            Some(open)
                if !self.held[open..].contains(']')
                    && self.held.len() - open < vault.longest.max(2) =>
            {
                open
            }
            _ => self.held.len(),
        };
        let ready: String = self.held.drain(..keep_from).collect();
        vault.restore(&ready, json).into_owned()
    }

    /// What is still held, at the end of the stream.
    pub fn finish(&mut self, vault: &Vault, json: bool) -> String {
        let rest = std::mem::take(&mut self.held);
        vault.restore(&rest, json).into_owned()
    }
}

/// Applies `operator` to every finding in `text` (findings in order, without overlaps).
pub fn apply(
    text: &str,
    findings: &[Finding],
    operator: Operator,
    vault: &mut Vault,
    hash_key: &hmac::Key,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for finding in findings {
        if finding.start < at {
            continue;
        }
        out.push_str(&text[at..finding.start]);
        let value = &text[finding.start..finding.end];
        match operator {
            Operator::Redact => out.push_str("[REDACTED]"),
            Operator::Mask => {
                let count = value.chars().count();
                for (i, c) in value.chars().enumerate() {
                    out.push(if i + 4 >= count || !c.is_alphanumeric() {
                        c
                    } else {
                        '*'
                    });
                }
            }
            Operator::Label => {
                out.push('[');
                out.push_str(&finding.entity);
                out.push(']');
            }
            Operator::Hash => {
                let tag = hmac::sign(hash_key, value.as_bytes());
                out.push('[');
                out.push_str(&finding.entity);
                out.push(':');
                for byte in &tag.as_ref()[..8] {
                    out.push_str(&format!("{byte:02x}"));
                }
                out.push(']');
            }
            Operator::Tokenize => out.push_str(&vault.tokenize(&finding.entity, value)),
        }
        at = finding.end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn finding(entity: &str, start: usize, end: usize) -> Finding {
        Finding {
            entity: Arc::from(entity),
            category: crate::scan::Category::Pii,
            start,
            end,
            score: 1.0,
        }
    }

    #[test]
    fn each_operator_rewrites_what_it_should() {
        let text = "mail ada@example.com now";
        let found = [finding("EMAIL", 5, 20)];
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"tenant");
        let mut vault = Vault::default();
        let run = |operator, vault: &mut Vault| apply(text, &found, operator, vault, &key);
        assert_eq!(run(Operator::Redact, &mut vault), "mail [REDACTED] now");
        assert_eq!(run(Operator::Mask, &mut vault), "mail ***@*******.com now");
        assert_eq!(run(Operator::Label, &mut vault), "mail [EMAIL] now");
        let hashed = run(Operator::Hash, &mut vault);
        assert!(
            hashed.starts_with("mail [EMAIL:") && hashed.len() == "mail [EMAIL:] now".len() + 16
        );
        assert_eq!(
            hashed,
            run(Operator::Hash, &mut vault),
            "a keyed hash is stable"
        );
        let other = hmac::Key::new(hmac::HMAC_SHA256, b"other tenant");
        assert_ne!(
            hashed,
            apply(text, &found, Operator::Hash, &mut vault, &other)
        );
        assert_eq!(run(Operator::Tokenize, &mut vault), "mail [EMAIL_1] now");
        assert!(vault.len() == 1);
    }

    #[test]
    fn one_value_keeps_one_placeholder_and_only_issued_ones_are_restored() {
        let mut vault = Vault::default();
        let email: Arc<str> = Arc::from("EMAIL");
        assert_eq!(vault.tokenize(&email, "a@x.io"), "[EMAIL_1]");
        assert_eq!(vault.tokenize(&email, "b@x.io"), "[EMAIL_2]");
        assert_eq!(vault.tokenize(&email, "a@x.io"), "[EMAIL_1]");
        assert_eq!(
            vault.restore("[EMAIL_2] wrote to [EMAIL_1] and [EMAIL_3] [x]", false),
            "b@x.io wrote to a@x.io and [EMAIL_3] [x]"
        );
        let mut quoted = Vault::default();
        quoted.tokenize(&email, "say \"hi\"");
        assert_eq!(
            quoted.restore(r#"{"to":"[EMAIL_1]"}"#, true),
            r#"{"to":"say \"hi\""}"#
        );
    }

    proptest! {
        /// However a stream is cut into deltas, restoring it delta by delta gives the text
        /// restored whole.
        #[test]
        fn a_stream_restores_the_same_across_any_chunk_boundaries(
            cuts in proptest::collection::vec(0usize..120, 0..12),
            json in any::<bool>(),
        ) {
            let mut vault = Vault::default();
            let email: Arc<str> = Arc::from("EMAIL");
            let card: Arc<str> = Arc::from("CREDIT_CARD");
            vault.tokenize(&email, "ada@example.com");
            vault.tokenize(&card, "4111 1111 1111 1111");
            vault.tokenize(&email, "grace@example.org");
            let text = "Hi [EMAIL_1], your card [CREDIT_CARD_1] [and] [EMAIL_2][EMAIL_1] [EMAIL_9] end [";
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(text.len())).collect();
            cuts.sort_unstable();
            let mut restorer = Restorer::default();
            let mut out = String::new();
            let mut at = 0;
            for cut in cuts {
                out.push_str(&restorer.feed(&vault, &text[at..cut], json));
                at = cut;
            }
            out.push_str(&restorer.feed(&vault, &text[at..], json));
            out.push_str(&restorer.finish(&vault, json));
            prop_assert_eq!(out, vault.restore(text, json).into_owned());
        }
    }
}
