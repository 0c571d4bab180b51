//! Trunks: which sources may send calls, which of their headers we believe, where the DID is.
//!
//! Everything here is pure (no IO, no clock): the server asks `Trunks::classify` about the
//! source of each INVITE, then `caller_identity` and `called_did` about its headers.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use crate::identity::{uri_user, MAX_USER_BYTES};

/// How SIP reaches a trunk (and the trunk us).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrunkTransport {
    Udp,
    Tcp,
    Tls,
}

impl TrunkTransport {
    pub fn as_str(self) -> &'static str {
        match self {
            TrunkTransport::Udp => "udp",
            TrunkTransport::Tcp => "tcp",
            TrunkTransport::Tls => "tls",
        }
    }
}

/// A trunk setting that does not parse; each carries the text it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrunkSettingError {
    /// A transport other than udp, tcp or tls.
    #[error("must be \"udp\", \"tcp\" or \"tls\"")]
    Transport { given: String },
    /// A network whose address part is no IP address.
    #[error("{given:?} is not an address or a network such as 203.0.113.0/24")]
    Address { given: String },
    /// A network whose prefix length is no number, or longer than its address.
    #[error("{given:?} is not an address or a network such as 203.0.113.0/24 (the prefix length is a number of at most {max})")]
    Prefix { given: String, max: u8 },
    /// A place for the called number that is none of the known ones nor a header name.
    #[error("must be \"auto\", \"request-uri\", \"to\" or a header name such as \"Diversion\"")]
    DidSource { given: String },
}

impl FromStr for TrunkTransport {
    type Err = TrunkSettingError;
    fn from_str(s: &str) -> Result<Self, TrunkSettingError> {
        match s {
            "udp" => Ok(TrunkTransport::Udp),
            "tcp" => Ok(TrunkTransport::Tcp),
            "tls" => Ok(TrunkTransport::Tls),
            _ => Err(TrunkSettingError::Transport { given: s.into() }),
        }
    }
}

/// An IP network such as `203.0.113.0/24` (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network holding exactly this address.
    pub fn host(ip: IpAddr) -> Cidr {
        Cidr {
            net: ip,
            prefix: if ip.is_ipv4() { 32 } else { 128 },
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 peer may show up as an IPv4-mapped IPv6 address on a dual-stack socket.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = TrunkSettingError;
    fn from_str(s: &str) -> Result<Self, TrunkSettingError> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| TrunkSettingError::Address { given: s.into() })?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bad_prefix = || TrunkSettingError::Prefix {
            given: s.into(),
            max,
        };
        let prefix = match prefix {
            None => max,
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad_prefix())?,
        };
        if prefix > max {
            return Err(bad_prefix());
        }
        Ok(Cidr { net, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// Where a trunk puts the number that was called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DidSource {
    /// The Request-URI user when it names a campaign, else the To user (the default: a
    /// registrar that routes by `lookup("location")` rewrites the Request-URI to our Contact).
    Auto,
    RequestUri,
    To,
    /// The user of the first URI in this header, e.g. Diversion (forwarded mobile numbers).
    Header(String),
}

impl FromStr for DidSource {
    type Err = TrunkSettingError;
    fn from_str(s: &str) -> Result<Self, TrunkSettingError> {
        match s {
            "auto" => Ok(DidSource::Auto),
            "request-uri" => Ok(DidSource::RequestUri),
            "to" => Ok(DidSource::To),
            h if !h.is_empty()
                && h.len() <= 64
                && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                Ok(DidSource::Header(h.to_string()))
            }
            _ => Err(TrunkSettingError::DidSource { given: s.into() }),
        }
    }
}

/// How belteken registers to a trunk.
#[derive(Clone)]
pub struct RegisterConfig {
    /// `host` or `host:port` of the registrar; also the domain of our address of record.
    pub registrar: String,
    /// Send REGISTER here instead of resolving `registrar` (an outbound proxy or SBC).
    pub proxy: Option<std::net::SocketAddr>,
    pub username: String,
    /// The digest user when it differs from `username`.
    pub auth_username: Option<String>,
    pub password: String,
    /// If set, only challenges for this realm are answered.
    pub realm: Option<String>,
    /// The registration lifetime we ask for.
    pub expires: Duration,
}

impl fmt::Debug for RegisterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterConfig")
            .field("registrar", &self.registrar)
            .field("proxy", &self.proxy)
            .field("username", &self.username)
            .field("auth_username", &self.auth_username)
            .field("password", &"(hidden)")
            .field("realm", &self.realm)
            .field("expires", &self.expires)
            .finish()
    }
}

