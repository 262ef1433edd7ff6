//! Access tokens for a service account: the JWT bearer exchange at the token endpoint and a
//! cache shared by every call, refreshed shortly before the token expires.
//!
//! Concurrent callers that find no usable token share one exchange (a [`Shared`] future) and
//! all get its outcome, error included: a burst of requests after expiry costs one round trip
//! to Google, not one each. A failed exchange is not cached; the next call tries again.
//! <https://developers.google.com/identity/protocols/oauth2/service-account#httprest>

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use switchyard_types::{ApiError, ErrorKind, Origin};
use tokio::time::Instant;

use super::account::ServiceAccount;
use super::jwt::assertion;
use crate::http::{Client, Error as HttpError, Response, Target};

/// A token is exchanged again this long before it expires, so that no call is sent with a
/// token that expires on the way.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// The longest an exchange may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest a token is cached, whatever `expires_in` says (Google's tokens last an hour).
const MAX_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Largest token endpoint answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, form-encoded. (The assertion
/// needs no encoding: base64url and `.` are all unreserved.)
const GRANT_TYPE: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";

/// One exchange, awaited by every caller that needs a token while it runs.
type Exchange = Shared<BoxFuture<'static, Result<Fresh, ApiError>>>;

/// What an exchange yields.
#[derive(Clone)]
struct Fresh {
    token: SecretString,
    /// When the exchange started (the token's lifetime counts from no earlier).
    started: Instant,
    /// `expires_in`.
    lifetime: Duration,
}

struct Cached {
    token: SecretString,
    /// From then on, a new token is fetched.
    refresh_at: Instant,
}

#[derive(Default)]
struct State {
    cached: Option<Cached>,
    pending: Option<Exchange>,
}

/// Access tokens of one service account, each cached until a minute before it expires.
/// Share it between calls (and threads) behind an `Arc`.
pub struct TokenSource {
    account: ServiceAccount,
    state: Mutex<State>,
    clock: Box<dyn Fn() -> Instant + Send + Sync>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// A source of tokens for `account`; nothing is fetched until the first
    /// [`token`](TokenSource::token).
    pub fn new(account: ServiceAccount) -> TokenSource {
        TokenSource {
            account,
            state: Mutex::default(),
            clock: Box::new(Instant::now),
        }
    }

    /// The same source reading the time from `clock` (tests move it past a token's expiry).
    #[cfg(test)]
    pub(super) fn with_clock(
        account: ServiceAccount,
        clock: impl Fn() -> Instant + Send + Sync + 'static,
    ) -> TokenSource {
        TokenSource {
            clock: Box::new(clock),
            ..TokenSource::new(account)
        }
    }

    /// The service account.
    pub fn account(&self) -> &ServiceAccount {
        &self.account
    }

    /// A bearer token for a request now: the cached one, or one exchanged through `client`
    /// (built by [`crate::http::client`]).
    ///
    /// Errors come from the upstream: `Authentication` when the token endpoint refuses the
    /// account (400, 401: a revoked or deleted key, a wrong clock), `BadGateway` when it
    /// cannot be reached or answers nonsense, `Timeout`, or the kind of its HTTP status.
    pub async fn token(&self, client: &Client) -> Result<SecretString, ApiError> {
        let exchange = {
            let mut state = self.lock();
            let now = (self.clock)();
            if let Some(cached) = &state.cached
                && now < cached.refresh_at
            {
                return Ok(cached.token.clone());
            }
            match &state.pending {
                Some(exchange) => exchange.clone(),
                None => {
                    let exchange = exchange(self.account.clone(), client.clone(), now)
                        .boxed()
                        .shared();
                    state.pending = Some(exchange.clone());
                    exchange
                }
            }
        };
        let outcome = exchange.clone().await;
        let mut state = self.lock();
        // The first caller back settles the exchange; the others find it settled.
        if state
            .pending
            .as_ref()
            .is_some_and(|pending| pending.ptr_eq(&exchange))
        {
            state.pending = None;
            if let Ok(fresh) = &outcome {
                state.cached = Some(Cached {
                    token: fresh.token.clone(),
                    refresh_at: fresh.started + fresh.lifetime.saturating_sub(REFRESH_MARGIN),
                });
            }
        }
        outcome.map(|fresh| fresh.token)
    }

    /// [`token`](TokenSource::token) as the value of an `Authorization` header,
    /// `Bearer …`, marked sensitive (never logged).
    pub async fn authorization(&self, client: &Client) -> Result<http::HeaderValue, ApiError> {
        let token = self.token(client).await?;
        let mut value = bearer(&token).ok_or_else(unusable_token)?;
        value.set_sensitive(true);
        Ok(value)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent between statements: a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn bearer(token: &SecretString) -> Option<http::HeaderValue> {
    http::HeaderValue::try_from(format!("Bearer {}", token.expose_secret())).ok()
}

/// The token endpoint's success answer.
#[derive(Deserialize)]
struct Granted {
    access_token: SecretString,
    /// Seconds; Google sends 3599. Without it, the token serves only the call that got it.
    expires_in: Option<u64>,
}

/// An OAuth error answer (RFC 6749 §5.2).
#[derive(Deserialize)]
struct Refused {
    error: Option<String>,
    error_description: Option<String>,
}

/// Signs an assertion and trades it for an access token.
async fn exchange(
    account: ServiceAccount,
    client: Client,
    started: Instant,
) -> Result<Fresh, ApiError> {
    let assertion = assertion(&account, SystemTime::now()).map_err(|error| {
        ApiError::new(
            ErrorKind::Internal,
            Origin::Internal,
            format!("Could not sign the Vertex AI token request: {error}"),
        )
        .with_code("request_signing_failed")
    })?;
    let target = Target::parse(account.token_uri()).map_err(|_| {
        malformed("The Vertex AI service account's token_uri is not an http(s) URL")
    })?;
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static("application/json"),
    );
    let body = Bytes::from(format!("grant_type={GRANT_TYPE}&assertion={assertion}"));
    let call = async {
        let response = client
            .post(&target, headers, body)
            .await
            .map_err(transport_error)?;
        let status = response.status().as_u16();
        let body = read_limited(response).await?;
        Ok::<_, ApiError>((status, body))
    };
    let (status, body) = tokio::time::timeout(EXCHANGE_TIMEOUT, call)
        .await
        .map_err(|_| exchange_timeout())??;
    if !(200..300).contains(&status) {
        return Err(refusal(status, &body));
    }
    let granted: Granted = serde_json::from_slice(&body).map_err(|_| {
        malformed("The Vertex AI token endpoint answered without a readable access token")
    })?;
    if granted.access_token.expose_secret().is_empty() || bearer(&granted.access_token).is_none() {
        return Err(unusable_token());
    }
    Ok(Fresh {
        token: granted.access_token,
        started,
        lifetime: Duration::from_secs(granted.expires_in.unwrap_or(0)).min(MAX_LIFETIME),
    })
}

async fn read_limited(mut response: Response) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(malformed(
                "The Vertex AI token endpoint's answer is larger than any token answer",
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A non-2xx answer. The OAuth `error` and `error_description` are Google's fixed texts
/// (`invalid_grant: Invalid JWT Signature.`), shortened and kept to one line.
pub(super) fn refusal(status: u16, body: &[u8]) -> ApiError {
    let detail = match serde_json::from_slice::<Refused>(body) {
        Ok(Refused {
            error: Some(error),
            error_description: Some(description),
        }) => format!(" ({}: {})", one_line(&error), one_line(&description)),
        Ok(Refused {
            error: Some(error),
            error_description: None,
        }) => format!(" ({})", one_line(&error)),
        Ok(_) | Err(_) => String::new(),
    };
    let (kind, message) = match status {
        400 | 401 => (
            ErrorKind::Authentication,
            format!("Google refused the Vertex AI service account's token request{detail}"),
        ),
        _ => (
            ErrorKind::from_status(status),
            format!("The Vertex AI token endpoint answered HTTP {status}{detail}"),
        ),
    };
    ApiError::upstream(kind, message).with_code("vertex_token_refused")
}

fn one_line(text: &str) -> String {
    text.chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn exchange_timeout() -> ApiError {
    ApiError::upstream(
        ErrorKind::Timeout,
        "The Vertex AI token endpoint did not answer in time",
    )
    .with_code("upstream_timeout")
}

fn transport_error(error: HttpError) -> ApiError {
    if error.is_timeout() {
        return exchange_timeout();
    }
    ApiError::upstream(
        ErrorKind::BadGateway,
        "Could not reach the Vertex AI token endpoint",
    )
    .with_code("upstream_unreachable")
}

fn malformed(message: &str) -> ApiError {
    ApiError::upstream(ErrorKind::BadGateway, message).with_code("upstream_malformed_response")
}

fn unusable_token() -> ApiError {
    malformed("The Vertex AI token endpoint answered an access token that cannot be sent")
}
