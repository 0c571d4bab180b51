//! `BELTEKEN_FAULT`: panics injected on purpose, so that the end-to-end tests can show that a
//! panic ends one request or call, and that a core task that dies makes the process fail
//! loudly. Only the operator sets the environment; nothing from the network turns a fault on.
//! See docs/operations.md.

use anyhow::{bail, Result};

/// The core tasks of `serve` (each runs as long as the process).
pub(crate) const CORE_TASKS: &[&str] = &["web", "sync", "retention", "edits", "sip", "media"];

/// What `BELTEKEN_FAULT` asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Faults {
    /// The SIP channel's faults (markers matched against `X-Belteken-Fault`).
    pub sip: sip::Faults,
    /// An HTTP request carrying `X-Belteken-Fault: <marker>` panics its handler.
    pub http_request: Option<String>,
    /// Core tasks that panic as they start.
    pub core: Vec<&'static str>,
}

impl Faults {
    pub(crate) fn any(&self) -> bool {
        self.sip.any() || self.http_request.is_some() || !self.core.is_empty()
    }
}

/// Parses `kind:value[,kind:value...]`: `sip-request:M`, `sip-call:M`, `sip-media:M`,
/// `sip-dialog:M`, `http-request:M` (M a marker) and `core:T` (T a core task).
pub(crate) fn parse(text: &str) -> Result<Faults> {
    let mut faults = Faults::default();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((kind, value)) = item.split_once(':') else {
            bail!("BELTEKEN_FAULT: `{item}` is not kind:value");
        };
        let value = value.trim();
        if value.is_empty() {
            bail!("BELTEKEN_FAULT: `{item}` has no value");
        }
        let marker = Some(value.to_string());
        match kind.trim() {
            "sip-request" => faults.sip.request = marker,
            "sip-call" => faults.sip.call = marker,
            "sip-media" => faults.sip.media = marker,
            "sip-dialog" => faults.sip.dialog = marker,
            "http-request" => faults.http_request = marker,
            "core" => match CORE_TASKS.iter().find(|t| **t == value) {
                Some(&"media") => faults.sip.media_thread = true,
                Some(task) => faults.core.push(task),
                None => bail!(
                    "BELTEKEN_FAULT: no core task `{value}` (one of {})",
                    CORE_TASKS.join(", ")
                ),
            },
            other => bail!(
                "BELTEKEN_FAULT: unknown kind `{other}` (sip-request, sip-call, sip-media, \
                 sip-dialog, http-request, core)"
            ),
        }
    }
    Ok(faults)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        let f = parse("sip-request:a, sip-call:b,sip-media:c,sip-dialog:d,http-request:e,core:sync,core:media")
            .expect("valid");
        assert_eq!(f.sip.request.as_deref(), Some("a"));
        assert_eq!(f.sip.call.as_deref(), Some("b"));
        assert_eq!(f.sip.media.as_deref(), Some("c"));
        assert_eq!(f.sip.dialog.as_deref(), Some("d"));
        assert_eq!(f.http_request.as_deref(), Some("e"));
        assert_eq!(f.core, vec!["sync"]);
        assert!(f.sip.media_thread);
        assert!(f.any());
        assert!(!parse("").expect("empty is none").any());
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        for bad in ["sip-request", "sip-request:", "core:nothing", "disk:full"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
