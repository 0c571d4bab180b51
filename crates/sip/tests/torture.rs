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

#[test]
fn report_parser_verdicts() {
    // Documents what rsipstack's parser accepts; the socket test checks the server's answers.
    for (name, bytes) in messages() {
        let ok = rsipstack::sip::SipMessage::try_from(bytes.as_slice()).is_ok();
        println!("{name}: {}", if ok { "parsed" } else { "refused" });
    }
}
