//! The behaviour every `Store` backend must show. Each function takes a fresh, empty store;
//! [`suite!`] makes a test of each for a backend.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use store::prelude::*;
use store::{
    check_secret, identify_caller, AnomalyDimension, AnomalyThresholds, BelgianRegion,
    CallerIdentity, CampaignSettings, ContactKey, CountPolicy, Counts, NewSignature, NumberKind,
    RetentionStep, Secret, SecretCheck, SignOutcome, SignatureFilter, SignatureRetention,
    SignatureState, StoreError, Trust, MAX_RECORDING_BYTES,
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
        trust: None,
        flow_version: Some("v1".into()),
        contact: None,
    }
}

/// Makes a `#[test]` of every conformance function. `$with_store` runs a test with a fresh,
/// empty store of the backend (`fn(impl FnOnce(Arc<dyn Store>))`), or skips it when the
/// backend is not available.
#[allow(unused_macros)] // test binaries other than the backends' include this module too
macro_rules! suite {
    ($with_store:path) => {
        $crate::common::conformance::suite!(@tests $with_store,
            by_ref: [
                sign_twice_counts_once,
                one_signature_per_campaign,
                withheld_counts_as_unverified,
                bad_recordings_are_rejected,
                unknown_campaign_is_an_error,
                ensure_campaign_is_idempotent,
                recount_matches_counters,
                rotation_rekeys_without_double_count,
                classification_is_stored,
                review_preview_apply_revert,
                erase_by_key,
                contact_and_retention,
                anomalies_flag_bursts,
                export_zip,
                cloud_call_state,
                campaign_edits_and_clips,
                console_users_sessions_and_tokens,
                call_summaries_give_funnel_and_curve,
                review_queue_pages,
                secret_fingerprint_refuses_another_key,
                review_filter_text_is_scrubbed_in_the_audit_log,
            ],
            shared: [concurrent_signing, usable_from_inside_a_runtime]
        );
    };
    (@tests $with_store:path, by_ref: [$($r:ident),* $(,)?], shared: [$($s:ident),* $(,)?]) => {
        $(
            #[test]
            fn $r() {
                $with_store(|store| $crate::common::conformance::$r(&*store));
            }
        )*
        $(
            #[test]
            fn $s() {
                $with_store($crate::common::conformance::$s);
            }
        )*
    };
}
#[allow(unused_imports)]
pub(crate) use suite;

/// The store works from every thread an async program calls it on: a `spawn_blocking` thread
/// carries a runtime context, and (though it blocks) so does a worker thread. Neither may
/// panic.
pub fn usable_from_inside_a_runtime(store: Arc<dyn Store>) {
    store.ensure_campaign("demo", "Demo").expect("ensure");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let s = Arc::clone(&store);
        let blocking = tokio::task::spawn_blocking(move || s.counts("demo"));
        assert_eq!(
            blocking.await.expect("no panic").expect("counts"),
            Counts::default()
        );
        let s = Arc::clone(&store);
        let on_worker = tokio::spawn(async move { s.counts("demo") });
        assert_eq!(
            on_worker.await.expect("no panic").expect("counts"),
            Counts::default()
        );
    });
    drop(rt);
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

/// Key rotation: a caller signed under the old secret is found under it, re-keyed, and never
/// counted twice, by `sign` and by `has_signed_identity`.
pub fn rotation_rekeys_without_double_count(store: &dyn Store) {
    store.ensure_campaign("a", "A").expect("ensure");
    store.ensure_campaign("b", "B").expect("ensure");
    let old = Secret::from_bytes([7; 32]);
    let new = Secret::from_bytes([9; 32]).with_previous(old.clone());
    let id_old = |raw: &str| identify_caller(Some(raw), "BE", &old);
    let id_new = |raw: &str| identify_caller(Some(raw), "BE", &new);
    for c in ["a", "b"] {
        assert!(matches!(
            store.sign(sig(c, id_old("+32470000001"))),
            Ok(SignOutcome::Counted { .. })
        ));
    }
    // A second number signs only under the old key, then calls again after rotation.
    let caller = id_new("0470 00 00 01");
    let new_key = caller.key().expect("verified").clone();
    assert!(!store.has_signed("a", &new_key).expect("has_signed"));
    assert!(store.has_signed_identity("a", &caller).expect("has_signed"));
    // Re-keyed in every campaign at once.
    assert!(store.has_signed("a", &new_key).expect("has_signed"));
    assert!(store.has_signed("b", &new_key).expect("has_signed"));
    // Through sign as well, for a caller not yet seen since the rotation.
    store.sign(sig("a", id_old("+32470000002"))).expect("sign");
    let out = store.sign(sig("a", id_new("+32470000002"))).expect("sign");
    assert!(matches!(out, SignOutcome::AlreadySigned { .. }), "{out:?}");
    let fresh = id_new("+32470000002");
    assert!(store
        .has_signed("a", fresh.key().expect("verified"))
        .expect("has_signed"));
    let want = Counts {
        signatures: 2,
        unverified: 0,
    };
    assert_eq!(store.counts("a").expect("counts"), want);
    assert_eq!(store.recount("a").expect("recount"), want);
    assert_eq!(store.counts("b").expect("counts").signatures, 1);
    // Without the old secret, the new key alone still finds the re-keyed rows.
    let only_new = Secret::from_bytes([9; 32]);
    let c = identify_caller(Some("+32470000001"), "BE", &only_new);
    assert!(store.has_signed_identity("b", &c).expect("has_signed"));
}

