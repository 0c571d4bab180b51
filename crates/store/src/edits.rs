//! Campaign edits made while the line runs (from the console or `belteken campaign`): an edit
//! document that overrides the configuration file field by field, and uploaded audio clips.
//! Both live in the store so that they survive a restart and reach every node; every change
//! bumps the campaign's edit version, which running servers poll to reload what changed.
//!
//! The store does not interpret the edit document (the binary writes and reads it as JSON);
//! it keeps it within [`MAX_EDIT_BYTES`] and clips within [`MAX_CLIP_BYTES`].

use std::fmt;

use crate::StoreError;

/// Largest edit document, in bytes (texts in three languages with room to spare).
pub const MAX_EDIT_BYTES: usize = 256 * 1024;

/// Largest stored clip, in bytes: ten minutes of 8 kHz 16-bit mono WAV, plus its header.
pub const MAX_CLIP_BYTES: usize = 10 * 60 * 8000 * 2 + 44;

/// Longest clip name ("story", "greeting") and language code, in bytes.
pub const MAX_CLIP_NAME_BYTES: usize = 64;
pub const MAX_CLIP_LANGUAGE_BYTES: usize = 16;

/// Longest actor name (who made an edit) kept in the audit log, in bytes.
pub const MAX_ACTOR_BYTES: usize = 100;

/// A converted clip to store: what callers hear, as an 8 kHz WAV.
#[derive(Clone, PartialEq, Eq)]
pub struct NewClip {
    /// The prompt's name in the flow, e.g. "story".
    pub name: String,
    pub language: String,
    pub wav: Vec<u8>,
    pub duration_ms: u64,
}

impl fmt::Debug for NewClip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewClip")
            .field("name", &self.name)
            .field("language", &self.language)
            .field("wav_bytes", &self.wav.len())
            .field("duration_ms", &self.duration_ms)
            .finish()
    }
}

/// An uploaded clip as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredClip {
    pub name: String,
    pub language: String,
    pub wav: Vec<u8>,
    pub duration_ms: u64,
    /// When it was uploaded (RFC 3339 UTC).
    pub uploaded_at: String,
}

impl fmt::Debug for StoredClip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredClip")
            .field("name", &self.name)
            .field("language", &self.language)
            .field("wav_bytes", &self.wav.len())
            .field("duration_ms", &self.duration_ms)
            .field("uploaded_at", &self.uploaded_at)
            .finish()
    }
}

/// A campaign's stored edit document, if any, and its edit version.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CampaignEdits {
    /// Bumped by every edit, upload and reset; 0 when the campaign was never edited.
    pub version: i64,
    /// The edit document (JSON written by the binary); None: the configuration as it is.
    pub document: Option<String>,
}

pub(crate) fn validate_actor(actor: &str) -> Result<(), StoreError> {
    if actor.trim().is_empty() || actor.len() > MAX_ACTOR_BYTES {
        return Err(StoreError::Invalid {
            what: "actor",
            why: "must be 1 to 100 bytes",
        });
    }
    Ok(())
}

pub(crate) fn validate_document(document: &str) -> Result<(), StoreError> {
    if document.len() > MAX_EDIT_BYTES {
        return Err(StoreError::Invalid {
            what: "campaign edit",
            why: "larger than MAX_EDIT_BYTES (256 KiB)",
        });
    }
    Ok(())
}

pub(crate) fn validate_clip(clip: &NewClip) -> Result<(), StoreError> {
    if clip.name.is_empty() || clip.name.len() > MAX_CLIP_NAME_BYTES {
        return Err(StoreError::Invalid {
            what: "clip name",
            why: "must be 1 to 64 bytes",
        });
    }
    if clip.language.is_empty() || clip.language.len() > MAX_CLIP_LANGUAGE_BYTES {
        return Err(StoreError::Invalid {
            what: "clip language",
            why: "must be 1 to 16 bytes",
        });
    }
    if clip.wav.is_empty() {
        return Err(StoreError::Invalid {
            what: "clip",
            why: "empty",
        });
    }
    if clip.wav.len() > MAX_CLIP_BYTES {
        return Err(StoreError::Invalid {
            what: "clip",
            why: "larger than MAX_CLIP_BYTES (ten minutes of 8 kHz audio)",
        });
    }
    Ok(())
}

/// The audit detail of an edit: who, and what (no contents).
pub(crate) fn actor_detail(actor: &str, what: &str) -> String {
    format!("{what} by {}", crate::scrub_numbers(actor))
}
