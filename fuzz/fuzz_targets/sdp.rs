//! An SDP offer from an INVITE, re-INVITE or UPDATE: parse, negotiate, answer; and our answer
//! must parse again and agree with what was negotiated.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use sip::sdp;

fuzz_target!(|data: &[u8]| {
    let Ok(offer) = sdp::parse(data) else {
        return;
    };
    let Ok(chosen) = sdp::negotiate(&offer) else {
        return;
    };
    let local = SocketAddr::from(([127, 0, 0, 1], 40000));
    let answer = sdp::answer(&offer, &chosen, local, 1, 1);
    let parsed = sdp::parse(answer.as_bytes()).expect("our own answer parses");
    assert_eq!(
        parsed.media.len(),
        offer.media.len(),
        "one answer line per offered line"
    );
    let again = sdp::negotiate(&parsed).expect("our own answer negotiates");
    assert_eq!(again.codec, chosen.codec);
});
