//! Campaign editing while the line runs: [`web::CampaignAdmin`] over the store, and the swap
//! that puts an edit in effect for the next page view and the next call on every node.
//!
//! The configuration file is the base. An edit is kept in the store as a document that holds
//! only the fields that differ from the file (texts per language, number, goal, opens, closes);
//! uploaded clips take the place of the flow's own prompt files, per name and language. Each
//! change bumps the campaign's edit version in the store; [`follow`] polls the versions every
//! second and rebuilds only the campaigns whose version moved, so edits made on another node
//! or with `belteken campaign` reach this one within seconds. `belteken campaign reset` drops
//! the stored edits and clips: the file's version is back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use flow::engine::PromptRef;
use flow::Lang;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::audio;
use crate::config::CampaignSource;

/// Longest transcript per language, in bytes.
pub const MAX_TRANSCRIPT_BYTES: usize = 20_000;
/// Longest display number, in bytes.
pub const MAX_NUMBER_BYTES: usize = 40;
/// Largest goal.
pub const MAX_GOAL: u64 = 1_000_000_000;
/// How often a running server looks for edits made elsewhere.
pub const EDIT_POLL: Duration = Duration::from_secs(1);

/// What the store keeps for a campaign: only the fields that differ from the file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct EditDoc {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    texts: Vec<TextDoc>,
    /// "" clears the file's number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    number: Option<String>,
    /// 0 clears the file's goal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    goal: Option<u64>,
    /// RFC 3339 UTC; "" clears the file's date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    opens: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    closes: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TextDoc {
    language: String,
    title: String,
    transcript: String,
}

/// A campaign's fields as in effect: the file's, with the stored edit on top.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Effective {
    /// The main language's text first.
    texts: Vec<driver::Translation>,
    number: Option<String>,
    goal: Option<u64>,
    opens: Option<SystemTime>,
    closes: Option<SystemTime>,
}

fn base_fields(c: &CampaignSource) -> Effective {
    let mut texts = vec![driver::Translation {
        language: c.language.clone(),
        title: c.title.clone(),
        transcript: c.transcript.clone(),
    }];
    for (language, title, transcript) in &c.translations {
        texts.push(driver::Translation {
            language: language.clone(),
            title: title.clone(),
            transcript: transcript.clone(),
        });
    }
    Effective {
        texts,
        number: c.number.clone(),
        goal: c.goal,
        opens: c.opens,
        closes: c.closes,
    }
}

fn date_field(stored: &Option<String>, base: Option<SystemTime>) -> Option<SystemTime> {
    match stored.as_deref() {
        None => base,
        Some("") => None,
        Some(s) => store::parse_rfc3339(s).or(base),
    }
}

fn merge(c: &CampaignSource, doc: &EditDoc) -> Effective {
    let mut e = base_fields(c);
    for t in &doc.texts {
        let text = driver::Translation {
            language: t.language.clone(),
            title: t.title.clone(),
            transcript: t.transcript.clone(),
        };
        match e.texts.iter_mut().find(|x| x.language == t.language) {
            Some(x) => *x = text,
            None => e.texts.push(text),
        }
    }
    if let Some(n) = &doc.number {
        e.number = (!n.is_empty()).then(|| n.clone());
    }
    if let Some(g) = doc.goal {
        e.goal = (g > 0).then_some(g);
    }
    e.opens = date_field(&doc.opens, c.opens);
    e.closes = date_field(&doc.closes, c.closes);
    e
}

