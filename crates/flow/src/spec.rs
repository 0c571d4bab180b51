//! The flow language: a campaign's call flow as TOML steps, validated at load into a [`FlowSpec`].
//!
//! A flow is a list of named steps (`[[step]]`, or `[[campaign.flow.step]]` inside the
//! server config), each of one `kind`; every step but `hangup` continues at its `next` step
//! (by default the one after it in the list). Prompts are named and each name resolves per
//! language: first to the flow's own `[prompts]` table, then to the shared system prompts
//! ([`crate::prompts`]). The reference, with complete flows, is `docs/flows.md`.
//!
//! Validation rejects, with an error that names the campaign, the step (by name and position)
//! and the key: an unknown step kind, a key that the kind does not take, a missing or bad
//! value, a jump to a step that does not exist, a step no path reaches, and a prompt name that
//! has no file in one of the flow's languages. Unknown keys are rejected by serde
//! (`deny_unknown_fields`) with the TOML position.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::prompts;
use crate::Lang;

/// Most steps one flow may have.
pub const MAX_STEPS: usize = 256;
/// Most prompts one step may play in a row.
pub const MAX_PROMPTS_PER_STEP: usize = 32;
/// Longest a step name may be, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// Longest ring before the answer.
pub const MAX_RING: Duration = Duration::from_secs(60);
/// Longest recording a step may ask for.
pub const MAX_RECORD: Duration = Duration::from_secs(120);
/// Longest wait for a key in a menu.
pub const MAX_MENU_TIMEOUT: Duration = Duration::from_secs(60);
/// Most times a menu is asked again after an invalid key or no key.
pub const MAX_RETRIES: u32 = 10;
/// Most takes a recording with `confirm` allows.
pub const MAX_TAKES: u32 = 10;
/// Longest listening time a `sign` rule may require.
pub const MAX_LISTENED: Duration = Duration::from_secs(3600);
/// Longest transfer target URI, in bytes.
pub const MAX_URI_BYTES: usize = 256;

const DEFAULT_RING: Duration = Duration::from_secs(3);
const DEFAULT_MENU_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: u32 = 2;
const DEFAULT_RECORD_MAX: Duration = Duration::from_secs(20);
const DEFAULT_SILENCE_END: Duration = Duration::from_secs(2);
const DEFAULT_INITIAL_SILENCE: Duration = Duration::from_secs(6);
const DEFAULT_TAKES: u32 = 3;

// ---------------------------------------------------------------------------------------------
// The TOML as written.

/// A flow as written in TOML: the `[campaign.flow]` table of the server config, or a file of
/// its own. Build it into a [`FlowSpec`] with [`FlowSpec::build`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowToml {
    /// The first step's name; default: the first step in the list.
    pub start: Option<String>,
    /// The languages the flow speaks, the first being the default; default `["en"]`. Every
    /// prompt must exist in each of them.
    pub languages: Option<Vec<Lang>>,
    /// The SIP URI `transfer` steps without their own `uri` go to.
    pub helpline: Option<String>,
    /// Prompt name → file: one file for every language (`story = "story.wav"`) or one per
    /// language (`story = { nl = "story-nl.wav", fr = "story-fr.wav" }`).
    #[serde(default)]
    pub prompts: BTreeMap<String, PromptFiles>,
    /// The steps, in order.
    #[serde(default, rename = "step")]
    pub steps: Vec<StepToml>,
}

/// The file(s) of one named prompt.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum PromptFiles {
    /// The same file in every language.
    All(String),
    /// Language code → file.
    PerLanguage(BTreeMap<String, String>),
}

/// One prompt name or a list of them, played in order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// What `say_number` says: `"signature"` (the caller's signature number) or a literal.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum NumberToml {
    Literal(u64),
    Named(String),
}