/// Classification, trust and flow version are stored beside the key.
pub fn classification_is_stored(store: &dyn Store) {
    store.ensure_campaign("demo", "Demo").expect("ensure");
    let mut s = sig("demo", verified("+32 470 12 34 56"));
    s.trust = Some(Trust::NetworkAsserted);
    store.sign(s).expect("sign");
    store
        .sign(sig("demo", verified("+32 2 123 45 67")))
        .expect("sign");
    store
        .sign(sig("demo", verified("+31 6 12345678")))
        .expect("sign");
    let mut w = sig("demo", CallerIdentity::Withheld);
    w.trust = Some(Trust::NetworkAsserted); // a withheld caller is withheld whatever is claimed
    store.sign(w).expect("sign");
    let rows = store.signature_rows("demo").expect("rows");
    assert_eq!(rows.len(), 4);
    let r = &rows[0];
    assert_eq!(
        (
            r.country.as_deref(),
            r.kind,
            r.be_region,
            r.prefix_block.as_deref(),
            r.trust
        ),
        (
            Some("BE"),
            Some(NumberKind::Mobile),
            None,
            Some("+32 4701"),
            Trust::NetworkAsserted
        )
    );
    assert_eq!(
        (r.state, r.flow_version.as_deref()),
        (SignatureState::Pending, Some("v1"))
    );
    let r = &rows[1];
    assert_eq!(
        (r.kind, r.be_region, r.prefix_block.as_deref(), r.trust),
        (
            Some(NumberKind::Fixed),
            Some(BelgianRegion::Brussels),
            Some("+32 212"),
            Trust::FromHeader
        )
    );
    assert_eq!(rows[2].country.as_deref(), Some("NL"));
    let r = &rows[3];
    assert_eq!(
        (
            r.verified,
            r.trust,
            r.country.as_deref(),
            r.prefix_block.as_deref()
        ),
        (false, Trust::Withheld, None, None)
    );
}

/// Bulk invalidation: preview, apply with a reason, counts follow, audit, revert.
pub fn review_preview_apply_revert(store: &dyn Store) {
    store.ensure_campaign("demo", "Demo").expect("ensure");
    for i in 0..5 {
        store
            .sign(sig("demo", verified(&format!("+3247000000{i}"))))
            .expect("sign");
    }
    store
        .sign(sig("demo", verified("+31612345678")))
        .expect("sign");
    store
        .sign(sig("demo", CallerIdentity::Withheld))
        .expect("sign");
    let by_block = SignatureFilter {
        prefix_block: Some("+32 4700".into()),
        ..SignatureFilter::default()
    };
    assert_eq!(store.preview("demo", &by_block).expect("preview"), 5);
    let nl = SignatureFilter {
        country: Some("NL".into()),
        ..SignatureFilter::default()
    };
    assert_eq!(store.preview("demo", &nl).expect("preview"), 1);
    let withheld = SignatureFilter {
        trust: Some(Trust::Withheld),
        ..SignatureFilter::default()
    };
    assert_eq!(store.preview("demo", &withheld).expect("preview"), 1);
    let future = SignatureFilter {
        since: Some(SystemTime::now() + Duration::from_secs(3600)),
        ..SignatureFilter::default()
    };
    assert_eq!(store.preview("demo", &future).expect("preview"), 0);
    let past = SignatureFilter {
        until: Some(SystemTime::now() + Duration::from_secs(3600)),
        since: Some(SystemTime::now() - Duration::from_secs(3600)),
        ..SignatureFilter::default()
    };
    assert_eq!(store.preview("demo", &past).expect("preview"), 7);
    assert!(matches!(
        store.review("demo", &by_block, SignatureState::Invalid, " "),
        Err(StoreError::Invalid { .. })
    ));
    let action = store
        .review(
            "demo",
            &by_block,
            SignatureState::Fraudulent,
            "burst from one block",
        )
        .expect("review");
    assert_eq!(action.changed, 5);
    assert_eq!(
        store.counts("demo").expect("counts"),
        Counts {
            signatures: 1,
            unverified: 1
        }
    );
    assert_eq!(
        store.recount("demo").expect("recount"),
        store.counts("demo").expect("counts")
    );
    // Reviewing the same filter again changes nothing.
    let again = store
        .review("demo", &by_block, SignatureState::Fraudulent, "again")
        .expect("review");
    assert_eq!(again.changed, 0);
    let log = store.audit_log(Some("demo")).expect("audit");
    assert!(log
        .iter()
        .any(|e| e.action == "review" && e.detail.contains("burst from one block")));
    assert_eq!(
        store
            .revert_review(action.id, "false alarm")
            .expect("revert"),
        5
    );
    assert_eq!(store.revert_review(action.id, "twice").expect("revert"), 0);
    assert!(matches!(
        store.revert_review(9_999_999, "nope"),
        Err(StoreError::UnknownReviewAction(_))
    ));
    assert_eq!(
        store.counts("demo").expect("counts"),
        Counts {
            signatures: 6,
            unverified: 1
        }
    );
    // Count policy: valid only counts what a reviewer validated.
    let settings = CampaignSettings {
        count_policy: CountPolicy::ValidOnly,
        ..CampaignSettings::default()
    };
    store
        .configure_campaign("demo", &settings)
        .expect("configure");
    assert_eq!(store.campaign_settings("demo").expect("settings"), settings);
    assert_eq!(store.counts("demo").expect("counts"), Counts::default());
    store
        .review("demo", &nl, SignatureState::Valid, "checked by phone")
        .expect("review");
    assert_eq!(
        store.counts("demo").expect("counts"),
        Counts {
            signatures: 1,
            unverified: 0
        }
    );
    let out = store
        .sign(sig("demo", verified("+32470000009")))
        .expect("sign");
    assert_eq!(
        out.counts().signatures,
        1,
        "a new pending signature is not counted yet"
    );
}

