//! The TOML configuration: parsed strictly, validated into typed settings at start.
//!
//! Every error names the file, the line and the key.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use flow::spec::{FlowSpec, FlowToml, PromptFiles as FlowPromptFiles, VoicemailParams};
use flow::Lang;

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
    #[serde(default, rename = "trunk")]
    trunks: Vec<crate::trunks::TrunkSection>,
    #[serde(default)]
    sip: crate::trunks::SipSection,
    #[serde(default)]
    store: StoreSection,
    #[serde(default)]
    web: crate::web_config::WebSection,
    // cloud telephony: `[cloud]`, see providers.rs
    cloud: Option<crate::providers::CloudSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    /// `postgres://user:password@host:port/db` for several nodes; default: SQLite in data_dir.
    url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerSection {
    sip_listen: Option<SocketAddr>,
    http_listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    public_host: Option<IpAddr>,
    max_calls: Option<usize>,
    /// New calls get 503 while more than this share (percent) of pacing rounds starts late.
    shed_late_percent: Option<f64>,
    max_call_seconds: Option<u64>,
    drain_seconds: Option<u64>,
    /// The campaign for numbers a trunk delivers that no campaign owns (default: 404).
    default_campaign: Option<String>,
    /// The address the public reaches the web pages at, e.g. "https://sign.example.org".
    public_url: Option<String>,
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
    /// The helpline the default flow offers with "press 0" (a SIP URI).
    helpline: Option<String>,
    /// First and last day (UTC, `YYYY-MM-DD`) the campaign takes signatures.
    opens: Option<String>,
    closes: Option<String>,
    /// The number of signatures the campaign aims for.
    goal: Option<u64>,
    /// The language of calls to a DID: `{ "+3220000001" = "fr" }`.
    #[serde(default)]
    language_by_did: BTreeMap<String, String>,
    /// The campaign's own call flow (docs/flows.md); default: the voicemail.
    flow: Option<FlowToml>,
    /// A directory with the campaign's own number clips (`{lang}/{token}.wav`).
    numbers_dir: Option<PathBuf>,
    /// The page's title and transcript in other languages: `[campaign.texts.fr]`.
    #[serde(default)]
    texts: BTreeMap<String, TextSection>,
    /// "all_non_invalid" (default) or "valid_only": which signatures the public count shows.
    count_policy: Option<String>,
    /// Days after `closes` when recordings, then signatures, are removed (default: kept).
    recordings_days: Option<u32>,
    signatures_days: Option<u32>,
    /// "anonymise" (default) or "delete": what happens to signatures after signatures_days.
    signature_retention: Option<String>,
    /// Keep the encrypted number of callers who asked to be contacted (default: false).
    #[serde(default)]
    keep_contact: bool,
    /// Signatures needed per Belgian region, for the export's summary.
    threshold_flanders: Option<u64>,
    threshold_wallonia: Option<u64>,
    threshold_brussels: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TextSection {
    title: String,
    transcript: String,
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

/// One campaign as the configuration file describes it, validated: the source from which
/// `campaign_admin::Editor` builds the [`driver::Campaign`] that calls and pages share (with
/// the stored edits on top, and its audio loaded).
#[derive(Debug, Clone)]
pub struct CampaignSource {
    pub slug: String,
    pub title: String,
    pub number: Option<String>,
    pub dids: Vec<String>,
    pub default_region: String,
    pub language: String,
    pub transcript: String,
    /// The call flow, validated; its prompt files are relative to `base`, or built in
    /// (`builtin:` paths).
    pub flow: Arc<FlowSpec>,
    pub base: PathBuf,
    pub opens: Option<SystemTime>,
    pub closes: Option<SystemTime>,
    pub goal: Option<u64>,
    pub did_languages: HashMap<String, Lang>,
    /// The registry's policy for this campaign (count, retention, contact, thresholds).
    pub registry: store::CampaignSettings,
    /// (language, title, transcript) for the page in other languages.
    pub translations: Vec<(String, String, String)>,
    /// The campaign's own number clips, relative to `base`.
    pub numbers_dir: Option<PathBuf>,
}

/// Everything the server needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub sip_listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub data_dir: PathBuf,
    pub public_host: Option<IpAddr>,
    pub max_calls: usize,
    /// Load shedding: the late-round share (percent) past which new calls get 503; 0: off.
    pub shed_late_percent: f64,
    pub max_call: Duration,
    /// On SIGTERM, how long calls in progress may go on before the process stops.
    pub drain: Duration,
    pub campaigns: Vec<CampaignSource>,
    /// PostgreSQL URL; None: SQLite in the data dir.
    pub store_url: Option<String>,
    pub default_campaign: Option<String>,
    /// Trunks, TLS, RTP ports and rate limits of the SIP channel.
    pub sip_edge: crate::trunks::SipEdge,
    /// Cloud telephony providers; None: no webhooks.
    pub cloud: Option<crate::providers::CloudSettings>,
    /// Public address of the web pages (no trailing slash), for link previews and the embed.
    pub public_url: Option<String>,
    /// `[web]`: the HTTP server's limits and trusted proxies.
    pub web: crate::web_config::WebSettings,
}

pub use crate::config_error::ConfigError;

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

/// Prompt paths that start with this are audio built into the binary (`audio/` in the source).
pub const BUILTIN: &str = "builtin:";

/// The voicemail flow with the demo audio of `language`.
fn demo_flow(slug: &str, params: &VoicemailParams) -> FlowToml {
    let lang = params.language.code();
    let lang = if lang == "nl" { "nl" } else { "en" };
    let mut raw = FlowToml::voicemail(params);
    for name in ["greeting", "story", "thanks"] {
        raw.prompts.insert(
            name.into(),
            FlowPromptFiles::All(format!("{BUILTIN}demo/{lang}/{name}.wav")),
        );
    }
    let _ = slug;
    raw
}

fn demo_campaign() -> CampaignSource {
    let params = VoicemailParams {
        language: Lang::En,
        ring: Duration::from_secs(3),
        record_max: Duration::from_secs(20),
        silence_end: Duration::from_secs(2),
        initial_silence: Duration::from_secs(6),
        min_speech: Duration::from_millis(500),
        helpline: None,
    };
    let spec = FlowSpec::build("demo", demo_flow("demo", &params))
        .expect("the built-in demo flow is valid");
    CampaignSource {
        slug: "demo".into(),
        title: "Demo: call and sign".into(),
        number: None,
        dids: Vec::new(),
        default_region: default_region(),
        language: "en".into(),
        transcript: DEMO_TRANSCRIPT_EN.trim().into(),
        flow: Arc::new(spec),
        base: PathBuf::from("."),
        opens: None,
        closes: None,
        goal: None,
        did_languages: HashMap::new(),
        registry: store::CampaignSettings::default(),
        numbers_dir: None,
        translations: vec![(
            "nl".into(),
            "Demo: bel en teken".into(),
            DEMO_TRANSCRIPT_NL.trim().into(),
        )],
    }
}

/// Midnight UTC of a `YYYY-MM-DD` date.
fn parse_date(text: &str) -> Option<SystemTime> {
    let mut parts = text.trim().splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days).ok()? * 86_400;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// The line of the `index`-th `[[campaign.flow.step]]` of a campaign (best effort).
fn step_line(text: &str, slug: &str, index: usize) -> Option<usize> {
    let start = text
        .find(&format!("\"{slug}\""))
        .and_then(|pos| text[..pos].rfind("[[campaign]]"))
        .unwrap_or(0);
    let rest = &text[start..];
    let mut seen = 0;
    let mut offset = start;
    for line in rest.split_inclusive('\n') {
        if line.trim_start().starts_with("[[campaign.flow.step]]") {
            if seen == index {
                return Some(line_of(text, offset));
            }
            seen += 1;
        }
        offset += line.len();
    }
    None
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
    let shed_late_percent = raw.server.shed_late_percent.unwrap_or(1.0);
    if !(0.0..=100.0).contains(&shed_late_percent) {
        return Err(server_err(
            "shed_late_percent",
            "must be between 0 (off) and 100".into(),
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
    let web = crate::web_config::validate(raw.web, text, file)?;
    let public_url = match &raw.server.public_url {
        None => None,
        Some(url) => Some(public_url(url).map_err(|m| server_err("public_url", m.into()))?),
    };
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
        if campaigns.iter().any(|x: &CampaignSource| x.slug == slug) {
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
            "fr" => DEMO_TRANSCRIPT_EN,
            _ => return Err(err("language", "must be \"nl\", \"fr\" or \"en\"".into())),
        };
        let language: Lang = c
            .language
            .parse()
            .map_err(|_| err("language", "must be \"nl\", \"fr\" or \"en\"".into()))?;
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
        if let Some(h) = &c.helpline {
            if !(h.starts_with("sip:") || h.starts_with("sips:") || h.starts_with("tel:")) {
                return Err(err("helpline", "must be a sip:, sips: or tel: URI".into()));
            }
        }
        let opens = match &c.opens {
            None => None,
            Some(d) => Some(
                parse_date(d).ok_or_else(|| err("opens", "must be a date YYYY-MM-DD".into()))?,
            ),
        };
        let closes = match &c.closes {
            None => None,
            // The last day is included: the campaign closes at the next midnight.
            Some(d) => Some(
                parse_date(d).ok_or_else(|| err("closes", "must be a date YYYY-MM-DD".into()))?
                    + Duration::from_secs(86_400),
            ),
        };
        if let (Some(o), Some(cl)) = (opens, closes) {
            if cl <= o {
                return Err(err("closes", "must not be before opens".into()));
            }
        }
        let mut did_languages = HashMap::new();
        for (did, lang) in &c.language_by_did {
            let lang: Lang = lang.parse().map_err(|_| {
                err(
                    "language_by_did",
                    format!("{did}: must be \"nl\", \"fr\" or \"en\""),
                )
            })?;
            did_languages.insert(did.clone(), lang);
        }
        let mut translations = Vec::new();
        for (lang, t) in &c.texts {
            if lang.parse::<Lang>().is_err() || *lang == c.language {
                return Err(err(
                    &format!("texts.{lang}"),
                    "must be nl, fr or en, other than the campaign's language".into(),
                ));
            }
            if t.title.trim().is_empty() {
                return Err(err(
                    &format!("texts.{lang}"),
                    "title must not be empty".into(),
                ));
            }
            translations.push((lang.clone(), t.title.clone(), t.transcript.clone()));
        }
        let mut registry = store::CampaignSettings {
            closes_at: closes,
            recordings_days: c.recordings_days,
            signatures_days: c.signatures_days,
            keep_contact: c.keep_contact,
            ..store::CampaignSettings::default()
        };
        match c.count_policy.as_deref() {
            None | Some("all_non_invalid") => {}
            Some("valid_only") => registry.count_policy = store::CountPolicy::ValidOnly,
            Some(_) => {
                return Err(err(
                    "count_policy",
                    "must be \"all_non_invalid\" or \"valid_only\"".into(),
                ))
            }
        }
        match c.signature_retention.as_deref() {
            None | Some("anonymise") => {}
            Some("delete") => registry.signature_retention = store::SignatureRetention::Delete,
            Some(_) => {
                return Err(err(
                    "signature_retention",
                    "must be \"anonymise\" or \"delete\"".into(),
                ))
            }
        }
        if let Some(n) = c.threshold_flanders {
            registry.region_thresholds.flanders = n;
        }
        if let Some(n) = c.threshold_wallonia {
            registry.region_thresholds.wallonia = n;
        }
        if let Some(n) = c.threshold_brussels {
            registry.region_thresholds.brussels = n;
        }
        if (c.recordings_days.is_some() || c.signatures_days.is_some()) && closes.is_none() {
            return Err(err(
                "recordings_days",
                "retention counts from `closes`: set the campaign's closing date".into(),
            ));
        }
        let raw_flow = match (c.flow, c.prompts) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "prompts",
                    "a campaign with its own flow names its audio in [campaign.flow.prompts]"
                        .into(),
                ))
            }
            (Some(f), None) => f,
            (None, prompts) => {
                let params = VoicemailParams {
                    language,
                    ring,
                    record_max,
                    silence_end: silence,
                    initial_silence: (silence * 3).max(Duration::from_secs(5)).min(record_max),
                    min_speech,
                    helpline: c.helpline.clone(),
                };
                let mut raw = demo_flow(&slug, &params);
                if let Some(p) = prompts {
                    for (name, path) in [
                        ("greeting", p.greeting),
                        ("story", p.story),
                        ("thanks", p.thanks),
                    ] {
                        raw.prompts.insert(
                            name.into(),
                            FlowPromptFiles::All(path.to_string_lossy().into_owned()),
                        );
                    }
                }
                raw
            }
        };
        // Every prompt file the flow names must exist now, not at the first call.
        for (name, files) in &raw_flow.prompts {
            let paths: Vec<&String> = match files {
                FlowPromptFiles::All(p) => vec![p],
                FlowPromptFiles::PerLanguage(m) => m.values().collect(),
            };
            for p in paths {
                if p.starts_with(BUILTIN) {
                    continue;
                }
                let full = base.join(p);
                if !full.is_file() {
                    return Err(err(
                        &format!("prompts.{name}"),
                        format!("no such file: {}", full.display()),
                    ));
                }
            }
        }
        let spec = FlowSpec::build(&slug, raw_flow).map_err(|e| {
            let line = e
                .step_index
                .and_then(|i| step_line(text, &slug, i))
                .unwrap_or_else(|| key_line(text, Some(&slug), e.key.as_deref().unwrap_or("flow")));
            let key = match (&e.step, &e.key) {
                (Some(step), Some(k)) => format!("campaign[{slug}].flow.step[{step}].{k}"),
                (Some(step), None) => format!("campaign[{slug}].flow.step[{step}]"),
                (None, Some(k)) => format!("campaign[{slug}].flow.{k}"),
                (None, None) => format!("campaign[{slug}].flow"),
            };
            ConfigError {
                file: file.into(),
                line,
                key,
                message: e.to_string(),
            }
        })?;
        campaigns.push(CampaignSource {
            slug: c.slug,
            title: c.title,
            number: c.number,
            dids: c.dids,
            default_region: c.default_region,
            language: c.language,
            transcript: c
                .transcript
                .unwrap_or_else(|| transcript_builtin.trim().to_string()),
            flow: Arc::new(spec),
            base: base.to_path_buf(),
            opens,
            closes,
            goal: c.goal,
            did_languages,
            registry,
            translations,
            numbers_dir: match c.numbers_dir {
                Some(d) if !base.join(&d).is_dir() => {
                    return Err(err(
                        "numbers_dir",
                        format!("no such directory: {}", base.join(&d).display()),
                    ))
                }
                other => other,
            },
        });
    }
    if campaigns.is_empty() {
        campaigns.push(demo_campaign());
    }
    let default_campaign = raw.server.default_campaign.clone();
    if let Some(slug) = &default_campaign {
        if !campaigns.iter().any(|c| &c.slug == slug) {
            return Err(server_err(
                "default_campaign",
                format!("no campaign has the slug {slug:?}"),
            ));
        }
    }
    let all_dids: Vec<String> = campaigns.iter().flat_map(|c| c.dids.clone()).collect();
    let sip_edge = crate::trunks::validate(raw.trunks, raw.sip, &all_dids, text, file, base)?;
    // cloud telephony
    let flows: Vec<(&str, &flow::spec::FlowSpec)> = campaigns
        .iter()
        .map(|c| (c.slug.as_str(), &*c.flow))
        .collect();
    let cloud = crate::providers::validate(raw.cloud, &flows, text, file, base)?;
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
        shed_late_percent,
        max_call: Duration::from_secs(max_call_seconds),
        drain: Duration::from_secs(drain_seconds),
        campaigns,
        store_url: raw.store.url,
        default_campaign,
        sip_edge,
        cloud,
        public_url,
        web,
    })
}

