//! Small helpers for writing HTML by hand: escaping, URL path segments, `tel:` targets.

use std::fmt::Write as _;

/// Escapes text for use in HTML element content and in double- or single-quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

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
    fn escape_replaces_the_five_special_characters() {
        assert_eq!(
            escape(r#"<script>alert('x') & "y"</script>"#),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }

    #[test]
    fn escape_keeps_other_text_and_unicode() {
        assert_eq!(escape("Bel nú — 100% gratis"), "Bel nú — 100% gratis");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn escape_does_not_double_unescape() {
        assert_eq!(escape("&amp;"), "&amp;amp;");
    }

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
