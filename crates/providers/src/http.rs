//! The shared upstream HTTP client: rustls with ring, connection pooling, no per-request setup.

use std::time::Duration;

/// Builds the client every upstream call goes through.
///
/// Installs ring as the process's rustls provider first (reqwest is built without a default
/// provider, and building a TLS client without one fails).
pub fn client(connect_timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    // Installing twice is harmless: the second call returns the provider already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        // An upstream's redirect is reported, not followed: following it would resend the
        // provider key to wherever it points.
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// The client type every upstream call uses.
pub type Client = reqwest::Client;

/// The error building a [`Client`] can give.
pub type ClientError = reqwest::Error;