/// Erasure by key deletes the row and its recording, repairs counts, and audits without a key.
pub fn erase_by_key(store: &dyn Store) {
    store.ensure_campaign("demo", "Demo").expect("ensure");
    let caller = verified("+32470000001");
    let key = caller.key().expect("verified").clone();
    store.sign(sig("demo", caller)).expect("sign");
    store
        .sign(sig("demo", verified("+32470000002")))
        .expect("sign");
    assert!(store.erase("demo", &key).expect("erase"));
    assert!(!store.erase("demo", &key).expect("erase twice"));
    assert!(!store.has_signed("demo", &key).expect("has_signed"));
    assert_eq!(store.counts("demo").expect("counts").signatures, 1);
    assert_eq!(store.recordings("demo").expect("recordings").len(), 1);
    let log = store.audit_log(None).expect("audit");
    let entry = log.iter().find(|e| e.action == "erase").expect("audited");
    assert_eq!(entry.campaign.as_deref(), Some("demo"));
    assert!(!entry.detail.contains(key.as_str()) && !entry.detail.contains("470"));
    // The caller may sign again after withdrawing.
    assert!(matches!(
        store.sign(sig("demo", verified("+32470000001"))),
        Ok(SignOutcome::Counted { .. })
    ));
}

/// Contacts are kept only where the campaign allows it, and destroyed when it closes;
/// recordings, then signatures, go when their days are up.
pub fn contact_and_retention(store: &dyn Store) {
    store.ensure_campaign("demo", "Demo").expect("ensure");
    store.ensure_campaign("open", "Open").expect("ensure");
    let ck = ContactKey::from_bytes([3; 32]);
    let with_contact = |raw: &str| {
        let mut s = sig("demo", verified(raw));
        s.contact = ck.seal(Some(raw), "BE");
        assert!(s.contact.is_some());
        s
    };
    store.sign(with_contact("+32470000001")).expect("sign");
    assert!(
        store.contacts("demo").expect("contacts").is_empty(),
        "off by default"
    );
    let closes = SystemTime::now() + Duration::from_secs(86_400);
    let settings = CampaignSettings {
        keep_contact: true,
        closes_at: Some(closes),
        recordings_days: Some(30),
        signatures_days: Some(90),
        signature_retention: SignatureRetention::Anonymise,
        ..CampaignSettings::default()
    };
    store
        .configure_campaign("demo", &settings)
        .expect("configure");
    store.sign(with_contact("+32470000002")).expect("sign");
    store
        .sign(sig("open", verified("+32470000002")))
        .expect("sign");
    let contacts = store.contacts("demo").expect("contacts");
    assert_eq!(contacts.len(), 1);
    assert_eq!(ck.open(&contacts[0].1).expect("opens"), "+32470000002");
    assert!(ContactKey::from_bytes([4; 32])
        .open(&contacts[0].1)
        .is_err());

    let day = Duration::from_secs(86_400);
    let report = store.retention_run(SystemTime::now()).expect("retention");
    assert!(report.steps.is_empty(), "still open: {report:?}");
    let report = store.retention_run(closes + day).expect("retention");
    assert_eq!(
        report.steps,
        vec![("demo".to_owned(), RetentionStep::DeleteContacts, 1)]
    );
    assert!(store.contacts("demo").expect("contacts").is_empty());
    assert_eq!(store.recordings("demo").expect("recordings").len(), 2);
    let report = store.retention_run(closes + day * 31).expect("retention");
    assert_eq!(
        report.steps,
        vec![("demo".to_owned(), RetentionStep::DeleteRecordings, 2)]
    );
    assert!(store.recordings("demo").expect("recordings").is_empty());
    assert_eq!(store.counts("demo").expect("counts").signatures, 2);
    let report = store.retention_run(closes + day * 91).expect("retention");
    assert_eq!(
        report.steps,
        vec![("demo".to_owned(), RetentionStep::AnonymiseSignatures, 2)]
    );
    let rows = store.signature_rows("demo").expect("rows");
    assert!(rows
        .iter()
        .all(|r| r.anonymised && r.prefix_block.is_none() && !r.has_recording));
    assert!(rows.iter().all(|r| r.created_at.ends_with("T00:00:00Z")));
    assert_eq!(
        store.counts("demo").expect("counts").signatures,
        2,
        "anonymised still count"
    );
    let key = verified("+32470000001").key().expect("verified").clone();
    assert!(
        !store.has_signed("demo", &key).expect("has_signed"),
        "the key is gone"
    );
    // The open campaign was not touched.
    assert_eq!(store.recordings("open").expect("recordings").len(), 1);
    // Deleting instead of anonymising.
    let delete = CampaignSettings {
        signature_retention: SignatureRetention::Delete,
        ..settings
    };
    store
        .configure_campaign("demo", &delete)
        .expect("configure");
    let report = store.retention_run(closes + day * 91).expect("retention");
    assert_eq!(
        report.steps,
        vec![("demo".to_owned(), RetentionStep::DeleteSignatures, 2)]
    );
    assert_eq!(store.counts("demo").expect("counts"), Counts::default());
    assert!(store
        .audit_log(Some("demo"))
        .expect("audit")
        .iter()
        .any(|e| e.action == "retention"));
}

