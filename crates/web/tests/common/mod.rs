//! What the integration tests share: a SQLite store in a temporary directory and signing.

use std::sync::Arc;

use store::{identify_caller, NewSignature, Secret, Store};

/// A SQLite store in a fresh directory, removed on drop.
pub struct TempStore {
    dir: std::path::PathBuf,
    pub store: Arc<dyn Store>,
}

impl TempStore {
    pub fn new(name: &str) -> TempStore {
        let dir = std::env::temp_dir().join(format!("belteken-web-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let store = store::SqliteStore::open(&dir.join("test.db")).expect("open SQLite");
        TempStore {
            dir,
            store: Arc::new(store),
        }
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Signs the campaign "demo" from `number`; the new signature's id.
pub fn sign(store: &dyn Store, number: &str, secret: &Secret) -> i64 {
    let outcome = store
        .sign(NewSignature {
            campaign: "demo".into(),
            caller: identify_caller(Some(number), "BE", secret),
            recording_wav: vec![0x7f; 64],
            speech_ms: 1200,
            channel: "test",
            trust: None,
            flow_version: None,
            contact: None,
        })
        .expect("sign");
    match outcome {
        store::SignOutcome::Counted { .. } => {}
        other => panic!("not counted: {other:?}"),
    }
    store
        .signature_rows("demo")
        .expect("rows")
        .last()
        .map(|r| r.id)
        .expect("a row")
}
