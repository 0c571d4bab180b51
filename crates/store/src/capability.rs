//! The store's capabilities, one trait each, and [`Store`], which is all of them.
//!
//! A backend implements every capability trait; [`Store`] follows by a blanket impl, so
//! `Arc<dyn Store>` is the one handle a server passes around. Code that needs one capability
//! may take that trait instead. On `dyn Store` (or a type bounded by a trait) the methods are
//! always at hand; on a concrete backend, [`crate::prelude`] brings the traits into scope. Every
//! method is synchronous: async callers use
//! `tokio::task::spawn_blocking`. Every backend passes the same conformance tests.

use std::time::SystemTime;

use crate::registry;
use crate::{
    AnomalyReport, AnomalyThresholds, ApiTokenInfo, AuditEntry, CallState, CallSummary,
    CallerIdentity, CallerKey, CampaignEdits, CampaignSettings, ConsoleSession, ConsoleUser,
    Counts, Funnel, NewClip, NewSignature, RetentionReport, RetentionStep, ReviewAction, Role,
    SealedContact, SessionLimits, SignOutcome, SignatureFilter, SignatureRow, SignatureState,
    StoreError, StoredClip, StoredRecording,
};

/// Campaigns and their stored policies.
pub trait Campaigns: Send + Sync {
    /// Creates the campaign, or updates its title when it exists.
    fn ensure_campaign(&self, slug: &str, title: &str) -> Result<(), StoreError>;

    /// Stores the campaign's policies (count policy, closing time, retention, contact); the
    /// campaign must exist. Settings live in the database so that every process (and every
    /// node on PostgreSQL) applies the same ones.
    fn configure_campaign(&self, slug: &str, settings: &CampaignSettings)
        -> Result<(), StoreError>;

    /// The campaign's stored settings (defaults until `configure_campaign`).
    fn campaign_settings(&self, slug: &str) -> Result<CampaignSettings, StoreError>;

    /// Slugs of all campaigns, in creation order.
    fn campaigns(&self) -> Result<Vec<String>, StoreError>;
}

/// What a call needs: whether a caller signed, signing, and the counts.
pub trait Signing: Send + Sync {
    /// Whether this verified caller already signed this campaign (under this key only).
    fn has_signed(&self, slug: &str, key: &CallerKey) -> Result<bool, StoreError>;

    /// Whether this caller already signed this campaign, under their key or, during a key
    /// rotation, their previous key; a signature found under the previous key is re-keyed
    /// (in every campaign) on the spot. Always false for a withheld caller.
    fn has_signed_identity(&self, slug: &str, caller: &CallerIdentity) -> Result<bool, StoreError>;

    /// Stores the signature, its recording and the counter update in one transaction that is
    /// durable before this returns. A caller who already signed gets `AlreadySigned` and
    /// nothing is written.
    fn sign(&self, sig: NewSignature) -> Result<SignOutcome, StoreError>;

    /// The campaign's counts, from the counters (not by counting rows).
    fn counts(&self, slug: &str) -> Result<Counts, StoreError>;

    /// Recomputes the counters from the signature rows, repairs them, and returns them.
    fn recount(&self, slug: &str) -> Result<Counts, StoreError>;
}

/// Reading signatures and reviewing them: rows, recordings, contacts, state changes that
/// can be reverted, and the anomaly report a reviewer works from.
pub trait Review: Send + Sync {
    /// Every signature of a campaign without its key, contact or recording, oldest first.
    fn signature_rows(&self, slug: &str) -> Result<Vec<SignatureRow>, StoreError>;

    /// Up to `limit` signatures of the campaign in `state` with an id above `after`, by id
    /// (the review queue, a page at a time), and how many are in that state in all.
    fn signatures_in_state(
        &self,
        slug: &str,
        state: SignatureState,
        after: i64,
        limit: usize,
    ) -> Result<(Vec<SignatureRow>, u64), StoreError>;

    /// One signature's recording, if it still has one.
    fn recording(&self, slug: &str, id: i64) -> Result<Option<Vec<u8>>, StoreError>;

    /// All recordings of a campaign, oldest first. Loads them all into memory: meant for
    /// tests and small exports.
    fn recordings(&self, slug: &str) -> Result<Vec<StoredRecording>, StoreError>;

    /// The sealed contact numbers of a campaign (signature id, ciphertext).
    fn contacts(&self, slug: &str) -> Result<Vec<(i64, SealedContact)>, StoreError>;

    /// Sets the state of these signatures of the campaign (ids of other campaigns are ignored),
    /// remembering each previous state so that [`Review::revert_review`] can undo it, with an
    /// audit entry; counters follow in the same transaction.
    fn set_states(
        &self,
        slug: &str,
        ids: &[i64],
        state: SignatureState,
        reason: &str,
        description: &str,
    ) -> Result<ReviewAction, StoreError>;

