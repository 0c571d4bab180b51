//! The provider API client: fetching a recording and deleting the provider's copy, over
//! HTTP/1.1 (reqwest) with TLS (rustls on ring), with credentials, a size limit, a timeout
//! and retries.
//!
//! Where a request may go: the URL of a recording comes in a webhook, so it is checked before
//! anything is sent. Only `https://`; only to a host on the provider's list ([`HostList`]: its
//! API and storage hosts); never to a private, loopback, link-local or otherwise non-public
//! address, checked on the addresses the name resolves to (reqwest's resolver is ours, and
//! the connection goes to those very addresses, so a second lookup cannot swap them) or on
//! the address a URL names; every redirect is followed here, not by reqwest, and checked the
//! same way, and credentials never leave the origin they were meant for. No proxy is taken
//! from the environment. [`Client::allow_private`] lifts the address check for tests against
//! local stand-ins, and for nothing else.
//!
//! Trust roots: the system's CA bundle (Debian's `ca-certificates`, the same file the SIP
//! trunks use), read once at start, plus an optional extra CA file from the config (a private
//! or test CA). Not `webpki-roots`: that would compile a second, frozen copy of the roots into
//! the binary, while the distribution's bundle is kept current by the system's updates; and
//! not `rustls-native-certs`: on Linux it reads the same files, through two more crates.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;

/// Largest recording fetched, in bytes (the store takes at most this much after conversion).
pub const MAX_FETCH_BYTES: usize = 8 * 1024 * 1024;
/// Largest answer body read for other requests (a DELETE's JSON).
const MAX_OTHER_BYTES: usize = 64 * 1024;
/// One attempt's time limit.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Redirects followed (a provider may answer the recording URL with one to its storage).
const MAX_REDIRECTS: usize = 3;

/// Where the system's CA bundle is looked for (Debian/Ubuntu first, then Fedora/RHEL, Alpine
/// and BSD layouts).
pub const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("unsupported URL (http:// or https:// with a host)")]
    Url,
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("TLS failed: {0}")]
    Tls(String),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("body larger than the limit or unreadable")]
    Body,
    #[error("timed out")]
    Timeout,
    #[error("too many redirects")]
    Redirects,
    #[error("refused: not an https:// URL")]
    NotHttps,
    #[error("refused: the host is not on the provider's list")]
    HostNotAllowed,
    #[error("refused: the host resolves to a private, loopback or link-local address")]
    PrivateAddress,
}

impl FetchError {
    /// Whether trying again may help (not for a refused URL, a client error or a bad body).
    fn retryable(&self) -> bool {
        match self {
            FetchError::Url
            | FetchError::Body
            | FetchError::Redirects
            | FetchError::NotHttps
            | FetchError::HostNotAllowed
            | FetchError::PrivateAddress => false,
            FetchError::Status(s) => *s == 404 || *s == 408 || *s == 429 || *s >= 500,
            FetchError::Connect(_) | FetchError::Tls(_) | FetchError::Timeout => true,
        }
    }
}

/// How a request authenticates to the provider's API.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    None,
    /// HTTP basic auth (Twilio: account SID and auth token).
    Basic(&'a str, &'a str),
    /// A bearer token (Telnyx API key, Vonage application JWT).
    Bearer(&'a str),
}

/// The request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Delete,
}

/// The hosts one provider's requests may go to: exact names (`api.twilio.com`, or an address
/// such as `127.0.0.1` for a local stand-in) or patterns with one `*` in a label
/// (`api-*.vonage.com`), where `*` stands for one or more letters, digits or hyphens inside
/// that label only (never a dot). The last two labels of a pattern hold no `*`, so no pattern
/// covers a whole top-level domain. Case-insensitive; ports are not part of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostList(Vec<String>);

/// A host list entry that is refused; each carries the entry (trimmed, in lower case).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostListError {
    /// Neither an address nor host name labels (with at most one `*` each, none in the last
    /// two).
    #[error("{pattern:?} is not a host name or a pattern such as api-*.example.com")]
    NotAHost { pattern: String },
    /// A pattern with fewer than three labels.
    #[error("{pattern:?}: a pattern needs at least three labels")]
    TooFewLabels { pattern: String },
}

