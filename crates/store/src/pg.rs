//! The PostgreSQL backend, for several belteken nodes sharing one database.
//!
//! Runtime: the `Store` trait is synchronous, tokio-postgres is async. The store owns a small
//! tokio runtime (one worker thread) that drives its connections. A sync method runs its
//! future with that runtime's `block_on`, which panics when the calling thread is already
//! driving a runtime; so when the caller is inside any runtime context (a `spawn_blocking`
//! thread, or by mistake an async task) the future is run on a short-lived scoped thread that
//! has none. Either way no "runtime within a runtime" panic is possible; a call from an async
//! task still blocks that task's thread, so callers use `spawn_blocking` as the trait says.
//!
//! Connections: a writer (signature groups and every other write, one at a time) and
//! [`PG_READERS`] readers (a read takes a free one, so a call's "signed before?" waits behind
//! no export), each opened on first use and reconnected on its next use after it broke. Signatures go through the group committer
//! (`group.rs`): one transaction, hence one WAL flush (`synchronous_commit` on), per group.
//! Counters are sharded (`COUNTER_SHARDS`) so that nodes committing at once rarely wait on the
//! same row. The schema version lives in `schema_version`, migrations take an advisory lock so
//! that nodes starting together migrate once.
//!
//! TLS is not supported: connect over loopback, a private network or a Unix socket.

// Indexes here are of the reader pool (never empty) and of campaigns looked up just before in
// the same group commit, not of text from outside; the input checks are in lib.rs's modules.
#![allow(clippy::indexing_slicing)]

use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Mutex, MutexGuard};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row, Statement, ToStatement, Transaction};

use crate::console::{
    validate_audit, validate_label, validate_summary, validate_token_hash, MAX_SESSIONS_PER_USER,
};
use crate::decode::{self, CampaignRef, Columns, SETTINGS_COLUMNS, SIGNATURE_COLUMNS};
use crate::edits::{validate_actor, validate_clip, validate_document};
use crate::group::{CommitFn, Committer};
use crate::prelude::*;
use crate::registry::fold_counts;
use crate::shared::{
    clip_detail, clip_duration, edit_detail, key_found, outcomes, page_limit, reset_detail,
    retention_detail, revert_detail, reviewed_reason, summary_ended_at, summary_heard_ms,
    token_detail, unix_range, user_detail, ReviewTexts, SessionCheck, SettingsValues,
    SignatureValues, Written, ERASE_DETAIL,
};
use crate::{
    scrub_numbers, time, unix_secs, validate_call_id, validate_call_state, validate_campaign,
    validate_fingerprint, validate_signature, validate_user_name, ApiTokenInfo, AuditEntry,
    CallState, CallSummary, CallerIdentity, CallerKey, CampaignEdits, CampaignSettings,
    ConsoleSession, ConsoleUser, Counts, Funnel, NewClip, NewSignature, RetentionStep,
    ReviewAction, Role, SealedContact, SessionLimits, SignOutcome, SignatureRow, SignatureState,
    StoreError, StoredClip, StoredRecording, COUNTER_SHARDS,
};

/// How long connecting may take when the URL does not say.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Key of the advisory lock held while migrating ("belt").
const MIGRATION_LOCK: i64 = 0x6265_6c74;

/// Schema migrations; migration `i` takes `schema_version` from `i` to `i + 1`. Append only.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE campaigns (
        id                  BIGSERIAL PRIMARY KEY,
        slug                TEXT UNIQUE NOT NULL,
        title               TEXT NOT NULL,
        count_policy        TEXT NOT NULL DEFAULT 'all_non_invalid',
        closes_at           TEXT NULL,
        recordings_days     BIGINT NULL,
        signatures_days     BIGINT NULL,
        signature_retention TEXT NOT NULL DEFAULT 'anonymise',
        keep_contact        BOOLEAN NOT NULL DEFAULT false,
        threshold_flanders  BIGINT NOT NULL DEFAULT 14500,
        threshold_wallonia  BIGINT NOT NULL DEFAULT 8000,
        threshold_brussels  BIGINT NOT NULL DEFAULT 2500
    );
    CREATE TABLE signatures (
        id           BIGSERIAL PRIMARY KEY,
        campaign_id  BIGINT NOT NULL REFERENCES campaigns(id),
        caller_key   TEXT NULL,
        verified     BOOLEAN NOT NULL,
        channel      TEXT NOT NULL,
        speech_ms    BIGINT NOT NULL CHECK (speech_ms >= 0),
        recording    BYTEA NULL CHECK (recording IS NULL OR length(recording) > 0),
        created_at   TEXT NOT NULL,
        state        TEXT NOT NULL CHECK (state IN ('pending', 'valid', 'invalid', 'fraudulent')),
        trust        TEXT NOT NULL CHECK (trust IN ('network', 'from', 'withheld')),
        country      TEXT NULL,
        number_kind  TEXT NULL,
        be_region    TEXT NULL CHECK (be_region IN ('flanders', 'wallonia', 'brussels')),
        prefix_block TEXT NULL,
        flow_version TEXT NULL,
        contact      BYTEA NULL,
        anonymised   BOOLEAN NOT NULL DEFAULT false,
        CHECK (verified OR caller_key IS NULL)
    );
    -- WAV does not compress: store it out of line without trying.
    ALTER TABLE signatures ALTER COLUMN recording SET STORAGE EXTERNAL;
    -- Not partial: NULL keys (withheld, anonymised) never conflict anyway, and a generic plan
    -- of `caller_key = ANY($2)` cannot use a partial index's key column (it scanned the whole
    -- campaign per lookup).
    CREATE UNIQUE INDEX signatures_one_per_caller ON signatures (campaign_id, caller_key);
    CREATE INDEX signatures_by_key ON signatures (caller_key);
    CREATE INDEX signatures_by_campaign ON signatures (campaign_id, verified, state);
    CREATE TABLE counters (
        campaign_id BIGINT NOT NULL REFERENCES campaigns(id),
        shard       BIGINT NOT NULL,
        verified    BOOLEAN NOT NULL,
        state       TEXT NOT NULL,
        n           BIGINT NOT NULL,
        PRIMARY KEY (campaign_id, shard, verified, state)
    );
    CREATE TABLE review_actions (
        id          BIGSERIAL PRIMARY KEY,
        campaign_id BIGINT NOT NULL REFERENCES campaigns(id),
        at          TEXT NOT NULL,
        state       TEXT NOT NULL,
        reason      TEXT NOT NULL,
        description TEXT NOT NULL,
        changed     BIGINT NOT NULL,
        reverted_at TEXT NULL
    );
    CREATE TABLE review_changes (
        action_id    BIGINT NOT NULL REFERENCES review_actions(id),
        signature_id BIGINT NOT NULL,
        old_state    TEXT NOT NULL,
        PRIMARY KEY (action_id, signature_id)
    );
    CREATE INDEX review_changes_by_signature ON review_changes (signature_id);
    CREATE TABLE audit (
        id       BIGSERIAL PRIMARY KEY,
        at       TEXT NOT NULL,
        campaign TEXT NULL,
        action   TEXT NOT NULL,
        detail   TEXT NOT NULL
    );
",
    "
