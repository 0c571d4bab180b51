//! Campaign statistics for the public page (signatures over time, per country, per Belgian
//! region), computed from the store by one background task and served from memory.
//!
//! A page view never reads the database: the task reads each campaign's signature rows every
//! few seconds (less often when reading takes long), keeps only the signatures the campaign's
//! count policy counts, and swaps the result in. The page says how old its figures are.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use store::{BelgianRegion, CountHub, CountPolicy, Counts, SignatureRow};
use tokio::sync::watch;

use crate::CampaignList;

/// The shortest pause between two refreshes.
pub(crate) const REFRESH_MIN: Duration = Duration::from_secs(5);
/// The longest pause, however slow a refresh was.
const REFRESH_MAX: Duration = Duration::from_secs(60);
/// A refresh may take at most this share of the time (1/10): a refresh that took 2 s waits 20 s.
const REFRESH_DUTY_DIVISOR: u32 = 10;
/// Points on the chart at most; the bucket width grows to keep within it.
pub(crate) const MAX_BUCKETS: u64 = 120;
/// Bucket widths tried in order (1, 5 and 10 minutes, 1 and 6 hours, 1 day, 1 week), in
/// seconds: a campaign's first hours are drawn minute by minute.
const BUCKET_WIDTHS: [u64; 7] = [60, 300, 600, 3600, 6 * 3600, 86_400, 7 * 86_400];
/// A campaign whose live count has not changed is read again after this long at the latest
/// (for changes that leave the count alone, such as an erasure and a new signature).
const UNCHANGED_MAX_AGE: Duration = Duration::from_secs(30);
/// Countries listed by name at most; the rest are summed as "other".
pub(crate) const MAX_COUNTRIES: usize = 8;

/// What the page shows about one campaign, as of `as_of`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CampaignStats {
    pub as_of: SystemTime,
    /// Counted signatures of verified callers (the public count).
    pub signatures: u64,
    /// Counted signatures of callers who withheld their number.
    pub unverified: u64,
    /// Width of one bucket of `per_bucket`, in seconds.
    pub bucket_secs: u64,
    /// Start of the first bucket, in seconds since the epoch (UTC, a multiple of the width).
    pub first_bucket: u64,
    /// Counted verified signatures per bucket, oldest first, up to the bucket holding `as_of`.
    pub per_bucket: Vec<u64>,
    /// Counted verified signatures per country (ISO 3166 code), most first, at most
    /// [`MAX_COUNTRIES`].
    pub countries: Vec<(String, u64)>,
    /// Counted verified signatures from other countries or of unknown country.
    pub other_countries: u64,
    /// Counted signatures from Belgian landlines per region: Brussels, Flanders, Wallonia.
    pub regions: [(BelgianRegion, u64); 3],
}

impl CampaignStats {
    /// `(bucket end, running total)` for each bucket: the chart's points. The first point is
    /// the start of the first bucket with the total 0; the last bucket ends at `as_of`, not in
    /// the future.
    pub fn cumulative(&self) -> Vec<(u64, u64)> {
        let mut points = Vec::with_capacity(self.per_bucket.len() + 1);
        let mut total = 0u64;
        let now = unix_secs(self.as_of).max(self.first_bucket + 1);
        points.push((self.first_bucket, 0));
        for (i, n) in self.per_bucket.iter().enumerate() {
            total += n;
            let end = (self.first_bucket + (i as u64 + 1) * self.bucket_secs).min(now);
            points.push((end, total));
        }
        points
    }
}

