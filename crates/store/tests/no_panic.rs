//! No caller string panics `identify_caller` or the contact sealing beside it, whatever a
//! trunk or a provider put in the caller's user part, in any default region; and what it
//! verifies keys the same in its E.164 form. The fuzz target `caller_number` in `fuzz/`
//! searches the same entry point for longer.

use proptest::prelude::*;
use store::{identify_caller, CallerIdentity, ContactKey, Secret, SECRET_BYTES};

const REGIONS: &[&str] = &["BE", "NL", "FR", "US", "GB", "XX", "be", ""];

fn check(raw: &str, region: &str) -> Result<(), TestCaseError> {
    let secret = Secret::from_bytes([3; SECRET_BYTES]);
    let identity = identify_caller(Some(raw), region, &secret);
    let contact = ContactKey::from_bytes([4; SECRET_BYTES]);
    let sealed = contact.seal(Some(raw), region);
    prop_assert_eq!(identity.key().is_some(), sealed.is_some());
    if let (CallerIdentity::Verified { key, .. }, Some(sealed)) = (&identity, sealed) {
        prop_assert_eq!(key.as_str().len(), 64);
        let e164 = contact.open(&sealed).expect("sealed with this key");
        // One number, one key: its E.164 form is the same caller.
        let resealed = contact
            .seal(Some(&e164), region)
            .and_then(|s| contact.open(&s).ok());
        prop_assert_eq!(resealed.as_deref(), Some(e164.as_str()));
        let again = identify_caller(Some(&e164), region, &secret);
        prop_assert_eq!(again.key(), Some(key));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_text(raw in ".{0,70}", region in 0usize..8) {
        check(&raw, REGIONS[region])?;
    }

    #[test]
    fn number_like_text(raw in "[+%2Bb0-9 ()./;=a-z-]{0,40}", region in 0usize..8) {
        check(&raw, REGIONS[region])?;
    }

    #[test]
    fn any_region(raw in "\\+?[0-9]{6,16}", region in ".{0,6}") {
        check(&raw, &region)?;
    }
}

/// Inputs the fuzzer found keyed apart from their own E.164 form (one number, two keys).
#[test]
fn found_numbers_keep_one_key() {
    for (raw, region) in [
        ("0047000000002", "BE"),
        ("0000470000000", "BE"),
        ("+47000000002", "BE"),
        ("\0ࠀ", "BE"),
    ] {
        check(raw, region).expect(raw);
    }
}