/// One trunk, validated.
#[derive(Debug, Clone)]
pub struct TrunkConfig {
    pub name: String,
    pub transport: TrunkTransport,
    /// `Some` for a registration trunk, `None` for a static (IP-authenticated) one.
    pub register: Option<RegisterConfig>,
    /// Sources whose INVITEs are accepted and whose identity headers are believed.
    pub trusted: Vec<Cidr>,
    /// The numbers this trunk delivers; empty: any campaign's.
    pub dids: Vec<String>,
    pub did_from: DidSource,
    /// Calls from this trunk in progress at most; past it, 503 with Retry-After.
    pub max_calls: Option<usize>,
}

/// What to do with an INVITE from a source that is no trunk's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Untrusted {
    /// 403 Forbidden, the same for every user.
    #[default]
    Reject,
    /// No answer at all.
    Drop,
}

/// Which header gave the caller's identity, and so how far it can be believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerTrust {
    /// P-Asserted-Identity or Remote-Party-ID from a trusted trunk.
    NetworkAsserted,
    /// From, which anyone can write.
    FromHeader,
    /// No usable number, or the caller asked for privacy.
    Withheld,
}

impl CallerTrust {
    /// The same, as the store keeps it with a signature.
    pub fn store_trust(self) -> store::Trust {
        match self {
            CallerTrust::NetworkAsserted => store::Trust::NetworkAsserted,
            CallerTrust::FromHeader => store::Trust::FromHeader,
            CallerTrust::Withheld => store::Trust::Withheld,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CallerTrust::NetworkAsserted => "network-asserted",
            CallerTrust::FromHeader => "from-header",
            CallerTrust::Withheld => "withheld",
        }
    }
}

/// Where an INVITE's source stands.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// No trunk is configured: everyone may call (the demo), nobody's identity headers count.
    Open,
    /// A trusted source of this trunk.
    Trunk(&'a TrunkConfig),
    /// Trunks exist and this source is none of theirs.
    Unknown,
}

/// The configured trunks, with the addresses learned for them at start.
#[derive(Debug, Clone, Default)]
pub struct Trunks {
    trunks: Vec<TrunkConfig>,
}

impl Trunks {
    pub fn new(trunks: Vec<TrunkConfig>) -> Trunks {
        Trunks { trunks }
    }

    pub fn is_empty(&self) -> bool {
        self.trunks.is_empty()
    }

    pub fn all(&self) -> &[TrunkConfig] {
        &self.trunks
    }

    /// Also trusts `ip` for trunk `name` (the resolved registrar or proxy address).
    pub fn trust(&mut self, name: &str, ip: IpAddr) {
        if let Some(t) = self.trunks.iter_mut().find(|t| t.name == name) {
            if !t.trusted.iter().any(|c| c.contains(ip)) {
                t.trusted.push(Cidr::host(ip));
            }
        }
    }

    pub fn classify(&self, ip: IpAddr) -> Source<'_> {
        if self.trunks.is_empty() {
            return Source::Open;
        }
        self.trunks
            .iter()
            .find(|t| t.trusted.iter().any(|c| c.contains(ip)))
            .map_or(Source::Unknown, Source::Trunk)
    }

    /// Whether `ip` is a trusted source of any trunk (never rate-limited or banned).
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        matches!(self.classify(ip), Source::Trunk(_))
    }
}

/// The identity headers of a request, as text.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdentityHeaders<'a> {
    pub p_asserted_identity: Option<&'a str>,
    pub remote_party_id: Option<&'a str>,
    pub privacy: Option<&'a str>,
    pub from: Option<&'a str>,
}

/// Whether a Privacy header (RFC 3323/3325) asks to withhold the identity.
fn privacy_withholds(privacy: &str) -> bool {
    privacy
        .split([';', ','])
        .map(str::trim)
        .any(|v| v.eq_ignore_ascii_case("id") || v.eq_ignore_ascii_case("user"))
}

/// Remote-Party-ID's own privacy parameter (`privacy=full`, `uri` or `name`).
fn rpid_withholds(rpid: &str) -> bool {
    let params = match rpid.rfind('>') {
        Some(i) => &rpid[i + 1..],
        None => rpid,
    };
    params.split(';').any(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case("privacy")
            && matches!(
                v.trim().trim_matches('"').to_ascii_lowercase().as_str(),
                "full" | "uri"
            )
    })
}

