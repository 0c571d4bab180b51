//! The SQLite backend: one database file in WAL mode, every commit fsync'd.
//!
//! Concurrency: all writes go through one `Mutex<Connection>`. Signatures reach it through the
//! group committer (see `group.rs`): one thread writes every signature queued at that moment in
//! one transaction, one fsync for the group. Reads use a few connections of their own
//! ([`READERS`], each behind its own mutex), so a call asking "signed before?" waits neither
//! behind a writer's fsync (WAL lets a reader see the last commit while a write is running) nor
//! behind a long read such as an export or the public page's statistics. Write transactions are `BEGIN IMMEDIATE`, so
//! another process on the same file waits on `busy_timeout` instead of failing halfway.
//! `secure_delete` is on, so erased recordings and keys are overwritten, not left in free pages.
//!
//! Checkpoints (copying the WAL back into the database file) run on a thread and connection of
//! their own ([`Checkpointer`]), not inside the commit that crosses SQLite's automatic
//! threshold: a signature's commit waits for its own fsync only. The writer keeps a large page
//! cache so that a commit group rarely spills pages or reads them back from the file.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use rusqlite::{params, Connection, Params, Row, Transaction, TransactionBehavior};

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

/// How long a connection waits for another writer (another process on the same file).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema migrations; migration `i` takes `PRAGMA user_version` from `i` to `i + 1`.
/// Append only: never edit a migration that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: the walking skeleton's schema.
    "CREATE TABLE campaigns (
        id    INTEGER PRIMARY KEY,
        slug  TEXT UNIQUE NOT NULL,
        title TEXT NOT NULL
    );
    CREATE TABLE signatures (
        id          INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        caller_key  TEXT NULL,
        verified    INTEGER NOT NULL CHECK (verified IN (0, 1)),
        channel     TEXT NOT NULL,
        speech_ms   INTEGER NOT NULL CHECK (speech_ms >= 0),
        recording   BLOB NOT NULL CHECK (length(recording) > 0),
        created_at  TEXT NOT NULL,
        -- A verified signature has a caller key, an unverified one never has.
        CHECK ((verified = 1) = (caller_key IS NOT NULL))
    );
    CREATE UNIQUE INDEX signatures_one_per_caller
        ON signatures (campaign_id, caller_key) WHERE caller_key IS NOT NULL;
    -- Covers recount, so it never reads the recordings.
    CREATE INDEX signatures_by_campaign ON signatures (campaign_id, verified);
    CREATE TABLE counters (
        campaign_id INTEGER PRIMARY KEY REFERENCES campaigns(id),
        signatures  INTEGER NOT NULL CHECK (signatures >= 0),
        unverified  INTEGER NOT NULL CHECK (unverified >= 0)
    );",
    // 2: the registry: classification, state and trust, contact, retention, sharded counters
    // per state, campaign policies, review actions and the audit log. The signatures table is
    // rebuilt because its CHECKs change (recordings and keys can now be dropped by retention).
    "CREATE TABLE signatures_v2 (
        id           INTEGER PRIMARY KEY,
        campaign_id  INTEGER NOT NULL REFERENCES campaigns(id),
        caller_key   TEXT NULL,
        verified     INTEGER NOT NULL CHECK (verified IN (0, 1)),
        channel      TEXT NOT NULL,
        speech_ms    INTEGER NOT NULL CHECK (speech_ms >= 0),
        recording    BLOB NULL CHECK (recording IS NULL OR length(recording) > 0),
        created_at   TEXT NOT NULL,
        state        TEXT NOT NULL CHECK (state IN ('pending', 'valid', 'invalid', 'fraudulent')),
        trust        TEXT NOT NULL CHECK (trust IN ('network', 'from', 'withheld')),
        country      TEXT NULL,
        number_kind  TEXT NULL,
        be_region    TEXT NULL CHECK (be_region IN ('flanders', 'wallonia', 'brussels')),
        prefix_block TEXT NULL,
        flow_version TEXT NULL,
        contact      BLOB NULL,
        anonymised   INTEGER NOT NULL DEFAULT 0 CHECK (anonymised IN (0, 1)),
        -- Only a verified signature has a key (an anonymised one has none either).
        CHECK (verified = 1 OR caller_key IS NULL)
    );
    INSERT INTO signatures_v2 (id, campaign_id, caller_key, verified, channel, speech_ms,
                               recording, created_at, state, trust)
        SELECT id, campaign_id, caller_key, verified, channel, speech_ms, recording, created_at,
               'pending', CASE verified WHEN 1 THEN 'from' ELSE 'withheld' END
        FROM signatures;
    DROP TABLE signatures;
    ALTER TABLE signatures_v2 RENAME TO signatures;
    CREATE UNIQUE INDEX signatures_one_per_caller
        ON signatures (campaign_id, caller_key) WHERE caller_key IS NOT NULL;
    CREATE INDEX signatures_by_key ON signatures (caller_key) WHERE caller_key IS NOT NULL;
    -- Covers recount, so it never reads the recordings.
    CREATE INDEX signatures_by_campaign ON signatures (campaign_id, verified, state);
    DROP TABLE counters;
    CREATE TABLE counters (
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        shard       INTEGER NOT NULL,
        verified    INTEGER NOT NULL CHECK (verified IN (0, 1)),
        state       TEXT NOT NULL,
        n           INTEGER NOT NULL,
        PRIMARY KEY (campaign_id, shard, verified, state)
    ) WITHOUT ROWID;
    INSERT INTO counters (campaign_id, shard, verified, state, n)
        SELECT campaign_id, 0, verified, state, count(*) FROM signatures
        GROUP BY campaign_id, verified, state;
    ALTER TABLE campaigns ADD COLUMN count_policy TEXT NOT NULL DEFAULT 'all_non_invalid';
    ALTER TABLE campaigns ADD COLUMN closes_at TEXT NULL;
    ALTER TABLE campaigns ADD COLUMN recordings_days INTEGER NULL;
    ALTER TABLE campaigns ADD COLUMN signatures_days INTEGER NULL;
    ALTER TABLE campaigns ADD COLUMN signature_retention TEXT NOT NULL DEFAULT 'anonymise';
    ALTER TABLE campaigns ADD COLUMN keep_contact INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE campaigns ADD COLUMN threshold_flanders INTEGER NOT NULL DEFAULT 14500;
    ALTER TABLE campaigns ADD COLUMN threshold_wallonia INTEGER NOT NULL DEFAULT 8000;
    ALTER TABLE campaigns ADD COLUMN threshold_brussels INTEGER NOT NULL DEFAULT 2500;
    CREATE TABLE review_actions (
        id          INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        at          TEXT NOT NULL,
        state       TEXT NOT NULL,
        reason      TEXT NOT NULL,
        description TEXT NOT NULL,
        changed     INTEGER NOT NULL,
        reverted_at TEXT NULL
    );
    CREATE TABLE review_changes (
        action_id    INTEGER NOT NULL REFERENCES review_actions(id),
        signature_id INTEGER NOT NULL,
        old_state    TEXT NOT NULL,
        PRIMARY KEY (action_id, signature_id)
    ) WITHOUT ROWID;
    CREATE INDEX review_changes_by_signature ON review_changes (signature_id);
    CREATE TABLE audit (
        id       INTEGER PRIMARY KEY,
        at       TEXT NOT NULL,
        campaign TEXT NULL,
        action   TEXT NOT NULL,
        detail   TEXT NOT NULL
    );",
    // 3: cloud telephony calls between provider webhooks (crates/cloud).
    "CREATE TABLE cloud_calls (
        call_id    TEXT PRIMARY KEY,
        version    INTEGER NOT NULL,
        data       BLOB NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX cloud_calls_expiry ON cloud_calls (expires_at);",
    // 4: campaign edits and uploaded clips (edits.rs).
    "ALTER TABLE campaigns ADD COLUMN edit_version INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE campaigns ADD COLUMN edit_document TEXT NULL;
    CREATE TABLE campaign_clips (
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        name        TEXT NOT NULL,
        language    TEXT NOT NULL,
        wav         BLOB NOT NULL,
        duration_ms INTEGER NOT NULL CHECK (duration_ms >= 0),
        uploaded_at TEXT NOT NULL,
        PRIMARY KEY (campaign_id, name, language)
    );",
    // 5: console users, sessions and API tokens; per-call summaries for the funnel.
    "CREATE TABLE console_users (
        name          TEXT PRIMARY KEY,
        role          TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_at    TEXT NOT NULL
    );
    CREATE TABLE console_sessions (
        token_hash TEXT PRIMARY KEY,
        user_name  TEXT NOT NULL REFERENCES console_users(name) ON DELETE CASCADE,
        csrf       TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL
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
        id              INTEGER PRIMARY KEY,
        campaign        TEXT NOT NULL,
        flow_version    TEXT NULL,
        channel         TEXT NOT NULL,
        ended_at        INTEGER NOT NULL,
        answered        INTEGER NOT NULL,
        story_heard_ms  INTEGER NOT NULL,
        story_completed INTEGER NOT NULL,
        recorded        INTEGER NOT NULL,
        signed          INTEGER NOT NULL
    );
    CREATE INDEX call_summaries_by_campaign ON call_summaries (campaign, ended_at);",
    // The fingerprint of the secret the caller keys are made with (one row; never the key).
    "CREATE TABLE secret_fingerprint (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        fingerprint TEXT NOT NULL,
        set_at      TEXT NOT NULL
    );",
    // 7: API tokens expire; those made before expire 90 days after this migration.
    "ALTER TABLE console_tokens ADD COLUMN expires_at TEXT NOT NULL DEFAULT '';
    UPDATE console_tokens SET expires_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '+90 days');",
];

