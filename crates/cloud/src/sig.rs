//! Request signatures of the providers: Twilio (HMAC-SHA1), Telnyx (Ed25519), Vonage (a JWT,
//! HS256 with the account's signature secret); and the JWT (RS256) that Vonage's API wants.
//!
//! Every check is constant-time over the secret-derived bytes (`subtle`, and ring's compare
//! inside `jsonwebtoken`) and never panics on what the network sent.

use base64::Engine as _;
use ring::hmac;
use subtle::ConstantTimeEq as _;

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
    expected
        .as_bytes()
        .ct_eq(signature.trim().as_bytes())
        .into()
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

/// Longest `Authorization` header looked at, in bytes.
const MAX_JWT_BYTES: usize = 4096;

/// How far ahead of the clock a webhook JWT's `iat` may be, in seconds (the provider's clock
/// a little fast); further is refused.
pub const JWT_FUTURE_SKEW_SECS: u64 = 30;
/// Longest `jti` accepted, in bytes.
const MAX_JTI_BYTES: usize = 128;
/// Most webhook JWT ids remembered at once (some 100 bytes each); while that many unexpired
/// ones are held, new tokens are refused (only tokens signed with the secret get this far).
pub const MAX_SEEN_TOKENS: usize = 100_000;

/// The ids (`jti`) of the webhook JWTs accepted lately, each kept until its `iat` is out of
/// the window (after which the token is refused anyway): a token comes once. Bounded by
/// [`MAX_SEEN_TOKENS`]. Per process: with several nodes behind a load balancer, a token
/// replayed to another node within the window is not caught here (the call's own replay
/// protection, `seq`, still holds there).
#[derive(Debug, Default)]
pub struct SeenTokens {
    /// `jti` → the Unix second after which it can be forgotten.
    ids: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

impl SeenTokens {
    /// Records `jti` until `forget_at`; false when it was seen already or the cache is full
    /// of unexpired ids.
    pub fn first_time(&self, jti: &str, now_secs: u64, forget_at: u64) -> bool {
        let mut ids = self
            .ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if ids.get(jti).is_some_and(|&t| t >= now_secs) {
            return false;
        }
        if ids.len() >= MAX_SEEN_TOKENS {
            ids.retain(|_, t| *t >= now_secs);
            if ids.len() >= MAX_SEEN_TOKENS {
                return false;
            }
        }
        ids.insert(jti.to_string(), forget_at);
        true
    }
}

/// What a Vonage signed webhook is checked against.
#[derive(Debug, Clone, Copy)]
pub struct VonageCheck<'a> {
    /// The account's signature secret (HS256 key).
    pub secret: &'a str,
    /// The application the webhook must name (`application_id`).
    pub application_id: &'a str,
    /// How old `iat` may be, in seconds; `jti` is remembered this long.
    pub tolerance_secs: u64,
    pub seen: &'a SeenTokens,
}

/// Vonage's signed webhooks: `Authorization: Bearer <JWT>`, HS256 with the signature secret
/// (any other `alg` is refused), and claims: `payload_hash` the hex SHA-256 of the body, also
/// of an empty one; `application_id` the configured application; `iat` at most
/// `tolerance_secs` old and at most [`JWT_FUTURE_SKEW_SECS`] ahead; `exp`, when present, not
/// passed; `jti` not seen before (this records it).
pub fn vonage_valid(
    check: &VonageCheck<'_>,
    authorization: Option<&str>,
    body: &[u8],
    now_secs: u64,
) -> bool {
    let Some(claims) = vonage_claims(check.secret, authorization) else {
        return false;
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    let want: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let Some(got) = claims.get("payload_hash").and_then(|v| v.as_str()) else {
        return false;
    };
    if !bool::from(want.as_bytes().ct_eq(got.to_ascii_lowercase().as_bytes())) {
        return false;
    }
    if claims.get("application_id").and_then(|v| v.as_str()) != Some(check.application_id) {
        return false;
    }
    let Some(iat) = claims.get("iat").and_then(|v| v.as_u64()) else {
        return false;
    };
    if iat > now_secs.saturating_add(JWT_FUTURE_SKEW_SECS)
        || iat.saturating_add(check.tolerance_secs) < now_secs
    {
        return false;
    }
    if let Some(exp) = claims.get("exp").and_then(|v| v.as_u64()) {
        if exp < now_secs {
            return false;
        }
    }
    let Some(jti) = claims
        .get("jti")
        .and_then(|v| v.as_str())
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_BYTES)
    else {
        return false;
    };
    check
        .seen
        .first_time(jti, now_secs, iat.saturating_add(check.tolerance_secs))
}

