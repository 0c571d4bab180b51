//! A campaign as the SIP channel runs it: its flow and its audio, loaded once, shared by calls.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use flow::engine::PromptRef;
use flow::spec::FlowSpec;
use flow::Lang;
use media::audio::Prompt;

/// Every prompt a campaign's flow can play, pre-encoded, by (name, language), and the
/// number clips for `say_count`/`say_number`, by (language, token).
#[derive(Debug, Default, Clone)]
pub struct CampaignAudio {
    prompts: HashMap<(String, Lang), Arc<Prompt>>,
    numbers: HashMap<(Lang, String), Arc<Prompt>>,
}

impl CampaignAudio {
    pub fn insert_prompt(&mut self, name: &str, lang: Lang, prompt: Arc<Prompt>) {
        self.prompts.insert((name.to_string(), lang), prompt);
    }

    pub fn insert_number(&mut self, lang: Lang, token: &str, prompt: Arc<Prompt>) {
        self.numbers.insert((lang, token.to_string()), prompt);
    }

    /// The audio of one prompt reference, if loaded.
    pub fn resolve(&self, r: &PromptRef) -> Option<Arc<Prompt>> {
        match r {
            PromptRef::Prompt { name, lang } => self.prompts.get(&(name.clone(), *lang)).cloned(),
            PromptRef::Number(clip) => self
                .numbers
                .get(&(clip.lang, clip.token.to_string()))
                .cloned(),
        }
    }

    /// Prompts the flow needs that are not loaded, as "name (lang)", for a start-up check.
    pub fn missing(&self, spec: &FlowSpec) -> Vec<String> {
        spec.required_prompts()
            .into_iter()
            .filter(|(name, lang, _)| !self.prompts.contains_key(&(name.to_string(), *lang)))
            .map(|(name, lang, _)| format!("{name} ({lang})"))
            .collect()
    }
}

/// A campaign as the SIP channel needs it.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub slug: String,
    /// The numbers (Request-URI users) that reach this campaign, besides its slug.
    pub dids: Vec<String>,
    /// The language of calls to a DID, when the campaign picks it from the number called.
    pub did_languages: HashMap<String, Lang>,
    /// Region for caller numbers without a country code, e.g. "BE".
    pub default_region: String,
    pub flow: Arc<FlowSpec>,
    pub audio: Arc<CampaignAudio>,
    /// Identifies this flow and its audio; stored with each signature, so that what a signer
    /// heard stays known after the campaign's audio changes.
    pub flow_version: String,
    /// When the campaign opens and closes; outside, flows can branch on `outside_dates`.
    pub opens: Option<SystemTime>,
    pub closes: Option<SystemTime>,
}

impl Campaign {
    /// Whether `now` falls outside the campaign's dates.
    pub fn outside_dates(&self, now: SystemTime) -> bool {
        self.opens.is_some_and(|t| now < t) || self.closes.is_some_and(|t| now >= t)
    }
}