/// The SQLite store. See the module documentation for its concurrency model.
pub struct SqliteStore {
    // Declared first so it is dropped first: its thread finishes the queue while the
    // connections are still open.
    committer: Committer,
    // Stopped (and joined) after the committer's last commit.
    _checkpointer: Checkpointer,
    writer: Arc<Mutex<Connection>>,
    readers: Vec<Mutex<Connection>>,
    next_reader: std::sync::atomic::AtomicUsize,
}

/// Read connections: a read takes a free one, so one long read holds up none of the others.
pub const READERS: usize = 4;
/// How much of the database file a reader maps into memory (address space, not RAM).
const READER_MMAP_BYTES: i64 = 1 << 30;

/// How often the checkpointer copies the WAL's new pages back (a checkpoint with nothing new
/// to copy costs nothing).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Pages of WAL past which the checkpointer also waits for readers and truncates the file, so
/// that a long read cannot make the WAL grow without bound.
const CHECKPOINT_TRUNCATE_PAGES: i64 = 64 * 1024;

/// The writer's page cache, in KiB (negative `cache_size` in SQLite's terms).
const WRITER_CACHE_KIB: i64 = 64 * 1024;

/// A thread that checkpoints the WAL on its own connection; stops when dropped.
struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("store-sqlite-checkpoint".into())
            .spawn(move || loop {
                match stopped.recv_timeout(CHECKPOINT_EVERY) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => {
                        // Stopping: one last passive checkpoint, as closing would do.
                        let _ = checkpoint(&conn, "PASSIVE");
                        return;
                    }
                }
                match checkpoint(&conn, "PASSIVE") {
                    Ok(left) if left > CHECKPOINT_TRUNCATE_PAGES => {
                        let _ = checkpoint(&conn, "TRUNCATE");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
                }
            })
            .map_err(|source| StoreError::Io {
                what: "cannot start the checkpoint thread",
                source,
            })?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// Runs a checkpoint; returns the WAL pages not yet copied back (a reader still needs them).
