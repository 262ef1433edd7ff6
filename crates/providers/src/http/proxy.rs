//! Egress through an HTTP proxy, as `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`
//! (or their lower-case forms) say, the way curl and the Python HTTP clients read them:
//! `https` upstreams are reached through a `CONNECT` tunnel (TLS end to end), `http` ones by
//! sending the proxy absolute-form requests. Credentials in the proxy URL
//! (`http://user:pass@proxy:3128`) go as `Proxy-Authorization: Basic`.

use std::io;
use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::warn;

use super::Origin;

/// The largest answer head a proxy may send to a `CONNECT`.
const MAX_CONNECT_ANSWER: usize = 16 * 1024;

/// The proxies in force, read once when the client is built.
#[derive(Debug, Default)]
pub(super) struct Proxies {
    http: Option<Proxy>,
    https: Option<Proxy>,
    bypass: NoProxy,
}

/// One proxy server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Proxy {
    pub(super) host: Box<str>,
    pub(super) port: u16,
    /// `Basic …` from the URL's credentials, marked sensitive.
    pub(super) authorization: Option<HeaderValue>,
}

impl Proxies {
    /// The proxies the process environment names.
    pub(super) fn from_env() -> Proxies {
        Proxies::from_lookup(|name| std::env::var(name).ok())
    }

    /// The proxies `lookup` (an environment) names; unusable values are logged and ignored.
    pub(super) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Proxies {
        let var = |name: &str| {
            lookup(&name.to_ascii_lowercase())
                .or_else(|| lookup(name))
                .filter(|value| !value.trim().is_empty())
        };
        let parse = |name: &str| {
            let value = var(name)?;
            let proxy = Proxy::parse(value.trim());
            if proxy.is_none() {
                warn!(
                    variable = name,
                    "Ignoring a proxy setting that is not an http://host:port URL"
                );
            }
            proxy
        };
        let all = parse("ALL_PROXY");
        Proxies {
            http: parse("HTTP_PROXY").or_else(|| all.clone()),
            https: parse("HTTPS_PROXY").or(all),
            bypass: var("NO_PROXY")
                .map(|list| NoProxy::parse(&list))
                .unwrap_or_default(),
        }
    }

    /// The proxy for calls to `origin`, if any.
    pub(super) fn for_origin(&self, origin: &Origin) -> Option<&Proxy> {
        let proxy = if origin.https {
            self.https.as_ref()
        } else {
            self.http.as_ref()
        }?;
        (!self.bypass.matches(&origin.host)).then_some(proxy)
    }

    /// Whether any proxy is set (when none is, calls skip the lookup).
    pub(super) fn any(&self) -> bool {
        self.http.is_some() || self.https.is_some()
    }
}

impl Proxy {
    fn parse(text: &str) -> Option<Proxy> {
        // `proxy:3128` without a scheme means http, as curl reads it.
        let with_scheme = if text.contains("://") {
            text.to_owned()
        } else {
            format!("http://{text}")
        };
        let url = url::Url::parse(&with_scheme).ok()?;
        if url.scheme() != "http" {
            return None;
        }
        let host = super::host_of(&url)?;
        let authorization = if url.username().is_empty() {
            None
        } else {
            let decode = |part: &str| {
                percent_encoding::percent_decode_str(part)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            let user = decode(url.username());
            let password = decode(url.password().unwrap_or_default());
            let mut value = HeaderValue::try_from(format!(
                "Basic {}",
                STANDARD.encode(format!("{user}:{password}"))
            ))
            .ok()?;
            value.set_sensitive(true);
            Some(value)
        };
        Some(Proxy {
            host: host.into(),
            port: url.port_or_known_default()?,
            authorization,
        })
    }
}

/// Hosts that are reached directly whatever the proxy settings.
#[derive(Debug, Default)]
struct NoProxy {
    everything: bool,
    domains: Vec<String>,
    networks: Vec<(IpAddr, u8)>,
}

impl NoProxy {
    /// A comma-separated list of `*`, host names, `.domain` suffixes, IP addresses and CIDR
    /// ranges.
    fn parse(list: &str) -> NoProxy {
        let mut bypass = NoProxy::default();
        for entry in list
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
        {
            if entry == "*" {
                bypass.everything = true;
            } else if let Some((address, bits)) = entry.split_once('/') {
                if let (Ok(address), Ok(bits)) = (address.parse::<IpAddr>(), bits.parse::<u8>()) {
                    bypass.networks.push((address, bits));
                }
            } else if let Ok(address) = entry.trim_matches(['[', ']']).parse::<IpAddr>() {
                let bits = if address.is_ipv4() { 32 } else { 128 };
                bypass.networks.push((address, bits));
            } else {
                bypass.domains.push(
                    entry
                        .trim_start_matches("*.")
                        .trim_start_matches('.')
                        .to_ascii_lowercase(),
                );
            }
        }
        bypass
    }

    fn matches(&self, host: &str) -> bool {
        if self.everything {
            return true;
        }
        if let Ok(address) = host.parse::<IpAddr>() {
            return self
                .networks
                .iter()
                .any(|&(network, bits)| contains(network, bits, address));
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.domains.iter().any(|domain| {
            host == *domain
                || host
                    .strip_suffix(domain.as_str())
                    .is_some_and(|rest| rest.ends_with('.'))
        })
    }
}

/// Whether `address` is in `network/bits`.
fn contains(network: IpAddr, bits: u8, address: IpAddr) -> bool {
    let (network, address, width) = match (network, address) {
        (IpAddr::V4(network), IpAddr::V4(address)) => (
            u128::from(network.to_bits()),
            u128::from(address.to_bits()),
            32,
        ),
        (IpAddr::V6(network), IpAddr::V6(address)) => (network.to_bits(), address.to_bits(), 128),
        _ => return false,
    };
    let bits = u32::from(bits.min(width));
    if bits == 0 {
        return true;
    }
    let shift = u32::from(width) - bits;
    network >> shift == address >> shift
}

/// Asks `proxy` (connected as `stream`) for a tunnel to `origin`.
pub(super) async fn tunnel(
    stream: &mut TcpStream,
    origin: &Origin,
    proxy: &Proxy,
) -> io::Result<()> {
    let authority = if origin.host.contains(':') {
        format!("[{}]:{}", origin.host, origin.port)
    } else {
        format!("{}:{}", origin.host, origin.port)
    };
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(authorization) = &proxy.authorization {
        request.push_str("Proxy-Authorization: ");
        request.push_str(authorization.to_str().unwrap_or_default());
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;

    let mut answer = Vec::with_capacity(512);
    loop {
        let mut chunk = [0u8; 1024];
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the proxy closed the connection before answering CONNECT",
            ));
        }
        answer.extend_from_slice(&chunk[..read]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&answer) {
            Ok(httparse::Status::Complete(_)) => {
                return match response.code {
                    Some(200..=299) => Ok(()),
                    code => Err(io::Error::other(format!(
                        "the proxy refused the tunnel to {authority} (HTTP {})",
                        code.unwrap_or_default()
                    ))),
                };
            }
            Ok(httparse::Status::Partial) if answer.len() < MAX_CONNECT_ANSWER => {}
            Ok(httparse::Status::Partial) | Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the proxy's answer to CONNECT is not HTTP",
                ));
            }
        }
    }
}