/// A burst from one prefix block is flagged.
pub fn anomalies_flag_bursts(store: &dyn Store) {
    store.ensure_campaign("demo", "Demo").expect("ensure");
    for i in 0..12 {
        store
            .sign(sig("demo", verified(&format!("+324700000{i:02}"))))
            .expect("sign");
    }
    store
        .sign(sig("demo", verified("+31612345678")))
        .expect("sign");
    let report = store
        .anomalies("demo", &AnomalyThresholds::default())
        .expect("anomalies");
    assert_eq!(report.total, 13);
    // The signatures may straddle a minute boundary; the busier minute has at least 6.
    let loose = AnomalyThresholds {
        per_prefix_block_per_minute: 6,
        ..AnomalyThresholds::default()
    };
    let report = store.anomalies("demo", &loose).expect("anomalies");
    assert!(report
        .flagged
        .iter()
        .any(|b| b.dimension == AnomalyDimension::PrefixBlock && b.value == "+32 4700"));
    assert!(report.flagged.iter().all(|b| b.value != "+31 6123"));
}

/// The export ZIP: CSV without numbers or keys, recordings by id, summary with thresholds.
pub fn export_zip(store: &dyn Store) {
    store.ensure_campaign("demo", "Demo").expect("ensure");
    let caller = verified("+32 2 123 45 67");
    let key = caller.key().expect("verified").as_str().to_owned();
    store.sign(sig("demo", caller)).expect("sign");
    store
        .sign(sig("demo", verified("+32 9 123 45 67")))
        .expect("sign");
    store
        .sign(sig("demo", verified("+32470000001")))
        .expect("sign");
    store
        .sign(sig("demo", CallerIdentity::Withheld))
        .expect("sign");
    let mut buf = std::io::Cursor::new(Vec::new());
    assert_eq!(store::export(store, "demo", &mut buf).expect("export"), 4);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(buf.into_inner())).expect("zip");
    let mut read = |name: &str| {
        let mut s = String::new();
        zip.by_name(name)
            .expect(name)
            .read_to_string(&mut s)
            .expect("utf-8");
        s
    };
    let sigs = read("signatures.csv");
    let lines: Vec<&str> = sigs.lines().collect();
    assert_eq!(
        lines[0],
        "id,time,country,region,number_type,state,trust,verified,flow_version,recording"
    );
    assert_eq!(lines.len(), 5);
    assert!(lines[1].contains(",BE,brussels,fixed,pending,from,true,v1,recordings/"));
    assert!(lines[2].contains(",BE,flanders,fixed,"));
    assert!(!sigs.contains(&key) && !sigs.contains("1234567") && !sigs.contains("470000001"));
    let summary = read("summary.csv");
    assert!(summary.contains("total,all,3,1,,"), "{summary}");
    assert!(summary.contains("country,BE,3,0,,"), "{summary}");
    assert!(summary.contains("country,withheld,0,1,,"), "{summary}");
    assert!(
        summary.contains("be_region,flanders,1,0,14500,no"),
        "{summary}"
    );
    assert!(
        summary.contains("be_region,brussels,1,0,2500,no"),
        "{summary}"
    );
    let wavs = (0..zip.len())
        .filter(|&i| {
            zip.by_index(i)
                .expect("entry")
                .name()
                .starts_with("recordings/")
        })
        .count();
    assert_eq!(wavs, 4);
}

pub fn cloud_call_state(store: &dyn Store) {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let later = now + Duration::from_secs(3600);
    assert!(store.load_call("twilio:CA1", now).expect("load").is_none());
    // A new call: expected version 0.
    assert!(store
        .save_call("twilio:CA1", 0, b"one", later)
        .expect("save"));
    // Another node creating the same call loses.
    assert!(!store
        .save_call("twilio:CA1", 0, b"other", later)
        .expect("save"));
    let s = store
        .load_call("twilio:CA1", now)
        .expect("load")
        .expect("saved");
    assert_eq!(s.data, b"one");
    // Optimistic concurrency: the first writer of version 1 wins, the second must reload.
    assert!(store
        .save_call("twilio:CA1", s.version, b"two", later)
        .expect("save"));
    assert!(!store
        .save_call("twilio:CA1", s.version, b"stale", later)
        .expect("save"));
    let s2 = store
        .load_call("twilio:CA1", now)
        .expect("load")
        .expect("saved");
    assert_eq!(s2.data, b"two");
    assert!(s2.version > s.version);
    // Expiry: invisible once expired, then purged.
    assert!(store
        .load_call("twilio:CA1", later)
        .expect("load")
        .is_none());
    assert!(store
        .save_call("twilio:CA2", 0, b"x", later + Duration::from_secs(60))
        .expect("save"));
    assert_eq!(store.purge_calls(later).expect("purge"), 1);
    assert!(store
        .load_call("twilio:CA2", later)
        .expect("load")
        .is_some());
    // Limits.
    assert!(store.save_call("", 0, b"x", later).is_err());
    let huge = vec![0u8; store::MAX_CALL_STATE_BYTES + 1];
    assert!(store.save_call("twilio:CA3", 0, &huge, later).is_err());
}

