//! The behaviour every `Store` backend must show. Each function takes a fresh, empty store.

use std::sync::Arc;

use store::{
    identify_caller, CallerIdentity, Counts, NewSignature, Secret, SignOutcome, Store, StoreError,
    MAX_RECORDING_BYTES,
};

use super::wav;

pub fn secret() -> Secret {
    Secret::from_bytes([7; 32])
}

pub fn verified(raw: &str) -> CallerIdentity {
    let id = identify_caller(Some(raw), "BE", &secret());
    assert!(
        matches!(id, CallerIdentity::Verified { .. }),
        "test number must be verified"
    );
    id
}

pub fn sig(campaign: &str, caller: CallerIdentity) -> NewSignature {
    NewSignature {
        campaign: campaign.into(),
        caller,
        recording_wav: wav(1000),
        speech_ms: 900,
        channel: "sip",
    }
}

pub fn sign_twice_counts_once(store: &dyn Store) {
    store.ensure_campaign("demo", "Demo").expect("ensure");
    let caller = verified("+32470000001");
    let key = caller.key().expect("verified").clone();
    assert!(!store.has_signed("demo", &key).expect("has_signed"));
    let first = store.sign(sig("demo", caller)).expect("sign");
    assert_eq!(
        first,
        SignOutcome::Counted {
            counts: Counts {
                signatures: 1,
                unverified: 0
            }
        }
    );
    assert!(store.has_signed("demo", &key).expect("has_signed"));
    // Same number in another notation.
    let second = store
        .sign(sig("demo", verified("0470 00 00 01")))
        .expect("sign");
    assert_eq!(
        second,
        SignOutcome::AlreadySigned {
            counts: Counts {
                signatures: 1,
                unverified: 0
            }
        }
    );
    assert_eq!(
        store.counts("demo").expect("counts"),
        Counts {
            signatures: 1,
            unverified: 0
        }
    );
    assert_eq!(
        store.recordings("demo").expect("recordings").len(),
        1,
        "AlreadySigned writes nothing"
    );
}

pub fn one_signature_per_campaign(store: &dyn Store) {
    store.ensure_campaign("a", "A").expect("ensure");
    store.ensure_campaign("b", "B").expect("ensure");
    assert!(matches!(
        store.sign(sig("a", verified("+32470000001"))),
        Ok(SignOutcome::Counted { .. })
    ));
    assert!(matches!(
        store.sign(sig("b", verified("+32470000001"))),
        Ok(SignOutcome::Counted { .. })
    ));
    assert_eq!(store.counts("a").expect("counts").signatures, 1);
    assert_eq!(store.counts("b").expect("counts").signatures, 1);
}

pub fn withheld_counts_as_unverified(store: &dyn Store) {
    store.ensure_campaign("demo", "Demo").expect("ensure");
    store
        .sign(sig("demo", verified("+32470000001")))
        .expect("sign");
    for _ in 0..2 {
        let out = store
            .sign(sig("demo", CallerIdentity::Withheld))
            .expect("sign");
        assert!(matches!(out, SignOutcome::Unverified { .. }));
    }
    assert_eq!(
        store.counts("demo").expect("counts"),
        Counts {
            signatures: 1,
            unverified: 2
        }
    );
    let recs = store.recordings("demo").expect("recordings");
    assert_eq!(
        recs.iter().map(|r| r.verified).collect::<Vec<_>>(),
        [true, false, false]
    );
    assert!(recs
        .iter()
        .all(|r| r.speech_ms == 900 && r.wav == wav(1000)));
}

