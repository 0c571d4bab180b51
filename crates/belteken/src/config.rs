//! The TOML configuration: parsed strictly, validated into typed settings at start.
//!
//! Every error names the file, the line and the key.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Longest ring before answering.
const MAX_RING: Duration = Duration::from_secs(60);
/// Longest recording a campaign may ask for.
const MAX_RECORD: Duration = Duration::from_secs(120);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    server: ServerSection,
    #[serde(default, rename = "campaign")]
    campaigns: Vec<CampaignSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerSection {
    sip_listen: Option<SocketAddr>,
    http_listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    public_host: Option<IpAddr>,
    max_calls: Option<usize>,
    max_call_seconds: Option<u64>,
    drain_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignSection {
    slug: String,
    title: String,
    number: Option<String>,
    #[serde(default)]
    dids: Vec<String>,
    #[serde(default = "default_region")]
    default_region: String,
    #[serde(default = "default_language")]
    language: String,
    #[serde(default = "default_ring")]
    ring_seconds: f64,
    #[serde(default = "default_record_max")]
    record_max_seconds: f64,
    #[serde(default = "default_silence")]
    silence_seconds: f64,
    #[serde(default = "default_min_speech")]
    min_speech_ms: u64,
    transcript: Option<String>,
    prompts: Option<PromptFiles>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptFiles {
    greeting: PathBuf,
    story: PathBuf,
    thanks: PathBuf,
}

fn default_region() -> String {
    "BE".into()
}
fn default_language() -> String {
    "en".into()
}
fn default_ring() -> f64 {
    3.0
}
fn default_record_max() -> f64 {
    20.0
}
fn default_silence() -> f64 {
    2.0
}
fn default_min_speech() -> u64 {
    500
}

/// Where a campaign's prompt audio comes from.
#[derive(Debug, Clone)]
pub enum PromptSource {
    /// The demo audio built into the binary, in this language.
    Builtin(&'static str),
    /// WAV files.
    Files {
        greeting: PathBuf,
        story: PathBuf,
        thanks: PathBuf,
    },
}

/// One campaign, validated.
#[derive(Debug, Clone)]
pub struct CampaignSettings {
    pub slug: String,
    pub title: String,
    pub number: Option<String>,
    pub dids: Vec<String>,
    pub default_region: String,
    pub language: String,
    pub flow: flow::FlowConfig,
    pub transcript: String,
    pub prompts: PromptSource,
}

/// Everything the server needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub sip_listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub data_dir: PathBuf,
    pub public_host: Option<IpAddr>,
    pub max_calls: usize,
    pub max_call: Duration,
    /// On SIGTERM, how long calls in progress may go on before the process stops.
    pub drain: Duration,
    pub campaigns: Vec<CampaignSettings>,
}

/// A configuration error that names where it is.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {key}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub key: String,
    pub message: String,
}

pub const DEMO_TRANSCRIPT_EN: &str = include_str!("../../../audio/demo/en/transcript.txt");
pub const DEMO_TRANSCRIPT_NL: &str = include_str!("../../../audio/demo/nl/transcript.txt");

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line where `key = ` appears in the campaign block of `slug` (best effort).
fn key_line(text: &str, slug: Option<&str>, key: &str) -> usize {
    let start = slug
        .and_then(|s| {
            text.find(&format!("\"{s}\""))
                .or_else(|| text.find(&format!("'{s}'")))
        })
        .and_then(|pos| text[..pos].rfind("[[campaign]]"))
        .unwrap_or(0);
    // A dotted key ("prompts.greeting") is written as its last part inside its table.
    let key = key.rsplit('.').next().unwrap_or(key);
    let mut offset = start;
    for line in text[start..].split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with(key) && trimmed[key.len()..].trim_start().starts_with('=') {
            return line_of(text, offset);
        }
        offset += line.len();
    }
    line_of(text, start)
}

/// Parses and validates a configuration file's text. `base` resolves relative paths.
pub fn parse(text: &str, file: &str, base: &Path) -> Result<Settings, ConfigError> {
    let raw: FileConfig = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
        let message = e.message().to_string();
        let key = message.split('`').nth(1).unwrap_or("(syntax)").to_string();
        ConfigError {
            file: file.into(),
            line,
            key,
            message,
        }
    })?;
    validate(raw, text, file, base)
}