/// The claims of the JWT in a `Bearer` header whose HS256 signature with `secret` is valid.
fn vonage_claims(secret: &str, authorization: Option<&str>) -> Option<serde_json::Value> {
    let auth = authorization?;
    if auth.len() > MAX_JWT_BYTES {
        return None;
    }
    let token = auth
        .trim()
        .strip_prefix("Bearer ")
        .or_else(|| auth.trim().strip_prefix("bearer "))?
        .trim();
    hs256_claims(secret.as_bytes(), token)
}

/// The claims of a JWT signed with HS256 and `key`: any other `alg` (`none`, RS256 and the
/// rest) is refused. Time claims are not looked at here: the caller checks them against its
/// own clock.
fn hs256_claims(key: &[u8], token: &str) -> Option<serde_json::Value> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let key = DecodingKey::from_secret(key);
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .ok()
        .map(|t| t.claims)
}

/// A Vonage application's private key (RSA, PKCS#8 or PKCS#1 PEM), for the API's RS256 JWTs.
pub struct RsaSigner {
    key: jsonwebtoken::EncodingKey,
    rng: ring::rand::SystemRandom,
}

impl std::fmt::Debug for RsaSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RsaSigner(..)")
    }
}

/// A private key an [`RsaSigner`] cannot sign with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The PEM holds no private key block of either kind.
    #[error("no PEM private key (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)")]
    NoPrivateKey,
    /// The key is there but cannot sign (not RSA, too short, damaged).
    #[error("not a usable RSA key: {reason}")]
    NotUsableRsa { reason: String },
}