    /// Undoes a review action: signatures still in the state it set go back to their previous
    /// state. Returns how many changed back.
    fn revert_review(&self, action_id: i64, reason: &str) -> Result<u64, StoreError>;

    /// How many signatures of the campaign the filter selects (the preview of a review).
    fn preview(&self, slug: &str, filter: &SignatureFilter) -> Result<u64, StoreError> {
        registry::preview(self, slug, filter)
    }

    /// Sets the state of every signature the filter selects (bulk invalidation, reversible).
    fn review(
        &self,
        slug: &str,
        filter: &SignatureFilter,
        state: SignatureState,
        reason: &str,
    ) -> Result<ReviewAction, StoreError> {
        registry::review(self, slug, filter, state, reason)
    }

    /// Signatures per minute per prefix block and per country, with bursts flagged.
    fn anomalies(
        &self,
        slug: &str,
        thresholds: &AnomalyThresholds,
    ) -> Result<AnomalyReport, StoreError> {
        registry::anomalies(self, slug, thresholds)
    }
}

/// Removing data: retention steps, the retention run over every campaign, and erasure on
/// request.
pub trait Retention: Campaigns {
    /// Applies one retention step to a campaign, with an audit entry; returns the rows changed.
    fn apply_retention(&self, slug: &str, step: RetentionStep) -> Result<u64, StoreError>;

    /// Runs every campaign's retention policy as of `now` (see [`CampaignSettings`]).
    fn retention_run(&self, now: SystemTime) -> Result<RetentionReport, StoreError> {
        registry::retention_run(self, now)
    }

    /// Erases the caller's signature of this campaign and its recording, with an audit entry
    /// that holds no number or key. True when there was one. Counters are repaired in the same
    /// transaction.
    fn erase(&self, slug: &str, key: &CallerKey) -> Result<bool, StoreError>;
}

/// The audit log.
pub trait Audit: Send + Sync {
    /// Adds an audit entry (console logins, exports, user changes); the detail is scrubbed of
    /// anything that looks like a phone number.
    fn record_audit(
        &self,
        campaign: Option<&str>,
        action: &str,
        detail: &str,
    ) -> Result<(), StoreError>;

    /// Audit entries, oldest first; only the campaign's when `slug` is given.
    fn audit_log(&self, slug: Option<&str>) -> Result<Vec<AuditEntry>, StoreError>;

    /// Up to `limit` audit entries, newest first, with an id below `before` (None: the newest),
    /// only the campaign's when `slug` is given.
    fn audit_recent(
        &self,
        slug: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError>;
}

/// Statistics the console charts: signatures per minute and the call funnel.
pub trait Statistics: Send + Sync {
    /// Signatures of the campaign per minute since `since`: ("YYYY-MM-DDTHH:MM", count) in
    /// time order, minutes without signatures left out.
    fn signatures_by_minute(
        &self,
        slug: &str,
        since: SystemTime,
    ) -> Result<Vec<(String, u64)>, StoreError>;

    /// The campaign's funnel and listening curve over the recorded calls that ended in
    /// `[since, until)` (None: unbounded), optionally of one flow version only.
    fn funnel(
        &self,
        slug: &str,
        flow_version: Option<&str>,
        since: Option<SystemTime>,
        until: Option<SystemTime>,
    ) -> Result<Funnel, StoreError>;
}

/// What the call channels keep between events: cloud calls' state between webhooks, and
/// the summaries of ended calls.
pub trait Calls: Send + Sync {
    /// A cloud call's state (see [`CallState`]), unless there is none or it expired by `now`.
    fn load_call(&self, call_id: &str, now: SystemTime) -> Result<Option<CallState>, StoreError>;

    /// Writes a cloud call's state if its stored version is still `expected` (0: the call is
    /// new and must not exist yet); false when another writer came first (reload and retry).
    /// The state is gone after `expires`.
    fn save_call(
        &self,
        call_id: &str,
        expected: i64,
        data: &[u8],
        expires: SystemTime,
    ) -> Result<bool, StoreError>;

    /// Deletes the call states that expired by `now`; returns how many.
    fn purge_calls(&self, now: SystemTime) -> Result<u64, StoreError>;

    /// Records how calls went (see [`CallSummary`]), several in one transaction.
    fn record_calls(&self, calls: &[CallSummary]) -> Result<(), StoreError>;
}

/// Campaign edits made in the console: the edit document, uploaded clips and edit versions.
pub trait Edits: Send + Sync {
    /// Campaign edits (see the `edits` module): stores the campaign's edit document, replacing
    /// the previous one, with an audit entry naming `actor` (not the contents); returns the new
    /// edit version.
    fn save_campaign_edit(
        &self,
        slug: &str,
        document: &str,
        actor: &str,
    ) -> Result<i64, StoreError>;

