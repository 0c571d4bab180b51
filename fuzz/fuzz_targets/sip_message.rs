//! A SIP datagram from anyone: rsipstack's parser, then our header handling (transaction key,
//! request checks, called number, caller identity, INFO and SDP bodies, digest challenges), and
//! the caller's user part through `store::identify_caller` as the server does.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(user) = sip::fuzzing::sip_message(data) else {
        return;
    };
    let secret = store::Secret::from_bytes([7; store::SECRET_BYTES]);
    let _ = store::identify_caller(Some(&user), "BE", &secret);
});
