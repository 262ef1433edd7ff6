//! Anthropic Messages (`POST /v1/messages`), both as the dialect a client speaks and as the
//! dialect of an upstream.
//!
//! Client side: [`request::decode`] reads a client's body into the canonical request;
//! [`response::encode`], [`stream::Encoder`] and [`error::encode`] answer in Anthropic's shape.
//! Upstream side: [`request::encode`] builds the body sent to Anthropic; [`response::decode`],
//! [`stream::Decoder`] and [`error::decode`] read its answers. The HTTP call itself lives in
//! the shared client; [`headers`] gives the two headers Anthropic needs.
//!
//! <https://docs.anthropic.com/en/api/messages>, <https://docs.anthropic.com/en/docs/build-with-claude/streaming>

mod content;
pub mod error;
pub mod request;
pub mod response;
pub mod stream;

/// The `anthropic-version` header value this module's wire shapes follow.
pub const API_VERSION: &str = "2023-06-01";

/// The authentication and version headers of a request to Anthropic.
pub fn headers(api_key: &str) -> [(&'static str, String); 2] {
    [
        ("x-api-key", api_key.to_owned()),
        ("anthropic-version", API_VERSION.to_owned()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_key_and_version() {
        assert_eq!(
            headers("sk-ant-test"),
            [
                ("x-api-key", "sk-ant-test".to_owned()),
                ("anthropic-version", "2023-06-01".to_owned()),
            ]
        );
    }
}
