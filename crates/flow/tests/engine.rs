//! The engine step by step on a virtual clock: every step kind, barge-in, timers, hangups.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{describe, played, spec, Call};
use flow::engine::{Action, CallFacts, Input, Outcome, SignResult, MAX_HOPS_PER_INPUT};
use flow::spec::{FlowSpec, FlowToml, VoicemailParams};
use flow::Lang;

const S: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

fn d(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn voicemail(helpline: Option<&str>) -> std::sync::Arc<FlowSpec> {
    let mut raw = FlowToml::voicemail(&VoicemailParams {
        helpline: helpline.map(str::to_owned),
        ..VoicemailParams::default()
    });
    for p in ["greeting", "story", "thanks"] {
        raw.prompts
            .insert(p.into(), flow::spec::PromptFiles::All(format!("{p}.wav")));
    }
    std::sync::Arc::new(FlowSpec::build("demo", raw).expect("the default flow is valid"))
}

fn new_caller() -> CallFacts {
    CallFacts::default()
}

/// A call of `spec` past its ring and two prompts: on a voicemail flow, recording.
fn recording(spec: Arc<FlowSpec>) -> Call {
    let (mut c, _) = Call::new(spec, new_caller());
    c.fire_timer();
    c.send(Input::PromptFinished);
    c.send(Input::PromptFinished);
    c
}

/// A finished take with this much speech in it.
fn take(speech: Duration, length: Duration) -> Input {
    Input::RecordingFinished { speech, length }
}

#[test]
fn ring_waits_then_the_first_play_answers() {
    let (mut c, first) = Call::new(voicemail(None), new_caller());
    assert_eq!(describe(&first), d(&["ring"]));
    assert_eq!(c.engine.current_step(), "ring");
    assert_eq!(c.engine.poll_timeout(), Some(c.t0 + 3 * S));
    // An early timer does nothing; digits before the answer are ignored.
    c.after(S);
    assert!(c.send(Input::Timer).is_empty());
    assert!(c.send(Input::Digit('1')).is_empty());
    let a = c.fire_timer();
    assert_eq!(describe(&a), d(&["answer", "play:greeting+story"]));
    assert_eq!(c.elapsed(), 3 * S);
    assert_eq!(c.engine.current_step(), "story");
}

#[test]
fn glenn_voicemail_signs_by_speech() {
    let (mut c, _) = Call::new(voicemail(None), new_caller());
    c.fire_timer();
    // Keys during a prompt without barge-in change nothing.
    assert!(c.send(Input::Digit('5')).is_empty());
    assert_eq!(describe(&c.send(Input::PromptFinished)), d(&["play:beep"]));
    let a = c.send(Input::PromptFinished);
    assert_eq!(
        a,
        vec![Action::StartRecording {
            max: 20 * S,
            silence_end: 2 * S,
            initial_silence: 6 * S
        }]
    );
    assert!(c.send(Input::SpeechStarted).is_empty());
    assert!(c.send(Input::SpeechStopped).is_empty());
    let a = c.send(take(900 * MS, 4 * S));
    assert_eq!(describe(&a), d(&["sign"]));
    let a = c.send(Input::Signed(SignResult::Counted { number: 7 }));
    assert_eq!(describe(&a), d(&["play:thanks"]));
    assert_eq!(describe(&c.send(Input::PromptFinished)), d(&["hangup"]));
    assert!(c.engine.is_done());
    assert_eq!(
        c.engine.outcome(),
        Outcome::Signed(SignResult::Counted { number: 7 })
    );
}

#[test]
fn too_little_speech_is_not_a_signature() {
    let mut c = recording(voicemail(None));
    let a = c.send(take(499 * MS, 6 * S));
    assert_eq!(describe(&a), d(&["play:not_signed"]));
    assert_eq!(c.engine.outcome(), Outcome::NoSignature);
    assert_eq!(describe(&c.send(Input::PromptFinished)), d(&["hangup"]));
    assert_eq!(c.engine.outcome(), Outcome::NoSignature);
}

#[test]
fn caller_who_hangs_up_while_recording_still_signs() {
    let mut c = recording(voicemail(None));
    assert_eq!(describe(&c.send(Input::Hangup)), d(&["stop-record"]));
    let a = c.send(take(S, 2 * S));
    assert_eq!(describe(&a), d(&["sign"]));
    // No thanks and no BYE: the caller is gone.
    assert!(c
        .send(Input::Signed(SignResult::Counted { number: 1 }))
        .is_empty());
    assert!(c.engine.is_done());
    assert_eq!(
        c.engine.outcome(),
        Outcome::Signed(SignResult::Counted { number: 1 })
    );
}

#[test]
fn store_failure_is_never_thanked() {
    let mut c = recording(voicemail(None));
    c.send(take(S, S));
    let a = c.send(Input::Signed(SignResult::Failed));
    assert_eq!(describe(&a), d(&["play:technical_problem"]));
    assert_eq!(c.engine.outcome(), Outcome::Signed(SignResult::Failed));
}

#[test]
fn hangups_before_and_after_the_answer() {
    let (mut c, _) = Call::new(voicemail(None), new_caller());
    c.after(S);
    assert!(c.send(Input::Hangup).is_empty());
    assert_eq!(c.engine.outcome(), Outcome::AbandonedRinging);
    assert!(c.engine.is_done());
    assert_eq!(c.engine.poll_timeout(), None);
    // Anything later is ignored.
    assert!(c.send(Input::PromptFinished).is_empty());

    let (mut c, _) = Call::new(voicemail(None), new_caller());
    c.fire_timer();
    assert!(c.send(Input::Hangup).is_empty());
    assert_eq!(c.engine.outcome(), Outcome::Abandoned);
}

#[test]
fn repeat_caller_hears_the_story_again_with_barge_in() {
    let facts = CallFacts {
        already_signed: true,
        ..CallFacts::default()
    };
    let (mut c, _) = Call::new(voicemail(None), facts);
    let a = c.fire_timer();
    assert_eq!(
        describe(&a),
        d(&[
            "answer",
            "play*:already_signed+press_1_story+press_9_withdraw"
        ])
    );
    // Pressing 1 during the menu prompt cuts it short.
    let a = c.send(Input::Digit('1'));
    assert_eq!(describe(&a), d(&["stop", "play*:story"]));
    assert_eq!(c.engine.current_step(), "story_again");
    // A key during the story barges in and is taken by the menu that follows.
    let a = c.send(Input::Digit('1'));
    assert_eq!(describe(&a), d(&["stop", "play*:story"]));
    let a = c.send(Input::PromptFinished);
    assert_eq!(
        describe(&a),
        d(&["play*:already_signed+press_1_story+press_9_withdraw"])
    );
    // Nothing pressed: one retry with the no-input prompt, then goodbye.
    c.send(Input::PromptFinished);
    assert_eq!(c.engine.poll_timeout(), Some(c.now + 5 * S));
    let a = c.fire_timer();
    assert_eq!(
        describe(&a),
        d(&["play*:no_input+already_signed+press_1_story+press_9_withdraw"])
    );
    c.send(Input::PromptFinished);
    let a = c.fire_timer();
    assert_eq!(describe(&a), d(&["hangup"]));
    assert_eq!(c.engine.outcome(), Outcome::Completed);
}

#[test]
fn invalid_key_hears_the_invalid_prompt() {
    let facts = CallFacts {
        already_signed: true,
        ..CallFacts::default()
    };
    let (mut c, _) = Call::new(voicemail(None), facts);
    c.fire_timer();
    c.send(Input::PromptFinished);
    let a = c.send(Input::Digit('7'));
    assert_eq!(
        describe(&a),
        d(&["play*:invalid_choice+already_signed+press_1_story+press_9_withdraw"])
    );
    // Not a DTMF key at all: ignored.
    assert!(c.send(Input::Digit('x')).is_empty());
    let a = c.send(Input::Digit('7'));
    assert_eq!(describe(&a), d(&["stop", "hangup"]));
}

#[test]
fn withdraw_is_confirmed_by_voice() {
    let facts = CallFacts {
        already_signed: true,
        ..CallFacts::default()
    };
    let (mut c, _) = Call::new(voicemail(None), facts.clone());
    c.fire_timer();
    c.send(Input::PromptFinished);
    let a = c.send(Input::Digit('9'));
    assert_eq!(describe(&a), d(&["play*:withdraw_confirm"]));
    c.send(Input::PromptFinished);
    assert_eq!(describe(&c.send(Input::Digit('1'))), d(&["withdraw"]));
    // The caller hanging up now does not stop the withdrawal.
    let a = c.send(Input::Withdrawn(true));
    assert_eq!(describe(&a), d(&["play:withdrawn"]));
    assert_eq!(describe(&c.send(Input::PromptFinished)), d(&["hangup"]));
    assert_eq!(c.engine.outcome(), Outcome::Withdrawn);

    // Another key cancels.
    let (mut c, _) = Call::new(voicemail(None), facts.clone());
    c.fire_timer();
    c.send(Input::Digit('9'));
    let a = c.send(Input::Digit('2'));
    assert_eq!(
        describe(&a),
        d(&["stop", "play:withdraw_cancelled+goodbye"])
    );
    assert_eq!(c.engine.current_step(), "kept");

    // The store finds nothing to delete.
    let (mut c, _) = Call::new(voicemail(None), facts);
    c.fire_timer();
    c.send(Input::Digit('9'));
    c.send(Input::Digit('1'));
    let a = c.send(Input::Withdrawn(false));
    assert_eq!(describe(&a), d(&["play:technical_problem"]));
    assert_eq!(c.engine.outcome(), Outcome::WithdrawFailed);
}

#[test]
fn helpline_offer_transfers_on_zero() {
    let spec = voicemail(Some("sip:help@example.org"));
    let (mut c, _) = Call::new(spec.clone(), new_caller());
    c.fire_timer();
    c.send(Input::PromptFinished);
    c.send(Input::PromptFinished);
    c.send(take(S, S));
    let a = c.send(Input::Signed(SignResult::Counted { number: 3 }));
    assert_eq!(describe(&a), d(&["play*:thanks+helpline_offer"]));
    let a = c.send(Input::Digit('0'));
    assert_eq!(describe(&a), d(&["stop", "play:connecting"]));
    let a = c.send(Input::PromptFinished);
    assert_eq!(describe(&a), d(&["transfer:sip:help@example.org"]));
    assert_eq!(
        describe(&c.send(Input::TransferResult(true))),
        d(&["hangup"])
    );
    // Signing is what counts; the transfer came after it.
    assert_eq!(
        c.engine.outcome(),
        Outcome::Signed(SignResult::Counted { number: 3 })
    );

    // A failed transfer apologises; no key at the offer just ends the call.
    let (mut c, _) = Call::new(spec.clone(), new_caller());
    c.fire_timer();
    c.send(Input::PromptFinished);
    c.send(Input::PromptFinished);
    c.send(take(S, S));
    c.send(Input::Signed(SignResult::Counted { number: 3 }));
    c.send(Input::PromptFinished);
    let a = c.fire_timer();
    assert_eq!(describe(&a), d(&["hangup"]));
    assert_eq!(c.elapsed(), 7 * S);

    let (mut c, _) = Call::new(spec, new_caller());
    c.fire_timer();
    c.send(Input::PromptFinished);
    c.send(Input::PromptFinished);
    c.send(take(S, S));
    c.send(Input::Signed(SignResult::Counted { number: 3 }));
    c.send(Input::Digit('0'));
    c.send(Input::PromptFinished);
    let a = c.send(Input::TransferResult(false));
    assert_eq!(describe(&a), d(&["play:transfer_failed+goodbye"]));
}

#[test]
fn branch_conditions_in_order() {
    for (facts, first_prompt) in [
        (
            CallFacts {
                outside_dates: true,
                already_signed: true,
                ..CallFacts::default()
            },
            "campaign_closed",
        ),
        (
            CallFacts {
                line_full: true,
                already_signed: true,
                ..CallFacts::default()
            },
            "line_busy",
        ),
        (
            CallFacts {
                already_signed: true,
                anonymous: true,
                ..CallFacts::default()
            },
            "already_signed",
        ),
        (
            CallFacts {
                anonymous: true,
                ..CallFacts::default()
            },
            "greeting",
        ),
    ] {
        let (mut c, _) = Call::new(voicemail(None), facts);
        let a = c.fire_timer();
        assert_eq!(played(&a)[0], first_prompt);
    }
    let spec = spec(
        r#"
[[step]]
name = "b"
kind = "branch"
anonymous = "anon"
[[step]]
name = "known"
kind = "hangup"
prompt = "goodbye"
[[step]]
name = "anon"
kind = "hangup"
"#,
    );
    let (c, a) = Call::new(
        spec.clone(),
        CallFacts {
            anonymous: true,
            ..CallFacts::default()
        },
    );
    assert_eq!(describe(&a), d(&["hangup"]));
    assert_eq!(c.engine.current_step(), "anon");
    let (c, a) = Call::new(spec, CallFacts::default());
    assert_eq!(describe(&a), d(&["answer", "play:goodbye"]));
    assert_eq!(c.engine.current_step(), "known");
}

const PRESS_1: &str = r#"
[[step]]
name = "story"
kind = "play"
prompt = "story"
barge_in = true

[[step]]
name = "ask"
kind = "menu"
prompt = "press_1_to_sign"
choices = { "1" = "sign" }
timeout_seconds = 3
retries = 0
invalid_prompt = ""
next = "bye"

[[step]]
name = "sign"
kind = "sign"
key_pressed = true

[[step]]
name = "number"
kind = "say_number"
prompt = ["signed", "signature_number_is"]
number = "signature"

[[step]]
name = "bye"
kind = "hangup"
prompt = "goodbye"

[prompts]
story = "story.wav"
"#;

#[test]
fn key_rule_and_say_number() {
    let (mut c, a) = Call::new(spec(PRESS_1), CallFacts::default());
    assert_eq!(describe(&a), d(&["answer", "play*:story"]));
    // Typeahead: 1 during the story goes straight through the menu.
    let a = c.send(Input::Digit('1'));
    assert_eq!(describe(&a), d(&["stop", "sign"]));
    let a = c.send(Input::Signed(SignResult::Counted { number: 1234 }));
    assert_eq!(
        describe(&a),
        d(&["play:signed+signature_number_is+#1+#1000+#2+#100+#and+#30+#4"])
    );
    c.send(Input::PromptFinished);
    assert_eq!(describe(&c.send(Input::PromptFinished)), d(&["hangup"]));

    // Already signed: no number from this call, so say_number is skipped.
    let (mut c, _) = Call::new(spec(PRESS_1), CallFacts::default());
    c.send(Input::PromptFinished);
    c.send(Input::PromptFinished);
    c.send(Input::Digit('1'));
    let a = c.send(Input::Signed(SignResult::AlreadySigned));
    assert_eq!(describe(&a), d(&["play:goodbye"]));

    // Wrong key with no invalid prompt and no retries: goodbye.
    let (mut c, _) = Call::new(spec(PRESS_1), CallFacts::default());
    c.send(Input::PromptFinished);
    let a = c.send(Input::Digit('5'));
    assert_eq!(describe(&a), d(&["stop", "play:goodbye"]));
    assert_eq!(c.engine.outcome(), Outcome::InProgress);
}

#[test]
fn listened_rule_and_say_count_in_each_language() {
    let text = r#"
languages = ["nl", "fr", "en"]
[[step]]
name = "lang"
kind = "language"
timeout_seconds = 2
retries = 1
[[step]]
name = "story"
kind = "play"
prompt = "story"
[[step]]
name = "sign"
kind = "sign"
listened_seconds = 30
unmet = "bye"
[[step]]
name = "count"
kind = "say_count"
prompt = "count_is"
[[step]]
name = "bye"
kind = "hangup"
[prompts.story]
nl = "nl/story.wav"
fr = "fr/story.wav"
en = "en/story.wav"
"#;
    let spec = spec(text);
    // French from the menu; 30 s of story: signed; the count is said in French.
    let (mut c, a) = Call::new(
        spec.clone(),
        CallFacts {
            count: 96,
            ..CallFacts::default()
        },
    );
    assert_eq!(describe(&a), d(&["answer", "play*:language_menu"]));
    assert_eq!(c.engine.language(), Lang::Nl);
    c.after(2 * S);
    let a = c.send(Input::Digit('2'));
    assert_eq!(describe(&a), d(&["stop", "lang:fr", "play:story"]));
    assert_eq!(c.engine.language(), Lang::Fr);
    match &a[2] {
        Action::Play { prompts, .. } => assert_eq!(
            prompts[0],
            flow::engine::PromptRef::Prompt {
                name: "story".into(),
                lang: Lang::Fr
            }
        ),
        other => panic!("{other:?}"),
    }
    c.after(30 * S);
    assert_eq!(describe(&c.send(Input::PromptFinished)), d(&["sign"]));
    let a = c.send(Input::Signed(SignResult::Counted { number: 97 }));
    assert_eq!(describe(&a), d(&["play:count_is+#97"]));
    assert_eq!(
        flow::say::clips(Lang::Fr, 97)[0].text(),
        "quatre-vingt-dix-sept"
    );

    // Too short a listen: unmet.
    let (mut c, _) = Call::new(spec.clone(), CallFacts::default());
    c.send(Input::PromptFinished);
    c.fire_timer();
    c.send(Input::PromptFinished);
    let a = c.fire_timer(); // no choice twice: default language, on to the story
    assert_eq!(describe(&a), d(&["play:story"]));
    assert_eq!(c.engine.language(), Lang::Nl);
    c.after(25 * S); // 4 s of menu + 25 s of story < 30 s
    let a = c.send(Input::PromptFinished);
    assert_eq!(describe(&a), d(&["hangup"]));
    assert_eq!(c.engine.outcome(), Outcome::NoSignature);

    // A language known from the DID skips the menu; one the flow lacks is ignored.
    let (c, a) = Call::new(
        spec.clone(),
        CallFacts {
            language: Some(Lang::En),
            ..CallFacts::default()
        },
    );
    assert_eq!(describe(&a), d(&["answer", "play:story"]));
    assert_eq!(c.engine.language(), Lang::En);
}

#[test]
fn record_with_confirm_keeps_or_records_again() {
    let text = r#"
[[step]]
name = "rec"
kind = "record"
max_seconds = 10
silence_seconds = 1.5
initial_silence_seconds = 4
confirm = true
max_takes = 2
timeout_seconds = 3
retries = 0
[[step]]
name = "sign"
kind = "sign"
speech_ms = 500
[[step]]
name = "bye"
kind = "hangup"
"#;
    let spec = spec(text);
    let (mut c, a) = Call::new(spec.clone(), CallFacts::default());
    assert_eq!(describe(&a), d(&["answer", "play:beep"]));
    let a = c.send(Input::PromptFinished);
    assert_eq!(
        a,
        vec![Action::StartRecording {
            max: 10 * S,
            silence_end: 1500 * MS,
            initial_silence: 4 * S
        }]
    );
    let a = c.send(take(S, 3 * S));
    assert_eq!(describe(&a), d(&["play*:keep_or_rerecord"]));
    // 2: record again (beep first); the first take's speech no longer counts.
    let a = c.send(Input::Digit('2'));
    assert_eq!(describe(&a), d(&["stop", "discard", "play:beep"]));
    c.send(Input::PromptFinished);
    let a = c.send(take(100 * MS, 3 * S));
    assert_eq!(describe(&a), d(&["play*:keep_or_rerecord"]));
    // The last take: 2 now keeps it.
    c.send(Input::PromptFinished);
    let a = c.send(Input::Digit('2'));
    assert_eq!(describe(&a), d(&["hangup"]));
    assert_eq!(c.engine.outcome(), Outcome::NoSignature);

    // 1 keeps; no answer keeps too; hanging up at the question keeps and signs.
    for how in ["1", "timeout", "hangup"] {
        let (mut c, _) = Call::new(spec.clone(), CallFacts::default());
        c.send(Input::PromptFinished);
        c.send(take(S, 3 * S));
        c.send(Input::PromptFinished);
        let a = match how {
            "1" => c.send(Input::Digit('1')),
            "timeout" => c.fire_timer(),
            _ => c.send(Input::Hangup),
        };
        assert_eq!(describe(&a), d(&["sign"]), "{how}");
    }
}

#[test]
fn transfer_step_with_its_own_uri() {
    let text = r#"
[[step]]
name = "t"
kind = "transfer"
uri = "sip:desk@example.org"
next = "sorry"
[[step]]
name = "sorry"
kind = "hangup"
prompt = "transfer_failed"
"#;
    let (mut c, a) = Call::new(spec(text), CallFacts::default());
    assert_eq!(
        describe(&a),
        d(&["answer", "transfer:sip:desk@example.org"])
    );
    // Stray inputs while waiting change nothing.
    assert!(c.send(Input::PromptFinished).is_empty());
    assert!(c.send(Input::Digit('1')).is_empty());
    assert_eq!(
        describe(&c.send(Input::TransferResult(true))),
        d(&["hangup"])
    );
    assert_eq!(c.engine.outcome(), Outcome::Transferred);
}

#[test]
fn a_loop_that_never_waits_is_cut() {
    let text = r#"
[[step]]
name = "a"
kind = "branch"
anonymous = "b"
[[step]]
name = "b"
kind = "branch"
anonymous = "a"
next = "a"
"#;
    let (c, a) = Call::new(
        spec(text),
        CallFacts {
            anonymous: true,
            ..CallFacts::default()
        },
    );
    assert_eq!(describe(&a), d(&["hangup"]));
    assert_eq!(c.engine.outcome(), Outcome::FlowError);
    const { assert!(MAX_HOPS_PER_INPUT >= 16) };
}

#[test]
fn answered_by_the_provider_skips_the_ring() {
    let (mut c, a) = Call::new(voicemail(None), CallFacts::default());
    assert_eq!(describe(&a), d(&["ring"]));
    let a = c.send(Input::Answered);
    // Already answered: no Answer action, straight to the story.
    assert_eq!(describe(&a), d(&["play:greeting+story"]));
}

/// Random inputs at random times never panic, and every call ends once the caller hangs up.
#[test]
fn any_input_sequence_is_safe() {
    let specs = [voicemail(None), voicemail(Some("sip:h@x")), spec(PRESS_1)];
    let inputs = [
        Input::Answered,
        Input::Digit('1'),
        Input::Digit('2'),
        Input::Digit('9'),
        Input::Digit('0'),
        Input::Digit('#'),
        Input::PromptFinished,
        Input::SpeechStarted,
        Input::SpeechStopped,
        take(S, S),
        Input::Signed(SignResult::Counted { number: 5 }),
        Input::Signed(SignResult::Failed),
        Input::Withdrawn(true),
        Input::TransferResult(false),
        Input::Timer,
    ];
    // A small xorshift: deterministic and seedless-free.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..3000 {
        let spec = specs[round % specs.len()].clone();
        let facts = CallFacts {
            already_signed: rnd() % 2 == 0,
            anonymous: rnd() % 4 == 0,
            ..CallFacts::default()
        };
        let (mut c, _) = Call::new(spec, facts);
        for _ in 0..(rnd() % 40) {
            c.after(Duration::from_millis(rnd() % 8000));
            let input = inputs[(rnd() % inputs.len() as u64) as usize];
            c.send(input);
            let _ = c.engine.current_step();
        }
        c.send(Input::Hangup);
        // Answer whatever the engine still waits on after the hangup.
        c.send(take(S, S));
        c.send(Input::Signed(SignResult::Counted { number: 9 }));
        c.send(Input::Withdrawn(true));
        assert!(
            c.engine.is_done(),
            "round {round}: {:?}",
            c.engine.outcome()
        );
        assert!(c.drain().iter().all(|a| !matches!(a, Action::Play { .. })));
        assert_ne!(c.engine.outcome(), Outcome::InProgress);
    }
}

#[test]
fn a_contact_step_asks_to_keep_the_number_only_when_the_caller_chooses_it() {
    let text = r#"
[[step]]
name = "ask"
kind = "menu"
prompt = "press_1_to_sign"
choices = { "1" = "contact", "2" = "record" }
timeout_seconds = 3
retries = 0
next = "record"

[[step]]
name = "contact"
kind = "play"
prompt = "signed"
contact = true
next = "record"

[[step]]
name = "record"
kind = "record"

[[step]]
name = "sign"
kind = "sign"
speech_ms = 500

[[step]]
name = "bye"
kind = "hangup"
prompt = "goodbye"
"#;
    let flow = spec(text);
    for (digit, wants) in [('1', true), ('2', false)] {
        let (mut call, _) = Call::new(flow.clone(), CallFacts::default());
        let after_digit = call.send(Input::Digit(digit));
        assert_eq!(
            after_digit.contains(&Action::KeepContact),
            wants,
            "digit {digit}: {after_digit:?}"
        );
    }
    // The key is checked at load time like every other.
    assert!(flow::spec::FlowSpec::parse(
        "t",
        "[[step]]\nname = \"a\"\nkind = \"say_count\"\ncontact = true\n"
    )
    .is_err());
}
