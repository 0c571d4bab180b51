//! The signature registry: domain types, the store's capability traits (one [`Store`] for
//! all of them) with their SQLite and PostgreSQL backends, group commit, caller
//! pseudonymisation and classification, review, retention, export, and the live count hub.
//!
//! Privacy: a raw phone number enters only [`identify_caller`] (and [`ContactKey::seal`], which
//! encrypts it) and leaves as an HMAC ([`CallerKey`]) plus a coarse [`NumberClass`]. Nothing in
//! this crate stores, logs or prints a raw number; only [`ContactKey::open`] returns one, for
//! callers who asked to be contacted.

#![warn(clippy::string_slice, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::string_slice, clippy::indexing_slicing))]

/// The capability traits, so that their methods can be called on any store:
/// `use store::prelude::*;`.
pub mod prelude {
    pub use crate::capability::{
        Accounts, Audit, Calls, Campaigns, Edits, Retention, Review, Signing, Statistics, Store,
    };
}

mod caller;
mod capability;
mod class;
mod console;
mod contact;
mod decode;
mod edits;
mod export;
mod group;
mod hub;
mod pg;
mod registry;
mod secret;
mod shared;
mod sqlite;
mod time;

use std::fmt;
use std::time::SystemTime;

pub use caller::{
    identify_caller, is_known_region, warm_up, CallerIdentity, CallerKey, MAX_CALLER_INPUT_BYTES,
};
pub use capability::{
    Accounts, Audit, Calls, Campaigns, Edits, Retention, Review, Signing, Statistics, Store,
};
pub use class::{BelgianRegion, NumberClass, NumberKind, PREFIX_BLOCK_MIN_NUMBERS};
pub use console::{
    hash_password, new_token, token_hash, validate_user_name, verify_password,
    verify_password_dummy, ApiTokenInfo, CallSummaries, CallSummary, ConsoleSession, ConsoleUser,
    Funnel, Role, SessionLimits, MAX_CURVE_SECONDS, MIN_PASSWORD_CHARS,
};
pub use contact::{ContactKey, SealedContact, CONTACT_KEY_FILE};
pub use edits::{
    CampaignEdits, NewClip, StoredClip, MAX_ACTOR_BYTES, MAX_CLIP_BYTES, MAX_CLIP_LANGUAGE_BYTES,
    MAX_CLIP_NAME_BYTES, MAX_EDIT_BYTES,
};
pub use export::export;
pub use group::{MAX_GROUP_BYTES, MAX_GROUP_SIGNATURES, MAX_PENDING_SIGNATURES};
pub use hub::{CountHub, MAX_HUB_CAMPAIGNS};
pub use pg::PgStore;
pub use registry::{
    AnomalyBucket, AnomalyDimension, AnomalyReport, AnomalyThresholds, AuditEntry,
    CampaignSettings, CountPolicy, RegionThresholds, RetentionReport, RetentionStep, ReviewAction,
    SignatureFilter, SignatureRetention, SignatureRow, SignatureState, Trust,
};
use secret::validate_fingerprint;
pub use secret::{
    check_secret, Secret, SecretCheck, PREVIOUS_SECRET_FILE, SECRET_BYTES, SECRET_FILE,
};
pub use sqlite::{SqliteStore, BUSY_TIMEOUT};
pub use time::{parse_rfc3339, rfc3339_utc};

/// Largest recording `sign` accepts, in bytes (2 MiB: about two minutes of 8 kHz 8-bit audio,
/// or a minute of 16-bit).
pub const MAX_RECORDING_BYTES: usize = 2 * 1024 * 1024;

/// Longest campaign slug, in bytes.
pub const MAX_SLUG_BYTES: usize = 64;

/// Longest campaign title, in bytes.
pub const MAX_TITLE_BYTES: usize = 200;

/// Longest flow version string, in bytes.
pub const MAX_FLOW_VERSION_BYTES: usize = 64;

/// Longest review or erasure reason, in bytes.
pub const MAX_REASON_BYTES: usize = 500;