pub fn campaign_edits_and_clips(store: &dyn Store) {
    store.ensure_campaign("ed", "Edited").expect("campaign");
    store.ensure_campaign("other", "Other").expect("campaign");
    let fresh = store.campaign_edits("ed").expect("edits");
    assert_eq!(fresh, store::CampaignEdits::default());
    assert!(store.clips("ed").expect("clips").is_empty());
    assert!(matches!(
        store.campaign_edits("nope"),
        Err(StoreError::UnknownCampaign(_))
    ));

    // An edit document replaces the previous one and bumps the version.
    let v1 = store
        .save_campaign_edit("ed", r#"{"goal":10}"#, "alice")
        .expect("edit");
    let v2 = store
        .save_campaign_edit("ed", r#"{"goal":20}"#, "alice")
        .expect("edit");
    assert!(v2 > v1 && v1 > 0, "{v1} {v2}");
    let e = store.campaign_edits("ed").expect("edits");
    assert_eq!(
        (e.version, e.document.as_deref()),
        (v2, Some(r#"{"goal":20}"#))
    );

    // Clips: one per name and language, replaced by a new upload.
    let clip = |name: &str, lang: &str, n: usize, ms: u64| store::NewClip {
        name: name.into(),
        language: lang.into(),
        wav: wav(n),
        duration_ms: ms,
    };
    let v3 = store
        .save_clip("ed", &clip("story", "en", 1000, 1500), "bob")
        .expect("clip");
    store
        .save_clip("ed", &clip("story", "nl", 2000, 2500), "bob")
        .expect("clip");
    let v5 = store
        .save_clip("ed", &clip("story", "en", 3000, 3500), "bob")
        .expect("clip");
    assert!(v3 > v2 && v5 > v3);
    let clips = store.clips("ed").expect("clips");
    assert_eq!(clips.len(), 2, "{clips:?}");
    let en = clips.iter().find(|c| c.language == "en").expect("en clip");
    assert_eq!(
        (en.name.as_str(), en.wav.len(), en.duration_ms),
        ("story", 3000, 3500)
    );
    assert!(en.uploaded_at.ends_with('Z'), "{}", en.uploaded_at);
    assert!(store.clips("other").expect("clips").is_empty());

    // Polling sees every campaign's version; the other campaign was never edited.
    let versions = store.edit_versions().expect("versions");
    assert!(versions.contains(&("ed".to_string(), v5)), "{versions:?}");
    assert!(versions.contains(&("other".to_string(), 0)), "{versions:?}");

    // Limits: nothing is written and the version stays.
    let too_big = vec![b' '; store::MAX_EDIT_BYTES + 1];
    let too_big = String::from_utf8(too_big).expect("ascii");
    assert!(store.save_campaign_edit("ed", &too_big, "alice").is_err());
    assert!(store.save_campaign_edit("ed", "{}", "").is_err());
    assert!(store
        .save_clip(
            "ed",
            &clip("story", "en", store::MAX_CLIP_BYTES + 1, 1),
            "bob"
        )
        .is_err());
    assert!(store
        .save_clip("ed", &clip("", "en", 10, 1), "bob")
        .is_err());
    assert!(store
        .save_clip("ed", &clip("story", "", 10, 1), "bob")
        .is_err());
    assert!(store
        .save_clip("nope", &clip("story", "en", 10, 1), "bob")
        .is_err());
    assert_eq!(store.campaign_edits("ed").expect("edits").version, v5);

    // Reset goes back to the configuration: no document, no clips, a newer version.
    let v6 = store.reset_campaign_edits("ed", "carol").expect("reset");
    assert!(v6 > v5);
    let e = store.campaign_edits("ed").expect("edits");
    assert_eq!((e.version, e.document), (v6, None));
    assert!(store.clips("ed").expect("clips").is_empty());

    // Every change is audited with who and what, never the contents.
    let log = store.audit_log(Some("ed")).expect("audit");
    let actions: Vec<&str> = log.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "campaign_edit",
            "campaign_edit",
            "clip_upload",
            "clip_upload",
            "clip_upload",
            "campaign_reset"
        ]
    );
    assert!(log[0].detail.contains("alice"), "{:?}", log[0]);
    assert!(!log[0].detail.contains("goal"), "{:?}", log[0]);
    assert!(log[2].detail.contains("story (en)") && log[2].detail.contains("bob"));
    assert!(log[5].detail.contains("2 clips"), "{:?}", log[5]);
}

pub fn console_users_sessions_and_tokens(store: &dyn Store) {
    use store::{hash_password, token_hash, verify_password, Role, SessionLimits};
    let hash = hash_password("a long enough password").expect("hash");
    assert!(store
        .add_console_user("alice", Role::Admin, &hash)
        .expect("add"));
    assert!(!store
        .add_console_user("alice", Role::Reviewer, &hash)
        .expect("add twice"));
    assert!(store
        .add_console_user("bob", Role::Reviewer, &hash)
        .expect("add bob"));
    assert!(store
        .add_console_user("bad name!", Role::Admin, &hash)
        .is_err());
    let (alice, stored) = store.console_user("alice").expect("get").expect("alice");
    assert_eq!(alice.role, Role::Admin);
    assert!(verify_password("a long enough password", &stored));
    assert!(store.console_user("carol").expect("get").is_none());
    let names: Vec<String> = store
        .console_users()
        .expect("list")
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["alice", "bob"]);

    // Sessions: found by hash, touched, expired when idle or too old, ended on logout.
    let limits = SessionLimits {
        idle: Duration::from_secs(600),
        absolute: Duration::from_secs(3600),
    };
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let token = store::new_token();
    let h = token_hash(&token);
    store
        .create_console_session(&h, "bob", "csrf-1", t0)
        .expect("session");
    let s = store
        .console_session(&h, t0 + Duration::from_secs(500), limits)
        .expect("lookup")
        .expect("alive");
    assert_eq!(
        (s.user.as_str(), s.role, s.csrf.as_str()),
        ("bob", Role::Reviewer, "csrf-1")
    );
    // Used at 500 s, so still alive at 1000 s (idle 500 s) ...
    assert!(store
        .console_session(&h, t0 + Duration::from_secs(1000), limits)
        .expect("lookup")
        .is_some());
    // ... but not past the absolute limit, however busy.
    assert!(store
        .console_session(&h, t0 + Duration::from_secs(3600), limits)
        .expect("lookup")
        .is_none());
    assert!(store
        .console_session(&h, t0, limits)
        .expect("lookup")
        .is_none());
    let idle = token_hash(&store::new_token());
    store
        .create_console_session(&idle, "bob", "c", t0)
        .expect("session");
    assert!(store
        .console_session(&idle, t0 + Duration::from_secs(601), limits)
        .expect("lookup")
        .is_none());
    let out = token_hash(&store::new_token());
    store
        .create_console_session(&out, "alice", "c", t0)
        .expect("session");
    store.end_console_session(&out).expect("logout");
    assert!(store
        .console_session(&out, t0, limits)
        .expect("lookup")
        .is_none());
    assert!(store
        .console_session("not-a-hash", t0, limits)
        .expect("lookup")
        .is_none());
    // A password change ends the user's sessions.
    let again = token_hash(&store::new_token());
    store
        .create_console_session(&again, "alice", "c", t0)
        .expect("session");
    assert!(store
        .set_console_password("alice", &hash)
        .expect("password"));
    assert!(!store
        .set_console_password("carol", &hash)
        .expect("password"));
    assert!(store
        .console_session(&again, t0, limits)
        .expect("lookup")
        .is_none());

    // At most 20 sessions per user: a new login ends the least recently used.
    let many: Vec<String> = (0..21).map(|_| token_hash(&store::new_token())).collect();
    for (i, h) in many.iter().enumerate() {
        store
            .create_console_session(h, "alice", "c", t0 + Duration::from_secs(i as u64))
            .expect("session");
    }
    let later = t0 + Duration::from_secs(30);
    assert!(store
        .console_session(&many[0], later, limits)
        .expect("lookup")
        .is_none());
    for h in &many[1..] {
        assert!(store
            .console_session(h, later, limits)
            .expect("lookup")
            .is_some());
    }

    // API tokens, good until they expire.
    let api = token_hash(&store::new_token());
    let expires = t0 + Duration::from_secs(90 * 86_400);
    assert!(store
        .create_api_token(&api, "alice", "dashboard", t0, expires)
        .expect("token"));
    assert!(!store
        .create_api_token(&token_hash("x"), "alice", "dashboard", t0, expires)
        .expect("same label"));
    assert!(!store
        .create_api_token(&token_hash("y"), "carol", "x", t0, expires)
        .expect("unknown user"));
    assert_eq!(
        store
            .api_token_user(&api, t0)
            .expect("lookup")
            .map(|u| u.name),
        Some("alice".to_string())
    );
    assert!(store
        .api_token_user(&api, expires - Duration::from_secs(1))
        .expect("lookup")
        .is_some());
    assert!(
        store
            .api_token_user(&api, expires)
            .expect("lookup")
            .is_none(),
        "an expired token is refused"
    );
    let listed = store.api_tokens().expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].expires_at, store::rfc3339_utc(expires));
    assert!(store
        .delete_api_token("alice", "dashboard")
        .expect("delete"));
    assert!(store.api_token_user(&api, t0).expect("lookup").is_none());

    // Deleting a user ends their sessions and tokens.
    let bobs = token_hash(&store::new_token());
    store
        .create_console_session(&bobs, "bob", "c", t0)
        .expect("session");
    let bob_api = token_hash(&store::new_token());
    assert!(store
        .create_api_token(&bob_api, "bob", "t", t0, t0 + Duration::from_secs(86_400))
        .expect("token"));
    assert!(store.delete_console_user("bob").expect("delete"));
    assert!(!store.delete_console_user("bob").expect("delete twice"));
    assert!(store
        .console_session(&bobs, t0, limits)
        .expect("lookup")
        .is_none());
    assert!(store
        .api_token_user(&bob_api, t0)
        .expect("lookup")
        .is_none());

    // Audit: user changes and what the console records, with numbers scrubbed.
    store
        .record_audit(
            None,
            "login",
            "alice from 127.0.0.1, typed +32 470 12 34 56",
        )
        .expect("audit");
    let log = store.audit_log(None).expect("audit log");
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    for a in [
        "user created",
        "password changed",
        "API token created",
        "user deleted",
        "login",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    // The newest first, a page at a time.
    let recent = store.audit_recent(None, None, 2).expect("recent");
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[0].id, log.last().expect("entry").id);
    assert!(recent[0].id > recent[1].id);
    let older = store
        .audit_recent(None, Some(recent[1].id), 1000)
        .expect("older");
    assert_eq!(older.len(), log.len() - 2);
    assert!(store
        .audit_recent(Some("no-such-campaign"), None, 10)
        .expect("recent")
        .is_empty());
    let last = log.last().expect("entry");
    assert!(!last.detail.contains("470"), "{}", last.detail);
    for e in &log {
        assert!(!e.detail.contains("argon2"), "no hash in the audit log");
    }
}

