//! Outbound HTTP for everything a customer can point the server at: webhooks,
//! `webhook_send`, `fetch`, `play` URLs, TTS providers. One client, shared, that
//! will not be turned against the inside (server-side request forgery):
//!
//! - a name is resolved here, and only public addresses are connected to: loopback,
//!   link-local (169.254.0.0/16, the cloud metadata service), private, shared,
//!   multicast, unspecified and the server's own addresses are refused, unless the
//!   operator allowed their block (`--allow-outbound-to`);
//! - an address written in the URL (`http://127.0.0.1/`, `http://0x7f000001/`, which
//!   the URL parser reads as 127.0.0.1) is checked the same way;
//! - every redirect is checked again (at most five);
//! - bodies are read with a cap ([`Outbound::read_capped`]): a 1.5 GB answer is cut
//!   off at the cap, never held in memory.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The largest body read from a fetched URL (`fetch`, `webhook_send`'s answer).
pub const MAX_FETCHED_BODY: usize = 1 << 20;
/// The largest prompt downloaded for `play` (or made by a TTS provider).
pub const MAX_PROMPT: usize = 20 << 20;
/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// Why an outbound request was not made or not read.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The URL is not an http(s) URL.
    #[error("{0}: not an http or https URL")]
    Scheme(String),
    /// The name has no address.
    #[error("{0}: no address")]
    NoAddress(String),
    /// It points inside (loopback, private, link-local, our own address).
    #[error(
        "{0}: refused, it is not a public address (the operator may allow it with --allow-outbound-to)"
    )]
    Internal(String),
    /// The body is larger than allowed.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    /// The answer is not of a type that can be used.
    #[error("the answer's content type {0:?} is not {1}")]
    ContentType(String, &'static str),
    /// The request failed on the way.
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    /// What came could not be stored.
    #[error("storing the answer: {0}")]
    Io(#[from] std::io::Error),
}

/// What may be reached.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    /// Blocks allowed although not public.
    pub allowed: Vec<ipnet::IpNet>,
    /// The server's own addresses (refused unless allowed).
    pub own: Vec<IpAddr>,
}

impl OutboundPolicy {
    /// Whether a connection to `ip` may be made.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if self.allowed.iter().any(|n| n.contains(&ip)) {
            return true;
        }
        !is_internal(ip) && !self.own.iter().any(|o| canonical(*o) == ip)
    }

    /// The addresses of `host` (a literal, or a name looked up once) that may be
    /// reached, at `port`: an error when it has none (`NoAddress`) or only inside
    /// ones (`Internal`). For HTTP and for calls dialled to SIP addresses alike.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, OutboundError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let found: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port)).await?.collect(),
        };
        let permitted: Vec<SocketAddr> = found
            .iter()
            .copied()
            .filter(|a| self.permits(a.ip()))
            .collect();
        if permitted.is_empty() {
            return Err(if found.is_empty() {
                OutboundError::NoAddress(bare.to_owned())
            } else {
                OutboundError::Internal(bare.to_owned())
            });
        }
        Ok(permitted)
    }

    /// Checks a URL's scheme and, when its host is an address, the address.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), OutboundError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OutboundError::Scheme(url.to_string()));
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(url::Host::Domain(_)) => return Ok(()),
            None => return Err(OutboundError::Scheme(url.to_string())),
        };
        if self.permits(ip) {
            Ok(())
        } else {
            Err(OutboundError::Internal(url.to_string()))
        }
    }
}

/// An IPv4 address written as IPv6 (`::ffff:127.0.0.1`) is judged as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Loopback, private (RFC 1918, RFC 4193), link-local, shared (RFC 6598),
/// unspecified, broadcast, multicast, documentation, benchmarking and reserved.
fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (18..20).contains(&b))
                || (a == 192 && b == 0 && c == 0)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8
                || v6.to_ipv4().is_some_and(|v4| is_internal(IpAddr::V4(v4)))
        }
    }
}

/// Resolves names and keeps only the addresses the policy permits.
struct GuardedResolver(Arc<OutboundPolicy>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let permitted = policy.resolve(name.as_str(), 0).await?;
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// The shared outbound client and its policy.
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    /// The same without redirects (webhooks: a receiver that moved says so with
    /// the status, the event is not re-sent elsewhere).
    direct: reqwest::Client,
    policy: Arc<OutboundPolicy>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("policy", &self.policy)
            .finish()
    }
}

