//! Per-request behaviour controls: parsed from the `model` string's query suffix
//! (`"echo?latency_ms=20&fail=500"`) and from `x-mock-<option>` headers, headers winning.
//!
//! Keys accept dashes or underscores (`latency-ms` is `latency_ms`). Unknown keys are ignored so
//! a client can pass a model string meant for a real provider; a known key with a bad value is
//! an [`OptionError`], answered with a 400 in the caller's wire format.

use std::fmt;
use std::time::Duration;

use axum::http::HeaderMap;

/// Prefix of the headers that carry options.
const HEADER_PREFIX: &str = "x-mock-";

/// The behaviour controls of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    /// Delay before the response status and headers are sent.
    pub latency: Duration,
    /// Streams: delay after the headers before the first content chunk.
    pub ttft: Duration,
    /// Streams: delay between content chunks.
    pub chunk_delay: Duration,
    /// Produce exactly this many completion tokens (`tok1 tok2 …`) instead of the echo.
    pub tokens: Option<u64>,
    /// `echo=request`: the content is the compact JSON of the request body.
    pub echo_request: bool,
    /// A fault to inject instead of (or into) the normal answer.
    pub fail: Option<Fault>,
    /// Seconds announced in `Retry-After` on a 429.
    pub retry_after: u64,
    /// Content chunks sent before a `cut` or `malformed` fault strikes.
    pub cut_after: usize,
    /// Prompt tokens reported as read from the provider's cache.
    pub cached_tokens: u64,
    /// Success answers announce this many requests left of 100 in the provider's rate-limit
    /// headers (`x-ratelimit-*`, `anthropic-ratelimit-*`).
    pub ratelimit_remaining: Option<u64>,
    /// OpenAI reasoning tokens reported in `completion_tokens_details`.
    pub reasoning_tokens: u64,
    /// Forces the finish reason.
    pub finish: Option<Finish>,
    /// `usage=none`: an OpenAI stream ends without a usage chunk even when the request asks for
    /// one (`stream_options.include_usage`), as llama.cpp's server does.
    pub no_stream_usage: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            ttft: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            tokens: None,
            echo_request: false,
            fail: None,
            retry_after: 1,
            cut_after: 2,
            cached_tokens: 0,
            ratelimit_remaining: None,
            reasoning_tokens: 0,
            finish: None,
            no_stream_usage: false,
        }
    }
}

/// A fault the mock injects, chosen with `fail=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Answer with this HTTP status (400–599) and the provider's error body.
    Status(u16),
    /// Never answer; the request ends when the client goes away or the server shuts down.
    Hang,
    /// Drop the connection without a valid response.
    Reset,
    /// Send `cut_after` content chunks (or part of the JSON), then abort the connection.
    Cut,
    /// Send `cut_after` content chunks, one event that is not JSON, then continue
    /// (non-stream: a 200 with a truncated JSON body).
    Malformed,
    /// A 200 whose answer a content filter withheld: Gemini's candidate with finish reason
    /// `SAFETY`, no content and safety ratings; elsewhere an empty content-filter answer.
    Safety,
    /// A 200 refusing the prompt: Gemini's response with no candidates and a
    /// `promptFeedback.blockReason`; elsewhere an empty content-filter answer.
    Blocked,
}

/// Why generation stopped, in format-neutral terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// Natural end, or a stop sequence matched.
    Stop,
    /// The token limit was reached.
    Length,
    /// The answer was withheld by a content filter (Anthropic: `refusal`).
    ContentFilter,
    /// The answer is a set of tool calls.
    ToolCalls,
}

/// A known option with a value it cannot take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OptionError {
    /// The option's key, normalized to underscores.
    pub key: String,
    /// The value as given.
    pub value: String,
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid mock option `{}`: `{}` is not an accepted value",
            self.key, self.value
        )
    }
}

impl Options {
    /// Parses the options of one request: first the `model` string's query suffix, then the
    /// `x-mock-*` headers, so a header overrides the same key in the model string.
    pub(crate) fn parse(model: &str, headers: &HeaderMap) -> Result<Self, OptionError> {
        let mut options = Self::default();
        if let Some((_, query)) = model.split_once('?') {
            for pair in query.split('&').filter(|pair| !pair.is_empty()) {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                options.set(key, value)?;
            }
        }
        for (name, value) in headers {
            let Some(key) = name.as_str().strip_prefix(HEADER_PREFIX) else {
                continue;
            };
            let value = value.to_str().map_err(|_| OptionError {
                key: normalize(key),
                value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            })?;
            options.set(key, value.trim())?;
        }
        Ok(options)
    }