/// The document that turns the file's fields into `e`: only what differs.
fn diff(c: &CampaignSource, e: &Effective) -> EditDoc {
    let base = base_fields(c);
    let texts = e
        .texts
        .iter()
        .filter(|t| !base.texts.contains(t))
        .map(|t| TextDoc {
            language: t.language.clone(),
            title: t.title.clone(),
            transcript: t.transcript.clone(),
        })
        .collect();
    let date = |new: Option<SystemTime>, old: Option<SystemTime>| {
        (new != old).then(|| new.map(store::rfc3339_utc).unwrap_or_default())
    };
    EditDoc {
        texts,
        number: (e.number != base.number).then(|| e.number.clone().unwrap_or_default()),
        goal: (e.goal != base.goal).then_some(e.goal.unwrap_or(0)),
        opens: date(e.opens, base.opens),
        closes: date(e.closes, base.closes),
    }
}

/// Checks an edit from the console or the command line; the error is for the person at the form.
fn validate(c: &CampaignSource, edit: &web::CampaignEdit) -> Result<Effective, String> {
    let mut texts: Vec<driver::Translation> = Vec::new();
    for t in &edit.texts {
        let language = t.language.trim().to_ascii_lowercase();
        if language.parse::<Lang>().is_err() {
            return Err(format!(
                "unknown language {:?}: use nl, fr or en",
                t.language
            ));
        }
        if texts.iter().any(|x| x.language == language) {
            return Err(format!("the texts in {language} are given twice"));
        }
        let title = t.title.trim();
        if title.is_empty() {
            return Err(format!("the title in {language} is empty"));
        }
        if title.len() > store::MAX_TITLE_BYTES {
            return Err(format!(
                "the title in {language} is too long (at most {} bytes)",
                store::MAX_TITLE_BYTES
            ));
        }
        if title.chars().any(char::is_control) {
            return Err(format!("the title in {language} has control characters"));
        }
        if t.transcript.len() > MAX_TRANSCRIPT_BYTES {
            return Err(format!(
                "the transcript in {language} is too long (at most {MAX_TRANSCRIPT_BYTES} bytes)"
            ));
        }
        if t.transcript
            .chars()
            .any(|ch| ch.is_control() && !matches!(ch, '\n' | '\r' | '\t'))
        {
            return Err(format!(
                "the transcript in {language} has control characters"
            ));
        }
        texts.push(driver::Translation {
            language,
            title: title.to_string(),
            transcript: t.transcript.replace("\r\n", "\n").trim_end().to_string(),
        });
    }
    // The main language stays the file's and comes first.
    let Some(main) = texts.iter().position(|t| t.language == c.language) else {
        return Err(format!(
            "the texts in the campaign's main language ({}) are required",
            c.language
        ));
    };
    let main_text = texts.remove(main);
    texts.insert(0, main_text);

    let number = match edit.number.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(n) => {
            if n.len() > MAX_NUMBER_BYTES
                || !n
                    .chars()
                    .all(|ch| ch.is_ascii_digit() || " +-()./".contains(ch))
                || !n.chars().any(|ch| ch.is_ascii_digit())
            {
                return Err(
                    "the number may hold digits, spaces and + - ( ) . / only (at most 40)".into(),
                );
            }
            Some(n.to_string())
        }
    };
    let goal = match edit.goal {
        Some(0) => return Err("the goal must be at least 1 (or none)".into()),
        Some(g) if g > MAX_GOAL => return Err(format!("the goal is too big (at most {MAX_GOAL})")),
        g => g,
    };
    let date = |what: &str, v: &Option<String>| -> Result<Option<SystemTime>, String> {
        match v.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(s) => store::parse_rfc3339(s).map(Some).ok_or_else(|| {
                format!("{what} must be a date (YYYY-MM-DD) or a UTC time (YYYY-MM-DDTHH:MM:SSZ)")
            }),
        }
    };
    let opens = date("opens", &edit.opens)?;
    let closes = date("closes", &edit.closes)?;
    if let (Some(o), Some(c)) = (opens, closes) {
        if o >= c {
            return Err("the campaign must open before it closes".into());
        }
    }
    Ok(Effective {
        texts,
        number,
        goal,
        opens,
        closes,
    })
}