fn is_anonymous(user: &str) -> bool {
    user.eq_ignore_ascii_case("anonymous") || user.eq_ignore_ascii_case("restricted")
}

/// The caller's raw user part (to be hashed at once) and how far it can be believed.
/// Asserted identities count only from a trusted trunk; a privacy request always wins.
pub fn caller_identity<'a>(
    headers: IdentityHeaders<'a>,
    trusted: bool,
) -> (Option<&'a str>, CallerTrust) {
    if headers.privacy.is_some_and(privacy_withholds) {
        return (None, CallerTrust::Withheld);
    }
    if trusted {
        let first = |v: &'a str| v.split(',').next().unwrap_or(v);
        if let Some(user) = headers.p_asserted_identity.map(first).and_then(uri_user) {
            return (Some(user), CallerTrust::NetworkAsserted);
        }
        if let Some(rpid) = headers.remote_party_id.map(first) {
            if rpid_withholds(rpid) {
                return (None, CallerTrust::Withheld);
            }
            if let Some(user) = uri_user(rpid) {
                return (Some(user), CallerTrust::NetworkAsserted);
            }
        }
    }
    match headers.from.and_then(uri_user) {
        Some(user) if !is_anonymous(user) => (Some(user), CallerTrust::FromHeader),
        _ => (None, CallerTrust::Withheld),
    }
}

/// A DID in comparable form: its digits without a leading `+` or `00`; a slug stays as is.
pub fn normalize_did(did: &str) -> String {
    let d = did.trim();
    let looks_like_number = !d.is_empty()
        && d.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '.' | '(' | ')'));
    if !looks_like_number {
        return d.to_string();
    }
    let digits: String = d.chars().filter(char::is_ascii_digit).collect();
    match digits.strip_prefix("00") {
        Some(rest) if d.starts_with("00") => rest.to_string(),
        _ => digits,
    }
}

/// Looks up a request header's value by name.
pub type HeaderLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The request parts a DID can come from.
#[derive(Default, Clone, Copy)]
pub struct DidHeaders<'a> {
    pub request_uri_user: Option<&'a str>,
    pub to: Option<&'a str>,
    /// Looks up another header by name.
    pub other: Option<HeaderLookup<'a>>,
}