/// The settings with no configuration file: the built-in demo campaign.
pub fn defaults() -> Settings {
    let text = "";
    let mut s = validate(FileConfig::default(), text, "(defaults)", Path::new("."))
        .expect("the built-in defaults are valid");
    s.campaigns = vec![demo_campaign()];
    s
}

fn demo_campaign() -> CampaignSettings {
    CampaignSettings {
        slug: "demo".into(),
        title: "Demo: call and sign".into(),
        number: None,
        dids: Vec::new(),
        default_region: default_region(),
        language: "en".into(),
        flow: flow::FlowConfig {
            ring: Duration::from_secs(3),
            record: flow::RecordSpec {
                max: Duration::from_secs(20),
                silence_end: Duration::from_secs(2),
                initial_silence: Duration::from_secs(6),
            },
            min_speech: Duration::from_millis(500),
        },
        transcript: DEMO_TRANSCRIPT_EN.trim().into(),
        prompts: PromptSource::Builtin("en"),
    }
}

fn seconds(
    value: f64,
    max: Duration,
    err: &dyn Fn(&str, String) -> ConfigError,
    key: &str,
) -> Result<Duration, ConfigError> {
    if !value.is_finite() || value < 0.0 || value > max.as_secs_f64() {
        return Err(err(
            key,
            format!("must be between 0 and {} seconds", max.as_secs()),
        ));
    }
    Ok(Duration::from_secs_f64(value))
}