pub fn call_summaries_give_funnel_and_curve(store: &dyn Store) {
    use store::CallSummary;
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let call =
        |heard_ms: u64, answered: bool, completed: bool, signed: bool, version: &str| CallSummary {
            campaign: "demo".into(),
            flow_version: Some(version.into()),
            channel: "sip".into(),
            ended_at: Some(t0),
            answered,
            story_heard_ms: heard_ms,
            story_completed: completed,
            recorded: signed,
            signed,
        };
    store
        .record_calls(&[
            call(0, false, false, false, "v1"),
            call(500, true, false, false, "v1"),
            call(2_400, true, false, false, "v1"),
            call(3_100, true, true, true, "v1"),
            call(3_900, true, true, false, "v2"),
        ])
        .expect("record");
    let f = store.funnel("demo", None, None, None).expect("funnel");
    assert_eq!(
        (f.calls, f.answered, f.story_completed, f.recorded, f.signed),
        (5, 4, 2, 1, 1)
    );
    // Seconds heard: 0, 2, 3, 3 → still listening at 0..=3: 4, 3, 3, 2.
    assert_eq!(f.curve, vec![4, 3, 3, 2]);
    let v1 = store
        .funnel("demo", Some("v1"), None, None)
        .expect("funnel");
    assert_eq!((v1.calls, v1.answered, v1.signed), (4, 3, 1));
    assert_eq!(v1.curve, vec![3, 2, 2, 1]);
    let later = store
        .funnel("demo", None, Some(t0 + Duration::from_secs(1)), None)
        .expect("funnel");
    assert_eq!(later, store::Funnel::default());
    assert_eq!(
        store.funnel("other", None, None, None).expect("funnel"),
        store::Funnel::default()
    );
    let mut bad = call(0, true, false, false, "v1");
    bad.campaign = String::new();
    assert!(store.record_calls(&[bad]).is_err());
}