impl Outbound {
    /// A client under `policy`.
    pub fn new(policy: OutboundPolicy) -> Result<Self, reqwest::Error> {
        // One crypto provider for the process: this fails only when one is installed
        // already (the binary's), which is what is wanted.
        if rustls::crypto::ring::default_provider()
            .install_default()
            .is_err()
        {
            tracing::trace!("a rustls crypto provider was installed already");
        }
        let policy = Arc::new(policy);
        let for_redirects = policy.clone();
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .no_proxy()
                .user_agent(concat!("voipbin-rs/", env!("CARGO_PKG_VERSION")))
                .dns_resolver(GuardedResolver(policy.clone()))
        };
        let direct = builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let client = builder()
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= MAX_REDIRECTS {
                    return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
                }
                match for_redirects.check_url(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(e) => attempt.error(e),
                }
            }))
            .build()?;
        Ok(Self {
            client,
            direct,
            policy,
        })
    }

    /// The policy.
    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    /// A request to `url` (checked first), giving up after `timeout`.
    pub fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        timeout: Duration,
    ) -> Result<reqwest::RequestBuilder, OutboundError> {
        self.checked(&self.client, method, url, timeout)
    }

    /// As [`Outbound::request`], without following redirects.
    pub fn request_direct(
        &self,
        method: reqwest::Method,
        url: &str,
        timeout: Duration,
    ) -> Result<reqwest::RequestBuilder, OutboundError> {
        self.checked(&self.direct, method, url, timeout)
    }

    /// A request on `client` once `url` has passed the policy.
    fn checked(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        url: &str,
        timeout: Duration,
    ) -> Result<reqwest::RequestBuilder, OutboundError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| OutboundError::Scheme(url.to_owned()))?;
        self.policy.check_url(&parsed)?;
        Ok(client.request(method, parsed).timeout(timeout))
    }

    /// Reads a body of at most `cap` bytes; a larger one is an error as soon as it is
    /// known (from Content-Length, or once `cap` bytes have come).
    pub async fn read_capped(
        mut resp: reqwest::Response,
        cap: usize,
    ) -> Result<Bytes, OutboundError> {
        let mut body = BytesMut::new();
        let mut read = CappedRead::start(&resp, cap)?;
        while let Some(chunk) = read.next(&mut resp).await? {
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    /// Streams a body of at most `cap` bytes into `file`; the number of bytes.
    pub async fn save_capped(
        mut resp: reqwest::Response,
        cap: usize,
        file: &mut tokio::fs::File,
    ) -> Result<usize, OutboundError> {
        use tokio::io::AsyncWriteExt;
        let mut read = CappedRead::start(&resp, cap)?;
        while let Some(chunk) = read.next(&mut resp).await? {
            file.write_all(&chunk).await?;
        }
        Ok(read.total)
    }
}

/// A body read chunk by chunk, failing as soon as it is known to pass its cap.
struct CappedRead {
    cap: usize,
    total: usize,
}

impl CappedRead {
    /// Refuses at once a body whose Content-Length passes `cap`.
    fn start(resp: &reqwest::Response, cap: usize) -> Result<Self, OutboundError> {
        if resp
            .content_length()
            .is_some_and(|n| n > u64::try_from(cap).unwrap_or(u64::MAX))
        {
            return Err(OutboundError::TooLarge(cap));
        }
        Ok(Self { cap, total: 0 })
    }

    /// The next chunk, counted; `None` at the end.
    async fn next(&mut self, resp: &mut reqwest::Response) -> Result<Option<Bytes>, OutboundError> {
        let Some(chunk) = resp.chunk().await? else {
            return Ok(None);
        };
        self.total += chunk.len();
        if self.total > self.cap {
            return Err(OutboundError::TooLarge(self.cap));
        }
        Ok(Some(chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).expect("url")
    }

    #[test]
    fn inside_addresses_are_refused_however_they_are_written() {
        let p = OutboundPolicy::default();
        for u in [
            "http://127.0.0.1:8080/metrics",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://127.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://172.16.0.1/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
        ] {
            assert!(
                matches!(p.check_url(&url(u)), Err(OutboundError::Internal(_))),
                "{u} was not refused"
            );
        }
        assert!(p.check_url(&url("https://203.0.114.5/hook")).is_ok());
        assert!(p.check_url(&url("https://example.com/hook")).is_ok());
        assert!(matches!(
            p.check_url(&url("file:///etc/passwd")),
            Err(OutboundError::Scheme(_))
        ));
    }

    #[test]
    fn allowed_blocks_and_own_addresses() {
        let p = OutboundPolicy {
            allowed: vec!["127.0.0.0/8".parse().expect("cidr")],
            own: vec!["203.0.114.9".parse().expect("ip")],
        };
        assert!(p.check_url(&url("http://127.0.0.1:9/")).is_ok());
        assert!(p.check_url(&url("http://203.0.114.9/")).is_err());
        assert!(p.check_url(&url("http://169.254.169.254/")).is_err());
    }

    #[tokio::test]
    async fn a_name_that_resolves_inside_is_refused() {
        let out = Outbound::new(OutboundPolicy::default()).expect("client");
        let err = out
            .request(
                reqwest::Method::GET,
                "http://localhost:9/",
                Duration::from_secs(2),
            )
            .expect("a name passes the first check")
            .send()
            .await
            .expect_err("localhost is loopback");
        let mut chain = Vec::new();
        let mut source: Option<&dyn std::error::Error> = Some(&err);
        while let Some(e) = source {
            chain.push(e.to_string());
            source = e.source();
        }
        assert!(
            chain.iter().any(|t| t.contains("not a public address")),
            "{chain:?}"
        );
    }
}
