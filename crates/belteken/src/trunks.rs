//! The `[[trunk]]` and `[sip]` sections of the configuration: parsed strictly and validated into
//! the SIP channel's trunks and edge settings. Errors name the file, the line and the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config_error::ConfigError;

/// The system's CA bundle on Debian, used to verify TLS trunks when no `tls_ca_file` is set.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Trunks at most.
const MAX_TRUNKS: usize = 64;
/// The largest `max_calls` a trunk may set (the same bound as `[server] max_calls`).
const MAX_TRUNK_CALLS: usize = 100_000;
/// Trusted networks per trunk at most.
const MAX_TRUSTED: usize = 256;

/// One `[[trunk]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkSection {
    name: String,
    /// "register" or "static".
    mode: String,
    #[serde(default = "default_transport")]
    transport: String,
    /// Register mode: `host` or `host:port` of the registrar.
    registrar: Option<String>,
    /// Register mode: `ip:port` to send REGISTER to instead (outbound proxy).
    proxy: Option<String>,
    username: Option<String>,
    auth_username: Option<String>,
    password: Option<String>,
    /// The name of an environment variable holding the password (instead of `password`).
    password_env: Option<String>,
    realm: Option<String>,
    expires_seconds: Option<u64>,
    #[serde(default)]
    trusted: Vec<String>,
    #[serde(default)]
    dids: Vec<String>,
    /// "auto", "request-uri", "to" or a header name such as "Diversion".
    did_from: Option<String>,
    /// Calls from this trunk in progress at most (the provider's channel count).
    max_calls: Option<usize>,
}

fn default_transport() -> String {
    "udp".into()
}

/// The `[sip]` table: how the SIP channel meets the internet.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipSection {
    /// "reject" (403) or "drop" (no answer) for INVITEs from no trunk's address.
    untrusted: Option<String>,
    tls_listen: Option<SocketAddr>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    /// CA certificates (PEM) that TLS trunks' certificates must chain to.
    tls_ca_file: Option<PathBuf>,
    /// RTP ports, e.g. "20000-29999".
    rtp_ports: Option<String>,
    rate_limit_per_second: Option<u32>,
    rate_limit_burst: Option<u32>,
    ban_after_bad_requests: Option<u32>,
    ban_seconds: Option<u64>,
}

