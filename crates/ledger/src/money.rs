//! Money as integers: amounts in nano-dollars, prices in pico-dollars per token.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An amount of US dollars, in nano-dollars (10⁻⁹ USD): exact, and up to about 9.2 billion
/// dollars. Written and read as a decimal string of dollars (`"0.000125"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd(i64);

/// A price per token, in pico-dollars (10⁻¹² USD), which is the same number as micro-dollars
/// per million tokens. Written and read as a decimal string of dollars per million tokens
/// (`"2.5"` is $2.50 per million tokens).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(u64);

/// A decimal string that is not an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an amount of dollars: write a decimal number such as 2.5 or 0.000125")]
pub struct MoneyError(String);

impl Usd {
    /// Nothing.
    pub const ZERO: Usd = Usd(0);

    /// `nanos` nano-dollars.
    pub const fn from_nanos(nanos: i64) -> Usd {
        Usd(nanos)
    }

    /// The amount in nano-dollars.
    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// Whole pico-dollars rounded to the nearest nano-dollar (half up).
    pub fn from_picos(picos: u128) -> Usd {
        let nanos = (picos + 500) / 1000;
        Usd(i64::try_from(nanos).unwrap_or(i64::MAX))
    }

    /// Parses dollars written as a decimal (`"12"`, `"0.5"`, `"0.000000001"`); at most nine
    /// decimal places; may be negative (a refund or a correction).
    pub fn parse(text: &str) -> Result<Usd, MoneyError> {
        let (negative, digits) = match text.trim().strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.trim()),
        };
        let nanos = fixed(digits, 9).ok_or_else(|| MoneyError(text.to_owned()))?;
        let nanos = i64::try_from(nanos).map_err(|_| MoneyError(text.to_owned()))?;
        Ok(Usd(if negative { -nanos } else { nanos }))
    }

    /// The sum, saturating.
    pub fn plus(self, other: Usd) -> Usd {
        Usd(self.0.saturating_add(other.0))
    }

    /// The difference, saturating.
    pub fn minus(self, other: Usd) -> Usd {
        Usd(self.0.saturating_sub(other.0))
    }
}

impl Rate {
    /// Free.
    pub const ZERO: Rate = Rate(0);

    /// `picos` pico-dollars per token.
    pub const fn from_picos(picos: u64) -> Rate {
        Rate(picos)
    }

    /// Pico-dollars per token.
    pub const fn picos(self) -> u64 {
        self.0
    }

    /// Parses dollars per million tokens written as a decimal (`"2.5"`, `"0.075"`); at most six
    /// decimal places; never negative.
    pub fn parse(text: &str) -> Result<Rate, MoneyError> {
        fixed(text.trim(), 6)
            .and_then(|picos| u64::try_from(picos).ok())
            .map(Rate)
            .ok_or_else(|| MoneyError(text.to_owned()))
    }

    /// Dollars per million tokens as a config file's number says it (rounded to six decimal
    /// places, the table's resolution); `None` for a negative or non-finite number.
    pub fn from_per_million(dollars: f64) -> Option<Rate> {
        let picos = (dollars * 1e6).round();
        (picos.is_finite() && picos >= 0.0 && picos < u64::MAX as f64).then_some(Rate(picos as u64))
    }

    /// The price of `tokens` tokens, in pico-dollars.
    pub fn times(self, tokens: u64) -> u128 {
        u128::from(self.0) * u128::from(tokens)
    }
}

/// `text` (digits, an optional point and at most `places` decimals) as an integer of
/// 10^-places units.
fn fixed(text: &str, places: u32) -> Option<u128> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if (whole.is_empty() && fraction.is_empty())
        || fraction.len() > places as usize
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
        || whole.len() > 20
    {
        return None;
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut fraction_value: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().ok()?
    };
    for _ in fraction.len()..places as usize {
        fraction_value *= 10;
    }
    whole
        .checked_mul(10u128.pow(places))?
        .checked_add(fraction_value)
}

