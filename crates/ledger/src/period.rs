//! Days and budget periods, in UTC.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::money::Usd;

/// A UTC day, as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(i64);

impl Day {
    /// The day of Unix millisecond `ms`.
    pub fn of_ms(ms: i64) -> Day {
        Day(ms.div_euclid(86_400_000))
    }

    /// The day `days` after 1970-01-01.
    pub const fn from_days(days: i64) -> Day {
        Day(days)
    }

    /// Its first millisecond.
    pub fn start_ms(self) -> i64 {
        self.0.saturating_mul(86_400_000)
    }

    /// The civil date: year, month (1–12), day (1–31).
    pub fn ymd(self) -> (i64, u32, u32) {
        // Howard Hinnant's `civil_from_days`.
        let z = self.0 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = yoe + era * 400 + i64::from(m <= 2);
        (y, m, d)
    }

    /// The day of a civil date (`days_from_civil`); `None` when it is not one.
    pub fn from_ymd(y: i64, m: u32, d: u32) -> Option<Day> {
        if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
            return None;
        }
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let mp = i64::from((m + 9) % 12);
        let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Some(Day(era * 146_097 + doe - 719_468))
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<Day> {
        let mut parts = text.splitn(3, '-');
        let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return None;
        }
        Day::from_ymd(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
    }

    /// The day after.
    pub fn next(self) -> Day {
        Day(self.0 + 1)
    }

    /// Monday of its week (1970-01-01 was a Thursday).
    fn monday(self) -> Day {
        Day(self.0 - (self.0 + 3).rem_euclid(7))
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// How often a budget starts again: at midnight UTC, on Mondays, on the first of the month, or
/// never.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Each UTC day.
    Daily,
    /// Each week from Monday, UTC.
    Weekly,
    /// Each calendar month, UTC.
    #[default]
    Monthly,
    /// Never: the budget is a total.
    None,
}

impl Period {
    /// The first day of the period `day` is in (`None`: the beginning of time).
    pub fn start(self, day: Day) -> Day {
        match self {
            Period::Daily => day,
            Period::Weekly => day.monday(),
            Period::Monthly => {
                let (y, m, _) = day.ymd();
                Day::from_ymd(y, m, 1).unwrap_or(day)
            }
            Period::None => Day(i64::MIN / 86_400_000),
        }
    }

    /// The first day of the next period (`None` for a budget that never resets).
    pub fn next_start(self, day: Day) -> Option<Day> {
        match self {
            Period::Daily => Some(day.next()),
            Period::Weekly => Some(Day(day.monday().0 + 7)),
            Period::Monthly => {
                let (y, m, _) = day.ymd();
                let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                Day::from_ymd(y, m, 1)
            }
            Period::None => None,
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Daily => "daily",
            Period::Weekly => "weekly",
            Period::Monthly => "monthly",
            Period::None => "none",
        }
    }
}

/// A spending limit: at most `max_usd` per `period`; past `soft_usd` (when set) a webhook is
/// told once per period, and calls go on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// The most that may be spent in a period.
    pub max_usd: Usd,
    /// When spending starts again from zero.
    #[serde(default)]
    pub period: Period,
    /// A warning threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_usd: Option<Usd>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> Day {
        Day::parse(text).unwrap_or(Day(0))
    }

    #[test]
    fn days_round_trip_through_dates() {
        for text in [
            "1970-01-01",
            "2000-02-29",
            "2026-12-06",
            "2100-03-01",
            "1969-12-31",
        ] {
            assert_eq!(day(text).to_string(), text);
        }
        assert_eq!(Day::of_ms(0).to_string(), "1970-01-01");
        assert_eq!(Day::of_ms(-1).to_string(), "1969-12-31");
        assert_eq!(Day::of_ms(1_765_065_600_000).to_string(), "2025-12-07");
        for bad in ["2026-02-29", "2026-13-01", "2026-1-01", "20261201", ""] {
            assert!(Day::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn periods_start_and_reset_on_calendar_boundaries() {
        // 2026-12-06 is a Sunday.
        let sunday = day("2026-12-06");
        assert_eq!(Period::Daily.start(sunday), sunday);
        assert_eq!(Period::Daily.next_start(sunday), Some(day("2026-12-07")));
        assert_eq!(Period::Weekly.start(sunday), day("2026-11-30"));
        assert_eq!(Period::Weekly.next_start(sunday), Some(day("2026-12-07")));
        assert_eq!(Period::Weekly.start(day("2026-12-07")), day("2026-12-07"));
        assert_eq!(Period::Monthly.start(sunday), day("2026-12-01"));
        assert_eq!(Period::Monthly.next_start(sunday), Some(day("2027-01-01")));
        assert!(Period::None.start(sunday) < day("1900-01-01"));
        assert_eq!(Period::None.next_start(sunday), None);
    }

    #[test]
    fn budgets_read_from_config_or_json() {
        let budget: Budget =
            serde_json::from_str(r#"{"max_usd": "25", "period": "weekly", "soft_usd": 20}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(budget.max_usd.to_string(), "25");
        assert_eq!(budget.period, Period::Weekly);
        assert!(serde_json::from_str::<Budget>(r#"{"max_usd": 1, "every": "day"}"#).is_err());
    }
}