/// Declares the keys a step may have, once: each key with its type and the kinds that take
/// it. From this come [`StepToml`]'s fields, [`StepToml::keys`] and [`allowed`].
macro_rules! step_keys {
    ($($(#[$attr:meta])* $key:ident: $ty:ty => [$($kind:ident),* $(,)?]),* $(,)?) => {
        /// One step as written. Every key is optional here; which keys a kind takes and needs
        /// is checked by [`FlowSpec::build`], so the error can name the step.
        #[derive(Debug, Clone, Default, PartialEq, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct StepToml {
            pub name: Option<String>,
            pub kind: Option<String>,
            $($(#[$attr])* pub $key: Option<$ty>,)*
        }

        impl StepToml {
            /// The keys this step sets (besides `name` and `kind`).
            fn keys(&self) -> Vec<&'static str> {
                let mut keys = Vec::new();
                $(if self.$key.is_some() {
                    keys.push(stringify!($key));
                })*
                keys
            }
        }

        /// Each key and the kinds that take it.
        const KEY_KINDS: &[(&str, &[&str])] = &[$((stringify!($key), &[$(stringify!($kind)),*])),*];
    };
}

step_keys! {
    /// The step that follows (every kind but `hangup`).
    next: String => [ring, play, say_count, say_number, menu, language, record, sign, branch, transfer, withdraw],
    seconds: f64 => [ring],
    prompt: OneOrMany => [play, say_count, say_number, menu, language, transfer, withdraw, hangup],
    barge_in: bool => [play, say_count, say_number],
    /// The caller asked to be contacted again (a play step reached from a menu choice).
    contact: bool => [play],
    number: NumberToml => [say_number],
    choices: BTreeMap<String, String> => [menu, language],
    timeout_seconds: f64 => [menu, language, record, withdraw],
    retries: u32 => [menu, language, record, withdraw],
    invalid_prompt: String => [menu, language, record, withdraw],
    timeout_prompt: String => [menu, language, record, withdraw],
    skip_if_known: bool => [language],
    max_seconds: f64 => [record],
    silence_seconds: f64 => [record],
    initial_silence_seconds: f64 => [record],
    beep: bool => [record],
    confirm: bool => [record],
    confirm_prompt: String => [record],
    max_takes: u32 => [record],
    speech_ms: u64 => [sign],
    key_pressed: bool => [sign],
    listened_seconds: f64 => [sign],
    already: String => [sign],
    unmet: String => [sign],
    error: String => [sign, withdraw],
    already_signed: String => [branch],
    anonymous: String => [branch],
    outside_dates: String => [branch],
    line_full: String => [branch],
    uri: String => [transfer],
    confirm_digit: String => [withdraw],
    done_prompt: OneOrMany => [withdraw],
    cancel: String => [withdraw],
}

/// The kinds of step.
const KINDS: [&str; 12] = [
    "ring",
    "play",
    "say_count",
    "say_number",
    "menu",
    "language",
    "record",
    "sign",
    "branch",
    "transfer",
    "withdraw",
    "hangup",
];

/// Whether a step of this kind takes this key (`name` and `kind` aside).
fn allowed(kind: &str, key: &str) -> bool {
    KEY_KINDS
        .iter()
        .any(|(k, kinds)| *k == key && kinds.contains(&kind))
}

// ---------------------------------------------------------------------------------------------
// The validated flow.

/// A step's position in its [`FlowSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StepId(pub(crate) usize);

impl StepId {
    /// The step's position in the flow's list (0-based).
    pub fn index(self) -> usize {
        self.0
    }
}

/// A validated flow, shared read-only by every call of its campaign (wrap it in an `Arc`).
#[derive(Debug, Clone, PartialEq)]
pub struct FlowSpec {
    campaign: String,
    languages: Vec<Lang>,
    prompts: BTreeMap<String, BTreeMap<Lang, String>>,
    steps: Vec<Step>,
    start: StepId,
}

/// One validated step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub kind: StepKind,
}

/// What a step does; see `docs/flows.md` for each kind.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// Ring (180) for `duration`; the call is answered by the first step that needs media.
    Ring { duration: Duration, next: StepId },
    /// Play prompts; with `barge_in`, a key cuts them short and is kept for a menu that follows.
    Play {
        prompts: Vec<String>,
        barge_in: bool,
        /// Entering this step records that the caller asked to be contacted again.
        contact: bool,
        next: StepId,
    },
    /// Say the campaign's count, after `prompts`.
    SayCount {
        prompts: Vec<String>,
        barge_in: bool,
        next: StepId,
    },
    /// Say a number, after `prompts`.
    SayNumber {
        prompts: Vec<String>,
        number: NumberSource,
        barge_in: bool,
        next: StepId,
    },
    /// Ask for a key; `next` is where the caller goes when the retries are used up.
    Menu {
        ask: Ask,
        choices: Vec<(char, StepId)>,
        next: StepId,
    },
    /// Ask for the call's language; `next` follows a choice or the retries running out.
    Language {
        ask: Ask,
        choices: Vec<(char, Lang)>,
        skip_if_known: bool,
        next: StepId,
    },
    /// Record the caller, optionally after a beep, optionally asking to keep or record again.
    Record {
        limits: RecordLimits,
        beep: bool,
        confirm: Option<Ask>,
        max_takes: u32,
        next: StepId,
    },
    /// Sign when `rule` holds. `unmet` and `error` default to ending the call.
    Sign {
        rule: SignRule,
        next: StepId,
        already: StepId,
        unmet: Option<StepId>,
        error: Option<StepId>,
    },
    /// Jump on the first condition that holds, in the order of [`Condition`].
    Branch {
        conditions: Vec<(Condition, StepId)>,
        next: StepId,
    },
    /// Play `prompts`, then transfer with REFER; `next` is where a failed transfer goes.
    Transfer {
        uri: String,
        prompts: Vec<String>,
        next: StepId,
    },
    /// Ask to confirm with `confirm_digit`, withdraw, then play `done_prompts`.
    Withdraw {
        ask: Ask,
        confirm_digit: char,
        done_prompts: Vec<String>,
        next: StepId,
        cancel: StepId,
        error: Option<StepId>,
    },
    /// Play `prompts` (if any), then hang up.
    Hangup { prompts: Vec<String> },
}

/// A question asked with DTMF.
#[derive(Debug, Clone, PartialEq)]
pub struct Ask {
    pub prompts: Vec<String>,
    /// How long to wait for a key after the prompt ends.
    pub timeout: Duration,
    /// How many times the question is asked again after a wrong key or none.
    pub retries: u32,
    /// Played before asking again after a key that is not a choice.
    pub invalid_prompt: Option<String>,
    /// Played before asking again after no key.
    pub timeout_prompt: Option<String>,
}

/// Limits of one recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLimits {
    /// The recording never runs longer than this.
    pub max: Duration,
    /// The recording ends after this much silence following speech.
    pub silence_end: Duration,
    /// The recording ends when nothing is said for this long from its start.
    pub initial_silence: Duration,
}

/// What makes a call a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignRule {
    /// The last recording holds at least this much speech.
    Speech(Duration),
    /// The caller pressed a key during the call (a "press 1 to sign" menu).
    KeyPressed,
    /// The caller listened at least this long since the answer.
    Listened(Duration),
}

