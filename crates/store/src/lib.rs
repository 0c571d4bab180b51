//! Signatures and their recordings: domain types, the [`Store`] trait, the SQLite backend,
//! caller pseudonymisation and the live count hub.
//!
//! Privacy: a raw phone number enters only [`identify_caller`] and leaves it as an HMAC
//! ([`CallerKey`]). Nothing in this crate stores, logs, prints or returns a raw number.

mod caller;
mod hub;
mod secret;
mod sqlite;
mod time;

use std::fmt;

pub use caller::{
    identify_caller, is_known_region, CallerIdentity, CallerKey, MAX_CALLER_INPUT_BYTES,
};
pub use hub::{CountHub, MAX_HUB_CAMPAIGNS};
pub use secret::{Secret, SECRET_BYTES};
pub use sqlite::{SqliteStore, BUSY_TIMEOUT};

/// Largest recording `sign` accepts, in bytes (2 MiB: about two minutes of 8 kHz 8-bit audio,
/// or a minute of 16-bit).
pub const MAX_RECORDING_BYTES: usize = 2 * 1024 * 1024;

/// Longest campaign slug, in bytes.
pub const MAX_SLUG_BYTES: usize = 64;

/// Longest campaign title, in bytes.
pub const MAX_TITLE_BYTES: usize = 200;

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
    /// Campaign slug; the campaign must exist (see [`Store::ensure_campaign`]).
    pub campaign: String,
    pub caller: CallerIdentity,
    /// The WAV file of the caller saying their name. Must be non-empty and at most
    /// [`MAX_RECORDING_BYTES`].
    pub recording_wav: Vec<u8>,
    /// How much speech was detected in the recording.
    pub speech_ms: u32,
    /// Which channel took the call, e.g. "sip".
    pub channel: &'static str,
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

/// Errors of this crate. None of them carries a phone number: the only caller data that
/// reaches the store is an HMAC key, and no variant includes even that.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
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
}

/// Storage of campaigns, signatures and counters. Synchronous: async callers use
/// `tokio::task::spawn_blocking`. Every backend passes the same conformance tests.
pub trait Store: Send + Sync + 'static {
    /// Creates the campaign, or updates its title when it exists.
    fn ensure_campaign(&self, slug: &str, title: &str) -> Result<(), StoreError>;
    /// Whether this verified caller already signed this campaign.
    fn has_signed(&self, slug: &str, key: &CallerKey) -> Result<bool, StoreError>;
    /// Stores the signature, its recording and the counter update in one transaction that is
    /// durable before this returns. A caller who already signed gets `AlreadySigned` and
    /// nothing is written.
    fn sign(&self, sig: NewSignature) -> Result<SignOutcome, StoreError>;
    /// The campaign's counts, from the counters (not by counting rows).
    fn counts(&self, slug: &str) -> Result<Counts, StoreError>;
    /// Recomputes the counters from the signature rows, repairs them, and returns them.
    fn recount(&self, slug: &str) -> Result<Counts, StoreError>;
    /// All recordings of a campaign, oldest first. Loads them all into memory: meant for
    /// tests and small exports.
    fn recordings(&self, slug: &str) -> Result<Vec<StoredRecording>, StoreError>;
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