/// Where the running server's campaigns live, for the swap.
pub struct Live {
    /// The campaigns the SIP channel, the provider webhooks and the pages share.
    pub campaigns: driver::CampaignList,
    /// "host:port" of the SIP address callers can dial directly.
    pub sip_address: String,
}

/// Campaign editing over the store; with [`Live`], edits also take effect in this process.
pub struct Editor {
    campaigns: Vec<CampaignSource>,
    store: Arc<dyn store::Store>,
    live: Option<Live>,
    /// Decoded built-in and file prompts, shared by rebuilds.
    cache: Mutex<audio::Cache>,
    /// The edit version in effect here, per campaign.
    applied: Mutex<HashMap<String, i64>>,
    /// One rebuild at a time, so that an older rebuild cannot swap in after a newer one.
    reloading: Mutex<()>,
}

/// A campaign rebuilt from the file and the store.
struct Built {
    campaign: Arc<driver::Campaign>,
    edit_version: i64,
    clips: Vec<store::StoredClip>,
}

impl Editor {
    pub fn new(
        campaigns: Vec<CampaignSource>,
        store: Arc<dyn store::Store>,
        live: Option<Live>,
    ) -> Editor {
        Editor {
            campaigns,
            store,
            live,
            cache: Mutex::default(),
            applied: Mutex::default(),
            reloading: Mutex::default(),
        }
    }

    fn settings(&self, slug: &str) -> Option<&CampaignSource> {
        self.campaigns.iter().find(|c| c.slug == slug)
    }

    fn settings_or_err(&self, slug: &str) -> Result<&CampaignSource, web::AdminError> {
        self.settings(slug)
            .ok_or_else(|| web::AdminError::UnknownCampaign(slug.to_string()))
    }

    fn stored_doc(&self, slug: &str) -> Result<(i64, EditDoc)> {
        let edits = self.store.campaign_edits(slug)?;
        let doc = match edits.document.as_deref() {
            None => EditDoc::default(),
            Some(text) => serde_json::from_str(text).unwrap_or_else(|e| {
                warn!(campaign = %slug, error = %e, "stored campaign edit unreadable: the file's fields apply");
                EditDoc::default()
            }),
        };
        Ok((edits.version, doc))
    }

    /// The campaign as the file and the store make it now.
    fn build(&self, c: &CampaignSource) -> Result<Built> {
        // The version first: an edit landing while this runs moves it again, and the next
        // poll rebuilds.
        let (edit_version, doc) = self.stored_doc(&c.slug)?;
        let clips = self.store.clips(&c.slug)?;
        let effective = merge(c, &doc);
        let mut uploaded = audio::Uploaded::new();
        for clip in &clips {
            let Ok(lang) = clip.language.parse::<Lang>() else {
                continue;
            };
            let prompt = audio::prompt_from_wav(&clip.wav)
                .with_context(|| format!("clip {} ({})", clip.name, clip.language))?;
            uploaded.insert((clip.name.clone(), lang), prompt);
        }
        let (campaign_audio, flow_version) = {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            audio::load_campaign(
                &c.flow,
                &c.base,
                c.numbers_dir.as_deref(),
                &uploaded,
                &mut cache,
            )?
        };
        let mut texts = effective.texts.into_iter();
        let main = texts.next().unwrap_or_else(|| driver::Translation {
            language: c.language.clone(),
            title: c.title.clone(),
            transcript: c.transcript.clone(),
        });
        let sip_uri = match &self.live {
            Some(live) => format!("sip:{}@{}", c.slug, live.sip_address),
            None => String::new(),
        };
        let campaign = Arc::new(driver::Campaign {
            slug: c.slug.clone(),
            title: main.title,
            language: c.language.clone(),
            transcript: main.transcript,
            translations: texts.collect(),
            number: effective.number,
            sip_uri,
            goal: effective.goal,
            dids: c.dids.clone(),
            did_languages: c.did_languages.clone(),
            default_region: c.default_region.clone(),
            flow: c.flow.clone(),
            audio: Arc::new(campaign_audio),
            flow_version,
            opens: effective.opens,
            closes: effective.closes,
        });
        Ok(Built {
            campaign,
            edit_version,
            clips,
        })
    }

