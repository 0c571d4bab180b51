//! The `[cloud]` section of the config: cloud telephony providers (Twilio, Telnyx TeXML)
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
//! ```
//! A campaign is reached by its `dids` (the provider's `To`, in E.164).

use serde::Deserialize;

use crate::config::{CampaignSettings, ConfigError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudSection {
    public_url: String,
    twilio: Option<TwilioSection>,
    telnyx: Option<TelnyxSection>,
    /// Attempts to fetch a recording (default 5), the first pause between them (default 500 ms).
    fetch_attempts: Option<u32>,
    fetch_pause_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TwilioSection {
    account_sid: String,
    auth_token: Option<String>,
    /// Read the auth token from this environment variable instead (kept out of the file).
    auth_token_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TelnyxSection {
    public_key: String,
}

/// The validated `[cloud]` section.
#[derive(Debug, Clone)]
pub struct CloudSettings {
    pub public_url: String,
    pub twilio: Option<(String, String)>,
    pub telnyx_public_key: Option<String>,
    pub fetch_attempts: u32,
    pub fetch_pause: std::time::Duration,
}

fn line_of(text: &str, needle: &str) -> usize {
    text.find(needle)
        .map(|i| text[..i].matches('\n').count() + 1)
        .unwrap_or(1)
}

pub fn validate(
    raw: Option<CloudSection>,
    campaigns: &[CampaignSettings],
    text: &str,
    file: &str,
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
            let token = match (t.auth_token, t.auth_token_env) {
                (Some(tok), None) => tok,
                (None, Some(var)) => std::env::var(&var).map_err(|_| {
                    err(
                        "twilio.auth_token_env",
                        format!("environment variable {var} is not set"),
                    )
                })?,
                _ => {
                    return Err(err(
                        "twilio.auth_token",
                        "set exactly one of auth_token and auth_token_env".into(),
                    ))
                }
            };
            if token.trim().is_empty() {
                return Err(err("twilio.auth_token", "must not be empty".into()));
            }
            Some((t.account_sid, token.trim().to_string()))
        }
    };
    let telnyx_public_key = match raw.telnyx {
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
            Some(t.public_key.trim().to_string())
        }
    };
    if twilio.is_none() && telnyx_public_key.is_none() {
        return Err(err("twilio", "configure at least one provider".into()));
    }
    // A step a provider cannot carry out is an error now, not during a call: the providers
    // transfer with <Dial>, to a SIP URI or a tel: number only.
    for c in campaigns {
        for step in c.flow.steps() {
            if let flow::spec::StepKind::Transfer { uri, .. } = &step.kind {
                if !(uri.starts_with("sip:") || uri.starts_with("sips:") || uri.starts_with("tel:"))
                {
                    return Err(err(
                        "public_url",
                        format!(
                            "campaign {}: step {}: the cloud providers can only transfer to a sip: or tel: URI, not {uri:?}",
                            c.slug, step.name
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
    Ok(Some(CloudSettings {
        public_url: url,
        twilio,
        telnyx_public_key,
        fetch_attempts,
        fetch_pause: std::time::Duration::from_millis(pause),
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
        assert!(validate(Some(t), &[], "", "f").is_err());
        let t: CloudSection = toml::from_str(
            "public_url = \"https://x.org/\"\n[twilio]\naccount_sid = \"AC1\"\nauth_token = \"t\"",
        )
        .expect("toml");
        let s = validate(Some(t), &[], "", "f")
            .expect("valid")
            .expect("some");
        assert_eq!(s.public_url, "https://x.org");
        let t: CloudSection = toml::from_str(
            "public_url = \"ftp://x\"\n[twilio]\naccount_sid = \"AC1\"\nauth_token = \"t\"",
        )
        .expect("toml");
        assert!(validate(Some(t), &[], "", "f").is_err());
    }
}
