//! The backend-neutral steps of the writing methods: what a method checks and scrubs before
//! it writes, the values it binds, the audit texts it records and how a commit group's
//! outcomes are told. Each backend keeps only its SQL and its driver calls.

use std::collections::HashMap;
use std::time::SystemTime;

use crate::console::TOUCH_EVERY_SECS;
use crate::decode::{parse_or_corrupt, retention_str, SessionRow};
use crate::edits::actor_detail;
use crate::{
    scrub_bounded, scrub_numbers, time, unix_secs, validate_reason, BelgianRegion, CallSummary,
    CallerIdentity, CallerKey, CampaignSettings, ConsoleSession, Counts, NewClip, NewSignature,
    RetentionStep, Role, SessionLimits, SignOutcome, SignatureState, StoreError, MAX_REASON_BYTES,
};

/// Most rows one page of a paged read returns.
const MAX_PAGE: usize = 10_000;

/// A page size as bound in SQL (at most [`MAX_PAGE`]).
pub(crate) fn page_limit(limit: usize) -> i64 {
    i64::try_from(limit.min(MAX_PAGE)).unwrap_or(MAX_PAGE as i64)
}

/// `[since, until)` in Unix seconds, unbounded where None.
pub(crate) fn unix_range(since: Option<SystemTime>, until: Option<SystemTime>) -> (i64, i64) {
    (
        since.map(unix_secs).unwrap_or(i64::MIN),
        until.map(unix_secs).unwrap_or(i64::MAX),
    )
}

/// A review's reason and description, checked and scrubbed: the description is built from
/// what an operator typed (a filter), so it is bounded and scrubbed like the reason and no
/// number reaches the audit log through it.
pub(crate) struct ReviewTexts {
    pub reason: String,
    pub description: String,
}

impl ReviewTexts {
    pub(crate) fn new(reason: &str, description: &str) -> Result<ReviewTexts, StoreError> {
        Ok(ReviewTexts {
            reason: reviewed_reason(reason)?,
            description: scrub_bounded(description, MAX_REASON_BYTES),
        })
    }

    /// The audit detail of the review action `action` that changed `changed` signatures.
    pub(crate) fn detail(&self, action: i64, changed: u64, state: SignatureState) -> String {
        format!(
            "action {action}: {changed} signatures set to {} ({}); reason: {}",
            state.as_str(),
            self.description,
            self.reason
        )
    }
}

/// A reason an operator typed, checked and scrubbed.
pub(crate) fn reviewed_reason(reason: &str) -> Result<String, StoreError> {
    validate_reason(reason)?;
    Ok(scrub_numbers(reason))
}

/// The audit detail of reverting a review action.
pub(crate) fn revert_detail(action: i64, restored: u64, reason: &str) -> String {
    format!("action {action} reverted: {restored} signatures restored; reason: {reason}")
}

/// The audit detail of a retention step that changed `n` signatures.
pub(crate) fn retention_detail(step: RetentionStep, n: u64) -> String {
    format!("{}: {n} signatures", step.as_str())
}

/// The audit detail of an erasure (it names no number or key).
pub(crate) const ERASE_DETAIL: &str = "one signature and its recording erased on request";

/// The audit detail of a new console user.
pub(crate) fn user_detail(name: &str, role: Role) -> String {
    format!("{name} ({})", role.as_str())
}

/// The audit detail of an API token created or deleted.
pub(crate) fn token_detail(user: &str, label: &str) -> String {
    format!("{user}: {label}")
}

/// The audit detail of an edit of the campaign's texts and settings.
pub(crate) fn edit_detail(actor: &str) -> String {
    actor_detail(actor, "texts and settings")
}

/// The audit detail of an uploaded clip.
pub(crate) fn clip_detail(actor: &str, clip: &NewClip) -> String {
    let what = format!(
        "clip {} ({}), {} ms",
        clip.name, clip.language, clip.duration_ms
    );
    actor_detail(actor, &what)
}

/// The audit detail of a reset of the campaign's edits that dropped `clips` clips.
pub(crate) fn reset_detail(actor: &str, clips: u64) -> String {
    actor_detail(
        actor,
        &format!("reset to the configuration ({clips} clips dropped)"),
    )
}

/// When a summarised call ended, in Unix seconds (now when it does not say).
pub(crate) fn summary_ended_at(c: &CallSummary) -> i64 {
    unix_secs(c.ended_at.unwrap_or_else(SystemTime::now))
}

/// How long a summarised call heard the story, as bound in SQL.
pub(crate) fn summary_heard_ms(c: &CallSummary) -> i64 {
    i64::try_from(c.story_heard_ms).unwrap_or(i64::MAX)
}

/// A clip's duration as bound in SQL.
pub(crate) fn clip_duration(clip: &NewClip) -> i64 {
    i64::try_from(clip.duration_ms).unwrap_or(i64::MAX)
}

