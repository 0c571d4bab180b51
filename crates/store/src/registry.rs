//! Review, retention and anomaly logic shared by every backend: the types of the registry and
//! the provided methods of [`Review`] and [`Retention`] that are built on their primitives.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use crate::{
    time, validate_reason, BelgianRegion, Counts, NumberKind, Retention, Review, StoreError,
    MAX_REVIEW_IDS,
};

/// Review state of a signature. New signatures are `Pending` (not yet reviewed).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize)]
pub enum SignatureState {
    Pending,
    Valid,
    Invalid,
    Fraudulent,
}

impl SignatureState {
    pub const ALL: [SignatureState; 4] = [
        SignatureState::Pending,
        SignatureState::Valid,
        SignatureState::Invalid,
        SignatureState::Fraudulent,
    ];

    /// The name stored in the database and shown in exports.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureState::Pending => "pending",
            SignatureState::Valid => "valid",
            SignatureState::Invalid => "invalid",
            SignatureState::Fraudulent => "fraudulent",
        }
    }

    pub fn parse(s: &str) -> Option<SignatureState> {
        SignatureState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether a signature in this state shows in the public count under `policy`.
    pub fn is_counted(self, policy: CountPolicy) -> bool {
        match policy {
            CountPolicy::AllNonInvalid => {
                matches!(self, SignatureState::Pending | SignatureState::Valid)
            }
            CountPolicy::ValidOnly => self == SignatureState::Valid,
        }
    }
}

/// How far the caller's identity can be trusted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize)]
pub enum Trust {
    /// A trusted trunk asserted it (P-Asserted-Identity).
    NetworkAsserted,
    /// Only the From header, which the caller chooses.
    FromHeader,
    /// No number.
    Withheld,
}

impl Trust {
    pub const ALL: [Trust; 3] = [Trust::NetworkAsserted, Trust::FromHeader, Trust::Withheld];

    pub fn as_str(self) -> &'static str {
        match self {
            Trust::NetworkAsserted => "network",
            Trust::FromHeader => "from",
            Trust::Withheld => "withheld",
        }
    }

    pub fn parse(s: &str) -> Option<Trust> {
        Trust::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Which signatures the public count shows.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize)]
pub enum CountPolicy {
    /// Pending and valid signatures (everything not found invalid or fraudulent).
    #[default]
    AllNonInvalid,
    /// Only signatures a reviewer marked valid.
    ValidOnly,
}

impl CountPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            CountPolicy::AllNonInvalid => "all_non_invalid",
            CountPolicy::ValidOnly => "valid_only",
        }
    }

    pub fn parse(s: &str) -> Option<CountPolicy> {
        [CountPolicy::AllNonInvalid, CountPolicy::ValidOnly]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// What retention does to signatures once their time is up.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize)]
pub enum SignatureRetention {
    /// Keep the row for the statistics (time cut to the day, state, trust, country, region,
    /// number type) but drop its key, prefix block, recording and contact.
    #[default]
    Anonymise,
    /// Delete the rows; counts drop accordingly.
    Delete,
}

/// Signatures needed per Belgian region for the export's summary (defaults: the Belgian
/// Chamber's 14,500 Flanders / 8,000 Wallonia / 2,500 Brussels).
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
pub struct RegionThresholds {
    pub flanders: u64,
    pub wallonia: u64,
    pub brussels: u64,
}

impl Default for RegionThresholds {
    fn default() -> Self {
        RegionThresholds {
            flanders: 14_500,
            wallonia: 8_000,
            brussels: 2_500,
        }
    }
}

impl RegionThresholds {
    pub fn of(&self, region: BelgianRegion) -> u64 {
        match region {
            BelgianRegion::Flanders => self.flanders,
            BelgianRegion::Wallonia => self.wallonia,
            BelgianRegion::Brussels => self.brussels,
        }
    }
}

/// A campaign's policies, kept in the database (see [`crate::Campaigns::configure_campaign`]).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct CampaignSettings {
    pub count_policy: CountPolicy,
    /// When the campaign closes; retention counts its days from here. None: still open, and
    /// retention leaves it alone.
    pub closes_at: Option<SystemTime>,
    /// Days after closing when recordings are deleted. None: kept.
    pub recordings_days: Option<u32>,
    /// Days after closing when signatures are anonymised or deleted. None: kept.
    pub signatures_days: Option<u32>,
    pub signature_retention: SignatureRetention,
    /// Whether encrypted contact numbers are kept for callers who asked to be contacted.
    pub keep_contact: bool,
    pub region_thresholds: RegionThresholds,
}