CREATE TABLE cloud_calls (
    call_id    TEXT PRIMARY KEY,
    version    BIGINT NOT NULL,
    data       BYTEA NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX cloud_calls_expiry ON cloud_calls (expires_at);
",
    // Campaign edits and uploaded clips (edits.rs).
    "
ALTER TABLE campaigns ADD COLUMN edit_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN edit_document TEXT NULL;
CREATE TABLE campaign_clips (
    campaign_id BIGINT NOT NULL REFERENCES campaigns(id),
    name        TEXT NOT NULL,
    language    TEXT NOT NULL,
    wav         BYTEA NOT NULL,
    duration_ms BIGINT NOT NULL CHECK (duration_ms >= 0),
    uploaded_at TEXT NOT NULL,
    PRIMARY KEY (campaign_id, name, language)
);
",
    // Console users, sessions and API tokens; per-call summaries for the funnel.
    "
CREATE TABLE console_users (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL REFERENCES console_users(name) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_user ON console_sessions (user_name);
CREATE TABLE console_tokens (
    token_hash TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL REFERENCES console_users(name) ON DELETE CASCADE,
    label      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (user_name, label)
);
CREATE TABLE call_summaries (
    id              BIGSERIAL PRIMARY KEY,
    campaign        TEXT NOT NULL,
    flow_version    TEXT NULL,
    channel         TEXT NOT NULL,
    ended_at        BIGINT NOT NULL,
    answered        BOOLEAN NOT NULL,
    story_heard_ms  BIGINT NOT NULL,
    story_completed BOOLEAN NOT NULL,
    recorded        BOOLEAN NOT NULL,
    signed          BOOLEAN NOT NULL
);
CREATE INDEX call_summaries_by_campaign ON call_summaries (campaign, ended_at);
",
    // The fingerprint of the secret the caller keys are made with (one row; never the key).
    "
CREATE TABLE secret_fingerprint (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint TEXT NOT NULL,
    set_at      TEXT NOT NULL
);
",
    // API tokens expire; those made before expire 90 days after this migration.
    "
ALTER TABLE console_tokens ADD COLUMN expires_at TEXT NOT NULL DEFAULT '';
UPDATE console_tokens SET expires_at =
    to_char((now() AT TIME ZONE 'UTC') + interval '90 days', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"');
",
];

/// Statements of the signing path, prepared once per connection.
struct Prepared {
    campaign: Statement,
    find_key: Statement,
    rekey: Statement,
    insert: Statement,
    counter_add: Statement,
    read_counts: Statement,
}

struct Conn {
    client: Client,
    st: Prepared,
}

struct Inner {
    // Some until drop, which shuts it down without blocking (dropping a runtime inside an
    // async context would panic).
    rt: Option<tokio::runtime::Runtime>,
    config: Config,
    writer: Mutex<Option<Conn>>,
    readers: Vec<Mutex<Option<Conn>>>,
    next_reader: std::sync::atomic::AtomicUsize,
}

/// Read connections per node, opened when first needed.
pub const PG_READERS: usize = 3;

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The PostgreSQL store. See the module documentation for its runtime and connections.
pub struct PgStore {
    // Dropped first: its thread finishes the queue while the connections are still open.
    committer: Committer,
    inner: Arc<Inner>,
}

impl PgStore {
    /// Connects to `url` ("postgres://user:password@host:port/db", or key=value form), and
    /// migrates the schema. The URL may set `options=-csearch_path%3Dname` to use a schema.
    pub fn connect(url: &str) -> Result<PgStore, StoreError> {
        let mut config = Config::from_str(url)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("belteken");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("store-pg")
            .enable_all()
            .build()
            .map_err(|source| StoreError::Io {
                what: "start the PostgreSQL runtime",
                source,
            })?;
        let inner = Arc::new(Inner {
            rt: Some(rt),
            config,
            writer: Mutex::new(None),
            readers: (0..PG_READERS).map(|_| Mutex::new(None)).collect(),
            next_reader: std::sync::atomic::AtomicUsize::new(0),
        });
        // Connect now (which migrates), so a bad URL or an old program fails at start.
        inner.block(async { inner.writer().await.map(drop) })?;
        let committer_inner = Arc::clone(&inner);
        let mut group: u64 = 0;
        let commit: CommitFn = Box::new(move |sigs: &[NewSignature]| {
            group = group.wrapping_add(1);
            let shard = (group % COUNTER_SHARDS) as i64;
            let inner = &committer_inner;
            inner.block(async {
                let mut w = inner.writer().await?;
                let conn = client_of(&mut w)?;
                let result = commit_group(conn, sigs, shard).await;
                if result.is_err() && conn.client.is_closed() {
                    *w = None;
                }
                result
            })
        });
        Ok(PgStore {
            committer: Committer::start("store-pg-commit", commit)?,
            inner,
        })
    }

    fn block<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        self.inner.block(fut)
    }
}

impl Inner {
    fn rt(&self) -> &tokio::runtime::Runtime {
        // Only `drop` takes it.
        self.rt.as_ref().expect("the runtime lives until drop")
    }

    fn block<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| {
                s.spawn(|| self.rt().block_on(fut))
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
        } else {
            self.rt().block_on(fut)
        }
    }

    async fn writer(&self) -> Result<MutexGuard<'_, Option<Conn>>, StoreError> {
        self.checked(&self.writer).await
    }

    async fn reader(&self) -> Result<MutexGuard<'_, Option<Conn>>, StoreError> {
        // A free connection if there is one, else wait for the next in turn.
        let first = self
            .next_reader
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let n = self.readers.len();
        let free = (0..n).find_map(|i| self.readers[(first + i) % n].try_lock().ok());
        match free {
            Some(guard) => self.connected(guard).await,
            None => self.checked(&self.readers[first % n]).await,
        }
    }

    /// Locks the connection slot, (re)connecting when it is empty or broken.
    async fn checked<'a>(
        &self,
        slot: &'a Mutex<Option<Conn>>,
    ) -> Result<MutexGuard<'a, Option<Conn>>, StoreError> {
        self.connected(slot.lock().await).await
    }

    /// (Re)connects a locked connection slot when it is empty or broken.
    async fn connected<'a>(
        &self,
        mut guard: MutexGuard<'a, Option<Conn>>,
    ) -> Result<MutexGuard<'a, Option<Conn>>, StoreError> {
        if guard.as_ref().is_none_or(|c| c.client.is_closed()) {
            *guard = None;
            let (client, connection) = self.config.connect(NoTls).await?;
            // Runs on the store's runtime: `block` entered it.
            tokio::spawn(async move {
                let _ = connection.await;
            });
            let st = prepare(&client).await?;
            *guard = Some(Conn { client, st });
        }
        Ok(guard)
    }
}

fn client_of<'a>(guard: &'a mut MutexGuard<'_, Option<Conn>>) -> Result<&'a mut Conn, StoreError> {
    guard.as_mut().ok_or(StoreError::Closed)
}

