//! A stream of RFC 4733 telephone-event packets (timestamp, payload) from the caller: each
//! event block parses, and the receiver reports only DTMF keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media::dtmf;

fuzz_target!(|data: &[u8]| {
    let mut rx = dtmf::DtmfReceiver::new();
    // Records of 4 timestamp bytes, 1 length byte and up to 15 payload bytes.
    let mut rest = data;
    while rest.len() >= 5 {
        let ts = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let len = usize::from(rest[4] & 0x0F).min(rest.len() - 5);
        let payload = &rest[5..5 + len];
        rest = &rest[5 + len..];
        if let Ok(ev) = dtmf::parse_event(payload) {
            assert!(ev.volume <= 63);
        }
        if let Some(key) = rx.on_packet(ts, payload) {
            assert!(key.is_ascii_digit() || "*#ABCD".contains(key), "{key:?}");
        }
    }
});
