//! The provider API client: fetching a recording and deleting the provider's copy, over
//! HTTP/1.1 (hyper) with TLS (rustls), with credentials, a size limit, a timeout and retries.
//!
//! Where a request may go: the URL of a recording comes in a webhook, so it is checked before
//! anything is sent. Only `https://`; only to a host on the provider's list ([`HostList`]: its
//! API and storage hosts); never to a private, loopback, link-local or otherwise non-public
//! address, checked on the addresses the name resolves to (the connection then goes to those
//! very addresses, so a second lookup cannot swap them); every redirect is checked the same
//! way, and credentials never leave the origin they were meant for. [`Client::allow_private`]
//! lifts the address check for tests against local stand-ins, and for nothing else.
//!
//! Trust roots: the system's CA bundle (Debian's `ca-certificates`, the same file the SIP
//! trunks use), read once at start, plus an optional extra CA file from the config (a private
//! or test CA). Not `webpki-roots`: that would compile a second, frozen copy of the roots into
//! the binary, while the distribution's bundle is kept current by the system's updates; and
//! not `rustls-native-certs`: on Linux it reads the same files, through two more crates.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};

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
    Target::parse(url).ok().map(|t| t.host.to_ascii_lowercase())
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
    tls: tokio_rustls::TlsConnector,
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
        let _ = rustls::crypto::ring::default_provider().install_default();
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
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| RootsError::Protocol {
                reason: e.to_string(),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Client {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            allow_private: false,
            https_only: true,
        })
    }

    /// Lets requests reach private, loopback and link-local addresses: for tests against
    /// local stand-ins of the providers' APIs only (a webhook could otherwise point the
    /// server at its own network).
    pub fn allow_private(mut self, allow: bool) -> Client {
        self.allow_private = allow;
        self
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
            let mut url = url.to_string();
            let origin = Target::parse(&url)?.origin();
            for _ in 0..=MAX_REDIRECTS {
                let target = Target::parse(&url)?;
                if self.https_only && !target.tls {
                    return Err(FetchError::NotHttps);
                }
                if !hosts.allows(&target.host) {
                    return Err(FetchError::HostNotAllowed);
                }
                let same_origin = target.origin() == origin;
                let auth = if same_origin { auth } else { Auth::None };
                match self.send(method, &target, auth, limit).await? {
                    Answer::Body(b) => return Ok(b),
                    Answer::Redirect(location) => {
                        url = resolve(&target, &location).ok_or(FetchError::Url)?;
                    }
                }
            }
            Err(FetchError::Redirects)
        };
        tokio::time::timeout(FETCH_TIMEOUT, attempt)
            .await
            .map_err(|_| FetchError::Timeout)?
    }

    async fn send(
        &self,
        method: Method,
        t: &Target,
        auth: Auth<'_>,
        limit: usize,
    ) -> Result<Answer, FetchError> {
        // Resolve once, check every address, and connect to exactly those: a name that also
        // resolves to a private address is refused as a whole.
        let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((t.host.as_str(), t.port))
            .await
            .map_err(|e| FetchError::Connect(e.to_string()))?
            .collect();
        if addrs.is_empty() {
            return Err(FetchError::Connect("no address for the host".into()));
        }
        if !self.allow_private && addrs.iter().any(|a| !is_public(a.ip())) {
            return Err(FetchError::PrivateAddress);
        }
        let stream = tokio::net::TcpStream::connect(addrs.as_slice())
            .await
            .map_err(|e| FetchError::Connect(e.to_string()))?;
        if t.tls {
            let name =
                ServerName::try_from(t.host.clone()).map_err(|e| FetchError::Tls(e.to_string()))?;
            let tls = self
                .tls
                .connect(name, stream)
                .await
                .map_err(|e| FetchError::Tls(e.to_string()))?;
            exchange(TokioIo::new(tls), method, t, auth, limit).await
        } else {
            exchange(TokioIo::new(stream), method, t, auth, limit).await
        }
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

enum Answer {
    Body(Vec<u8>),
    Redirect(String),
}

async fn exchange<I>(
    io: I,
    method: Method,
    t: &Target,
    auth: Auth<'_>,
    limit: usize,
) -> Result<Answer, FetchError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| FetchError::Connect(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let m = match method {
        Method::Get => hyper::Method::GET,
        Method::Delete => hyper::Method::DELETE,
    };
    let mut req = hyper::Request::builder()
        .method(m)
        .uri(t.path.as_str())
        .header(hyper::header::HOST, t.host_header())
        .header(hyper::header::USER_AGENT, "belteken");
    match auth {
        Auth::None => {}
        Auth::Basic(user, password) => {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            req = req.header(hyper::header::AUTHORIZATION, format!("Basic {token}"));
        }
        Auth::Bearer(token) => {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|_| FetchError::Url)?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| FetchError::Connect(e.to_string()))?;
    let status = resp.status();
    if status.is_redirection() && method == Method::Get {
        if let Some(loc) = resp
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|v| v.to_str().ok())
        {
            return Ok(Answer::Redirect(loc.to_string()));
        }
    }
    if !status.is_success() {
        return Err(FetchError::Status(status.as_u16()));
    }
    if resp
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > limit)
    {
        return Err(FetchError::Body);
    }
    let body = Limited::new(resp.into_body(), limit)
        .collect()
        .await
        .map_err(|_| FetchError::Body)?;
    Ok(Answer::Body(body.to_bytes().to_vec()))
}