async fn prepare(client: &Client) -> Result<Prepared, StoreError> {
    // Every new connection checks the schema first (cheap when it is current), so the
    // statements below always find their tables, even on a node that started before another
    // one migrated.
    migrate(client).await?;
    Ok(Prepared {
        campaign: client
            .prepare("SELECT id, count_policy, keep_contact FROM campaigns WHERE slug = $1")
            .await?,
        find_key: client
            .prepare(
                "SELECT caller_key FROM signatures WHERE campaign_id = $1 AND caller_key = ANY($2)",
            )
            .await?,
        rekey: client
            .prepare(
                "UPDATE signatures SET caller_key = $1 WHERE caller_key = $2 AND NOT EXISTS (
                     SELECT 1 FROM signatures s2
                     WHERE s2.campaign_id = signatures.campaign_id AND s2.caller_key = $1)",
            )
            .await?,
        insert: client
            .prepare(
                "INSERT INTO signatures (campaign_id, caller_key, verified, channel, speech_ms,
                     recording, created_at, state, trust, country, number_kind, be_region,
                     prefix_block, flow_version, contact)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10, $11, $12, $13, $14)
                 ON CONFLICT DO NOTHING RETURNING id",
            )
            .await?,
        counter_add: client
            .prepare(
                "INSERT INTO counters (campaign_id, shard, verified, state, n)
                 VALUES ($1, $2, $3, 'pending', $4)
                 ON CONFLICT (campaign_id, shard, verified, state)
                 DO UPDATE SET n = counters.n + excluded.n",
            )
            .await?,
        read_counts: client
            .prepare(
                "SELECT verified, state, sum(n)::BIGINT AS n FROM counters WHERE campaign_id = $1
                 GROUP BY verified, state",
            )
            .await?,
    })
}

async fn migrate(client: &Client) -> Result<(), StoreError> {
    let supported = MIGRATIONS.len() as i64;
    client.batch_execute("BEGIN").await?;
    let result = async {
        client
            .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        client
            .batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
            .await?;
        let row = client
            .query_one(
                "SELECT coalesce(max(version), 0)::BIGINT AS version FROM schema_version",
                &[],
            )
            .await?;
        let version = row.int("version")?;
        if version > supported {
            return Err(StoreError::SchemaTooNew {
                found: version,
                supported,
            });
        }
        for (i, sql) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(version).unwrap_or(0))
        {
            client.batch_execute(sql).await?;
            client.batch_execute("DELETE FROM schema_version").await?;
            client
                .execute(
                    "INSERT INTO schema_version (version) VALUES ($1)",
                    &[&(i as i64 + 1)],
                )
                .await?;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            client.batch_execute("COMMIT").await?;
            Ok(())
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

impl Columns for Row {
    fn text(&self, column: &str) -> Result<String, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn text_opt(&self, column: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn int_opt(&self, column: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn bytes_opt(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.try_get(column)?)
    }
}

type Params<'p> = [&'p (dyn ToSql + Sync)];

/// Every row of `sql`, decoded.
async fn all<T, S: ToStatement + ?Sized>(
    tx: &Transaction<'_>,
    sql: &S,
    params: &Params<'_>,
    decode: impl Fn(&dyn Columns) -> Result<T, StoreError> + Send,
) -> Result<Vec<T>, StoreError> {
    tx.query(sql, params)
        .await?
        .iter()
        .map(|r| decode(r))
        .collect()
}

/// The row of `sql`, if there is one, decoded.
async fn one<T, S: ToStatement + ?Sized>(
    tx: &Transaction<'_>,
    sql: &S,
    params: &Params<'_>,
    decode: impl FnOnce(&dyn Columns) -> Result<T, StoreError> + Send,
) -> Result<Option<T>, StoreError> {
    tx.query_opt(sql, params)
        .await?
        .as_ref()
        .map(|r| decode(r))
        .transpose()
}

async fn campaign(
    tx: &Transaction<'_>,
    st: &Prepared,
    slug: &str,
) -> Result<CampaignRef, StoreError> {
    one(tx, &st.campaign, &[&slug], decode::campaign_ref)
        .await?
        .ok_or_else(|| StoreError::UnknownCampaign(slug.to_owned()))
}

async fn read_counts(
    tx: &Transaction<'_>,
    st: &Prepared,
    c: &CampaignRef,
) -> Result<Counts, StoreError> {
    fold_counts(
        all(tx, &st.read_counts, &[&c.id], decode::counter).await?,
        c.policy,
    )
}

async fn recount_tx(tx: &Transaction<'_>, campaign_id: i64) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM counters WHERE campaign_id = $1",
        &[&campaign_id],
    )
    .await?;
    tx.execute(
        "INSERT INTO counters (campaign_id, shard, verified, state, n)
         SELECT campaign_id, 0, verified, state, count(*) FROM signatures
         WHERE campaign_id = $1 GROUP BY campaign_id, verified, state",
        &[&campaign_id],
    )
    .await?;
    Ok(())
}

async fn audit(
    tx: &Transaction<'_>,
    campaign: Option<&str>,
    action: &str,
    detail: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO audit (at, campaign, action, detail) VALUES ($1, $2, $3, $4)",
        &[
            &time::rfc3339_utc(SystemTime::now()),
            &campaign,
            &action,
            &detail,
        ],
    )
    .await?;
    Ok(())
}

/// Increments the campaign's edit version; returns the new one.
async fn bump_edit_version(tx: &Transaction<'_>, campaign_id: i64) -> Result<i64, StoreError> {
    let row = tx
        .query_one(
            "UPDATE campaigns SET edit_version = edit_version + 1 WHERE id = $1
             RETURNING edit_version",
            &[&campaign_id],
        )
        .await?;
    row.int("edit_version")
}

/// Which of `key` / `previous` has a signature in the campaign (see [`key_found`]).
async fn find_key(
    tx: &Transaction<'_>,
    st: &Prepared,
    campaign_id: i64,
    key: &CallerKey,
    previous: Option<&CallerKey>,
) -> Result<Option<bool>, StoreError> {
    let mut keys = vec![key.as_str()];
    if let Some(p) = previous {
        keys.push(p.as_str());
    }
    let found = all(tx, &st.find_key, &[&campaign_id, &keys], |r| {
        r.text("caller_key")
    })
    .await?;
    Ok(key_found(found.iter().map(String::as_str), key))
}

