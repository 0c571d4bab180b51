//! Rows of either backend, read by column name, and the public types made from them. Each
//! backend implements [`Columns`] for its driver's row type; the decoders here are the only
//! place a stored value becomes a public type, so both backends judge stored values alike.

use crate::{
    time, ApiTokenInfo, AuditEntry, BelgianRegion, CallState, CampaignEdits, CampaignSettings,
    ConsoleUser, CountPolicy, Funnel, NumberKind, RegionThresholds, Role, SignatureRetention,
    SignatureRow, SignatureState, StoreError, StoredClip, StoredRecording, Trust,
};

/// The columns of a [`SignatureRow`], as both backends select them (see [`signature_row`]).
pub(crate) const SIGNATURE_COLUMNS: &str = "id, created_at, verified, state, trust, country, \
     number_kind, be_region, prefix_block, flow_version, channel, speech_ms, \
     recording IS NOT NULL AS has_recording, anonymised";

/// The columns of [`campaign_settings`].
pub(crate) const SETTINGS_COLUMNS: &str = "count_policy, closes_at, recordings_days, \
     signatures_days, signature_retention, keep_contact, threshold_flanders, threshold_wallonia, \
     threshold_brussels";

/// One result row of a backend's driver, read by column name.
pub(crate) trait Columns {
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn text_opt(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn int_opt(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn flag(&self, column: &str) -> Result<bool, StoreError>;
    fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError>;
    fn bytes_opt(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError>;
}

pub(crate) fn parse_or_corrupt<T>(v: Option<T>, what: &'static str) -> Result<T, StoreError> {
    v.ok_or(StoreError::Corrupt(what))
}

/// A count or sum as stored (never negative in a sound database) as an unsigned number.
pub(crate) fn count(v: i64) -> u64 {
    v.max(0) as u64
}

fn u32_of(v: i64, what: &'static str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(what))
}

/// The campaign's id and the policies the signing path needs.
pub(crate) struct CampaignRef {
    pub id: i64,
    pub policy: CountPolicy,
    pub keep_contact: bool,
}

/// Columns `id`, `count_policy`, `keep_contact`.
pub(crate) fn campaign_ref(r: &dyn Columns) -> Result<CampaignRef, StoreError> {
    Ok(CampaignRef {
        id: r.int("id")?,
        policy: parse_or_corrupt(
            CountPolicy::parse(&r.text("count_policy")?),
            "unknown count policy",
        )?,
        keep_contact: r.flag("keep_contact")?,
    })
}

/// A counter row (columns `verified`, `state`, `n`) for [`crate::registry::fold_counts`].
pub(crate) fn counter(r: &dyn Columns) -> Result<(bool, SignatureState, i64), StoreError> {
    Ok((
        r.flag("verified")?,
        parse_or_corrupt(
            SignatureState::parse(&r.text("state")?),
            "unknown signature state",
        )?,
        r.int("n")?,
    ))
}

/// Columns [`SETTINGS_COLUMNS`].
pub(crate) fn campaign_settings(r: &dyn Columns) -> Result<CampaignSettings, StoreError> {
    let days = |column| {
        r.int_opt(column)?
            .map(|d| u32_of(d, "days out of range"))
            .transpose()
    };
    let threshold = |column| {
        u64::try_from(r.int(column)?).map_err(|_| StoreError::Corrupt("negative threshold"))
    };
    Ok(CampaignSettings {
        count_policy: parse_or_corrupt(
            CountPolicy::parse(&r.text("count_policy")?),
            "unknown count policy",
        )?,
        closes_at: match r.text_opt("closes_at")? {
            None => None,
            Some(s) => Some(parse_or_corrupt(
                time::parse_rfc3339(&s),
                "bad closing time",
            )?),
        },
        recordings_days: days("recordings_days")?,
        signatures_days: days("signatures_days")?,
        signature_retention: parse_or_corrupt(
            retention_parse(&r.text("signature_retention")?),
            "unknown signature retention",
        )?,
        keep_contact: r.flag("keep_contact")?,
        region_thresholds: RegionThresholds {
            flanders: threshold("threshold_flanders")?,
            wallonia: threshold("threshold_wallonia")?,
            brussels: threshold("threshold_brussels")?,
        },
    })
}

/// The stored name of a signature retention.
pub(crate) fn retention_str(r: SignatureRetention) -> &'static str {
    match r {
        SignatureRetention::Anonymise => "anonymise",
        SignatureRetention::Delete => "delete",
    }
}

fn retention_parse(s: &str) -> Option<SignatureRetention> {
    [SignatureRetention::Anonymise, SignatureRetention::Delete]
        .into_iter()
        .find(|r| retention_str(*r) == s)
}

/// Columns [`SIGNATURE_COLUMNS`].
pub(crate) fn signature_row(r: &dyn Columns) -> Result<SignatureRow, StoreError> {
    Ok(SignatureRow {
        id: r.int("id")?,
        created_at: r.text("created_at")?,
        verified: r.flag("verified")?,
        state: parse_or_corrupt(
            SignatureState::parse(&r.text("state")?),
            "unknown signature state",
        )?,
        trust: parse_or_corrupt(Trust::parse(&r.text("trust")?), "unknown trust level")?,
        country: r.text_opt("country")?,
        kind: match r.text_opt("number_kind")? {
            None => None,
            Some(k) => Some(parse_or_corrupt(
                NumberKind::parse(&k),
                "unknown number kind",
            )?),
        },
        be_region: match r.text_opt("be_region")? {
            None => None,
            Some(b) => Some(parse_or_corrupt(
                BelgianRegion::parse(&b),
                "unknown region",
            )?),
        },
        prefix_block: r.text_opt("prefix_block")?,
        flow_version: r.text_opt("flow_version")?,
        channel: r.text("channel")?,
        speech_ms: u32_of(r.int("speech_ms")?, "speech_ms out of range")?,
        has_recording: r.flag("has_recording")?,
        anonymised: r.flag("anonymised")?,
    })
}

/// Columns `id`, `verified`, `speech_ms`, `recording`.
pub(crate) fn stored_recording(r: &dyn Columns) -> Result<StoredRecording, StoreError> {
    Ok(StoredRecording {
        id: r.int("id")?,
        verified: r.flag("verified")?,
        speech_ms: u32_of(r.int("speech_ms")?, "speech_ms out of range")?,
        wav: r.bytes("recording")?,
    })
}

/// Columns `id`, `at`, `campaign`, `action`, `detail`.
pub(crate) fn audit_entry(r: &dyn Columns) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        id: r.int("id")?,
        at: r.text("at")?,
        campaign: r.text_opt("campaign")?,
        action: r.text("action")?,
        detail: r.text("detail")?,
    })
}