/// Seconds since the epoch, 0 before it.
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The statistics of one campaign from its rows; only rows counted under `policy`.
pub(crate) fn compute(
    rows: &[SignatureRow],
    policy: CountPolicy,
    now: SystemTime,
) -> CampaignStats {
    let now_secs = unix_secs(now);
    let mut signatures = 0u64;
    let mut unverified = 0u64;
    let mut times: Vec<u64> = Vec::new();
    let mut countries: HashMap<&str, u64> = HashMap::new();
    let mut other_countries = 0u64;
    let mut regions = [
        (BelgianRegion::Brussels, 0u64),
        (BelgianRegion::Flanders, 0),
        (BelgianRegion::Wallonia, 0),
    ];
    for row in rows.iter().filter(|r| r.state.is_counted(policy)) {
        if !row.verified {
            unverified += 1;
            continue;
        }
        signatures += 1;
        if let Some(t) = store::parse_rfc3339(&row.created_at) {
            // A clock that went back must not put a point after "now".
            times.push(unix_secs(t).min(now_secs));
        }
        match row.country.as_deref() {
            Some(code) if is_country_code(code) => *countries.entry(code).or_default() += 1,
            _ => other_countries += 1,
        }
        if let Some(region) = row.be_region {
            for slot in regions.iter_mut().filter(|(r, _)| *r == region) {
                slot.1 += 1;
            }
        }
    }
    let first = times.iter().copied().min().unwrap_or(now_secs);
    let span = now_secs.saturating_sub(first);
    let bucket_secs = BUCKET_WIDTHS
        .into_iter()
        .find(|w| span / w + 2 <= MAX_BUCKETS)
        .unwrap_or_else(|| {
            // Alignment and the partial last bucket add up to two buckets to the span's.
            let days = span / 86_400 / (MAX_BUCKETS - 2) + 1;
            days * 86_400
        });
    let first_bucket = first - first % bucket_secs;
    let buckets = (now_secs - first_bucket) / bucket_secs + 1;
    let mut per_bucket = vec![0u64; usize::try_from(buckets).unwrap_or(1)];
    for t in times {
        let i = usize::try_from((t - first_bucket) / bucket_secs).unwrap_or(0);
        if let Some(slot) = per_bucket.get_mut(i) {
            *slot += 1;
        }
    }
    let mut countries: Vec<(String, u64)> = countries
        .into_iter()
        .map(|(code, n)| (code.to_owned(), n))
        .collect();
    countries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (_, n) in countries.iter().skip(MAX_COUNTRIES) {
        other_countries += n;
    }
    countries.truncate(MAX_COUNTRIES);
    CampaignStats {
        as_of: now,
        signatures,
        unverified,
        bucket_secs,
        first_bucket,
        per_bucket,
        countries,
        other_countries,
        regions,
    }
}

/// Two ASCII capitals: what the store keeps as a country; anything else counts as unknown.
fn is_country_code(code: &str) -> bool {
    code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase())
}

/// The latest statistics per campaign. Cheap to clone: clones share the map.
#[derive(Clone, Default)]
pub(crate) struct StatsCache(Arc<RwLock<HashMap<String, Arc<CampaignStats>>>>);

impl StatsCache {
    pub fn get(&self, slug: &str) -> Option<Arc<CampaignStats>> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(slug)
            .cloned()
    }

    fn put(&self, slug: String, stats: CampaignStats) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(slug, Arc::new(stats));
    }

    /// Forgets campaigns that are no longer listed.
    fn retain(&self, slugs: &[String]) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| slugs.contains(k));
    }
}

/// When each campaign was last read, and its live count then.
type Seen = HashMap<String, (Counts, Instant)>;

/// Whether a campaign must be read again: its live count changed since `last`, or `last` is
/// older than [`UNCHANGED_MAX_AGE`] (or there is none).
pub(crate) fn stale(last: Option<&(Counts, Instant)>, counts: Counts, now: Instant) -> bool {
    match last {
        Some((seen, at)) => *seen != counts || now.duration_since(*at) >= UNCHANGED_MAX_AGE,
        None => true,
    }
}

/// Reads the rows of every campaign whose figures may have changed and replaces its
/// statistics.
async fn refresh(
    cache: &StatsCache,
    store: &Arc<dyn store::Store>,
    campaigns: &CampaignList,
    hub: &CountHub,
    seen: &mut Seen,
    failing: &mut HashSet<String>,
) {
    let slugs: Vec<String> = campaigns
        .snapshot()
        .iter()
        .map(|c| c.slug.clone())
        .collect();
    cache.retain(&slugs);
    seen.retain(|k, _| slugs.contains(k));
    for slug in slugs {
        // Taken before the read: a signature during it makes the next round read again.
        let counts = hub.current(&slug);
        if !stale(seen.get(&slug), counts, Instant::now()) {
            continue;
        }
        let s = store.clone();
        let name = slug.clone();
        let read = tokio::task::spawn_blocking(move || {
            let settings = s.campaign_settings(&name)?;
            let rows = s.signature_rows(&name)?;
            Ok::<_, store::StoreError>(compute(&rows, settings.count_policy, SystemTime::now()))
        })
        .await;
        match read {
            Ok(Ok(stats)) => {
                cache.put(slug.clone(), stats);
                if failing.remove(&slug) {
                    tracing::info!(campaign = %slug, "page statistics computed again");
                }
                seen.insert(slug, (counts, Instant::now()));
            }
            // Said once per failure, not every few seconds while the store is away.
            Ok(Err(e)) => {
                if failing.insert(slug.clone()) {
                    tracing::warn!(campaign = %slug, error = %e, "cannot compute the page statistics");
                }
            }
            Err(e) => {
                if failing.insert(slug.clone()) {
                    tracing::warn!(campaign = %slug, error = %e, "statistics task failed");
                }
            }
        }
    }
}