async fn commit_group(
    conn: &mut Conn,
    sigs: &[NewSignature],
    shard: i64,
) -> Result<Vec<SignOutcome>, StoreError> {
    let created_at = time::rfc3339_utc(SystemTime::now());
    let st = &conn.st;
    let tx = conn.client.transaction().await?;
    let mut campaigns: HashMap<&str, CampaignRef> = HashMap::new();
    for sig in sigs {
        validate_signature(sig)?;
        if !campaigns.contains_key(sig.campaign.as_str()) {
            let row = campaign(&tx, st, &sig.campaign).await?;
            campaigns.insert(&sig.campaign, row);
        }
    }
    // The lookups, then the inserts, of the whole group are sent at once: tokio-postgres
    // pipelines concurrent queries on one connection, so a group costs a few round trips
    // instead of two per signature.
    let lookups = futures_util::future::try_join_all(sigs.iter().map(|sig| {
        let c = &campaigns[sig.campaign.as_str()];
        let tx = &tx;
        async move {
            match &sig.caller {
                CallerIdentity::Verified { key, previous, .. } => {
                    find_key(tx, st, c.id, key, previous.as_ref()).await
                }
                CallerIdentity::Withheld => Ok(None),
            }
        }
    }))
    .await?;
    let mut written: Vec<(i64, Option<Written>)> = Vec::with_capacity(sigs.len());
    let mut seen: std::collections::HashSet<(i64, &str)> = std::collections::HashSet::new();
    let mut to_insert = Vec::new();
    for (i, (sig, found)) in sigs.iter().zip(lookups).enumerate() {
        let c = &campaigns[sig.campaign.as_str()];
        match (&sig.caller, found) {
            (CallerIdentity::Verified { .. }, Some(true)) => {
                written.push((c.id, Some(Written::Already)));
            }
            (CallerIdentity::Verified { key, previous, .. }, Some(false)) => {
                if let Some(old) = previous {
                    tx.execute(&st.rekey, &[&key.as_str(), &old.as_str()])
                        .await?;
                }
                written.push((c.id, Some(Written::Already)));
            }
            (CallerIdentity::Verified { key, .. }, None) if !seen.insert((c.id, key.as_str())) => {
                // The same caller twice in this group.
                written.push((c.id, Some(Written::Already)));
            }
            _ => {
                written.push((c.id, None));
                to_insert.push(i);
            }
        }
    }
    let inserted = futures_util::future::try_join_all(to_insert.iter().map(|&i| {
        let sig = &sigs[i];
        let c = &campaigns[sig.campaign.as_str()];
        let tx = &tx;
        let created_at = &created_at;
        async move {
            let v = SignatureValues::of(sig, c.keep_contact);
            let row = tx
                .query_opt(
                    &st.insert,
                    &[
                        &c.id,
                        &v.key,
                        &v.verified,
                        &v.channel,
                        &v.speech_ms,
                        &v.recording,
                        &created_at,
                        &v.trust,
                        &v.country,
                        &v.number_kind,
                        &v.be_region,
                        &v.prefix_block,
                        &v.flow_version,
                        &v.contact,
                    ],
                )
                .await?;
            Ok::<_, StoreError>((row.is_some(), v.verified))
        }
    }))
    .await?;
    let mut deltas: HashMap<(i64, bool), i64> = HashMap::new();
    for (&i, (ok, verified)) in to_insert.iter().zip(inserted) {
        let slot = &mut written[i];
        slot.1 = Some(if ok {
            Written::stored(verified)
        } else {
            // Signed by another node a moment ago.
            Written::Already
        });
        if ok {
            *deltas.entry((slot.0, verified)).or_default() += 1;
        }
    }
    let written: Vec<(i64, Written)> = written
        .into_iter()
        .map(|(id, w)| {
            Ok((
                id,
                w.ok_or(StoreError::Corrupt("signature left undecided"))?,
            ))
        })
        .collect::<Result<_, StoreError>>()?;
    for ((campaign_id, verified), n) in deltas {
        tx.execute(&st.counter_add, &[&campaign_id, &shard, &verified, &n])
            .await?;
    }
    let mut counts: HashMap<i64, Counts> = HashMap::new();
    for c in campaigns.values() {
        counts.insert(c.id, read_counts(&tx, st, c).await?);
    }
    // synchronous_commit (on by default) makes COMMIT return after the WAL is flushed.
    tx.commit().await?;
    outcomes(written, &counts)
}

impl Campaigns for PgStore {
    fn ensure_campaign(&self, slug: &str, title: &str) -> Result<(), StoreError> {
        validate_campaign(slug, title)?;
        self.write(|tx, _, _| {
            Box::pin(async move {
                tx.execute(
                    "INSERT INTO campaigns (slug, title) VALUES ($1, $2)
                     ON CONFLICT (slug) DO UPDATE SET title = excluded.title",
                    &[&slug, &title],
                )
                .await?;
                Ok(())
            })
        })
    }

    fn configure_campaign(
        &self,
        slug: &str,
        settings: &CampaignSettings,
    ) -> Result<(), StoreError> {
        let s = SettingsValues::of(settings);
        let s = &s;
        self.write(|tx, _, _| {
            Box::pin(async move {
                let n = tx
                    .execute(
                        "UPDATE campaigns SET count_policy = $2, closes_at = $3,
                             recordings_days = $4, signatures_days = $5,
                             signature_retention = $6, keep_contact = $7,
                             threshold_flanders = $8, threshold_wallonia = $9,
                             threshold_brussels = $10
                         WHERE slug = $1",
                        &[
                            &slug,
                            &s.count_policy,
                            &s.closes_at,
                            &s.recordings_days,
                            &s.signatures_days,
                            &s.signature_retention,
                            &s.keep_contact,
                            &s.thresholds[0],
                            &s.thresholds[1],
                            &s.thresholds[2],
                        ],
                    )
                    .await?;
                if n == 0 {
                    return Err(StoreError::UnknownCampaign(slug.to_owned()));
                }
                Ok(())
            })
        })
    }

    fn campaign_settings(&self, slug: &str) -> Result<CampaignSettings, StoreError> {
        let sql = format!("SELECT {SETTINGS_COLUMNS} FROM campaigns WHERE slug = $1");
        self.read_one(&sql, &[&slug], decode::campaign_settings)?
            .ok_or_else(|| StoreError::UnknownCampaign(slug.to_owned()))
    }

    fn campaigns(&self) -> Result<Vec<String>, StoreError> {
        self.read_all("SELECT slug FROM campaigns ORDER BY id", &[], |r| {
            r.text("slug")
        })
    }
}

impl Signing for PgStore {
    fn has_signed(&self, slug: &str, key: &CallerKey) -> Result<bool, StoreError> {
        self.has_signed_identity_inner(slug, key, None)
    }

    fn has_signed_identity(&self, slug: &str, caller: &CallerIdentity) -> Result<bool, StoreError> {
        let CallerIdentity::Verified { key, previous, .. } = caller else {
            return Ok(false);
        };
        self.has_signed_identity_inner(slug, key, previous.as_ref())
    }

    fn sign(&self, sig: NewSignature) -> Result<SignOutcome, StoreError> {
        validate_signature(&sig)?;
        self.committer.sign(sig)
    }

    fn counts(&self, slug: &str) -> Result<Counts, StoreError> {
        self.block(async {
            let mut r = self.inner.reader().await?;
            let conn = client_of(&mut r)?;
            let tx = conn.client.transaction().await?;
            let c = campaign(&tx, &conn.st, slug).await?;
            read_counts(&tx, &conn.st, &c).await
        })
    }

    fn recount(&self, slug: &str) -> Result<Counts, StoreError> {
        self.write(|tx, st, _| {
            Box::pin(async move {
                let c = campaign(tx, st, slug).await?;
                recount_tx(tx, c.id).await?;
                read_counts(tx, st, &c).await
            })
        })
    }
}

impl Review for PgStore {
    fn signature_rows(&self, slug: &str) -> Result<Vec<SignatureRow>, StoreError> {
        self.read(|tx, st, _| {
            Box::pin(async move {
                let c = campaign(tx, st, slug).await?;
                let sql = format!(
                    "SELECT {SIGNATURE_COLUMNS} FROM signatures WHERE campaign_id = $1 ORDER BY id"
                );
                all(tx, sql.as_str(), &[&c.id], decode::signature_row).await
            })
        })
    }

