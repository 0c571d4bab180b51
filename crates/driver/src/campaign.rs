//! A campaign as calls run it, on every channel: its numbers, flow and audio, loaded and
//! validated once (by the binary, from the config file and the stored edits), shared by
//! calls; and the list of them, swapped while the server runs.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
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

/// A campaign as calls run it and the pages show it: one value, built by the binary from the
/// configuration file with the stored edits on top.
#[derive(Debug, Clone)]
pub struct Campaign {
    /// URL-safe identifier: the SIP user, `/c/{slug}` and the API paths.
    pub slug: String,
    /// The title in the main language.
    pub title: String,
    /// The main language ("en", "nl", "fr"): the page's `lang` and its labels.
    pub language: String,
    /// What callers hear, in the main language; blank lines separate paragraphs.
    pub transcript: String,
    /// The title and transcript in other languages; the page picks one from `?lang=` or
    /// Accept-Language and links to the others.
    pub translations: Vec<Translation>,
    /// Display number, e.g. "+32 2 000 00 00".
    pub number: Option<String>,
    /// The SIP address callers can dial directly, e.g. "sip:demo@127.0.0.1:5060".
    pub sip_uri: String,
    /// The number of signatures the campaign aims for, shown as progress.
    pub goal: Option<u64>,
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

/// A campaign's texts in one more language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    pub language: String,
    pub title: String,
    pub transcript: String,
}

impl Campaign {
    /// A campaign with this slug and nothing else: its title is the slug, it has no page
    /// texts, and its flow hangs up at once. The fields are public: fill in what matters.
    pub fn new(slug: &str) -> Campaign {
        Campaign {
            slug: slug.to_string(),
            title: slug.to_string(),
            language: "en".to_string(),
            transcript: String::new(),
            translations: Vec::new(),
            number: None,
            sip_uri: String::new(),
            goal: None,
            dids: Vec::new(),
            did_languages: HashMap::new(),
            default_region: "BE".to_string(),
            flow: Arc::new(
                FlowSpec::parse(slug, "[[step]]\nname = \"end\"\nkind = \"hangup\"\n")
                    .expect("a one-step hang-up flow is valid"),
            ),
            audio: Arc::default(),
            flow_version: String::new(),
            opens: None,
            closes: None,
        }
    }

    /// The title and transcript in `language`, or in the main language.
    pub fn texts(&self, language: &str) -> (&str, &str) {
        match self.translations.iter().find(|t| t.language == language) {
            Some(t) => (&t.title, &t.transcript),
            None => (&self.title, &self.transcript),
        }
    }

    /// The flow's story step, for the funnel (see [`crate::story_step`]).
    pub fn story_step(&self) -> Option<String> {
        crate::story_step(&self.flow, |r| self.audio.resolve(r).map(|p| p.duration()))
    }

    /// Whether `now` falls outside the campaign's dates.
    pub fn outside_dates(&self, now: SystemTime) -> bool {
        self.opens.is_some_and(|t| now < t) || self.closes.is_some_and(|t| now >= t)
    }
}

/// The campaigns the server answers for (SIP and the provider webhooks alike), replaceable
/// while it runs: a campaign edited in the console is swapped in for the next call, while
/// calls in progress keep the `Arc<Campaign>` they started with. A read takes no lock. Cheap
/// to clone: clones share the list.
#[derive(Debug, Clone, Default)]
pub struct CampaignList(Arc<ArcSwap<Vec<Arc<Campaign>>>>);

impl CampaignList {
    pub fn new(campaigns: Vec<Arc<Campaign>>) -> Self {
        CampaignList(Arc::new(ArcSwap::from_pointee(campaigns)))
    }

    /// The list as it is now; later changes do not affect the snapshot.
    pub fn snapshot(&self) -> Arc<Vec<Arc<Campaign>>> {
        self.0.load_full()
    }

    /// The campaign with this slug, as it is now.
    pub fn get(&self, slug: &str) -> Option<Arc<Campaign>> {
        self.snapshot().iter().find(|c| c.slug == slug).cloned()
    }

    /// Replaces the campaign with the same slug (or adds it).
    pub fn replace(&self, campaign: Arc<Campaign>) {
        self.0.rcu(|list| {
            let mut list: Vec<Arc<Campaign>> = list.as_ref().clone();
            match list.iter_mut().find(|c| c.slug == campaign.slug) {
                Some(old) => *old = campaign.clone(),
                None => list.push(campaign.clone()),
            }
            list
        });
    }

    /// The campaign a number called reaches (one of its DIDs, compared by `same_number`), or
    /// the one with that slug.
    pub fn find(
        &self,
        called: &str,
        same_number: impl Fn(&str, &str) -> bool,
    ) -> Option<Arc<Campaign>> {
        self.snapshot()
            .iter()
            .find(|c| c.slug == called || c.dids.iter().any(|d| same_number(d, called)))
            .cloned()
    }
}

impl From<Vec<Campaign>> for CampaignList {
    fn from(campaigns: Vec<Campaign>) -> Self {
        CampaignList::new(campaigns.into_iter().map(Arc::new).collect())
    }
}

impl From<Vec<Arc<Campaign>>> for CampaignList {
    fn from(campaigns: Vec<Arc<Campaign>>) -> Self {
        CampaignList::new(campaigns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn campaign(slug: &str, version: &str) -> Arc<Campaign> {
        Arc::new(Campaign {
            flow_version: version.into(),
            ..Campaign::new(slug)
        })
    }

    #[test]
    fn a_replaced_campaign_is_seen_by_the_next_lookup_only() {
        let list = CampaignList::from(vec![campaign("a", "v1"), campaign("b", "v1")]);
        let in_progress = list.get("a").expect("a");
        let before = list.snapshot();
        list.replace(campaign("a", "v2"));
        assert_eq!(list.get("a").expect("a").flow_version, "v2");
        assert_eq!(in_progress.flow_version, "v1");
        assert_eq!(before[0].flow_version, "v1");
        assert_eq!(list.get("b").expect("b").flow_version, "v1");
        list.replace(campaign("c", "v1"));
        assert_eq!(list.snapshot().len(), 3);
        assert!(list.get("nope").is_none());
    }
}
