//! What upstreams say about their rate limits: how long to wait after a refusal
//! ([`retry_after`]) and how much of the limit is left ([`Headroom`]).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long an upstream asks the caller to wait: `retry-after-ms`, `retry-after` (seconds),
/// else the reset time of whichever limit it reports exhausted (OpenAI's
/// `x-ratelimit-reset-*` durations such as `6m0s`, Anthropic's `anthropic-ratelimit-*-reset`
/// RFC 3339 times).
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name)?.to_str().ok().map(str::trim);
    if let Some(ms) = text("retry-after-ms").and_then(seconds) {
        return Some(ms / 1000);
    }
    if let Some(wait) = text("retry-after").and_then(seconds) {
        return Some(wait);
    }
    let exhausted =
        |remaining: &str| text(remaining).and_then(|n| n.parse::<f64>().ok()) == Some(0.0);
    let mut wait: Option<Duration> = None;
    for limit in ["requests", "tokens"] {
        if exhausted(&format!("x-ratelimit-remaining-{limit}"))
            && let Some(reset) = text(&format!("x-ratelimit-reset-{limit}")).and_then(go_duration)
        {
            wait = Some(wait.map_or(reset, |wait| wait.max(reset)));
        }
    }
    for limit in ["requests", "tokens", "input-tokens", "output-tokens"] {
        if exhausted(&format!("anthropic-ratelimit-{limit}-remaining"))
            && let Some(reset) =
                text(&format!("anthropic-ratelimit-{limit}-reset")).and_then(until_rfc3339)
        {
            wait = Some(wait.map_or(reset, |wait| wait.max(reset)));
        }
    }
    wait
}

/// A non-negative number of seconds below a billion (about 31 years), as an upstream writes it
/// in a header or body. Anything else (negative, huge, NaN, `inf`) is no duration at all:
/// upstream numbers are never trusted to fit.
pub(crate) fn seconds(text: &str) -> Option<Duration> {
    let value: f64 = text.trim().parse().ok()?;
    seconds_f64(value)
}

/// [`seconds`] of a number already read.
pub(crate) fn seconds_f64(value: f64) -> Option<Duration> {
    if !(0.0..1e9).contains(&value) {
        return None;
    }
    Duration::try_from_secs_f64(value).ok()
}

/// A duration as OpenAI writes it: `1s`, `6m0s`, `300ms`, `1h2m3.5s`.
fn go_duration(text: &str) -> Option<Duration> {
    let mut total = 0.0;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit..];
    }
    seconds_f64(total)
}

/// The time from now until an RFC 3339 instant (`2026-11-27T15:10:00Z`, offsets allowed);
/// zero for an instant already past; at most a billion seconds, however far ahead it is.
fn until_rfc3339(text: &str) -> Option<Duration> {
    let at = rfc3339_unix(text)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    Duration::try_from_secs_f64((at - now).clamp(0.0, 1e9)).ok()
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp.
fn rfc3339_unix(text: &str) -> Option<f64> {
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut date = date.splitn(3, '-');
    let year: i64 = date.next()?.parse().ok()?;
    let month: i64 = date.next()?.parse().ok()?;
    let day: i64 = date.next()?.parse().ok()?;
    let (clock, offset) = match time.find(['Z', 'z', '+', '-']) {
        Some(at) => (&time[..at], &time[at..]),
        None => return None,
    };
    let mut clock = clock.splitn(3, ':');
    let hour: f64 = clock.next()?.parse().ok()?;
    let minute: f64 = clock.next()?.parse().ok()?;
    let second: f64 = clock.next()?.parse().ok()?;
    let offset_seconds = match offset {
        "Z" | "z" => 0.0,
        signed => {
            let sign = if signed.starts_with('-') { -1.0 } else { 1.0 };
            let (hours, minutes) = signed[1..].split_once(':')?;
            sign * (hours.parse::<f64>().ok()? * 3600.0 + minutes.parse::<f64>().ok()? * 60.0)
        }
    };
    // RFC 3339 years have four digits; anything else would overflow the arithmetic below.
    if !(0..=9999).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + hour * 3600.0 + minute * 60.0 + second - offset_seconds)
}

/// How much of its rate limit an upstream last said it has left, from the providers'
/// rate-limit headers (`x-ratelimit-remaining-*` and `-limit-*`, `anthropic-ratelimit-*`):
/// the smallest remaining share over requests and tokens. Shared by every worker.
#[derive(Debug)]
pub struct Headroom {
    /// Thousandths of the limit left.
    permille: AtomicU32,
}

impl Default for Headroom {
    fn default() -> Headroom {
        Headroom {
            permille: AtomicU32::new(1000),
        }
    }
}

/// `(remaining, limit)` header pairs, OpenAI's then Anthropic's.
const RATE_LIMIT_HEADERS: &[(&str, &str)] = &[
    (
        "x-ratelimit-remaining-requests",
        "x-ratelimit-limit-requests",
    ),
    ("x-ratelimit-remaining-tokens", "x-ratelimit-limit-tokens"),
    (
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-limit",
    ),
    (
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-limit",
    ),
    (
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-limit",
    ),
    (
        "anthropic-ratelimit-output-tokens-remaining",
        "anthropic-ratelimit-output-tokens-limit",
    ),
];

