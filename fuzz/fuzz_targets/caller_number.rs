//! A caller's user part (from P-Asserted-Identity, From or a provider's `From`) into a keyed
//! hash: `store::identify_caller`, the contact sealing beside it, and the DID comparison.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(raw) = std::str::from_utf8(rest) else {
        return;
    };
    let region = belteken_fuzz::REGIONS[usize::from(pick) % belteken_fuzz::REGIONS.len()];
    let _ = store::is_known_region(region);
    let _ = sip::trunk::normalize_did(raw);
    let _ = sip::identity::uri_user(raw);
    let secret = store::Secret::from_bytes([7; store::SECRET_BYTES])
        .with_previous(store::Secret::from_bytes([8; store::SECRET_BYTES]));
    let identity = store::identify_caller(Some(raw), region, &secret);
    let contact = store::ContactKey::from_bytes([9; store::SECRET_BYTES]);
    let sealed = contact.seal(Some(raw), region);
    match (&identity, sealed) {
        (store::CallerIdentity::Verified { key, previous, .. }, Some(sealed)) => {
            assert_eq!(key.as_str().len(), 64);
            assert!(previous.is_some(), "a rotation keys the caller twice");
            let e164 = contact.open(&sealed).expect("sealed with this key");
            // The number in its E.164 form is the same caller.
            let again = store::identify_caller(Some(&e164), region, &secret);
            assert_eq!(again.key(), identity.key());
        }
        (store::CallerIdentity::Withheld, None) => {}
        (identity, sealed) => panic!(
            "identify_caller and seal disagree: verified {}, sealed {}",
            identity.key().is_some(),
            sealed.is_some()
        ),
    }
});