/// Counter rows per campaign, state and kind of signature: each commit group adds to one of
/// them in turn, so that several nodes committing at once (PostgreSQL) rarely write the same
/// row. Counts are their sum.
pub const COUNTER_SHARDS: u64 = 16;

/// Most signature ids one review action changes (a bigger filter is refused: narrow it).
pub const MAX_REVIEW_IDS: usize = 1_000_000;

/// Signature and unverified-signature counts of one campaign.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug, serde::Serialize)]
pub struct Counts {
    /// Signatures from verified callers (one per caller and campaign).
    pub signatures: u64,
    /// Signatures from callers who withheld their number.
    pub unverified: u64,
}

/// A signature to record: the caller's identity and their recorded voice.
pub struct NewSignature {
    /// Campaign slug; the campaign must exist (see [`Campaigns::ensure_campaign`]).
    pub campaign: String,
    pub caller: CallerIdentity,
    /// The WAV file of the caller saying their name. Must be non-empty and at most
    /// [`MAX_RECORDING_BYTES`].
    pub recording_wav: Vec<u8>,
    /// How much speech was detected in the recording.
    pub speech_ms: u32,
    /// Which channel took the call, e.g. "sip".
    pub channel: &'static str,
    /// How far the caller's identity can be trusted. None: inferred, `FromHeader` for a
    /// verified caller and `Withheld` otherwise. A withheld caller is always `Withheld`.
    pub trust: Option<Trust>,
    /// Version of the campaign flow the caller went through, for the export (at most
    /// [`MAX_FLOW_VERSION_BYTES`]).
    pub flow_version: Option<String>,
    /// The caller's number, encrypted, when they pressed the key to be contacted again. Kept
    /// only when the campaign allows it ([`CampaignSettings::keep_contact`]); destroyed when
    /// the campaign closes.
    pub contact: Option<SealedContact>,
}

impl NewSignature {
    /// The trust level that will be stored (see [`NewSignature::trust`]).
    pub fn effective_trust(&self) -> Trust {
        match (&self.caller, self.trust) {
            (CallerIdentity::Withheld, _) => Trust::Withheld,
            (CallerIdentity::Verified { .. }, Some(Trust::Withheld) | None) => Trust::FromHeader,
            (CallerIdentity::Verified { .. }, Some(t)) => t,
        }
    }
}

impl fmt::Debug for NewSignature {
    // By hand so that Debug prints the recording's size, not two megabytes of bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSignature")
            .field("campaign", &self.campaign)
            .field("caller", &self.caller)
            .field("recording_bytes", &self.recording_wav.len())
            .field("speech_ms", &self.speech_ms)
            .field("channel", &self.channel)
            .field("trust", &self.trust)
            .field("flow_version", &self.flow_version)
            .field("contact", &self.contact.is_some())
            .finish()
    }
}

/// What `sign` did. Every variant carries the campaign's counts after the call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SignOutcome {
    /// A verified caller's first signature for this campaign was stored and counted.
    Counted { counts: Counts },
    /// This verified caller had already signed; nothing was written.
    AlreadySigned { counts: Counts },
    /// A caller with a withheld number was stored and counted as unverified.
    Unverified { counts: Counts },
}

impl SignOutcome {
    pub fn counts(&self) -> Counts {
        match *self {
            SignOutcome::Counted { counts }
            | SignOutcome::AlreadySigned { counts }
            | SignOutcome::Unverified { counts } => counts,
        }
    }
}

/// A stored signature's recording, for export and tests.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredRecording {
    pub id: i64,
    pub verified: bool,
    pub speech_ms: u32,
    pub wav: Vec<u8>,
}

impl fmt::Debug for StoredRecording {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredRecording")
            .field("id", &self.id)
            .field("verified", &self.verified)
            .field("speech_ms", &self.speech_ms)
            .field("wav_bytes", &self.wav.len())
            .finish()
    }
}

/// Longest call id [`Calls::save_call`] takes, in bytes (provider name and call SID).
pub const MAX_CALL_ID_BYTES: usize = 128;

/// Largest call state [`Calls::save_call`] takes, in bytes: a recording in progress
/// ([`MAX_RECORDING_BYTES`], base64) plus the call's input log.
pub const MAX_CALL_STATE_BYTES: usize = MAX_RECORDING_BYTES / 3 * 4 + 256 * 1024;

