//! The access tokens the token endpoint issued, with their expiry, shared by the routes of one
//! router. Expired tokens are remembered a while longer, so that a late call is told its token
//! expired rather than that it is unknown.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::ids;

/// How long an expired token is remembered.
const KEEP_EXPIRED: Duration = Duration::from_secs(3600);

/// What the mock knows of a bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Issued here and not expired.
    Valid,
    /// Issued here, expired.
    Expired,
    /// Never issued here (or expired long ago).
    Unknown,
}

/// Issued tokens and when each expires.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    issued: Mutex<HashMap<String, Instant>>,
}

impl Tokens {
    /// A new `ya29.mock-…` token valid for `lifetime`.
    pub(crate) fn issue(&self, lifetime: Duration) -> String {
        let token = ids::new("ya29.mock-", 40);
        let now = Instant::now();
        let mut issued = self.issued.lock().unwrap_or_else(PoisonError::into_inner);
        issued.retain(|_, expires| now.saturating_duration_since(*expires) < KEEP_EXPIRED);
        issued.insert(token.clone(), now + lifetime);
        token
    }

    /// Whether `token` may be used now.
    pub(crate) fn check(&self, token: &str) -> Check {
        let issued = self.issued.lock().unwrap_or_else(PoisonError::into_inner);
        match issued.get(token) {
            Some(expires) if Instant::now() < *expires => Check::Valid,
            Some(_) => Check::Expired,
            None => Check::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_valid_until_they_expire() {
        let tokens = Tokens::default();
        let lasting = tokens.issue(Duration::from_secs(3599));
        let expired = tokens.issue(Duration::ZERO);
        assert!(lasting.starts_with("ya29.mock-"), "{lasting}");
        assert_ne!(lasting, expired);
        assert_eq!(tokens.check(&lasting), Check::Valid);
        assert_eq!(tokens.check(&expired), Check::Expired);
        assert_eq!(tokens.check("ya29.other"), Check::Unknown);
    }
}
