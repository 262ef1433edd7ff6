//! Checks that turn a pattern's match into a finding or throw it out: the checksums and
//! registries the values themselves carry.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};

/// The digits of `text`, separators (spaces, dashes, dots) dropped.
pub fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// A card number as cards are written: one run of digits, groups of four (the last one or
/// more shorter), or American Express's and Diners Club's 4-6-5 and 4-6-4; and its Luhn
/// checksum holds.
pub fn card(text: &str) -> bool {
    let groups: Vec<usize> = text
        .split([' ', '-'])
        .filter(|group| !group.is_empty())
        .map(str::len)
        .collect();
    let shaped = match groups.as_slice() {
        [_] | [4, 6, 5] | [4, 6, 4] => true,
        [rest @ .., last] => rest.iter().all(|&len| len == 4) && (1..=4).contains(last),
        [] => false,
    };
    shaped && luhn(text)
}

/// The Luhn checksum of a card number (13 to 19 digits) holds.
pub fn luhn(text: &str) -> bool {
    let digits = digits(text);
    if !(13..=19).contains(&digits.len()) || digits.bytes().all(|b| b == digits.as_bytes()[0]) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, byte)| {
            let digit = u32::from(byte - b'0');
            if i % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A phone number's score by its shape: an international number (`+` and 8 to 15 digits)
/// keeps `base`; a national one with the North American grouping (`(415) 555-2671`,
/// `415-555-2671`) is raised to 0.6; other groupings of 7 to 12 digits keep `base`; dates
/// (`2024-03-14`, `14.03.2024`) and anything else are not phone numbers.
pub fn phone_score(text: &str, base: f32) -> Option<f32> {
    let digits = digits(text);
    if text.starts_with('+') {
        return (8..=15).contains(&digits.len()).then_some(base);
    }
    let groups: Vec<usize> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|group| !group.is_empty())
        .map(str::len)
        .collect();
    let looks_like_date = matches!(groups.as_slice(), [4, 2, 2] | [2, 2, 4] | [1 | 2, 1 | 2, 4]);
    if looks_like_date || !(7..=12).contains(&digits.len()) {
        return None;
    }
    if groups == [3, 3, 4] {
        return Some(base.max(0.6));
    }
    Some(base)
}

/// IBAN lengths by country (the SWIFT registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BI", 27),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DJ", 27),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FK", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MN", 20),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NI", 28),
    ("NL", 18),
    ("NO", 15),
    ("OM", 23),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("RU", 33),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("SO", 23),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
    ("YE", 30),
];

/// The length of an IBAN of the country `text` starts with (`None`: no such country).
pub fn iban_length(text: &str) -> Option<usize> {
    let country = text.get(..2)?.to_ascii_uppercase();
    IBAN_LENGTHS
        .iter()
        .find(|(code, _)| *code == country)
        .map(|&(_, length)| length)
}

/// An IBAN: a registered country, its length, and the ISO 13616 mod-97 check.
pub fn iban(text: &str) -> bool {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let compact = compact.to_ascii_uppercase();
    let Some(country) = compact.get(..2) else {
        return false;
    };
    let Some(&(_, length)) = IBAN_LENGTHS.iter().find(|(code, _)| *code == country) else {
        return false;
    };
    if compact.len() != length || !compact.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    mod97(tail.bytes().chain(head.bytes())) == 1
}

