//! URL helpers for the pages: path segments and `tel:` targets. The pages themselves are
//! `maud` templates, which escape every value they are given.

use std::fmt::Write as _;

/// Percent-encodes everything but RFC 3986 unreserved characters, for one URL path segment.
pub(crate) fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The `tel:` target for a display number: its digits and `+` only; `None` when it has no
/// digit at all, so the page shows the text without a link.
pub(crate) fn tel_target(number: &str) -> Option<String> {
    let dialable: String = number
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect();
    dialable
        .chars()
        .any(|c| c.is_ascii_digit())
        .then(|| format!("tel:{dialable}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segment_encodes_reserved_and_non_ascii() {
        assert_eq!(path_segment("demo-1_a.b~"), "demo-1_a.b~");
        assert_eq!(path_segment("a/b c\"<"), "a%2Fb%20c%22%3C");
        assert_eq!(path_segment("é"), "%C3%A9");
    }

    #[test]
    fn tel_target_keeps_digits_and_plus() {
        assert_eq!(
            tel_target("+32 2 000 00 00").as_deref(),
            Some("tel:+3220000000")
        );
        assert_eq!(
            tel_target("(02) 000-00-00\"><x").as_deref(),
            Some("tel:020000000")
        );
        assert_eq!(tel_target("call us"), None);
        assert_eq!(tel_target("+"), None);
    }
}