fn checkpoint(conn: &Connection, mode: &str) -> Result<i64, StoreError> {
    let (_busy, log, done): (i64, i64, i64) =
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
            Ok((r.get("busy")?, r.get("log")?, r.get("checkpointed")?))
        })?;
    Ok((log - done).max(0))
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates its schema.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let mut writer = Connection::open(path)?;
        configure(&writer)?;
        let mode: String =
            writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get("journal_mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Invalid {
                what: "database",
                why: "cannot switch to WAL mode",
            });
        }
        migrate(&mut writer)?;
        // Checkpoints are the checkpointer's (see the module documentation).
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        writer.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        let checkpointer = Checkpointer::start(path)?;
        let readers = (0..READERS)
            .map(|_| {
                let reader = Connection::open(path)?;
                configure(&reader)?;
                reader.pragma_update(None, "query_only", true)?;
                // Pages of the database file are read through a memory map, not one pread
                // each: every commit elsewhere empties a reader's page cache.
                reader.pragma_update(None, "mmap_size", READER_MMAP_BYTES)?;
                Ok(Mutex::new(reader))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let writer = Arc::new(Mutex::new(writer));
        let committer_conn = Arc::clone(&writer);
        let mut group: u64 = 0;
        let commit: CommitFn = Box::new(move |sigs: &[NewSignature]| {
            group = group.wrapping_add(1);
            let mut conn = lock(&committer_conn);
            commit_group(&mut conn, sigs, (group % COUNTER_SHARDS) as i64)
        });
        Ok(SqliteStore {
            committer: Committer::start("store-sqlite-commit", commit)?,
            _checkpointer: checkpointer,
            writer,
            readers,
            next_reader: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        lock(&self.writer)
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        // Readers hold no transaction across calls; see `lock`. A free connection if there is
        // one, else wait for the next in turn.
        let first = self
            .next_reader
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let n = self.readers.len();
        let in_turn = || self.readers.iter().cycle().skip(first % n.max(1)).take(n);
        for r in in_turn() {
            match r.try_lock() {
                Ok(conn) => return conn,
                Err(std::sync::TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
        }
        // There are READERS of them; the writer would serve a read as well.
        in_turn()
            .next()
            .unwrap_or(&self.writer)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write_tx<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    fn read_tx<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.reader();
        // One read transaction, so everything comes from the same snapshot.
        let tx = conn.transaction()?;
        f(&tx)
    }
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock drops its open transaction, which rolls back; the
    // connection is then as good as before, so poisoning is safe to ignore.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // FULL: in WAL mode, fsync the log on every commit, so a signature the caller was told
    // about survives a power cut.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "secure_delete", true)?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let supported = MIGRATIONS.len() as i64;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get("user_version"))?;
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
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

impl Columns for Row<'_> {
    fn text(&self, column: &str) -> Result<String, StoreError> {
        Ok(self.get(column)?)
    }
    fn text_opt(&self, column: &str) -> Result<Option<String>, StoreError> {
        Ok(self.get(column)?)
    }
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        Ok(self.get(column)?)
    }
    fn int_opt(&self, column: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.get(column)?)
    }
    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        Ok(self.get(column)?)
    }
    fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError> {
        Ok(self.get(column)?)
    }
    fn bytes_opt(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get(column)?)
    }
}

/// Every row of `sql`, decoded.
fn all<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: impl Fn(&dyn Columns) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(decode(r)?);
    }
    Ok(out)
}

/// The first row of `sql`, if there is one, decoded.
fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: impl FnOnce(&dyn Columns) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    rows.next()?.map(|r| decode(r)).transpose()
}

fn campaign(conn: &Connection, slug: &str) -> Result<CampaignRef, StoreError> {
    one(
        conn,
        "SELECT id, count_policy, keep_contact FROM campaigns WHERE slug = ?1",
        [slug],
        decode::campaign_ref,
    )?
    .ok_or_else(|| StoreError::UnknownCampaign(slug.to_owned()))
}

fn read_counts(conn: &Connection, c: &CampaignRef) -> Result<Counts, StoreError> {
    let rows = all(
        conn,
        "SELECT verified, state, sum(n) AS n FROM counters WHERE campaign_id = ?1
         GROUP BY verified, state",
        [c.id],
        decode::counter,
    )?;
    fold_counts(rows, c.policy)
}

/// Rebuilds the campaign's counters from its rows (into shard 0).
fn recount_tx(conn: &Connection, campaign_id: i64) -> Result<(), StoreError> {
    conn.execute("DELETE FROM counters WHERE campaign_id = ?1", [campaign_id])?;
    conn.execute(
        "INSERT INTO counters (campaign_id, shard, verified, state, n)
         SELECT campaign_id, 0, verified, state, count(*) FROM signatures
         WHERE campaign_id = ?1 GROUP BY campaign_id, verified, state",
        [campaign_id],
    )?;
    Ok(())
}

fn audit(
    conn: &Connection,
    campaign: Option<&str>,
    action: &str,
    detail: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO audit (at, campaign, action, detail) VALUES (?1, ?2, ?3, ?4)",
        params![
            time::rfc3339_utc(SystemTime::now()),
            campaign,
            action,
            detail
        ],
    )?;
    Ok(())
}

/// Increments the campaign's edit version; returns the new one.
fn bump_edit_version(conn: &Connection, campaign_id: i64) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "UPDATE campaigns SET edit_version = edit_version + 1 WHERE id = ?1
         RETURNING edit_version",
        [campaign_id],
        |r| r.get("edit_version"),
    )?)
}

/// Which of `key` / `previous` has a signature in the campaign (see [`key_found`]).
fn find_key(
    conn: &Connection,
    campaign_id: i64,
    key: &CallerKey,
    previous: Option<&CallerKey>,
) -> Result<Option<bool>, StoreError> {
    let prev = previous.unwrap_or(key);
    let found = all(
        conn,
        "SELECT caller_key FROM signatures WHERE campaign_id = ?1 AND caller_key IN (?2, ?3)",
        params![campaign_id, key.as_str(), prev.as_str()],
        |r| r.text("caller_key"),
    )?;
    Ok(key_found(found.iter().map(String::as_str), key))
}