/// A parsed `http(s)://host[:port]/path?query` URL (no user info).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, FetchError> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(FetchError::Url);
        };
        let (authority, path) = match rest.find(['/', '?']).and_then(|i| rest.split_at_checked(i)) {
            Some((a, p)) if p.starts_with('/') => (a, p.to_string()),
            Some((a, p)) => (a, format!("/{p}")),
            None => (rest, "/".to_string()),
        };
        if authority.is_empty()
            || authority.contains(['@', ' '])
            || path.contains([' ', '#', '\r', '\n'])
        {
            return Err(FetchError::Url);
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or(FetchError::Url)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| FetchError::Url)?,
                None if after.is_empty() => default_port,
                None => return Err(FetchError::Url),
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| FetchError::Url)?),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(FetchError::Url);
        }
        Ok(Target {
            tls,
            host,
            port,
            path,
        })
    }

    fn origin(&self) -> (bool, String, u16) {
        (self.tls, self.host.to_ascii_lowercase(), self.port)
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == if self.tls { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// The absolute URL a `Location` points at.
fn resolve(base: &Target, location: &str) -> Option<String> {
    if location.starts_with("https://") || location.starts_with("http://") {
        return Some(location.to_string());
    }
    let scheme = if base.tls { "https" } else { "http" };
    location
        .starts_with('/')
        .then(|| format!("{scheme}://{}{location}", base.host_header()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let t = Target::parse("https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1.wav")
            .expect("url");
        assert!(t.tls);
        assert_eq!((t.host.as_str(), t.port), ("api.twilio.com", 443));
        assert_eq!(t.path, "/2010-04-01/Accounts/AC1/Recordings/RE1.wav");
        assert_eq!(t.host_header(), "api.twilio.com");
        let t = Target::parse("http://127.0.0.1:8080?x=1").expect("url");
        assert_eq!((t.port, t.path.as_str()), (8080, "/?x=1"));
        assert_eq!(t.host_header(), "127.0.0.1:8080");
        let t = Target::parse("https://[::1]:8443/a").expect("url");
        assert_eq!((t.host.as_str(), t.port), ("::1", 8443));
        assert_eq!(t.host_header(), "[::1]:8443");
        for bad in [
            "ftp://x/",
            "https://",
            "https://user:pw@host/",
            "https://h:notaport/",
            "https://h/a b",
            "file:///etc/passwd",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resolves_redirects() {
        let t = Target::parse("https://api.example.com:8443/a").expect("url");
        assert_eq!(
            resolve(&t, "/b?c=1").as_deref(),
            Some("https://api.example.com:8443/b?c=1")
        );
        assert_eq!(
            resolve(&t, "https://s3.example.com/x").as_deref(),
            Some("https://s3.example.com/x")
        );
        assert_eq!(resolve(&t, "relative"), None);
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
        Client {
            tls: tokio_rustls::TlsConnector::from(Arc::new(
                rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
            )),
            allow_private: true,
            https_only: false,
        }
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
    async fn redirects_stay_on_the_list() {
        let (api, _, storage_seen) = redirect_to_storage("localhost").await;
        let e = fetch_from_api(api)
            .await
            .expect_err("redirect off the list");
        assert!(matches!(e, FetchError::HostNotAllowed), "{e}");
        assert!(storage_seen.lock().expect("lock").is_empty());
    }
}