/// Longest `public_url`, in bytes.
const MAX_PUBLIC_URL_BYTES: usize = 200;

/// `[server] public_url` checked: http(s), a host, no query, fragment, space or quote; the
/// trailing slash dropped.
fn public_url(url: &str) -> Result<String, &'static str> {
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or("must start with https:// or http://")?;
    if trimmed.len() > MAX_PUBLIC_URL_BYTES {
        return Err("is too long (at most 200 bytes)");
    }
    if rest.is_empty() || rest.starts_with('/') {
        return Err("must name a host, e.g. https://sign.example.org");
    }
    if rest.chars().any(|c| {
        c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '"' | '\'' | '<' | '>')
    }) {
        return Err("must be a plain address without query, fragment, spaces or quotes");
    }
    Ok(trimmed.to_owned())
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
    fn public_url_is_checked_and_loses_its_trailing_slash() {
        let s = parse_str("[server]\npublic_url = \"https://sign.example.org/\"\n").expect("valid");
        assert_eq!(s.public_url.as_deref(), Some("https://sign.example.org"));
        assert_eq!(parse_str("").expect("valid").public_url, None);
        for bad in [
            "sign.example.org",
            "https://",
            "https://a.org/?x=1",
            "https://a .org",
            "ftp://a.org",
        ] {
            let e = parse_str(&format!("[server]\npublic_url = \"{bad}\"\n")).expect_err(bad);
            assert_eq!(e.key, "server.public_url", "{e}");
            assert_eq!(e.line, 2, "{e}");
        }
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
        assert_eq!(c.flow.default_language(), Lang::Nl);
        assert_eq!(
            c.flow.prompt_source("greeting", Lang::Nl),
            Some(flow::spec::PromptSource::File(
                "builtin:demo/nl/greeting.wav"
            ))
        );
        assert!(c.transcript.len() > 20);
    }
}

