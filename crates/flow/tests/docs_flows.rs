//! Every flow in docs/flows.md, loaded from the page's own text and driven to its end.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{describe, Call};
use flow::engine::{Action, CallFacts, Input, Outcome, PromptRef, SignResult};
use flow::spec::{FlowSpec, FlowToml, PromptFiles, VoicemailParams};
use flow::Lang;
use serde::Deserialize;

const DOC: &str = include_str!("../../../docs/flows.md");

fn toml_blocks() -> Vec<&'static str> {
    DOC.split("```toml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or_default())
        .collect()
}

#[derive(Deserialize)]
struct Config {
    campaign: Vec<Campaign>,
}

#[derive(Deserialize)]
struct Campaign {
    slug: String,
    flow: FlowToml,
}

/// The flows of the page by their `# flow: NAME` line; config examples load as configs.
fn doc_flows() -> BTreeMap<String, Arc<FlowSpec>> {
    let mut flows = BTreeMap::new();
    for block in toml_blocks() {
        if block.contains("[[campaign]]") {
            let cfg: Config = toml::from_str(block).expect("the config example parses");
            for c in cfg.campaign {
                let spec =
                    FlowSpec::build(&c.slug, c.flow).expect("the config example's flow loads");
                flows.insert(format!("config:{}", c.slug), Arc::new(spec));
            }
            continue;
        }
        let name = block
            .lines()
            .find_map(|l| l.strip_prefix("# flow: "))
            .expect("every flow block starts with `# flow: NAME`")
            .trim()
            .to_owned();
        let spec = FlowSpec::parse(&name, block).unwrap_or_else(|e| panic!("{e}"));
        flows.insert(name, Arc::new(spec));
    }
    flows
}

/// A caller: presses `keys` one at a time whenever the line waits for a key (barging into
/// prompts that allow it), says something for `speech` when recorded, and answers every
/// store and transfer request. Returns the actions seen and the engine's outcome.
fn drive(
    spec: &Arc<FlowSpec>,
    facts: CallFacts,
    keys: &str,
    speech: Duration,
) -> (Vec<String>, Outcome, Lang) {
    let (mut c, first) = Call::new(spec.clone(), facts);
    let mut keys = keys.chars();
    let mut seen = describe(&first);
    let mut pending = first;
    let mut answered = false;
    for _ in 0..500 {
        let mut next = Vec::new();
        for action in pending.drain(..) {
            match action {
                Action::Answer => answered = true,
                Action::Play { prompts, barge_in } => {
                    for p in &prompts {
                        match p {
                            PromptRef::Prompt { name, lang } => assert!(
                                spec.prompt_source(name, *lang).is_some(),
                                "{name} has no audio in {lang}"
                            ),
                            PromptRef::Number(clip) => assert!(!clip.text().is_empty()),
                        }
                    }
                    let key = if barge_in { keys.next() } else { None };
                    c.after(Duration::from_secs(2));
                    next.extend(match key {
                        Some(k) => c.send(Input::Digit(k)),
                        None => c.send(Input::PromptFinished),
                    });
                }
                Action::StartRecording { .. } => {
                    c.after(Duration::from_secs(4));
                    next.extend(c.send(Input::RecordingFinished {
                        speech,
                        length: Duration::from_secs(4),
                    }));
                }
                Action::Sign => {
                    next.extend(c.send(Input::Signed(SignResult::Counted { number: 1971 })))
                }
                Action::Withdraw => next.extend(c.send(Input::Withdrawn(true))),
                Action::Transfer { .. } => next.extend(c.send(Input::TransferResult(true))),
                _ => {}
            }
        }
        if next.is_empty() {
            if c.engine.is_done() {
                let outcome = c.engine.outcome();
                return (seen, outcome, c.engine.language());
            }
            // Waiting on a key or the ring: press the next key, or let the time run out.
            let key = if answered && c.engine.poll_timeout().is_some() {
                keys.next()
            } else {
                None
            };
            next = match key {
                Some(k) => c.send(Input::Digit(k)),
                None => c.fire_timer(),
            };
        }
        seen.extend(describe(&next));
        pending = next;
    }
    panic!("the call did not end: {seen:?}");
}

fn signed() -> Outcome {
    Outcome::Signed(SignResult::Counted { number: 1971 })
}

fn repeat() -> CallFacts {
    CallFacts {
        already_signed: true,
        ..CallFacts::default()
    }
}

#[test]
fn the_page_has_the_three_flows_and_the_config_example() {
    let flows = doc_flows();
    let names: Vec<&str> = flows.keys().map(String::as_str).collect();
    assert_eq!(names, vec!["belgium", "config:demo", "press1", "voicemail"]);
}

#[test]
fn the_documented_voicemail_is_the_built_in_default() {
    let flows = doc_flows();
    let mut raw = FlowToml::voicemail(&VoicemailParams {
        helpline: Some("sip:helpline@example.org".into()),
        ..VoicemailParams::default()
    });
    for p in ["greeting", "story", "thanks"] {
        raw.prompts
            .insert(p.into(), PromptFiles::All(format!("{p}.wav")));
    }
    let built = FlowSpec::build("voicemail", raw).expect("valid");
    assert_eq!(*flows["voicemail"], built);
}