/// A `branch` condition, checked in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Condition {
    OutsideDates,
    LineFull,
    AlreadySigned,
    Anonymous,
}

/// The number a `say_number` step says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberSource {
    /// The caller's signature number (from this call's signing, or the earlier one).
    Signature,
    Literal(u64),
}

/// Where a prompt's audio comes from, for one language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptSource<'a> {
    /// A campaign file, as written in the flow's `[prompts]` (relative to the config file).
    File(&'a str),
    /// A shared system prompt: `audio/prompts/{lang}/{name}.wav`.
    System,
    /// The beep tone.
    Beep,
}

// ---------------------------------------------------------------------------------------------
// Errors.

/// A flow that cannot run, naming where: the campaign, the step (name and 0-based position in
/// the list) and the key when known. The config loader adds the file and line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct SpecError {
    pub campaign: String,
    pub step: Option<String>,
    pub step_index: Option<usize>,
    pub key: Option<String>,
    pub kind: SpecErrorKind,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "campaign `{}`", self.campaign)?;
        match (&self.step, self.step_index) {
            (Some(name), Some(i)) => write!(f, ", step `{name}` (step {})", i + 1)?,
            (Some(name), None) => write!(f, ", step `{name}`")?,
            (None, Some(i)) => write!(f, ", step {}", i + 1)?,
            (None, None) => {}
        }
        if let Some(key) = &self.key {
            write!(f, ", key `{key}`")?;
        }
        write!(f, ": {}", self.kind)
    }
}

/// What is wrong with a flow.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecErrorKind {
    #[error("{0}")]
    Toml(String),
    #[error("the flow has no steps")]
    NoSteps,
    #[error("the flow has more than {max} steps")]
    TooManySteps { max: usize },
    #[error("the flow lists no languages")]
    NoLanguages,
    #[error("`{0}` is not a language (expected nl, fr or en)")]
    UnknownLanguage(String),
    #[error("a step has no `name`")]
    MissingName,
    #[error("step names are 1 to {MAX_NAME_BYTES} letters, digits, `_` or `-`")]
    BadName,
    #[error("two steps are called `{0}`")]
    DuplicateName(String),
    #[error("a step has no `kind`")]
    MissingKind,
    #[error("unknown step kind `{0}` (expected ring, play, say_count, say_number, menu, language, record, sign, branch, transfer, withdraw or hangup)")]
    UnknownKind(String),
    #[error("a `{kind}` step does not take this key")]
    KeyNotAllowed { kind: String },
    #[error("this key is required")]
    MissingKey,
    #[error("{0}")]
    BadValue(String),
    #[error("no step is called `{0}`")]
    UnknownTarget(String),
    #[error("the last step needs a `next` (or be a hangup)")]
    NoNext,
    #[error("no path from the start reaches this step")]
    Unreachable,
    #[error("prompt `{prompt}` has no file for language `{lang}`")]
    MissingPrompt { prompt: String, lang: Lang },
    #[error("a transfer needs a `uri`, or a `helpline` for the flow")]
    NoHelpline,
}

// ---------------------------------------------------------------------------------------------
// Building.

impl FlowSpec {
    /// Parses a flow written as its own TOML document (the keys of `[campaign.flow]`, with
    /// `[[step]]` and `[prompts]` at the top level) and validates it.
    pub fn parse(campaign: &str, text: &str) -> Result<FlowSpec, SpecError> {
        let raw: FlowToml = toml::from_str(text).map_err(|e| SpecError {
            campaign: campaign.to_owned(),
            step: None,
            step_index: None,
            key: None,
            kind: SpecErrorKind::Toml(e.to_string()),
        })?;
        FlowSpec::build(campaign, raw)
    }

    /// Validates a flow as deserialised from TOML.
    pub fn build(campaign: &str, raw: FlowToml) -> Result<FlowSpec, SpecError> {
        Builder {
            campaign,
            raw: &raw,
        }
        .build()
    }

    /// The campaign this flow belongs to.
    pub fn campaign(&self) -> &str {
        &self.campaign
    }

    /// The languages the flow speaks; the first is the default.
    pub fn languages(&self) -> &[Lang] {
        &self.languages
    }

    /// The language a call starts in when nothing else says.
    pub fn default_language(&self) -> Lang {
        // `build` rejects an empty list.
        self.languages.first().copied().unwrap_or(Lang::En)
    }

    /// The steps, in the order written.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The step the call starts at.
    pub fn start(&self) -> StepId {
        self.start
    }

    /// The step at `id`.
    // A `StepId` is only made inside this crate, from a position in this flow's `steps`.
    #[allow(clippy::indexing_slicing)]
    pub fn step(&self, id: StepId) -> &Step {
        &self.steps[id.0]
    }

    /// The step called `name`.
    pub fn step_id(&self, name: &str) -> Option<StepId> {
        self.steps.iter().position(|s| s.name == name).map(StepId)
    }