/// Moves every signature of `old` to `new` (all campaigns), except where `new` already signed.
fn rekey(conn: &Connection, new: &CallerKey, old: &CallerKey) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE signatures SET caller_key = ?1 WHERE caller_key = ?2 AND NOT EXISTS (
             SELECT 1 FROM signatures s2
             WHERE s2.campaign_id = signatures.campaign_id AND s2.caller_key = ?1)",
    )?
    .execute(params![new.as_str(), old.as_str()])?;
    Ok(())
}

fn commit_group(
    conn: &mut Connection,
    sigs: &[NewSignature],
    shard: i64,
) -> Result<Vec<SignOutcome>, StoreError> {
    let created_at = time::rfc3339_utc(SystemTime::now());
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut campaigns: HashMap<&str, CampaignRef> = HashMap::new();
    let mut deltas: HashMap<(i64, bool), i64> = HashMap::new();
    let mut written = Vec::with_capacity(sigs.len());
    for sig in sigs {
        validate_signature(sig)?;
        if !campaigns.contains_key(sig.campaign.as_str()) {
            let row = campaign(&tx, &sig.campaign)?;
            campaigns.insert(&sig.campaign, row);
        }
        let c = campaigns
            .get(sig.campaign.as_str())
            .ok_or(StoreError::Corrupt("campaign looked up above is missing"))?;
        if let CallerIdentity::Verified { key, previous, .. } = &sig.caller {
            match find_key(&tx, c.id, key, previous.as_ref())? {
                Some(true) => {
                    written.push((c.id, Written::Already));
                    continue;
                }
                Some(false) => {
                    if let Some(old) = previous {
                        rekey(&tx, key, old)?;
                    }
                    written.push((c.id, Written::Already));
                    continue;
                }
                None => {}
            }
        }
        let v = SignatureValues::of(sig, c.keep_contact);
        let inserted = tx
            .prepare_cached(
                "INSERT INTO signatures (campaign_id, caller_key, verified, channel, speech_ms,
                     recording, created_at, state, trust, country, number_kind, be_region,
                     prefix_block, flow_version, contact)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                c.id,
                v.key,
                v.verified,
                v.channel,
                v.speech_ms,
                v.recording,
                created_at,
                v.trust,
                v.country,
                v.number_kind,
                v.be_region,
                v.prefix_block,
                v.flow_version,
                v.contact,
            ])?;
        if inserted == 0 {
            // The same caller twice in this group: the unique index kept the first.
            written.push((c.id, Written::Already));
            continue;
        }
        *deltas.entry((c.id, v.verified)).or_default() += 1;
        written.push((c.id, Written::stored(v.verified)));
    }
    for ((campaign_id, verified), n) in deltas {
        tx.prepare_cached(
            "INSERT INTO counters (campaign_id, shard, verified, state, n)
             VALUES (?1, ?2, ?3, 'pending', ?4)
             ON CONFLICT (campaign_id, shard, verified, state) DO UPDATE SET n = n + excluded.n",
        )?
        .execute(params![campaign_id, shard, verified, n])?;
    }
    let mut counts: HashMap<i64, Counts> = HashMap::new();
    for c in campaigns.values() {
        counts.insert(c.id, read_counts(&tx, c)?);
    }
    // With synchronous=FULL the commit returns after the WAL is fsync'd.
    tx.commit()?;
    outcomes(written, &counts)
}

impl Campaigns for SqliteStore {
    fn ensure_campaign(&self, slug: &str, title: &str) -> Result<(), StoreError> {
        validate_campaign(slug, title)?;
        self.write_tx(|tx| {
            tx.execute(
                "INSERT INTO campaigns (slug, title) VALUES (?1, ?2)
                 ON CONFLICT (slug) DO UPDATE SET title = excluded.title",
                params![slug, title],
            )?;
            Ok(())
        })
    }

    fn configure_campaign(
        &self,
        slug: &str,
        settings: &CampaignSettings,
    ) -> Result<(), StoreError> {
        let s = SettingsValues::of(settings);
        self.write_tx(|tx| {
            let n = tx.execute(
                "UPDATE campaigns SET count_policy = ?2, closes_at = ?3, recordings_days = ?4,
                     signatures_days = ?5, signature_retention = ?6, keep_contact = ?7,
                     threshold_flanders = ?8, threshold_wallonia = ?9, threshold_brussels = ?10
                 WHERE slug = ?1",
                params![
                    slug,
                    s.count_policy,
                    s.closes_at,
                    s.recordings_days,
                    s.signatures_days,
                    s.signature_retention,
                    s.keep_contact,
                    s.thresholds[0],
                    s.thresholds[1],
                    s.thresholds[2],
                ],
            )?;
            if n == 0 {
                return Err(StoreError::UnknownCampaign(slug.to_owned()));
            }
            Ok(())
        })
    }

    fn campaign_settings(&self, slug: &str) -> Result<CampaignSettings, StoreError> {
        one(
            &self.reader(),
            &format!("SELECT {SETTINGS_COLUMNS} FROM campaigns WHERE slug = ?1"),
            [slug],
            decode::campaign_settings,
        )?
        .ok_or_else(|| StoreError::UnknownCampaign(slug.to_owned()))
    }

    fn campaigns(&self) -> Result<Vec<String>, StoreError> {
        all(
            &self.reader(),
            "SELECT slug FROM campaigns ORDER BY id",
            [],
            |r| r.text("slug"),
        )
    }
}

impl Signing for SqliteStore {
    fn has_signed(&self, slug: &str, key: &CallerKey) -> Result<bool, StoreError> {
        let conn = self.reader();
        let c = campaign(&conn, slug)?;
        Ok(find_key(&conn, c.id, key, None)?.is_some())
    }

