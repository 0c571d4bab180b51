//! A provider's webhook (Twilio, Telnyx, Vonage): signature header, query and body, separated
//! by NUL bytes; every signature check and the fields the handlers read.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [signature, query, body] = belteken_fuzz::fields::<3>(data);
    // Header values and URLs are text by the time they reach the handlers.
    let (Ok(signature), Ok(query)) = (std::str::from_utf8(signature), std::str::from_utf8(query))
    else {
        return;
    };
    cloud::fuzzing::webhook(signature, query, body);
});
