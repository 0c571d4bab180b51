//! Vonage answers: NCCO (Nexmo Call Control Objects), a JSON array of actions.
//!
//! What each step becomes:
//! - Play: one `stream` per prompt URL, then an `input` (DTMF, one key, one second) whose
//!   event comes back to belteken: the `input` is how control returns to the flow, and its
//!   event carries the caller's `from` (a `notify` event does not).
//! - Play with keys barging in: the `stream`s with `bargeIn`, then the `input`.
//! - Waiting for a key: an `input` with the remaining time (Vonage allows at most 10 s; a
//!   longer wait is asked again for the rest).
//! - Record: a `record` (WAV, `endOnSilence`, `endOnKey` #, `timeOut`, `beepStart` off: the
//!   flow's own beep is played first, as on SIP) whose `eventUrl` gets the recording, then an
//!   `input` to come back.
//! - Transfer: a `connect` (to a `sip` or `phone` endpoint) with a synchronous `eventUrl`.
//! - Hang up: an empty NCCO (the call ends when no action is left).

use serde_json::{json, Value};

use crate::twiml::Next;

/// Longest `input` wait Vonage accepts, in seconds.
pub const MAX_INPUT_SECONDS: u64 = 10;

fn back(action: &str, seconds: u64) -> Value {
    json!({
        "action": "input",
        "type": ["dtmf"],
        "dtmf": { "maxDigits": 1, "timeOut": seconds.clamp(1, MAX_INPUT_SECONDS), "submitOnHash": false },
        "eventUrl": [action],
        "eventMethod": "POST",
    })
}

fn streams(urls: &[String], barge_in: bool) -> impl Iterator<Item = Value> + '_ {
    urls.iter().map(move |u| {
        if barge_in {
            json!({ "action": "stream", "streamUrl": [u], "bargeIn": true })
        } else {
            json!({ "action": "stream", "streamUrl": [u] })
        }
    })
}

pub fn render(next: &Next) -> String {
    let actions: Vec<Value> = match next {
        Next::Play { urls, action } => streams(urls, false).chain([back(action, 1)]).collect(),
        Next::GatherPlay { urls, action } => streams(urls, true).chain([back(action, 1)]).collect(),
        Next::Wait { seconds, action } => vec![back(action, *seconds)],
        Next::Record {
            max_seconds,
            silence_seconds,
            action,
            status_callback,
        } => vec![
            json!({
                "action": "record",
                "format": "wav",
                "endOnSilence": (*silence_seconds).clamp(3, 10),
                "endOnKey": "#",
                "timeOut": (*max_seconds).clamp(3, 7200),
                "beepStart": false,
                "eventUrl": [status_callback],
                "eventMethod": "POST",
            }),
            back(action, 1),
        ],
        Next::Pause { seconds, action } => vec![back(action, *seconds)],
        Next::Dial { uri, action } => {
            let endpoint = match uri.strip_prefix("tel:") {
                Some(number) => json!({
                    "type": "phone",
                    "number": number.trim_start_matches('+'),
                }),
                None => json!({ "type": "sip", "uri": uri }),
            };
            vec![json!({
                "action": "connect",
                "timeout": 20,
                "eventType": "synchronous",
                "eventUrl": [action],
                "eventMethod": "POST",
                "endpoint": [endpoint],
            })]
        }
        Next::Hangup | Next::Empty => Vec::new(),
    };
    Value::Array(actions).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Vec<Value> {
        serde_json::from_str::<Vec<Value>>(s).expect("json array")
    }

    #[test]
    fn steps_become_actions() {
        let n = parse(&render(&Next::GatherPlay {
            urls: vec!["https://h/a.wav".into(), "https://h/b.wav".into()],
            action: "https://h/hooks/vonage/event?ev=gather&seq=2".into(),
        }));
        assert_eq!(n.len(), 3);
        assert_eq!(n[0]["action"], "stream");
        assert_eq!(n[0]["streamUrl"][0], "https://h/a.wav");
        assert_eq!(n[1]["bargeIn"], true);
        assert_eq!(n[2]["action"], "input");
        assert_eq!(n[2]["dtmf"]["maxDigits"], 1);
        assert_eq!(
            n[2]["eventUrl"][0],
            "https://h/hooks/vonage/event?ev=gather&seq=2"
        );
        let w = parse(&render(&Next::Wait {
            seconds: 30,
            action: "a".into(),
        }));
        assert_eq!(w[0]["dtmf"]["timeOut"], 10);
        let r = parse(&render(&Next::Record {
            max_seconds: 20,
            silence_seconds: 2,
            action: "a".into(),
            status_callback: "s".into(),
        }));
        assert_eq!(r[0]["action"], "record");
        assert_eq!(r[0]["format"], "wav");
        assert_eq!(r[0]["eventUrl"][0], "s");
        assert_eq!(r[0]["beepStart"], false);
        assert_eq!(r[1]["action"], "input");
        let d = parse(&render(&Next::Dial {
            uri: "tel:+3220000000".into(),
            action: "a".into(),
        }));
        assert_eq!(d[0]["endpoint"][0]["number"], "3220000000");
        let d = parse(&render(&Next::Dial {
            uri: "sip:help@example.org".into(),
            action: "a".into(),
        }));
        assert_eq!(d[0]["endpoint"][0]["type"], "sip");
        assert_eq!(render(&Next::Hangup), "[]");
    }
}