/// Columns `version`, `data`.
pub(crate) fn call_state(r: &dyn Columns) -> Result<CallState, StoreError> {
    Ok(CallState {
        version: r.int("version")?,
        data: r.bytes("data")?,
    })
}

/// Columns `edit_version`, `edit_document`.
pub(crate) fn campaign_edits(r: &dyn Columns) -> Result<CampaignEdits, StoreError> {
    Ok(CampaignEdits {
        version: r.int("edit_version")?,
        document: r.text_opt("edit_document")?,
    })
}

/// Columns `slug`, `edit_version`.
pub(crate) fn edit_version(r: &dyn Columns) -> Result<(String, i64), StoreError> {
    Ok((r.text("slug")?, r.int("edit_version")?))
}

/// Columns `name`, `language`, `wav`, `duration_ms`, `uploaded_at`.
pub(crate) fn stored_clip(r: &dyn Columns) -> Result<StoredClip, StoreError> {
    Ok(StoredClip {
        name: r.text("name")?,
        language: r.text("language")?,
        wav: r.bytes("wav")?,
        duration_ms: u64::try_from(r.int("duration_ms")?).unwrap_or(0),
        uploaded_at: r.text("uploaded_at")?,
    })
}

/// Columns `id`, `contact`.
pub(crate) fn contact(r: &dyn Columns) -> Result<(i64, crate::SealedContact), StoreError> {
    Ok((r.int("id")?, crate::SealedContact(r.bytes("contact")?)))
}

fn role(r: &dyn Columns) -> Result<Role, StoreError> {
    parse_or_corrupt(Role::parse(&r.text("role")?), "console user role")
}

/// Columns `name`, `role`, `created_at`.
pub(crate) fn console_user(r: &dyn Columns) -> Result<ConsoleUser, StoreError> {
    Ok(ConsoleUser {
        name: r.text("name")?,
        role: role(r)?,
        created_at: r.text("created_at")?,
    })
}

/// Columns `user_name`, `label`, `created_at`, `expires_at`.
pub(crate) fn api_token_info(r: &dyn Columns) -> Result<ApiTokenInfo, StoreError> {
    Ok(ApiTokenInfo {
        user: r.text("user_name")?,
        label: r.text("label")?,
        created_at: r.text("created_at")?,
        expires_at: r.text("expires_at")?,
    })
}

/// A stored console session with its user's role: columns `user_name`, `role`, `csrf`,
/// `created_at`, `last_seen`.
pub(crate) struct SessionRow {
    pub user: String,
    pub role: String,
    pub csrf: String,
    pub created: i64,
    pub last_seen: i64,
}

pub(crate) fn session_row(r: &dyn Columns) -> Result<SessionRow, StoreError> {
    Ok(SessionRow {
        user: r.text("user_name")?,
        role: r.text("role")?,
        csrf: r.text("csrf")?,
        created: r.int("created_at")?,
        last_seen: r.int("last_seen")?,
    })
}

/// Columns `minute`, `n`.
pub(crate) fn minute_count(r: &dyn Columns) -> Result<(String, u64), StoreError> {
    Ok((r.text("minute")?, count(r.int("n")?)))
}

/// Columns `s`, `n`: calls that heard `s` whole seconds of the story.
pub(crate) fn heard_seconds(r: &dyn Columns) -> Result<(u64, u64), StoreError> {
    Ok((count(r.int("s")?), count(r.int("n")?)))
}

/// The funnel from its totals (columns `calls`, `answered`, `story_completed`, `recorded`,
/// `signed`) and the histogram of seconds heard (see [`heard_seconds`]).
pub(crate) fn funnel(totals: &dyn Columns, histogram: &[(u64, u64)]) -> Result<Funnel, StoreError> {
    Ok(Funnel {
        calls: count(totals.int("calls")?),
        answered: count(totals.int("answered")?),
        story_completed: count(totals.int("story_completed")?),
        recorded: count(totals.int("recorded")?),
        signed: count(totals.int("signed")?),
        curve: Funnel::curve_from_histogram(histogram),
    })
}