impl Headroom {
    /// The share of the limit left, 0..=1 (1 until an upstream says otherwise).
    pub fn fraction(&self) -> f64 {
        f64::from(self.permille.load(Ordering::Relaxed)) / 1000.0
    }

    /// Takes what an answer's headers say; headers without rate-limit figures change nothing.
    pub fn record(&self, headers: &http::HeaderMap) {
        // Most answers carry none: one look at the names spares a lookup per known header.
        if !headers.keys().any(|name| {
            let name = name.as_str();
            name.starts_with("x-ratelimit-") || name.starts_with("anthropic-ratelimit-")
        }) {
            return;
        }
        let number = |name: &str| -> Option<f64> {
            headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok()
        };
        let share = RATE_LIMIT_HEADERS
            .iter()
            .filter_map(|(remaining, limit)| {
                let (remaining, limit) = (number(remaining)?, number(limit)?);
                (limit > 0.0).then(|| (remaining / limit).clamp(0.0, 1.0))
            })
            .reduce(f64::min);
        if let Some(share) = share {
            // Rounded thousandths of a share in 0..=1 fit a u32.
            self.permille
                .store((share * 1000.0).round() as u32, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn retry_after_prefers_the_explicit_headers() {
        assert_eq!(
            retry_after(&headers(&[
                ("retry-after-ms", "1500"),
                ("retry-after", "9")
            ])),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "9")])),
            Some(Duration::from_secs(9))
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
    }

    #[test]
    fn retry_after_falls_back_to_the_exhausted_limits_reset() {
        let openai = headers(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "6m0s"),
            ("x-ratelimit-remaining-tokens", "1000"),
            ("x-ratelimit-reset-tokens", "1h"),
        ]);
        assert_eq!(retry_after(&openai), Some(Duration::from_secs(360)));
        assert_eq!(
            retry_after(&headers(&[
                ("x-ratelimit-remaining-tokens", "0"),
                ("x-ratelimit-reset-tokens", "300ms"),
            ])),
            Some(Duration::from_millis(300))
        );
        let far = headers(&[
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "2999-01-01T00:00:00Z"),
        ]);
        assert!(retry_after(&far).is_some_and(|wait| wait > Duration::from_secs(86_400)));
        let past = headers(&[
            ("anthropic-ratelimit-tokens-remaining", "0"),
            (
                "anthropic-ratelimit-tokens-reset",
                "2001-01-01T00:00:00+02:00",
            ),
        ]);
        assert_eq!(retry_after(&past), Some(Duration::ZERO));
    }

    /// Regression: a reset time or wait no clock can hold panicked the request.
    #[test]
    fn absurd_upstream_numbers_are_ignored_or_clamped() {
        for value in ["1e300", "inf", "NaN", "-1", "18446744073709551616"] {
            assert_eq!(
                retry_after(&headers(&[("retry-after", value)])),
                None,
                "{value}"
            );
            assert_eq!(
                retry_after(&headers(&[("retry-after-ms", value)])),
                None,
                "{value}"
            );
        }
        let reset = |at: &'static str| {
            retry_after(&headers(&[
                ("anthropic-ratelimit-requests-remaining", "0"),
                ("anthropic-ratelimit-requests-reset", at),
            ]))
        };
        for at in [
            "9999-12-31T23:59:59Z",
            "2026-01-01T99999999999999999999:00:00Z",
        ] {
            assert_eq!(reset(at), Some(Duration::from_secs(1_000_000_000)), "{at}");
        }
        for at in [
            "99999999-01-01T00:00:00Z",
            "9223372036854775807-01-01T00:00:00Z",
            "-9223372036854775808-01-01T00:00:00Z",
            "2026-01-01TNaN:00:00Z",
        ] {
            assert_eq!(reset(at), None, "{at}");
        }
        let openai = headers(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "99999999999999999999h"),
        ]);
        assert_eq!(retry_after(&openai), None);
    }

    #[test]
    fn parses_rfc3339_and_go_durations() {
        assert_eq!(rfc3339_unix("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(rfc3339_unix("2024-03-01T12:00:00Z"), Some(1_709_294_400.0));
        assert_eq!(
            rfc3339_unix("2024-03-01T14:00:00+02:00"),
            Some(1_709_294_400.0)
        );
        assert_eq!(
            go_duration("1h2m3.5s"),
            Some(Duration::from_secs_f64(3723.5))
        );
        assert_eq!(go_duration("fast"), None);
    }

    #[test]
    fn headroom_is_the_smallest_remaining_share() {
        let headroom = Headroom::default();
        assert_eq!(headroom.fraction(), 1.0);
        headroom.record(&headers(&[("content-type", "application/json")]));
        assert_eq!(headroom.fraction(), 1.0, "no figures, no change");
        headroom.record(&headers(&[
            ("x-ratelimit-remaining-requests", "40"),
            ("x-ratelimit-limit-requests", "100"),
            ("x-ratelimit-remaining-tokens", "9000"),
            ("x-ratelimit-limit-tokens", "10000"),
        ]));
        assert_eq!(headroom.fraction(), 0.4);
        headroom.record(&headers(&[
            ("anthropic-ratelimit-requests-remaining", "5"),
            ("anthropic-ratelimit-requests-limit", "50"),
        ]));
        assert_eq!(headroom.fraction(), 0.1);
    }
}
