//! The PostgreSQL backend against the conformance suite, each test in a schema of its own, plus
//! a check through SQL that no column of any table holds a raw number.
//!
//! Needs `BELTEKEN_TEST_PG_URL` (`.ci/run` starts a server and sets it). Without it the tests
//! pass vacuously on a developer's machine, but fail when `CI` is set: CI must not silently
//! skip the PostgreSQL backend.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::conformance;
use store::prelude::*;
use store::{CallerIdentity, ContactKey, PgStore, SignatureFilter, SignatureState};

fn base_url() -> Option<String> {
    match std::env::var("BELTEKEN_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but BELTEKEN_TEST_PG_URL is not: the PostgreSQL conformance suite \
                 must run in CI (.ci/run starts a server and sets it)"
            );
            eprintln!("BELTEKEN_TEST_PG_URL not set: PostgreSQL tests skipped");
            None
        }
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs SQL on a connection of its own.
fn admin<T>(url: &str, f: impl AsyncFnOnce(&tokio_postgres::Client) -> T) -> T {
    rt().block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect to the test server");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        f(&client).await
    })
}

/// A store in a fresh schema, dropped with the guard.
struct Fresh {
    store: Option<Arc<PgStore>>,
    base: String,
    schema: String,
}

impl Fresh {
    fn new(base: String) -> Fresh {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let schema = format!(
            "t_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        admin(&base, async |c| {
            c.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
            ))
            .await
            .expect("create schema");
        });
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        let store = PgStore::connect(&url).expect("connect store");
        Fresh {
            store: Some(Arc::new(store)),
            base,
            schema,
        }
    }

    fn store(&self) -> &PgStore {
        self.store.as_deref().expect("live until drop")
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        drop(self.store.take());
        let schema = self.schema.clone();
        admin(&self.base, async |c| {
            let _ = c
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .await;
        });
    }
}

/// Runs a conformance test on a store in a fresh schema; skipped without a server.
fn with_store(test: impl FnOnce(Arc<dyn Store>)) {
    let Some(base) = base_url() else { return };
    let fresh = Fresh::new(base);
    test(fresh.store.clone().expect("live until drop"));
}

conformance::suite!(with_store);

#[test]
fn recount_repairs_corrupted_counter() {
    let Some(base) = base_url() else { return };
    let fresh = Fresh::new(base.clone());
    let store = fresh.store();
    store.ensure_campaign("demo", "Demo").expect("ensure");
    store
        .sign(conformance::sig(
            "demo",
            conformance::verified("+32470000001"),
        ))
        .expect("sign");
    let schema = fresh.schema.clone();
    admin(&base, async |c| {
        c.batch_execute(&format!("UPDATE {schema}.counters SET n = 41"))
            .await
            .expect("corrupt");
    });
    assert_eq!(store.counts("demo").expect("counts").signatures, 41);
    assert_eq!(store.recount("demo").expect("recount").signatures, 1);
    assert_eq!(store.counts("demo").expect("counts").signatures, 1);
}

#[test]
fn no_column_holds_a_raw_number() {
    let Some(base) = base_url() else { return };
    let fresh = Fresh::new(base.clone());
    let store = fresh.store();
    store.ensure_campaign("demo", "Demo").expect("ensure");
    store
        .configure_campaign(
            "demo",
            &store::CampaignSettings {
                keep_contact: true,
                ..Default::default()
            },
        )
        .expect("configure");
    let ck = ContactKey::from_bytes([5; 32]);
    for raw in ["+32470123456", "0470 65 43 21", "+32 2 123 45 67"] {
        let mut s = conformance::sig("demo", conformance::verified(raw));
        s.contact = ck.seal(Some(raw), "BE");
        store.sign(s).expect("sign");
    }
    store
        .sign(conformance::sig("demo", CallerIdentity::Withheld))
        .expect("sign");
    store
        .review(
            "demo",
            &SignatureFilter {
                country: Some("BE".into()),
                ..Default::default()
            },
            SignatureState::Valid,
            "checked; caller +32 470 12 34 56 confirmed",
        )
        .expect("review");
    let key = conformance::verified("+32470654321")
        .key()
        .expect("verified")
        .clone();
    assert!(store.erase("demo", &key).expect("erase"));
    let needles = [
        "32470123456",
        "0470123456",
        "470123456",
        "470 12 34 56",
        "470654321",
        "21234567",
        "2 123 45 67",
    ];
    let schema = fresh.schema.clone();
    let texts: Vec<String> = admin(&base, async |c| {
        let tables = c
            .query(
                "SELECT table_name::TEXT FROM information_schema.tables WHERE table_schema = $1",
                &[&schema],
            )
            .await
            .expect("tables");
        let mut texts = Vec::new();
        for t in tables {
            let name: String = t.get(0);
            // Every column as text; bytea columns also in escape form, so digits stored as
            // bytes show as digits.
            let rows = c
                .query(&format!("SELECT t::TEXT FROM {schema}.{name} t"), &[])
                .await
                .expect("rows");
            texts.extend(rows.iter().map(|r| r.get::<_, String>(0)));
        }
        let rows = c
            .query(
                &format!(
                    "SELECT coalesce(encode(recording, 'escape'), '') || coalesce(encode(contact, 'escape'), '')
                     FROM {schema}.signatures"
                ),
                &[],
            )
            .await
            .expect("bytea");
        texts.extend(rows.iter().map(|r| r.get::<_, String>(0)));
        texts
    });
    let all = texts.join("\n");
    let stored_key = conformance::verified("+32470123456")
        .key()
        .expect("verified")
        .as_str()
        .to_owned();
    assert!(all.contains(&stored_key), "the search sees the data");
    for n in needles {
        assert!(
            !all.contains(n),
            "a column holds a raw number ({} digits)",
            n.len()
        );
    }
}

/// A read that waits (here on a table another session locked; in life an export) keeps one
/// reader connection; the call setup's reads take another and do not wait behind it.
#[test]
fn a_blocked_read_holds_up_no_other_read() {
    let Some(base) = base_url() else { return };
    let fresh = Fresh::new(base.clone());
    let store: Arc<dyn Store> = fresh.store.clone().expect("live");
    store.ensure_campaign("demo", "Demo").expect("ensure");
    let rt = rt();
    let locker = rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
            .batch_execute(&format!(
                "BEGIN; LOCK TABLE {}.call_summaries IN ACCESS EXCLUSIVE MODE",
                fresh.schema
            ))
            .await
            .expect("lock");
        client
    });
    let s = Arc::clone(&store);
    let blocked = std::thread::spawn(move || s.funnel("demo", None, None, None).map(drop));
    // Wait until the funnel's read is queued on the lock.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let waiting: i64 = rt.block_on(async {
            locker
                .query_one("SELECT count(*) FROM pg_locks WHERE NOT granted", &[])
                .await
                .expect("pg_locks")
                .get(0)
        });
        if waiting > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the funnel read never waited"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (done, answered) = std::sync::mpsc::channel();
    let s = Arc::clone(&store);
    let reader = std::thread::spawn(move || done.send(s.counts("demo").map(|c| c.signatures)));
    // Waiting here until the lock goes (the failure) ends with the limit, not a hang.
    let got = answered.recv_timeout(std::time::Duration::from_secs(30));
    rt.block_on(async { locker.batch_execute("ROLLBACK").await.expect("unlock") });
    blocked.join().expect("funnel thread").expect("funnel");
    reader.join().expect("reader thread").expect("send");
    assert_eq!(
        got.expect("counts answered while a read was blocked")
            .expect("counts"),
        0
    );
}