    /// Rebuilds the campaign and, in a running server, swaps it in for the next call and
    /// page view (calls in progress keep what they started with).
    fn reload(&self, c: &CampaignSource) -> Result<Built> {
        self.put_in_effect(c, "campaign edit in effect")
    }

    fn put_in_effect(&self, c: &CampaignSource, what: &str) -> Result<Built> {
        let _one_at_a_time = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let built = self.build(c)?;
        if let Some(live) = &self.live {
            live.campaigns.replace(built.campaign.clone());
            info!(campaign = %c.slug, edit_version = built.edit_version, flow_version = %built.campaign.flow_version, "{what}");
        }
        self.applied
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(c.slug.clone(), built.edit_version);
        Ok(built)
    }

    /// Builds every campaign of the file with its stored edits and puts it in effect: the
    /// start of a server. An error names the campaign.
    pub fn load(&self) -> Result<()> {
        for c in &self.campaigns {
            self.put_in_effect(c, "campaign loaded")
                .with_context(|| format!("campaign {}", c.slug))?;
        }
        Ok(())
    }

    /// Applies every edit made elsewhere (another node, the command line) since the last
    /// look; at start, every stored edit. Returns how many campaigns were rebuilt.
    pub fn sync(&self) -> Result<usize> {
        let versions = self.store.edit_versions()?;
        let mut rebuilt = 0;
        for (slug, version) in versions {
            let Some(c) = self.settings(&slug) else {
                continue;
            };
            let known = self
                .applied
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&slug)
                .copied()
                .unwrap_or(0);
            if version == known {
                continue;
            }
            match self.reload(c) {
                Ok(_) => rebuilt += 1,
                Err(e) => {
                    warn!(campaign = %slug, error = %format!("{e:#}"), "cannot apply the stored campaign edit");
                    // Do not retry every second; the next edit tries again.
                    self.applied
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(slug, version);
                }
            }
        }
        Ok(rebuilt)
    }

    /// Keeps the registry's closing time (retention, contact deletion) in line with the
    /// campaign's dates as edited.
    fn store_closing(&self, slug: &str, closes: Option<SystemTime>) -> Result<()> {
        let mut s = self.store.campaign_settings(slug)?;
        if s.closes_at != closes {
            s.closes_at = closes;
            self.store.configure_campaign(slug, &s)?;
        }
        Ok(())
    }

    /// Called once at start, after the file's settings went into the store: the stored
    /// edits' closing times and titles win.
    pub fn apply_to_store(&self) -> Result<()> {
        for c in &self.campaigns {
            let (version, doc) = self.stored_doc(&c.slug)?;
            if version == 0 {
                continue;
            }
            let e = merge(c, &doc);
            self.store_closing(&c.slug, e.closes)?;
            if let Some(main) = e.texts.first() {
                self.store.ensure_campaign(&c.slug, &main.title)?;
            }
        }
        Ok(())
    }

    /// The campaign as callers get it now: the running one, or built from the store.
    fn current(
        &self,
        c: &CampaignSource,
    ) -> Result<(Arc<driver::Campaign>, Vec<store::StoredClip>)> {
        let clips = self.store.clips(&c.slug)?;
        if let Some(live) = &self.live {
            if let Some(running) = live.campaigns.get(&c.slug) {
                return Ok((running, clips));
            }
        }
        let built = self.build(c)?;
        Ok((built.campaign, built.clips))
    }

    fn clip_infos(
        &self,
        c: &CampaignSource,
        campaign: &driver::Campaign,
        clips: &[store::StoredClip],
    ) -> Vec<web::ClipInfo> {
        audio::replaceable_prompts(&c.flow)
            .into_iter()
            .map(|(name, lang)| {
                let stored = clips
                    .iter()
                    .find(|s| s.name == name && s.language == lang.code());
                let duration_ms = campaign
                    .audio
                    .resolve(&PromptRef::Prompt {
                        name: name.clone(),
                        lang,
                    })
                    .map(|p| p.duration().as_millis() as u64)
                    .unwrap_or(0);
                web::ClipInfo {
                    name,
                    language: lang.code().to_string(),
                    duration_ms,
                    flow_version: campaign.flow_version.clone(),
                    uploaded: stored.is_some(),
                }
            })
            .collect()
    }

    /// Drops the campaign's stored edits and clips: the file's version is back.
    pub fn reset(&self, slug: &str, actor: &str) -> Result<()> {
        let c = self.settings_or_err(slug)?;
        self.store.reset_campaign_edits(slug, actor)?;
        self.store_closing(slug, c.closes)?;
        self.store.ensure_campaign(slug, &c.title)?;
        self.reload(c)?;
        Ok(())
    }

    /// The campaign's flow version and edit version now.
    pub fn versions(&self, slug: &str) -> Result<(String, i64)> {
        let c = self.settings_or_err(slug)?;
        let (campaign, _) = self.current(c)?;
        let version = self.store.campaign_edits(slug)?.version;
        Ok((campaign.flow_version.clone(), version))
    }
}