/// Trust roots a [`Client`] cannot be built with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RootsError {
    /// A certificate in the extra CA file does not parse, or rustls refuses it.
    #[error("extra CA file: {reason}")]
    ExtraCa { reason: String },
    /// The extra CA file holds no certificate.
    #[error("extra CA file holds no certificate")]
    ExtraCaEmpty,
    /// Neither the system bundle (these paths were tried) nor the extra file gave a root.
    #[error("no CA certificates found (looked in {looked_in}); install ca-certificates or set an extra CA file")]
    NoRoots { looked_in: String },
    /// rustls has no protocol version to offer with its crypto provider.
    #[error("{reason}")]
    Protocol { reason: String },
    /// The HTTP client could not be set up with this TLS configuration.
    #[error("HTTP client: {reason}")]
    Client { reason: String },
}

impl HostList {
    /// A list from patterns; an error names the first bad one.
    pub fn new<I, S>(patterns: I) -> Result<HostList, HostListError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Vec::new();
        for p in patterns {
            let p = p.as_ref().trim().to_ascii_lowercase();
            let labels: Vec<&str> = p.split('.').collect();
            let label_ok = |l: &&str| {
                !l.is_empty()
                    && l.matches('*').count() <= 1
                    && l.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
            };
            let ip = p.parse::<std::net::IpAddr>().is_ok();
            let tail_has_star = labels.iter().rev().take(2).any(|l| l.contains('*'));
            if !(ip || (labels.iter().all(label_ok) && !(p.contains('*') && tail_has_star))) {
                return Err(HostListError::NotAHost { pattern: p });
            }
            if p.contains('*') && labels.len() < 3 {
                return Err(HostListError::TooFewLabels { pattern: p });
            }
            out.push(p);
        }
        Ok(HostList(out))
    }

    /// This list and one more exact host (the configured API's own).
    pub fn with_host(mut self, host: &str) -> HostList {
        let host = host.to_ascii_lowercase();
        if !self.0.contains(&host) {
            self.0.push(host);
        }
        self
    }

    /// Whether `host` (as written in a URL, without port or brackets) is on the list.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.0.iter().any(|p| pattern_matches(p, &host))
    }

    /// The patterns, for logs and docs.
    pub fn patterns(&self) -> &[String] {
        &self.0
    }
}

fn pattern_matches(pattern: &str, host: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == host;
    }
    let (mut p, mut h) = (pattern.split('.'), host.split('.'));
    loop {
        match (p.next(), h.next()) {
            (None, None) => return true,
            (Some(pl), Some(hl)) if label_matches(pl, hl) => {}
            _ => return false,
        }
    }
}

fn label_matches(pattern: &str, label: &str) -> bool {
    let Some((pre, post)) = pattern.split_once('*') else {
        return pattern == label;
    };
    let Some(middle) = label
        .strip_prefix(pre)
        .and_then(|rest| rest.strip_suffix(post))
    else {
        return false;
    };
    label.len() >= pre.len() + post.len()
        && !middle.is_empty()
        && middle
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// The host of an `http(s)://` URL, as [`HostList::allows`] takes it.
pub fn host_of(url: &str) -> Option<String> {
    let url = Url::parse(url).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    Some(match url.host()? {
        url::Host::Domain(d) => d.to_ascii_lowercase(),
        url::Host::Ipv4(a) => a.to_string(),
        url::Host::Ipv6(a) => a.to_string(),
    })
}

/// Whether an address is one the public internet routes: not private (RFC 1918, unique
/// local), loopback, link-local, shared (carrier-grade NAT), unspecified, broadcast,
/// multicast, documentation, benchmarking or reserved; IPv4 inside IPv6 (mapped, NAT64) is
/// judged as the IPv4 address it carries.
pub fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::{IpAddr, Ipv4Addr};
    fn v4(a: Ipv4Addr) -> bool {
        let [b0, b1, b2, _] = a.octets();
        !(a.is_private()
            || a.is_loopback()
            || a.is_link_local()
            || a.is_unspecified()
            || a.is_broadcast()
            || a.is_multicast()
            || a.is_documentation()
            || b0 == 0
            || (b0 == 100 && (64..128).contains(&b1))
            || (b0 == 192 && b1 == 0 && b2 == 0)
            || (b0 == 198 && (18..20).contains(&b1))
            || b0 >= 240)
    }
    match ip {
        IpAddr::V4(a) => v4(a),
        IpAddr::V6(a) => {
            if let Some(m) = a.to_ipv4_mapped() {
                return v4(m);
            }
            let s = a.segments();
            let [s0, s1, s2, s3, s4, s5, s6, s7] = s;
            // NAT64 (64:ff9b::/96): the IPv4 address in the last 32 bits.
            if [s0, s1, s2, s3, s4, s5] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [h6, l6] = s6.to_be_bytes();
                let [h7, l7] = s7.to_be_bytes();
                return v4(Ipv4Addr::new(h6, l6, h7, l7));
            }
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s0 & 0xfe00) == 0xfc00 // unique local
                || (s0 & 0xffc0) == 0xfe80 // link-local
                || (s0 & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (s0 == 0x2001 && s1 == 0x0db8) // documentation
                || (s0 == 0 && s1 == 0 && s2 == 0 && s3 == 0 && s4 == 0 && s5 == 0))
            // IPv4-compatible
        }
    }
}