pub fn review_queue_pages(store: &dyn Store) {
    store.ensure_campaign("demo", "Demo").expect("ensure");
    store.ensure_campaign("other", "Other").expect("ensure");
    for i in 0..5 {
        store
            .sign(sig("demo", verified(&format!("+3247000010{i}"))))
            .expect("sign");
    }
    store
        .sign(sig("other", verified("+32470000199")))
        .expect("sign");
    let ids: Vec<i64> = store
        .signature_rows("demo")
        .expect("rows")
        .iter()
        .map(|r| r.id)
        .collect();
    store
        .set_states("demo", &ids[1..2], SignatureState::Valid, "ok", "one")
        .expect("review");
    let (page, total) = store
        .signatures_in_state("demo", SignatureState::Pending, 0, 2)
        .expect("page");
    assert_eq!(total, 4);
    assert_eq!(
        page.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[0], ids[2]]
    );
    let (next, _) = store
        .signatures_in_state("demo", SignatureState::Pending, ids[2], 10)
        .expect("page");
    assert_eq!(
        next.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[3], ids[4]]
    );
    assert!(next
        .iter()
        .all(|r| r.state == SignatureState::Pending && r.has_recording));
    let (valid, n) = store
        .signatures_in_state("demo", SignatureState::Valid, 0, 10)
        .expect("page");
    assert_eq!((valid.len(), n), (1, 1));
    // Per minute: all five just now, none before an hour ago in the future.
    let now = SystemTime::now();
    let per_minute = store
        .signatures_by_minute("demo", now - Duration::from_secs(3600))
        .expect("per minute");
    assert_eq!(
        per_minute.iter().map(|m| m.1).sum::<u64>(),
        5,
        "{per_minute:?}"
    );
    assert!(per_minute
        .iter()
        .all(|(m, _)| m.len() == 16 && m.as_bytes()[10] == b'T'));
    assert!(store
        .signatures_by_minute("demo", now + Duration::from_secs(120))
        .expect("per minute")
        .is_empty());
    assert!(matches!(
        store.signatures_in_state("nope", SignatureState::Pending, 0, 10),
        Err(StoreError::UnknownCampaign(_))
    ));
}