/// The validated SIP edge: trunks and the rest.
#[derive(Debug, Clone, Default)]
pub struct SipEdge {
    pub trunks: Vec<sip::TrunkConfig>,
    pub edge: sip::EdgeConfig,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line of `key = ` inside the block that starts with `header` and (if given) holds
/// `name = "<name>"`; the block's first line if the key is not written.
pub(crate) fn key_line(text: &str, header: &str, name: Option<&str>, key: &str) -> usize {
    let mut start = text.find(header).unwrap_or(0);
    if let Some(name) = name {
        if let Some(pos) = text
            .find(&format!("\"{name}\""))
            .or_else(|| text.find(&format!("'{name}'")))
        {
            start = text[..pos].rfind(header).unwrap_or(start);
        }
    }
    let mut offset = start;
    for (i, line) in text[start..].split_inclusive('\n').enumerate() {
        let trimmed = line.trim_start();
        if i > 0 && trimmed.starts_with('[') {
            break;
        }
        if trimmed.starts_with(key) && trimmed[key.len()..].trim_start().starts_with('=') {
            return line_of(text, offset);
        }
        offset += line.len();
    }
    line_of(text, start)
}

fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Validates the trunks and the `[sip]` table. `campaign_dids` are every campaign's DIDs.
pub fn validate(
    trunks: Vec<TrunkSection>,
    sip_section: SipSection,
    campaign_dids: &[String],
    text: &str,
    file: &str,
    base: &Path,
) -> Result<SipEdge, ConfigError> {
    let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
    let sip_err = |key: &str, message: String| ConfigError {
        file: file.into(),
        line: key_line(text, "[sip]", None, key),
        key: format!("sip.{key}"),
        message,
    };
    if trunks.len() > MAX_TRUNKS {
        return Err(ConfigError {
            file: file.into(),
            line: 1,
            key: "trunk".into(),
            message: format!("at most {MAX_TRUNKS} trunks"),
        });
    }
    let mut out: Vec<sip::TrunkConfig> = Vec::new();
    for t in trunks {
        let name = t.name.clone();
        let err = |key: &str, message: String| ConfigError {
            file: file.into(),
            line: key_line(text, "[[trunk]]", Some(&name), key),
            key: format!("trunk[{name}].{key}"),
            message,
        };
        let unparsed = |key: &str, e: sip::TrunkSettingError| err(key, e.to_string());
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(err("name", "use 1-64 of a-z, A-Z, 0-9, - and _".into()));
        }
        if out.iter().any(|x| x.name == name) {
            return Err(err("name", "two trunks have this name".into()));
        }
        let transport: sip::TrunkTransport =
            t.transport.parse().map_err(|e| unparsed("transport", e))?;
        if t.trusted.len() > MAX_TRUSTED {
            return Err(err("trusted", format!("at most {MAX_TRUSTED} networks")));
        }
        let trusted = t
            .trusted
            .iter()
            .map(|c| c.parse::<sip::Cidr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unparsed("trusted", e))?;
        for d in &t.dids {
            let n = sip::trunk::normalize_did(d);
            if !campaign_dids
                .iter()
                .any(|c| sip::trunk::normalize_did(c) == n)
            {
                return Err(err(
                    "dids",
                    format!("{d:?} is no campaign's DID (add it to a campaign's dids)"),
                ));
            }
        }
        let did_from = match &t.did_from {
            None => sip::DidSource::Auto,
            Some(s) => s.parse().map_err(|e| unparsed("did_from", e))?,
        };
        if t.max_calls
            .is_some_and(|n| !(1..=MAX_TRUNK_CALLS).contains(&n))
        {
            return Err(err(
                "max_calls",
                format!("must be between 1 and {MAX_TRUNK_CALLS}"),
            ));
        }
        let register = match t.mode.as_str() {
            "static" => {
                if trusted.is_empty() {
                    return Err(err(
                        "trusted",
                        "a static trunk needs the networks its calls come from".into(),
                    ));
                }
                for (key, set) in [
                    ("registrar", t.registrar.is_some()),
                    ("username", t.username.is_some()),
                    ("password", t.password.is_some() || t.password_env.is_some()),
                    ("proxy", t.proxy.is_some()),
                ] {
                    if set {
                        return Err(err(key, "only for mode = \"register\"".into()));
                    }
                }
                None
            }
            "register" => {
                let registrar = t
                    .registrar
                    .clone()
                    .filter(|r| !r.trim().is_empty())
                    .ok_or_else(|| err("registrar", "required for mode = \"register\"".into()))?;
                if registrar.contains(['@', ';', '<', '>', ' '])
                    || registrar.starts_with("sip:")
                    || registrar.starts_with("sips:")
                {
                    return Err(err(
                        "registrar",
                        "write host or host:port, e.g. \"sip.example.net:5060\"".into(),
                    ));
                }
                let username = t
                    .username
                    .clone()
                    .filter(|u| !u.is_empty())
                    .ok_or_else(|| err("username", "required for mode = \"register\"".into()))?;
                if username.contains(['@', ';', '<', '>', ' ', ':']) {
                    return Err(err("username", "must be a plain SIP user".into()));
                }
                let password = match (&t.password, &t.password_env) {
                    (Some(p), None) => p.clone(),
                    (None, Some(var)) => std::env::var(var).map_err(|_| {
                        err(
                            "password_env",
                            format!("the environment variable {var} is not set"),
                        )
                    })?,
                    (Some(_), Some(_)) => {
                        return Err(err(
                            "password",
                            "give password or password_env, not both".into(),
                        ))
                    }
                    (None, None) => {
                        return Err(err(
                            "password",
                            "required for mode = \"register\" (or password_env)".into(),
                        ))
                    }
                };
                let proxy = match &t.proxy {
                    None => None,
                    Some(p) => Some(p.parse::<SocketAddr>().map_err(|_| {
                        err("proxy", "must be ip:port, e.g. \"203.0.113.5:5060\"".into())
                    })?),
                };
                let expires = t.expires_seconds.unwrap_or(600);
                if !(10..=86_400).contains(&expires) {
                    return Err(err(
                        "expires_seconds",
                        "must be between 10 and 86400".into(),
                    ));
                }
                Some(sip::RegisterConfig {
                    registrar,
                    proxy,
                    username,
                    auth_username: t.auth_username.clone(),
                    password,
                    realm: t.realm.clone(),
                    expires: Duration::from_secs(expires),
                })
            }
            _ => return Err(err("mode", "must be \"register\" or \"static\"".into())),
        };
        out.push(sip::TrunkConfig {
            name: t.name,
            transport,
            register,
            trusted,
            dids: t.dids,
            did_from,
            max_calls: t.max_calls,
        });
    }