impl RsaSigner {
    /// The signer for a PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`) RSA
    /// key; the key is tried once here, so that one that cannot sign is refused at start.
    pub fn from_pem(pem: &[u8]) -> Result<RsaSigner, KeyError> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{PrivatePkcs1KeyDer, PrivatePkcs8KeyDer};
        if PrivatePkcs8KeyDer::from_pem_slice(pem).is_err()
            && PrivatePkcs1KeyDer::from_pem_slice(pem).is_err()
        {
            return Err(KeyError::NoPrivateKey);
        }
        let unusable = |e: jsonwebtoken::errors::Error| KeyError::NotUsableRsa {
            reason: e.to_string(),
        };
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem).map_err(unusable)?;
        jsonwebtoken::crypto::sign(b"key check", &key, jsonwebtoken::Algorithm::RS256)
            .map_err(unusable)?;
        Ok(RsaSigner {
            key,
            rng: ring::rand::SystemRandom::new(),
        })
    }

    /// A JWT for Vonage's API: RS256, `application_id`, `iat`, `exp` (5 minutes), `jti`.
    pub fn vonage_jwt(&self, application_id: &str, now_secs: u64) -> Option<String> {
        use ring::rand::SecureRandom as _;
        let mut jti = [0u8; 16];
        self.rng.fill(&mut jti).ok()?;
        let jti: String = jti.iter().map(|b| format!("{b:02x}")).collect();
        let claims = serde_json::json!({
            "application_id": application_id,
            "iat": now_secs,
            "exp": now_secs + 300,
            "jti": jti,
        });
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        jsonwebtoken::encode(&header, &claims, &self.key).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64url() -> base64::engine::GeneralPurpose {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
    }

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

    fn hs256(secret: &str, header: &str, claims: &serde_json::Value) -> String {
        let h = b64url().encode(header);
        let c = b64url().encode(claims.to_string());
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        let sig = hmac::sign(&key, format!("{h}.{c}").as_bytes());
        format!("Bearer {h}.{c}.{}", b64url().encode(sig.as_ref()))
    }

    #[test]
    fn rfc7515_hs256_example() {
        // The published HS256 example of RFC 7515 appendix A.1 (its key and token): the HMAC
        // and base64url handling used for Vonage's tokens verify it.
        let key = b64url()
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .expect("key");
        let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let claims = hs256_claims(&key, token).expect("valid");
        assert_eq!(claims["iss"], "joe");
        assert!(hs256_claims(b"another key", token).is_none());
        let tampered = token.replacen(".eyJpc3MiOiJqb2Ui", ".eyJpc3MiOiJqb2Xi", 1);
        assert!(hs256_claims(&key, &tampered).is_none());
    }

    fn sha256_hex(b: &[u8]) -> String {
        ring::digest::digest(&ring::digest::SHA256, b)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    const APP: &str = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab";

    fn claims_for(body: &[u8], iat: u64, jti: &str) -> serde_json::Value {
        serde_json::json!({
            "iat": iat, "jti": jti, "iss": "Vonage", "payload_hash": sha256_hex(body),
            "api_key": "abcd1234", "application_id": APP,
        })
    }

    #[test]
    fn vonage_signed_webhooks() {
        let body = br#"{"from":"447700900000","to":"447700900001","uuid":"aaaaaaaa-bbbb-cccc-dddd-0123456789ab","conversation_uuid":"CON-aaaaaaaa-bbbb-cccc-dddd-0123456789ab","status":"started","direction":"inbound","timestamp":"2020-01-01T14:00:00.000Z"}"#;
        let header = r#"{"alg":"HS256","typ":"JWT"}"#;
        let now = 1_700_000_030;
        let seen = SeenTokens::default();
        let check = VonageCheck {
            secret: "secret",
            application_id: APP,
            tolerance_secs: 300,
            seen: &seen,
        };
        let other_secret = VonageCheck {
            secret: "other",
            ..check
        };
        let mut n = 0;
        let mut fresh = |f: &dyn Fn(&mut serde_json::Value)| {
            n += 1;
            let mut c = claims_for(body, 1_700_000_000, &format!("jti-{n}"));
            f(&mut c);
            hs256("secret", header, &c)
        };
        let good = fresh(&|_| {});
        // Wrong secret, tampered body, missing header: refused (and the id not used up).
        assert!(!vonage_valid(&other_secret, Some(&good), body, now));
        assert!(!vonage_valid(&check, Some(&good), b"{}", now));
        assert!(!vonage_valid(&check, None, body, now));
        assert!(vonage_valid(&check, Some(&good), body, now));
        // The same token again: a replay.
        assert!(!vonage_valid(&check, Some(&good), body, now));
        // Too old, or too far ahead.
        let t = fresh(&|_| {});
        assert!(!vonage_valid(&check, Some(&t), body, now + 3600));
        let ahead = fresh(&|c| c["iat"] = serde_json::json!(now + 200));
        assert!(!vonage_valid(&check, Some(&ahead), body, now));
        let slightly = fresh(&|c| c["iat"] = serde_json::json!(now + 10));
        assert!(vonage_valid(&check, Some(&slightly), body, now));
        // Another application, no application, no jti, no iat.
        let other_app = fresh(&|c| {
            c["application_id"] = serde_json::json!("bbbbbbbb-bbbb-cccc-dddd-0123456789ab")
        });
        assert!(!vonage_valid(&check, Some(&other_app), body, now));
        for field in ["application_id", "jti", "iat", "payload_hash"] {
            let t = fresh(&|c| {
                c.as_object_mut().expect("obj").remove(field);
            });
            assert!(!vonage_valid(&check, Some(&t), body, now), "{field}");
        }
        // Another alg.
        for alg in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"RS256","typ":"JWT"}"#,
        ] {
            let t = hs256("secret", alg, &claims_for(body, 1_700_000_000, "alg"));
            assert!(!vonage_valid(&check, Some(&t), body, now));
        }
        // An empty body (a GET) is hashed too: the empty body's hash passes, another fails.
        let empty = hs256("secret", header, &claims_for(b"", 1_700_000_000, "empty"));
        assert!(vonage_valid(&check, Some(&empty), b"", now));
        let wrong = hs256("secret", header, &claims_for(b"x", 1_700_000_000, "wrong"));
        assert!(!vonage_valid(&check, Some(&wrong), b"", now));
        // Garbage never panics.
        for bad in [
            "Bearer",
            "Bearer a.b",
            "Bearer a.b.c.d",
            "Basic x",
            "Bearer ....",
            "Bearer é.é.é",
        ] {
            assert!(!vonage_valid(&check, Some(bad), body, now));
        }
    }

    #[test]
    fn vonage_api_jwt() {
        use rustls::pki_types::pem::PemObject as _;
        let pkcs8 = include_bytes!("testdata/rsa-pkcs8.pem");
        let der = rustls::pki_types::PrivatePkcs8KeyDer::from_pem_slice(pkcs8).expect("pem");
        let pair = ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).expect("key");
        use ring::signature::KeyPair as _;
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            pair.public_key().as_ref().to_vec(),
        );
        // The same key as PKCS#8 and as PKCS#1.
        for pem in [&pkcs8[..], include_bytes!("testdata/rsa-pkcs1.pem")] {
            let signer = RsaSigner::from_pem(pem).expect("signer");
            let jwt = signer.vonage_jwt(APP, 1_700_000_000).expect("jwt");
            let parts: Vec<&str> = jwt.split('.').collect();
            let [h, c, s] = parts[..] else {
                panic!("three parts: {jwt}");
            };
            let header: serde_json::Value =
                serde_json::from_slice(&b64url().decode(h).expect("b64")).expect("json");
            assert_eq!(header["alg"], "RS256");
            let claims: serde_json::Value =
                serde_json::from_slice(&b64url().decode(c).expect("b64")).expect("json");
            assert_eq!(claims["application_id"], APP);
            assert_eq!(claims["iat"], 1_700_000_000);
            assert_eq!(claims["exp"], 1_700_000_300);
            assert_eq!(claims["jti"].as_str().map(str::len), Some(32));
            let sig = b64url().decode(s).expect("b64");
            assert!(public.verify(format!("{h}.{c}").as_bytes(), &sig).is_ok());
            let again = signer.vonage_jwt(APP, 1_700_000_000).expect("jwt");
            assert_ne!(jwt, again, "each token has its own jti");
        }
        assert_eq!(
            RsaSigner::from_pem(b"not a key").map(|_| ()),
            Err(KeyError::NoPrivateKey)
        );
        let ed25519 = RsaSigner::from_pem(include_bytes!("testdata/ed25519.pem"));
        assert!(
            matches!(ed25519, Err(KeyError::NotUsableRsa { .. })),
            "{ed25519:?}"
        );
    }

    #[test]
    fn seen_tokens_are_bounded() {
        let seen = SeenTokens::default();
        assert!(seen.first_time("a", 100, 200));
        assert!(!seen.first_time("a", 150, 250));
        // Forgotten once its time is over.
        assert!(seen.first_time("a", 201, 300));
        for i in 0..MAX_SEEN_TOKENS - 1 {
            assert!(seen.first_time(&i.to_string(), 201, 300));
        }
        assert!(!seen.first_time("full", 201, 300), "full of live ids");
        assert!(seen.first_time("later", 301, 400), "the old ones aged out");
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
