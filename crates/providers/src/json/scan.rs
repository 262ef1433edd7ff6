//! A validating JSON scanner for the relay: checks that a text is one JSON object serde_json
//! would accept and hands back the raw text of chosen top-level members, building nothing.
//!
//! The relay passes an upstream's stream events through as written but must still reject
//! malformed ones and read their usage, once per event. Reading an OpenAI chunk this way takes
//! about two thirds of the time of deserializing it into a probe with serde's `IgnoredAny`
//! (no visitor call per token; strings are skipped eight bytes at a time).
//!
//! It is the fast path only: [`members`] answers `None` for anything it does not accept
//! (invalid text, but also a key written with escapes or a wanted key given twice), and the
//! caller then asks serde_json, whose verdict and error message stand. So the scanner may be
//! stricter than serde_json, never looser; the property tests below hold it to that.

/// Containers nested in one member that the scanner follows (one bit each); deeper text is
/// left to serde_json, whose own limit is 128.
const MAX_DEPTH: u32 = u64::BITS;

/// The raw text of each of `keys` among the top-level members of the object `text`, if `text`
/// is exactly one valid JSON object (surrounding whitespace allowed). `None` means "not
/// decided here": ask serde_json.
pub(crate) fn members<'a, const N: usize>(
    text: &'a str,
    keys: [&str; N],
) -> Option<[Option<&'a str>; N]> {
    // Both ends of a span sit on ASCII bytes the scanner matched, so on char boundaries.
    Some(member_spans(text.as_bytes(), keys)?.map(|span| span.map(|span| &text[span])))
}

/// Where the value of each of `keys` sits in the object `bytes` (byte ranges), on the same
/// terms as [`members`]. UTF-8 is not checked here: a caller with bytes of unknown encoding
/// checks it (as [`members`] does by taking `&str`).
pub(crate) fn member_spans<const N: usize>(
    bytes: &[u8],
    keys: [&str; N],
) -> Option<[Option<std::ops::Range<usize>>; N]> {
    let mut scanner = Scanner { bytes, pos: 0 };
    let mut found = [const { None }; N];
    scanner.skip_whitespace();
    scanner.expect(b'{')?;
    scanner.skip_whitespace();
    if scanner.peek() == Some(b'}') {
        scanner.pos += 1;
    } else {
        loop {
            let key_start = scanner.pos + 1;
            scanner.string()?;
            let key = &scanner.bytes[key_start..scanner.pos - 1];
            scanner.skip_whitespace();
            scanner.expect(b':')?;
            scanner.skip_whitespace();
            let value_start = scanner.pos;
            scanner.value()?;
            match keys.iter().position(|wanted| wanted.as_bytes() == key) {
                Some(index) => {
                    if found[index].is_some() {
                        return None;
                    }
                    found[index] = Some(value_start..scanner.pos);
                }
                // An escaped key might spell a wanted one.
                None if key.contains(&b'\\') => return None,
                None => {}
            }
            scanner.skip_whitespace();
            match scanner.next()? {
                b',' => scanner.skip_whitespace(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    scanner.skip_whitespace();
    (scanner.pos == scanner.bytes.len()).then_some(found)
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    /// One value of any kind; nested containers are walked with a bit stack, not recursion.
    fn value(&mut self) -> Option<()> {
        // Bit `d` of `objects`: the container at depth `d` is an object (else an array).
        let mut objects: u64 = 0;
        let mut depth: u32 = 0;
        'value: loop {
            match self.peek()? {
                open @ (b'{' | b'[') => {
                    self.pos += 1;
                    self.skip_whitespace();
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.pos += 1;
                    } else {
                        if depth == MAX_DEPTH {
                            return None;
                        }
                        let is_object = u64::from(open == b'{');
                        objects = (objects & !(1 << depth)) | (is_object << depth);
                        depth += 1;
                        if open == b'{' {
                            self.key()?;
                        }
                        continue 'value;
                    }
                }
                b'"' => self.string()?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return None,
            }
            // A value ended: close what it ends, or go on to the next element or member.
            loop {
                if depth == 0 {
                    return Some(());
                }
                let in_object = objects & (1 << (depth - 1)) != 0;
                self.skip_whitespace();
                match (self.next()?, in_object) {
                    (b',', true) => {
                        self.skip_whitespace();
                        self.key()?;
                        continue 'value;
                    }
                    (b',', false) => {
                        self.skip_whitespace();
                        continue 'value;
                    }
                    (b'}', true) | (b']', false) => depth -= 1,
                    _ => return None,
                }
            }
        }
    }

    /// A member's key and its colon, leaving the position at the value.
    fn key(&mut self) -> Option<()> {
        self.string()?;
        self.skip_whitespace();
        self.expect(b':')?;
        self.skip_whitespace();
        Some(())
    }

    /// A string, from its opening quote to just past its closing one. Most of a chunk's
    /// tokens are strings: inlined, it costs about a sixth less.
    #[inline(always)]
    fn string(&mut self) -> Option<()> {
        self.expect(b'"')?;
        let bytes = self.bytes;
        let mut pos = self.pos;
        loop {
            // Eight bytes at a time up to the first quote, backslash or control byte.
            while let Some(word) = bytes.get(pos..pos + 8) {
                let mask = special_bytes(u64::from_le_bytes(word.try_into().ok()?));
                if mask != 0 {
                    pos += (mask.trailing_zeros() / 8) as usize;
                    break;
                }
                pos += 8;
            }
            let byte = *bytes.get(pos)?;
            pos += 1;
            match byte {
                b'"' => {
                    self.pos = pos;
                    return Some(());
                }
                b'\\' => match *bytes.get(pos)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => pos += 1,
                    b'u' => {
                        let hex = bytes.get(pos + 1..pos + 5)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return None;
                        }
                        pos += 5;
                    }
                    _ => return None,
                },
                0x00..=0x1f => return None,
                _ => {}
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.pos + word.len();
        (self.bytes.get(self.pos..end)? == word).then(|| self.pos = end)
    }

    /// A number by JSON's grammar; one serde_json would read as an infinite float is refused.
    fn number(&mut self) -> Option<()> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        let mut exponent = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.first_digit()?;
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            exponent = true;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.first_digit()?;
            self.digits();
        }
        // Only an exponent or hundreds of digits can overflow a float.
        if exponent || self.pos - start > 300 {
            let text = std::str::from_utf8(&self.bytes[start..self.pos]).ok()?;
            if !text.parse::<f64>().ok()?.is_finite() {
                return None;
            }
        }
        Some(())
    }

    fn first_digit(&mut self) -> Option<()> {
        self.next()?.is_ascii_digit().then_some(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }
}

/// A mask with the high bit set in each byte of `word` that is `"`, `\\` or below 0x20, exact up
/// to the lowest such byte (bytes above it may be flagged falsely, through borrows), which is
/// all [`Scanner::string`] reads of it.
fn special_bytes(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let quote = zero_byte(word ^ (ONES * u64::from(b'"')));
    let backslash = zero_byte(word ^ (ONES * u64::from(b'\\')));
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    quote | backslash | control
}

#[cfg(test)]
mod tests;
