//! Google Vertex AI: the OAuth token endpoint a service account trades its signed JWT at
//! (`POST /token`), and Gemini's `generateContent` / `streamGenerateContent` under a project and
//! location (`POST /v1/projects/{project}/locations/{location}/publishers/google/models/…`),
//! answered by the Gemini endpoint once the bearer token is checked.
//!
//! Vertex AI takes only OAuth 2 access tokens: a token must be one this router issued and has
//! not expired, anything else is Google's 401 `UNAUTHENTICATED`. The token endpoint verifies the
//! JWT (see [`assertion`]) and answers `{"access_token":"ya29.mock-…","expires_in":3599,
//! "token_type":"Bearer"}`; `x-mock-token-expires-in` or `?expires_in=` on its URL (so a client
//! that sends no mock headers can be pointed at `…/token?expires_in=2`) sets another lifetime.
//! <https://developers.google.com/identity/protocols/oauth2/service-account#httprest>,
//! <https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/projects.locations.publishers.models/generateContent>

mod assertion;
mod tokens;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;

use self::tokens::{Check, Tokens};
use crate::{Shared, clock, gemini, reply};

/// The JWT bearer grant (RFC 7523).
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google's token lifetime.
const DEFAULT_LIFETIME: u64 = 3599;
/// The longest lifetime a test may ask for.
const MAX_LIFETIME: u64 = 86_400;
/// The option header that sets the lifetime.
const LIFETIME_HEADER: &str = "x-mock-token-expires-in";

/// The routes' state: the mock's own, and the tokens issued.
#[derive(Debug, Clone)]
struct Vertex {
    shared: Shared,
    tokens: Arc<Tokens>,
}

/// The Vertex AI routes, with a token store of their own, to merge into the mock's router.
pub(crate) fn routes(shared: Shared) -> Router<Shared> {
    Router::new()
        .route("/token", post(token))
        .route(
            "/v1/projects/{project}/locations/{location}/publishers/google/models/{*rest}",
            post(generate),
        )
        .with_state(Vertex {
            shared,
            tokens: Arc::default(),
        })
}

/// The token request's form fields.
#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    assertion: Option<String>,
}

/// The token URL's query.
#[derive(Debug, Default, Deserialize)]
struct TokenParams {
    expires_in: Option<String>,
}

/// `POST /token`: a verified JWT assertion gets an access token.
async fn token(
    State(vertex): State<Vertex>,
    headers: HeaderMap,
    uri: Uri,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return oauth_error(
            "invalid_request",
            "The request must be an application/x-www-form-urlencoded POST.",
        );
    };
    let lifetime = headers
        .get(LIFETIME_HEADER)
        .map(|value| value.to_str().unwrap_or_default().trim().to_owned())
        .or_else(|| {
            Query::<TokenParams>::try_from_uri(&uri)
                .ok()
                .and_then(|Query(params)| params.expires_in)
        });
    let lifetime = match lifetime {
        None => DEFAULT_LIFETIME,
        Some(text) => match text.parse::<u64>() {
            Ok(seconds) if seconds <= MAX_LIFETIME => seconds,
            Ok(_) | Err(_) => {
                return oauth_error(
                    "invalid_request",
                    &format!(
                        "switchyard-mock: the token lifetime must be 0 to {MAX_LIFETIME} seconds, \
                         got `{text}`."
                    ),
                );
            }
        },
    };
    match form.grant_type.as_deref() {
        Some(GRANT_TYPE) => {}
        Some(other) => {
            return oauth_error(
                "unsupported_grant_type",
                &format!("Invalid grant_type: {other}"),
            );
        }
        None => return oauth_error("invalid_request", "Missing required parameter: grant_type"),
    }
    let Some(jwt) = form.assertion.as_deref() else {
        return oauth_error("invalid_request", "Missing required parameter: assertion");
    };
    if let Err(rejection) = assertion::verify(jwt, clock::unix_now()) {
        return oauth_error(rejection.error(), rejection.description());
    }
    let access_token = vertex.tokens.issue(Duration::from_secs(lifetime));
    let mut body = Vec::with_capacity(128);
    reply::write_json(
        &mut body,
        &json!({"access_token": access_token, "expires_in": lifetime, "token_type": "Bearer"}),
    );
    reply::json(StatusCode::OK, body)
}

/// The path parameter the Gemini endpoint needs (project and location are accepted as given).
#[derive(Debug, Deserialize)]
struct ModelPath {
    /// `{model}:{method}`.
    rest: String,
}

/// `POST /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:{method}`:
/// the bearer token is checked, then the Gemini endpoint answers.
async fn generate(
    State(vertex): State<Vertex>,
    path: Result<Path<ModelPath>, PathRejection>,
    request: Request,
) -> Response {
    let headers = request.headers();
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty());
    let refusal = match token {
        Some(token) => match vertex.tokens.check(token) {
            Check::Valid => None,
            Check::Expired => Some((INVALID_CREDENTIALS, "ACCESS_TOKEN_EXPIRED")),
            Check::Unknown => Some((INVALID_CREDENTIALS, "ACCESS_TOKEN_TYPE_UNSUPPORTED")),
        },
        None if headers.contains_key("x-goog-api-key") => {
            Some((API_KEY_UNSUPPORTED, "CREDENTIALS_MISSING"))
        }
        None => Some((MISSING_CREDENTIALS, "CREDENTIALS_MISSING")),
    };
    if let Some((message, reason)) = refusal {
        vertex.shared.counters.request();
        return unauthenticated(message, reason);
    }
    let rest = path.map(|Path(path)| Path(path.rest));
    gemini::models(State(vertex.shared), rest, request).await
}

const INVALID_CREDENTIALS: &str = "Request had invalid authentication credentials. Expected OAuth \
     2 access token, login cookie or other valid authentication credential. See \
     https://developers.google.com/identity/sign-in/web/devconsole-project.";
const MISSING_CREDENTIALS: &str = "Request is missing required authentication credential. \
     Expected OAuth 2 access token, login cookie or other valid authentication credential. See \
     https://developers.google.com/identity/sign-in/web/devconsole-project.";
const API_KEY_UNSUPPORTED: &str = "API keys are not supported by this API. Expected OAuth2 access \
     token or other authentication credentials that assert a principal. See \
     https://cloud.google.com/docs/authentication";

/// Google's 401, `{"error":{"code":401,"status":"UNAUTHENTICATED",…}}`, with an `ErrorInfo`
/// naming `reason`.
fn unauthenticated(message: &str, reason: &str) -> Response {
    let mut body = Vec::with_capacity(512);
    reply::write_json(
        &mut body,
        &json!({"error": {
            "code": 401,
            "message": message,
            "status": "UNAUTHENTICATED",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"service": "aiplatform.googleapis.com"},
            }],
        }}),
    );
    let mut response = reply::json(StatusCode::UNAUTHORIZED, body);
    reply::insert(
        &mut response,
        "www-authenticate",
        "Bearer realm=\"https://accounts.google.com/\"",
    );
    response
}

/// An OAuth error answer (RFC 6749 §5.2), always a 400 at Google's token endpoint.
fn oauth_error(error: &str, description: &str) -> Response {
    let mut body = Vec::with_capacity(128);
    reply::write_json(
        &mut body,
        &json!({"error": error, "error_description": description}),
    );
    reply::json(StatusCode::BAD_REQUEST, body)
}

#[cfg(test)]
mod tests;
