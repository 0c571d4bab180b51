//! The `[cloud]` section of the config: cloud telephony providers (Twilio, Telnyx TeXML, Vonage)
//! whose webhooks run the campaigns' flows (crates/cloud, docs/cloud.md).
//!
//! ```toml
//! [cloud]
//! public_url = "https://line.example.org"   # what the provider's console calls
//!
//! [cloud.twilio]
//! account_sid = "AC..."
//! auth_token = "..."            # or auth_token_env = "TWILIO_AUTH_TOKEN"
//!
//! [cloud.telnyx]
//! public_key = "base64 Ed25519 public key"
//! api_key_env = "TELNYX_API_KEY"           # deletes Telnyx's copy of the recordings
//!
//! [cloud.vonage]
//! application_id = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
//! private_key_file = "private.key"
//! signature_secret_env = "VONAGE_SIGNATURE_SECRET"
//! ```
//! A campaign is reached by its `dids` (the provider's `To`, in E.164).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config_error::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudSection {
    public_url: String,
    twilio: Option<TwilioSection>,
    telnyx: Option<TelnyxSection>,
    vonage: Option<VonageSection>,
    /// Attempts to fetch a recording (default 5), the first pause between them (default 500 ms).
    fetch_attempts: Option<u32>,
    fetch_pause_ms: Option<u64>,
    /// Extra CA certificates (PEM) trusted for the providers' APIs beside the system's
    /// (a private CA, a TLS-intercepting proxy, tests). Relative to the config file.
    ca_file: Option<PathBuf>,
    /// For tests only: lets recording fetches reach private, loopback and link-local
    /// addresses (local stand-ins of the providers' APIs). Default false.
    allow_private_fetch: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TwilioSection {
    account_sid: String,
    auth_token: Option<String>,
    /// Read the auth token from this environment variable instead (kept out of the file).
    auth_token_env: Option<String>,
    /// Delete Twilio's copy of a recording once the signature is stored (default true).
    delete_recordings: Option<bool>,
    /// The REST API (default `https://api.twilio.com`).
    api_base: Option<String>,
    /// Hosts recordings may be fetched from (default `cloud::TWILIO_FETCH_HOSTS`).
    fetch_hosts: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TelnyxSection {
    public_key: String,
    /// API key (v2), for deleting Telnyx's copy of a recording.
    api_key: Option<String>,
    api_key_env: Option<String>,
    /// Delete Telnyx's copy of a recording once the signature is stored (default true; needs
    /// the API key).
    delete_recordings: Option<bool>,
    /// The REST API (default `https://api.telnyx.com`).
    api_base: Option<String>,
    /// How far `telnyx-timestamp` may be from the clock, in seconds (default 300).
    timestamp_tolerance_seconds: Option<u64>,
    /// Hosts recordings may be fetched from (default `cloud::TELNYX_FETCH_HOSTS`).
    fetch_hosts: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VonageSection {
    application_id: String,
    /// The application's private key (PEM), as downloaded when the application was made.
    /// Relative to the config file.
    private_key_file: PathBuf,
    /// The account's signature secret (Settings > API settings), for signed webhooks.
    signature_secret: Option<String>,
    signature_secret_env: Option<String>,
    /// Delete Vonage's copy of a recording once the signature is stored (default true).
    delete_recordings: Option<bool>,
    /// The API (default `https://api.nexmo.com`).
    api_base: Option<String>,
    /// How old a webhook JWT's `iat` may be, in seconds (default 300).
    jwt_tolerance_seconds: Option<u64>,
    /// Hosts recordings may be fetched from (default `cloud::VONAGE_FETCH_HOSTS`).
    fetch_hosts: Option<Vec<String>>,
}

/// The validated `[cloud]` section.
#[derive(Debug, Clone)]
pub struct CloudSettings {
    pub public_url: String,
    pub twilio: Option<cloud::TwilioAccount>,
    pub telnyx: Option<cloud::TelnyxAccount>,
    pub vonage: Option<cloud::VonageAccount>,
    pub fetch_attempts: u32,
    pub fetch_pause: std::time::Duration,
    /// The API client, trusting the system's CAs and `ca_file`.
    pub http: cloud::fetch::Client,
}

fn line_of(text: &str, needle: &str) -> usize {
    text.find(needle)
        .map(|i| text[..i].matches('\n').count() + 1)
        .unwrap_or(1)
}

/// A secret given inline or through an environment variable: exactly one of the two.
fn secret(
    inline: Option<String>,
    env: Option<String>,
    required: bool,
) -> Result<Option<String>, String> {
    let v = match (inline, env) {
        (Some(v), None) => v,
        (None, Some(var)) => {
            std::env::var(&var).map_err(|_| format!("environment variable {var} is not set"))?
        }
        (None, None) if !required => return Ok(None),
        _ => return Err("set exactly one of the value and its _env variable".into()),
    };
    let v = v.trim().to_string();
    if v.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(Some(v))
}

/// A provider's API base URL: https, no trailing slash.
fn api_base(raw: Option<String>, default: &str) -> Result<String, String> {
    let url = raw.unwrap_or_else(|| default.to_string());
    let url = url.trim().trim_end_matches('/').to_string();
    if !url.starts_with("https://") || url.contains(['?', '#', ' ']) {
        return Err("must be an https:// URL without query".into());
    }
    Ok(url)
}

/// The hosts a provider's recordings may come from: the configured list (or the provider's
/// defaults) and the API base's host.
fn fetch_hosts(
    raw: Option<Vec<String>>,
    defaults: &[&str],
    api_base: &str,
) -> Result<cloud::fetch::HostList, String> {
    let list = match raw {
        Some(v) => cloud::fetch::HostList::new(v),
        None => cloud::fetch::HostList::new(defaults),
    }
    .map_err(|e| e.to_string())?;
    let host = cloud::fetch::host_of(api_base).ok_or("api_base has no host")?;
    Ok(list.with_host(&host))
}

pub fn validate(
    raw: Option<CloudSection>,
    campaigns: &[(&str, &flow::spec::FlowSpec)],
    text: &str,
    file: &str,
    base: &Path,
) -> Result<Option<CloudSettings>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let err = |key: &str, message: String| ConfigError {
        file: file.into(),
        line: line_of(text, key.rsplit('.').next().unwrap_or(key)),
        key: format!("cloud.{key}"),
        message,
    };
    let url = raw.public_url.trim().trim_end_matches('/').to_string();
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.contains(['?', '#', ' '])
    {
        return Err(err(
            "public_url",
            "must be the http(s):// URL the provider calls, without query".into(),
        ));
    }
    let twilio = match raw.twilio {
        None => None,
        Some(t) => {
            if !t.account_sid.starts_with("AC") {
                return Err(err("twilio.account_sid", "must start with AC".into()));
            }
            let token = secret(t.auth_token, t.auth_token_env, true)
                .map_err(|m| err("twilio.auth_token", m))?
                .unwrap_or_default();
            let base = api_base(t.api_base, "https://api.twilio.com")
                .map_err(|m| err("twilio.api_base", m))?;
            Some(cloud::TwilioAccount {
                account_sid: t.account_sid,
                auth_token: token,
                fetch_hosts: fetch_hosts(t.fetch_hosts, cloud::TWILIO_FETCH_HOSTS, &base)
                    .map_err(|m| err("twilio.fetch_hosts", m))?,
                api_base: base,
                delete_recordings: t.delete_recordings.unwrap_or(true),
            })
        }
    };
    let telnyx = match raw.telnyx {
        None => None,
        Some(t) => {
            use base64_check::is_ed25519_key;
            if !is_ed25519_key(&t.public_key) {
                return Err(err(
                    "telnyx.public_key",
                    "must be the base64 Ed25519 public key (32 bytes) from the Telnyx portal"
                        .into(),
                ));
            }
            let api_key =
                secret(t.api_key, t.api_key_env, false).map_err(|m| err("telnyx.api_key", m))?;
            let delete_recordings = t.delete_recordings.unwrap_or(true);
            if delete_recordings && api_key.is_none() {
                return Err(err(
                    "telnyx",
                    "deleting Telnyx's copy of the recordings (delete_recordings, on by default) needs api_key or api_key_env; or set delete_recordings = false".into(),
                ));
            }
            let tolerance = t.timestamp_tolerance_seconds.unwrap_or(300);
            if !(10..=3600).contains(&tolerance) {
                return Err(err(
                    "telnyx.timestamp_tolerance_seconds",
                    "must be between 10 and 3600".into(),
                ));
            }
            let base = api_base(t.api_base, "https://api.telnyx.com")
                .map_err(|m| err("telnyx.api_base", m))?;
            Some(cloud::TelnyxAccount {
                public_key: t.public_key.trim().to_string(),
                api_key,
                fetch_hosts: fetch_hosts(t.fetch_hosts, cloud::TELNYX_FETCH_HOSTS, &base)
                    .map_err(|m| err("telnyx.fetch_hosts", m))?,
                api_base: base,
                delete_recordings,
                timestamp_tolerance: std::time::Duration::from_secs(tolerance),
            })
        }
    };
    let vonage = match raw.vonage {
        None => None,
        Some(v) => {
            let id = v.application_id.trim().to_string();
            if id.len() != 36 || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                return Err(err(
                    "vonage.application_id",
                    "must be the application's id (a UUID) from the Vonage dashboard".into(),
                ));
            }
            let path = if v.private_key_file.is_absolute() {
                v.private_key_file
            } else {
                base.join(v.private_key_file)
            };
            let pem = std::fs::read(&path).map_err(|e| {
                err(
                    "vonage.private_key_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            let key = cloud::sig::RsaSigner::from_pem(&pem).map_err(|m| {
                err(
                    "vonage.private_key_file",
                    format!("{}: {m}", path.display()),
                )
            })?;
            let secret = secret(v.signature_secret, v.signature_secret_env, true)
                .map_err(|m| err("vonage.signature_secret", m))?
                .unwrap_or_default();
            let tolerance = v.jwt_tolerance_seconds.unwrap_or(300);
            if !(10..=3600).contains(&tolerance) {
                return Err(err(
                    "vonage.jwt_tolerance_seconds",
                    "must be between 10 and 3600".into(),
                ));
            }
            let base = api_base(v.api_base, "https://api.nexmo.com")
                .map_err(|m| err("vonage.api_base", m))?;
            Some(cloud::VonageAccount {
                application_id: id,
                private_key: std::sync::Arc::new(key),
                signature_secret: secret,
                fetch_hosts: fetch_hosts(v.fetch_hosts, cloud::VONAGE_FETCH_HOSTS, &base)
                    .map_err(|m| err("vonage.fetch_hosts", m))?,
                api_base: base,
                delete_recordings: v.delete_recordings.unwrap_or(true),
                jwt_tolerance: std::time::Duration::from_secs(tolerance),
                seen_tokens: std::sync::Arc::default(),
            })
        }
    };
    if twilio.is_none() && telnyx.is_none() && vonage.is_none() {
        return Err(err("twilio", "configure at least one provider".into()));
    }
    // A step a provider cannot carry out is an error now, not during a call: the providers
    // transfer with <Dial>, to a SIP URI or a tel: number only.
    for (slug, flow) in campaigns {
        for step in flow.steps() {
            if let flow::spec::StepKind::Transfer { uri, .. } = &step.kind {
                if !(uri.starts_with("sip:") || uri.starts_with("sips:") || uri.starts_with("tel:"))
                {
                    return Err(err(
                        "public_url",
                        format!(
                            "campaign {}: step {}: the cloud providers can only transfer to a sip: or tel: URI, not {uri:?}",
                            slug, step.name
                        ),
                    ));
                }
            }
        }
    }
    let fetch_attempts = raw.fetch_attempts.unwrap_or(5);
    if !(1..=20).contains(&fetch_attempts) {
        return Err(err("fetch_attempts", "must be between 1 and 20".into()));
    }
    let pause = raw.fetch_pause_ms.unwrap_or(500);
    if pause > 10_000 {
        return Err(err("fetch_pause_ms", "must be at most 10000".into()));
    }
    let extra_ca = match raw.ca_file {
        None => None,
        Some(p) => {
            let p = if p.is_absolute() { p } else { base.join(p) };
            Some(
                std::fs::read(&p)
                    .map_err(|e| err("ca_file", format!("cannot read {}: {e}", p.display())))?,
            )
        }
    };
    let http = cloud::fetch::Client::new(extra_ca.as_deref())
        .map_err(|e| err("ca_file", e.to_string()))?
        .allow_private(raw.allow_private_fetch.unwrap_or(false));
    Ok(Some(CloudSettings {
        public_url: url,
        twilio,
        telnyx,
        vonage,
        fetch_attempts,
        fetch_pause: std::time::Duration::from_millis(pause),
        http,
    }))
}

mod base64_check {
    /// Whether `s` is standard base64 of 32 bytes (44 characters with one `=`).
    pub fn is_ed25519_key(s: &str) -> bool {
        let s = s.trim();
        s.len() == 44
            && s.ends_with('=')
            && s[..43]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_a_provider_and_a_url() {
        let t: CloudSection = toml::from_str("public_url = \"https://x.org/\"").expect("toml");
        assert!(validate(Some(t), &[], "", "f", Path::new(".")).is_err());
        let t: CloudSection = toml::from_str(
            "public_url = \"https://x.org/\"\n[twilio]\naccount_sid = \"AC1\"\nauth_token = \"t\"",
        )
        .expect("toml");
        let s = validate(Some(t), &[], "", "f", Path::new("."))
            .expect("valid")
            .expect("some");
        assert_eq!(s.public_url, "https://x.org");
        let t: CloudSection = toml::from_str(
            "public_url = \"ftp://x\"\n[twilio]\naccount_sid = \"AC1\"\nauth_token = \"t\"",
        )
        .expect("toml");
        assert!(validate(Some(t), &[], "", "f", Path::new(".")).is_err());
    }

    fn check(toml_text: &str, base: &Path) -> Result<Option<CloudSettings>, ConfigError> {
        let t: CloudSection = toml::from_str(toml_text).expect("toml");
        validate(Some(t), &[], toml_text, "f", base)
    }

    const KEY: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

    #[test]
    fn telnyx_deletion_needs_an_api_key() {
        let base = "public_url = \"https://x.org\"\n[telnyx]\n";
        let e = check(&format!("{base}public_key = \"{KEY}\""), Path::new("."))
            .expect_err("no api key");
        assert_eq!(e.key, "cloud.telnyx");
        assert!(e.message.contains("api_key"), "{}", e.message);
        let s = check(
            &format!("{base}public_key = \"{KEY}\"\ndelete_recordings = false"),
            Path::new("."),
        )
        .expect("valid")
        .expect("some");
        let t = s.telnyx.expect("telnyx");
        assert!(!t.delete_recordings);
        assert_eq!(t.api_base, "https://api.telnyx.com");
        let s = check(
            &format!("{base}public_key = \"{KEY}\"\napi_key = \"KEY1\""),
            Path::new("."),
        )
        .expect("valid")
        .expect("some");
        assert!(s.telnyx.expect("telnyx").delete_recordings);
        assert!(check(&format!("{base}public_key = \"short\""), Path::new(".")).is_err());
    }

    #[test]
    fn vonage_needs_a_loadable_key() {
        let dir = std::env::temp_dir().join(format!("belteken-vonage-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(
            dir.join("bad.key"),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .expect("write");
        let cfg = |file: &str, id: &str| {
            format!(
                "public_url = \"https://x.org\"\n[vonage]\napplication_id = \"{id}\"\nprivate_key_file = \"{file}\"\nsignature_secret = \"s\""
            )
        };
        let id = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab";
        let e = check(&cfg("missing.key", id), &dir).expect_err("missing");
        assert_eq!(e.key, "cloud.vonage.private_key_file");
        let e = check(&cfg("bad.key", id), &dir).expect_err("bad key");
        assert_eq!(e.key, "cloud.vonage.private_key_file");
        let e = check(&cfg("bad.key", "not-a-uuid"), &dir).expect_err("bad id");
        assert_eq!(e.key, "cloud.vonage.application_id");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn fetch_hosts_and_an_https_api() {
        let base =
            "public_url = \"https://x.org\"\n[twilio]\naccount_sid = \"AC1\"\nauth_token = \"t\"\n";
        let s = check(base, Path::new(".")).expect("valid").expect("some");
        let t = s.twilio.expect("twilio");
        assert!(t.fetch_hosts.allows("api.twilio.com"));
        assert!(!t.fetch_hosts.allows("127.0.0.1"));
        let s = check(
            &format!("{base}fetch_hosts = [\"media.example.org\"]\napi_base = \"https://127.0.0.1:8443\""),
            Path::new("."),
        )
        .expect("valid")
        .expect("some");
        let t = s.twilio.expect("twilio");
        assert!(t.fetch_hosts.allows("media.example.org") && t.fetch_hosts.allows("127.0.0.1"));
        assert!(!t.fetch_hosts.allows("api.twilio.com"));
        let e = check(
            &format!("{base}api_base = \"http://127.0.0.1:8080\""),
            Path::new("."),
        )
        .expect_err("http");
        assert_eq!(e.key, "cloud.twilio.api_base");
        let e = check(&format!("{base}fetch_hosts = [\"*.com\"]"), Path::new("."))
            .expect_err("too broad");
        assert_eq!(e.key, "cloud.twilio.fetch_hosts");
        let e =
            toml::from_str::<CloudSection>("public_url = \"https://x.org\"\nallow_private = true")
                .expect_err("unknown key");
        assert!(e.to_string().contains("allow_private"), "{e}");
    }

    #[test]
    fn secrets_from_the_environment() {
        let t = "public_url = \"https://x.org\"\n[twilio]\naccount_sid = \"AC1\"\nauth_token_env = \"BELTEKEN_TEST_SURELY_UNSET_VAR\"";
        let e = check(t, Path::new(".")).expect_err("unset");
        assert!(
            e.message.contains("BELTEKEN_TEST_SURELY_UNSET_VAR"),
            "{}",
            e.message
        );
        let both = "public_url = \"https://x.org\"\n[twilio]\naccount_sid = \"AC1\"\nauth_token = \"t\"\nauth_token_env = \"X\"";
        assert!(check(both, Path::new(".")).is_err());
    }

    #[test]
    fn extra_ca_file_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("belteken-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("empty.pem"), "nothing here\n").expect("write");
        let t = "public_url = \"https://x.org\"\nca_file = \"empty.pem\"\n[twilio]\naccount_sid = \"AC1\"\nauth_token = \"t\"";
        let e = check(t, &dir).expect_err("no certs");
        assert_eq!(e.key, "cloud.ca_file");
        let t = "public_url = \"https://x.org\"\nca_file = \"missing.pem\"\n[twilio]\naccount_sid = \"AC1\"\nauth_token = \"t\"";
        assert_eq!(check(t, &dir).expect_err("missing").key, "cloud.ca_file");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
