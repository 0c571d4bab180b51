//! Panics injected on purpose, so that tests can show a panic ends one request or one call and
//! nothing more. Off unless the binary is told otherwise (`BELTEKEN_FAULT`, read by the binary
//! alone; docs/operations.md): nothing a caller sends can turn them on.

use rsipstack::sip::Request;

/// The header that names a fault's marker in a request: `X-Belteken-Fault: <marker>`.
pub const HEADER: &str = "X-Belteken-Fault";

/// Where the SIP channel panics on purpose. Each marker is matched against the
/// [`HEADER`] of a request; `None`: never.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// The request handler panics on a request carrying this marker (before it answers).
    pub request: Option<String>,
    /// The call task of an INVITE carrying this marker panics once it has answered.
    pub call: Option<String>,
    /// The media thread panics while pacing the stream of a call whose INVITE carried this
    /// marker (at its first frame).
    pub media: Option<String>,
    /// The dialog dispatcher panics on an in-dialog request (INFO, OPTIONS, re-INVITE,
    /// UPDATE) carrying this marker.
    pub dialog: Option<String>,
    /// A media thread panics as it starts, outside any call: the channel's core fails.
    pub media_thread: bool,
}

impl Faults {
    /// Whether any fault is set.
    pub fn any(&self) -> bool {
        self.request.is_some()
            || self.call.is_some()
            || self.media.is_some()
            || self.dialog.is_some()
            || self.media_thread
    }
}

/// Whether `req` carries `marker` in its [`HEADER`].
pub(crate) fn marked(marker: Option<&String>, req: &Request) -> bool {
    let Some(marker) = marker else { return false };
    req.headers
        .iter()
        .any(|h| h.name().eq_ignore_ascii_case(HEADER) && h.value().trim() == marker.as_str())
}

/// Panics, saying which fault it is: a fixed text (nothing from the request), which the
/// binary's panic log therefore shows.
#[track_caller]
pub(crate) fn fire(which: &'static str) -> ! {
    std::panic::panic_any(which)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(extra: &str) -> Request {
        let text = format!(
            "OPTIONS sip:demo@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:demo@127.0.0.1>\r\nCall-ID: x\r\n\
             CSeq: 1 OPTIONS\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        Request::try_from(text.as_str()).expect("a valid test request")
    }

    #[test]
    fn only_the_named_marker_matches() {
        let marker = Some("boom".to_string());
        assert!(marked(
            marker.as_ref(),
            &request("X-Belteken-Fault: boom\r\n")
        ));
        assert!(marked(
            marker.as_ref(),
            &request("x-belteken-fault:  boom \r\n")
        ));
        assert!(!marked(
            marker.as_ref(),
            &request("X-Belteken-Fault: other\r\n")
        ));
        assert!(!marked(marker.as_ref(), &request("")));
        assert!(!marked(None, &request("X-Belteken-Fault: boom\r\n")));
    }
}