/// `value` in 10^-places units as a decimal without trailing zeros (no allocation: headers
/// carry costs on every answer).
fn write_fixed(
    f: &mut fmt::Formatter<'_>,
    negative: bool,
    value: u128,
    places: u32,
) -> fmt::Result {
    let unit = 10u128.pow(places);
    let (whole, mut fraction) = (value / unit, value % unit);
    if negative {
        f.write_str("-")?;
    }
    write!(f, "{whole}")?;
    if fraction == 0 {
        return Ok(());
    }
    let mut digits = [b'0'; 12];
    let places = places as usize;
    for slot in digits[..places].iter_mut().rev() {
        *slot = b'0' + (fraction % 10) as u8;
        fraction /= 10;
    }
    let end = digits[..places]
        .iter()
        .rposition(|digit| *digit != b'0')
        .map_or(0, |last| last + 1);
    f.write_str(".")?;
    f.write_str(std::str::from_utf8(&digits[..end]).unwrap_or_default())
}

impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_fixed(f, self.0 < 0, u128::from(self.0.unsigned_abs()), 9)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_fixed(f, false, u128::from(self.0), 6)
    }
}

impl Serialize for Usd {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A decimal string, or a number (a config file's `2.5`), read without a float's rounding
/// where it can be: a number is read through its shortest decimal form.
#[derive(Deserialize)]
#[serde(untagged)]
enum Decimal {
    Text(String),
    Integer(u64),
    Number(f64),
}

impl Decimal {
    fn text(self) -> String {
        match self {
            Decimal::Text(text) => text,
            Decimal::Integer(value) => value.to_string(),
            // Rust prints the shortest string that reads back as the same float: `0.075` is
            // written `0.075`, not 0.07499999999999999722.
            Decimal::Number(value) => format!("{value}"),
        }
    }
}

impl<'de> Deserialize<'de> for Usd {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Usd, D::Error> {
        Usd::parse(&Decimal::deserialize(deserializer)?.text()).map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Rate, D::Error> {
        Rate::parse(&Decimal::deserialize(deserializer)?.text()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_and_write_as_exact_decimals() {
        for (text, nanos, shown) in [
            ("12", 12_000_000_000, "12"),
            ("0.5", 500_000_000, "0.5"),
            ("0.000000001", 1, "0.000000001"),
            ("-1.25", -1_250_000_000, "-1.25"),
            (".5", 500_000_000, "0.5"),
        ] {
            let usd = Usd::parse(text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(usd.nanos(), nanos, "{text}");
            assert_eq!(usd.to_string(), shown);
        }
        for bad in [
            "",
            ".",
            "1.0000000001",
            "1e3",
            "abc",
            "1,5",
            "99999999999999999999",
        ] {
            assert!(Usd::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rates_are_per_million_tokens() {
        let rate = Rate::parse("2.5").unwrap_or_default();
        assert_eq!(rate.picos(), 2_500_000);
        // 1,000 tokens at $2.50 per million: a quarter of a cent.
        assert_eq!(Usd::from_picos(rate.times(1000)).to_string(), "0.0025");
        assert_eq!(
            Rate::parse("0.075").map(|r| r.to_string()).as_deref(),
            Ok("0.075")
        );
        assert!(Rate::parse("-1").is_err());
        assert!(
            Rate::parse("0.0000001").is_err(),
            "finer than the table's resolution"
        );
        assert_eq!(Rate::from_per_million(0.075), Rate::parse("0.075").ok());
    }

    #[test]
    fn config_numbers_are_read_through_their_decimal_form() {
        let rate: Rate = serde_json::from_str("0.075").unwrap_or_default();
        assert_eq!(rate.picos(), 75_000);
        let rate: Rate = serde_json::from_str("3").unwrap_or_default();
        assert_eq!(rate.picos(), 3_000_000);
        let usd: Usd = serde_json::from_str("\"10.10\"").unwrap_or_default();
        assert_eq!(usd.nanos(), 10_100_000_000);
        assert!(serde_json::from_str::<Usd>("\"ten\"").is_err());
    }
}
