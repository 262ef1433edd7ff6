//! Text helpers of the answer: word counting, truncation, stream chunking, JSON compaction.

use std::ops::Range;

/// Number of whitespace-separated words: the mock's token count.
pub(crate) fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// Keeps the first `limit` words of `text` (dropping what follows the last kept word);
/// returns whether anything was cut.
pub(crate) fn truncate_words(text: &mut String, limit: u64) -> bool {
    let mut seen = 0_u64;
    let mut in_word = false;
    for (at, c) in text.char_indices() {
        if c.is_whitespace() {
            in_word = false;
        } else if !in_word {
            in_word = true;
            if seen == limit {
                let end = text[..at].trim_end().len();
                text.truncate(end);
                return true;
            }
            seen += 1;
        }
    }
    false
}

/// Splits `text` into words, each piece carrying the whitespace before it
/// (`"a b"` → `"a"`, `" b"`), so the pieces concatenate back to `text`.
pub(crate) fn word_pieces(text: &str) -> Vec<Range<usize>> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut previous_was_space = false;
    let mut seen_word = false;
    for (at, c) in text.char_indices() {
        let space = c.is_whitespace();
        if space && !previous_was_space && seen_word {
            pieces.push(start..at);
            start = at;
        }
        seen_word |= !space;
        previous_was_space = space;
    }
    if start < text.len() {
        pieces.push(start..text.len());
    }
    pieces
}

/// Splits `text` into pieces of about `size` bytes, never inside a UTF-8 character.
pub(crate) fn byte_pieces(text: &str, size: usize) -> Vec<Range<usize>> {
    let size = size.max(1);
    let mut pieces = Vec::with_capacity(text.len() / size + 1);
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + size).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        pieces.push(start..end);
        start = end;
    }
    pieces
}

/// Removes the whitespace between JSON tokens, leaving strings, numbers and key order exactly
/// as received (re-serializing would renormalize numbers and drop duplicate keys).
pub(crate) fn compact_json(body: &[u8]) -> String {
    let mut out = Vec::with_capacity(body.len());
    let mut in_string = false;
    let mut escaped = false;
    for &byte in body {
        if in_string {
            out.push(byte);
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else if !matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
            in_string = byte == b'"';
            out.push(byte);
        }
    }
    String::from_utf8(out).unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slices<'a>(text: &'a str, pieces: &[Range<usize>]) -> Vec<&'a str> {
        pieces.iter().map(|range| &text[range.clone()]).collect()
    }

    #[test]
    fn counts_words() {
        assert_eq!(words(""), 0);
        assert_eq!(words("  one\ttwo\nthree  "), 3);
    }

    #[test]
    fn truncates_to_word_limit() {
        let mut text = "one two  three four".to_owned();
        assert!(truncate_words(&mut text, 2));
        assert_eq!(text, "one two");
        let mut text = "one two".to_owned();
        assert!(!truncate_words(&mut text, 2));
        assert_eq!(text, "one two");
        let mut text = "one two".to_owned();
        assert!(truncate_words(&mut text, 0));
        assert_eq!(text, "");
    }

    #[test]
    fn word_pieces_keep_leading_space() {
        let text = "tok1 tok2\ntok3";
        assert_eq!(
            slices(text, &word_pieces(text)),
            ["tok1", " tok2", "\ntok3"]
        );
        assert!(word_pieces("").is_empty());
    }

    #[test]
    fn byte_pieces_respect_char_boundaries() {
        let text = "aé€b";
        let pieces = byte_pieces(text, 2);
        assert_eq!(slices(text, &pieces).concat(), text);
        assert_eq!(slices(text, &pieces), ["aé", "€", "b"]);
    }

    #[test]
    fn compacts_json_outside_strings() {
        let body = b"{ \"a\" : \"x y\\\" z\",\n  \"b\": [1.50, 2] }";
        assert_eq!(compact_json(body), r#"{"a":"x y\" z","b":[1.50,2]}"#);
    }
}
