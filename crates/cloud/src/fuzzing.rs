//! Entry points for the fuzz targets and no-panic tests: a provider's webhook request (its
//! signature headers, query and body) taken the way the webhook handlers take it, without a
//! store or a network.
//!
//! Not an API: nothing here is called by the server, and it may change with the handlers.

use base64::Engine as _;
use ring::hmac;

/// The key the Vonage JWTs below are signed with, so that the claims are read past the
/// signature check.
const VONAGE_SECRET: &str = "fuzzing-signature-secret";
/// The clock the signature checks are given, in Unix seconds.
const NOW_SECS: u64 = 1_700_000_000;

/// One webhook: `signature` as the signature header (Twilio, Telnyx) or the Authorization
/// header (Vonage), `query` as the URL's query, `body` as the request body. Every provider's
/// checks and field parsing see it; a Vonage JWT whose claims are `body` is also built and
/// signed, so the claims and the `payload_hash` check are reached.
pub fn webhook(signature: &str, query: &str, body: &[u8]) {
    // Twilio and Telnyx: a form body, its signature over the URL and the sorted fields.
    let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let url = format!("https://line.invalid/hooks/twilio/voice?{query}");
    let _ = crate::sig::twilio_valid("token", &url, &params, Some(signature));
    let _ = crate::sig::telnyx_valid(
        "MCowBQYDK2VwAyEA",
        Some(signature),
        Some(query),
        body,
        NOW_SECS,
        300,
    );
    for (k, v) in &params {
        if k == "From" {
            let _ = crate::call::is_withheld(v);
        }
    }
    // Our own callback parameters.
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k == "seq" {
            let _ = v.parse::<usize>().ok();
        }
    }
    // Vonage: the Authorization header as sent, then a correctly signed JWT around `body`.
    let seen = crate::sig::SeenTokens::default();
    let check = crate::sig::VonageCheck {
        secret: VONAGE_SECRET,
        application_id: "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
        tolerance_secs: 300,
        seen: &seen,
    };
    let _ = crate::sig::vonage_valid(&check, Some(signature), body, NOW_SECS);
    let _ = crate::sig::vonage_valid(&check, Some(&signed_jwt(body)), query.as_bytes(), NOW_SECS);
    for ev in ["", "dial", "recording"] {
        if let Some(fields) = crate::call::vonage_params(body, query, ev) {
            for (k, v) in &fields {
                if k == "From" {
                    let _ = crate::call::is_withheld(v);
                }
            }
        }
    }
}

/// `Bearer` + an HS256 JWT with these claims (as given, base64url).
fn signed_jwt(claims: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = br#"{"alg":"HS256","typ":"JWT"}"#;
    let signed = format!("{}.{}", b64.encode(header), b64.encode(claims));
    let key = hmac::Key::new(hmac::HMAC_SHA256, VONAGE_SECRET.as_bytes());
    let tag = hmac::sign(&key, signed.as_bytes());
    format!("Bearer {signed}.{}", b64.encode(tag.as_ref()))
}