/// ISO 7064 mod 97-10 of uppercase letters and digits, a letter counting as two digits
/// (A = 10 … Z = 35): what an IBAN's check digits make 1.
pub fn mod97(bytes: impl Iterator<Item = u8>) -> u32 {
    let mut remainder: u32 = 0;
    for byte in bytes {
        let value = if byte.is_ascii_digit() {
            u32::from(byte - b'0')
        } else {
            u32::from(byte.to_ascii_uppercase() - b'A') + 10
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder
}

/// A US Social Security number that could be issued: not area 000, 666 or 9xx, group 00 or
/// serial 0000, and not one of the numbers known from advertising and examples.
pub fn us_ssn(text: &str) -> bool {
    let digits = digits(text);
    if digits.len() != 9 {
        return false;
    }
    let (area, group, serial) = (&digits[..3], &digits[3..5], &digits[5..]);
    let area_number: u32 = area.parse().unwrap_or(0);
    !(area == "000"
        || area == "666"
        || area_number >= 900
        || group == "00"
        || serial == "0000"
        || digits.bytes().all(|b| b == digits.as_bytes()[0])
        || digits == "123456789"
        || digits == "078051120"
        || digits == "219099999")
}

const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// A legacy Bitcoin address (P2PKH or P2SH): base58 whose last four bytes are the double
/// SHA-256 of the rest.
pub fn bitcoin_base58(text: &str) -> bool {
    let mut bytes: Vec<u8> = Vec::with_capacity(25);
    for c in text.bytes() {
        let Some(mut carry) = BASE58.iter().position(|&b| b == c).map(|v| v as u32) else {
            return false;
        };
        for byte in bytes.iter_mut().rev() {
            carry += u32::from(*byte) * 58;
            *byte = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let zeros = text.bytes().take_while(|&b| b == b'1').count();
    let mut decoded = vec![0u8; zeros];
    decoded.extend(bytes);
    if decoded.len() != 25 {
        return false;
    }
    let (payload, check) = decoded.split_at(21);
    let once = digest(&SHA256, payload);
    let twice = digest(&SHA256, once.as_ref());
    &twice.as_ref()[..4] == check
}

/// A SegWit Bitcoin address (bech32 or bech32m, `bc1…`): its checksum holds.
pub fn bitcoin_bech32(text: &str) -> bool {
    const CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let lower = text.to_ascii_lowercase();
    if lower != text && text.to_ascii_uppercase() != text {
        return false;
    }
    let Some((hrp, data)) = lower.rsplit_once('1') else {
        return false;
    };
    if hrp != "bc" || data.len() < 6 {
        return false;
    }
    let mut values = Vec::with_capacity(hrp.len() * 2 + 1 + data.len());
    values.extend(hrp.bytes().map(|b| u32::from(b >> 5)));
    values.push(0);
    values.extend(hrp.bytes().map(|b| u32::from(b & 31)));
    for c in data.bytes() {
        let Some(v) = CHARSET.iter().position(|&x| x == c) else {
            return false;
        };
        values.push(v as u32);
    }
    const GENERATOR: [u32; 5] = [
        0x3b6a_57b2,
        0x2650_8e6d,
        0x1ea1_19fa,
        0x3d42_33dd,
        0x2a14_62b3,
    ];
    let mut check: u32 = 1;
    for value in values {
        let top = check >> 25;
        check = ((check & 0x01ff_ffff) << 5) ^ value;
        for (i, generator) in GENERATOR.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                check ^= generator;
            }
        }
    }
    check == 1 || check == 0x2bc8_30a3
}

/// A JSON Web Token: its header is base64url JSON naming an algorithm.
pub fn jwt(text: &str) -> bool {
    let Some(header) = text.split('.').next() else {
        return false;
    };
    URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|header| header.get("alg").is_some())
}

/// Shannon entropy of `text`, in bits per character.
/// Whether a token is base64 of ordinary text (printable, a space at least every twelve
/// bytes): an encoded sentence, not a credential.
pub fn base64_of_prose(token: &str) -> bool {
    let trimmed = token.trim_end_matches('=');
    let engines = [
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    engines.iter().any(|engine| {
        engine.decode(trimmed).is_ok_and(|bytes| {
            let printable = bytes
                .iter()
                .filter(|b| b.is_ascii_graphic() || **b == b' ')
                .count();
            let spaces = bytes.iter().filter(|b| **b == b' ').count();
            !bytes.is_empty() && printable == bytes.len() && spaces * 12 >= bytes.len()
        })
    })
}

/// Shannon entropy of `text`'s bytes, in bits per byte.
pub fn entropy(text: &str) -> f64 {
    let mut counts = [0u32; 256];
    for byte in text.bytes() {
        counts[usize::from(byte)] += 1;
    }
    let length = text.len() as f64;
    counts
        .iter()
        .filter(|&&count| count > 0)
        .map(|&count| {
            let p = f64::from(count) / length;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_pass_luhn_and_near_misses_do_not() {
        for good in [
            "4111 1111 1111 1111",
            "5500-0000-0000-0004",
            "378282246310005",
            "6011111111111117",
        ] {
            assert!(luhn(good), "{good}");
        }
        for bad in [
            "4111 1111 1111 1112",
            "1234567890123",
            "0000000000000000",
            "4111",
        ] {
            assert!(!luhn(bad), "{bad}");
        }
    }

    #[test]
    fn ibans_pass_mod_97_and_their_country_length() {
        for good in [
            "GB82 WEST 1234 5698 7654 32",
            "DE89370400440532013000",
            "FR1420041010050500013M02606",
            "NL91ABNA0417164300",
        ] {
            assert!(iban(good), "{good}");
        }
        for bad in [
            "GB82 WEST 1234 5698 7654 33",
            "DE8937040044053201300",
            "XX89370400440532013000",
            "GB82-WEST",
        ] {
            assert!(!iban(bad), "{bad}");
        }
    }

    #[test]
    fn ssns_outside_the_issued_ranges_are_refused() {
        assert!(us_ssn("536-22-1987"));
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "912-34-5678",
            "123-00-4567",
            "123-45-0000",
            "111-11-1111",
            "078-05-1120",
        ] {
            assert!(!us_ssn(bad), "{bad}");
        }
    }

    #[test]
    fn bitcoin_addresses_carry_their_checksums() {
        assert!(bitcoin_base58("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"));
        assert!(bitcoin_base58("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"));
        assert!(!bitcoin_base58("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3"));
        assert!(bitcoin_bech32("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"));
        assert!(bitcoin_bech32(
            "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297"
        ));
        assert!(!bitcoin_bech32(
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdr"
        ));
    }

    #[test]
    fn tokens_are_told_from_words_by_entropy_and_jwts_by_their_header() {
        assert!(entropy("Zx8kQ2mP9vL4tR7wN1bC6yH3jF5gD0sA") > 4.5);
        assert!(entropy("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") < 1.0);
        assert!(jwt(
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
        ));
        assert!(!jwt("eyJub3RhbGciOjF9.eyJzdWIiOiIxIn0.abcdefghijkl"));
    }

    #[test]
    fn base64_of_a_sentence_is_prose_and_of_a_credential_is_not() {
        use base64::engine::general_purpose::STANDARD;
        assert!(base64_of_prose(&STANDARD.encode(
            "The quarterly report is attached; please review by Friday."
        )));
        assert!(!base64_of_prose(
            &STANDARD.encode("admin:Zx8kQ2mP9vL4tR7wN1bC")
        ));
        assert!(!base64_of_prose("Zx8kQ2mP9vL4tR7wN1bC6yH3jF5gD0sA"));
    }
}