/// The pause after a refresh that took `took`.
pub(crate) fn pause_after(took: Duration) -> Duration {
    (took * REFRESH_DUTY_DIVISOR).clamp(REFRESH_MIN, REFRESH_MAX)
}

/// Keeps `cache` filled until `shutdown` turns true (or forever without one). Needs a Tokio
/// runtime; [`crate::router_with`] starts it when it has a store.
pub(crate) async fn run(
    cache: StatsCache,
    store: Arc<dyn store::Store>,
    campaigns: CampaignList,
    hub: CountHub,
    mut shutdown: Option<watch::Receiver<bool>>,
) {
    let mut seen = Seen::new();
    let mut failing = HashSet::new();
    loop {
        let started = Instant::now();
        refresh(&cache, &store, &campaigns, &hub, &mut seen, &mut failing).await;
        let pause = pause_after(started.elapsed());
        match &mut shutdown {
            Some(stop) => {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
            None => tokio::time::sleep(pause).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::{SignatureState, Trust};

    fn row(at: &str, state: SignatureState, country: Option<&str>) -> SignatureRow {
        SignatureRow {
            id: 0,
            created_at: at.into(),
            verified: true,
            state,
            trust: Trust::FromHeader,
            country: country.map(str::to_owned),
            kind: None,
            be_region: None,
            prefix_block: None,
            flow_version: None,
            channel: "sip".into(),
            speech_ms: 0,
            has_recording: true,
            anonymised: false,
        }
    }

    fn at(s: &str) -> SystemTime {
        store::parse_rfc3339(s).expect("test time")
    }

    #[test]
    fn counts_only_what_the_policy_counts() {
        let mut brussels = row("2026-01-01T10:00:00Z", SignatureState::Valid, Some("BE"));
        brussels.be_region = Some(BelgianRegion::Brussels);
        let mut withheld = row("2026-01-01T10:01:00Z", SignatureState::Pending, None);
        withheld.verified = false;
        let rows = vec![
            row("2026-01-01T10:00:00Z", SignatureState::Pending, Some("BE")),
            brussels,
            row("2026-01-01T10:02:00Z", SignatureState::Invalid, Some("NL")),
            row(
                "2026-01-01T10:03:00Z",
                SignatureState::Fraudulent,
                Some("NL"),
            ),
            row("2026-01-01T10:04:00Z", SignatureState::Valid, Some("NL")),
            row("2026-01-01T10:05:00Z", SignatureState::Pending, None),
            withheld,
        ];
        let now = at("2026-01-01T11:00:00Z");
        let all = compute(&rows, CountPolicy::AllNonInvalid, now);
        assert_eq!((all.signatures, all.unverified), (4, 1));
        assert_eq!(
            all.countries,
            vec![("BE".to_owned(), 2), ("NL".to_owned(), 1)]
        );
        assert_eq!(all.other_countries, 1);
        assert_eq!(all.regions[0], (BelgianRegion::Brussels, 1));
        let valid = compute(&rows, CountPolicy::ValidOnly, now);
        assert_eq!((valid.signatures, valid.unverified), (2, 0));
        assert_eq!(valid.per_bucket.iter().sum::<u64>(), 2);
    }

    #[test]
    fn buckets_widen_with_the_span_and_end_at_now() {
        let rows = vec![
            row("2026-01-01T10:05:00Z", SignatureState::Pending, Some("BE")),
            row("2026-01-01T10:15:00Z", SignatureState::Pending, Some("BE")),
            row("2026-01-01T10:16:00Z", SignatureState::Pending, Some("BE")),
        ];
        let short = compute(
            &rows,
            CountPolicy::AllNonInvalid,
            at("2026-01-01T10:30:00Z"),
        );
        assert_eq!(short.bucket_secs, 60);
        assert_eq!(
            short.per_bucket.len(),
            26,
            "10:05 to 10:30 minute by minute"
        );
        assert_eq!(
            (
                short.per_bucket[0],
                short.per_bucket[10],
                short.per_bucket[11]
            ),
            (1, 1, 1)
        );
        assert_eq!(
            short.cumulative().last(),
            Some(&(unix_secs(at("2026-01-01T10:30:00Z")), 3)),
            "the line ends now, not at the end of the current minute"
        );
        assert_eq!(
            short.cumulative().last().map(|p| p.1),
            Some(3),
            "the running total ends at the count"
        );
        let long = compute(
            &rows,
            CountPolicy::AllNonInvalid,
            at("2026-03-01T00:00:00Z"),
        );
        assert_eq!(long.bucket_secs, 86_400);
        assert!(long.per_bucket.len() as u64 <= MAX_BUCKETS);
        assert_eq!(long.per_bucket[0], 3);
        let very_long = compute(
            &rows,
            CountPolicy::AllNonInvalid,
            at("2036-03-01T00:00:00Z"),
        );
        assert!(very_long.per_bucket.len() as u64 <= MAX_BUCKETS);
        assert_eq!(very_long.per_bucket.iter().sum::<u64>(), 3);
    }

    #[test]
    fn an_empty_campaign_has_one_empty_bucket() {
        let s = compute(&[], CountPolicy::AllNonInvalid, at("2026-01-01T10:30:00Z"));
        assert_eq!(s.signatures, 0);
        assert_eq!(s.per_bucket, vec![0]);
        assert!(s.countries.is_empty());
    }

    #[test]
    fn many_countries_are_summed_beyond_the_limit() {
        let codes = ["BE", "NL", "FR", "DE", "LU", "GB", "US", "ES", "IT", "PT"];
        let rows: Vec<SignatureRow> = codes
            .iter()
            .map(|c| row("2026-01-01T10:00:00Z", SignatureState::Pending, Some(c)))
            .chain(std::iter::once(row(
                "2026-01-01T10:00:00Z",
                SignatureState::Pending,
                Some("<b>"),
            )))
            .collect();
        let s = compute(
            &rows,
            CountPolicy::AllNonInvalid,
            at("2026-01-02T00:00:00Z"),
        );
        assert_eq!(s.countries.len(), MAX_COUNTRIES);
        assert_eq!(
            s.other_countries, 3,
            "two beyond the limit, one malformed code"
        );
    }

    #[test]
    fn a_campaign_is_read_again_when_its_count_changes_or_its_figures_age() {
        let t0 = Instant::now();
        let c = |n| Counts {
            signatures: n,
            unverified: 0,
        };
        assert!(stale(None, c(0), t0));
        let last = (c(5), t0);
        assert!(!stale(Some(&last), c(5), t0 + Duration::from_secs(10)));
        assert!(stale(Some(&last), c(6), t0 + Duration::from_secs(1)));
        assert!(stale(Some(&last), c(4), t0 + Duration::from_secs(1)));
        assert!(stale(Some(&last), c(5), t0 + UNCHANGED_MAX_AGE));
    }

    #[test]
    fn pause_grows_with_a_slow_refresh() {
        assert_eq!(pause_after(Duration::from_millis(10)), REFRESH_MIN);
        assert_eq!(pause_after(Duration::from_secs(2)), Duration::from_secs(20));
        assert_eq!(pause_after(Duration::from_secs(30)), REFRESH_MAX);
    }

    /// Measures a refresh of a 100,000-signature campaign on SQLite (run by hand:
    /// `cargo test -p web --release -- --ignored --nocapture refresh_of_a_big_campaign`).
    #[test]
    #[ignore = "a measurement, not a check; takes a minute"]
    fn refresh_of_a_big_campaign() {
        use std::sync::Arc;
        use store::{identify_caller, NewSignature, Secret, Store};
        const ROWS: usize = 100_000;
        const SIGNERS: usize = 64;
        let dir = std::env::temp_dir().join(format!("belteken-stats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let db = store::SqliteStore::open(&dir.join("big.db")).expect("open");
        let db: Arc<dyn Store> = Arc::new(db);
        db.ensure_campaign("big", "Big").expect("campaign");
        let secret = Arc::new(Secret::from_bytes([1; 32]));
        let threads: Vec<_> = (0..SIGNERS)
            .map(|t| {
                let db = db.clone();
                let secret = secret.clone();
                std::thread::spawn(move || {
                    for i in 0..ROWS / SIGNERS + 1 {
                        let n = t * (ROWS / SIGNERS + 1) + i;
                        let number = if matches!(n % 3, 0) {
                            format!("+322{n:07}")
                        } else {
                            format!("+3247{n:07}")
                        };
                        db.sign(NewSignature {
                            campaign: "big".into(),
                            caller: identify_caller(Some(&number), "BE", &secret),
                            recording_wav: vec![0x7f; 64],
                            speech_ms: 1500,
                            channel: "test",
                            trust: None,
                            flow_version: None,
                            contact: None,
                        })
                        .expect("sign");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("signer");
        }
        for _ in 0..3 {
            let started = Instant::now();
            let rows = db.signature_rows("big").expect("rows");
            let read = started.elapsed();
            let stats = compute(&rows, CountPolicy::AllNonInvalid, SystemTime::now());
            println!(
                "rows={} read_ms={} compute_ms={} regions={:?}",
                rows.len(),
                read.as_millis(),
                (started.elapsed() - read).as_millis(),
                stats.regions
            );
        }
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