pub fn bad_recordings_are_rejected(store: &dyn Store) {
    store.ensure_campaign("demo", "Demo").expect("ensure");
    let mut s = sig("demo", verified("+32470000001"));
    s.recording_wav = Vec::new();
    assert!(matches!(store.sign(s), Err(StoreError::EmptyRecording)));
    let mut s = sig("demo", verified("+32470000001"));
    s.recording_wav = wav(MAX_RECORDING_BYTES + 1);
    assert!(matches!(
        store.sign(s),
        Err(StoreError::RecordingTooLarge { .. })
    ));
    let mut s = sig("demo", CallerIdentity::Withheld);
    s.recording_wav = Vec::new();
    assert!(matches!(store.sign(s), Err(StoreError::EmptyRecording)));
    assert_eq!(store.counts("demo").expect("counts"), Counts::default());
    assert_eq!(store.recount("demo").expect("recount"), Counts::default());
    assert!(store.recordings("demo").expect("recordings").is_empty());
    // The caller was not marked as signed: a good recording still counts.
    let mut s = sig("demo", verified("+32470000001"));
    s.recording_wav = wav(MAX_RECORDING_BYTES);
    assert!(matches!(store.sign(s), Ok(SignOutcome::Counted { .. })));
}

pub fn unknown_campaign_is_an_error(store: &dyn Store) {
    assert!(matches!(
        store.counts("nope"),
        Err(StoreError::UnknownCampaign(_))
    ));
    assert!(matches!(
        store.sign(sig("nope", CallerIdentity::Withheld)),
        Err(StoreError::UnknownCampaign(_))
    ));
    let caller = verified("+32470000001");
    let key = caller.key().expect("verified");
    assert!(matches!(
        store.has_signed("nope", key),
        Err(StoreError::UnknownCampaign(_))
    ));
}

pub fn ensure_campaign_is_idempotent(store: &dyn Store) {
    store.ensure_campaign("demo", "Old title").expect("ensure");
    store
        .sign(sig("demo", CallerIdentity::Withheld))
        .expect("sign");
    store
        .ensure_campaign("demo", "New title")
        .expect("ensure again");
    assert_eq!(
        store.counts("demo").expect("counts"),
        Counts {
            signatures: 0,
            unverified: 1
        }
    );
    assert!(matches!(
        store.ensure_campaign("", "x"),
        Err(StoreError::Invalid { .. })
    ));
}

pub fn recount_matches_counters(store: &dyn Store) {
    store.ensure_campaign("demo", "Demo").expect("ensure");
    store
        .sign(sig("demo", verified("+32470000001")))
        .expect("sign");
    store
        .sign(sig("demo", verified("+32470000002")))
        .expect("sign");
    store
        .sign(sig("demo", CallerIdentity::Withheld))
        .expect("sign");
    let want = Counts {
        signatures: 2,
        unverified: 1,
    };
    assert_eq!(store.counts("demo").expect("counts"), want);
    assert_eq!(store.recount("demo").expect("recount"), want);
}

/// 8 threads sign 200 distinct numbers (and each number a second time) concurrently.
pub fn concurrent_signing(store: Arc<dyn Store>) {
    store.ensure_campaign("demo", "Demo").expect("ensure");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let mut counted = 0;
                for i in 0..25 {
                    let raw = format!("+3247{:07}", 1000 + t * 25 + i);
                    if let SignOutcome::Counted { .. } =
                        store.sign(sig("demo", verified(&raw))).expect("sign")
                    {
                        counted += 1;
                    }
                    // Every number also tries from the thread "next door" to race duplicates.
                    let other = format!("+3247{:07}", 1000 + ((t + 1) % 8) * 25 + i);
                    if let SignOutcome::Counted { .. } =
                        store.sign(sig("demo", verified(&other))).expect("sign")
                    {
                        counted += 1;
                    }
                }
                counted
            })
        })
        .collect();
    let counted: u64 = threads
        .into_iter()
        .map(|h| h.join().expect("no panic"))
        .sum();
    assert_eq!(counted, 200);
    assert_eq!(
        store.counts("demo").expect("counts"),
        Counts {
            signatures: 200,
            unverified: 0
        }
    );
    assert_eq!(
        store.recount("demo").expect("recount"),
        Counts {
            signatures: 200,
            unverified: 0
        }
    );
}