/// A campaign's settings as their columns take them.
pub(crate) struct SettingsValues {
    pub count_policy: &'static str,
    pub closes_at: Option<String>,
    pub recordings_days: Option<i64>,
    pub signatures_days: Option<i64>,
    pub signature_retention: &'static str,
    pub keep_contact: bool,
    /// Flanders, Wallonia, Brussels.
    pub thresholds: [i64; 3],
}

impl SettingsValues {
    pub(crate) fn of(s: &CampaignSettings) -> SettingsValues {
        let t = s.region_thresholds;
        SettingsValues {
            count_policy: s.count_policy.as_str(),
            closes_at: s.closes_at.map(time::rfc3339_utc),
            recordings_days: s.recordings_days.map(i64::from),
            signatures_days: s.signatures_days.map(i64::from),
            signature_retention: retention_str(s.signature_retention),
            keep_contact: s.keep_contact,
            thresholds: [t.flanders, t.wallonia, t.brussels]
                .map(|v| i64::try_from(v).unwrap_or(i64::MAX)),
        }
    }
}

/// A new signature's values as the signatures table takes them.
pub(crate) struct SignatureValues<'a> {
    pub key: Option<&'a str>,
    pub verified: bool,
    pub channel: &'static str,
    pub speech_ms: i64,
    pub recording: &'a [u8],
    pub trust: &'static str,
    pub country: Option<&'a str>,
    pub number_kind: Option<&'static str>,
    pub be_region: Option<&'static str>,
    pub prefix_block: Option<&'a str>,
    pub flow_version: Option<&'a str>,
    /// Kept only when the campaign keeps contacts and the caller is verified.
    pub contact: Option<&'a [u8]>,
}

impl<'a> SignatureValues<'a> {
    pub(crate) fn of(sig: &'a NewSignature, keep_contact: bool) -> SignatureValues<'a> {
        let (key, country, class) = match &sig.caller {
            CallerIdentity::Verified {
                key,
                country,
                class,
                ..
            } => (Some(key.as_str()), country.as_deref(), Some(class)),
            CallerIdentity::Withheld => (None, None, None),
        };
        let verified = key.is_some();
        SignatureValues {
            key,
            verified,
            channel: sig.channel,
            speech_ms: i64::from(sig.speech_ms),
            recording: &sig.recording_wav,
            trust: sig.effective_trust().as_str(),
            country,
            number_kind: class.map(|c| c.kind.as_str()),
            be_region: class.and_then(|c| c.be_region).map(BelgianRegion::as_str),
            prefix_block: class.map(|c| c.prefix_block.as_str()),
            flow_version: sig.flow_version.as_deref(),
            contact: sig
                .contact
                .as_ref()
                .filter(|_| keep_contact && verified)
                .map(|s| s.as_bytes()),
        }
    }
}

/// Which of a caller's keys has a signature in the campaign, from the keys found: Some(true)
/// the current key, Some(false) only the previous one, None neither.
pub(crate) fn key_found<'k>(
    found: impl IntoIterator<Item = &'k str>,
    key: &CallerKey,
) -> Option<bool> {
    let mut any = false;
    for k in found {
        if k == key.as_str() {
            return Some(true);
        }
        any = true;
    }
    any.then_some(false)
}

/// What a commit group did with one signature.
pub(crate) enum Written {
    Counted,
    Already,
    Unverified,
}

impl Written {
    /// A stored signature: counted, or counted as unverified.
    pub(crate) fn stored(verified: bool) -> Written {
        if verified {
            Written::Counted
        } else {
            Written::Unverified
        }
    }
}

/// The outcomes of a commit group, in its order: what was written for each signature (by
/// campaign id) and each campaign's counts after the group.
pub(crate) fn outcomes(
    written: Vec<(i64, Written)>,
    counts: &HashMap<i64, Counts>,
) -> Result<Vec<SignOutcome>, StoreError> {
    written
        .into_iter()
        .map(|(id, w)| {
            let counts = *counts
                .get(&id)
                .ok_or(StoreError::Corrupt("campaign vanished in a group"))?;
            Ok(match w {
                Written::Counted => SignOutcome::Counted { counts },
                Written::Already => SignOutcome::AlreadySigned { counts },
                Written::Unverified => SignOutcome::Unverified { counts },
            })
        })
        .collect()
}

/// What a stored session is at `now`.
pub(crate) enum SessionCheck {
    /// Past its limits: the caller deletes it.
    Expired,
    /// Alive; `touch`: the caller marks it used at `now`.
    Live {
        session: ConsoleSession,
        touch: bool,
    },
}

impl SessionCheck {
    pub(crate) fn of(
        row: SessionRow,
        now: i64,
        limits: SessionLimits,
    ) -> Result<SessionCheck, StoreError> {
        if !crate::console::session_alive(row.created, row.last_seen, now, limits) {
            return Ok(SessionCheck::Expired);
        }
        Ok(SessionCheck::Live {
            touch: now - row.last_seen >= TOUCH_EVERY_SECS,
            session: ConsoleSession {
                user: row.user,
                role: parse_or_corrupt(Role::parse(&row.role), "console user role")?,
                csrf: row.csrf,
            },
        })
    }
}
