//! The upstream HTTP client: HTTP/1.1 over hyper's connection API, TLS by rustls (ring, the
//! platform's roots), keep-alive connections pooled per origin.
//!
//! A connection has no task of its own: whoever holds it (a request waiting for its answer,
//! then the answer's body being read) drives it, in the same task. So an upstream answer
//! wakes the request that waits for it directly, with no hand-over between tasks, and a
//! connection is idle exactly when it is in the pool. A pooled connection the upstream closed
//! meanwhile is noticed when it is taken out (it is driven once, reads the close and is
//! dropped); a request that could not be written on a reused connection is sent again on
//! another, and one that was written never is. Redirects are never followed: following one
//! would resend the provider key to wherever it points.

mod io;
mod proxy;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use http_body_util::Full;
use hyper::body::{Body as _, Incoming};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use self::io::Io;
use self::proxy::{Proxies, Proxy};

/// How long a connection may sit unused in the pool.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The most idle connections kept per origin.
const MAX_IDLE_PER_ORIGIN: usize = 1024;

/// Builds the client every upstream call goes through.
pub fn client(connect_timeout: Duration) -> Result<Client, ClientError> {
    Client::new(connect_timeout)
}

/// The error building a [`Client`] can give.
pub type ClientError = rustls::Error;

/// A pool of upstream connections; clones share it.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

struct Shared {
    connect_timeout: Duration,
    tls: Arc<rustls::ClientConfig>,
    proxies: Proxies,
    idle: Mutex<HashMap<Origin, Vec<Idle>>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("connect_timeout", &self.shared.connect_timeout)
            .finish_non_exhaustive()
    }
}

/// Where a connection goes: scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Origin {
    https: bool,
    /// A name or an IP address (IPv6 without brackets); shared, as every call clones it.
    host: Arc<str>,
    port: u16,
}

/// A URL parsed once into what a request to it needs.
#[derive(Debug, Clone)]
pub struct Target {
    url: url::Url,
    origin: Origin,
    /// The request target in origin form (`/path?query`).
    uri: Uri,
    /// The `Host` header.
    host: HeaderValue,
}

/// A URL the client cannot call.
#[derive(Debug, thiserror::Error)]
#[error("not an http(s) URL: {0}")]
pub struct InvalidUrl(String);

impl Target {
    /// Parses an `http` or `https` URL.
    pub fn parse(text: &str) -> Result<Target, InvalidUrl> {
        let invalid = || InvalidUrl(text.to_owned());
        let url = url::Url::parse(text).map_err(|_| invalid())?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(invalid()),
        };
        let host = host_of(&url).ok_or_else(invalid)?;
        let port = url.port_or_known_default().ok_or_else(invalid)?;
        let authority = &url[url::Position::BeforeHost..url::Position::AfterPort];
        let uri = url[url::Position::BeforePath..url::Position::AfterQuery]
            .parse::<Uri>()
            .map_err(|_| invalid())?;
        let host_header = HeaderValue::from_str(authority).map_err(|_| invalid())?;
        Ok(Target {
            origin: Origin {
                https,
                host: host.into(),
                port,
            },
            uri,
            host: host_header,
            url,
        })
    }

    /// The URL as text.
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }
}

/// A URL's host as something to connect to: a name, or an IP address (IPv6 without brackets).
fn host_of(url: &url::Url) -> Option<String> {
    Some(match url.host()? {
        url::Host::Domain(name) => name.to_owned(),
        url::Host::Ipv4(address) => address.to_string(),
        url::Host::Ipv6(address) => address.to_string(),
    })
}

impl std::str::FromStr for Target {
    type Err = InvalidUrl;

    fn from_str(text: &str) -> Result<Target, InvalidUrl> {
        Target::parse(text)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong with a call.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {source}")]
pub struct Error {
    kind: Kind,
    source: Box<dyn std::error::Error + Send + Sync>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Connect,
    Timeout,
    Request,
    Body,
    TooLarge,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Connect => "could not connect",
            Kind::Timeout => "timed out",
            Kind::Request => "the request failed",
            Kind::Body => "the answer's body broke",
            Kind::TooLarge => "the answer's body is larger than the limit",
        })
    }
}

impl Error {
    fn new(kind: Kind, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        Error {
            kind,
            source: source.into(),
        }
    }