fn failed(e: impl std::fmt::Display) -> web::AdminError {
    web::AdminError::Failed(e.to_string())
}

fn failed_with_context(e: anyhow::Error) -> web::AdminError {
    web::AdminError::Failed(format!("{e:#}"))
}

impl web::CampaignAdmin for Editor {
    fn edit_form(&self, slug: &str) -> Option<web::CampaignEdit> {
        let c = self.settings(slug)?;
        let e = match self.stored_doc(slug) {
            Ok((_, doc)) => merge(c, &doc),
            Err(err) => {
                warn!(campaign = %slug, error = %format!("{err:#}"), "cannot read the stored campaign edit");
                return None;
            }
        };
        Some(web::CampaignEdit {
            texts: e.texts,
            number: e.number,
            goal: e.goal,
            opens: e.opens.map(store::rfc3339_utc),
            closes: e.closes.map(store::rfc3339_utc),
        })
    }

    fn apply_edit(
        &self,
        slug: &str,
        edit: &web::CampaignEdit,
        actor: &str,
    ) -> Result<(), web::AdminError> {
        let c = self.settings_or_err(slug)?;
        let e = validate(c, edit).map_err(web::AdminError::Refused)?;
        let doc = diff(c, &e);
        let json = serde_json::to_string(&doc).map_err(failed)?;
        self.store
            .save_campaign_edit(slug, &json, actor)
            .map_err(failed)?;
        if let Some(main) = e.texts.first() {
            self.store
                .ensure_campaign(slug, &main.title)
                .map_err(failed)?;
        }
        self.store_closing(slug, e.closes)
            .map_err(failed_with_context)?;
        self.reload(c).map_err(failed_with_context)?;
        Ok(())
    }

    fn clips(&self, slug: &str) -> Vec<web::ClipInfo> {
        let Some(c) = self.settings(slug) else {
            return Vec::new();
        };
        match self.current(c) {
            Ok((campaign, clips)) => self.clip_infos(c, &campaign, &clips),
            Err(e) => {
                warn!(campaign = %slug, error = %format!("{e:#}"), "cannot list the campaign's clips");
                Vec::new()
            }
        }
    }