    fn signatures_in_state(
        &self,
        slug: &str,
        state: SignatureState,
        after: i64,
        limit: usize,
    ) -> Result<(Vec<SignatureRow>, u64), StoreError> {
        let limit = page_limit(limit);
        let state = state.as_str();
        self.read(|tx, st, _| {
            Box::pin(async move {
                let c = campaign(tx, st, slug).await?;
                let total = tx
                    .query_one(
                        "SELECT count(*)::BIGINT AS n FROM signatures
                         WHERE campaign_id = $1 AND state = $2",
                        &[&c.id, &state],
                    )
                    .await?
                    .int("n")?;
                let sql = format!(
                    "SELECT {SIGNATURE_COLUMNS}
                     FROM signatures WHERE campaign_id = $1 AND state = $2 AND id > $3
                     ORDER BY id LIMIT $4"
                );
                let rows = all(
                    tx,
                    sql.as_str(),
                    &[&c.id, &state, &after, &limit],
                    decode::signature_row,
                )
                .await?;
                Ok((rows, decode::count(total)))
            })
        })
    }

    fn recording(&self, slug: &str, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|tx, st, _| {
            Box::pin(async move {
                let c = campaign(tx, st, slug).await?;
                let wav = one(
                    tx,
                    "SELECT recording FROM signatures WHERE campaign_id = $1 AND id = $2",
                    &[&c.id, &id],
                    |r| r.bytes_opt("recording"),
                )
                .await?;
                Ok(wav.flatten())
            })
        })
    }

    fn recordings(&self, slug: &str) -> Result<Vec<StoredRecording>, StoreError> {
        self.read(|tx, st, _| {
            Box::pin(async move {
                let c = campaign(tx, st, slug).await?;
                all(
                    tx,
                    "SELECT id, verified, speech_ms, recording FROM signatures
                     WHERE campaign_id = $1 AND recording IS NOT NULL ORDER BY id",
                    &[&c.id],
                    decode::stored_recording,
                )
                .await
            })
        })
    }

    fn contacts(&self, slug: &str) -> Result<Vec<(i64, SealedContact)>, StoreError> {
        self.read(|tx, st, _| {
            Box::pin(async move {
                let c = campaign(tx, st, slug).await?;
                all(
                    tx,
                    "SELECT id, contact FROM signatures
                     WHERE campaign_id = $1 AND contact IS NOT NULL ORDER BY id",
                    &[&c.id],
                    decode::contact,
                )
                .await
            })
        })
    }

    fn set_states(
        &self,
        slug: &str,
        ids: &[i64],
        state: SignatureState,
        reason: &str,
        description: &str,
    ) -> Result<ReviewAction, StoreError> {
        let texts = ReviewTexts::new(reason, description)?;
        let texts = &texts;
        let state_s = state.as_str();
        self.write(|tx, st, _| {
            Box::pin(async move {
                let c = campaign(tx, st, slug).await?;
                let now = time::rfc3339_utc(SystemTime::now());
                let action = tx
                    .query_one(
                        "INSERT INTO review_actions
                             (campaign_id, at, state, reason, description, changed)
                         VALUES ($1, $2, $3, $4, $5, 0) RETURNING id",
                        &[&c.id, &now, &state_s, &texts.reason, &texts.description],
                    )
                    .await?
                    .int("id")?;
                tx.execute(
                    "INSERT INTO review_changes (action_id, signature_id, old_state)
                     SELECT $1, id, state FROM signatures
                     WHERE id = ANY($2) AND campaign_id = $3 AND state <> $4",
                    &[&action, &ids, &c.id, &state_s],
                )
                .await?;
                let changed = tx
                    .execute(
                        "UPDATE signatures SET state = $1 WHERE id IN
                             (SELECT signature_id FROM review_changes WHERE action_id = $2)",
                        &[&state_s, &action],
                    )
                    .await?;
                tx.execute(
                    "UPDATE review_actions SET changed = $1 WHERE id = $2",
                    &[&(changed as i64), &action],
                )
                .await?;
                recount_tx(tx, c.id).await?;
                let detail = texts.detail(action, changed, state);
                audit(tx, Some(slug), "review", &detail).await?;
                Ok(ReviewAction {
                    id: action,
                    changed,
                })
            })
        })
    }

    fn revert_review(&self, action_id: i64, reason: &str) -> Result<u64, StoreError> {
        let reason = reviewed_reason(reason)?;
        let reason = reason.as_str();
        self.write(|tx, _, _| {
            Box::pin(async move {
                let (campaign_id, state, reverted, slug) = one(
                    tx,
                    "SELECT a.campaign_id, a.state, a.reverted_at, c.slug
                     FROM review_actions a JOIN campaigns c ON c.id = a.campaign_id
                     WHERE a.id = $1",
                    &[&action_id],
                    |r| {
                        Ok((
                            r.int("campaign_id")?,
                            r.text("state")?,
                            r.text_opt("reverted_at")?,
                            r.text("slug")?,
                        ))
                    },
                )
                .await?
                .ok_or(StoreError::UnknownReviewAction(action_id))?;
                if reverted.is_some() {
                    return Ok(0);
                }
                let n = tx
                    .execute(
                        "UPDATE signatures s SET state = rc.old_state FROM review_changes rc
                         WHERE rc.action_id = $1 AND rc.signature_id = s.id AND s.state = $2",
                        &[&action_id, &state],
                    )
                    .await?;
                tx.execute(
                    "UPDATE review_actions SET reverted_at = $1 WHERE id = $2",
                    &[&time::rfc3339_utc(SystemTime::now()), &action_id],
                )
                .await?;
                recount_tx(tx, campaign_id).await?;
                let detail = revert_detail(action_id, n, reason);
                audit(tx, Some(&slug), "revert", &detail).await?;
                Ok(n)
            })
        })
    }
}

impl Retention for PgStore {
    fn apply_retention(&self, slug: &str, step: RetentionStep) -> Result<u64, StoreError> {
        self.write(|tx, st, _| {
            Box::pin(async move {
                let c = campaign(tx, st, slug).await?;
                let n = match step {
                    RetentionStep::DeleteContacts => {
                        tx.execute(
                            "UPDATE signatures SET contact = NULL
                             WHERE campaign_id = $1 AND contact IS NOT NULL",
                            &[&c.id],
                        )
                        .await?
                    }
                    RetentionStep::DeleteRecordings => {
                        tx.execute(
                            "UPDATE signatures SET recording = NULL
                             WHERE campaign_id = $1 AND recording IS NOT NULL",
                            &[&c.id],
                        )
                        .await?
                    }
                    RetentionStep::AnonymiseSignatures => {
                        tx.execute(
                            "UPDATE signatures SET caller_key = NULL, prefix_block = NULL,
                                 contact = NULL, recording = NULL, anonymised = true,
                                 created_at = substr(created_at, 1, 10) || 'T00:00:00Z'
                             WHERE campaign_id = $1 AND NOT anonymised",
                            &[&c.id],
                        )
                        .await?
                    }
                    RetentionStep::DeleteSignatures => {
                        tx.execute(
                            "DELETE FROM review_changes WHERE signature_id IN
                                 (SELECT id FROM signatures WHERE campaign_id = $1)",
                            &[&c.id],
                        )
                        .await?;
                        let n = tx
                            .execute("DELETE FROM signatures WHERE campaign_id = $1", &[&c.id])
                            .await?;
                        recount_tx(tx, c.id).await?;
                        n
                    }
                };
                if n > 0 {
                    audit(tx, Some(slug), "retention", &retention_detail(step, n)).await?;
                }
                Ok(n)
            })
        })
    }