/// An HTTP(S) client for the providers' APIs. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    /// Refuses a host name that resolves to a non-public address.
    public_only: reqwest::Client,
    /// Reaches any address (tests against local stand-ins only).
    any_address: reqwest::Client,
    /// Whether private, loopback and link-local addresses may be reached (tests only).
    allow_private: bool,
    /// Whether only `https://` is allowed (always, except in this module's own tests).
    https_only: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("fetch::Client")
            .field("allow_private", &self.allow_private)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client trusting the system's CA bundle (the first of [`SYSTEM_CA_BUNDLES`] found)
    /// and the certificates in `extra_ca_pem`. Fails when no root at all could be loaded or
    /// the extra PEM holds no certificate.
    pub fn new(extra_ca_pem: Option<&[u8]>) -> Result<Client, RootsError> {
        let system = SYSTEM_CA_BUNDLES
            .iter()
            .find_map(|p| std::fs::read(p).ok())
            .unwrap_or_default();
        Client::with_roots(&system, extra_ca_pem)
    }

    /// A client trusting exactly the certificates in `roots_pem` and `extra_ca_pem`.
    pub fn with_roots(roots_pem: &[u8], extra_ca_pem: Option<&[u8]>) -> Result<Client, RootsError> {
        let mut roots = rustls::RootCertStore::empty();
        // A bundle may hold a certificate rustls cannot use: skip it, as browsers do.
        let certs = CertificateDer::pem_slice_iter(roots_pem).filter_map(Result::ok);
        let (_added, _ignored) = roots.add_parsable_certificates(certs);
        if let Some(extra) = extra_ca_pem {
            let mut n = 0;
            let unusable = |e: &dyn std::fmt::Display| RootsError::ExtraCa {
                reason: e.to_string(),
            };
            for cert in CertificateDer::pem_slice_iter(extra) {
                let cert = cert.map_err(|e| unusable(&e))?;
                roots.add(cert).map_err(|e| unusable(&e))?;
                n += 1;
            }
            if n == 0 {
                return Err(RootsError::ExtraCaEmpty);
            }
        }
        if roots.is_empty() {
            return Err(RootsError::NoRoots {
                looked_in: SYSTEM_CA_BUNDLES.join(", "),
            });
        }
        Client::with_tls(tls_config(roots)?, true)
    }

    /// A client over this TLS configuration, refusing private addresses.
    fn with_tls(tls: rustls::ClientConfig, https_only: bool) -> Result<Client, RootsError> {
        let build = |allow_private: bool| {
            reqwest::Client::builder()
                .use_preconfigured_tls(tls.clone())
                .dns_resolver(Arc::new(CheckedResolver { allow_private }))
                // Redirects are followed (and checked) by `request_once`; no proxy from the
                // environment, which would resolve the names for us.
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .https_only(https_only)
                .http1_only()
                .referer(false)
                .user_agent("belteken")
                .build()
                .map_err(|e| RootsError::Client {
                    reason: error_chain(&e),
                })
        };
        Ok(Client {
            public_only: build(false)?,
            any_address: build(true)?,
            allow_private: false,
            https_only,
        })
    }

    /// Lets requests reach private, loopback and link-local addresses: for tests against
    /// local stand-ins of the providers' APIs only (a webhook could otherwise point the
    /// server at its own network).
    pub fn allow_private(mut self, allow: bool) -> Client {
        self.allow_private = allow;
        self
    }

    /// Whether a request may go to `url` (see the module's doc); a host name's addresses are
    /// checked when it is resolved, an address in the URL here.
    fn check(&self, url: &Url, hosts: &HostList) -> Result<(), FetchError> {
        match url.scheme() {
            "https" => {}
            "http" if !self.https_only => {}
            "http" => return Err(FetchError::NotHttps),
            _ => return Err(FetchError::Url),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(FetchError::Url);
        }
        let (host, ip) = match url.host().ok_or(FetchError::Url)? {
            url::Host::Domain(d) => (d.to_string(), None),
            url::Host::Ipv4(a) => (a.to_string(), Some(std::net::IpAddr::V4(a))),
            url::Host::Ipv6(a) => (a.to_string(), Some(std::net::IpAddr::V6(a))),
        };
        if !hosts.allows(&host) {
            return Err(FetchError::HostNotAllowed);
        }
        if !self.allow_private && ip.is_some_and(|ip| !is_public(ip)) {
            return Err(FetchError::PrivateAddress);
        }
        Ok(())
    }

    /// One request, following redirects that stay on `hosts` (credentials only to the first
    /// origin); returns the body of a 2xx answer, at most `limit` bytes. Every hop must be
    /// `https://`, on `hosts`, and resolve to public addresses (see the module's doc).
    pub async fn request_once(
        &self,
        method: Method,
        url: &str,
        auth: Auth<'_>,
        hosts: &HostList,
        limit: usize,
    ) -> Result<Vec<u8>, FetchError> {
        let attempt = async {
            let mut url = Url::parse(url).map_err(|_| FetchError::Url)?;
            let origin = url.origin();
            for _ in 0..=MAX_REDIRECTS {
                self.check(&url, hosts)?;
                let auth = if url.origin() == origin {
                    auth
                } else {
                    Auth::None
                };
                match self.send(method, url.clone(), auth, limit).await? {
                    Answer::Body(b) => return Ok(b),
                    Answer::Redirect(location) => {
                        url = url.join(&location).map_err(|_| FetchError::Url)?;
                    }
                }
            }
            Err(FetchError::Redirects)
        };
        tokio::time::timeout(FETCH_TIMEOUT, attempt)
            .await
            .map_err(|_| FetchError::Timeout)?
    }

    /// One hop: the answer's body, or where it redirects to (a GET only).
    async fn send(
        &self,
        method: Method,
        url: Url,
        auth: Auth<'_>,
        limit: usize,
    ) -> Result<Answer, FetchError> {
        let http = if self.allow_private {
            &self.any_address
        } else {
            &self.public_only
        };
        let m = match method {
            Method::Get => reqwest::Method::GET,
            Method::Delete => reqwest::Method::DELETE,
        };
        let req = http.request(m, url);
        let req = match auth {
            Auth::None => req,
            Auth::Basic(user, password) => req.basic_auth(user, Some(password)),
            Auth::Bearer(token) => req.bearer_auth(token),
        };
        let mut resp = req.send().await.map_err(fetch_error)?;
        let status = resp.status();
        if status.is_redirection() && method == Method::Get {
            if let Some(loc) = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
            {
                return Ok(Answer::Redirect(loc.to_string()));
            }
        }
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        if resp
            .content_length()
            .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > limit))
        {
            return Err(FetchError::Body);
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|_| FetchError::Body)? {
            if body.len().saturating_add(chunk.len()) > limit {
                return Err(FetchError::Body);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer::Body(body))
    }

    /// A request retried `attempts` times with a doubling pause while retrying may help
    /// (the recording may not be ready at once).
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        auth: Auth<'_>,
        hosts: &HostList,
        attempts: u32,
        first_pause: Duration,
    ) -> Result<Vec<u8>, FetchError> {
        let limit = match method {
            Method::Get => MAX_FETCH_BYTES,
            Method::Delete => MAX_OTHER_BYTES,
        };
        let mut pause = first_pause;
        let mut last = FetchError::Timeout;
        for i in 0..attempts.max(1) {
            if i > 0 {
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2);
            }
            match self.request_once(method, url, auth, hosts, limit).await {
                Ok(body) => return Ok(body),
                // A DELETE's 404: the copy is gone already; no use asking again.
                Err(e @ FetchError::Status(404)) if method == Method::Delete => return Err(e),
                Err(e) if !e.retryable() => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// rustls with the ring provider, trusting `roots`.
fn tls_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, RootsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| RootsError::Protocol {
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

enum Answer {
    Body(Vec<u8>),
    Redirect(String),
}

/// Resolves a host name and refuses it as a whole when any of its addresses is not public
/// (unless allowed): the connection goes to exactly the addresses checked here.
struct CheckedResolver {
    allow_private: bool,
}

/// The resolver's refusal, found again in the error reqwest returns.
#[derive(Debug, thiserror::Error)]
#[error("the host resolves to a private, loopback or link-local address")]
struct PrivateAddressRefused;

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err("no address for the host".into());
            }
            if !allow_private && addrs.iter().any(|a| !is_public(a.ip())) {
                return Err(Box::new(PrivateAddressRefused) as _);
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// A failed exchange as a [`FetchError`]: the resolver's refusal, a TLS failure, a timeout,
/// an unreadable body, else a connection failure (its message without the URL).
fn fetch_error(e: reqwest::Error) -> FetchError {
    let e = e.without_url();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if s.is::<PrivateAddressRefused>() {
            return FetchError::PrivateAddress;
        }
        let tls = s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref());
        if let Some(t) = tls.and_then(|t| t.downcast_ref::<rustls::Error>()) {
            return FetchError::Tls(t.to_string());
        }
        source = s.source();
    }
    if e.is_timeout() {
        FetchError::Timeout
    } else if e.is_body() || e.is_decode() {
        FetchError::Body
    } else if e.is_builder() {
        FetchError::Url
    } else {
        FetchError::Connect(error_chain(&e))
    }
}

/// An error's message and its sources', joined.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let m = s.to_string();
        if !out.contains(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_urls() {
        let c = Client {
            allow_private: false,
            ..client()
        };
        let strict = Client {
            https_only: true,
            ..c.clone()
        };
        let hosts = HostList::new(["api.twilio.com", "::1", "127.0.0.1"]).expect("list");
        let check = |c: &Client, url: &str| {
            Url::parse(url)
                .map_err(|_| FetchError::Url)
                .and_then(|u| c.check(&u, &hosts))
        };
        assert!(check(
            &strict,
            "https://api.twilio.com/2010-04-01/Recordings/RE1.wav"
        )
        .is_ok());
        assert!(check(&strict, "https://API.Twilio.com:8443/a?x=1").is_ok());
        for bad in [
            "ftp://api.twilio.com/",
            "https://",
            "https://user:pw@api.twilio.com/",
            "https://user@api.twilio.com/",
            "https://api.twilio.com:notaport/",
            "file:///etc/passwd",
            "api.twilio.com/a",
        ] {
            assert!(matches!(check(&c, bad), Err(FetchError::Url)), "{bad}");
        }
        assert!(matches!(
            check(&strict, "http://api.twilio.com/a"),
            Err(FetchError::NotHttps)
        ));
        assert!(matches!(
            check(&c, "https://api.twilio.com.evil.example/a"),
            Err(FetchError::HostNotAllowed)
        ));
        // An address in the URL, in any spelling, is judged as the address it is.
        for private in [
            "https://127.0.0.1/a",
            "https://[::1]:8443/a",
            "https://0x7f.0.0.1/a",
            "https://2130706433/a",
        ] {
            assert!(
                matches!(check(&c, private), Err(FetchError::PrivateAddress)),
                "{private}"
            );
        }
        assert_eq!(host_of("https://[::1]:8443/a").as_deref(), Some("::1"));
        assert_eq!(
            host_of("https://API.Twilio.com/a").as_deref(),
            Some("api.twilio.com")
        );
        assert_eq!(host_of("ftp://api.twilio.com/"), None);
    }

    use std::sync::{Arc as StdArc, Mutex};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A one-route HTTP/1.1 server: answers every request with `reply(request head)` and
    /// keeps the request heads.
    async fn serve(
        reply: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static,
    ) -> (u16, StdArc<Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = StdArc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let reply = StdArc::new(reply);
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let seen = seen2.clone();
                let reply = reply.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut n = 0;
                    while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf[n..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => n += k,
                        }
                    }
                    let head = String::from_utf8_lossy(&buf[..n]).to_string();
                    seen.lock().expect("lock").push(head.clone());
                    let _ = sock.write_all(&reply(&head)).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        (port, seen)
    }

    fn client() -> Client {
        // Plain http:// in these tests; any root will do.
        let tls = tls_config(rustls::RootCertStore::empty()).expect("tls");
        Client::with_tls(tls, false)
            .expect("client")
            .allow_private(true)
    }

    fn local() -> HostList {
        HostList::new(["127.0.0.1"]).expect("list")
    }

    /// The request heads a test server saw.
    type Seen = StdArc<Mutex<Vec<String>>>;

    /// A server whose every answer is a four-byte recording.
    async fn serve_recording() -> (u16, Seen) {
        serve(|_| b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nRIFF".to_vec()).await
    }

    /// An API whose every answer redirects to `/file.wav` on a recording server, named
    /// `storage_host` in the Location: the API's port, then the heads each server saw.
    async fn redirect_to_storage(storage_host: &'static str) -> (u16, Seen, Seen) {
        let (storage, storage_seen) = serve_recording().await;
        let (api, api_seen) = serve(move |_| {
            format!("HTTP/1.1 302 Found\r\nLocation: http://{storage_host}:{storage}/file.wav\r\nContent-Length: 0\r\n\r\n")
                .into_bytes()
        })
        .await;
        (api, api_seen, storage_seen)
    }

    /// A request from the test client to the local hosts, in `tries` tries with no pause
    /// to speak of between them.
    async fn fetch(method: Method, url: &str, auth: Auth<'_>, tries: u32) -> FetchResult {
        let pause = Duration::from_millis(1);
        client()
            .request(method, url, auth, &local(), tries, pause)
            .await
    }

    type FetchResult = Result<Vec<u8>, FetchError>;

    /// A recording from the API on `api`, with credentials, once.
    async fn fetch_from_api(api: u16) -> FetchResult {
        let url = format!("http://127.0.0.1:{api}/Recordings/RE1.wav");
        fetch(Method::Get, &url, Auth::Basic("AC1", "token"), 1).await
    }

    #[tokio::test]
    async fn credentials_stay_with_their_origin() {
        let (api, api_seen, storage_seen) = redirect_to_storage("127.0.0.1").await;
        let body = fetch_from_api(api).await.expect("fetched");
        assert_eq!(body, b"RIFF");
        let api_head = api_seen.lock().expect("lock")[0].to_ascii_lowercase();
        assert!(api_head.contains("authorization: basic "), "{api_head}");
        let storage_head = storage_seen.lock().expect("lock")[0].to_ascii_lowercase();
        assert!(!storage_head.contains("authorization"), "{storage_head}");
    }

    #[tokio::test]
    async fn size_limit_and_retries() {
        let big = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_FETCH_BYTES + 1
        );
        let (port, seen) = serve(move |_| big.clone().into_bytes()).await;
        let url = format!("http://127.0.0.1:{port}/big.wav");
        let e = fetch(Method::Get, &url, Auth::None, 3)
            .await
            .expect_err("too big");
        assert!(matches!(e, FetchError::Body), "{e}");
        assert_eq!(
            seen.lock().expect("lock").len(),
            1,
            "a too large body is not retried"
        );
        // Not ready yet (404): retried; a DELETE's 404 (gone already) is not.
        let (port, seen) =
            serve(|_| b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()).await;
        let url = format!("http://127.0.0.1:{port}/RE1.wav");
        let e = fetch(Method::Get, &url, Auth::None, 3)
            .await
            .expect_err("404");
        assert!(matches!(e, FetchError::Status(404)));
        assert_eq!(seen.lock().expect("lock").len(), 3);
        let _ = fetch(Method::Delete, &url, Auth::None, 3).await;
        let heads = seen.lock().expect("lock");
        assert_eq!(heads.len(), 4);
        assert!(
            heads[3].starts_with("DELETE /RE1.wav HTTP/1.1"),
            "{}",
            heads[3]
        );
    }

    #[test]
    fn roots_are_required() {
        assert!(Client::with_roots(b"", None).is_err());
        assert!(Client::with_roots(b"", Some(b"not a pem")).is_err());
    }

    #[test]
    fn host_lists() {
        let l = HostList::new(["api.twilio.com", "api-*.vonage.com", "S3.amazonaws.com"])
            .expect("list");
        for ok in [
            "api.twilio.com",
            "API.Twilio.com",
            "api-eu-3.vonage.com",
            "s3.amazonaws.com",
        ] {
            assert!(l.allows(ok), "{ok}");
        }
        for bad in [
            "twilio.com",
            "api.twilio.com.evil.example",
            "evilapi.twilio.com",
            "x.api.twilio.com",
            "api-.vonage.com",
            "api-eu.x.vonage.com",
            "api-eu.vonage.com.evil.example",
            "127.0.0.1",
            "",
        ] {
            assert!(!l.allows(bad), "{bad}");
        }
        assert!(l.clone().with_host("127.0.0.1").allows("127.0.0.1"));
        for bad in [
            "*.com", "api.*", "a.*.com", "", "a b.com", "**.x.com", "a/b.com",
        ] {
            assert!(HostList::new([bad]).is_err(), "{bad}");
        }
        assert!(HostList::new(["::1", "127.0.0.1", "*.example.org"]).is_ok());
    }

    #[test]
    fn public_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            let ip: std::net::IpAddr = private.parse().expect("ip");
            assert!(!is_public(ip), "{private}");
        }
        for public in ["8.8.8.8", "54.172.60.1", "2600:1f18::1", "::ffff:8.8.8.8"] {
            let ip: std::net::IpAddr = public.parse().expect("ip");
            assert!(is_public(ip), "{public}");
        }
    }

    #[tokio::test]
    async fn refused_before_anything_is_sent() {
        let (port, seen) = serve_recording().await;
        let strict = Client {
            allow_private: false,
            https_only: true,
            ..client()
        };
        let get = |c: Client, url: String, hosts: HostList| async move {
            let auth = Auth::Basic("AC1", "token");
            let pause = Duration::from_millis(1);
            c.request(Method::Get, &url, auth, &hosts, 3, pause).await
        };
        // Plain http.
        let e = get(
            strict.clone(),
            format!("http://127.0.0.1:{port}/a.wav"),
            local(),
        )
        .await
        .expect_err("http");
        assert!(matches!(e, FetchError::NotHttps), "{e}");
        // A host not on the list (the same server under another name).
        let e = get(client(), format!("http://localhost:{port}/a.wav"), local())
            .await
            .expect_err("host");
        assert!(matches!(e, FetchError::HostNotAllowed), "{e}");
        // On the list, but a loopback address, by number or by name.
        let plain_http = Client {
            https_only: false,
            ..strict
        };
        for (host, hosts) in [
            ("127.0.0.1", local()),
            ("localhost", HostList::new(["localhost"]).expect("list")),
        ] {
            let url = format!("http://{host}:{port}/a.wav");
            let e = get(plain_http.clone(), url, hosts)
                .await
                .expect_err("private");
            assert!(matches!(e, FetchError::PrivateAddress), "{host}: {e}");
        }
        assert!(seen.lock().expect("lock").is_empty(), "nothing was sent");
    }

    #[tokio::test]
    async fn relative_redirects_and_their_limit() {
        let (port, seen) = serve(|head| {
            if head.starts_with("GET /file.wav ") {
                b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nRIFF".to_vec()
            } else if head.starts_with("GET /loop ") {
                b"HTTP/1.1 302 Found\r\nLocation: loop\r\nContent-Length: 0\r\n\r\n".to_vec()
            } else {
                b"HTTP/1.1 302 Found\r\nLocation: /file.wav\r\nContent-Length: 0\r\n\r\n".to_vec()
            }
        })
        .await;
        let url = format!("http://127.0.0.1:{port}/Recordings/RE1");
        let body = fetch(Method::Get, &url, Auth::None, 1).await.expect("body");
        assert_eq!(body, b"RIFF");
        let url = format!("http://127.0.0.1:{port}/loop");
        let e = fetch(Method::Get, &url, Auth::None, 3)
            .await
            .expect_err("loop");
        assert!(matches!(e, FetchError::Redirects), "{e}");
        // Two for the first fetch, then the first request and three redirects, once.
        assert_eq!(seen.lock().expect("lock").len(), 2 + 1 + MAX_REDIRECTS);
    }

    #[tokio::test]
    async fn body_limit_while_reading() {
        // No Content-Length: the body is cut off at the limit as it streams in.
        let (port, _) = serve(|_| {
            let mut r = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
            r.resize(r.len() + MAX_OTHER_BYTES + 1, b'x');
            r
        })
        .await;
        let url = format!("http://127.0.0.1:{port}/a.json");
        let e = fetch(Method::Delete, &url, Auth::None, 1)
            .await
            .expect_err("too big");
        assert!(matches!(e, FetchError::Body), "{e}");
    }

    #[tokio::test]
    async fn redirects_stay_on_the_list() {
        let (api, _, storage_seen) = redirect_to_storage("localhost").await;
        let e = fetch_from_api(api)
            .await
            .expect_err("redirect off the list");
        assert!(matches!(e, FetchError::HostNotAllowed), "{e}");
        assert!(storage_seen.lock().expect("lock").is_empty());
    }
}
