//! Caller identity and the secret file: keys are stable across notations, private, and the
//! secret file is created once with mode 0600.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::TempDir;
use store::{identify_caller, CallerIdentity, CallerKey, Secret, StoreError};

fn key(raw: &str, secret: &Secret) -> CallerKey {
    match identify_caller(Some(raw), "BE", secret) {
        CallerIdentity::Verified { key, .. } => key,
        CallerIdentity::Withheld => {
            panic!("expected a verified caller for test input #{}", raw.len())
        }
    }
}

#[test]
fn same_number_in_every_notation_gives_one_key() {
    let secret = Secret::from_bytes([1; 32]);
    let want = key("+32470000001", &secret);
    for raw in [
        "0470000001",
        "0032470000001",
        "0470 00 00 01",
        "+32 470 00 00 01",
        "+32-470-00.00.01",
        "(0470) 00 00 01",
        "%2B32470000001",
        "+32470000001;npdi",
        " 0470000001 ",
        "32470000001",
    ] {
        assert_eq!(key(raw, &secret), want, "notation {raw:?}");
    }
    assert_eq!(want.as_str().len(), 64);
}

#[test]
fn different_numbers_and_secrets_give_different_keys() {
    let a = Secret::from_bytes([1; 32]);
    let b = Secret::from_bytes([2; 32]);
    assert_ne!(key("+32470000001", &a), key("+32470000002", &a));
    assert_ne!(key("+32470000001", &a), key("+32470000001", &b));
    // A national number means another thing in another region.
    let nl = match identify_caller(Some("0612345678"), "NL", &a) {
        CallerIdentity::Verified { key, country, .. } => {
            assert_eq!(country.as_deref(), Some("NL"));
            key
        }
        CallerIdentity::Withheld => panic!("Dutch mobile number must be verified"),
    };
    assert_eq!(nl, key("+31612345678", &a));
}

#[test]
fn country_is_reported() {
    let secret = Secret::from_bytes([1; 32]);
    for (raw, country) in [
        ("+32470000001", "BE"),
        ("+3222000000", "BE"),
        ("+33612345678", "FR"),
        ("+14155550100", "US"),
    ] {
        match identify_caller(Some(raw), "BE", &secret) {
            CallerIdentity::Verified {
                country: Some(c), ..
            } => assert_eq!(c, country, "{raw}"),
            other => panic!("{raw}: {other:?}"),
        }
    }
}

#[test]
fn no_number_is_withheld() {
    let secret = Secret::from_bytes([1; 32]);
    assert_eq!(
        identify_caller(None, "BE", &secret),
        CallerIdentity::Withheld
    );
    for raw in [
        "anonymous",
        "Anonymous",
        "restricted",
        "unknown",
        "",
        "   ",
        "abc",
        "+",
        "+-",
        "1001",       // a PBX extension
        "112",        // an emergency code
        "0470abc001", // letters mixed in
        "+32470000001@evil",
        "+999123456789",             // no such country code
        "1234567890123456789012345", // too many digits
        "+32470000001+32470000002",
    ] {
        assert_eq!(
            identify_caller(Some(raw), "BE", &secret),
            CallerIdentity::Withheld,
            "input {raw:?}"
        );
    }
}

#[test]
fn hostile_input_does_not_panic() {
    // Seeded pseudo-random strings over the characters the normaliser lets through and a few
    // it does not; identify_caller must return, never panic.
    let secret = Secret::from_bytes([3; 32]);
    let alphabet = b"0123456789+ -().;/%2Ba#*";
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let len = (next() % 30) as usize;
        let s: String = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize] as char)
            .collect();
        for region in ["BE", "US", "", "zz"] {
            let _ = identify_caller(Some(&s), region, &secret);
        }
    }
    let long = "9".repeat(10_000);
    assert_eq!(
        identify_caller(Some(&long), "BE", &secret),
        CallerIdentity::Withheld
    );
}

#[test]
fn key_prints_only_a_prefix() {
    let secret = Secret::from_bytes([1; 32]);
    let k = key("+32470000001", &secret);
    let shown = format!("{k}");
    assert_eq!(shown, format!("{}…", &k.as_str()[..8]));
    let debug = format!("{:?}", identify_caller(Some("+32470000001"), "BE", &secret));
    assert!(!debug.contains(&k.as_str()[..9]), "{debug}");
    assert!(!debug.contains("470000001"), "{debug}");
    assert_eq!(format!("{secret:?}"), "Secret(..)");
}

#[test]
fn secret_file_is_created_0600_and_reloaded() {
    let dir = TempDir::new();
    let path = dir.path().join("secret.key");
    let first = Secret::load_or_create(&path).expect("create");
    let meta = std::fs::metadata(&path).expect("metadata");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 32);
    let again = Secret::load_or_create(&path).expect("reload");
    assert_eq!(key("+32470000001", &first), key("+32470000001", &again));
    // Another installation gets another secret.
    let other = Secret::load_or_create(&dir.path().join("other.key")).expect("create");
    assert_ne!(key("+32470000001", &first), key("+32470000001", &other));
}

#[test]
fn secret_file_of_wrong_length_is_refused() {
    let dir = TempDir::new();
    for len in [0usize, 31, 33, 64] {
        let path = dir.path().join(format!("bad{len}.key"));
        std::fs::write(&path, vec![0u8; len]).expect("write");
        assert!(
            matches!(
                Secret::load_or_create(&path),
                Err(StoreError::SecretWrongLength { .. })
            ),
            "len {len}"
        );
        assert_eq!(
            std::fs::read(&path).expect("read").len(),
            len,
            "the file is left alone"
        );
    }
}