    /// The campaign's edit document and edit version.
    fn campaign_edits(&self, slug: &str) -> Result<CampaignEdits, StoreError>;

    /// Stores a converted clip in place of the campaign's clip of that name and language, with
    /// an audit entry; returns the new edit version.
    fn save_clip(&self, slug: &str, clip: &NewClip, actor: &str) -> Result<i64, StoreError>;

    /// The campaign's uploaded clips, by name and language.
    fn clips(&self, slug: &str) -> Result<Vec<StoredClip>, StoreError>;

    /// Drops the campaign's edit document and uploaded clips (back to the configuration file),
    /// with an audit entry; returns the new edit version.
    fn reset_campaign_edits(&self, slug: &str, actor: &str) -> Result<i64, StoreError>;

    /// Every campaign's edit version (slug, version), for servers that poll for edits.
    fn edit_versions(&self) -> Result<Vec<(String, i64)>, StoreError>;
}

/// Who may use the store: console users, their sessions and API tokens, and the fingerprint
/// of the secret every node's caller keys are made with.
pub trait Accounts: Send + Sync {
    /// Adds a console user with an argon2id hash from [`hash_password`]; false when the name
    /// is taken.
    fn add_console_user(
        &self,
        name: &str,
        role: Role,
        password_hash: &str,
    ) -> Result<bool, StoreError>;

    /// The user and their password hash.
    fn console_user(&self, name: &str) -> Result<Option<(ConsoleUser, String)>, StoreError>;

    /// Every console user, by name.
    fn console_users(&self) -> Result<Vec<ConsoleUser>, StoreError>;

    /// Replaces the user's password hash and ends their sessions; false for an unknown user.
    fn set_console_password(&self, name: &str, password_hash: &str) -> Result<bool, StoreError>;

    /// Deletes the user with their sessions and API tokens; false for an unknown user.
    fn delete_console_user(&self, name: &str) -> Result<bool, StoreError>;

    /// Starts a session for the user under the hash of its token ([`token_hash`]).
    fn create_console_session(
        &self,
        token_hash: &str,
        user: &str,
        csrf: &str,
        now: SystemTime,
    ) -> Result<(), StoreError>;

    /// The live session with this token hash, marking it used at `now`; an expired one is
    /// deleted and None returned.
    fn console_session(
        &self,
        token_hash: &str,
        now: SystemTime,
        limits: SessionLimits,
    ) -> Result<Option<ConsoleSession>, StoreError>;

    /// Ends a session (logout); nothing happens for an unknown one.
    fn end_console_session(&self, token_hash: &str) -> Result<(), StoreError>;

    /// Stores an API token's hash for the user, good until `expires`; false when the user has
    /// a token with this label already or does not exist.
    fn create_api_token(
        &self,
        token_hash: &str,
        user: &str,
        label: &str,
        now: SystemTime,
        expires: SystemTime,
    ) -> Result<bool, StoreError>;

    /// The user an API token belongs to, while it has not expired at `now`.
    fn api_token_user(
        &self,
        token_hash: &str,
        now: SystemTime,
    ) -> Result<Option<ConsoleUser>, StoreError>;

    /// Every API token (without its secret).
    fn api_tokens(&self) -> Result<Vec<ApiTokenInfo>, StoreError>;

    /// Deletes the user's token with this label; false when there is none.
    fn delete_api_token(&self, user: &str, label: &str) -> Result<bool, StoreError>;

    /// The fingerprint of the secret this store's caller keys are made with
    /// ([`Secret::fingerprint`], 64 hex digits); None until a node first claims the store.
    /// [`check_secret`] is the way to use it.
    fn secret_fingerprint(&self) -> Result<Option<String>, StoreError>;

    /// Sets the secret's fingerprint to `new` if the stored one is still `expected` (None: none
    /// stored yet); false when it is not (another node came first).
    fn swap_secret_fingerprint(
        &self,
        expected: Option<&str>,
        new: &str,
    ) -> Result<bool, StoreError>;
}

/// Storage of campaigns, signatures, call state, edits and accounts: every capability trait at
/// once. Each backend ([`crate::SqliteStore`], [`crate::PgStore`]) is one, and so is anything
/// else that implements every capability trait. Synchronous: async callers use
/// `tokio::task::spawn_blocking`. Every backend passes the same conformance tests.
pub trait Store:
    Campaigns + Signing + Review + Retention + Audit + Statistics + Calls + Edits + Accounts + 'static
{
}

impl<T> Store for T where
    T: Campaigns
        + Signing
        + Review
        + Retention
        + Audit
        + Statistics
        + Calls
        + Edits
        + Accounts
        + ?Sized
        + 'static
{
}
