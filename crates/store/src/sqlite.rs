//! The SQLite backend: one database file in WAL mode, every commit fsync'd.
//!
//! Concurrency: all writes go through one `Mutex<Connection>`, so signatures are written one
//! at a time (each is a short transaction plus an fsync; SQLite allows one writer anyway).
//! Reads use a second connection behind its own mutex, so pages asking for counts do not wait
//! behind a writer's fsync: WAL lets a reader see the last commit while a write is running.
//! Write transactions are `BEGIN IMMEDIATE`, so another process on the same file waits on
//! `busy_timeout` instead of failing halfway.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::{
    time, validate_campaign, validate_signature, CallerIdentity, CallerKey, Counts, NewSignature,
    SignOutcome, Store, StoreError, StoredRecording,
};

/// How long a connection waits for another writer (another process on the same file).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema migrations; migration `i` takes `PRAGMA user_version` from `i` to `i + 1`.
/// Append only: never edit a migration that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: the schema of docs/CONTRACTS.md, plus foreign keys, CHECKs and a lookup index.
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
];

/// The SQLite store. See the module documentation for its concurrency model.
pub struct SqliteStore {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
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
        let reader = Connection::open(path)?;
        configure(&reader)?;
        reader.pragma_update(None, "query_only", true)?;
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock drops its open transaction, which rolls back; the
        // connection is then as good as before, so poisoning is safe to ignore.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        // Readers hold no transaction across calls; see `writer`.
        self.reader.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // FULL: in WAL mode, fsync the log on every commit, so a signature the caller was told
    // about survives a power cut.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
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

fn campaign_id(conn: &Connection, slug: &str) -> Result<i64, StoreError> {
    conn.query_row("SELECT id FROM campaigns WHERE slug = ?1", [slug], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or_else(|| StoreError::UnknownCampaign(slug.to_owned()))
}

fn read_counts(conn: &Connection, campaign_id: i64) -> Result<Counts, StoreError> {
    let row: Option<(i64, i64)> = conn
        .query_row(
            "SELECT signatures, unverified FROM counters WHERE campaign_id = ?1",
            [campaign_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    // A missing row means nothing was counted yet (sign creates it on demand).
    let (signatures, unverified) = row.unwrap_or((0, 0));
    Ok(Counts {
        signatures: u64::try_from(signatures)
            .map_err(|_| StoreError::Corrupt("negative signature counter"))?,
        unverified: u64::try_from(unverified)
            .map_err(|_| StoreError::Corrupt("negative unverified counter"))?,
    })
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

impl Store for SqliteStore {
    fn ensure_campaign(&self, slug: &str, title: &str) -> Result<(), StoreError> {
        validate_campaign(slug, title)?;
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO campaigns (slug, title) VALUES (?1, ?2)
             ON CONFLICT (slug) DO UPDATE SET title = excluded.title",
            params![slug, title],
        )?;
        let id = campaign_id(&tx, slug)?;
        tx.execute(
            "INSERT INTO counters (campaign_id, signatures, unverified) VALUES (?1, 0, 0)
             ON CONFLICT (campaign_id) DO NOTHING",
            [id],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn has_signed(&self, slug: &str, key: &CallerKey) -> Result<bool, StoreError> {
        let conn = self.reader();
        let id = campaign_id(&conn, slug)?;
        let found = conn
            .query_row(
                "SELECT 1 FROM signatures WHERE campaign_id = ?1 AND caller_key = ?2",
                params![id, key.as_str()],
                |_| Ok(()),
            )
            .optional()?;
        Ok(found.is_some())
    }

    fn sign(&self, sig: NewSignature) -> Result<SignOutcome, StoreError> {
        validate_signature(&sig)?;
        let (key, verified) = match &sig.caller {
            CallerIdentity::Verified { key, .. } => (Some(key.as_str()), true),
            CallerIdentity::Withheld => (None, false),
        };
        let created_at = time::rfc3339_utc(SystemTime::now());
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id = campaign_id(&tx, &sig.campaign)?;
        if let Some(key) = key {
            let exists = tx
                .query_row(
                    "SELECT 1 FROM signatures WHERE campaign_id = ?1 AND caller_key = ?2",
                    params![id, key],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if exists {
                let counts = read_counts(&tx, id)?;
                drop(tx); // rolls back a transaction that wrote nothing
                return Ok(SignOutcome::AlreadySigned { counts });
            }
        }
        let inserted = tx.execute(
            "INSERT INTO signatures (campaign_id, caller_key, verified, channel, speech_ms, recording, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![id, key, verified, sig.channel, sig.speech_ms, sig.recording_wav, created_at],
        );
        match inserted {
            Ok(_) => {}
            // Unreachable while we hold the write lock since the check above; kept so a
            // future change to the locking still cannot count a caller twice.
            Err(e) if is_unique_violation(&e) => {
                let counts = read_counts(&tx, id)?;
                return Ok(SignOutcome::AlreadySigned { counts });
            }
            Err(e) => return Err(e.into()),
        }
        let (add_verified, add_unverified) = if verified { (1, 0) } else { (0, 1) };
        tx.execute(
            "INSERT INTO counters (campaign_id, signatures, unverified) VALUES (?1, ?2, ?3)
             ON CONFLICT (campaign_id) DO UPDATE SET
                 signatures = signatures + excluded.signatures,
                 unverified = unverified + excluded.unverified",
            params![id, add_verified, add_unverified],
        )?;
        let counts = read_counts(&tx, id)?;
        // With synchronous=FULL the commit returns after the WAL is fsync'd.
        tx.commit()?;
        Ok(if verified {
            SignOutcome::Counted { counts }
        } else {
            SignOutcome::Unverified { counts }
        })
    }

    fn counts(&self, slug: &str) -> Result<Counts, StoreError> {
        let mut conn = self.reader();
        // One read transaction, so the campaign and its counters come from the same snapshot.
        let tx = conn.transaction()?;
        let id = campaign_id(&tx, slug)?;
        read_counts(&tx, id)
    }

    fn recount(&self, slug: &str) -> Result<Counts, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id = campaign_id(&tx, slug)?;
        let (signatures, unverified): (i64, i64) = tx.query_row(
            "SELECT coalesce(sum(verified), 0), coalesce(sum(1 - verified), 0)
             FROM signatures WHERE campaign_id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        tx.execute(
            "INSERT INTO counters (campaign_id, signatures, unverified) VALUES (?1, ?2, ?3)
             ON CONFLICT (campaign_id) DO UPDATE SET
                 signatures = excluded.signatures, unverified = excluded.unverified",
            params![id, signatures, unverified],
        )?;
        let counts = read_counts(&tx, id)?;
        tx.commit()?;
        Ok(counts)
    }

    fn recordings(&self, slug: &str) -> Result<Vec<StoredRecording>, StoreError> {
        let mut conn = self.reader();
        let tx = conn.transaction()?;
        let id = campaign_id(&tx, slug)?;
        let mut stmt =
            tx.prepare("SELECT id, verified, speech_ms, recording FROM signatures WHERE campaign_id = ?1 ORDER BY id")?;
        let rows = stmt.query_map([id], |r| {
            Ok(StoredRecording {
                id: r.get(0)?,
                verified: r.get(1)?,
                speech_ms: r.get(2)?,
                wav: r.get(3)?,
            })
        })?;
        let out = rows.collect::<Result<Vec<_>, _>>()?;
        Ok(out)
    }
}
