//! A campaign's flow as TOML (`[campaign.flow]`, docs/flows.md): parse and validate. The
//! binary's own config parsing lives in the binary crate and is not reachable from here; the
//! flow is the part of it with its own language.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = flow::spec::FlowSpec::parse("fuzz", text) else {
        return;
    };
    assert!(!spec.steps().is_empty());
    let _ = spec.step(spec.start());
    let _ = spec.required_prompts();
    for name in spec.prompt_names() {
        for &lang in spec.languages() {
            let _ = spec.prompt_source(name, lang);
        }
    }
});