/// The store keeps the fingerprint of the secret its caller keys are made with: the first key
/// claims it, the same key passes, another key is refused (saying what to do, never showing a
/// key), and a rotation whose previous key is the stored one moves it to the new key.
pub fn secret_fingerprint_refuses_another_key(store: &dyn Store) {
    let a = Secret::from_bytes([7; 32]);
    let b = Secret::from_bytes([9; 32]);
    assert_eq!(store.secret_fingerprint().expect("read"), None);
    assert_eq!(
        check_secret(store, &a).expect("claim"),
        SecretCheck::Claimed
    );
    assert_eq!(
        store.secret_fingerprint().expect("read").as_deref(),
        Some(a.fingerprint().as_str())
    );
    assert_eq!(check_secret(store, &a).expect("same"), SecretCheck::Same);
    let err = check_secret(store, &b).expect_err("another key is refused");
    assert!(matches!(err, StoreError::SecretMismatch { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("secret.previous.key"), "{text}");
    assert!(
        !text.contains(&hex_of(&[7; 32])) && !text.contains(&hex_of(&[9; 32])),
        "{text}"
    );
    // A refused key changed nothing.
    assert_eq!(
        store.secret_fingerprint().expect("read").as_deref(),
        Some(a.fingerprint().as_str())
    );
    // Rotation a -> b: the store follows; then b alone is the key and a is refused.
    let rotating = b.clone().with_previous(a.clone());
    assert_eq!(
        check_secret(store, &rotating).expect("rotate"),
        SecretCheck::Rotated
    );
    assert_eq!(
        check_secret(store, &rotating).expect("again"),
        SecretCheck::Same
    );
    assert_eq!(check_secret(store, &b).expect("b alone"), SecretCheck::Same);
    assert!(matches!(
        check_secret(store, &a),
        Err(StoreError::SecretMismatch { .. })
    ));
    // A rotation from a key the store never had is refused too.
    let c = Secret::from_bytes([3; 32]).with_previous(Secret::from_bytes([4; 32]));
    assert!(matches!(
        check_secret(store, &c),
        Err(StoreError::SecretMismatch { .. })
    ));
    // Compare-and-set: a stale expectation changes nothing.
    assert!(!store
        .swap_secret_fingerprint(None, &a.fingerprint())
        .expect("swap"));
    assert!(!store
        .swap_secret_fingerprint(Some(&a.fingerprint()), &c.fingerprint())
        .expect("swap"));
    assert!(store.swap_secret_fingerprint(None, "not hex").is_err());
    assert_eq!(
        store.secret_fingerprint().expect("read").as_deref(),
        Some(b.fingerprint().as_str())
    );
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A bulk invalidation's filter is typed by an operator: a "prefix block" that is really a
/// phone number, or a long text, must not reach the audit log or the stored review action.
pub fn review_filter_text_is_scrubbed_in_the_audit_log(store: &dyn Store) {
    store.ensure_campaign("a", "A").expect("ensure");
    store
        .sign(sig("a", verified("+32470000001")))
        .expect("sign");
    for prefix in [
        "+32470123456",
        "+32 470 12 34 56",
        "04\u{202f}70\u{202f}12\u{202f}34\u{202f}56",
        &"+32 4701 ".repeat(200),
    ] {
        let filter = SignatureFilter {
            prefix_block: Some(prefix.to_owned()),
            ..SignatureFilter::default()
        };
        store
            .review("a", &filter, SignatureState::Invalid, "burst")
            .expect("review");
    }
    let filter = SignatureFilter {
        country: Some("0470123456".into()),
        ..SignatureFilter::default()
    };
    store
        .review("a", &filter, SignatureState::Invalid, "burst")
        .expect("review");
    // set_states takes a description from its caller: scrubbed and bounded there too.
    let long = format!("by hand 0470 12 34 56 {}", "x".repeat(10_000));
    store
        .set_states("a", &[], SignatureState::Invalid, "burst", &long)
        .expect("set_states");
    let log = store.audit_log(Some("a")).expect("audit");
    assert!(log.len() >= 6, "{log:?}");
    for e in &log {
        let digits: String = e.detail.chars().filter(char::is_ascii_digit).collect();
        assert!(
            !digits.contains("470123456") && !e.detail.contains("4701 +32"),
            "{e:?}"
        );
        assert!(e.detail.len() <= 2_000, "{} bytes", e.detail.len());
    }
    // A real prefix block is kept, readable.
    let filter = SignatureFilter {
        prefix_block: Some("+32 4700".into()),
        ..SignatureFilter::default()
    };
    store
        .review("a", &filter, SignatureState::Invalid, "burst")
        .expect("review");
    let log = store.audit_log(Some("a")).expect("audit");
    assert!(
        log.iter()
            .any(|e| e.detail.contains("prefix_block=+32 4700")),
        "{log:?}"
    );
}
