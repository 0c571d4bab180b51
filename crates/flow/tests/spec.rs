//! Flow validation: every mistake is an error naming the campaign, the step and the key.

use flow::spec::{FlowSpec, FlowToml, PromptSource, SpecErrorKind, StepKind, VoicemailParams};
use flow::Lang;

fn err(text: &str) -> flow::spec::SpecError {
    match FlowSpec::parse("demo", text) {
        Ok(_) => panic!("flow should not load:\n{text}"),
        Err(e) => e,
    }
}

const HANGUP: &str = "[[step]]\nname = \"end\"\nkind = \"hangup\"\n";

#[test]
fn unknown_kind_names_campaign_and_step() {
    let e = err(&format!(
        "[[step]]\nname = \"x\"\nkind = \"dance\"\n{HANGUP}"
    ));
    assert_eq!(e.kind, SpecErrorKind::UnknownKind("dance".into()));
    assert_eq!(e.step.as_deref(), Some("x"));
    assert_eq!(e.step_index, Some(0));
    let text = e.to_string();
    assert!(
        text.starts_with(
            "campaign `demo`, step `x` (step 1), key `kind`: unknown step kind `dance`"
        ),
        "{text}"
    );
}

#[test]
fn unknown_key_is_a_toml_error_with_its_position() {
    let e = err("[[step]]\nname = \"end\"\nkind = \"hangup\"\ncolour = \"red\"\n");
    match &e.kind {
        SpecErrorKind::Toml(msg) => {
            assert!(msg.contains("colour") && msg.contains("line 4"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
    let e = err("bogus = 1\n[[step]]\nname = \"end\"\nkind = \"hangup\"\n");
    assert!(matches!(e.kind, SpecErrorKind::Toml(_)));
}

#[test]
fn key_of_another_kind_is_refused() {
    let e = err("[[step]]\nname = \"p\"\nkind = \"play\"\nprompt = \"goodbye\"\nchoices = { \"1\" = \"end\" }\n[[step]]\nname = \"end\"\nkind = \"hangup\"\n");
    assert_eq!(
        e.kind,
        SpecErrorKind::KeyNotAllowed {
            kind: "play".into()
        }
    );
    assert_eq!(e.key.as_deref(), Some("choices"));
    let e = err("[[step]]\nname = \"end\"\nkind = \"hangup\"\nnext = \"end\"\n");
    assert_eq!(e.key.as_deref(), Some("next"));
}

#[test]
fn jump_to_nowhere() {
    let e = err(&format!(
        "[[step]]\nname = \"m\"\nkind = \"menu\"\nprompt = \"goodbye\"\nchoices = {{ \"1\" = \"nowhere\" }}\n{HANGUP}"
    ));
    assert_eq!(e.kind, SpecErrorKind::UnknownTarget("nowhere".into()));
    assert_eq!(
        (e.step.as_deref(), e.key.as_deref()),
        (Some("m"), Some("choices"))
    );
    let e = err("[[step]]\nname = \"p\"\nkind = \"play\"\nprompt = \"goodbye\"\n");
    assert_eq!(e.kind, SpecErrorKind::NoNext);
    let e = err(&format!("start = \"nope\"\n{HANGUP}"));
    assert_eq!(e.key.as_deref(), Some("start"));
}

#[test]
fn unreachable_step() {
    let e = err(&format!(
        "{HANGUP}[[step]]\nname = \"lost\"\nkind = \"hangup\"\n"
    ));
    assert_eq!(e.kind, SpecErrorKind::Unreachable);
    assert_eq!((e.step.as_deref(), e.step_index), (Some("lost"), Some(1)));
}

#[test]
fn missing_prompt_names_the_prompt_and_language() {
    let e = err("languages = [\"nl\", \"fr\"]\n[prompts.story]\nnl = \"s.wav\"\n[[step]]\nname = \"s\"\nkind = \"play\"\nprompt = \"story\"\nnext = \"end\"\n[[step]]\nname = \"end\"\nkind = \"hangup\"\n");
    assert_eq!(
        e.kind,
        SpecErrorKind::MissingPrompt {
            prompt: "story".into(),
            lang: Lang::Fr
        }
    );
    assert_eq!(e.step.as_deref(), Some("s"));
    let e = err("[prompts.story]\nde = \"s.wav\"\n[[step]]\nname = \"end\"\nkind = \"hangup\"\n");
    assert_eq!(e.kind, SpecErrorKind::UnknownLanguage("de".into()));
}

#[test]
fn bad_values() {
    let cases = [
        ("[[step]]\nname = \"r\"\nkind = \"ring\"\nseconds = -1\n", "seconds"),
        ("[[step]]\nname = \"r\"\nkind = \"ring\"\nseconds = 3600\n", "seconds"),
        ("[[step]]\nname = \"r\"\nkind = \"record\"\nmax_seconds = 0\n", "max_seconds"),
        ("[[step]]\nname = \"r\"\nkind = \"record\"\nmax_takes = 3\n", "max_takes"),
        ("[[step]]\nname = \"s\"\nkind = \"sign\"\n", "speech_ms"),
        ("[[step]]\nname = \"s\"\nkind = \"sign\"\nspeech_ms = 1\nkey_pressed = true\n", "speech_ms"),
        ("[[step]]\nname = \"s\"\nkind = \"sign\"\nkey_pressed = false\n", "key_pressed"),
        ("[[step]]\nname = \"m\"\nkind = \"menu\"\nchoices = { \"12\" = \"end\" }\n", "choices"),
        ("[[step]]\nname = \"m\"\nkind = \"menu\"\nchoices = { \"1\" = \"end\" }\nretries = 99\n", "retries"),
        ("[[step]]\nname = \"m\"\nkind = \"menu\"\n", "choices"),
        ("[[step]]\nname = \"t\"\nkind = \"transfer\"\nuri = \"http://x\"\n", "uri"),
        ("[[step]]\nname = \"t\"\nkind = \"transfer\"\n", "uri"),
        ("[[step]]\nname = \"n\"\nkind = \"say_number\"\nnumber = \"lots\"\n", "number"),
        ("[[step]]\nname = \"n\"\nkind = \"say_number\"\n", "number"),
        ("[[step]]\nname = \"b\"\nkind = \"branch\"\n", "already_signed"),
        ("[[step]]\nname = \"l\"\nkind = \"language\"\nchoices = { \"1\" = \"fr\" }\n", "choices"),
        ("[[step]]\nname = \"p\"\nkind = \"play\"\n", "prompt"),
        ("[[step]]\nname = \"a b\"\nkind = \"hangup\"\n", "name"),
        ("[[step]]\nkind = \"hangup\"\n", "name"),
        ("[[step]]\nname = \"k\"\n", "kind"),
    ];
    for (text, key) in cases {
        let e = err(&format!("{text}{HANGUP}"));
        assert_eq!(e.key.as_deref(), Some(key), "{text}: {e}");
        assert_eq!(e.campaign, "demo");
    }
    let e = err("[[step]]\nname = \"end\"\nkind = \"hangup\"\n[[step]]\nname = \"end\"\nkind = \"hangup\"\n");
    assert_eq!(e.kind, SpecErrorKind::DuplicateName("end".into()));
    assert_eq!(err("languages = []\n").kind, SpecErrorKind::NoLanguages);
    assert_eq!(err("").kind, SpecErrorKind::NoSteps);
}

#[test]
fn default_voicemail_and_its_prompts() {
    // Without the campaign's own prompts it names the first one missing.
    let raw = FlowToml::voicemail(&VoicemailParams::default());
    let e = FlowSpec::build("demo", raw.clone()).expect_err("greeting has no file");
    assert_eq!(
        e.kind,
        SpecErrorKind::MissingPrompt {
            prompt: "greeting".into(),
            lang: Lang::En
        }
    );
    let mut raw = raw;
    for p in ["greeting", "story", "thanks"] {
        raw.prompts
            .insert(p.into(), flow::spec::PromptFiles::All(format!("{p}.wav")));
    }
    let spec = FlowSpec::build("demo", raw).expect("valid");
    assert_eq!(spec.languages(), &[Lang::En]);
    let names: Vec<&str> = spec.prompt_names().into_iter().collect();
    assert_eq!(
        names,
        vec![
            "already_signed",
            "beep",
            "campaign_closed",
            "goodbye",
            "greeting",
            "invalid_choice",
            "line_busy",
            "no_input",
            "not_signed",
            "press_1_story",
            "press_9_withdraw",
            "story",
            "technical_problem",
            "thanks",
            "withdraw_cancelled",
            "withdraw_confirm",
            "withdrawn",
        ]
    );
    assert_eq!(
        spec.prompt_source("story", Lang::En),
        Some(PromptSource::File("story.wav"))
    );
    assert_eq!(
        spec.prompt_source("beep", Lang::En),
        Some(PromptSource::Beep)
    );
    assert_eq!(
        spec.prompt_source("goodbye", Lang::Nl),
        Some(PromptSource::System)
    );
    assert_eq!(spec.prompt_source("nothing", Lang::Nl), None);
    assert_eq!(spec.required_prompts().len(), names.len());
    match &spec.steps()[spec.step_id("ring").expect("ring step").index()].kind {
        StepKind::Ring { duration, .. } => assert_eq!(duration.as_secs(), 3),
        other => panic!("{other:?}"),
    }

    // With a helpline and other settings.
    let mut raw = FlowToml::voicemail(&VoicemailParams {
        language: Lang::Nl,
        ring: std::time::Duration::from_millis(2500),
        helpline: Some("sip:help@example.org".into()),
        ..VoicemailParams::default()
    });
    for p in ["greeting", "story", "thanks"] {
        raw.prompts
            .insert(p.into(), flow::spec::PromptFiles::All(format!("{p}.wav")));
    }
    let spec = FlowSpec::build("demo", raw).expect("valid");
    assert_eq!(spec.default_language(), Lang::Nl);
    assert!(spec.prompt_names().contains("helpline_offer"));
}

/// The shared prompts the flows use are committed for every language.
#[test]
fn committed_system_prompts_are_complete() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../audio/prompts");
    for p in flow::prompts::SYSTEM {
        for lang in Lang::ALL {
            let path = root.join(p.relative_path(lang));
            assert!(path.is_file(), "missing {}", path.display());
        }
    }
}