/// One signature as the review and export tools see it: no key, contact or recording.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignatureRow {
    pub id: i64,
    /// RFC 3339 UTC ("2025-06-01T12:00:00Z").
    pub created_at: String,
    pub verified: bool,
    pub state: SignatureState,
    pub trust: Trust,
    pub country: Option<String>,
    pub kind: Option<NumberKind>,
    pub be_region: Option<BelgianRegion>,
    pub prefix_block: Option<String>,
    pub flow_version: Option<String>,
    pub channel: String,
    pub speech_ms: u32,
    pub has_recording: bool,
    pub anonymised: bool,
}

/// Which signatures a review applies to; every given criterion must match. An empty filter
/// selects every signature of the campaign.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SignatureFilter {
    pub prefix_block: Option<String>,
    /// ISO 3166 region, e.g. "BE"; "none" selects signatures without a country.
    pub country: Option<String>,
    pub trust: Option<Trust>,
    /// Signed at or after.
    pub since: Option<SystemTime>,
    /// Signed before.
    pub until: Option<SystemTime>,
    /// Only signatures in this state (e.g. only pending ones).
    pub state: Option<SignatureState>,
}

impl SignatureFilter {
    pub fn matches(&self, row: &SignatureRow) -> bool {
        let at = time::parse_rfc3339(&row.created_at);
        self.prefix_block
            .as_deref()
            .is_none_or(|p| row.prefix_block.as_deref() == Some(p))
            && self.country.as_deref().is_none_or(|c| {
                if c.eq_ignore_ascii_case("none") {
                    row.country.is_none()
                } else {
                    row.country
                        .as_deref()
                        .is_some_and(|rc| rc.eq_ignore_ascii_case(c))
                }
            })
            && self.trust.is_none_or(|t| row.trust == t)
            && self.state.is_none_or(|s| row.state == s)
            && self.since.is_none_or(|s| at.is_some_and(|a| a >= s))
            && self.until.is_none_or(|u| at.is_some_and(|a| a < u))
    }

    /// A description for the audit log. It holds no number: the prefix block and the country
    /// are typed by an operator and go in only when they have the shape of a prefix block
    /// ("+32 4701": a country code and at most four digits) or of a country ("BE", "none");
    /// anything else is described, not quoted.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = &self.prefix_block {
            if is_prefix_block_shape(p) {
                parts.push(format!("prefix_block={p}"));
            } else {
                parts.push("prefix_block=(not a prefix block)".to_owned());
            }
        }
        if let Some(c) = &self.country {
            let shaped = c.eq_ignore_ascii_case("none")
                || (c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()));
            if shaped {
                parts.push(format!("country={c}"));
            } else {
                parts.push("country=(not a country)".to_owned());
            }
        }
        if let Some(t) = self.trust {
            parts.push(format!("trust={}", t.as_str()));
        }
        if let Some(s) = self.state {
            parts.push(format!("state={}", s.as_str()));
        }
        if let Some(s) = self.since {
            parts.push(format!("since={}", time::rfc3339_utc(s)));
        }
        if let Some(u) = self.until {
            parts.push(format!("until={}", time::rfc3339_utc(u)));
        }
        if parts.is_empty() {
            "all".to_owned()
        } else {
            parts.join(" ")
        }
    }
}

/// Whether `s` has the shape of a [`NumberClass::prefix_block`]: "+", one to three digits, and
/// optionally a space and one to four digits (at most seven digits: never a phone number).
///
/// [`NumberClass::prefix_block`]: crate::NumberClass::prefix_block
pub(crate) fn is_prefix_block_shape(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('+') else {
        return false;
    };
    let (code, lead) = match rest.split_once(' ') {
        Some((code, lead)) => (code, Some(lead)),
        None => (rest, None),
    };
    let digits =
        |t: &str, max: usize| (1..=max).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit());
    digits(code, 3) && lead.is_none_or(|l| digits(l, 4))
}

/// A stored review action: its id (for [`crate::Review::revert_review`]) and how many signatures it
/// changed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ReviewAction {
    pub id: i64,
    pub changed: u64,
}