    fn erase(&self, slug: &str, key: &CallerKey) -> Result<bool, StoreError> {
        let key = key.as_str();
        self.write(|tx, st, _| {
            Box::pin(async move {
                let c = campaign(tx, st, slug).await?;
                let id = one(
                    tx,
                    "DELETE FROM signatures WHERE campaign_id = $1 AND caller_key = $2
                     RETURNING id",
                    &[&c.id, &key],
                    |r| r.int("id"),
                )
                .await?;
                let Some(id) = id else {
                    return Ok(false);
                };
                tx.execute("DELETE FROM review_changes WHERE signature_id = $1", &[&id])
                    .await?;
                recount_tx(tx, c.id).await?;
                audit(tx, Some(slug), "erase", ERASE_DETAIL).await?;
                Ok(true)
            })
        })
    }
}

impl Audit for PgStore {
    fn record_audit(
        &self,
        campaign: Option<&str>,
        action: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        validate_audit(action, detail)?;
        let detail = scrub_numbers(detail);
        self.write(|tx, _, _| Box::pin(async move { audit(tx, campaign, action, &detail).await }))
    }

    fn audit_log(&self, slug: Option<&str>) -> Result<Vec<AuditEntry>, StoreError> {
        self.read_all(
            "SELECT id, at, campaign, action, detail FROM audit
             WHERE $1::TEXT IS NULL OR campaign = $1 ORDER BY id",
            &[&slug],
            decode::audit_entry,
        )
    }

    fn audit_recent(
        &self,
        slug: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.read_all(
            "SELECT id, at, campaign, action, detail FROM audit
             WHERE ($1::TEXT IS NULL OR campaign = $1) AND id < $2
             ORDER BY id DESC LIMIT $3",
            &[&slug, &before.unwrap_or(i64::MAX), &page_limit(limit)],
            decode::audit_entry,
        )
    }
}

impl Statistics for PgStore {
    fn signatures_by_minute(
        &self,
        slug: &str,
        since: SystemTime,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let since = time::rfc3339_utc(since);
        let since = since.as_str();
        self.read(|tx, st, _| {
            Box::pin(async move {
                let c = campaign(tx, st, slug).await?;
                all(
                    tx,
                    "SELECT substr(created_at, 1, 16) AS minute, count(*)::BIGINT AS n
                     FROM signatures WHERE campaign_id = $1 AND created_at >= $2
                     GROUP BY minute ORDER BY minute",
                    &[&c.id, &since],
                    decode::minute_count,
                )
                .await
            })
        })
    }

    fn funnel(
        &self,
        slug: &str,
        flow_version: Option<&str>,
        since: Option<SystemTime>,
        until: Option<SystemTime>,
    ) -> Result<Funnel, StoreError> {
        let (since, until) = unix_range(since, until);
        self.read(|tx, _, _| {
            Box::pin(async move {
                let filter = "campaign = $1 AND ($2::TEXT IS NULL OR flow_version = $2)
                     AND ended_at >= $3 AND ended_at < $4";
                let params: &Params<'_> = &[&slug, &flow_version, &since, &until];
                let histogram = all(
                    tx,
                    format!(
                        "SELECT (story_heard_ms / 1000)::BIGINT AS s, count(*)::BIGINT AS n
                         FROM call_summaries WHERE {filter} AND answered
                         GROUP BY s ORDER BY s"
                    )
                    .as_str(),
                    params,
                    decode::heard_seconds,
                )
                .await?;
                let totals = tx
                    .query_one(
                        &format!(
                            "SELECT count(*)::BIGINT AS calls,
                                count(*) FILTER (WHERE answered)::BIGINT AS answered,
                                count(*) FILTER (WHERE story_completed)::BIGINT
                                    AS story_completed,
                                count(*) FILTER (WHERE recorded)::BIGINT AS recorded,
                                count(*) FILTER (WHERE signed)::BIGINT AS signed
                             FROM call_summaries WHERE {filter}"
                        ),
                        params,
                    )
                    .await?;
                decode::funnel(&totals, &histogram)
            })
        })
    }
}

impl Calls for PgStore {
    fn load_call(&self, call_id: &str, now: SystemTime) -> Result<Option<CallState>, StoreError> {
        validate_call_id(call_id)?;
        self.read_one(
            "SELECT version, data FROM cloud_calls WHERE call_id = $1 AND expires_at > $2",
            &[&call_id, &unix_secs(now)],
            decode::call_state,
        )
    }

    fn save_call(
        &self,
        call_id: &str,
        expected: i64,
        data: &[u8],
        expires: SystemTime,
    ) -> Result<bool, StoreError> {
        validate_call_state(call_id, data)?;
        let expires = unix_secs(expires);
        self.write(|tx, _, _| {
            Box::pin(async move {
                let n = if expected == 0 {
                    tx.execute(
                        "INSERT INTO cloud_calls (call_id, version, data, expires_at)
                         VALUES ($1, 1, $2, $3) ON CONFLICT (call_id) DO NOTHING",
                        &[&call_id, &data, &expires],
                    )
                    .await?
                } else {
                    tx.execute(
                        "UPDATE cloud_calls SET version = version + 1, data = $2, expires_at = $3
                         WHERE call_id = $1 AND version = $4",
                        &[&call_id, &data, &expires, &expected],
                    )
                    .await?
                };
                Ok(n == 1)
            })
        })
    }

    fn purge_calls(&self, now: SystemTime) -> Result<u64, StoreError> {
        let now = unix_secs(now);
        self.write(|tx, _, _| {
            Box::pin(async move {
                Ok(tx
                    .execute("DELETE FROM cloud_calls WHERE expires_at <= $1", &[&now])
                    .await?)
            })
        })
    }

    fn record_calls(&self, calls: &[CallSummary]) -> Result<(), StoreError> {
        for c in calls {
            validate_summary(c)?;
        }
        self.write(|tx, _, _| {
            Box::pin(async move {
                let stmt = tx
                    .prepare(
                        "INSERT INTO call_summaries (campaign, flow_version, channel, ended_at,
                             answered, story_heard_ms, story_completed, recorded, signed)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .await?;
                for c in calls {
                    tx.execute(
                        &stmt,
                        &[
                            &c.campaign,
                            &c.flow_version,
                            &c.channel,
                            &summary_ended_at(c),
                            &c.answered,
                            &summary_heard_ms(c),
                            &c.story_completed,
                            &c.recorded,
                            &c.signed,
                        ],
                    )
                    .await?;
                }
                Ok(())
            })
        })
    }
}