#[test]
fn voicemail_as_documented() {
    let spec = &doc_flows()["voicemail"];
    let (seen, outcome, _) = drive(spec, CallFacts::default(), "", Duration::from_secs(1));
    assert_eq!(outcome, signed());
    assert_eq!(
        seen,
        [
            "ring",
            "answer",
            "play:greeting+story",
            "play:beep",
            "record",
            "sign",
            "play*:thanks+helpline_offer",
            "hangup"
        ]
    );
    let (seen, outcome, _) = drive(spec, CallFacts::default(), "0", Duration::from_secs(1));
    assert_eq!(outcome, signed());
    assert!(
        seen.contains(&"transfer:sip:helpline@example.org".to_owned()),
        "{seen:?}"
    );
    let (_, outcome, _) = drive(spec, CallFacts::default(), "", Duration::from_millis(200));
    assert_eq!(outcome, Outcome::NoSignature);
    let (seen, outcome, _) = drive(spec, repeat(), "19", Duration::ZERO);
    assert_eq!(
        outcome,
        Outcome::Completed,
        "9 then no confirmation: {seen:?}"
    );
    let (_, outcome, _) = drive(spec, repeat(), "91", Duration::ZERO);
    assert_eq!(outcome, Outcome::Withdrawn);
    let (_, outcome, _) = drive(spec, repeat(), "", Duration::ZERO);
    assert_eq!(outcome, Outcome::Completed);
}

#[test]
fn press_1_as_documented() {
    let spec = &doc_flows()["press1"];
    let facts = CallFacts {
        count: 1970,
        ..CallFacts::default()
    };
    let (seen, outcome, _) = drive(spec, facts.clone(), "", Duration::ZERO);
    assert_eq!(outcome, Outcome::Completed, "nobody pressed 1: {seen:?}");
    let (seen, outcome, _) = drive(spec, facts.clone(), "5", Duration::ZERO);
    assert_eq!(outcome, Outcome::Completed, "5 is no choice: {seen:?}");
    assert!(
        seen.contains(&"play*:invalid_choice+press_1_to_sign".to_owned()),
        "{seen:?}"
    );
    // 1 during the story: straight to signing, then the number is said.
    let (seen, outcome, _) = drive(spec, facts, "1", Duration::ZERO);
    assert_eq!(outcome, signed());
    assert!(
        seen.contains(&"play:signed+signature_number_is+#1+#1000+#9+#100+#and+#70+#1".to_owned()),
        "{seen:?}"
    );
    let (seen, _, _) = drive(spec, repeat(), "", Duration::ZERO);
    assert!(seen.contains(&"play:already_signed".to_owned()));
}

#[test]
fn belgium_as_documented() {
    let spec = &doc_flows()["belgium"];
    // 2 = français; record, 2 = record again, 1 = keep; signed; no helpline.
    let (seen, outcome, lang) = drive(spec, CallFacts::default(), "221", Duration::from_secs(1));
    assert_eq!((outcome, lang), (signed(), Lang::Fr));
    assert_eq!(
        seen.iter().filter(|a| *a == "record").count(),
        2,
        "{seen:?}"
    );
    // 1971 in French: mille neuf cent soixante-et-onze.
    let said: Vec<&str> = flow::say::clips(Lang::Fr, 1971)
        .iter()
        .map(|c| c.text())
        .collect();
    assert_eq!(said, ["mille", "neuf", "cent", "soixante-et-onze"]);
    assert!(
        seen.contains(&"play:thanks+signature_number_is+#1000+#9+#100+#71".to_owned()),
        "{seen:?}"
    );
    // Nederlands, keep, helpline.
    let (seen, outcome, lang) = drive(spec, CallFacts::default(), "110", Duration::from_secs(1));
    assert_eq!((outcome, lang), (signed(), Lang::Nl));
    assert!(
        seen.contains(&"transfer:sip:hulplijn@example.be".to_owned()),
        "{seen:?}"
    );
    // The DID said English: no menu.
    let facts = CallFacts {
        language: Some(Lang::En),
        ..CallFacts::default()
    };
    let (seen, _, lang) = drive(spec, facts, "", Duration::from_secs(1));
    assert_eq!(lang, Lang::En);
    assert!(!seen.iter().any(|a| a.contains("language_menu")));
    // Repeat caller in French withdraws; another goes to the helpline.
    let (_, outcome, _) = drive(spec, repeat(), "291", Duration::ZERO);
    assert_eq!(outcome, Outcome::Withdrawn);
    let (_, outcome, _) = drive(spec, repeat(), "30", Duration::ZERO);
    assert_eq!(outcome, Outcome::Transferred);
    // Closed.
    let facts = CallFacts {
        outside_dates: true,
        ..CallFacts::default()
    };
    let (seen, outcome, _) = drive(spec, facts, "1", Duration::ZERO);
    assert_eq!(outcome, Outcome::Completed);
    assert!(seen.contains(&"play:campaign_closed".to_owned()));
}

#[test]
fn config_example_as_documented() {
    let spec = &doc_flows()["config:demo"];
    let (seen, outcome, _) = drive(spec, CallFacts::default(), "", Duration::from_secs(1));
    assert_eq!(outcome, signed());
    assert_eq!(
        seen,
        [
            "answer",
            "play:story",
            "play:beep",
            "record",
            "sign",
            "play:signed",
            "hangup"
        ]
    );
}

/// The numbers table on the page is what `say::spell` writes.
#[test]
fn the_numbers_table_is_right() {
    let table: Vec<Vec<&str>> = DOC
        .lines()
        .skip_while(|l| !l.starts_with("| | 21"))
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    assert_eq!(table.len(), 5, "header, rule, nl, fr, en");
    let numbers: Vec<u64> = table[0][1..]
        .iter()
        .map(|n| n.replace(',', "").parse().expect("a number"))
        .collect();
    for row in &table[2..] {
        let lang: Lang = row[0].parse().expect("a language");
        for (n, words) in numbers.iter().zip(&row[1..]) {
            assert_eq!(flow::say::spell(lang, *n), *words, "{lang} {n}");
        }
    }
}