/// The candidate called numbers, best first, per `source`.
pub fn called_dids(source: &DidSource, h: &DidHeaders<'_>) -> Vec<String> {
    let ruri = h.request_uri_user.map(str::to_string);
    let to = h.to.and_then(uri_user).map(str::to_string);
    let out = match source {
        DidSource::Auto => vec![ruri, to],
        DidSource::RequestUri => vec![ruri],
        DidSource::To => vec![to],
        DidSource::Header(name) => {
            let value = h.other.and_then(|get| get(name));
            vec![value.and_then(|v| {
                let first = v.split(',').next().unwrap_or(&v).to_string();
                uri_user(&first).map(str::to_string)
            })]
        }
    };
    out.into_iter()
        .flatten()
        .filter(|u| u.len() <= MAX_USER_BYTES)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn cidr_parse_and_match() {
        let c: Cidr = "203.0.113.0/24".parse().expect("valid");
        assert!(c.contains(ip("203.0.113.77")));
        assert!(!c.contains(ip("203.0.114.1")));
        assert!(c.contains(ip("::ffff:203.0.113.5")));
        let one: Cidr = "127.0.0.2".parse().expect("valid");
        assert!(one.contains(ip("127.0.0.2")));
        assert!(!one.contains(ip("127.0.0.1")));
        let all: Cidr = "0.0.0.0/0".parse().expect("valid");
        assert!(all.contains(ip("198.51.100.1")));
        let v6: Cidr = "2001:db8::/32".parse().expect("valid");
        assert!(v6.contains(ip("2001:db8::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        for bad in ["", "1.2.3/24", "x"] {
            let given = bad.to_string();
            assert_eq!(
                bad.parse::<Cidr>(),
                Err(TrunkSettingError::Address { given })
            );
        }
        for (bad, max) in [("1.2.3.4/33", 32), ("::/129", 128), ("1.2.3.4/-1", 32)] {
            let given = bad.to_string();
            assert_eq!(
                bad.parse::<Cidr>(),
                Err(TrunkSettingError::Prefix { given, max })
            );
        }
    }

    fn trunk(name: &str, trusted: &[&str]) -> TrunkConfig {
        TrunkConfig {
            name: name.into(),
            transport: TrunkTransport::Udp,
            register: None,
            trusted: trusted.iter().map(|c| c.parse().expect("cidr")).collect(),
            dids: vec![],
            did_from: DidSource::Auto,
            max_calls: None,
        }
    }

    #[test]
    fn classify_sources() {
        assert!(matches!(
            Trunks::default().classify(ip("1.2.3.4")),
            Source::Open
        ));
        let mut t = Trunks::new(vec![trunk("a", &["10.0.0.0/8"]), trunk("b", &[])]);
        assert!(matches!(t.classify(ip("10.1.2.3")), Source::Trunk(x) if x.name == "a"));
        assert!(matches!(t.classify(ip("192.0.2.1")), Source::Unknown));
        t.trust("b", ip("192.0.2.1"));
        assert!(matches!(t.classify(ip("192.0.2.1")), Source::Trunk(x) if x.name == "b"));
        assert!(t.is_trusted(ip("192.0.2.1")));
    }

    fn hdrs<'a>(
        pai: Option<&'a str>,
        rpid: Option<&'a str>,
        privacy: Option<&'a str>,
        from: Option<&'a str>,
    ) -> IdentityHeaders<'a> {
        IdentityHeaders {
            p_asserted_identity: pai,
            remote_party_id: rpid,
            privacy,
            from,
        }
    }

    #[test]
    fn asserted_identity_only_from_trusted() {
        let h = hdrs(
            Some("<sip:+32470000001@trunk>"),
            None,
            None,
            Some("<sip:+32470000009@x>;tag=1"),
        );
        assert_eq!(
            caller_identity(h, true),
            (Some("+32470000001"), CallerTrust::NetworkAsserted)
        );
        assert_eq!(
            caller_identity(h, false),
            (Some("+32470000009"), CallerTrust::FromHeader)
        );
    }

    #[test]
    fn remote_party_id_and_privacy() {
        let rpid = hdrs(
            None,
            Some("\"A\" <sip:+32470000002@trunk>;party=calling;screen=yes"),
            None,
            Some("<sip:x@y>"),
        );
        assert_eq!(
            caller_identity(rpid, true),
            (Some("+32470000002"), CallerTrust::NetworkAsserted)
        );
        let hidden = hdrs(
            None,
            Some("<sip:+32470000002@trunk>;privacy=full"),
            None,
            Some("<sip:x@y>"),
        );
        assert_eq!(caller_identity(hidden, true), (None, CallerTrust::Withheld));
        let privacy = hdrs(
            Some("<sip:+32470000001@trunk>"),
            None,
            Some("id"),
            Some("<sip:+32470000001@t>"),
        );
        assert_eq!(
            caller_identity(privacy, true),
            (None, CallerTrust::Withheld)
        );
        assert_eq!(
            caller_identity(privacy, false),
            (None, CallerTrust::Withheld)
        );
        let none = hdrs(None, None, Some("none"), Some("<sip:+3247@t>"));
        assert_eq!(caller_identity(none, false).1, CallerTrust::FromHeader);
        let anon = hdrs(None, None, None, Some("<sip:anonymous@anonymous.invalid>"));
        assert_eq!(caller_identity(anon, true), (None, CallerTrust::Withheld));
    }

    #[test]
    fn did_normalization() {
        assert_eq!(normalize_did("+32 2 000 00 00"), "3220000000");
        assert_eq!(normalize_did("003220000000"), "3220000000");
        assert_eq!(normalize_did("3220000000"), "3220000000");
        assert_eq!(normalize_did("demo"), "demo");
    }

    #[test]
    fn did_sources() {
        let lookup = |name: &str| {
            (name.eq_ignore_ascii_case("diversion"))
                .then(|| "<sip:+3220000000@op>;reason=unconditional".to_string())
        };
        let h = DidHeaders {
            request_uri_user: Some("belteken"),
            to: Some("<sip:+3221111111@provider>"),
            other: Some(&lookup),
        };
        assert_eq!(
            called_dids(&DidSource::Auto, &h),
            ["belteken", "+3221111111"]
        );
        assert_eq!(called_dids(&DidSource::RequestUri, &h), ["belteken"]);
        assert_eq!(called_dids(&DidSource::To, &h), ["+3221111111"]);
        assert_eq!(
            called_dids(&DidSource::Header("Diversion".into()), &h),
            ["+3220000000"]
        );
        assert!(called_dids(&DidSource::Header("X-None".into()), &h).is_empty());
        assert_eq!(
            "Diversion".parse::<DidSource>(),
            Ok(DidSource::Header("Diversion".into()))
        );
        assert!("bad header".parse::<DidSource>().is_err());
    }
}
