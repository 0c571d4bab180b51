//! Durable signatures per second through `Signing::sign` (group commit), for SQLite and
//! PostgreSQL, with a number of concurrent signers. Bounded: a fixed number of signatures per
//! run. Run it through `bench/store.sh`.
//!
//! Usage: store-bench sqlite DIR SIGNERS COUNT | store-bench pg URL SIGNERS COUNT

use std::sync::Arc;
use std::time::Instant;

use store::{identify_caller, CallerIdentity, NewSignature, Secret, SignOutcome, Store};

/// A recording of 2 s of 8 kHz µ-law plus a header: the size a real signature has.
const RECORDING_BYTES: usize = 16_044;

fn usage() -> ! {
    eprintln!("usage: store-bench (sqlite DIR | pg URL) SIGNERS COUNT");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [backend, target, signers, count] = args.as_slice() else {
        usage()
    };
    let signers: usize = signers.parse().unwrap_or_else(|_| usage());
    let count: usize = count.parse().unwrap_or_else(|_| usage());
    if signers == 0 || count == 0 || count > 1_000_000 {
        usage()
    }
    let mut cleanup = None;
    let store: Arc<dyn Store> = match backend.as_str() {
        "sqlite" => {
            let dir = std::path::Path::new(target);
            std::fs::create_dir_all(dir).expect("create the bench directory");
            let db = dir.join(format!("bench-{}.db", std::process::id()));
            cleanup = Some(db.clone());
            Arc::new(store::SqliteStore::open(&db).expect("open SQLite"))
        }
        "pg" => Arc::new(pg_store(target)),
        _ => usage(),
    };
    store.ensure_campaign("bench", "Bench").expect("ensure");
    let secret = Arc::new(Secret::from_bytes([1; 32]));
    // Keys are computed before the clock starts: the bench measures the store.
    let per = count.div_ceil(signers);
    let work: Vec<Vec<CallerIdentity>> = (0..signers)
        .map(|t| {
            (0..per)
                .map(|i| {
                    let n = t * per + i;
                    identify_caller(Some(&format!("+3247{n:07}")), "BE", &secret)
                })
                .collect()
        })
        .collect();
    let wav = vec![0x7fu8; RECORDING_BYTES];
    let start = Instant::now();
    let threads: Vec<_> = work
        .into_iter()
        .map(|callers| {
            let store = Arc::clone(&store);
            let wav = wav.clone();
            std::thread::spawn(move || {
                let mut worst = std::time::Duration::ZERO;
                let mut counted = 0u64;
                for caller in callers {
                    let t = Instant::now();
                    let out = store
                        .sign(NewSignature {
                            campaign: "bench".into(),
                            caller,
                            recording_wav: wav.clone(),
                            speech_ms: 1500,
                            channel: "bench",
                            trust: None,
                            flow_version: None,
                            contact: None,
                        })
                        .expect("sign");
                    worst = worst.max(t.elapsed());
                    counted += u64::from(matches!(out, SignOutcome::Counted { .. }));
                }
                (counted, worst)
            })
        })
        .collect();
    let mut counted = 0;
    let mut worst = std::time::Duration::ZERO;
    for t in threads {
        let (c, w) = t.join().expect("signer thread");
        counted += c;
        worst = worst.max(w);
    }
    let elapsed = start.elapsed();
    let counts = store.counts("bench").expect("counts");
    assert_eq!(counts.signatures, counted, "counters match");
    println!(
        "{backend:6} signers={signers:4} signatures={counted:6} seconds={:.2} durable_per_second={:.0} worst_sign_ms={}",
        elapsed.as_secs_f64(),
        counted as f64 / elapsed.as_secs_f64(),
        worst.as_millis()
    );
    drop(store);
    if let Some(db) = cleanup {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
    }
}

/// A store in a fresh schema (dropped again at exit by the script's next run or by hand).
fn pg_store(base: &str) -> store::PgStore {
    let schema = format!("bench_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        // Old bench schemas are dropped first, so runs never accumulate.
        let old = client
            .query(
                "SELECT nspname::TEXT FROM pg_namespace WHERE nspname LIKE 'bench\\_%'",
                &[],
            )
            .await
            .expect("schemas");
        for r in old {
            let name: String = r.get(0);
            client
                .batch_execute(&format!("DROP SCHEMA {name} CASCADE"))
                .await
                .expect("drop old bench schema");
        }
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .expect("create schema");
    });
    let sep = if base.contains('?') { '&' } else { '?' };
    store::PgStore::connect(&format!("{base}{sep}options=-c%20search_path%3D{schema}"))
        .expect("connect store")
}