/// One audit log entry. Never holds a number or a caller key.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub campaign: Option<String>,
    pub action: String,
    pub detail: String,
}

/// One retention step on one campaign.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RetentionStep {
    /// Drop the encrypted contact numbers (done as soon as the campaign closes).
    DeleteContacts,
    DeleteRecordings,
    AnonymiseSignatures,
    DeleteSignatures,
}

impl RetentionStep {
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionStep::DeleteContacts => "delete_contacts",
            RetentionStep::DeleteRecordings => "delete_recordings",
            RetentionStep::AnonymiseSignatures => "anonymise_signatures",
            RetentionStep::DeleteSignatures => "delete_signatures",
        }
    }
}

/// What a retention run did: (campaign, step, rows changed), only steps that changed rows.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct RetentionReport {
    pub steps: Vec<(String, RetentionStep, u64)>,
}

/// Burst thresholds of the anomaly report, in signatures per minute.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AnomalyThresholds {
    pub per_prefix_block_per_minute: u64,
    pub per_country_per_minute: u64,
    pub withheld_per_minute: u64,
}

impl Default for AnomalyThresholds {
    fn default() -> Self {
        AnomalyThresholds {
            per_prefix_block_per_minute: 10,
            per_country_per_minute: 300,
            withheld_per_minute: 30,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum AnomalyDimension {
    PrefixBlock,
    Country,
    Withheld,
}

impl AnomalyDimension {
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyDimension::PrefixBlock => "prefix_block",
            AnomalyDimension::Country => "country",
            AnomalyDimension::Withheld => "withheld",
        }
    }
}

/// Signatures in one minute from one prefix block, country, or withheld.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AnomalyBucket {
    /// "YYYY-MM-DDTHH:MM" (UTC).
    pub minute: String,
    pub dimension: AnomalyDimension,
    pub value: String,
    pub count: u64,
    pub flagged: bool,
}

/// Flagged buckets, then the busiest others (at most [`AnomalyReport::TOP`]), each sorted by
/// count, highest first.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct AnomalyReport {
    pub total: u64,
    pub flagged: Vec<AnomalyBucket>,
    pub busiest: Vec<AnomalyBucket>,
}

impl AnomalyReport {
    pub const TOP: usize = 20;
}

/// Folds counter rows (verified, state, n) into public counts under `policy`.
pub(crate) fn fold_counts(
    rows: impl IntoIterator<Item = (bool, SignatureState, i64)>,
    policy: CountPolicy,
) -> Result<Counts, StoreError> {
    let mut counts = Counts::default();
    for (verified, state, n) in rows {
        let n = u64::try_from(n).map_err(|_| StoreError::Corrupt("negative counter"))?;
        if !state.is_counted(policy) {
            continue;
        }
        if verified {
            counts.signatures += n;
        } else {
            counts.unverified += n;
        }
    }
    Ok(counts)
}

pub(crate) fn preview<S: Review + ?Sized>(
    store: &S,
    slug: &str,
    filter: &SignatureFilter,
) -> Result<u64, StoreError> {
    let rows = store.signature_rows(slug)?;
    Ok(rows.iter().filter(|r| filter.matches(r)).count() as u64)
}

pub(crate) fn review<S: Review + ?Sized>(
    store: &S,
    slug: &str,
    filter: &SignatureFilter,
    state: SignatureState,
    reason: &str,
) -> Result<ReviewAction, StoreError> {
    validate_reason(reason)?;
    let ids: Vec<i64> = store
        .signature_rows(slug)?
        .iter()
        .filter(|r| filter.matches(r) && r.state != state)
        .map(|r| r.id)
        .collect();
    if ids.len() > MAX_REVIEW_IDS {
        return Err(StoreError::Invalid {
            what: "review",
            why: "selects more than 1,000,000 signatures; narrow the filter",
        });
    }
    store.set_states(slug, &ids, state, reason, &filter.describe())
}

