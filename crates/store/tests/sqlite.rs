//! The SQLite backend against the conformance suite, plus what only a file database can show:
//! durability across reopen, repair of a corrupted counter, and no raw number in the file.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{conformance, TempDir};
use rusqlite::Connection;
use store::prelude::*;
use store::{CallerIdentity, Counts, SignOutcome, SqliteStore};

fn open(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("belteken.db")).expect("open store")
}

/// Runs a conformance test on a fresh database file.
fn with_store(test: impl FnOnce(Arc<dyn Store>)) {
    let dir = TempDir::new();
    test(Arc::new(open(&dir)));
}

conformance::suite!(with_store);

#[test]
fn counts_survive_reopen() {
    let dir = TempDir::new();
    {
        let store = open(&dir);
        store.ensure_campaign("demo", "Demo").expect("ensure");
        store
            .sign(conformance::sig(
                "demo",
                conformance::verified("+32470000001"),
            ))
            .expect("sign");
        store
            .sign(conformance::sig("demo", CallerIdentity::Withheld))
            .expect("sign");
    }
    let store = open(&dir);
    store
        .ensure_campaign("demo", "Demo")
        .expect("ensure is idempotent on reopen");
    assert_eq!(
        store.counts("demo").expect("counts"),
        Counts {
            signatures: 1,
            unverified: 1
        }
    );
    let again = store
        .sign(conformance::sig(
            "demo",
            conformance::verified("0032470000001"),
        ))
        .expect("sign");
    assert!(matches!(again, SignOutcome::AlreadySigned { .. }));
    assert_eq!(store.recordings("demo").expect("recordings").len(), 2);
}

#[test]
fn schema_matches_contract() {
    let dir = TempDir::new();
    let store = open(&dir);
    store.ensure_campaign("demo", "Demo").expect("ensure");
    store
        .sign(conformance::sig(
            "demo",
            conformance::verified("+32470000001"),
        ))
        .expect("sign");
    store
        .sign(conformance::sig("demo", CallerIdentity::Withheld))
        .expect("sign");
    let db = Connection::open(dir.path().join("belteken.db")).expect("open");
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("pragma");
    assert_eq!(mode, "wal");
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("pragma");
    assert_eq!(version, 7); // 3: cloud_calls, 4: campaign edits and clips, 5: console users and call summaries, 6: the secret fingerprint, 7: API token expiry
    let mut stmt = db
        .prepare(
            "SELECT s.caller_key, s.verified, s.channel, s.speech_ms, length(s.recording), s.created_at
             FROM signatures s JOIN campaigns c ON c.id = s.campaign_id WHERE c.slug = 'demo' ORDER BY s.id",
        )
        .expect("prepare");
    let rows: Vec<(Option<String>, i64, String, i64, i64, String)> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(rows.len(), 2);
    let key = rows[0].0.as_deref().expect("verified row has a key");
    assert_eq!(key.len(), 64);
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        (rows[0].1, rows[0].2.as_str(), rows[0].3, rows[0].4),
        (1, "sip", 900, 1000)
    );
    assert_eq!((rows[1].0.as_deref(), rows[1].1), (None, 0));
    // RFC 3339 UTC, e.g. 2025-06-01T12:00:00Z
    let ts = &rows[0].5;
    assert_eq!(
        (ts.len(), &ts[4..5], &ts[10..11], &ts[19..]),
        (20, "-", "T", "Z"),
        "{ts}"
    );
}