    fn upload_clip(
        &self,
        slug: &str,
        clip: &str,
        language: &str,
        data: &[u8],
        actor: &str,
    ) -> Result<web::ClipInfo, web::AdminError> {
        let c = self.settings_or_err(slug)?;
        let lang: Lang = language.trim().parse().map_err(|_| {
            web::AdminError::Refused(format!("unknown language {language:?}: use nl, fr or en"))
        })?;
        let replaceable = audio::replaceable_prompts(&c.flow);
        if !replaceable.iter().any(|(n, l)| n == clip && *l == lang) {
            let names: Vec<String> = replaceable
                .iter()
                .map(|(n, l)| format!("{n} ({l})"))
                .collect();
            return Err(web::AdminError::Refused(format!(
                "the campaign's flow has no clip {clip:?} in {lang}; it has: {}",
                names.join(", ")
            )));
        }
        let converted = audio::convert_upload(data).map_err(web::AdminError::Refused)?;
        self.store
            .save_clip(
                slug,
                &store::NewClip {
                    name: clip.to_string(),
                    language: lang.code().to_string(),
                    wav: converted.wav,
                    duration_ms: converted.duration.as_millis() as u64,
                },
                actor,
            )
            .map_err(failed)?;
        let built = self.reload(c).map_err(failed_with_context)?;
        self.clip_infos(c, &built.campaign, &built.clips)
            .into_iter()
            .find(|i| i.name == clip && i.language == lang.code())
            .ok_or_else(|| {
                web::AdminError::Failed("the clip was stored but is not in the flow".into())
            })
    }

    fn clip_wav(&self, slug: &str, clip: &str, language: &str) -> Option<Vec<u8>> {
        let c = self.settings(slug)?;
        let lang: Lang = language.parse().ok()?;
        let (campaign, clips) = self.current(c).ok()?;
        if let Some(stored) = clips
            .into_iter()
            .find(|s| s.name == clip && s.language == lang.code())
        {
            return Some(stored.wav);
        }
        // The file's clip, as callers hear it (G.711, decoded back to 16-bit).
        if !audio::replaceable_prompts(&c.flow)
            .iter()
            .any(|(n, l)| n == clip && *l == lang)
        {
            return None;
        }
        let prompt = campaign.audio.resolve(&PromptRef::Prompt {
            name: clip.to_string(),
            lang,
        })?;
        let mut samples = Vec::with_capacity(prompt.frames() * media::FRAME_SAMPLES);
        for i in 0..prompt.frames() {
            if let Some(frame) = prompt.frame(media::Codec::Pcma, i) {
                media::Codec::Pcma.decode(frame, &mut samples);
            }
        }
        Some(media::wav::pcm16_mono(&samples, media::SAMPLE_RATE_HZ))
    }
}