/// A cloud-telephony call's state between two provider webhooks: opaque bytes to the store,
/// with a version that every successful [`Calls::save_call`] bumps (optimistic concurrency:
/// two nodes answering webhooks of the same call cannot overwrite each other).
#[derive(Clone, PartialEq, Eq)]
pub struct CallState {
    pub version: i64,
    pub data: Vec<u8>,
}

impl fmt::Debug for CallState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallState")
            .field("version", &self.version)
            .field("bytes", &self.data.len())
            .finish()
    }
}

fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn validate_call_id(call_id: &str) -> Result<(), StoreError> {
    if call_id.is_empty() || call_id.len() > MAX_CALL_ID_BYTES {
        return Err(StoreError::Invalid {
            what: "call id",
            why: "must be 1 to 128 bytes",
        });
    }
    Ok(())
}

fn validate_call_state(call_id: &str, data: &[u8]) -> Result<(), StoreError> {
    validate_call_id(call_id)?;
    if data.len() > MAX_CALL_STATE_BYTES {
        return Err(StoreError::Invalid {
            what: "call state",
            why: "larger than MAX_CALL_STATE_BYTES",
        });
    }
    Ok(())
}

/// Errors of this crate. None of them carries a phone number: the only caller data that
/// reaches the store is an HMAC key, and no variant includes even that.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("PostgreSQL error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("the store's writer has stopped")]
    Closed,
    #[error("export failed: {0}")]
    Export(String),
    #[error("unknown review action {0}")]
    UnknownReviewAction(i64),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error(
        "secret file has the wrong length (expected {expected} bytes); refusing to replace it"
    )]
    SecretWrongLength { expected: usize },
    #[error("unknown campaign {0:?}")]
    UnknownCampaign(String),
    #[error("invalid {what}: {why}")]
    Invalid {
        what: &'static str,
        why: &'static str,
    },
    #[error("empty recording: a signature needs a recording behind it")]
    EmptyRecording,
    #[error("recording of {bytes} bytes exceeds the limit of {max} bytes")]
    RecordingTooLarge { bytes: usize, max: usize },
    #[error("database schema version {found} is newer than this program supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("database holds an impossible value: {0}")]
    Corrupt(&'static str),
    #[error(
        "the store's caller keys were made with another secret key (store: key {stored}, this \
         one: key {current}); every node of a store needs the same secret.key (or \
         BELTEKEN_SECRET): copy it from the node that made it; to rotate keys, keep the old key \
         as secret.previous.key (or BELTEKEN_SECRET_PREVIOUS) beside the new one"
    )]
    SecretMismatch {
        /// Short forms of the fingerprints (never the keys).
        stored: String,
        current: String,
    },
}

/// Checks what every backend checks before writing a signature.
fn validate_signature(sig: &NewSignature) -> Result<(), StoreError> {
    if sig.recording_wav.is_empty() {
        return Err(StoreError::EmptyRecording);
    }
    if sig.recording_wav.len() > MAX_RECORDING_BYTES {
        return Err(StoreError::RecordingTooLarge {
            bytes: sig.recording_wav.len(),
            max: MAX_RECORDING_BYTES,
        });
    }
    if sig.channel.is_empty() {
        return Err(StoreError::Invalid {
            what: "channel",
            why: "empty",
        });
    }
    if sig
        .flow_version
        .as_ref()
        .is_some_and(|v| v.len() > MAX_FLOW_VERSION_BYTES)
    {
        return Err(StoreError::Invalid {
            what: "flow_version",
            why: "longer than 64 bytes",
        });
    }
    Ok(())
}

/// Fewest digits in a run that [`scrub_numbers`] removes: a Belgian number with its trunk
/// prefix has 9; dates ("2025-06-01", 8) and prefix blocks ("+32 4701", 6) stay readable.
const SCRUB_MIN_DIGITS: usize = 9;