#[test]
fn recount_repairs_corrupted_counter() {
    let dir = TempDir::new();
    let store = open(&dir);
    store.ensure_campaign("demo", "Demo").expect("ensure");
    store
        .sign(conformance::sig(
            "demo",
            conformance::verified("+32470000001"),
        ))
        .expect("sign");
    store
        .sign(conformance::sig("demo", CallerIdentity::Withheld))
        .expect("sign");
    let db = Connection::open(dir.path().join("belteken.db")).expect("open");
    db.execute(
        "UPDATE counters SET n = CASE verified WHEN 1 THEN 41 ELSE 7 END",
        [],
    )
    .expect("corrupt");
    assert_eq!(
        store.counts("demo").expect("counts"),
        Counts {
            signatures: 41,
            unverified: 7
        },
        "counts read the counter"
    );
    assert_eq!(
        store.recount("demo").expect("recount"),
        Counts {
            signatures: 1,
            unverified: 1
        }
    );
    assert_eq!(
        store.counts("demo").expect("counts"),
        Counts {
            signatures: 1,
            unverified: 1
        }
    );
    // A deleted counters row is repaired too.
    db.execute("DELETE FROM counters", []).expect("delete");
    assert_eq!(store.counts("demo").expect("counts"), Counts::default());
    assert_eq!(
        store.recount("demo").expect("recount"),
        Counts {
            signatures: 1,
            unverified: 1
        }
    );
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Asserts that no file in `dir` holds any of `numbers`, and (to show the search sees the
/// data) that the files together do hold `key`.
fn assert_no_raw_numbers(dir: &Path, numbers: &[&str], key: &str) {
    let mut key_found = false;
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read db file");
        key_found |= contains(&bytes, key);
        for n in numbers {
            assert!(
                !contains(&bytes, n),
                "{} contains a raw number",
                path.display()
            );
        }
    }
    assert!(
        key_found,
        "the caller key is stored, so the files were searched with their data in them"
    );
}

#[test]
fn database_files_never_hold_raw_numbers() {
    let dir = TempDir::new();
    let raws = [
        "+32470123456",
        "0470 12 34 56",
        "0032470123456",
        "+32 470 65 43 21",
    ];
    // Every spelling, with and without separators, and the bare national digits.
    let needles = [
        "+32470123456",
        "32470123456",
        "0470123456",
        "470123456",
        "0470 12 34 56",
        "0032470123456",
        "+32 470 65 43 21",
        "32470654321",
        "470654321",
    ];
    let store = open(&dir);
    store.ensure_campaign("demo", "Demo").expect("ensure");
    // Every table gets data: contacts (encrypted), a review with a reason quoting a number
    // (scrubbed), an erasure and its audit entry.
    store
        .configure_campaign(
            "demo",
            &store::CampaignSettings {
                keep_contact: true,
                ..Default::default()
            },
        )
        .expect("configure");
    let ck = store::ContactKey::from_bytes([5; 32]);
    for raw in raws {
        let mut s = conformance::sig("demo", conformance::verified(raw));
        s.contact = ck.seal(Some(raw), "BE");
        store.sign(s).expect("sign");
    }
    assert_eq!(store.counts("demo").expect("counts").signatures, 2);
    assert_eq!(store.contacts("demo").expect("contacts").len(), 2);
    store
        .review(
            "demo",
            &store::SignatureFilter::default(),
            store::SignatureState::Valid,
            "confirmed with 0470 12 34 56 by phone",
        )
        .expect("review");
    store.ensure_campaign("other", "Other").expect("ensure");
    let other = conformance::verified("+32 470 65 43 21");
    store
        .sign(conformance::sig("other", other.clone()))
        .expect("sign");
    assert!(store
        .erase("other", other.key().expect("verified"))
        .expect("erase"));
    assert!(
        dir.path().join("belteken.db-wal").exists(),
        "the WAL is checked while it holds the data"
    );
    let caller = conformance::verified(raws[0]);
    let key = caller.key().expect("verified").as_str();
    assert_no_raw_numbers(dir.path(), &needles, key);
    drop(store); // checkpoints the WAL into the main file
    assert_no_raw_numbers(dir.path(), &needles, key);
}

/// Commits append to the WAL only; the checkpoint thread copies them into the database file
/// while the store is open (SQLite's automatic checkpoint, which would run inside a commit,
/// is off).
#[test]
fn the_wal_is_checkpointed_in_the_background() {
    let dir = TempDir::new();
    let db = dir.path().join("belteken.db");
    let store = open(&dir);
    store.ensure_campaign("demo", "Demo").expect("ensure");
    let empty = std::fs::metadata(&db).expect("db file").len();
    for i in 0..40 {
        let mut s = conformance::sig("demo", conformance::verified(&format!("+3247010{i:04}")));
        s.recording_wav = common::wav(32 * 1024);
        assert!(matches!(
            store.sign(s).expect("sign"),
            SignOutcome::Counted { .. }
        ));
    }
    // 40 recordings of 32 KiB: over a megabyte that must reach the database file itself.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let len = std::fs::metadata(&db).expect("db file").len();
        if len >= empty + 40 * 32 * 1024 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "database file still {len} bytes (was {empty}): no checkpoint"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(store.counts("demo").expect("counts").signatures, 40);
}