    /// The connection could not be opened.
    pub fn is_connect(&self) -> bool {
        self.kind == Kind::Connect
    }

    /// A time limit of the client ran out (connecting).
    pub fn is_timeout(&self) -> bool {
        self.kind == Kind::Timeout
    }

    /// The answer's body broke off.
    pub fn is_body(&self) -> bool {
        self.kind == Kind::Body
    }

    /// The answer's body was larger than the caller's limit.
    pub fn is_too_large(&self) -> bool {
        self.kind == Kind::TooLarge
    }
}

type Driver = http1::Connection<TokioIo<Io>, Full<Bytes>>;

/// One connection: the handle requests go in by, and the state machine that must be polled
/// for anything to happen on it (`None` once it ended).
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    driver: Option<Driver>,
}

struct Idle {
    conn: Box<Conn>,
    since: Instant,
}

impl Conn {
    /// Runs `work` while driving the connection, in this task.
    async fn drive<F: Future>(driver: &mut Option<Driver>, work: F) -> F::Output {
        let mut work = pin!(work);
        poll_fn(|cx| {
            if let Some(connection) = driver
                && Pin::new(connection).poll(cx).is_ready()
            {
                *driver = None;
            }
            work.as_mut().poll(cx)
        })
        .await
    }

    async fn ready(&mut self) -> Result<(), hyper::Error> {
        Conn::drive(&mut self.driver, self.sender.ready()).await
    }

    fn usable(&self) -> bool {
        self.driver.is_some() && !self.sender.is_closed()
    }
}

impl Client {
    /// A client whose connection attempts (TCP and TLS) give up after `connect_timeout`,
    /// going through the proxies the environment names (see [`proxy`]).
    pub fn new(connect_timeout: Duration) -> Result<Client, ClientError> {
        Client::with_proxies(connect_timeout, Proxies::from_env())
    }

    fn with_proxies(connect_timeout: Duration, proxies: Proxies) -> Result<Client, ClientError> {
        Ok(Client {
            shared: Arc::new(Shared {
                connect_timeout,
                tls: io::tls_config()?,
                proxies,
                idle: Mutex::default(),
            }),
        })
    }

