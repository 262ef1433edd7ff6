//! The resource path of a Gemini call, `models/{model}:{method}`: axum cannot route on a `:`
//! inside a segment, so the routes capture everything after `models/` and it is split here.
//!
//! The model segment carries the mock's options. `?` and `&` do not survive in a URL path
//! unless percent-encoded (`echo%3Ffail%3D500`), so the segment may also spell them `;` and
//! `,` (`echo;fail=500,retry_after=3`); [`options_model`] turns either spelling into the
//! `echo?fail=500&retry_after=3` form the option parser reads.

use std::borrow::Cow;

/// The two generation methods the mock serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// `:generateContent`: one JSON response.
    Generate,
    /// `:streamGenerateContent`: an event stream (with `?alt=sse`).
    Stream,
}

/// A split resource path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target<'a> {
    /// The model as written in the path (percent-decoded), options included.
    pub model: &'a str,
    /// The called method.
    pub method: Method,
}

/// Why a path names nothing the mock serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathError {
    /// No `:method` suffix, or an empty model.
    Malformed,
    /// A method other than the two generation methods (`countTokens`, `embedContent`, …).
    UnknownMethod,
}

impl<'a> Target<'a> {
    /// Splits `rest`, the path after `models/`, at its last `:`.
    pub(crate) fn parse(rest: &'a str) -> Result<Self, PathError> {
        let rest = rest.trim_start_matches('/');
        let (model, method) = rest.rsplit_once(':').ok_or(PathError::Malformed)?;
        if model.is_empty() {
            return Err(PathError::Malformed);
        }
        let method = match method {
            "generateContent" => Method::Generate,
            "streamGenerateContent" => Method::Stream,
            _ => return Err(PathError::UnknownMethod),
        };
        Ok(Self { model, method })
    }
}

/// The model string in the option parser's spelling: the first `?` or `;` starts the options,
/// and `&`, `,` or `;` separate them.
pub(crate) fn options_model(model: &str) -> Cow<'_, str> {
    match model.split_once(['?', ';']) {
        Some((name, options)) => Cow::Owned(format!("{name}?{}", options.replace([',', ';'], "&"))),
        None => Cow::Borrowed(model),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_last_colon() {
        assert_eq!(
            Target::parse("gemini-2.5-flash:generateContent"),
            Ok(Target {
                model: "gemini-2.5-flash",
                method: Method::Generate
            })
        );
        assert_eq!(
            Target::parse("echo;fail=500,retry_after=3:streamGenerateContent"),
            Ok(Target {
                model: "echo;fail=500,retry_after=3",
                method: Method::Stream
            })
        );
        // A colon inside the model (a tuned model's name) stays in the model.
        assert_eq!(
            Target::parse("ns:model:generateContent").map(|target| target.model),
            Ok("ns:model")
        );
    }

    #[test]
    fn rejects_paths_without_a_served_method() {
        assert_eq!(Target::parse("echo"), Err(PathError::Malformed));
        assert_eq!(Target::parse(":generateContent"), Err(PathError::Malformed));
        assert_eq!(
            Target::parse("echo:countTokens"),
            Err(PathError::UnknownMethod)
        );
    }

    #[test]
    fn option_spellings_agree() {
        assert_eq!(options_model("gemini-2.5-flash"), "gemini-2.5-flash");
        assert_eq!(
            options_model("echo;fail=500,retry_after=3"),
            "echo?fail=500&retry_after=3"
        );
        assert_eq!(
            options_model("echo?fail=500&tokens=2"),
            "echo?fail=500&tokens=2"
        );
        assert_eq!(
            options_model("echo?fail=500,tokens=2"),
            "echo?fail=500&tokens=2"
        );
    }

    #[test]
    fn options_parse_from_the_path() {
        use axum::http::HeaderMap;

        use crate::options::{Fault, Options};

        let target =
            Target::parse("echo;fail=429,retry_after=3,tokens=2:generateContent").expect("splits");
        let options =
            Options::parse(&options_model(target.model), &HeaderMap::new()).expect("parses");
        assert_eq!(options.fail, Some(Fault::Status(429)));
        assert_eq!(options.retry_after, 3);
        assert_eq!(options.tokens, Some(2));

        // The percent-decoded `?` form parses the same.
        let options = Options::parse(
            &options_model("echo?fail=429&retry_after=3"),
            &HeaderMap::new(),
        )
        .expect("parses");
        assert_eq!(options.fail, Some(Fault::Status(429)));
        assert_eq!(options.retry_after, 3);
    }
}