fn validate(raw: FileConfig, text: &str, file: &str, base: &Path) -> Result<Settings, ConfigError> {
    let server_err = |key: &str, message: String| ConfigError {
        file: file.into(),
        line: key_line(text, None, key),
        key: format!("server.{key}"),
        message,
    };
    let max_calls = raw.server.max_calls.unwrap_or(2000);
    if max_calls == 0 || max_calls > 100_000 {
        return Err(server_err(
            "max_calls",
            "must be between 1 and 100000".into(),
        ));
    }
    let max_call_seconds = raw.server.max_call_seconds.unwrap_or(600);
    if !(10..=86_400).contains(&max_call_seconds) {
        return Err(server_err(
            "max_call_seconds",
            "must be between 10 and 86400".into(),
        ));
    }
    let drain_seconds = raw.server.drain_seconds.unwrap_or(60);
    if drain_seconds > 3600 {
        return Err(server_err("drain_seconds", "must be at most 3600".into()));
    }
    let mut campaigns = Vec::new();
    for c in raw.campaigns {
        let slug = c.slug.clone();
        let err = |key: &str, message: String| ConfigError {
            file: file.into(),
            line: key_line(text, Some(&slug), key),
            key: format!("campaign[{slug}].{key}"),
            message,
        };
        if slug.is_empty()
            || slug.len() > 64
            || !slug
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
        {
            return Err(err("slug", "use 1-64 of a-z, 0-9 and -".into()));
        }
        if campaigns.iter().any(|x: &CampaignSettings| x.slug == slug) {
            return Err(err("slug", "two campaigns have this slug".into()));
        }
        if c.title.trim().is_empty() {
            return Err(err("title", "must not be empty".into()));
        }
        if c.default_region.len() != 2 || !store::is_known_region(&c.default_region) {
            return Err(err(
                "default_region",
                "must be a two-letter region such as BE".into(),
            ));
        }
        let transcript_builtin = match c.language.as_str() {
            "en" => DEMO_TRANSCRIPT_EN,
            "nl" => DEMO_TRANSCRIPT_NL,
            _ => return Err(err("language", "must be \"en\" or \"nl\"".into())),
        };
        let ring = seconds(c.ring_seconds, MAX_RING, &err, "ring_seconds")?;
        let record_max = seconds(c.record_max_seconds, MAX_RECORD, &err, "record_max_seconds")?;
        if record_max < Duration::from_secs(1) {
            return Err(err(
                "record_max_seconds",
                "must be at least 1 second".into(),
            ));
        }
        let silence = seconds(c.silence_seconds, MAX_RECORD, &err, "silence_seconds")?;
        if silence < Duration::from_millis(200) {
            return Err(err(
                "silence_seconds",
                "must be at least 0.2 seconds".into(),
            ));
        }
        let min_speech = Duration::from_millis(c.min_speech_ms);
        if min_speech > record_max {
            return Err(err(
                "min_speech_ms",
                "must not exceed record_max_seconds".into(),
            ));
        }
        let prompts = match c.prompts {
            None => PromptSource::Builtin(if c.language == "nl" { "nl" } else { "en" }),
            Some(p) => {
                let resolve = |key: &str, path: PathBuf| -> Result<PathBuf, ConfigError> {
                    let full = if path.is_absolute() {
                        path
                    } else {
                        base.join(path)
                    };
                    if !full.is_file() {
                        return Err(err(
                            &format!("prompts.{key}"),
                            format!("no such file: {}", full.display()),
                        ));
                    }
                    Ok(full)
                };
                PromptSource::Files {
                    greeting: resolve("greeting", p.greeting)?,
                    story: resolve("story", p.story)?,
                    thanks: resolve("thanks", p.thanks)?,
                }
            }
        };
        campaigns.push(CampaignSettings {
            slug: c.slug,
            title: c.title,
            number: c.number,
            dids: c.dids,
            default_region: c.default_region,
            language: c.language,
            flow: flow::FlowConfig {
                ring,
                record: flow::RecordSpec {
                    max: record_max,
                    silence_end: silence,
                    initial_silence: (silence * 3).max(Duration::from_secs(5)).min(record_max),
                },
                min_speech,
            },
            transcript: c
                .transcript
                .unwrap_or_else(|| transcript_builtin.trim().to_string()),
            prompts,
        });
    }
    if campaigns.is_empty() {
        campaigns.push(demo_campaign());
    }
    Ok(Settings {
        sip_listen: raw
            .server
            .sip_listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5060))),
        http_listen: raw
            .server
            .http_listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
        data_dir: raw
            .server
            .data_dir
            .map(|d| if d.is_absolute() { d } else { base.join(d) })
            .unwrap_or_else(|| PathBuf::from("belteken-data")),
        public_host: raw.server.public_host,
        max_calls,
        max_call: Duration::from_secs(max_call_seconds),
        drain: Duration::from_secs(drain_seconds),
        campaigns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Settings, ConfigError> {
        parse(text, "test.toml", Path::new("."))
    }

    #[test]
    fn empty_file_gives_demo() {
        let s = parse_str("").expect("valid");
        assert_eq!(s.campaigns.len(), 1);
        assert_eq!(s.campaigns[0].slug, "demo");
        assert_eq!(s.sip_listen, "127.0.0.1:5060".parse().expect("addr"));
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let e = parse_str("[server]\nsip_listen = \"127.0.0.1:5070\"\nbogus = 1\n")
            .expect_err("unknown key");
        assert_eq!(e.line, 3, "{e}");
        assert_eq!(e.key, "bogus", "{e}");
        assert!(e.to_string().starts_with("test.toml:3: bogus:"), "{e}");
    }

    #[test]
    fn bad_value_names_campaign_line_and_key() {
        let text = "[[campaign]]\nslug = \"a\"\ntitle = \"A\"\n\n[[campaign]]\nslug = \"b\"\ntitle = \"B\"\nring_seconds = 999\n";
        let e = parse_str(text).expect_err("ring too long");
        assert_eq!(e.line, 8, "{e}");
        assert_eq!(e.key, "campaign[b].ring_seconds");
    }

    #[test]
    fn wrong_type_names_line() {
        let e = parse_str("[[campaign]]\nslug = \"a\"\ntitle = \"A\"\nring_seconds = \"three\"\n")
            .expect_err("string for a number");
        assert_eq!(e.line, 4, "{e}");
    }

    #[test]
    fn missing_prompt_file_is_an_error() {
        let text = "[[campaign]]\nslug = \"a\"\ntitle = \"A\"\n[campaign.prompts]\ngreeting = \"nope.wav\"\nstory = \"nope.wav\"\nthanks = \"nope.wav\"\n";
        let e = parse_str(text).expect_err("missing file");
        assert_eq!(e.key, "campaign[a].prompts.greeting");
        assert_eq!(e.line, 5, "{e}");
    }

    #[test]
    fn settings_take_units() {
        let s = parse_str("[[campaign]]\nslug = \"x\"\ntitle = \"X\"\nring_seconds = 1.5\nsilence_seconds = 1\nlanguage = \"nl\"\n")
            .expect("valid");
        let c = &s.campaigns[0];
        assert_eq!(c.flow.ring, Duration::from_millis(1500));
        assert_eq!(c.flow.record.silence_end, Duration::from_secs(1));
        assert!(matches!(c.prompts, PromptSource::Builtin("nl")));
        assert!(c.transcript.len() > 20);
    }
}
