//! Who is calling: the user part of P-Asserted-Identity or From, as text.
//!
//! The result is a raw caller number and must go straight to `store::identify_caller`,
//! which hashes it; it is never logged or kept.

/// Longest user part we pass on; longer ones are treated as withheld.
pub const MAX_USER_BYTES: usize = 64;

/// The user part of the URI in a name-addr or addr-spec header value
/// (`"Name" <sip:+32470000001@host;user=phone>;tag=x`, `<tel:+32470000001>`, `sip:u@h`).
pub fn uri_user(header_value: &str) -> Option<&str> {
    let value = header_value.trim();
    // Inside angle brackets when present; otherwise up to the first ';' (header params).
    let uri = match (value.find('<'), value.rfind('>')) {
        (Some(open), Some(close)) if open < close => &value[open + 1..close],
        _ => value.split(';').next().unwrap_or(value),
    };
    let uri = uri.trim();
    let (scheme, rest) = uri.split_once(':')?;
    let user = match scheme.to_ascii_lowercase().as_str() {
        "sip" | "sips" => rest.split_once('@')?.0,
        "tel" => rest,
        _ => return None,
    };
    // Drop URI parameters and a password, keep the user.
    let user = user.split(';').next().unwrap_or(user);
    let user = user.split(':').next().unwrap_or(user);
    if user.is_empty() || user.len() > MAX_USER_BYTES {
        return None;
    }
    Some(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_user_from_common_forms() {
        assert_eq!(
            uri_user("\"Jan\" <sip:+32470000001@127.0.0.1:5090>;tag=abc"),
            Some("+32470000001")
        );
        assert_eq!(
            uri_user("<sip:0470000001@h;user=phone>"),
            Some("0470000001")
        );
        assert_eq!(
            uri_user("<tel:+32470000001;cpc=ordinary>"),
            Some("+32470000001")
        );
        assert_eq!(
            uri_user("sip:anonymous@anonymous.invalid;tag=1"),
            Some("anonymous")
        );
        assert_eq!(uri_user("sips:bob:secret@h"), Some("bob"));
        assert_eq!(uri_user("<sip:host.only>"), None);
        assert_eq!(uri_user("garbage"), None);
        assert_eq!(uri_user(""), None);
        assert_eq!(uri_user("<>"), None);
        assert_eq!(uri_user("><sip:a@b"), None);
    }
}
