//! No flow text panics the flow parser and its validation: arbitrary text, and the flows of
//! docs/flows.md with lines dropped, swapped or changed. The fuzz target `flow_toml` in
//! `fuzz/` searches the same entry point for longer.

use flow::spec::FlowSpec;
use proptest::prelude::*;

const DOC: &str = include_str!("../../../docs/flows.md");

/// The flows of docs/flows.md that stand alone (not the config examples).
fn doc_flows() -> Vec<&'static str> {
    DOC.split("```toml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or_default())
        .filter(|b| !b.contains("[[campaign]]"))
        .collect()
}

fn parse(text: &str) {
    if let Ok(spec) = FlowSpec::parse("fuzz", text) {
        assert!(!spec.steps().is_empty(), "a valid flow has steps");
        let _ = spec.required_prompts();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_text(text in "(?s).{0,400}") {
        parse(&text);
    }

    #[test]
    fn a_documented_flow_edited(
        which in any::<usize>(),
        edits in proptest::collection::vec((any::<usize>(), 0u8..4, "[a-z0-9_\"= \\[\\].,-]{0,16}"), 1..6),
    ) {
        let flows = doc_flows();
        prop_assert!(!flows.is_empty());
        let mut lines: Vec<String> = flows[which % flows.len()].lines().map(str::to_string).collect();
        for (at, how, text) in edits {
            if lines.is_empty() {
                break;
            }
            let at = at % lines.len();
            match how {
                0 => { lines.remove(at); }
                1 => { let last = lines.len() - 1; lines.swap(at, last); }
                2 => lines[at] = text,
                _ => lines[at].push_str(&text),
            }
        }
        parse(&lines.join("\n"));
    }
}