impl Edits for PgStore {
    fn save_campaign_edit(
        &self,
        slug: &str,
        document: &str,
        actor: &str,
    ) -> Result<i64, StoreError> {
        validate_document(document)?;
        validate_actor(actor)?;
        self.write(|tx, st, _| {
            Box::pin(async move {
                let c = campaign(tx, st, slug).await?;
                let version = bump_edit_version(tx, c.id).await?;
                tx.execute(
                    "UPDATE campaigns SET edit_document = $2 WHERE id = $1",
                    &[&c.id, &document],
                )
                .await?;
                audit(tx, Some(slug), "campaign_edit", &edit_detail(actor)).await?;
                Ok(version)
            })
        })
    }

    fn campaign_edits(&self, slug: &str) -> Result<CampaignEdits, StoreError> {
        self.read_one(
            "SELECT edit_version, edit_document FROM campaigns WHERE slug = $1",
            &[&slug],
            decode::campaign_edits,
        )?
        .ok_or_else(|| StoreError::UnknownCampaign(slug.to_owned()))
    }

    fn save_clip(&self, slug: &str, clip: &NewClip, actor: &str) -> Result<i64, StoreError> {
        validate_clip(clip)?;
        validate_actor(actor)?;
        let duration = clip_duration(clip);
        let now = time::rfc3339_utc(SystemTime::now());
        self.write(|tx, st, _| {
            Box::pin(async move {
                let c = campaign(tx, st, slug).await?;
                let version = bump_edit_version(tx, c.id).await?;
                tx.execute(
                    "INSERT INTO campaign_clips
                       (campaign_id, name, language, wav, duration_ms, uploaded_at)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (campaign_id, name, language) DO UPDATE SET
                       wav = excluded.wav, duration_ms = excluded.duration_ms,
                       uploaded_at = excluded.uploaded_at",
                    &[
                        &c.id,
                        &clip.name,
                        &clip.language,
                        &clip.wav,
                        &duration,
                        &now,
                    ],
                )
                .await?;
                audit(tx, Some(slug), "clip_upload", &clip_detail(actor, clip)).await?;
                Ok(version)
            })
        })
    }

    fn clips(&self, slug: &str) -> Result<Vec<StoredClip>, StoreError> {
        self.read(|tx, st, _| {
            Box::pin(async move {
                let c = campaign(tx, st, slug).await?;
                all(
                    tx,
                    "SELECT name, language, wav, duration_ms, uploaded_at FROM campaign_clips
                     WHERE campaign_id = $1 ORDER BY name, language",
                    &[&c.id],
                    decode::stored_clip,
                )
                .await
            })
        })
    }

    fn reset_campaign_edits(&self, slug: &str, actor: &str) -> Result<i64, StoreError> {
        validate_actor(actor)?;
        self.write(|tx, st, _| {
            Box::pin(async move {
                let c = campaign(tx, st, slug).await?;
                let version = bump_edit_version(tx, c.id).await?;
                tx.execute(
                    "UPDATE campaigns SET edit_document = NULL WHERE id = $1",
                    &[&c.id],
                )
                .await?;
                let clips = tx
                    .execute(
                        "DELETE FROM campaign_clips WHERE campaign_id = $1",
                        &[&c.id],
                    )
                    .await?;
                let detail = reset_detail(actor, clips);
                audit(tx, Some(slug), "campaign_reset", &detail).await?;
                Ok(version)
            })
        })
    }

    fn edit_versions(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.read_all(
            "SELECT slug, edit_version FROM campaigns ORDER BY id",
            &[],
            decode::edit_version,
        )
    }
}

impl Accounts for PgStore {
    fn add_console_user(
        &self,
        name: &str,
        role: Role,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        validate_user_name(name)?;
        let now = time::rfc3339_utc(SystemTime::now());
        self.write(|tx, _, _| {
            Box::pin(async move {
                let n = tx
                    .execute(
                        "INSERT INTO console_users (name, role, password_hash, created_at)
                         VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
                        &[&name, &role.as_str(), &password_hash, &now],
                    )
                    .await?;
                if n == 1 {
                    audit(tx, None, "user created", &user_detail(name, role)).await?;
                }
                Ok(n == 1)
            })
        })
    }

    fn console_user(&self, name: &str) -> Result<Option<(ConsoleUser, String)>, StoreError> {
        self.read_one(
            "SELECT name, role, created_at, password_hash FROM console_users WHERE name = $1",
            &[&name],
            |r| Ok((decode::console_user(r)?, r.text("password_hash")?)),
        )
    }

    fn console_users(&self) -> Result<Vec<ConsoleUser>, StoreError> {
        self.read_all(
            "SELECT name, role, created_at FROM console_users ORDER BY name",
            &[],
            decode::console_user,
        )
    }

    fn set_console_password(&self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        self.write(|tx, _, _| {
            Box::pin(async move {
                let n = tx
                    .execute(
                        "UPDATE console_users SET password_hash = $2 WHERE name = $1",
                        &[&name, &password_hash],
                    )
                    .await?;
                tx.execute(
                    "DELETE FROM console_sessions WHERE user_name = $1",
                    &[&name],
                )
                .await?;
                if n == 1 {
                    audit(tx, None, "password changed", name).await?;
                }
                Ok(n == 1)
            })
        })
    }

    fn delete_console_user(&self, name: &str) -> Result<bool, StoreError> {
        self.write(|tx, _, _| {
            Box::pin(async move {
                tx.execute(
                    "DELETE FROM console_sessions WHERE user_name = $1",
                    &[&name],
                )
                .await?;
                tx.execute("DELETE FROM console_tokens WHERE user_name = $1", &[&name])
                    .await?;
                let n = tx
                    .execute("DELETE FROM console_users WHERE name = $1", &[&name])
                    .await?;
                if n == 1 {
                    audit(tx, None, "user deleted", name).await?;
                }
                Ok(n == 1)
            })
        })
    }