    /// POSTs `body` to `target` with `headers` (`Host` is added); returns once the answer's
    /// head arrived, whatever its status.
    pub async fn post(
        &self,
        target: &Target,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response, Error> {
        self.send(Method::POST, target, headers, body).await
    }

    /// Sends a `method` request with `body` to `target` (as [`Client::post`] does).
    pub async fn send(
        &self,
        method: Method,
        target: &Target,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response, Error> {
        let mut request = http::Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = target.uri.clone();
        *request.headers_mut() = headers;
        request
            .headers_mut()
            .insert(http::header::HOST, target.host.clone());
        let proxy = if self.shared.proxies.any() {
            self.shared.proxies.for_origin(&target.origin)
        } else {
            None
        };
        if let Some(proxy) = proxy
            && !target.origin.https
        {
            // A plain-HTTP proxy takes the whole URL as the request target.
            *request.uri_mut() = target
                .as_str()
                .parse()
                .map_err(|error| Error::new(Kind::Request, error))?;
            if let Some(authorization) = &proxy.authorization {
                request
                    .headers_mut()
                    .insert(http::header::PROXY_AUTHORIZATION, authorization.clone());
            }
        }
        loop {
            let (mut conn, reused) = match self.checkout(&target.origin) {
                Some(conn) => (conn, true),
                // Boxed: connecting (TLS above all) takes far more state than the rest of a
                // call, and most calls reuse a connection.
                None => (Box::pin(self.connect(&target.origin, proxy)).await?, false),
            };
            if let Err(error) = conn.ready().await {
                if reused {
                    continue;
                }
                return Err(Error::new(Kind::Request, error));
            }
            let sent = conn.sender.try_send_request(request);
            match Conn::drive(&mut conn.driver, sent).await {
                Ok(response) => {
                    let (parts, incoming) = response.into_parts();
                    return Ok(Response {
                        status: parts.status,
                        headers: parts.headers,
                        body: ResponseBody {
                            incoming,
                            conn: Some(conn),
                            client: self.clone(),
                            origin: target.origin.clone(),
                        },
                    });
                }
                Err(mut error) => match error.take_message() {
                    // Never written: the upstream has not seen it, so it may go again.
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(Error::new(Kind::Request, error.into_error())),
                },
            }
        }
    }

    /// An idle connection to `origin` that is still open, the most recently used first.
    fn checkout(&self, origin: &Origin) -> Option<Box<Conn>> {
        let now = Instant::now();
        let mut idle = self.lock();
        let list = idle.get_mut(origin)?;
        while let Some(entry) = list.pop() {
            if now.duration_since(entry.since) < IDLE_TIMEOUT && entry.conn.usable() {
                return Some(entry.conn);
            }
        }
        None
    }

    /// Puts a connection whose last answer was read to the end back in the pool.
    fn release(&self, origin: &Origin, conn: Box<Conn>) {
        if !conn.usable() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.lock();
        let list = match idle.get_mut(origin) {
            Some(list) => list,
            None => idle.entry(origin.clone()).or_default(),
        };
        list.retain(|entry| now.duration_since(entry.since) < IDLE_TIMEOUT);
        if list.len() < MAX_IDLE_PER_ORIGIN {
            list.push(Idle { conn, since: now });
        }
    }

    async fn connect(&self, origin: &Origin, proxy: Option<&Proxy>) -> Result<Box<Conn>, Error> {
        let open = async {
            let io = io::connect(origin, &self.shared.tls, proxy)
                .await
                .map_err(|error| Error::new(Kind::Connect, error))?;
            http1::handshake(TokioIo::new(io))
                .await
                .map_err(|error| Error::new(Kind::Connect, error))
        };
        let (sender, driver) = tokio::time::timeout(self.shared.connect_timeout, open)
            .await
            .map_err(|_| Error::new(Kind::Timeout, "connecting took too long"))??;
        Ok(Box::new(Conn {
            sender,
            driver: Some(driver),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Origin, Vec<Idle>>> {
        // The map is consistent between statements: a panic elsewhere leaves it usable.
        self.shared
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// An answer whose head has arrived; its body is read with [`Response::chunk`] or
/// [`Response::bytes`]. Dropping it before the end of the body closes the connection.
#[derive(Debug)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: ResponseBody,
}

struct ResponseBody {
    incoming: Incoming,
    /// Driven while the body is read; back to the pool at its end.
    conn: Option<Box<Conn>>,
    client: Client,
    origin: Origin,
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Response {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The next piece of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        let body = &mut self.body;
        loop {
            let incoming = &mut body.incoming;
            let frame = poll_fn(|cx| Pin::new(&mut *incoming).poll_frame(cx));
            let frame = match &mut body.conn {
                Some(conn) => Conn::drive(&mut conn.driver, frame).await,
                None => frame.await,
            };
            match frame {
                None => {
                    if let Some(conn) = body.conn.take() {
                        body.client.release(&body.origin, conn);
                    }
                    return Ok(None);
                }
                Some(Err(error)) => {
                    body.conn = None;
                    return Err(Error::new(Kind::Body, error));
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => return Ok(Some(data)),
                    // Trailers and empty frames carry nothing for the caller.
                    _ => {}
                },
            }
        }
    }

    /// The whole body, refused past `limit` bytes (`Error::is_too_large`). One chunk (the
    /// common case) is kept as it arrived, without a copy.
    pub async fn bytes(mut self, limit: usize) -> Result<Bytes, Error> {
        let too_large = || Error::new(Kind::TooLarge, format!("more than {limit} bytes"));
        let Some(first) = self.chunk().await? else {
            return Ok(Bytes::new());
        };
        if first.len() > limit {
            return Err(too_large());
        }
        let Some(second) = self.chunk().await? else {
            return Ok(first);
        };
        let mut body = BytesMut::with_capacity(first.len() + second.len());
        body.extend_from_slice(&first);
        let mut next = Some(second);
        while let Some(chunk) = next {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
            next = self.chunk().await?;
        }
        Ok(body.freeze())
    }

    /// At most `limit` bytes of the body; a broken body yields what arrived.
    pub async fn bytes_limited(mut self, limit: usize) -> Vec<u8> {
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = self.chunk().await {
            let room = limit.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= limit {
                break;
            }
        }
        body
    }
}
