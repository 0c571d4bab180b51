//! RFC 4475 torture messages (tests/rfc4475) through the SIP parser: nothing panics, every
//! invalid message is refused by the parser or by our own checks.

use std::path::PathBuf;

fn messages() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/rfc4475");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("the torture directory exists")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "sip"))
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).expect("readable test data"))
        })
        .collect();
    out.sort();
    assert!(out.len() >= 20, "torture messages missing");
    out
}

#[test]
fn no_torture_message_panics_the_parser() {
    for (name, bytes) in messages() {
        let parsed = std::panic::catch_unwind(|| {
            rsipstack::sip::SipMessage::try_from(bytes.as_slice()).is_ok()
        });
        assert!(parsed.is_ok(), "{name}: the parser panicked");
        // Every prefix too: a datagram cut anywhere.
        for cut in (0..bytes.len()).step_by(7) {
            let prefix = &bytes[..cut];
            let r = std::panic::catch_unwind(|| {
                let _ = rsipstack::sip::SipMessage::try_from(prefix);
            });
            assert!(
                r.is_ok(),
                "{name}: the parser panicked on the first {cut} bytes"
            );
        }
    }
}

/// What our side of the parser boundary (`sip::wire`) does with each message before the SIP
/// stack sees it: answer it (with the RFC's code), pass it on, or drop it. A passed request is
/// one the stack parses; what it passes is answered by the server's own checks (the socket
/// test, tests/e2e/test_rfc4475.py, checks those answers).
#[test]
fn each_message_gets_the_gates_verdict() {
    use sip::wire::{inspect, Verdict};
    // 0: passed to the stack; 1: dropped; otherwise the status we answer with ourselves.
    let expected: &[(&str, u16)] = &[
        ("valid-3.1.1.1-wsinv", 0),
        ("valid-3.1.1.2-intmeth", 501),
        ("valid-3.1.1.3-esc01", 0),
        ("valid-3.1.1.4-escnull", 0),
        ("valid-3.1.1.5-esc02", 501),
        ("valid-3.1.1.6-lwsdisp", 0),
        ("valid-3.1.1.7-longreq", 0),
        ("valid-3.1.1.8-dblreq", 0),
        ("valid-3.1.1.9-semiuri", 0),
        ("valid-3.1.1.10-transports", 0),
        ("valid-3.1.1.11-mpart01", 0),
        ("valid-3.1.1.12-unreason", 0),
        ("valid-3.1.1.13-noreason", 0),
        ("invalid-3.1.2.1-badinv01", 400),
        ("invalid-3.1.2.2-clerr", 400),
        ("invalid-3.1.2.3-ncl", 400),
        ("invalid-3.1.2.4-scalar02", 400),
        ("invalid-3.1.2.5-scalarlg", 0),
        ("invalid-3.1.2.6-quotbal", 400),
        ("invalid-3.1.2.7-ltgtruri", 400),
        ("invalid-3.1.2.8-lwsruri", 400),
        ("invalid-3.1.2.9-lwsstart", 400),
        ("invalid-3.1.2.10-trws", 400),
        ("invalid-3.1.2.11-escruri", 400),
        ("invalid-3.1.2.12-baddate", 0),
        ("invalid-3.1.2.13-regbadct", 400),
        ("invalid-3.1.2.14-badaspec", 400),
        ("invalid-3.1.2.15-baddn", 400),
        ("invalid-3.1.2.16-badvers", 505),
        ("invalid-3.1.2.17-mismatch01", 400),
        ("invalid-3.1.2.18-mismatch02", 501),
        ("invalid-3.1.2.19-bigcode", 0),
        ("transaction-3.2.1-badbranch", 0),
        ("app-3.3.1-insuf", 400),
        ("app-3.3.2-unkscm", 0),
        ("app-3.3.3-novelsc", 0),
        ("app-3.3.4-unksm2", 0),
        ("app-3.3.5-bext01", 0),
        ("app-3.3.6-invut", 0),
        ("app-3.3.7-regaut01", 0),
        ("app-3.3.8-multi01", 400),
        ("app-3.3.9-mcl01", 400),
        ("app-3.3.10-bcast", 0),
        ("app-3.3.11-zeromf", 0),
        ("app-3.3.12-cparam01", 0),
        ("app-3.3.13-cparam02", 0),
        ("app-3.3.14-regescrt", 0),
        ("app-3.3.15-sdp01", 0),
        ("compat-3.4.1-inv2543", 0),
        ("invalid-x-binary-junk", 1),
        ("invalid-x-header-bomb", 400),
    ];
    let all = messages();
    assert_eq!(
        all.len(),
        expected.len(),
        "a message without an expected verdict"
    );
    let source = "127.0.0.1:5999".parse().expect("an address");
    for (name, bytes) in all {
        let stem = name.trim_end_matches(".sip");
        let want = expected
            .iter()
            .find(|(n, _)| *n == stem)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("{name}: no expected verdict"));
        let got = match inspect(&bytes, source) {
            Verdict::Pass(passed) => {
                if !passed.starts_with(b"SIP/") {
                    assert!(
                        rsipstack::sip::SipMessage::try_from(passed.as_slice()).is_ok(),
                        "{name}: passed on, but the stack cannot parse it"
                    );
                }
                0
            }
            Verdict::Drop => 1,
            Verdict::Answer { status, response } => {
                let text = String::from_utf8_lossy(&response);
                assert!(
                    text.starts_with(&format!("SIP/2.0 {status} ")),
                    "{name}: {text}"
                );
                assert!(text.contains("\r\nVia: "), "{name}: {text}");
                status
            }
        };
        assert_eq!(got, want, "{name}");
    }
}