    fn create_console_session(
        &self,
        token_hash: &str,
        user: &str,
        csrf: &str,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        validate_token_hash(token_hash)?;
        let now = unix_secs(now);
        self.write(|tx, _, _| {
            Box::pin(async move {
                tx.execute(
                    "DELETE FROM console_sessions WHERE user_name = $1 AND token_hash NOT IN (
                         SELECT token_hash FROM console_sessions WHERE user_name = $1
                         ORDER BY last_seen DESC, created_at DESC LIMIT $2)",
                    &[&user, &(MAX_SESSIONS_PER_USER - 1)],
                )
                .await?;
                tx.execute(
                    "INSERT INTO console_sessions (token_hash, user_name, csrf, created_at, last_seen)
                     VALUES ($1, $2, $3, $4, $4)",
                    &[&token_hash, &user, &csrf, &now],
                )
                .await?;
                Ok(())
            })
        })
    }

    fn console_session(
        &self,
        token_hash: &str,
        now: SystemTime,
        limits: SessionLimits,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        if validate_token_hash(token_hash).is_err() {
            return Ok(None);
        }
        let now = unix_secs(now);
        let row = self.read_one(
            "SELECT s.user_name, u.role, s.csrf, s.created_at, s.last_seen
             FROM console_sessions s JOIN console_users u ON u.name = s.user_name
             WHERE s.token_hash = $1",
            &[&token_hash],
            decode::session_row,
        )?;
        let Some(row) = row else {
            return Ok(None);
        };
        match SessionCheck::of(row, now, limits)? {
            SessionCheck::Expired => {
                self.end_console_session(token_hash)?;
                Ok(None)
            }
            SessionCheck::Live { session, touch } => {
                if touch {
                    self.write(|tx, _, _| {
                        Box::pin(async move {
                            tx.execute(
                                "UPDATE console_sessions SET last_seen = $2 WHERE token_hash = $1",
                                &[&token_hash, &now],
                            )
                            .await?;
                            Ok(())
                        })
                    })?;
                }
                Ok(Some(session))
            }
        }
    }

    fn end_console_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.write(|tx, _, _| {
            Box::pin(async move {
                tx.execute(
                    "DELETE FROM console_sessions WHERE token_hash = $1",
                    &[&token_hash],
                )
                .await?;
                Ok(())
            })
        })
    }

    fn create_api_token(
        &self,
        token_hash: &str,
        user: &str,
        label: &str,
        now: SystemTime,
        expires: SystemTime,
    ) -> Result<bool, StoreError> {
        validate_token_hash(token_hash)?;
        validate_label(label)?;
        let now = time::rfc3339_utc(now);
        let expires = time::rfc3339_utc(expires);
        self.write(|tx, _, _| {
            Box::pin(async move {
                let exists = tx
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM console_users WHERE name = $1)
                             AS user_exists",
                        &[&user],
                    )
                    .await?
                    .flag("user_exists")?;
                if !exists {
                    return Ok(false);
                }
                let n = tx
                    .execute(
                        "INSERT INTO console_tokens
                             (token_hash, user_name, label, created_at, expires_at)
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                        &[&token_hash, &user, &label, &now, &expires],
                    )
                    .await?;
                if n == 1 {
                    audit(tx, None, "API token created", &token_detail(user, label)).await?;
                }
                Ok(n == 1)
            })
        })
    }

    fn api_token_user(
        &self,
        token_hash: &str,
        now: SystemTime,
    ) -> Result<Option<ConsoleUser>, StoreError> {
        if validate_token_hash(token_hash).is_err() {
            return Ok(None);
        }
        self.read_one(
            "SELECT u.name, u.role, u.created_at
             FROM console_tokens t JOIN console_users u ON u.name = t.user_name
             WHERE t.token_hash = $1 AND t.expires_at > $2",
            &[&token_hash, &time::rfc3339_utc(now)],
            decode::console_user,
        )
    }

    fn api_tokens(&self) -> Result<Vec<ApiTokenInfo>, StoreError> {
        self.read_all(
            "SELECT user_name, label, created_at, expires_at FROM console_tokens
             ORDER BY user_name, label",
            &[],
            decode::api_token_info,
        )
    }

    fn delete_api_token(&self, user: &str, label: &str) -> Result<bool, StoreError> {
        self.write(|tx, _, _| {
            Box::pin(async move {
                let n = tx
                    .execute(
                        "DELETE FROM console_tokens WHERE user_name = $1 AND label = $2",
                        &[&user, &label],
                    )
                    .await?;
                if n == 1 {
                    audit(tx, None, "API token deleted", &token_detail(user, label)).await?;
                }
                Ok(n == 1)
            })
        })
    }

    fn secret_fingerprint(&self) -> Result<Option<String>, StoreError> {
        self.read_one(
            "SELECT fingerprint FROM secret_fingerprint WHERE id = 1",
            &[],
            |r| r.text("fingerprint"),
        )
    }

    fn swap_secret_fingerprint(
        &self,
        expected: Option<&str>,
        new: &str,
    ) -> Result<bool, StoreError> {
        validate_fingerprint(new)?;
        let now = time::rfc3339_utc(SystemTime::now());
        let now = now.as_str();
        self.write(|tx, _, _| {
            Box::pin(async move {
                let changed = match expected {
                    None => {
                        tx.execute(
                            "INSERT INTO secret_fingerprint (id, fingerprint, set_at)
                             VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING",
                            &[&new, &now],
                        )
                        .await?
                    }
                    Some(old) => {
                        tx.execute(
                            "UPDATE secret_fingerprint SET fingerprint = $1, set_at = $2
                             WHERE id = 1 AND fingerprint = $3",
                            &[&new, &now, &old],
                        )
                        .await?
                    }
                };
                Ok(changed == 1)
            })
        })
    }
}

/// Ties the transaction's lifetime `'a` to the captured arguments' `'c` (`'c: 'a`), so that
/// the closures of `read` and `write` may borrow their caller's arguments.
type Scope<'a, 'c> = std::marker::PhantomData<&'a &'c ()>;

type TxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

impl PgStore {
    fn has_signed_identity_inner(
        &self,
        slug: &str,
        key: &CallerKey,
        previous: Option<&CallerKey>,
    ) -> Result<bool, StoreError> {
        let found = self.read(|tx, st, _| {
            Box::pin(async move {
                let c = campaign(tx, st, slug).await?;
                find_key(tx, st, c.id, key, previous).await
            })
        })?;
        if let (Some(false), Some(old)) = (found, previous) {
            self.write(|tx, st, _| {
                Box::pin(async move {
                    tx.execute(&st.rekey, &[&key.as_str(), &old.as_str()])
                        .await?;
                    Ok(())
                })
            })?;
        }
        Ok(found.is_some())
    }

    /// Every row of `sql`, decoded, in a read-only transaction.
    fn read_all<T: Send>(
        &self,
        sql: &str,
        params: &Params<'_>,
        decode: impl Fn(&dyn Columns) -> Result<T, StoreError> + Send,
    ) -> Result<Vec<T>, StoreError> {
        self.read(|tx, _, _| Box::pin(all(tx, sql, params, decode)))
    }

    /// The row of `sql`, if there is one, decoded, in a read-only transaction.
    fn read_one<T: Send>(
        &self,
        sql: &str,
        params: &Params<'_>,
        decode: impl FnOnce(&dyn Columns) -> Result<T, StoreError> + Send,
    ) -> Result<Option<T>, StoreError> {
        self.read(|tx, _, _| Box::pin(one(tx, sql, params, decode)))
    }

    /// Runs `f` in a transaction on the writer connection and commits it.
    fn write<'c, T: Send>(
        &self,
        f: impl for<'a> FnOnce(&'a Transaction<'a>, &'a Prepared, Scope<'a, 'c>) -> TxFuture<'a, T>
            + Send
            + 'c,
    ) -> Result<T, StoreError> {
        self.block(async {
            let mut w = self.inner.writer().await?;
            let conn = client_of(&mut w)?;
            let tx = conn.client.transaction().await?;
            let out = f(&tx, &conn.st, std::marker::PhantomData).await?;
            tx.commit().await?;
            Ok(out)
        })
    }

    /// Runs `f` in a read-only transaction (one snapshot) on the reader connection.
    fn read<'c, T: Send>(
        &self,
        f: impl for<'a> FnOnce(&'a Transaction<'a>, &'a Prepared, Scope<'a, 'c>) -> TxFuture<'a, T>
            + Send
            + 'c,
    ) -> Result<T, StoreError> {
        self.block(async {
            let mut r = self.inner.reader().await?;
            let conn = client_of(&mut r)?;
            let tx = conn
                .client
                .build_transaction()
                .read_only(true)
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .start()
                .await?;
            let out = f(&tx, &conn.st, std::marker::PhantomData).await?;
            tx.commit().await?;
            Ok(out)
        })
    }
}