/// Polls the store for edits made elsewhere and applies them, every [`EDIT_POLL`].
pub async fn follow(editor: Arc<Editor>) {
    loop {
        tokio::time::sleep(EDIT_POLL).await;
        let e = editor.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || e.sync()).await {
            warn!(error = %format!("{e:#}"), "cannot read campaign edits");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use web::CampaignAdmin as _;

    struct Node {
        editor: Editor,
        campaigns: driver::CampaignList,
    }

    /// A node as `serve` sets it up: the file's campaigns, then the stored edits.
    fn node(store: &Arc<dyn store::Store>) -> Node {
        let settings = crate::config::defaults();
        for c in &settings.campaigns {
            store.ensure_campaign(&c.slug, &c.title).expect("campaign");
        }
        let campaigns = driver::CampaignList::default();
        let editor = Editor::new(
            settings.campaigns.clone(),
            store.clone(),
            Some(Live {
                campaigns: campaigns.clone(),
                sip_address: "127.0.0.1:5060".into(),
            }),
        );
        editor.load().expect("load");
        editor.sync().expect("sync");
        Node { editor, campaigns }
    }

    fn temp_store() -> (PathBuf, Arc<dyn store::Store>) {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "belteken-edit-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let store = store::SqliteStore::open(&dir.join("belteken.db")).expect("store");
        (dir, Arc::new(store))
    }

    use std::path::PathBuf;

    fn tone_wav(hz: f32, ms: u64) -> Vec<u8> {
        let t = media::audio::tone(hz, Duration::from_millis(ms), 8000);
        media::wav::pcm16_mono(&t, 8000)
    }

    #[test]
    fn an_edit_shows_on_the_page_and_reaches_another_node() {
        let (dir, store) = temp_store();
        let a = node(&store);
        let b = node(&store);
        let mut form = a.editor.edit_form("demo").expect("form");
        assert_eq!(form.texts[0].language, "en");
        let file_title = form.texts[0].title.clone();
        form.texts[0].title = "Save the <b>bees</b>".into();
        form.goal = Some(5000);
        form.closes = Some("2031-01-01".into());
        a.editor
            .apply_edit("demo", &form, "alice")
            .expect("applies");

        // This node: at once, for the next page view.
        let v = a.campaigns.get("demo").expect("view");
        assert_eq!(
            (v.title.as_str(), v.goal),
            ("Save the <b>bees</b>", Some(5000))
        );
        assert_eq!(v.sip_uri, "sip:demo@127.0.0.1:5060");
        let closes = store::parse_rfc3339("2031-01-01");
        assert_eq!(a.campaigns.get("demo").expect("campaign").closes, closes);
        assert_eq!(
            store.campaign_settings("demo").expect("settings").closes_at,
            closes
        );
        // The other node: on its next poll, and only then.
        assert_ne!(b.campaigns.get("demo").expect("view").title, v.title);
        assert_eq!(b.editor.sync().expect("sync"), 1);
        assert_eq!(b.campaigns.get("demo").expect("view").title, v.title);
        assert_eq!(b.editor.sync().expect("sync"), 0);

        // Only what differs from the file is stored.
        let doc = store
            .campaign_edits("demo")
            .expect("edits")
            .document
            .expect("doc");
        assert!(!doc.contains("transcript\":\"\""), "{doc}");
        assert!(doc.contains("5000") && doc.contains("bees"), "{doc}");
        let audit = store.audit_log(Some("demo")).expect("audit");
        assert!(audit
            .iter()
            .any(|e| e.action == "campaign_edit" && e.detail.contains("alice")));

        // A restart (a fresh node) starts with the edit.
        let c = node(&store);
        assert_eq!(c.campaigns.get("demo").expect("view").title, v.title);
        assert_eq!(c.editor.edit_form("demo").expect("form"), {
            let mut f = form.clone();
            f.closes = Some("2031-01-01T00:00:00Z".into());
            f
        });

        // Reset: the file's version is back, on every node.
        a.editor.reset("demo", "alice").expect("reset");
        assert_eq!(a.campaigns.get("demo").expect("view").title, file_title);
        b.editor.sync().expect("sync");
        assert_eq!(b.campaigns.get("demo").expect("view").title, file_title);
        assert_eq!(
            store.campaign_settings("demo").expect("settings").closes_at,
            None
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn bad_edits_are_refused_with_a_reason_and_change_nothing() {
        let (dir, store) = temp_store();
        let a = node(&store);
        let good = a.editor.edit_form("demo").expect("form");
        type Change = fn(&mut web::CampaignEdit);
        let cases: Vec<(Change, &str)> = vec![
            (|f| f.texts[0].title = String::new(), "empty"),
            (|f| f.texts[0].title = "x".repeat(201), "too long"),
            (
                |f| f.texts[0].transcript = "y".repeat(MAX_TRANSCRIPT_BYTES + 1),
                "too long",
            ),
            (|f| f.texts[0].language = "de".into(), "unknown language"),
            (|f| f.texts.retain(|t| t.language != "en"), "main language"),
            (|f| f.number = Some("call me".into()), "number"),
            (|f| f.goal = Some(0), "at least 1"),
            (|f| f.opens = Some("tomorrow".into()), "opens must be"),
            (
                |f| {
                    f.opens = Some("2030-02-01".into());
                    f.closes = Some("2030-01-01".into());
                },
                "open before",
            ),
        ];
        for (change, want) in cases {
            let mut f = good.clone();
            change(&mut f);
            let err = a.editor.apply_edit("demo", &f, "alice").expect_err(want);
            assert!(
                matches!(&err, web::AdminError::Refused(m) if m.contains(want)),
                "{err:?} (wanted {want})"
            );
        }
        assert_eq!(
            a.editor.apply_edit("nope", &good, "alice"),
            Err(web::AdminError::UnknownCampaign("nope".into()))
        );
        assert!(a.editor.edit_form("nope").is_none());
        assert_eq!(store.campaign_edits("demo").expect("edits").version, 0);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_upload_is_played_to_the_next_call_under_a_new_flow_version() {
        let (dir, store) = temp_store();
        let a = node(&store);
        let b = node(&store);
        let before = a.campaigns.get("demo").expect("campaign");
        let clips = a.editor.clips("demo");
        let story = clips
            .iter()
            .find(|c| c.name == "story" && c.language == "en")
            .expect("story clip");
        assert!(!story.uploaded);
        assert_eq!(story.flow_version, before.flow_version);
        let file_wav = a.editor.clip_wav("demo", "story", "en").expect("file clip");
        assert!(file_wav.len() > 8000);

        let info = a
            .editor
            .upload_clip("demo", "story", "en", &tone_wav(440.0, 3000), "bob")
            .expect("uploads");
        assert!(info.uploaded);
        assert!(
            (2900..=3100).contains(&info.duration_ms),
            "{}",
            info.duration_ms
        );
        let after = a.campaigns.get("demo").expect("campaign");
        assert_ne!(after.flow_version, before.flow_version);
        assert_eq!(info.flow_version, after.flow_version);
        let heard = after
            .audio
            .resolve(&PromptRef::Prompt {
                name: "story".into(),
                lang: Lang::En,
            })
            .expect("story");
        assert_eq!(
            heard.duration().as_millis() as u64 / 20,
            info.duration_ms / 20
        );
        // A call in progress keeps the campaign it started with.
        assert!(before
            .audio
            .resolve(&PromptRef::Prompt {
                name: "story".into(),
                lang: Lang::En,
            })
            .is_some_and(|p| p.duration() != heard.duration()));
        // Played back as stored.
        let wav = a.editor.clip_wav("demo", "story", "en").expect("wav");
        assert_eq!(
            media::audio::decode_wav_bytes(&wav).expect("wav").len() as u64,
            info.duration_ms * 8
        );
        // Another node follows with the same flow version.
        b.editor.sync().expect("sync");
        assert_eq!(
            b.campaigns.get("demo").expect("campaign").flow_version,
            after.flow_version
        );

        // Bad uploads: refused in words, nothing changes.
        let version = store.campaign_edits("demo").expect("edits").version;
        for (clip, lang, data, want) in [
            (
                "story",
                "en",
                b"not audio at all".to_vec(),
                "not an audio file",
            ),
            ("story", "de", tone_wav(440.0, 500), "unknown language"),
            ("nope", "en", tone_wav(440.0, 500), "no clip \"nope\""),
            ("story", "en", Vec::new(), "empty"),
        ] {
            let err = a
                .editor
                .upload_clip("demo", clip, lang, &data, "bob")
                .expect_err(want);
            assert!(
                matches!(&err, web::AdminError::Refused(m) if m.contains(want)),
                "{err:?} (wanted {want})"
            );
        }
        assert_eq!(
            store.campaign_edits("demo").expect("edits").version,
            version
        );
        assert_eq!(
            a.campaigns.get("demo").expect("campaign").flow_version,
            after.flow_version
        );
        let log = store.audit_log(Some("demo")).expect("audit");
        assert_eq!(
            log.iter().filter(|e| e.action == "clip_upload").count(),
            1,
            "{log:?}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
