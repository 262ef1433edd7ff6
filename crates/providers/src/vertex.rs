//! Google Vertex AI: Gemini models served under a Google Cloud project and location, called with
//! the same `generateContent` bodies as AI Studio (see [`gemini`](crate::gemini)) but
//! authenticated by an OAuth 2 access token that a service account obtains for itself.
//!
//! The service account signs a JWT (RS256, with `ring`, already linked for TLS) and exchanges it
//! at the key file's `token_uri` for an access token of about an hour, which is cached and
//! shared by every call until shortly before it expires.
//!
//! # Layout
//! - `account`: [`ServiceAccount`], the JSON key file Google issues, and [`VertexError`].
//! - `jwt`: [`assertion`], the signed JWT a service account trades for an access token.
//! - `token`: [`TokenSource`], the exchange and the token cache.
//!
//! <https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/projects.locations.publishers.models/generateContent>,
//! <https://developers.google.com/identity/protocols/oauth2/service-account#httprest>

mod account;
mod jwt;
mod token;

pub use account::{DEFAULT_TOKEN_URI, ServiceAccount, VertexError};
pub use jwt::{SCOPE, assertion};
pub use token::TokenSource;

/// The path of a project's Google publisher models in `location`:
/// `/v1/projects/{project}/locations/{location}/publishers/google`. A host in front of it makes
/// the API base (see [`api_base`]; the mock serves the same path).
pub fn resource_path(project: &str, location: &str) -> String {
    format!("/v1/projects/{project}/locations/{location}/publishers/google")
}

/// The API base of `project` in `location`, which `/` +
/// [`gemini::method_path`](crate::gemini::method_path) completes: the regional endpoint
/// `https://{location}-aiplatform.googleapis.com` + [`resource_path`], or for the location
/// `global` the global endpoint `https://aiplatform.googleapis.com`.
pub fn api_base(project: &str, location: &str) -> String {
    let path = resource_path(project, location);
    if location == "global" {
        format!("https://aiplatform.googleapis.com{path}")
    } else {
        format!("https://{location}-aiplatform.googleapis.com{path}")
    }
}

#[cfg(test)]
mod tests;
