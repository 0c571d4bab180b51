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

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::console::{
    session_alive, validate_audit, validate_label, validate_summary, validate_token_hash,
    MAX_SESSIONS_PER_USER, TOUCH_EVERY_SECS,
};
use crate::edits::{actor_detail, validate_actor, validate_clip, validate_document};
use crate::group::{CommitFn, Committer};
use crate::registry::fold_counts;
use crate::{
    scrub_bounded, scrub_numbers, time, unix_secs, validate_call_id, validate_call_state,
    validate_campaign, validate_fingerprint, validate_reason, validate_signature, AuditEntry,
    BelgianRegion, CallState, CallerIdentity, CallerKey, CampaignEdits, CampaignSettings,
    CountPolicy, Counts, NewClip, NewSignature, NumberKind, RegionThresholds, RetentionStep,
    ReviewAction, SealedContact, SignOutcome, SignatureRetention, SignatureRow, SignatureState,
    Store, StoreError, StoredClip, StoredRecording, Trust, COUNTER_SHARDS, MAX_REASON_BYTES,
};
use crate::{
    validate_user_name, ApiTokenInfo, CallSummary, ConsoleSession, ConsoleUser, Funnel, Role,
    SessionLimits,
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
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
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
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
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
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
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

struct CampaignRow {
    id: i64,
    policy: CountPolicy,
    keep_contact: bool,
}

fn campaign(conn: &Connection, slug: &str) -> Result<CampaignRow, StoreError> {
    let row: Option<(i64, String, bool)> = conn
        .query_row(
            "SELECT id, count_policy, keep_contact FROM campaigns WHERE slug = ?1",
            [slug],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let (id, policy, keep_contact) =
        row.ok_or_else(|| StoreError::UnknownCampaign(slug.to_owned()))?;
    Ok(CampaignRow {
        id,
        policy: CountPolicy::parse(&policy).ok_or(StoreError::Corrupt("unknown count policy"))?,
        keep_contact,
    })
}

fn read_counts(conn: &Connection, c: &CampaignRow) -> Result<Counts, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT verified, state, sum(n) FROM counters WHERE campaign_id = ?1
         GROUP BY verified, state",
    )?;
    let rows = stmt
        .query_map([c.id], |r| {
            Ok((
                r.get::<_, bool>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let rows = rows
        .into_iter()
        .map(|(v, s, n)| {
            SignatureState::parse(&s)
                .map(|s| (v, s, n))
                .ok_or(StoreError::Corrupt("unknown signature state"))
        })
        .collect::<Result<Vec<_>, _>>()?;
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
        "UPDATE campaigns SET edit_version = edit_version + 1 WHERE id = ?1 RETURNING edit_version",
        [campaign_id],
        |r| r.get(0),
    )?)
}

/// Which of `key` / `previous` has a signature in the campaign: Some(true) the current key,
/// Some(false) only the previous one.
fn find_key(
    conn: &Connection,
    campaign_id: i64,
    key: &CallerKey,
    previous: Option<&CallerKey>,
) -> Result<Option<bool>, StoreError> {
    let prev = previous.unwrap_or(key);
    let mut stmt = conn.prepare_cached(
        "SELECT caller_key FROM signatures WHERE campaign_id = ?1 AND caller_key IN (?2, ?3)",
    )?;
    let found = stmt
        .query_map(params![campaign_id, key.as_str(), prev.as_str()], |r| {
            r.get::<_, String>(0)
        })?
        .collect::<Result<Vec<_>, _>>()?;
    if found.iter().any(|k| k == key.as_str()) {
        Ok(Some(true))
    } else if found.is_empty() {
        Ok(None)
    } else {
        Ok(Some(false))
    }
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

enum Written {
    Counted,
    Already,
    Unverified,
}

fn commit_group(
    conn: &mut Connection,
    sigs: &[NewSignature],
    shard: i64,
) -> Result<Vec<SignOutcome>, StoreError> {
    let created_at = time::rfc3339_utc(SystemTime::now());
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut campaigns: HashMap<&str, CampaignRow> = HashMap::new();
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
        let (key, country, class) = match &sig.caller {
            CallerIdentity::Verified {
                key,
                country,
                class,
                previous,
            } => {
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
                (Some(key.as_str()), country.as_deref(), Some(class))
            }
            CallerIdentity::Withheld => (None, None, None),
        };
        let verified = key.is_some();
        let contact = sig
            .contact
            .as_ref()
            .filter(|_| c.keep_contact && verified)
            .map(|s| s.as_bytes());
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
                key,
                verified,
                sig.channel,
                sig.speech_ms,
                sig.recording_wav,
                created_at,
                sig.effective_trust().as_str(),
                country,
                class.map(|c| c.kind.as_str()),
                class.and_then(|c| c.be_region).map(BelgianRegion::as_str),
                class.map(|c| c.prefix_block.as_str()),
                sig.flow_version,
                contact,
            ])?;
        if inserted == 0 {
            // The same caller twice in this group: the unique index kept the first.
            written.push((c.id, Written::Already));
            continue;
        }
        *deltas.entry((c.id, verified)).or_default() += 1;
        written.push((
            c.id,
            if verified {
                Written::Counted
            } else {
                Written::Unverified
            },
        ));
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

fn parse_or_corrupt<T>(v: Option<T>, what: &'static str) -> Result<T, StoreError> {
    v.ok_or(StoreError::Corrupt(what))
}

impl Store for SqliteStore {
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

    fn recordings(&self, slug: &str) -> Result<Vec<StoredRecording>, StoreError> {
        self.read_tx(|tx| {
            let c = campaign(tx, slug)?;
            let mut stmt = tx.prepare(
                "SELECT id, verified, speech_ms, recording FROM signatures
                 WHERE campaign_id = ?1 AND recording IS NOT NULL ORDER BY id",
            )?;
            let rows = stmt.query_map([c.id], |r| {
                Ok(StoredRecording {
                    id: r.get(0)?,
                    verified: r.get(1)?,
                    speech_ms: r.get(2)?,
                    wav: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn configure_campaign(
        &self,
        slug: &str,
        settings: &CampaignSettings,
    ) -> Result<(), StoreError> {
        self.write_tx(|tx| {
            let n = tx.execute(
                "UPDATE campaigns SET count_policy = ?2, closes_at = ?3, recordings_days = ?4,
                     signatures_days = ?5, signature_retention = ?6, keep_contact = ?7,
                     threshold_flanders = ?8, threshold_wallonia = ?9, threshold_brussels = ?10
                 WHERE slug = ?1",
                params![
                    slug,
                    settings.count_policy.as_str(),
                    settings.closes_at.map(time::rfc3339_utc),
                    settings.recordings_days,
                    settings.signatures_days,
                    retention_str(settings.signature_retention),
                    settings.keep_contact,
                    settings.region_thresholds.flanders as i64,
                    settings.region_thresholds.wallonia as i64,
                    settings.region_thresholds.brussels as i64,
                ],
            )?;
            if n == 0 {
                return Err(StoreError::UnknownCampaign(slug.to_owned()));
            }
            Ok(())
        })
    }

    fn campaign_settings(&self, slug: &str) -> Result<CampaignSettings, StoreError> {
        let conn = self.reader();
        type Row = (
            String,
            Option<String>,
            Option<u32>,
            Option<u32>,
            String,
            bool,
            i64,
            i64,
            i64,
        );
        let row: Option<Row> = conn
            .query_row(
                "SELECT count_policy, closes_at, recordings_days, signatures_days,
                     signature_retention, keep_contact, threshold_flanders, threshold_wallonia,
                     threshold_brussels
                 FROM campaigns WHERE slug = ?1",
                [slug],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                    ))
                },
            )
            .optional()?;
        let (policy, closes_at, rec_days, sig_days, retention, keep_contact, fl, wa, br) =
            row.ok_or_else(|| StoreError::UnknownCampaign(slug.to_owned()))?;
        settings_from_row(
            &policy,
            closes_at.as_deref(),
            rec_days,
            sig_days,
            &retention,
            keep_contact,
            [fl, wa, br],
        )
    }

    fn campaigns(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare("SELECT slug FROM campaigns ORDER BY id")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn signature_rows(&self, slug: &str) -> Result<Vec<SignatureRow>, StoreError> {
        self.read_tx(|tx| {
            let c = campaign(tx, slug)?;
            let mut stmt = tx.prepare(
                "SELECT id, created_at, verified, state, trust, country, number_kind, be_region,
                     prefix_block, flow_version, channel, speech_ms, recording IS NOT NULL,
                     anonymised
                 FROM signatures WHERE campaign_id = ?1 ORDER BY id",
            )?;
            type Raw = (
                i64,
                String,
                bool,
                String,
                String,
                Option<String>,
                Option<String>,
                Option<String>,
                Option<String>,
                Option<String>,
                String,
                u32,
                bool,
                bool,
            );
            let raw = stmt
                .query_map([c.id], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                        r.get(9)?,
                        r.get(10)?,
                        r.get(11)?,
                        r.get(12)?,
                        r.get(13)?,
                    ))
                })?
                .collect::<Result<Vec<Raw>, _>>()?;
            raw.into_iter()
                .map(|r| {
                    row_from_parts(RowParts {
                        id: r.0,
                        created_at: r.1,
                        verified: r.2,
                        state: &r.3,
                        trust: &r.4,
                        country: r.5,
                        kind: r.6.as_deref(),
                        be_region: r.7.as_deref(),
                        prefix_block: r.8,
                        flow_version: r.9,
                        channel: r.10,
                        speech_ms: r.11,
                        has_recording: r.12,
                        anonymised: r.13,
                    })
                })
                .collect()
        })
    }

    fn recording(&self, slug: &str, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.read_tx(|tx| {
            let c = campaign(tx, slug)?;
            let wav: Option<Option<Vec<u8>>> = tx
                .query_row(
                    "SELECT recording FROM signatures WHERE campaign_id = ?1 AND id = ?2",
                    params![c.id, id],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(wav.flatten())
        })
    }

    fn erase(&self, slug: &str, key: &CallerKey) -> Result<bool, StoreError> {
        self.write_tx(|tx| {
            let c = campaign(tx, slug)?;
            let id: Option<i64> = tx
                .query_row(
                    "SELECT id FROM signatures WHERE campaign_id = ?1 AND caller_key = ?2",
                    params![c.id, key.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(id) = id else {
                return Ok(false);
            };
            tx.execute("DELETE FROM review_changes WHERE signature_id = ?1", [id])?;
            tx.execute("DELETE FROM signatures WHERE id = ?1", [id])?;
            recount_tx(tx, c.id)?;
            audit(
                tx,
                Some(slug),
                "erase",
                "one signature and its recording erased on request",
            )?;
            Ok(true)
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
        validate_reason(reason)?;
        let reason = scrub_numbers(reason);
        // The description is built from what an operator typed (a filter): bounded and
        // scrubbed like the reason, so that no number reaches the audit log through it.
        let description = scrub_bounded(description, MAX_REASON_BYTES);
        let description = description.as_str();
        self.write_tx(|tx| {
            let c = campaign(tx, slug)?;
            let now = time::rfc3339_utc(SystemTime::now());
            tx.execute(
                "INSERT INTO review_actions (campaign_id, at, state, reason, description, changed)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                params![c.id, now, state.as_str(), reason, description],
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
                &format!(
                    "action {action}: {changed} signatures set to {} ({description}); reason: {reason}",
                    state.as_str()
                ),
            )?;
            Ok(ReviewAction { id: action, changed })
        })
    }

    fn revert_review(&self, action_id: i64, reason: &str) -> Result<u64, StoreError> {
        validate_reason(reason)?;
        let reason = scrub_numbers(reason);
        self.write_tx(|tx| {
            let row: Option<(i64, String, Option<String>, String)> = tx
                .query_row(
                    "SELECT a.campaign_id, a.state, a.reverted_at, c.slug
                     FROM review_actions a JOIN campaigns c ON c.id = a.campaign_id
                     WHERE a.id = ?1",
                    [action_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let (campaign_id, state, reverted, slug) =
                row.ok_or(StoreError::UnknownReviewAction(action_id))?;
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
                &format!("action {action_id} reverted: {n} signatures restored; reason: {reason}"),
            )?;
            Ok(n)
        })
    }

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
                audit(
                    tx,
                    Some(slug),
                    "retention",
                    &format!("{}: {n} signatures", step.as_str()),
                )?;
            }
            Ok(n)
        })
    }

    fn audit_log(&self, slug: Option<&str>) -> Result<Vec<AuditEntry>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT id, at, campaign, action, detail FROM audit
             WHERE ?1 IS NULL OR campaign = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([slug], |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                at: r.get(1)?,
                campaign: r.get(2)?,
                action: r.get(3)?,
                detail: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn load_call(&self, call_id: &str, now: SystemTime) -> Result<Option<CallState>, StoreError> {
        validate_call_id(call_id)?;
        let conn = self.reader();
        let row: Option<(i64, Vec<u8>)> = conn
            .query_row(
                "SELECT version, data FROM cloud_calls WHERE call_id = ?1 AND expires_at > ?2",
                rusqlite::params![call_id, unix_secs(now)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row.map(|(version, data)| CallState { version, data }))
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
                    rusqlite::params![call_id, data, expires],
                )?
            } else {
                tx.execute(
                    "UPDATE cloud_calls SET version = version + 1, data = ?2, expires_at = ?3
                     WHERE call_id = ?1 AND version = ?4",
                    rusqlite::params![call_id, data, expires, expected],
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
            audit(
                tx,
                Some(slug),
                "campaign_edit",
                &actor_detail(actor, "texts and settings"),
            )?;
            Ok(version)
        })
    }

    fn campaign_edits(&self, slug: &str) -> Result<CampaignEdits, StoreError> {
        self.read_tx(|tx| {
            let row: Option<(i64, Option<String>)> = tx
                .query_row(
                    "SELECT edit_version, edit_document FROM campaigns WHERE slug = ?1",
                    [slug],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let (version, document) =
                row.ok_or_else(|| StoreError::UnknownCampaign(slug.to_owned()))?;
            Ok(CampaignEdits { version, document })
        })
    }

    fn save_clip(&self, slug: &str, clip: &NewClip, actor: &str) -> Result<i64, StoreError> {
        validate_clip(clip)?;
        validate_actor(actor)?;
        let duration = i64::try_from(clip.duration_ms).unwrap_or(i64::MAX);
        self.write_tx(|tx| {
            let c = campaign(tx, slug)?;
            let version = bump_edit_version(tx, c.id)?;
            tx.execute(
                "INSERT INTO campaign_clips (campaign_id, name, language, wav, duration_ms, uploaded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (campaign_id, name, language) DO UPDATE SET
                   wav = excluded.wav, duration_ms = excluded.duration_ms,
                   uploaded_at = excluded.uploaded_at",
                params![
                    c.id,
                    clip.name,
                    clip.language,
                    clip.wav,
                    duration,
                    time::rfc3339_utc(SystemTime::now())
                ],
            )?;
            let what = format!("clip {} ({}), {} ms", clip.name, clip.language, clip.duration_ms);
            audit(tx, Some(slug), "clip_upload", &actor_detail(actor, &what))?;
            Ok(version)
        })
    }

    fn clips(&self, slug: &str) -> Result<Vec<StoredClip>, StoreError> {
        self.read_tx(|tx| {
            let c = campaign(tx, slug)?;
            let mut stmt = tx.prepare(
                "SELECT name, language, wav, duration_ms, uploaded_at FROM campaign_clips
                 WHERE campaign_id = ?1 ORDER BY name, language",
            )?;
            let rows = stmt.query_map([c.id], |r| {
                Ok(StoredClip {
                    name: r.get(0)?,
                    language: r.get(1)?,
                    wav: r.get(2)?,
                    duration_ms: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                    uploaded_at: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
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
            let what = format!("reset to the configuration ({clips} clips dropped)");
            audit(
                tx,
                Some(slug),
                "campaign_reset",
                &actor_detail(actor, &what),
            )?;
            Ok(version)
        })
    }

    fn edit_versions(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let conn = self.reader();
        let mut stmt =
            conn.prepare_cached("SELECT slug, edit_version FROM campaigns ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn contacts(&self, slug: &str) -> Result<Vec<(i64, SealedContact)>, StoreError> {
        self.read_tx(|tx| {
            let c = campaign(tx, slug)?;
            let mut stmt = tx.prepare(
                "SELECT id, contact FROM signatures
                 WHERE campaign_id = ?1 AND contact IS NOT NULL ORDER BY id",
            )?;
            let rows = stmt.query_map([c.id], |r| {
                Ok((r.get(0)?, SealedContact(r.get::<_, Vec<u8>>(1)?)))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

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
                audit(
                    tx,
                    None,
                    "user created",
                    &format!("{name} ({})", role.as_str()),
                )?;
            }
            Ok(n == 1)
        })
    }

    fn console_user(&self, name: &str) -> Result<Option<(ConsoleUser, String)>, StoreError> {
        let conn = self.reader();
        let row: Option<(String, String, String, String)> = conn
            .query_row(
                "SELECT name, role, created_at, password_hash FROM console_users WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        row.map(|(name, role, created_at, hash)| {
            Ok((console_user_from(name, &role, created_at)?, hash))
        })
        .transpose()
    }

    fn console_users(&self) -> Result<Vec<ConsoleUser>, StoreError> {
        let conn = self.reader();
        let mut stmt =
            conn.prepare("SELECT name, role, created_at FROM console_users ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, role, created_at) = row?;
            out.push(console_user_from(name, &role, created_at)?);
        }
        Ok(out)
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
        let row: Option<(String, String, String, i64, i64)> = {
            let conn = self.reader();
            conn.query_row(
                "SELECT s.user_name, u.role, s.csrf, s.created_at, s.last_seen
                 FROM console_sessions s JOIN console_users u ON u.name = s.user_name
                 WHERE s.token_hash = ?1",
                [token_hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?
        };
        let Some((user, role, csrf, created, last_seen)) = row else {
            return Ok(None);
        };
        if !session_alive(created, last_seen, now, limits) {
            self.end_console_session(token_hash)?;
            return Ok(None);
        }
        if now - last_seen >= TOUCH_EVERY_SECS {
            self.write_tx(|tx| {
                tx.execute(
                    "UPDATE console_sessions SET last_seen = ?2 WHERE token_hash = ?1",
                    params![token_hash, now],
                )?;
                Ok(())
            })?;
        }
        let role = Role::parse(&role).ok_or(StoreError::Corrupt("console user role"))?;
        Ok(Some(ConsoleSession { user, role, csrf }))
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
                "SELECT EXISTS (SELECT 1 FROM console_users WHERE name = ?1)",
                [user],
                |r| r.get(0),
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
                audit(tx, None, "API token created", &format!("{user}: {label}"))?;
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
        let now = time::rfc3339_utc(now);
        let conn = self.reader();
        let row: Option<(String, String, String)> = conn
            .query_row(
                "SELECT u.name, u.role, u.created_at
                 FROM console_tokens t JOIN console_users u ON u.name = t.user_name
                 WHERE t.token_hash = ?1 AND t.expires_at > ?2",
                [token_hash, now.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(name, role, created_at)| console_user_from(name, &role, created_at))
            .transpose()
    }

    fn api_tokens(&self) -> Result<Vec<ApiTokenInfo>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT user_name, label, created_at, expires_at FROM console_tokens
             ORDER BY user_name, label",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ApiTokenInfo {
                user: r.get(0)?,
                label: r.get(1)?,
                created_at: r.get(2)?,
                expires_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn delete_api_token(&self, user: &str, label: &str) -> Result<bool, StoreError> {
        self.write_tx(|tx| {
            let n = tx.execute(
                "DELETE FROM console_tokens WHERE user_name = ?1 AND label = ?2",
                params![user, label],
            )?;
            if n == 1 {
                audit(tx, None, "API token deleted", &format!("{user}: {label}"))?;
            }
            Ok(n == 1)
        })
    }

    fn secret_fingerprint(&self) -> Result<Option<String>, StoreError> {
        self.read_tx(|tx| {
            Ok(tx
                .query_row(
                    "SELECT fingerprint FROM secret_fingerprint WHERE id = 1",
                    [],
                    |r| r.get(0),
                )
                .optional()?)
        })
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

    fn record_audit(
        &self,
        campaign: Option<&str>,
        action: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        validate_audit(action, detail)?;
        self.write_tx(|tx| audit(tx, campaign, action, &scrub_numbers(detail)))
    }

    fn signatures_in_state(
        &self,
        slug: &str,
        state: SignatureState,
        after: i64,
        limit: usize,
    ) -> Result<(Vec<SignatureRow>, u64), StoreError> {
        let limit = i64::try_from(limit.min(10_000)).unwrap_or(10_000);
        self.read_tx(|tx| {
            let c = campaign(tx, slug)?;
            let total: i64 = tx.query_row(
                "SELECT count(*) FROM signatures WHERE campaign_id = ?1 AND state = ?2",
                params![c.id, state.as_str()],
                |r| r.get(0),
            )?;
            let mut stmt = tx.prepare(
                "SELECT id, created_at, verified, state, trust, country, number_kind, be_region,
                     prefix_block, flow_version, channel, speech_ms, recording IS NOT NULL,
                     anonymised
                 FROM signatures WHERE campaign_id = ?1 AND state = ?2 AND id > ?3
                 ORDER BY id LIMIT ?4",
            )?;
            let mut rows = stmt.query(params![c.id, state.as_str(), after, limit])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let state: String = r.get(3)?;
                let trust: String = r.get(4)?;
                let kind: Option<String> = r.get(6)?;
                let region: Option<String> = r.get(7)?;
                out.push(row_from_parts(RowParts {
                    id: r.get(0)?,
                    created_at: r.get(1)?,
                    verified: r.get(2)?,
                    state: &state,
                    trust: &trust,
                    country: r.get(5)?,
                    kind: kind.as_deref(),
                    be_region: region.as_deref(),
                    prefix_block: r.get(8)?,
                    flow_version: r.get(9)?,
                    channel: r.get(10)?,
                    speech_ms: r.get(11)?,
                    has_recording: r.get(12)?,
                    anonymised: r.get(13)?,
                })?);
            }
            Ok((out, total.max(0) as u64))
        })
    }

    fn signatures_by_minute(
        &self,
        slug: &str,
        since: SystemTime,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let since = time::rfc3339_utc(since);
        self.read_tx(|tx| {
            let c = campaign(tx, slug)?;
            let mut stmt = tx.prepare(
                "SELECT substr(created_at, 1, 16) AS minute, count(*) FROM signatures
                 WHERE campaign_id = ?1 AND created_at >= ?2 GROUP BY minute ORDER BY minute",
            )?;
            let rows = stmt.query_map(params![c.id, since], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn audit_recent(
        &self,
        slug: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = i64::try_from(limit.min(10_000)).unwrap_or(10_000);
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT id, at, campaign, action, detail FROM audit
             WHERE (?1 IS NULL OR campaign = ?1) AND id < ?2 ORDER BY id DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![slug, before.unwrap_or(i64::MAX), limit], |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                at: r.get(1)?,
                campaign: r.get(2)?,
                action: r.get(3)?,
                detail: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
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
                    unix_secs(c.ended_at.unwrap_or_else(SystemTime::now)),
                    c.answered,
                    i64::try_from(c.story_heard_ms).unwrap_or(i64::MAX),
                    c.story_completed,
                    c.recorded,
                    c.signed
                ])?;
            }
            Ok(())
        })
    }

    fn funnel(
        &self,
        slug: &str,
        flow_version: Option<&str>,
        since: Option<SystemTime>,
        until: Option<SystemTime>,
    ) -> Result<Funnel, StoreError> {
        let since = since.map(unix_secs).unwrap_or(i64::MIN);
        let until = until.map(unix_secs).unwrap_or(i64::MAX);
        self.read_tx(|tx| {
            let filter = "campaign = ?1 AND (?2 IS NULL OR flow_version = ?2)
                 AND ended_at >= ?3 AND ended_at < ?4";
            let (calls, answered, completed, recorded, signed): (i64, i64, i64, i64, i64) = tx
                .query_row(
                    &format!(
                        "SELECT count(*), coalesce(sum(answered), 0),
                            coalesce(sum(story_completed), 0), coalesce(sum(recorded), 0),
                            coalesce(sum(signed), 0)
                         FROM call_summaries WHERE {filter}"
                    ),
                    params![slug, flow_version, since, until],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )?;
            let mut stmt = tx.prepare(&format!(
                "SELECT story_heard_ms / 1000 AS s, count(*) FROM call_summaries
                 WHERE {filter} AND answered = 1 GROUP BY s ORDER BY s"
            ))?;
            let rows = stmt.query_map(params![slug, flow_version, since, until], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })?;
            let mut histogram = Vec::new();
            for row in rows {
                let (s, n) = row?;
                histogram.push((s.max(0) as u64, n.max(0) as u64));
            }
            let u = |v: i64| v.max(0) as u64;
            Ok(Funnel {
                calls: u(calls),
                answered: u(answered),
                story_completed: u(completed),
                recorded: u(recorded),
                signed: u(signed),
                curve: Funnel::curve_from_histogram(&histogram),
            })
        })
    }
}

fn console_user_from(
    name: String,
    role: &str,
    created_at: String,
) -> Result<ConsoleUser, StoreError> {
    Ok(ConsoleUser {
        name,
        role: Role::parse(role).ok_or(StoreError::Corrupt("console user role"))?,
        created_at,
    })
}

pub(crate) fn retention_str(r: SignatureRetention) -> &'static str {
    match r {
        SignatureRetention::Anonymise => "anonymise",
        SignatureRetention::Delete => "delete",
    }
}

/// Settings from their stored columns (shared with the PostgreSQL backend).
pub(crate) fn settings_from_row(
    policy: &str,
    closes_at: Option<&str>,
    recordings_days: Option<u32>,
    signatures_days: Option<u32>,
    retention: &str,
    keep_contact: bool,
    thresholds: [i64; 3],
) -> Result<CampaignSettings, StoreError> {
    let t = |v: i64| u64::try_from(v).map_err(|_| StoreError::Corrupt("negative threshold"));
    Ok(CampaignSettings {
        count_policy: parse_or_corrupt(CountPolicy::parse(policy), "unknown count policy")?,
        closes_at: match closes_at {
            None => None,
            Some(s) => Some(parse_or_corrupt(
                time::parse_rfc3339(s),
                "bad closing time",
            )?),
        },
        recordings_days,
        signatures_days,
        signature_retention: match retention {
            "anonymise" => SignatureRetention::Anonymise,
            "delete" => SignatureRetention::Delete,
            _ => return Err(StoreError::Corrupt("unknown signature retention")),
        },
        keep_contact,
        region_thresholds: RegionThresholds {
            flanders: t(thresholds[0])?,
            wallonia: t(thresholds[1])?,
            brussels: t(thresholds[2])?,
        },
    })
}

/// A signature row's stored columns (shared with the PostgreSQL backend).
pub(crate) struct RowParts<'a> {
    pub id: i64,
    pub created_at: String,
    pub verified: bool,
    pub state: &'a str,
    pub trust: &'a str,
    pub country: Option<String>,
    pub kind: Option<&'a str>,
    pub be_region: Option<&'a str>,
    pub prefix_block: Option<String>,
    pub flow_version: Option<String>,
    pub channel: String,
    pub speech_ms: u32,
    pub has_recording: bool,
    pub anonymised: bool,
}

pub(crate) fn row_from_parts(p: RowParts<'_>) -> Result<SignatureRow, StoreError> {
    Ok(SignatureRow {
        id: p.id,
        created_at: p.created_at,
        verified: p.verified,
        state: parse_or_corrupt(SignatureState::parse(p.state), "unknown signature state")?,
        trust: parse_or_corrupt(Trust::parse(p.trust), "unknown trust level")?,
        country: p.country,
        kind: match p.kind {
            None => None,
            Some(k) => Some(parse_or_corrupt(
                NumberKind::parse(k),
                "unknown number kind",
            )?),
        },
        be_region: match p.be_region {
            None => None,
            Some(r) => Some(parse_or_corrupt(BelgianRegion::parse(r), "unknown region")?),
        },
        prefix_block: p.prefix_block,
        flow_version: p.flow_version,
        channel: p.channel,
        speech_ms: p.speech_ms,
        has_recording: p.has_recording,
        anonymised: p.anonymised,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

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
