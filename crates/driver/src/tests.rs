//! The driver against a real SQLite store, with a channel that writes down what it was asked.

#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use flow::engine::{CallFacts, Input, Outcome, PromptRef, SignResult};
use flow::spec::{FlowSpec, FlowToml, VoicemailParams};

use super::*;

#[derive(Default)]
struct Log {
    said: Vec<String>,
    /// Whether `play` finds audio.
    silent: bool,
}

impl Channel for Log {
    fn ring(&mut self) {
        self.said.push("ring".into());
    }
    fn answer(&mut self, _now: Instant) -> bool {
        self.said.push("answer".into());
        true
    }
    fn play(&mut self, _now: Instant, prompts: &[PromptRef], _barge_in: bool) -> bool {
        self.said.push(format!("play {}", prompts.len()));
        !self.silent
    }
    fn start_recording(&mut self, _limits: RecordingLimits) {
        self.said.push("record".into());
    }
    fn discard_recording(&mut self) {
        self.said.push("discard".into());
    }
    fn transfer(&mut self, uri: String) {
        self.said.push(format!("transfer {uri}"));
    }
    fn hangup(&mut self) {
        self.said.push("hangup".into());
    }
}

struct Dir(std::path::PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn petition() -> (Petition, Dir) {
    let dir = std::env::temp_dir().join(format!(
        "belteken-driver-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let store = store::SqliteStore::open(&dir.join("t.db")).unwrap();
    store::Campaigns::ensure_campaign(&store, "demo", "Demo").unwrap();
    (
        Petition {
            store: Arc::new(store),
            hub: store::CountHub::default(),
        },
        Dir(dir),
    )
}

fn rand_suffix() -> u128 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        + u128::from(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

fn caller(n: &str) -> Arc<store::CallerIdentity> {
    let secret = store::Secret::from_bytes([7; 32]);
    Arc::new(store::identify_caller(Some(n), "BE", &secret))
}

fn call(n: &str) -> CallInfo {
    CallInfo {
        id: "test-call".into(),
        campaign: "demo".into(),
        flow_version: "v1".into(),
        caller: caller(n),
        trust: store::Trust::NetworkAsserted,
        channel: "sip",
    }
}

fn voicemail() -> Arc<FlowSpec> {
    let mut raw = FlowToml::voicemail(&VoicemailParams::default());
    for p in ["greeting", "story", "thanks"] {
        raw.prompts
            .insert(p.into(), flow::spec::PromptFiles::All(format!("{p}.wav")));
    }
    Arc::new(FlowSpec::build("demo", raw).unwrap())
}

/// Runs a voicemail call to its signature; the channel's log and the driver.
/// `already_signed` as the call saw it when it started.
fn sign_once(p: &Petition, n: &str, already_signed: bool) -> (Log, Driver, SignResult) {
    let t0 = Instant::now();
    let facts = CallFacts {
        already_signed,
        count: p.count("demo"),
        ..CallFacts::default()
    };
    let mut d = Driver::new(voicemail(), facts, t0, call(n), None, None);
    let mut ch = Log::default();
    let mut now = t0;
    let mut result = None;
    for _ in 0..50 {
        let jobs = d.step(now, &mut ch);
        for job in jobs {
            let input = job.run(p);
            if let Input::Signed(r) = input {
                result = Some(r);
            }
            d.handle(now, input);
        }
        if d.is_done() {
            break;
        }
        now += Duration::from_secs(1);
        if ch.said.last().is_some_and(|s| s == "record") {
            let wav = media::wav::pcm16_mono(&[1000; 8000], 8000);
            ch.said.push("(recorded)".into());
            d.recorded(
                now,
                Recording {
                    wav,
                    speech: Duration::from_secs(1),
                },
                Duration::from_secs(1),
            );
        } else if d.poll_timeout().is_some_and(|t| t <= now) {
            d.handle(now, Input::Timer);
        } else if ch.said.last().is_some_and(|s| s.starts_with("play")) {
            d.handle(now, Input::PromptFinished);
        }
    }
    (ch, d, result.expect("the flow signed"))
}

#[test]
fn a_voicemail_call_signs_once_with_its_recording() {
    let (p, _dir) = petition();
    assert!(!p.already_signed("demo", &caller("+32470000001")));
    let (ch, d, r) = sign_once(&p, "+32470000001", false);
    assert_eq!(r, SignResult::Counted { number: 1 });
    assert!(ch.said.iter().any(|s| s == "record"), "{:?}", ch.said);
    assert!(ch.said.iter().any(|s| s == "hangup"), "{:?}", ch.said);
    assert_eq!(
        d.outcome(),
        Outcome::Signed(SignResult::Counted { number: 1 })
    );
    assert_eq!(p.count("demo"), 1, "the live count follows");
    let summary = d.summary(Instant::now(), SystemTime::now());
    assert!(summary.recorded && summary.signed, "{summary:?}");
    // The recording is the one the channel handed over.
    let stored = p.store.recordings("demo").unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].wav, media::wav::pcm16_mono(&[1000; 8000], 8000));
    assert_eq!(stored[0].speech_ms, 1000);
    // The same caller again, on a call that started before the first one signed (written
    // another way): the store keeps one signature.
    assert!(p.already_signed("demo", &caller("+32470000001")));
    let (_, _, again) = sign_once(&p, "+32 470 00 00 01", false);
    assert_eq!(again, SignResult::AlreadySigned);
    assert_eq!(p.count("demo"), 1);
}

#[test]
fn a_withdrawal_erases_and_resets_the_count() {
    let (p, _dir) = petition();
    sign_once(&p, "+32470000002", false);
    assert_eq!(p.count("demo"), 1);
    let gone = Job::Withdraw(Arc::new(call("+32470000002"))).run(&p);
    assert_eq!(gone, Input::Withdrawn(true));
    assert_eq!(p.count("demo"), 0);
    assert!(!p.already_signed("demo", &caller("+32470000002")));
    // Nothing left to withdraw; a withheld caller has nothing to withdraw.
    assert_eq!(
        Job::Withdraw(Arc::new(call("+32470000002"))).run(&p),
        Input::Withdrawn(false)
    );
    assert_eq!(
        Job::Withdraw(Arc::new(call("anonymous"))).run(&p),
        Input::Withdrawn(false)
    );
}

#[test]
fn nothing_to_play_is_over_at_once() {
    let t0 = Instant::now();
    let mut d = Driver::new(
        voicemail(),
        CallFacts::default(),
        t0,
        call("+32470000003"),
        None,
        None,
    );
    let mut ch = Log {
        silent: true,
        ..Log::default()
    };
    // Ringing, then the timer answers; every prompt is missing, so the flow reaches the
    // recording without a single PromptFinished from the channel.
    d.step(t0, &mut ch);
    let t = d.poll_timeout().unwrap();
    d.handle(t, Input::Timer);
    let jobs = d.step(t, &mut ch);
    assert!(jobs.is_empty());
    assert!(ch.said.iter().any(|s| s == "record"), "{:?}", ch.said);
}