    fn has_signed_identity(&self, slug: &str, caller: &CallerIdentity) -> Result<bool, StoreError> {
        let CallerIdentity::Verified { key, previous, .. } = caller else {
            return Ok(false);
        };
        let found = {
            let conn = self.reader();
            let c = campaign(&conn, slug)?;
            find_key(&conn, c.id, key, previous.as_ref())?
        };
        if let (Some(false), Some(old)) = (found, previous) {
            self.write_tx(|tx| rekey(tx, key, old))?;
        }
        Ok(found.is_some())
    }

    fn sign(&self, sig: NewSignature) -> Result<SignOutcome, StoreError> {
        // Checked here too, so a bad signature fails alone without costing its group a retry.
        validate_signature(&sig)?;
        self.committer.sign(sig)
    }

    fn counts(&self, slug: &str) -> Result<Counts, StoreError> {
        self.read_tx(|tx| {
            let c = campaign(tx, slug)?;
            read_counts(tx, &c)
        })
    }

    fn recount(&self, slug: &str) -> Result<Counts, StoreError> {
        self.write_tx(|tx| {
            let c = campaign(tx, slug)?;
            recount_tx(tx, c.id)?;
            read_counts(tx, &c)
        })
    }
}

impl Review for SqliteStore {
    fn signature_rows(&self, slug: &str) -> Result<Vec<SignatureRow>, StoreError> {
        self.read_tx(|tx| {
            let c = campaign(tx, slug)?;
            all(
                tx,
                &format!(
                    "SELECT {SIGNATURE_COLUMNS} FROM signatures WHERE campaign_id = ?1 ORDER BY id"
                ),
                [c.id],
                decode::signature_row,
            )
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
        self.read_tx(|tx| {
            let c = campaign(tx, slug)?;
            let total: i64 = tx.query_row(
                "SELECT count(*) AS n FROM signatures WHERE campaign_id = ?1 AND state = ?2",
                params![c.id, state.as_str()],
                |r| r.get("n"),
            )?;
            let rows = all(
                tx,
                &format!(
                    "SELECT {SIGNATURE_COLUMNS}
                     FROM signatures WHERE campaign_id = ?1 AND state = ?2 AND id > ?3
                     ORDER BY id LIMIT ?4"
                ),
                params![c.id, state.as_str(), after, limit],
                decode::signature_row,
            )?;
            Ok((rows, decode::count(total)))
        })
    }

    fn recording(&self, slug: &str, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.read_tx(|tx| {
            let c = campaign(tx, slug)?;
            Ok(one(
                tx,
                "SELECT recording FROM signatures WHERE campaign_id = ?1 AND id = ?2",
                params![c.id, id],
                |r| r.bytes_opt("recording"),
            )?
            .flatten())
        })
    }

    fn recordings(&self, slug: &str) -> Result<Vec<StoredRecording>, StoreError> {
        self.read_tx(|tx| {
            let c = campaign(tx, slug)?;
            all(
                tx,
                "SELECT id, verified, speech_ms, recording FROM signatures
                 WHERE campaign_id = ?1 AND recording IS NOT NULL ORDER BY id",
                [c.id],
                decode::stored_recording,
            )
        })
    }

    fn contacts(&self, slug: &str) -> Result<Vec<(i64, SealedContact)>, StoreError> {
        self.read_tx(|tx| {
            let c = campaign(tx, slug)?;
            all(
                tx,
                "SELECT id, contact FROM signatures
                 WHERE campaign_id = ?1 AND contact IS NOT NULL ORDER BY id",
                [c.id],
                decode::contact,
            )
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
        self.write_tx(|tx| {
            let c = campaign(tx, slug)?;
            let now = time::rfc3339_utc(SystemTime::now());
            tx.execute(
                "INSERT INTO review_actions (campaign_id, at, state, reason, description, changed)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                params![c.id, now, state.as_str(), texts.reason, texts.description],
            )?;
            let action = tx.last_insert_rowid();
            {
                let mut stmt = tx.prepare(
                    "INSERT INTO review_changes (action_id, signature_id, old_state)
                     SELECT ?1, id, state FROM signatures
                     WHERE id = ?2 AND campaign_id = ?3 AND state <> ?4",
                )?;
                for id in ids {
                    stmt.execute(params![action, id, c.id, state.as_str()])?;
                }
            }
            let changed = tx.execute(
                "UPDATE signatures SET state = ?1
                 WHERE id IN (SELECT signature_id FROM review_changes WHERE action_id = ?2)",
                params![state.as_str(), action],
            )? as u64;
            tx.execute(
                "UPDATE review_actions SET changed = ?1 WHERE id = ?2",
                params![changed as i64, action],
            )?;
            recount_tx(tx, c.id)?;
            audit(
                tx,
                Some(slug),
                "review",
                &texts.detail(action, changed, state),
            )?;
            Ok(ReviewAction {
                id: action,
                changed,
            })
        })
    }

    fn revert_review(&self, action_id: i64, reason: &str) -> Result<u64, StoreError> {
        let reason = reviewed_reason(reason)?;
        self.write_tx(|tx| {
            let (campaign_id, state, reverted, slug) = one(
                tx,
                "SELECT a.campaign_id, a.state, a.reverted_at, c.slug
                 FROM review_actions a JOIN campaigns c ON c.id = a.campaign_id
                 WHERE a.id = ?1",
                [action_id],
                |r| {
                    Ok((
                        r.int("campaign_id")?,
                        r.text("state")?,
                        r.text_opt("reverted_at")?,
                        r.text("slug")?,
                    ))
                },
            )?
            .ok_or(StoreError::UnknownReviewAction(action_id))?;
            if reverted.is_some() {
                return Ok(0);
            }
            let n = tx.execute(
                "UPDATE signatures SET state = (
                     SELECT old_state FROM review_changes rc
                     WHERE rc.action_id = ?1 AND rc.signature_id = signatures.id)
                 WHERE id IN (SELECT signature_id FROM review_changes WHERE action_id = ?1)
                   AND state = ?2",
                params![action_id, state],
            )? as u64;
            tx.execute(
                "UPDATE review_actions SET reverted_at = ?1 WHERE id = ?2",
                params![time::rfc3339_utc(SystemTime::now()), action_id],
            )?;
            recount_tx(tx, campaign_id)?;
            audit(
                tx,
                Some(&slug),
                "revert",
                &revert_detail(action_id, n, &reason),
            )?;
            Ok(n)
        })
    }
}

impl Retention for SqliteStore {
    fn apply_retention(&self, slug: &str, step: RetentionStep) -> Result<u64, StoreError> {
        self.write_tx(|tx| {
            let c = campaign(tx, slug)?;
            let n = match step {
                RetentionStep::DeleteContacts => tx.execute(
                    "UPDATE signatures SET contact = NULL
                     WHERE campaign_id = ?1 AND contact IS NOT NULL",
                    [c.id],
                )?,
                RetentionStep::DeleteRecordings => tx.execute(
                    "UPDATE signatures SET recording = NULL
                     WHERE campaign_id = ?1 AND recording IS NOT NULL",
                    [c.id],
                )?,
                RetentionStep::AnonymiseSignatures => tx.execute(
                    "UPDATE signatures SET caller_key = NULL, prefix_block = NULL,
                         contact = NULL, recording = NULL, anonymised = 1,
                         created_at = substr(created_at, 1, 10) || 'T00:00:00Z'
                     WHERE campaign_id = ?1 AND anonymised = 0",
                    [c.id],
                )?,
                RetentionStep::DeleteSignatures => {
                    tx.execute(
                        "DELETE FROM review_changes WHERE signature_id IN
                             (SELECT id FROM signatures WHERE campaign_id = ?1)",
                        [c.id],
                    )?;
                    let n = tx.execute("DELETE FROM signatures WHERE campaign_id = ?1", [c.id])?;
                    recount_tx(tx, c.id)?;
                    n
                }
            } as u64;
            if n > 0 {
                audit(tx, Some(slug), "retention", &retention_detail(step, n))?;
            }
            Ok(n)
        })
    }

    fn erase(&self, slug: &str, key: &CallerKey) -> Result<bool, StoreError> {
        self.write_tx(|tx| {
            let c = campaign(tx, slug)?;
            let id = one(
                tx,
                "SELECT id FROM signatures WHERE campaign_id = ?1 AND caller_key = ?2",
                params![c.id, key.as_str()],
                |r| r.int("id"),
            )?;
            let Some(id) = id else {
                return Ok(false);
            };
            tx.execute("DELETE FROM review_changes WHERE signature_id = ?1", [id])?;
            tx.execute("DELETE FROM signatures WHERE id = ?1", [id])?;
            recount_tx(tx, c.id)?;
            audit(tx, Some(slug), "erase", ERASE_DETAIL)?;
            Ok(true)
        })
    }
}

impl Audit for SqliteStore {
    fn record_audit(
        &self,
        campaign: Option<&str>,
        action: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        validate_audit(action, detail)?;
        self.write_tx(|tx| audit(tx, campaign, action, &scrub_numbers(detail)))
    }

    fn audit_log(&self, slug: Option<&str>) -> Result<Vec<AuditEntry>, StoreError> {
        all(
            &self.reader(),
            "SELECT id, at, campaign, action, detail FROM audit
             WHERE ?1 IS NULL OR campaign = ?1 ORDER BY id",
            [slug],
            decode::audit_entry,
        )
    }

    fn audit_recent(
        &self,
        slug: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        all(
            &self.reader(),
            "SELECT id, at, campaign, action, detail FROM audit
             WHERE (?1 IS NULL OR campaign = ?1) AND id < ?2 ORDER BY id DESC LIMIT ?3",
            params![slug, before.unwrap_or(i64::MAX), page_limit(limit)],
            decode::audit_entry,
        )
    }
}

impl Statistics for SqliteStore {
    fn signatures_by_minute(
        &self,
        slug: &str,
        since: SystemTime,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let since = time::rfc3339_utc(since);
        self.read_tx(|tx| {
            let c = campaign(tx, slug)?;
            all(
                tx,
                "SELECT substr(created_at, 1, 16) AS minute, count(*) AS n FROM signatures
                 WHERE campaign_id = ?1 AND created_at >= ?2 GROUP BY minute ORDER BY minute",
                params![c.id, since],
                decode::minute_count,
            )
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
        self.read_tx(|tx| {
            let filter = "campaign = ?1 AND (?2 IS NULL OR flow_version = ?2)
                 AND ended_at >= ?3 AND ended_at < ?4";
            let histogram = all(
                tx,
                &format!(
                    "SELECT story_heard_ms / 1000 AS s, count(*) AS n FROM call_summaries
                     WHERE {filter} AND answered = 1 GROUP BY s ORDER BY s"
                ),
                params![slug, flow_version, since, until],
                decode::heard_seconds,
            )?;
            one(
                tx,
                &format!(
                    "SELECT count(*) AS calls, coalesce(sum(answered), 0) AS answered,
                        coalesce(sum(story_completed), 0) AS story_completed,
                        coalesce(sum(recorded), 0) AS recorded,
                        coalesce(sum(signed), 0) AS signed
                     FROM call_summaries WHERE {filter}"
                ),
                params![slug, flow_version, since, until],
                |r| decode::funnel(r, &histogram),
            )?
            .ok_or(StoreError::Corrupt("an aggregate returned no row"))
        })
    }
}

impl Calls for SqliteStore {
    fn load_call(&self, call_id: &str, now: SystemTime) -> Result<Option<CallState>, StoreError> {
        validate_call_id(call_id)?;
        one(
            &self.reader(),
            "SELECT version, data FROM cloud_calls WHERE call_id = ?1 AND expires_at > ?2",
            params![call_id, unix_secs(now)],
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
        self.write_tx(|tx| {
            let n = if expected == 0 {
                tx.execute(
                    "INSERT INTO cloud_calls (call_id, version, data, expires_at)
                     VALUES (?1, 1, ?2, ?3) ON CONFLICT (call_id) DO NOTHING",
                    params![call_id, data, expires],
                )?
            } else {
                tx.execute(
                    "UPDATE cloud_calls SET version = version + 1, data = ?2, expires_at = ?3
                     WHERE call_id = ?1 AND version = ?4",
                    params![call_id, data, expires, expected],
                )?
            };
            Ok(n == 1)
        })
    }

    fn purge_calls(&self, now: SystemTime) -> Result<u64, StoreError> {
        self.write_tx(|tx| {
            let n = tx.execute(
                "DELETE FROM cloud_calls WHERE expires_at <= ?1",
                [unix_secs(now)],
            )?;
            Ok(n as u64)
        })
    }

    fn record_calls(&self, calls: &[CallSummary]) -> Result<(), StoreError> {
        for c in calls {
            validate_summary(c)?;
        }
        self.write_tx(|tx| {
            let mut stmt = tx.prepare(
                "INSERT INTO call_summaries (campaign, flow_version, channel, ended_at, answered,
                     story_heard_ms, story_completed, recorded, signed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for c in calls {
                stmt.execute(params![
                    c.campaign,
                    c.flow_version,
                    c.channel,
                    summary_ended_at(c),
                    c.answered,
                    summary_heard_ms(c),
                    c.story_completed,
                    c.recorded,
                    c.signed
                ])?;
            }
            Ok(())
        })
    }
}

impl Edits for SqliteStore {
    fn save_campaign_edit(
        &self,
        slug: &str,
        document: &str,
        actor: &str,
    ) -> Result<i64, StoreError> {
        validate_document(document)?;
        validate_actor(actor)?;
        self.write_tx(|tx| {
            let c = campaign(tx, slug)?;
            let version = bump_edit_version(tx, c.id)?;
            tx.execute(
                "UPDATE campaigns SET edit_document = ?2 WHERE id = ?1",
                params![c.id, document],
            )?;
            audit(tx, Some(slug), "campaign_edit", &edit_detail(actor))?;
            Ok(version)
        })
    }

    fn campaign_edits(&self, slug: &str) -> Result<CampaignEdits, StoreError> {
        one(
            &self.reader(),
            "SELECT edit_version, edit_document FROM campaigns WHERE slug = ?1",
            [slug],
            decode::campaign_edits,
        )?
        .ok_or_else(|| StoreError::UnknownCampaign(slug.to_owned()))
    }

    fn save_clip(&self, slug: &str, clip: &NewClip, actor: &str) -> Result<i64, StoreError> {
        validate_clip(clip)?;
        validate_actor(actor)?;
        self.write_tx(|tx| {
            let c = campaign(tx, slug)?;
            let version = bump_edit_version(tx, c.id)?;
            tx.execute(
                "INSERT INTO campaign_clips
                   (campaign_id, name, language, wav, duration_ms, uploaded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (campaign_id, name, language) DO UPDATE SET
                   wav = excluded.wav, duration_ms = excluded.duration_ms,
                   uploaded_at = excluded.uploaded_at",
                params![
                    c.id,
                    clip.name,
                    clip.language,
                    clip.wav,
                    clip_duration(clip),
                    time::rfc3339_utc(SystemTime::now())
                ],
            )?;
            audit(tx, Some(slug), "clip_upload", &clip_detail(actor, clip))?;
            Ok(version)
        })
    }

    fn clips(&self, slug: &str) -> Result<Vec<StoredClip>, StoreError> {
        self.read_tx(|tx| {
            let c = campaign(tx, slug)?;
            all(
                tx,
                "SELECT name, language, wav, duration_ms, uploaded_at FROM campaign_clips
                 WHERE campaign_id = ?1 ORDER BY name, language",
                [c.id],
                decode::stored_clip,
            )
        })
    }

    fn reset_campaign_edits(&self, slug: &str, actor: &str) -> Result<i64, StoreError> {
        validate_actor(actor)?;
        self.write_tx(|tx| {
            let c = campaign(tx, slug)?;
            let version = bump_edit_version(tx, c.id)?;
            tx.execute(
                "UPDATE campaigns SET edit_document = NULL WHERE id = ?1",
                [c.id],
            )?;
            let clips = tx.execute("DELETE FROM campaign_clips WHERE campaign_id = ?1", [c.id])?;
            audit(
                tx,
                Some(slug),
                "campaign_reset",
                &reset_detail(actor, clips as u64),
            )?;
            Ok(version)
        })
    }

    fn edit_versions(&self) -> Result<Vec<(String, i64)>, StoreError> {
        all(
            &self.reader(),
            "SELECT slug, edit_version FROM campaigns ORDER BY id",
            [],
            decode::edit_version,
        )
    }
}

impl Accounts for SqliteStore {
    fn add_console_user(
        &self,
        name: &str,
        role: Role,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        validate_user_name(name)?;
        self.write_tx(|tx| {
            let n = tx.execute(
                "INSERT INTO console_users (name, role, password_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO NOTHING",
                params![
                    name,
                    role.as_str(),
                    password_hash,
                    time::rfc3339_utc(SystemTime::now())
                ],
            )?;
            if n == 1 {
                audit(tx, None, "user created", &user_detail(name, role))?;
            }
            Ok(n == 1)
        })
    }

    fn console_user(&self, name: &str) -> Result<Option<(ConsoleUser, String)>, StoreError> {
        one(
            &self.reader(),
            "SELECT name, role, created_at, password_hash FROM console_users WHERE name = ?1",
            [name],
            |r| Ok((decode::console_user(r)?, r.text("password_hash")?)),
        )
    }

    fn console_users(&self) -> Result<Vec<ConsoleUser>, StoreError> {
        all(
            &self.reader(),
            "SELECT name, role, created_at FROM console_users ORDER BY name",
            [],
            decode::console_user,
        )
    }

    fn set_console_password(&self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        self.write_tx(|tx| {
            let n = tx.execute(
                "UPDATE console_users SET password_hash = ?2 WHERE name = ?1",
                params![name, password_hash],
            )?;
            tx.execute("DELETE FROM console_sessions WHERE user_name = ?1", [name])?;
            if n == 1 {
                audit(tx, None, "password changed", name)?;
            }
            Ok(n == 1)
        })
    }

    fn delete_console_user(&self, name: &str) -> Result<bool, StoreError> {
        self.write_tx(|tx| {
            tx.execute("DELETE FROM console_sessions WHERE user_name = ?1", [name])?;
            tx.execute("DELETE FROM console_tokens WHERE user_name = ?1", [name])?;
            let n = tx.execute("DELETE FROM console_users WHERE name = ?1", [name])?;
            if n == 1 {
                audit(tx, None, "user deleted", name)?;
            }
            Ok(n == 1)
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
        self.write_tx(|tx| {
            tx.execute(
                "DELETE FROM console_sessions WHERE user_name = ?1 AND token_hash NOT IN (
                     SELECT token_hash FROM console_sessions WHERE user_name = ?1
                     ORDER BY last_seen DESC, created_at DESC LIMIT ?2)",
                params![user, MAX_SESSIONS_PER_USER - 1],
            )?;
            tx.execute(
                "INSERT INTO console_sessions (token_hash, user_name, csrf, created_at, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![token_hash, user, csrf, now],
            )?;
            Ok(())
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
        let row = one(
            &self.reader(),
            "SELECT s.user_name, u.role, s.csrf, s.created_at, s.last_seen
             FROM console_sessions s JOIN console_users u ON u.name = s.user_name
             WHERE s.token_hash = ?1",
            [token_hash],
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
                    self.write_tx(|tx| {
                        tx.execute(
                            "UPDATE console_sessions SET last_seen = ?2 WHERE token_hash = ?1",
                            params![token_hash, now],
                        )?;
                        Ok(())
                    })?;
                }
                Ok(Some(session))
            }
        }
    }

    fn end_console_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.write_tx(|tx| {
            tx.execute(
                "DELETE FROM console_sessions WHERE token_hash = ?1",
                [token_hash],
            )?;
            Ok(())
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
        self.write_tx(|tx| {
            let exists: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM console_users WHERE name = ?1) AS user_exists",
                [user],
                |r| r.get("user_exists"),
            )?;
            if !exists {
                return Ok(false);
            }
            let n = tx.execute(
                "INSERT INTO console_tokens (token_hash, user_name, label, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                params![
                    token_hash,
                    user,
                    label,
                    time::rfc3339_utc(now),
                    time::rfc3339_utc(expires)
                ],
            )?;
            if n == 1 {
                audit(tx, None, "API token created", &token_detail(user, label))?;
            }
            Ok(n == 1)
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
        one(
            &self.reader(),
            "SELECT u.name, u.role, u.created_at
             FROM console_tokens t JOIN console_users u ON u.name = t.user_name
             WHERE t.token_hash = ?1 AND t.expires_at > ?2",
            params![token_hash, time::rfc3339_utc(now)],
            decode::console_user,
        )
    }

    fn api_tokens(&self) -> Result<Vec<ApiTokenInfo>, StoreError> {
        all(
            &self.reader(),
            "SELECT user_name, label, created_at, expires_at FROM console_tokens
             ORDER BY user_name, label",
            [],
            decode::api_token_info,
        )
    }

    fn delete_api_token(&self, user: &str, label: &str) -> Result<bool, StoreError> {
        self.write_tx(|tx| {
            let n = tx.execute(
                "DELETE FROM console_tokens WHERE user_name = ?1 AND label = ?2",
                params![user, label],
            )?;
            if n == 1 {
                audit(tx, None, "API token deleted", &token_detail(user, label))?;
            }
            Ok(n == 1)
        })
    }

    fn secret_fingerprint(&self) -> Result<Option<String>, StoreError> {
        one(
            &self.reader(),
            "SELECT fingerprint FROM secret_fingerprint WHERE id = 1",
            [],
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
        self.write_tx(|tx| {
            let changed = match expected {
                None => tx.execute(
                    "INSERT INTO secret_fingerprint (id, fingerprint, set_at)
                     VALUES (1, ?1, ?2) ON CONFLICT (id) DO NOTHING",
                    params![new, now],
                )?,
                Some(old) => tx.execute(
                    "UPDATE secret_fingerprint SET fingerprint = ?1, set_at = ?2
                     WHERE id = 1 AND fingerprint = ?3",
                    params![new, now, old],
                )?,
            };
            Ok(changed == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A read never waits for another read that holds its connection (an export, the public
    /// statistics): each of the first `READERS` reads gets a connection of its own.
    #[test]
    fn a_long_read_does_not_hold_up_the_others() {
        let dir = std::env::temp_dir().join(format!("belteken-readers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let store = Arc::new(SqliteStore::open(&dir.join("t.db")).expect("open"));
        store.ensure_campaign("demo", "Demo").expect("ensure");
        let held: Vec<_> = (0..READERS - 1).map(|_| store.reader()).collect();
        let (done, finished) = std::sync::mpsc::channel();
        let s = store.clone();
        let t = std::thread::spawn(move || done.send(s.counts("demo").map(|c| c.signatures)));
        // A hang here (all readers taken) is the failure; the limit only ends the test.
        let got = finished.recv_timeout(Duration::from_secs(30));
        drop(held);
        t.join().expect("reader thread").expect("send");
        assert_eq!(
            got.expect("read answered while others held")
                .expect("counts"),
            0
        );
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