    /// Where prompt `name` comes from in `lang`: the flow's own file first, then the shared
    /// prompts. `None` if neither has it.
    pub fn prompt_source(&self, name: &str, lang: Lang) -> Option<PromptSource<'_>> {
        if let Some(file) = self.prompts.get(name).and_then(|m| m.get(&lang)) {
            return Some(PromptSource::File(file));
        }
        if name == prompts::BEEP {
            return Some(PromptSource::Beep);
        }
        prompts::system(name).map(|_| PromptSource::System)
    }

    /// Every prompt name the steps can play, sorted.
    pub fn prompt_names(&self) -> BTreeSet<&str> {
        self.steps
            .iter()
            .flat_map(|s| step_prompts(&s.kind))
            .collect()
    }

    /// Every (prompt, language) the flow can play with where its audio comes from: what the
    /// loader must read before the campaign takes calls.
    pub fn required_prompts(&self) -> Vec<(&str, Lang, PromptSource<'_>)> {
        let mut out = Vec::new();
        for name in self.prompt_names() {
            for &lang in &self.languages {
                // `build` checked every name in every language.
                if let Some(src) = self.prompt_source(name, lang) {
                    out.push((name, lang, src));
                }
            }
        }
        out
    }
}

/// The prompt names a step can play.
fn step_prompts(kind: &StepKind) -> Vec<&str> {
    fn ask_prompts(ask: &Ask) -> impl Iterator<Item = &str> {
        ask.prompts
            .iter()
            .map(String::as_str)
            .chain(ask.invalid_prompt.as_deref())
            .chain(ask.timeout_prompt.as_deref())
    }
    match kind {
        StepKind::Ring { .. } | StepKind::Sign { .. } | StepKind::Branch { .. } => Vec::new(),
        StepKind::Play { prompts, .. }
        | StepKind::SayCount { prompts, .. }
        | StepKind::SayNumber { prompts, .. }
        | StepKind::Transfer { prompts, .. }
        | StepKind::Hangup { prompts } => prompts.iter().map(String::as_str).collect(),
        StepKind::Menu { ask, .. } | StepKind::Language { ask, .. } => ask_prompts(ask).collect(),
        StepKind::Record { beep, confirm, .. } => beep
            .then_some(prompts::BEEP)
            .into_iter()
            .chain(confirm.iter().flat_map(ask_prompts))
            .collect(),
        StepKind::Withdraw {
            ask, done_prompts, ..
        } => ask_prompts(ask)
            .chain(done_prompts.iter().map(String::as_str))
            .collect(),
    }
}

struct Builder<'a> {
    campaign: &'a str,
    raw: &'a FlowToml,
}

/// Where in the flow an error is.
#[derive(Clone, Copy)]
struct At<'a> {
    step: Option<&'a str>,
    index: Option<usize>,
}