    /// Applies one `key=value` pair; unknown keys are ignored.
    fn set(&mut self, key: &str, value: &str) -> Result<(), OptionError> {
        let key = normalize(key);
        let bad = || OptionError {
            key: key.clone(),
            value: value.to_owned(),
        };
        let number = || value.parse::<u64>().map_err(|_| bad());
        match key.as_str() {
            "latency_ms" => self.latency = Duration::from_millis(number()?),
            "ttft_ms" => self.ttft = Duration::from_millis(number()?),
            "chunk_delay_ms" => self.chunk_delay = Duration::from_millis(number()?),
            "tokens" => self.tokens = Some(number()?),
            "echo" => match value {
                "request" => self.echo_request = true,
                "text" | "last" | "" => self.echo_request = false,
                _ => return Err(bad()),
            },
            "fail" => self.fail = Some(parse_fault(value).ok_or_else(bad)?),
            "retry_after" => self.retry_after = number()?,
            "cut_after" => self.cut_after = usize::try_from(number()?).map_err(|_| bad())?,
            "cached_tokens" => self.cached_tokens = number()?,
            "ratelimit_remaining" => self.ratelimit_remaining = Some(number()?),
            "reasoning_tokens" => self.reasoning_tokens = number()?,
            "usage" => match value {
                "none" => self.no_stream_usage = true,
                "" | "stream" => self.no_stream_usage = false,
                _ => return Err(bad()),
            },
            "finish" => {
                self.finish = Some(match value {
                    "stop" => Finish::Stop,
                    "length" => Finish::Length,
                    "content_filter" => Finish::ContentFilter,
                    "tool_calls" => Finish::ToolCalls,
                    _ => return Err(bad()),
                });
            }
            _ => {}
        }
        Ok(())
    }
}

/// `latency-ms` and `latency_ms` name the same option.
fn normalize(key: &str) -> String {
    key.trim().replace('-', "_").to_ascii_lowercase()
}

fn parse_fault(value: &str) -> Option<Fault> {
    match value {
        "hang" => Some(Fault::Hang),
        "reset" => Some(Fault::Reset),
        "cut" => Some(Fault::Cut),
        "malformed" => Some(Fault::Malformed),
        "safety" => Some(Fault::Safety),
        "blocked" => Some(Fault::Blocked),
        status => status
            .parse::<u16>()
            .ok()
            .filter(|code| (400..=599).contains(code))
            .map(Fault::Status),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn plain_model_has_defaults() {
        let options = Options::parse("gpt-4o", &HeaderMap::new()).expect("parses");
        assert_eq!(options, Options::default());
    }

    #[test]
    fn model_suffix_sets_options() {
        let options = Options::parse(
            "echo?latency_ms=20&fail=500&tokens=3&chunk-delay-ms=5&unknown=x&finish=length",
            &HeaderMap::new(),
        )
        .expect("parses");
        assert_eq!(options.latency, Duration::from_millis(20));
        assert_eq!(options.chunk_delay, Duration::from_millis(5));
        assert_eq!(options.fail, Some(Fault::Status(500)));
        assert_eq!(options.tokens, Some(3));
        assert_eq!(options.finish, Some(Finish::Length));
    }

    #[test]
    fn header_wins_over_model_suffix() {
        let options = Options::parse(
            "echo?latency_ms=20&fail=500&cut_after=4",
            &headers(&[
                ("x-mock-latency-ms", "7"),
                ("x-mock-fail", "cut"),
                ("x-mock-echo", "request"),
                ("x-other", "ignored"),
            ]),
        )
        .expect("parses");
        assert_eq!(options.latency, Duration::from_millis(7));
        assert_eq!(options.fail, Some(Fault::Cut));
        assert_eq!(options.cut_after, 4);
        assert!(options.echo_request);
    }

    #[test]
    fn bad_values_are_errors() {
        let error = Options::parse("m?latency_ms=soon", &HeaderMap::new()).expect_err("rejects");
        assert_eq!(error.key, "latency_ms");
        assert!(Options::parse("m?fail=teapot", &HeaderMap::new()).is_err());
        assert!(Options::parse("m?fail=200", &HeaderMap::new()).is_err());
        assert!(Options::parse("m", &headers(&[("x-mock-tokens", "-1")])).is_err());
        assert!(Options::parse("m?finish=maybe", &HeaderMap::new()).is_err());
    }

    #[test]
    fn faults_parse() {
        for (text, fault) in [
            ("hang", Fault::Hang),
            ("reset", Fault::Reset),
            ("malformed", Fault::Malformed),
            ("safety", Fault::Safety),
            ("blocked", Fault::Blocked),
            ("529", Fault::Status(529)),
            ("429", Fault::Status(429)),
        ] {
            let options =
                Options::parse(&format!("m?fail={text}"), &HeaderMap::new()).expect("parses");
            assert_eq!(options.fail, Some(fault));
        }
    }
}
