//! TwiML (and TeXML, its Telnyx twin) answers.

use std::fmt::Write as _;

/// Escapes text for XML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// One verb group the call ends its answer with.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Play, then come back (`action`) for the next step.
    Play {
        urls: Vec<String>,
        action: String,
    },
    /// Play with keys barging in: a Gather around the Plays.
    GatherPlay {
        urls: Vec<String>,
        action: String,
    },
    /// Wait for a key for `seconds`.
    Wait {
        seconds: u64,
        action: String,
    },
    Record {
        max_seconds: u64,
        silence_seconds: u64,
        action: String,
        status_callback: String,
    },
    /// Pause, then come back (a recording not fetched yet).
    Pause {
        seconds: u64,
        action: String,
    },
    Dial {
        uri: String,
        action: String,
    },
    Hangup,
    /// Nothing: the call is over.
    Empty,
}

/// Which provider reads the answer: TeXML is TwiML with a few differences (Telnyx records
/// MP3 unless told `fileFormat="wav"`, has no `actionOnEmptyResult` and only `trim-silence`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Twilio,
    Telnyx,
}

pub fn render_for(next: &Next, dialect: Dialect) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>");
    match next {
        Next::Play { urls, action } => {
            for u in urls {
                let _ = write!(x, "<Play>{}</Play>", esc(u));
            }
            let _ = write!(x, "<Redirect method=\"POST\">{}</Redirect>", esc(action));
        }
        // A Gather without a key: Twilio calls the action (actionOnEmptyResult); Telnyx goes
        // on to the next verb, the Redirect to the same action.
        Next::GatherPlay { urls, action } => {
            let _ = write!(
                x,
                "<Gather input=\"dtmf\" numDigits=\"1\" timeout=\"1\"{} method=\"POST\" action=\"{}\">",
                empty_result(dialect),
                esc(action)
            );
            for u in urls {
                let _ = write!(x, "<Play>{}</Play>", esc(u));
            }
            let _ = write!(
                x,
                "</Gather><Redirect method=\"POST\">{}</Redirect>",
                esc(action)
            );
        }
        Next::Wait { seconds, action } => {
            let _ = write!(
                x,
                "<Gather input=\"dtmf\" numDigits=\"1\" timeout=\"{seconds}\"{} method=\"POST\" action=\"{}\"/><Redirect method=\"POST\">{}</Redirect>",
                empty_result(dialect),
                esc(action),
                esc(action)
            );
        }
        Next::Record {
            max_seconds,
            silence_seconds,
            action,
            status_callback,
        } => {
            let format = match dialect {
                Dialect::Twilio => " trim=\"do-not-trim\"",
                Dialect::Telnyx => " fileFormat=\"wav\"",
            };
            let _ = write!(
                x,
                "<Record maxLength=\"{max_seconds}\" timeout=\"{silence_seconds}\" playBeep=\"false\" finishOnKey=\"#\"{format} method=\"POST\" action=\"{}\" recordingStatusCallback=\"{}\" recordingStatusCallbackMethod=\"POST\" recordingStatusCallbackEvent=\"completed\"/>",
                esc(action),
                esc(status_callback)
            );
        }
        Next::Pause { seconds, action } => {
            let _ = write!(
                x,
                "<Pause length=\"{seconds}\"/><Redirect method=\"POST\">{}</Redirect>",
                esc(action)
            );
        }
        Next::Dial { uri, action } => {
            let _ = write!(
                x,
                "<Dial timeout=\"20\" method=\"POST\" action=\"{}\">",
                esc(action)
            );
            match uri.strip_prefix("tel:") {
                Some(number) => {
                    let _ = write!(x, "<Number>{}</Number>", esc(number));
                }
                None => {
                    let _ = write!(x, "<Sip>{}</Sip>", esc(uri));
                }
            }
            x.push_str("</Dial>");
        }
        Next::Hangup => x.push_str("<Hangup/>"),
        Next::Empty => {}
    }
    x.push_str("</Response>");
    x
}

fn empty_result(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Twilio => " actionOnEmptyResult=\"true\"",
        Dialect::Telnyx => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_renders() {
        let x = render_for(
            &Next::Play {
                urls: vec!["https://h/p?a=1&b=2".into()],
                action: "https://h/hooks/twilio/voice?ev=played&seq=2".into(),
            },
            Dialect::Twilio,
        );
        assert!(x.contains("<Play>https://h/p?a=1&amp;b=2</Play>"));
        assert!(x.contains("ev=played&amp;seq=2</Redirect>"));
        let d = render_for(
            &Next::Dial {
                uri: "tel:+3220000000".into(),
                action: "a".into(),
            },
            Dialect::Twilio,
        );
        assert!(d.contains("<Number>+3220000000</Number>"));
        let r = Next::Record {
            max_seconds: 30,
            silence_seconds: 2,
            action: "a".into(),
            status_callback: "s".into(),
        };
        assert!(render_for(&r, Dialect::Telnyx).contains("fileFormat=\"wav\""));
        assert!(!render_for(&r, Dialect::Twilio).contains("fileFormat"));
        let g = Next::GatherPlay {
            urls: vec!["u".into()],
            action: "a".into(),
        };
        assert!(render_for(&g, Dialect::Twilio).contains("actionOnEmptyResult=\"true\""));
        assert!(render_for(&g, Dialect::Telnyx)
            .contains("</Gather><Redirect method=\"POST\">a</Redirect>"));
    }
}