    let s = sip_section;
    let untrusted = match s.untrusted.as_deref() {
        None | Some("reject") => sip::Untrusted::Reject,
        Some("drop") => sip::Untrusted::Drop,
        Some(_) => {
            return Err(sip_err(
                "untrusted",
                "must be \"reject\" or \"drop\"".into(),
            ))
        }
    };
    let tls = match (s.tls_listen, s.tls_cert, s.tls_key) {
        (None, None, None) => None,
        (Some(listen), Some(cert), Some(key)) => {
            let cert = resolve(cert);
            let key_path = resolve(key);
            let cert_pem = read_file(&cert).map_err(|m| sip_err("tls_cert", m))?;
            let key_pem = read_file(&key_path).map_err(|m| sip_err("tls_key", m))?;
            sip::tls::check_certificate(&cert_pem, &key_pem)
                .map_err(|m| sip_err("tls_cert", format!("certificate or key unusable: {m}")))?;
            Some(sip::TlsSettings {
                listen,
                cert_pem,
                key_pem,
            })
        }
        (listen, cert, _) => {
            let missing = if listen.is_none() {
                "tls_listen"
            } else if cert.is_none() {
                "tls_cert"
            } else {
                "tls_key"
            };
            return Err(sip_err(
                missing,
                "TLS needs tls_listen, tls_cert and tls_key together".into(),
            ));
        }
    };
    let wants_tls_roots = out
        .iter()
        .any(|t| t.transport == sip::TrunkTransport::Tls && t.register.is_some());
    let tls_roots_pem = match s.tls_ca_file {
        Some(p) => {
            let p = resolve(p);
            let pem = read_file(&p).map_err(|m| sip_err("tls_ca_file", m))?;
            if sip::tls::count_certificates(&pem) == 0 {
                return Err(sip_err(
                    "tls_ca_file",
                    format!("{} holds no PEM certificate", p.display()),
                ));
            }
            Some(pem)
        }
        None if wants_tls_roots => Some(read_file(Path::new(SYSTEM_CA_BUNDLE)).map_err(|m| {
            sip_err(
                "tls_ca_file",
                format!("a TLS trunk needs CA certificates to verify the provider: {m}"),
            )
        })?),
        None => None,
    };
    let rtp_ports = match &s.rtp_ports {
        None => None,
        Some(r) => {
            Some(sip::rtp_ports::parse_range(r).map_err(|e| sip_err("rtp_ports", e.to_string()))?)
        }
    };
    let defaults = sip::RateLimits::default();
    let positive = |key: &str, v: Option<u32>, default: u32, max: u32| match v {
        None => Ok(default),
        Some(v) if (1..=max).contains(&v) => Ok(v),
        Some(_) => Err(sip_err(key, format!("must be between 1 and {max}"))),
    };
    let ban_seconds = s.ban_seconds.unwrap_or(defaults.ban.as_secs());
    if !(1..=86_400 * 7).contains(&ban_seconds) {
        return Err(sip_err(
            "ban_seconds",
            "must be between 1 and 604800".into(),
        ));
    }
    let limits = sip::RateLimits {
        messages_per_second: positive(
            "rate_limit_per_second",
            s.rate_limit_per_second,
            defaults.messages_per_second,
            100_000,
        )?,
        burst: positive(
            "rate_limit_burst",
            s.rate_limit_burst,
            defaults.burst,
            100_000,
        )?,
        bad_requests_before_ban: positive(
            "ban_after_bad_requests",
            s.ban_after_bad_requests,
            defaults.bad_requests_before_ban,
            100_000,
        )?,
        ban: Duration::from_secs(ban_seconds),
        ..defaults
    };
    Ok(SipEdge {
        trunks: out,
        edge: sip::EdgeConfig {
            untrusted,
            tls,
            tls_roots_pem,
            rtp_ports,
            limits,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SipEdge, ConfigError> {
        #[derive(Deserialize)]
        struct Doc {
            #[serde(default, rename = "trunk")]
            trunks: Vec<TrunkSection>,
            #[serde(default)]
            sip: SipSection,
        }
        let doc: Doc = toml::from_str(text).expect("test TOML parses");
        validate(
            doc.trunks,
            doc.sip,
            &["+3220000000".to_string()],
            text,
            "t.toml",
            Path::new("."),
        )
    }

    #[test]
    fn register_and_static_trunks() {
        let text = r#"
[sip]
untrusted = "drop"
rtp_ports = "20000-29999"

[[trunk]]
name = "provider"
mode = "register"
transport = "tcp"
registrar = "sip.example.net:5060"
username = "3220000000"
password = "secret"
expires_seconds = 300
dids = ["+32 2 000 00 00"]
did_from = "to"

[[trunk]]
name = "carrier"
mode = "static"
trusted = ["203.0.113.0/24", "198.51.100.7"]
did_from = "Diversion"
"#;
        let e = parse(text).expect("valid");
        assert_eq!(e.trunks.len(), 2);
        let p = &e.trunks[0];
        assert_eq!(p.transport, sip::TrunkTransport::Tcp);
        let reg = p.register.as_ref().expect("register trunk");
        assert_eq!(reg.expires, Duration::from_secs(300));
        assert_eq!(p.did_from, sip::DidSource::To);
        assert!(format!("{reg:?}").contains("(hidden)"));
        assert!(!format!("{reg:?}").contains("secret"));
        let c = &e.trunks[1];
        assert!(c.register.is_none());
        assert_eq!(c.trusted.len(), 2);
        assert_eq!(c.did_from, sip::DidSource::Header("Diversion".into()));
        assert_eq!(e.edge.untrusted, sip::Untrusted::Drop);
        assert_eq!(e.edge.rtp_ports, Some(20000..=29999));
    }

    #[test]
    fn errors_name_trunk_line_and_key() {
        let text = "[[trunk]]\nname = \"a\"\nmode = \"static\"\ntrusted = [\"10.0.0.0/8\"]\n\n[[trunk]]\nname = \"b\"\nmode = \"static\"\ntrusted = [\"10.0.0.0/33\"]\n";
        let e = parse(text).expect_err("bad cidr");
        assert_eq!(e.key, "trunk[b].trusted");
        assert_eq!(e.line, 9, "{e}");

        let e = parse(
            "[[trunk]]\nname = \"r\"\nmode = \"register\"\nregistrar = \"h\"\nusername = \"u\"\n",
        )
        .expect_err("no password");
        assert_eq!(e.key, "trunk[r].password");

        let e = parse("[[trunk]]\nname = \"s\"\nmode = \"static\"\n").expect_err("no trusted");
        assert_eq!(e.key, "trunk[s].trusted");

        let e = parse("[[trunk]]\nname = \"s\"\nmode = \"static\"\ntrusted = [\"10.0.0.1\"]\ndids = [\"+3299\"]\n")
            .expect_err("unknown did");
        assert_eq!(e.key, "trunk[s].dids");
        assert_eq!(e.line, 5);

        let e = parse(
            "[[trunk]]\nname = \"s\"\nmode = \"static\"\ntrusted = [\"10.0.0.1\"]\nmax_calls = 0\n",
        )
        .expect_err("zero max_calls");
        assert_eq!(e.key, "trunk[s].max_calls");
        assert_eq!(e.line, 5);

        let e = parse("[sip]\nuntrusted = \"maybe\"\n").expect_err("bad untrusted");
        assert_eq!(e.key, "sip.untrusted");
        assert_eq!(e.line, 2);

        let e = parse("[sip]\ntls_listen = \"127.0.0.1:5061\"\n").expect_err("tls half");
        assert_eq!(e.key, "sip.tls_cert");
    }

    #[test]
    fn empty_means_open() {
        let e = parse("").expect("valid");
        assert!(e.trunks.is_empty());
        assert_eq!(e.edge.untrusted, sip::Untrusted::Reject);
        assert!(e.edge.tls.is_none());
    }
}