pub(crate) fn anomalies<S: Review + ?Sized>(
    store: &S,
    slug: &str,
    thresholds: &AnomalyThresholds,
) -> Result<AnomalyReport, StoreError> {
    let rows = store.signature_rows(slug)?;
    let mut buckets: HashMap<(String, AnomalyDimension, String), u64> = HashMap::new();
    for r in rows.iter().filter(|r| !r.anonymised) {
        let minute = r.created_at.get(..16).unwrap_or(&r.created_at).to_owned();
        if r.verified {
            if let Some(p) = &r.prefix_block {
                *buckets
                    .entry((minute.clone(), AnomalyDimension::PrefixBlock, p.clone()))
                    .or_default() += 1;
            }
            let c = r.country.clone().unwrap_or_else(|| "none".to_owned());
            *buckets
                .entry((minute, AnomalyDimension::Country, c))
                .or_default() += 1;
        } else {
            *buckets
                .entry((minute, AnomalyDimension::Withheld, "withheld".to_owned()))
                .or_default() += 1;
        }
    }
    let mut all: Vec<AnomalyBucket> = buckets
        .into_iter()
        .map(|((minute, dimension, value), count)| {
            let limit = match dimension {
                AnomalyDimension::PrefixBlock => thresholds.per_prefix_block_per_minute,
                AnomalyDimension::Country => thresholds.per_country_per_minute,
                AnomalyDimension::Withheld => thresholds.withheld_per_minute,
            };
            AnomalyBucket {
                minute,
                dimension,
                value,
                count,
                flagged: count >= limit,
            }
        })
        .collect();
    all.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.minute.cmp(&b.minute))
            .then_with(|| a.dimension.cmp(&b.dimension))
            .then_with(|| a.value.cmp(&b.value))
    });
    let (flagged, rest): (Vec<_>, Vec<_>) = all.into_iter().partition(|b| b.flagged);
    Ok(AnomalyReport {
        total: rows.len() as u64,
        flagged,
        busiest: rest.into_iter().take(AnomalyReport::TOP).collect(),
    })
}

const DAY: Duration = Duration::from_secs(86_400);

pub(crate) fn retention_run<S: Retention + ?Sized>(
    store: &S,
    now: SystemTime,
) -> Result<RetentionReport, StoreError> {
    let mut report = RetentionReport::default();
    for slug in store.campaigns()? {
        let settings = store.campaign_settings(&slug)?;
        let Some(closed) = settings.closes_at else {
            continue;
        };
        if now < closed {
            continue;
        }
        let due = |days: Option<u32>| days.is_some_and(|d| now >= closed + DAY * d);
        let mut steps = vec![RetentionStep::DeleteContacts];
        if due(settings.recordings_days) {
            steps.push(RetentionStep::DeleteRecordings);
        }
        if due(settings.signatures_days) {
            steps.push(match settings.signature_retention {
                SignatureRetention::Anonymise => RetentionStep::AnonymiseSignatures,
                SignatureRetention::Delete => RetentionStep::DeleteSignatures,
            });
        }
        for step in steps {
            let n = store.apply_retention(&slug, step)?;
            if n > 0 {
                report.steps.push((slug.clone(), step, n));
            }
        }
    }
    Ok(report)
}

/// Per-day, per-country and per-region totals of the publicly counted signatures, for the
/// export's summary: key -> (verified, unverified).
pub(crate) struct Summary {
    pub total: (u64, u64),
    pub days: BTreeMap<String, (u64, u64)>,
    pub countries: BTreeMap<String, (u64, u64)>,
    pub regions: BTreeMap<&'static str, u64>,
}

pub(crate) fn summarise(rows: &[SignatureRow], policy: CountPolicy) -> Summary {
    let mut s = Summary {
        total: (0, 0),
        days: BTreeMap::new(),
        countries: BTreeMap::new(),
        regions: BTreeMap::new(),
    };
    for r in [
        BelgianRegion::Flanders,
        BelgianRegion::Wallonia,
        BelgianRegion::Brussels,
    ] {
        s.regions.insert(r.as_str(), 0);
    }
    let bump = |v: &mut (u64, u64), verified: bool| {
        if verified {
            v.0 += 1
        } else {
            v.1 += 1
        }
    };
    for r in rows.iter().filter(|r| r.state.is_counted(policy)) {
        bump(&mut s.total, r.verified);
        let day = r.created_at.get(..10).unwrap_or(&r.created_at).to_owned();
        bump(s.days.entry(day).or_default(), r.verified);
        let country = if r.verified {
            r.country.clone().unwrap_or_else(|| "unknown".to_owned())
        } else {
            "withheld".to_owned()
        };
        bump(s.countries.entry(country).or_default(), r.verified);
        if let Some(region) = r.be_region {
            *s.regions.entry(region.as_str()).or_default() += 1;
        }
    }
    s
}