/// Replaces every run of 9 or more digits (allowing the separators people type in numbers,
/// spaces of every kind among them) with "[number removed]", so that a reason an operator typed
/// cannot put a phone number in the audit log or a message. Digits of any script count.
pub fn scrub_numbers(text: &str) -> String {
    fn digit(c: char) -> bool {
        c.is_numeric()
    }
    fn separator(c: char) -> bool {
        " -./()".contains(c) || c.is_whitespace() || ('\u{2010}'..='\u{2015}').contains(&c)
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if digit(c) || c == '+' {
            let mut j = i;
            let mut digits = 0;
            while let Some(&d) = chars.get(j) {
                if !(digit(d) || (j == i && d == '+') || (digits > 0 && separator(d))) {
                    break;
                }
                if digit(d) {
                    digits += 1;
                }
                j += 1;
            }
            if digits >= SCRUB_MIN_DIGITS {
                out.push_str("[number removed]");
                // Keep a trailing separator that was not part of the number.
                while j > i && chars.get(j - 1).is_some_and(|&d| !digit(d)) {
                    j -= 1;
                }
                i = j;
                continue;
            }
            let end = j.max(i + 1);
            out.extend(chars.get(i..end).unwrap_or_default());
            i = end;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// [`scrub_numbers`], then cut to at most `max_bytes` (on a character boundary, with "…" when
/// cut): for text from outside that goes into the audit log.
pub(crate) fn scrub_bounded(text: &str, max_bytes: usize) -> String {
    let mut s = scrub_numbers(text);
    if s.len() > max_bytes {
        let mut end = max_bytes.saturating_sub('…'.len_utf8());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

fn validate_reason(reason: &str) -> Result<(), StoreError> {
    if reason.trim().is_empty() || reason.len() > MAX_REASON_BYTES {
        return Err(StoreError::Invalid {
            what: "reason",
            why: "must be 1 to 500 bytes",
        });
    }
    Ok(())
}

fn validate_campaign(slug: &str, title: &str) -> Result<(), StoreError> {
    if slug.is_empty() || slug.len() > MAX_SLUG_BYTES {
        return Err(StoreError::Invalid {
            what: "slug",
            why: "must be 1 to 64 bytes",
        });
    }
    if title.len() > MAX_TITLE_BYTES {
        return Err(StoreError::Invalid {
            what: "title",
            why: "longer than 200 bytes",
        });
    }
    Ok(())
}

#[cfg(test)]
mod scrub_tests {
    #[test]
    fn numbers_are_removed_from_reasons() {
        assert_eq!(
            super::scrub_numbers("caller +32 470 12 34 56 complained"),
            "caller [number removed] complained"
        );
        assert_eq!(super::scrub_numbers("0470123456."), "[number removed].");
        assert_eq!(
            super::scrub_numbers("burst on 2025-06-01, block +32 4701"),
            "burst on 2025-06-01, block +32 4701"
        );
    }

    /// Numbers pasted from documents are grouped with no-break, narrow no-break or thin spaces,
    /// or written in other digits.
    #[test]
    fn numbers_with_unicode_spaces_are_removed() {
        for raw in [
            "caller 04\u{202f}70\u{202f}12\u{202f}34\u{202f}56 complained",
            "caller +32\u{a0}470\u{a0}12\u{a0}34\u{a0}56 complained",
            "caller 0470\u{2009}12\u{2009}34\u{2009}56 complained",
            "caller 0470\u{2011}12\u{2011}34\u{2011}56 complained",
            "caller \u{ff10}\u{ff14}\u{ff17}\u{ff10}\u{ff11}\u{ff12}\u{ff13}\u{ff14}\u{ff15}\u{ff16} complained",
        ] {
            assert_eq!(
                super::scrub_numbers(raw),
                "caller [number removed] complained",
                "{raw:?}"
            );
        }
    }

    #[test]
    fn bounded_scrub_cuts_on_a_character_boundary() {
        let s = super::scrub_bounded(&"é".repeat(100), 11);
        assert!(s.len() <= 11, "{s}");
        assert!(s.ends_with('…'));
        assert_eq!(super::scrub_bounded("short", 11), "short");
        assert_eq!(
            super::scrub_bounded("0470123456 and more", 100),
            "[number removed] and more"
        );
    }
}
