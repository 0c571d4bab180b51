//! Request signatures of the providers: Twilio (HMAC-SHA1), Telnyx (Ed25519).
//!
//! Every check is constant-time over the secret-derived bytes and never panics on what the
//! network sent.

use base64::Engine as _;
use ring::hmac;

/// Twilio's `X-Twilio-Signature`: base64(HMAC-SHA1(auth token, URL + sorted params as key+value)).
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = String::with_capacity(url.len() + 256);
    data.push_str(url);
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes());
    let tag = hmac::sign(&key, data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// Whether `signature` is Twilio's signature of this request.
pub fn twilio_valid(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature: Option<&str>,
) -> bool {
    let Some(signature) = signature else {
        return false;
    };
    let expected = twilio_signature(auth_token, url, params);
    constant_time_eq(expected.as_bytes(), signature.trim().as_bytes())
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Telnyx's webhook signature: Ed25519 over `"{timestamp}|{raw body}"` with the account's
/// public key (base64), `telnyx-signature-ed25519` (base64) and `telnyx-timestamp` (Unix
/// seconds). A timestamp further than `tolerance_secs` from `now_secs` is refused (replay).
pub fn telnyx_valid(
    public_key_b64: &str,
    signature_b64: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now_secs: u64,
    tolerance_secs: u64,
) -> bool {
    let (Some(signature_b64), Some(timestamp)) = (signature_b64, timestamp) else {
        return false;
    };
    let Ok(ts) = timestamp.trim().parse::<u64>() else {
        return false;
    };
    if ts.abs_diff(now_secs) > tolerance_secs {
        return false;
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let (Ok(key), Ok(sig)) = (
        b64.decode(public_key_b64.trim()),
        b64.decode(signature_b64.trim()),
    ) else {
        return false;
    };
    let mut signed = Vec::with_capacity(timestamp.len() + 1 + body.len());
    signed.extend_from_slice(timestamp.trim().as_bytes());
    signed.push(b'|');
    signed.extend_from_slice(body);
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
        .verify(&signed, &sig)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs_params() -> Vec<(String, String)> {
        // Twilio's "Webhooks security" worked example (auth token 12345).
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    const DOCS_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const DOCS_SIGNATURE: &str = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";

    #[test]
    fn twilio_published_example() {
        let mut params = docs_params();
        params.reverse(); // the order of the body does not matter
        assert_eq!(twilio_signature("12345", DOCS_URL, &params), DOCS_SIGNATURE);
        assert!(twilio_valid(
            "12345",
            DOCS_URL,
            &params,
            Some(DOCS_SIGNATURE)
        ));
    }

    #[test]
    fn twilio_wrong_signatures() {
        let params = docs_params();
        assert!(!twilio_valid("12345", DOCS_URL, &params, None));
        assert!(!twilio_valid("12345", DOCS_URL, &params, Some("")));
        assert!(!twilio_valid(
            "54321",
            DOCS_URL,
            &params,
            Some(DOCS_SIGNATURE)
        ));
        assert!(!twilio_valid(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &params,
            Some(DOCS_SIGNATURE)
        ));
        let mut tampered = params.clone();
        tampered[2].1 = "9".into();
        assert!(!twilio_valid(
            "12345",
            DOCS_URL,
            &tampered,
            Some(DOCS_SIGNATURE)
        ));
        assert!(!twilio_valid(
            "12345",
            DOCS_URL,
            &params,
            Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ")
        ));
    }

    #[test]
    fn telnyx_ed25519() {
        use ring::signature::KeyPair as _;
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("keygen");
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
        let b64 = base64::engine::general_purpose::STANDARD;
        let public = b64.encode(pair.public_key().as_ref());
        let body = br#"{"data":{"event_type":"call.initiated"}}"#;
        let sig =
            b64.encode(pair.sign(b"1700000000|{\"data\":{\"event_type\":\"call.initiated\"}}"));
        assert!(telnyx_valid(
            &public,
            Some(&sig),
            Some("1700000000"),
            body,
            1_700_000_010,
            300
        ));
        // Replayed too late, tampered body, wrong timestamp, missing header.
        assert!(!telnyx_valid(
            &public,
            Some(&sig),
            Some("1700000000"),
            body,
            1_700_001_000,
            300
        ));
        assert!(!telnyx_valid(
            &public,
            Some(&sig),
            Some("1700000000"),
            b"{}",
            1_700_000_010,
            300
        ));
        assert!(!telnyx_valid(
            &public,
            Some(&sig),
            Some("1700000001"),
            body,
            1_700_000_010,
            300
        ));
        assert!(!telnyx_valid(
            &public,
            None,
            Some("1700000000"),
            body,
            1_700_000_010,
            300
        ));
    }
}
