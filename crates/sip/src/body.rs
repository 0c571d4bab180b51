//! Finding the session description in an INVITE's body: `application/sdp`, or the
//! `application/sdp` part of a `multipart/mixed` body (RFC 5621). A pure function; nothing here
//! panics on any input.

#![warn(clippy::string_slice, clippy::indexing_slicing)]

/// The body types we read, for the Accept of a 415 (RFC 3261 section 21.4.13).
pub const ACCEPTED: &str = "application/sdp, multipart/mixed";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// A type we do not read, or a multipart body without an SDP part: 415.
    #[error("unsupported body type")]
    Unsupported,
    /// A multipart body whose framing is broken: 400.
    #[error("malformed multipart body")]
    Malformed,
}

/// The media type of a Content-Type value, lower case, without parameters.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// A parameter of a Content-Type value, unquoted.
fn parameter<'a>(content_type: &'a str, name: &str) -> Option<&'a str> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"'))
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The session description in a body of `content_type` (none: the body is taken as SDP when
/// there is one, as RFC 3261 section 7.4.1 lets a UAS assume for INVITE).
pub fn session_description<'a>(
    content_type: Option<&str>,
    body: &'a [u8],
) -> Result<&'a [u8], BodyError> {
    let Some(ct) = content_type else {
        return Ok(body);
    };
    match media_type(ct).as_str() {
        "application/sdp" => Ok(body),
        "multipart/mixed" | "multipart/alternative" => {
            let boundary = parameter(ct, "boundary").ok_or(BodyError::Malformed)?;
            multipart_sdp(boundary, body)
        }
        _ => Err(BodyError::Unsupported),
    }
}

/// The first `application/sdp` part of a multipart body (RFC 2046 section 5.1).
fn multipart_sdp<'a>(boundary: &str, body: &'a [u8]) -> Result<&'a [u8], BodyError> {
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(BodyError::Malformed);
    }
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut rest = body;
    // Before the first delimiter: a preamble, ignored.
    let first = find(rest, delimiter).ok_or(BodyError::Malformed)?;
    rest = rest
        .get(first + delimiter.len()..)
        .ok_or(BodyError::Malformed)?;
    loop {
        if rest.starts_with(b"--") {
            // The closing delimiter: no SDP part.
            return Err(BodyError::Unsupported);
        }
        // The rest of the delimiter line.
        let line_end = find(rest, b"\r\n").ok_or(BodyError::Malformed)?;
        let part_start = rest.get(line_end + 2..).ok_or(BodyError::Malformed)?;
        let next = find(part_start, delimiter).ok_or(BodyError::Malformed)?;
        // The CRLF before the delimiter belongs to the delimiter.
        let part = part_start.get(..next).ok_or(BodyError::Malformed)?;
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let (headers, content) = match find(part, b"\r\n\r\n") {
            Some(end) => (
                part.get(..end).unwrap_or_default(),
                part.get(end + 4..).unwrap_or_default(),
            ),
            // A part that starts with its blank line has no headers.
            None if part.starts_with(b"\r\n") => (&b""[..], part.get(2..).unwrap_or_default()),
            None => return Err(BodyError::Malformed),
        };
        let headers = String::from_utf8_lossy(headers);
        let is_sdp = headers.split("\r\n").any(|h| {
            h.split_once(':').is_some_and(|(name, value)| {
                let name = name.trim();
                (name.eq_ignore_ascii_case("content-type") || name.eq_ignore_ascii_case("c"))
                    && media_type(value) == "application/sdp"
            })
        });
        if is_sdp {
            return Ok(content);
        }
        rest = part_start
            .get(next + delimiter.len()..)
            .ok_or(BodyError::Malformed)?;
    }
}

/// Whether an Accept value lets us answer with SDP (RFC 3261 section 20.1); an empty one
/// names nothing and so is taken as no restriction on an INVITE, which must be answered with
/// SDP whatever it says.
pub fn accepts_sdp(accept: &str) -> bool {
    let mut any = false;
    for range in accept.split(',') {
        let t = media_type(range);
        if t.is_empty() {
            continue;
        }
        any = true;
        if matches!(t.as_str(), "application/sdp" | "application/*" | "*/*") {
            return true;
        }
    }
    !any
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &[u8] = b"v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\n";

    #[test]
    fn plain_sdp_and_no_type_are_taken_as_is() {
        assert_eq!(session_description(Some("application/sdp"), SDP), Ok(SDP));
        assert_eq!(
            session_description(Some("Application/SDP; x=1"), SDP),
            Ok(SDP)
        );
        assert_eq!(session_description(None, SDP), Ok(SDP));
    }

    #[test]
    fn the_sdp_part_of_multipart_mixed_is_found() {
        let mut body = b"preamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1\r\nContent-Type: application/sdp\r\nContent-Disposition: session\r\n\r\n".to_vec();
        body.extend_from_slice(SDP);
        body.extend_from_slice(b"\r\n--b1--\r\n");
        assert_eq!(
            session_description(Some("multipart/mixed;boundary=\"b1\""), &body),
            Ok(SDP)
        );
    }

    #[test]
    fn other_types_and_broken_multiparts_are_refused() {
        assert_eq!(
            session_description(Some("application/unknownformat"), b"x"),
            Err(BodyError::Unsupported)
        );
        assert_eq!(
            session_description(Some("multipart/mixed"), b"x"),
            Err(BodyError::Malformed)
        );
        assert_eq!(
            session_description(
                Some("multipart/mixed;boundary=b1"),
                b"--b1\r\nContent-Type: text/plain"
            ),
            Err(BodyError::Malformed)
        );
        assert_eq!(
            session_description(
                Some("multipart/mixed;boundary=b1"),
                b"--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b1--\r\n"
            ),
            Err(BodyError::Unsupported)
        );
        for cut in 0..40 {
            let body = b"--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n--b1--\r\n";
            let _ = session_description(
                Some("multipart/mixed;boundary=b1"),
                body.get(..cut).unwrap_or_default(),
            );
        }
    }

    #[test]
    fn accept_is_read() {
        assert!(accepts_sdp("application/sdp"));
        assert!(accepts_sdp("text/html, application/*"));
        assert!(accepts_sdp(""));
        assert!(!accepts_sdp("text/nobodyKnowsThis"));
    }
}