#[cfg(test)]
mod flow_tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Settings, ConfigError> {
        parse(text, "f.toml", Path::new("."))
    }

    #[test]
    fn a_flow_error_names_the_step_line_and_key() {
        let text = "[[campaign]]\nslug = \"x\"\ntitle = \"X\"\n\n[[campaign.flow.step]]\nname = \"a\"\nkind = \"play\"\nprompt = \"signed\"\nnext = \"b\"\n\n[[campaign.flow.step]]\nname = \"b\"\nkind = \"dance\"\n";
        let e = parse_str(text).expect_err("unknown kind");
        assert!(e.key.starts_with("campaign[x].flow"), "{e}");
        assert!(e.line >= 5, "{e}");
    }

    #[test]
    fn dates_are_checked_and_parsed() {
        assert_eq!(
            parse_date("1970-01-02"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(86_400))
        );
        assert_eq!(
            parse_date("2026-11-28"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(20_785 * 86_400))
        );
        assert_eq!(parse_date("2026-13-01"), None);
        let e = parse_str("[[campaign]]\nslug = \"x\"\ntitle = \"X\"\nopens = \"2026-12-01\"\ncloses = \"2026-11-01\"\n")
            .expect_err("closes before opens");
        assert_eq!(e.key, "campaign[x].closes");
        assert_eq!(e.line, 5);
    }

    #[test]
    fn own_flow_and_simple_prompts_do_not_mix() {
        let text = "[[campaign]]\nslug = \"x\"\ntitle = \"X\"\n[campaign.prompts]\ngreeting = \"a.wav\"\nstory = \"a.wav\"\nthanks = \"a.wav\"\n[[campaign.flow.step]]\nname = \"a\"\nkind = \"hangup\"\n";
        let e = parse_str(text).expect_err("both");
        assert_eq!(e.key, "campaign[x].prompts");
    }
}