impl Builder<'_> {
    fn err(&self, at: At<'_>, key: Option<&str>, kind: SpecErrorKind) -> SpecError {
        SpecError {
            campaign: self.campaign.to_owned(),
            step: at.step.map(str::to_owned),
            step_index: at.index,
            key: key.map(str::to_owned),
            kind,
        }
    }

    fn build(self) -> Result<FlowSpec, SpecError> {
        let raw = self.raw;
        let top = At {
            step: None,
            index: None,
        };
        let languages = raw.languages.clone().unwrap_or_else(|| vec![Lang::En]);
        if languages.is_empty() {
            return Err(self.err(top, Some("languages"), SpecErrorKind::NoLanguages));
        }
        let mut prompt_files: BTreeMap<String, BTreeMap<Lang, String>> = BTreeMap::new();
        for (name, files) in &raw.prompts {
            let key = format!("prompts.{name}");
            let map = match files {
                PromptFiles::All(file) => Lang::ALL.iter().map(|&l| (l, file.clone())).collect(),
                PromptFiles::PerLanguage(m) => {
                    let mut out = BTreeMap::new();
                    for (code, file) in m {
                        let lang = code.parse::<Lang>().map_err(|_| {
                            self.err(
                                top,
                                Some(&key),
                                SpecErrorKind::UnknownLanguage(code.clone()),
                            )
                        })?;
                        out.insert(lang, file.clone());
                    }
                    out
                }
            };
            prompt_files.insert(name.clone(), map);
        }
        if raw.steps.is_empty() {
            return Err(self.err(top, Some("step"), SpecErrorKind::NoSteps));
        }
        if raw.steps.len() > MAX_STEPS {
            return Err(self.err(
                top,
                Some("step"),
                SpecErrorKind::TooManySteps { max: MAX_STEPS },
            ));
        }

        // Names first, so jumps can be resolved in one pass.
        let mut ids: HashMap<&str, StepId> = HashMap::new();
        for (i, s) in raw.steps.iter().enumerate() {
            let at = At {
                step: s.name.as_deref(),
                index: Some(i),
            };
            let name = s
                .name
                .as_deref()
                .ok_or_else(|| self.err(at, Some("name"), SpecErrorKind::MissingName))?;
            let good = !name.is_empty()
                && name.len() <= MAX_NAME_BYTES
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !good {
                return Err(self.err(at, Some("name"), SpecErrorKind::BadName));
            }
            if ids.insert(name, StepId(i)).is_some() {
                return Err(self.err(
                    at,
                    Some("name"),
                    SpecErrorKind::DuplicateName(name.to_owned()),
                ));
            }
        }
        let start = match &raw.start {
            None => StepId(0),
            Some(name) => *ids.get(name.as_str()).ok_or_else(|| {
                self.err(
                    top,
                    Some("start"),
                    SpecErrorKind::UnknownTarget(name.clone()),
                )
            })?,
        };

        let mut steps = Vec::with_capacity(raw.steps.len());
        for (i, s) in raw.steps.iter().enumerate() {
            let step = StepBuilder {
                b: &self,
                s,
                at: At {
                    step: s.name.as_deref(),
                    index: Some(i),
                },
                ids: &ids,
                following: (i + 1 < raw.steps.len()).then_some(StepId(i + 1)),
            }
            .build()?;
            steps.push(step);
        }

        let spec = FlowSpec {
            campaign: self.campaign.to_owned(),
            languages,
            prompts: prompt_files,
            steps,
            start,
        };
        self.check_reachable(&spec)?;
        self.check_prompts(&spec)?;
        Ok(spec)
    }

    fn check_reachable(&self, spec: &FlowSpec) -> Result<(), SpecError> {
        let mut seen = vec![false; spec.steps.len()];
        let mut todo = vec![spec.start];
        while let Some(id) = todo.pop() {
            let (Some(mark), Some(step)) = (seen.get_mut(id.0), spec.steps.get(id.0)) else {
                continue;
            };
            if std::mem::replace(mark, true) {
                continue;
            }
            todo.extend(targets(&step.kind));
        }
        match seen.iter().position(|s| !s) {
            None => Ok(()),
            Some(i) => Err(self.err(
                At {
                    step: spec.steps.get(i).map(|s| s.name.as_str()),
                    index: Some(i),
                },
                None,
                SpecErrorKind::Unreachable,
            )),
        }
    }

    fn check_prompts(&self, spec: &FlowSpec) -> Result<(), SpecError> {
        for (i, step) in spec.steps.iter().enumerate() {
            for name in step_prompts(&step.kind) {
                for &lang in &spec.languages {
                    if spec.prompt_source(name, lang).is_none() {
                        return Err(self.err(
                            At {
                                step: Some(&step.name),
                                index: Some(i),
                            },
                            None,
                            SpecErrorKind::MissingPrompt {
                                prompt: name.to_owned(),
                                lang,
                            },
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Every step a step can jump to.
fn targets(kind: &StepKind) -> Vec<StepId> {
    match kind {
        StepKind::Ring { next, .. }
        | StepKind::Play { next, .. }
        | StepKind::SayCount { next, .. }
        | StepKind::SayNumber { next, .. }
        | StepKind::Language { next, .. }
        | StepKind::Record { next, .. }
        | StepKind::Transfer { next, .. } => vec![*next],
        StepKind::Menu { choices, next, .. } => {
            choices.iter().map(|c| c.1).chain([*next]).collect()
        }
        StepKind::Sign {
            next,
            already,
            unmet,
            error,
            ..
        } => [*next, *already]
            .into_iter()
            .chain(*unmet)
            .chain(*error)
            .collect(),
        StepKind::Branch { conditions, next } => {
            conditions.iter().map(|c| c.1).chain([*next]).collect()
        }
        StepKind::Withdraw {
            next,
            cancel,
            error,
            ..
        } => [*next, *cancel].into_iter().chain(*error).collect(),
        StepKind::Hangup { .. } => Vec::new(),
    }
}

struct StepBuilder<'a> {
    b: &'a Builder<'a>,
    s: &'a StepToml,
    at: At<'a>,
    ids: &'a HashMap<&'a str, StepId>,
    /// The step after this one in the list: the default `next`.
    following: Option<StepId>,
}

impl StepBuilder<'_> {
    fn err(&self, key: Option<&str>, kind: SpecErrorKind) -> SpecError {
        self.b.err(self.at, key, kind)
    }

    fn bad(&self, key: &str, why: impl Into<String>) -> SpecError {
        self.err(Some(key), SpecErrorKind::BadValue(why.into()))
    }

    fn target(&self, key: &str, name: &str) -> Result<StepId, SpecError> {
        self.ids
            .get(name)
            .copied()
            .ok_or_else(|| self.err(Some(key), SpecErrorKind::UnknownTarget(name.to_owned())))
    }

    fn opt_target(&self, key: &str, name: &Option<String>) -> Result<Option<StepId>, SpecError> {
        name.as_deref().map(|n| self.target(key, n)).transpose()
    }

    fn next(&self) -> Result<StepId, SpecError> {
        match &self.s.next {
            Some(name) => self.target("next", name),
            None => self
                .following
                .ok_or_else(|| self.err(Some("next"), SpecErrorKind::NoNext)),
        }
    }

    fn seconds(
        &self,
        key: &str,
        value: Option<f64>,
        default: Duration,
        max: Duration,
    ) -> Result<Duration, SpecError> {
        let Some(v) = value else {
            return Ok(default);
        };
        if !v.is_finite() || v < 0.0 || v > max.as_secs_f64() {
            return Err(self.bad(
                key,
                format!("must be between 0 and {} seconds", max.as_secs()),
            ));
        }
        Ok(Duration::from_secs_f64(v))
    }

    fn prompt_list(&self, key: &str, value: &Option<OneOrMany>) -> Result<Vec<String>, SpecError> {
        let list = value.clone().map(OneOrMany::into_vec).unwrap_or_default();
        if list.len() > MAX_PROMPTS_PER_STEP {
            return Err(self.bad(
                key,
                format!("at most {MAX_PROMPTS_PER_STEP} prompts in a row"),
            ));
        }
        if list.iter().any(|p| p.is_empty()) {
            return Err(self.bad(key, "a prompt name is empty"));
        }
        Ok(list)
    }

    fn digit(&self, key: &str, s: &str) -> Result<char, SpecError> {
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if is_dtmf(c) => Ok(c),
            _ => Err(self.bad(key, format!("`{s}` is not one key (0-9, *, #, A-D)"))),
        }
    }

    /// An optional prompt name where `""` turns a default off.
    fn optional_prompt(&self, value: &Option<String>, default: &str) -> Option<String> {
        match value.as_deref() {
            None => Some(default.to_owned()),
            Some("") => None,
            Some(p) => Some(p.to_owned()),
        }
    }

    fn ask(&self, prompts: Vec<String>) -> Result<Ask, SpecError> {
        let s = self.s;
        let retries = s.retries.unwrap_or(DEFAULT_RETRIES);
        if retries > MAX_RETRIES {
            return Err(self.bad("retries", format!("at most {MAX_RETRIES}")));
        }
        Ok(Ask {
            prompts,
            timeout: self.seconds(
                "timeout_seconds",
                s.timeout_seconds,
                DEFAULT_MENU_TIMEOUT,
                MAX_MENU_TIMEOUT,
            )?,
            retries,
            invalid_prompt: self.optional_prompt(&s.invalid_prompt, "invalid_choice"),
            timeout_prompt: self.optional_prompt(&s.timeout_prompt, "no_input"),
        })
    }

    fn build(self) -> Result<Step, SpecError> {
        let s = self.s;
        let name = self.at.step.unwrap_or_default().to_owned();
        let kind_name = s
            .kind
            .as_deref()
            .ok_or_else(|| self.err(Some("kind"), SpecErrorKind::MissingKind))?;
        if !KINDS.contains(&kind_name) {
            return Err(self.err(
                Some("kind"),
                SpecErrorKind::UnknownKind(kind_name.to_owned()),
            ));
        }
        for key in s.keys() {
            if !allowed(kind_name, key) {
                return Err(self.err(
                    Some(key),
                    SpecErrorKind::KeyNotAllowed {
                        kind: kind_name.to_owned(),
                    },
                ));
            }
        }
        let kind = match kind_name {
            "ring" => StepKind::Ring {
                duration: self.seconds("seconds", s.seconds, DEFAULT_RING, MAX_RING)?,
                next: self.next()?,
            },
            "play" => {
                let prompts = self.prompt_list("prompt", &s.prompt)?;
                if prompts.is_empty() {
                    return Err(self.err(Some("prompt"), SpecErrorKind::MissingKey));
                }
                StepKind::Play {
                    prompts,
                    barge_in: s.barge_in.unwrap_or(false),
                    contact: s.contact.unwrap_or(false),
                    next: self.next()?,
                }
            }
            "say_count" => StepKind::SayCount {
                prompts: self.prompt_list("prompt", &s.prompt)?,
                barge_in: s.barge_in.unwrap_or(false),
                next: self.next()?,
            },
            "say_number" => {
                let number = match &s.number {
                    None => return Err(self.err(Some("number"), SpecErrorKind::MissingKey)),
                    Some(NumberToml::Literal(n)) => NumberSource::Literal(*n),
                    Some(NumberToml::Named(n)) if n == "signature" => NumberSource::Signature,
                    Some(NumberToml::Named(n)) => {
                        return Err(self.bad(
                            "number",
                            format!("`{n}` is neither \"signature\" nor a whole number"),
                        ))
                    }
                };
                StepKind::SayNumber {
                    prompts: self.prompt_list("prompt", &s.prompt)?,
                    number,
                    barge_in: s.barge_in.unwrap_or(false),
                    next: self.next()?,
                }
            }
            "menu" => {
                let prompts = self.prompt_list("prompt", &s.prompt)?;
                let raw_choices = s
                    .choices
                    .as_ref()
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| self.err(Some("choices"), SpecErrorKind::MissingKey))?;
                let mut choices = Vec::new();
                for (digit, target) in raw_choices {
                    choices.push((
                        self.digit("choices", digit)?,
                        self.target("choices", target)?,
                    ));
                }
                StepKind::Menu {
                    ask: self.ask(prompts)?,
                    choices,
                    next: self.next()?,
                }
            }
            "language" => {
                let mut prompts = self.prompt_list("prompt", &s.prompt)?;
                if s.prompt.is_none() {
                    prompts.push("language_menu".to_owned());
                }
                let languages = self.b.raw.languages.clone().unwrap_or(vec![Lang::En]);
                let choices = match &s.choices {
                    None => Lang::ALL
                        .iter()
                        .zip(['1', '2', '3'])
                        .filter(|(l, _)| languages.contains(l))
                        .map(|(&l, d)| (d, l))
                        .collect(),
                    Some(map) => {
                        let mut out = Vec::new();
                        for (digit, code) in map {
                            let lang = code.parse::<Lang>().map_err(|_| {
                                self.err(
                                    Some("choices"),
                                    SpecErrorKind::UnknownLanguage(code.clone()),
                                )
                            })?;
                            if !languages.contains(&lang) {
                                return Err(self.bad(
                                    "choices",
                                    format!("`{lang}` is not in the flow's `languages`"),
                                ));
                            }
                            out.push((self.digit("choices", digit)?, lang));
                        }
                        out
                    }
                };
                if choices.is_empty() {
                    return Err(self.err(Some("choices"), SpecErrorKind::MissingKey));
                }
                StepKind::Language {
                    ask: self.ask(prompts)?,
                    choices,
                    skip_if_known: s.skip_if_known.unwrap_or(true),
                    next: self.next()?,
                }
            }
            "record" => {
                let limits = RecordLimits {
                    max: self.seconds(
                        "max_seconds",
                        s.max_seconds,
                        DEFAULT_RECORD_MAX,
                        MAX_RECORD,
                    )?,
                    silence_end: self.seconds(
                        "silence_seconds",
                        s.silence_seconds,
                        DEFAULT_SILENCE_END,
                        MAX_RECORD,
                    )?,
                    initial_silence: self.seconds(
                        "initial_silence_seconds",
                        s.initial_silence_seconds,
                        DEFAULT_INITIAL_SILENCE,
                        MAX_RECORD,
                    )?,
                };
                if limits.max.is_zero() {
                    return Err(self.bad("max_seconds", "must be more than 0"));
                }
                let confirm = if s.confirm.unwrap_or(false) {
                    let prompt = s
                        .confirm_prompt
                        .clone()
                        .unwrap_or_else(|| "keep_or_rerecord".to_owned());
                    Some(self.ask(vec![prompt])?)
                } else {
                    for key in ["confirm_prompt", "max_takes"] {
                        if s.keys().contains(&key) {
                            return Err(self.bad(key, "only with `confirm = true`"));
                        }
                    }
                    None
                };
                let max_takes = s.max_takes.unwrap_or(DEFAULT_TAKES);
                if !(1..=MAX_TAKES).contains(&max_takes) {
                    return Err(self.bad("max_takes", format!("must be 1 to {MAX_TAKES}")));
                }
                StepKind::Record {
                    limits,
                    beep: s.beep.unwrap_or(true),
                    confirm,
                    max_takes,
                    next: self.next()?,
                }
            }
            "sign" => {
                let rules = [
                    s.speech_ms.is_some(),
                    s.key_pressed.is_some(),
                    s.listened_seconds.is_some(),
                ];
                let rule = match rules {
                    [true, false, false] => {
                        let ms = s.speech_ms.unwrap_or_default();
                        if Duration::from_millis(ms) > MAX_RECORD {
                            return Err(self.bad(
                                "speech_ms",
                                format!("at most {} ms", MAX_RECORD.as_millis()),
                            ));
                        }
                        SignRule::Speech(Duration::from_millis(ms))
                    }
                    [false, true, false] => {
                        if s.key_pressed != Some(true) {
                            return Err(self.bad("key_pressed", "can only be `true`"));
                        }
                        SignRule::KeyPressed
                    }
                    [false, false, true] => SignRule::Listened(self.seconds(
                        "listened_seconds",
                        s.listened_seconds,
                        Duration::ZERO,
                        MAX_LISTENED,
                    )?),
                    _ => {
                        return Err(self.bad(
                            "speech_ms",
                            "a sign step needs exactly one rule: speech_ms, key_pressed or listened_seconds",
                        ))
                    }
                };
                let next = self.next()?;
                StepKind::Sign {
                    rule,
                    next,
                    already: self.opt_target("already", &s.already)?.unwrap_or(next),
                    unmet: self.opt_target("unmet", &s.unmet)?,
                    error: self.opt_target("error", &s.error)?,
                }
            }
            "branch" => {
                let mut conditions = Vec::new();
                for (cond, key, target) in [
                    (Condition::OutsideDates, "outside_dates", &s.outside_dates),
                    (Condition::LineFull, "line_full", &s.line_full),
                    (
                        Condition::AlreadySigned,
                        "already_signed",
                        &s.already_signed,
                    ),
                    (Condition::Anonymous, "anonymous", &s.anonymous),
                ] {
                    if let Some(t) = self.opt_target(key, target)? {
                        conditions.push((cond, t));
                    }
                }
                if conditions.is_empty() {
                    return Err(self.bad(
                        "already_signed",
                        "a branch needs at least one of outside_dates, line_full, already_signed, anonymous",
                    ));
                }
                StepKind::Branch {
                    conditions,
                    next: self.next()?,
                }
            }
            "transfer" => {
                let uri = s
                    .uri
                    .clone()
                    .or_else(|| self.b.raw.helpline.clone())
                    .ok_or_else(|| self.err(Some("uri"), SpecErrorKind::NoHelpline))?;
                let key = if s.uri.is_some() { "uri" } else { "helpline" };
                let scheme_ok = ["sip:", "sips:", "tel:"]
                    .iter()
                    .any(|p| uri.len() > p.len() && uri.starts_with(p));
                if !scheme_ok || uri.len() > MAX_URI_BYTES || uri.chars().any(char::is_whitespace) {
                    return Err(self.bad(
                        key,
                        format!("`{uri}` is not a sip:, sips: or tel: URI of at most {MAX_URI_BYTES} bytes"),
                    ));
                }
                StepKind::Transfer {
                    uri,
                    prompts: self.prompt_list("prompt", &s.prompt)?,
                    next: self.next()?,
                }
            }
            "withdraw" => {
                let mut prompts = self.prompt_list("prompt", &s.prompt)?;
                if s.prompt.is_none() {
                    prompts.push("withdraw_confirm".to_owned());
                }
                let mut done_prompts = self.prompt_list("done_prompt", &s.done_prompt)?;
                if s.done_prompt.is_none() {
                    done_prompts.push("withdrawn".to_owned());
                }
                let next = self.next()?;
                StepKind::Withdraw {
                    ask: self.ask(prompts)?,
                    confirm_digit: self
                        .digit("confirm_digit", s.confirm_digit.as_deref().unwrap_or("1"))?,
                    done_prompts,
                    next,
                    cancel: self.opt_target("cancel", &s.cancel)?.unwrap_or(next),
                    error: self.opt_target("error", &s.error)?,
                }
            }
            "hangup" => StepKind::Hangup {
                prompts: self.prompt_list("prompt", &s.prompt)?,
            },
            other => {
                return Err(self.err(Some("kind"), SpecErrorKind::UnknownKind(other.to_owned())))
            }
        };
        Ok(Step { name, kind })
    }
}

/// The keys a telephone keypad sends (RFC 4733 events 0-15).
pub fn is_dtmf(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')
}

// ---------------------------------------------------------------------------------------------
// The built-in default flow.

/// The settings of the built-in voicemail flow, from the campaign's simple keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoicemailParams {
    pub language: Lang,
    pub ring: Duration,
    pub record_max: Duration,
    pub silence_end: Duration,
    pub initial_silence: Duration,
    pub min_speech: Duration,
    /// With a helpline, the thank-you offers "press 0" and transfers there.
    pub helpline: Option<String>,
}

impl Default for VoicemailParams {
    fn default() -> Self {
        VoicemailParams {
            language: Lang::En,
            ring: DEFAULT_RING,
            record_max: DEFAULT_RECORD_MAX,
            silence_end: DEFAULT_SILENCE_END,
            initial_silence: DEFAULT_INITIAL_SILENCE,
            min_speech: Duration::from_millis(500),
            helpline: None,
        }
    }
}

impl FlowToml {
    /// The Glenn-style voicemail, the flow of a campaign that declares none: ring, greeting
    /// and story, beep, record, sign by speech, thanks (offering the helpline when there is
    /// one), hang up; a repeat caller hears that they already signed, with 1 to hear the story
    /// again and 9 to withdraw. Its prompts `greeting`, `story` and `thanks` are the
    /// campaign's: add them to `prompts` before [`FlowSpec::build`].
    pub fn voicemail(p: &VoicemailParams) -> FlowToml {
        let text = voicemail_toml(p);
        // The template is ours and always valid; a failure here is a bug caught by the tests,
        // and an empty flow then fails validation instead of panicking.
        toml::from_str(&text).unwrap_or_default()
    }
}

/// The voicemail flow's TOML text (the first flow of `docs/flows.md`, with these settings).
pub fn voicemail_toml(p: &VoicemailParams) -> String {
    let helpline = match &p.helpline {
        Some(uri) => format!("helpline = {}\n", toml_string(uri)),
        None => String::new(),
    };
    let thanks = if p.helpline.is_some() {
        r#"[[step]]
name = "thanks"
kind = "menu"
prompt = ["thanks", "helpline_offer"]
choices = { "0" = "helpline" }
timeout_seconds = 4
retries = 0
next = "bye"

[[step]]
name = "helpline"
kind = "transfer"
prompt = "connecting"
next = "helpline_failed"

[[step]]
name = "helpline_failed"
kind = "hangup"
prompt = ["transfer_failed", "goodbye"]
"#
    } else {
        r#"[[step]]
name = "thanks"
kind = "play"
prompt = "thanks"
next = "bye"
"#
    };
    format!(
        r#"languages = ["{lang}"]
{helpline}
[[step]]
name = "ring"
kind = "ring"
seconds = {ring:?}

[[step]]
name = "check"
kind = "branch"
outside_dates = "closed"
line_full = "busy"
already_signed = "repeat"

[[step]]
name = "story"
kind = "play"
prompt = ["greeting", "story"]

[[step]]
name = "record"
kind = "record"
beep = true
max_seconds = {max:?}
silence_seconds = {silence:?}
initial_silence_seconds = {initial:?}

[[step]]
name = "sign"
kind = "sign"
speech_ms = {speech}
unmet = "not_signed"
error = "problem"

{thanks}
[[step]]
name = "bye"
kind = "hangup"

[[step]]
name = "not_signed"
kind = "hangup"
prompt = "not_signed"

[[step]]
name = "problem"
kind = "hangup"
prompt = "technical_problem"

[[step]]
name = "closed"
kind = "hangup"
prompt = "campaign_closed"

[[step]]
name = "busy"
kind = "hangup"
prompt = "line_busy"

[[step]]
name = "repeat"
kind = "menu"
prompt = ["already_signed", "press_1_story", "press_9_withdraw"]
choices = {{ "1" = "story_again", "9" = "withdraw" }}
timeout_seconds = 5
retries = 1
next = "bye"

[[step]]
name = "story_again"
kind = "play"
prompt = "story"
barge_in = true
next = "repeat"

[[step]]
name = "withdraw"
kind = "withdraw"
next = "bye"
cancel = "kept"
error = "problem"

[[step]]
name = "kept"
kind = "hangup"
prompt = ["withdraw_cancelled", "goodbye"]
"#,
        lang = p.language,
        ring = p.ring.as_secs_f64(),
        max = p.record_max.as_secs_f64(),
        silence = p.silence_end.as_secs_f64(),
        initial = p.initial_silence.as_secs_f64(),
        speech = p.min_speech.as_millis(),
    )
}

/// A TOML basic string: quotes and backslashes escaped, control characters dropped.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_names_known_kinds_and_every_kind_takes_a_key() {
        for (key, kinds) in KEY_KINDS {
            assert!(!kinds.is_empty(), "{key} is taken by no kind");
            for kind in *kinds {
                assert!(KINDS.contains(kind), "{key}: unknown kind {kind}");
            }
        }
        for kind in KINDS {
            assert!(
                KEY_KINDS.iter().any(|(_, kinds)| kinds.contains(&kind)),
                "{kind} takes no key"
            );
        }
        assert!(allowed("record", "max_takes") && !allowed("play", "max_takes"));
        assert!(!allowed("hangup", "next") && allowed("ring", "next"));
    }
}
