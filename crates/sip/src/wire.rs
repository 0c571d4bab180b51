//! Our side of the SIP parser boundary: every datagram is read here before the SIP stack sees
//! it, so that a request the stack's parser cannot take still gets the answer RFC 3261 and
//! RFC 4475 give (400, 416, 501, 505) instead of silence, and a valid but unusual request
//! (folded, spaced-out Via; a From without a tag, as RFC 2543 sent it) reaches the stack in a
//! form it reads.
//!
//! A pure function from bytes to a [`Verdict`]; nothing here panics on any input.

#![warn(clippy::string_slice, clippy::indexing_slicing)]

use std::net::SocketAddr;

/// Methods we answer, for Allow headers.
pub(crate) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE";

use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::SipMessage;

/// The From tag put on a request that had none (RFC 2543 left it out; RFC 3261 section
/// 12.1.1 treats it as null). The stack needs a tag to key the transaction; the tag is taken
/// out again of everything we send ([`strip_null_tag`]), so the peer sees its own From.
pub const NULL_FROM_TAG: &str = "belteken-null-tag";

/// Methods the stack can represent (rsip's `Method`); any other token method gets 501.
const STACK_METHODS: &[&str] = &[
    "ACK",
    "BYE",
    "CANCEL",
    "INFO",
    "INVITE",
    "MESSAGE",
    "NOTIFY",
    "OPTIONS",
    "PRACK",
    "PUBLISH",
    "REFER",
    "REGISTER",
    "SUBSCRIBE",
    "UPDATE",
];

/// What to do with one datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Hand these bytes (the datagram, or its normalised form) to the SIP stack.
    Pass(Vec<u8>),
    /// Send this response to the source ourselves; the request was bad (`status`).
    Answer { status: u16, response: Vec<u8> },
    /// Nothing can or should be answered (a broken response, an ACK, junk without a Via).
    Drop,
}

/// One header as received, unfolded, with its compact name expanded (lower case).
#[derive(Debug, Clone)]
struct Header {
    /// The canonical name in lower case ("via", "call-id", ...).
    key: String,
    /// The name as written, for passing it on unchanged.
    name: String,
    value: String,
}

/// A request read by our own minimal parser.
#[derive(Debug)]
struct Request {
    start: String,
    headers: Vec<Header>,
    /// Whether every header line had a colon and the header section ended with CRLFCRLF.
    well_framed: bool,
    body: Vec<u8>,
}

impl Request {
    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Header> + 'a {
        self.headers.iter().filter(move |h| h.key == key)
    }
    fn one<'a>(&'a self, key: &'a str) -> Option<&'a str> {
        self.all(key).next().map(|h| h.value.as_str())
    }
    fn count(&self, key: &str) -> usize {
        self.all(key).count()
    }
}

fn compact(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let full = match lower.as_str() {
        "i" => "call-id",
        "f" => "from",
        "t" => "to",
        "v" => "via",
        "l" => "content-length",
        "c" => "content-type",
        "m" => "contact",
        "e" => "content-encoding",
        "k" => "supported",
        "s" => "subject",
        _ => return lower,
    };
    full.to_string()
}

/// Where the header section ends: the index of the blank line's CRLFCRLF, if any.
fn header_end(data: &[u8]) -> Option<usize> {
    data.windows(4).position(|w| w == b"\r\n\r\n")
}

fn read(data: &[u8]) -> Option<Request> {
    let (head, body, framed) = match header_end(data) {
        Some(end) => (
            data.get(..end).unwrap_or_default(),
            data.get(end + 4..).unwrap_or_default().to_vec(),
            true,
        ),
        None => (data, Vec::new(), false),
    };
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start = lines.next()?.to_string();
    let mut well_framed = framed;
    let mut raw: Vec<String> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            match raw.last_mut() {
                Some(last) => {
                    last.push(' ');
                    last.push_str(line.trim());
                }
                None => well_framed = false,
            }
        } else {
            raw.push(line.to_string());
        }
    }
    let mut headers = Vec::with_capacity(raw.len());
    for line in raw {
        match line.split_once(':') {
            Some((name, value)) => {
                let name = name.trim();
                if name.is_empty() || !name.chars().all(is_token_char) {
                    well_framed = false;
                    continue;
                }
                headers.push(Header {
                    key: compact(name),
                    name: name.to_string(),
                    value: value.trim().to_string(),
                });
            }
            None => well_framed = false,
        }
    }
    Some(Request {
        start,
        headers,
        well_framed,
        body,
    })
}

/// RFC 3261 `token` characters.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_token_char)
}

/// Whether every double quote in `s` is closed (backslash escapes inside quotes honoured).
fn quotes_balanced(s: &str) -> bool {
    let mut inside = false;
    let mut escaped = false;
    for c in s.chars() {
        if inside {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                inside = false;
            }
        } else if c == '"' {
            inside = true;
        }
    }
    !inside
}

/// What is wrong with a From, To or Contact value (one element), if anything: an unclosed
/// quote, a display name of more than tokens left unquoted, spaces inside `<>`, or an
/// addr-spec without `<>` carrying URI headers (RFC 3261 section 20.10, RFC 4475 3.1.2.6,
/// 3.1.2.13 to 3.1.2.15).
fn address_defect(value: &str, several: bool) -> Option<&'static str> {
    if !quotes_balanced(value) {
        return Some("unterminated quoted string");
    }
    let v = value.trim();
    if let Some(rest) = v.strip_prefix('"') {
        // "display" <uri>: the display ends at the closing quote.
        let after = skip_quoted(rest)?;
        return angle_defect(after.trim_start());
    }
    match v.split_once('<') {
        Some((display, rest)) => {
            if !display.split_whitespace().all(is_token) {
                return Some("display name with special characters must be quoted");
            }
            angle_defect(&format!("<{rest}"))
        }
        None => {
            let uri = v.split(';').next().unwrap_or_default().trim();
            let comma = !several && uri.contains(',');
            if uri_has_headers(uri) || comma || uri.chars().any(char::is_whitespace) {
                return Some("a URI with headers or commas must be enclosed in <>");
            }
            None
        }
    }
}

/// Whether a URI has a `?headers` part: a `?` after the host (a `?` in the user part is an
/// ordinary character, RFC 4475 3.1.1.2).
fn uri_has_headers(uri: &str) -> bool {
    let host_part = uri.rsplit_once('@').map_or(uri, |(_, host)| host);
    host_part.contains('?')
}

/// The text after the closing quote of a quoted string whose opening quote is gone.
fn skip_quoted(rest: &str) -> Option<&str> {
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return rest.get(i + 1..);
        }
    }
    None
}

fn angle_defect(s: &str) -> Option<&'static str> {
    let Some(inner) = s.strip_prefix('<') else {
        return Some("expected <URI> after the display name");
    };
    let Some((uri, _params)) = inner.split_once('>') else {
        return Some("unclosed <");
    };
    if uri.is_empty() || uri.chars().any(char::is_whitespace) {
        return Some("spaces inside <>");
    }
    None
}

/// A Via value with the LWS that RFC 3261 allows around `/`, `;`, `=` and `,` removed, so the
/// stack's Via parser reads it (RFC 4475 3.1.1.1).
fn tidy_params(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut pending_space = false;
    let mut last: Option<char> = None;
    for c in value.chars() {
        if c == ' ' || c == '\t' {
            pending_space = true;
            continue;
        }
        let sticky = |x: char| matches!(x, '/' | ';' | '=' | ',' | ':');
        if pending_space && !sticky(c) && !last.is_some_and(sticky) && last.is_some() {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
        last = Some(c);
    }
    out
}

/// Whether a (tidied) Via value is `SIP/2.0/transport sent-by *(;param)` for each of its
/// comma-separated elements, with no empty element or parameter (RFC 4475 3.1.2.1).
fn via_well_formed(value: &str) -> bool {
    tidy_params(value).split(',').all(|element| {
        let mut parts = element.split(';');
        let Some(first) = parts.next() else {
            return false;
        };
        let mut words = first.split(' ');
        let (Some(protocol), Some(sent_by), None) = (words.next(), words.next(), words.next())
        else {
            return false;
        };
        let mut p = protocol.split('/');
        let ok_protocol = matches!(
            (p.next(), p.next(), p.next(), p.next()),
            (Some(name), Some(version), Some(transport), None)
                if is_token(name) && is_token(version) && is_token(transport)
        );
        ok_protocol && !sent_by.is_empty() && parts.all(|param| !param.is_empty())
    })
}

/// What the stack makes of these bytes: `Ok` when it parses them and can key a transaction.
fn stack_takes(data: &[u8]) -> Result<(), StackRefusal> {
    let msg = SipMessage::try_from(data).map_err(|_| StackRefusal::Unparsed)?;
    let SipMessage::Request(req) = msg else {
        return Ok(());
    };
    let via = req.top_via_header().map_err(|_| StackRefusal::Unparsed)?;
    via.typed().map_err(|_| StackRefusal::Via)?;
    let from = req.from_header().map_err(|_| StackRefusal::Unparsed)?;
    match from.tag() {
        Ok(Some(_)) => {}
        Ok(None) => return Err(StackRefusal::NoFromTag),
        Err(_) => return Err(StackRefusal::Unparsed),
    }
    req.call_id_header().map_err(|_| StackRefusal::Unparsed)?;
    req.cseq_header()
        .and_then(|c| c.seq())
        .map_err(|_| StackRefusal::Unparsed)?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StackRefusal {
    Unparsed,
    Via,
    NoFromTag,
}

/// Judges one datagram received from `source`.
pub fn inspect(data: &[u8], source: SocketAddr) -> Verdict {
    if data.starts_with(b"SIP/") {
        // A response: the stack takes it or drops it; nothing is ever answered to a response.
        return Verdict::Pass(data.to_vec());
    }
    let Some(req) = read(data) else {
        return Verdict::Drop;
    };
    // Nowhere to answer without a Via: drop.
    if req.count("via") == 0 {
        return Verdict::Drop;
    }
    let method = req.start.split(' ').next().unwrap_or_default().to_string();
    let is_ack = method == "ACK";
    let refuse = |status: u16, why: &str| {
        if is_ack {
            Verdict::Drop
        } else {
            Verdict::Answer {
                status,
                response: response(&req, status, why, source),
            }
        }
    };
    if let Some((status, why)) = syntax_defect(&req, &method) {
        return refuse(status, why);
    }
    match stack_takes(data) {
        Ok(()) => Verdict::Pass(data.to_vec()),
        Err(first) => {
            let normalised = normalise(&req, first == StackRefusal::NoFromTag);
            match stack_takes(&normalised) {
                Ok(()) => Verdict::Pass(normalised),
                Err(_) if !STACK_METHODS.contains(&method.as_str()) => {
                    let mut response = response(&req, 501, "unknown method", source);
                    insert_header(&mut response, &format!("Allow: {}", ALLOW));
                    if is_ack {
                        Verdict::Drop
                    } else {
                        Verdict::Answer {
                            status: 501,
                            response,
                        }
                    }
                }
                Err(_) if !uri_scheme_known(&req) => refuse(416, "unsupported URI scheme"),
                Err(_) => refuse(400, "malformed request"),
            }
        }
    }
}

/// The Request-URI's scheme is one we serve (sip, sips, tel).
fn uri_scheme_known(req: &Request) -> bool {
    let uri = req.start.split(' ').nth(1).unwrap_or_default();
    let scheme = uri.split(':').next().unwrap_or_default();
    ["sip", "sips", "tel"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
}

/// Errors of syntax the RFCs name, found by our own reading: (status, reason).
fn syntax_defect(req: &Request, method: &str) -> Option<(u16, &'static str)> {
    // Request-Line = Method SP Request-URI SP SIP-Version: single spaces, no <> (RFC 4475
    // 3.1.2.7 to 3.1.2.10).
    let parts: Vec<&str> = req.start.split(' ').collect();
    let [m, uri, version] = parts.as_slice() else {
        return Some((400, "malformed Request-Line"));
    };
    if !is_token(m) || uri.is_empty() || version.is_empty() {
        return Some((400, "malformed Request-Line"));
    }
    if uri.starts_with('<') || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some((400, "malformed Request-URI"));
    }
    if *version != "SIP/2.0" {
        return Some(if version.starts_with("SIP/") {
            (505, "only SIP/2.0")
        } else {
            (400, "malformed Request-Line")
        });
    }
    if !req.well_framed {
        return Some((400, "malformed header"));
    }
    for key in ["call-id", "cseq", "from", "to"] {
        match req.count(key) {
            0 => return Some((400, "missing Call-ID, CSeq, From or To")),
            1 => {}
            _ => return Some((400, "CSeq, Call-ID, From and To must appear once")),
        }
    }
    for key in ["max-forwards", "content-type", "content-length"] {
        if req.count(key) > 1 {
            return Some((400, "a single-valued header appears twice"));
        }
    }
    if let Some(cl) = req.one("content-length") {
        match cl.parse::<u32>() {
            Ok(n) if usize::try_from(n).is_ok_and(|n| n <= req.body.len()) => {}
            Ok(_) => return Some((400, "Content-Length exceeds the message")),
            Err(_) => return Some((400, "malformed Content-Length")),
        }
    }
    if let Some(mf) = req.one("max-forwards") {
        if mf.parse::<u8>().is_err() {
            return Some((400, "malformed Max-Forwards"));
        }
    }
    let cseq = req.one("cseq").unwrap_or_default();
    let mut cseq_parts = cseq.split_whitespace();
    let number_ok = cseq_parts
        .next()
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n < 1 << 31);
    let cseq_method = cseq_parts.next();
    if !number_ok || cseq_parts.next().is_some() {
        return Some((400, "malformed CSeq"));
    }
    if cseq_method != Some(method) {
        // RFC 4475 3.1.2.18: an unknown method is 501 whatever its CSeq says.
        if STACK_METHODS.contains(&method) {
            return Some((400, "the CSeq method is not the request's"));
        }
        return None;
    }
    for via in req.all("via") {
        if !via_well_formed(&via.value) {
            return Some((400, "malformed Via"));
        }
    }
    for key in ["from", "to"] {
        if let Some(why) = req.one(key).and_then(|v| address_defect(v, false)) {
            return Some((400, why));
        }
    }
    for contact in req.all("contact") {
        if contact.value.trim() != "*" {
            if let Some(why) = address_defect(&contact.value, true) {
                return Some((400, why));
            }
        }
    }
    let scheme_sip = ["sip:", "sips:"]
        .iter()
        .any(|s| uri.to_ascii_lowercase().starts_with(s));
    if scheme_sip && uri_has_headers(uri) {
        return Some((400, "a Request-URI must not carry headers"));
    }
    None
}

/// The request rewritten in a form the stack reads: headers unfolded, LWS taken out of Via and
/// of From and To parameters, and (when `add_tag`) a null From tag made explicit.
fn normalise(req: &Request, add_tag: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(req.body.len() + 1024);
    out.extend_from_slice(req.start.as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in &req.headers {
        let value = match h.key.as_str() {
            "via" => tidy_params(&h.value),
            "from" | "to" => tidy_address(&h.value),
            _ => h.value.clone(),
        };
        let value = if add_tag && h.key == "from" {
            format!("{value};tag={NULL_FROM_TAG}")
        } else {
            value
        };
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&req.body);
    out
}

/// A From or To value with LWS around `;` and `=` of its parameters removed (the part after
/// the URI; the display name is kept as written).
fn tidy_address(value: &str) -> String {
    match value.rsplit_once('>') {
        Some((addr, params)) => format!("{addr}>{}", tidy_params(params)),
        None => tidy_params(value),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        416 => "Unsupported URI Scheme",
        501 => "Not Implemented",
        505 => "Version Not Supported",
        _ => "Error",
    }
}

/// A stateless response (RFC 3261 section 8.2.6): the request's Via (the top one with
/// received and rport, RFC 3581), From, To with a tag of ours, Call-ID and CSeq, those it had.
fn response(req: &Request, status: u16, why: &str, source: SocketAddr) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {status} {}\r\n", reason(status));
    let mut first = true;
    for via in req.all("via") {
        if first {
            let tidy = tidy_params(&via.value);
            let (top, rest) = match tidy.split_once(',') {
                Some((top, rest)) => (top.to_string(), Some(rest.to_string())),
                None => (tidy, None),
            };
            let top: String = top
                .split(';')
                .filter(|p| {
                    let name = p.split('=').next().unwrap_or_default();
                    !name.eq_ignore_ascii_case("received") && !name.eq_ignore_ascii_case("rport")
                })
                .collect::<Vec<_>>()
                .join(";");
            out.push_str(&format!(
                "Via: {top};received={};rport={}\r\n",
                source.ip(),
                source.port()
            ));
            if let Some(rest) = rest {
                out.push_str(&format!("Via: {rest}\r\n"));
            }
            first = false;
        } else {
            out.push_str(&format!("Via: {}\r\n", via.value));
        }
    }
    if let Some(from) = req.one("from") {
        out.push_str(&format!("From: {from}\r\n"));
    }
    if let Some(to) = req.one("to") {
        let tagged = to
            .to_ascii_lowercase()
            .split(';')
            .any(|p| p.trim().starts_with("tag"));
        if tagged {
            out.push_str(&format!("To: {to}\r\n"));
        } else {
            out.push_str(&format!("To: {to};tag={:08x}\r\n", rand::random::<u32>()));
        }
    }
    if let Some(call_id) = req.one("call-id") {
        out.push_str(&format!("Call-ID: {call_id}\r\n"));
    }
    if let Some(cseq) = req.one("cseq") {
        out.push_str(&format!("CSeq: {cseq}\r\n"));
    }
    let why: String = why.chars().filter(|c| *c != '"' && *c != '\\').collect();
    out.push_str(&format!("Warning: 399 belteken \"{why}\"\r\n"));
    out.push_str(concat!(
        "Server: belteken/",
        env!("CARGO_PKG_VERSION"),
        "\r\n"
    ));
    out.push_str("Content-Length: 0\r\n\r\n");
    out.into_bytes()
}

/// Puts `line` (no CRLF) among the headers of a response we built.
fn insert_header(response: &mut Vec<u8>, line: &str) {
    let Some(end) = header_end(response) else {
        return;
    };
    let mut with = response.get(..end).unwrap_or_default().to_vec();
    with.extend_from_slice(b"\r\n");
    with.extend_from_slice(line.as_bytes());
    with.extend_from_slice(response.get(end..).unwrap_or_default());
    *response = with;
}

/// A message we send with the null From tag taken out again (see [`NULL_FROM_TAG`]).
pub fn strip_null_tag(data: &[u8]) -> Option<Vec<u8>> {
    let needle = format!(";tag={NULL_FROM_TAG}");
    let needle = needle.as_bytes();
    let at = data.windows(needle.len()).position(|w| w == needle)?;
    let end = header_end(data).unwrap_or(data.len());
    if at > end {
        return None;
    }
    let mut out = data.get(..at).unwrap_or_default().to_vec();
    out.extend_from_slice(data.get(at + needle.len()..).unwrap_or_default());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> SocketAddr {
        "127.0.0.1:40000".parse().expect("an address")
    }

    fn status(v: &Verdict) -> Option<u16> {
        match v {
            Verdict::Answer { status, .. } => Some(*status),
            _ => None,
        }
    }

    const OPTIONS: &str = "OPTIONS sip:user@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:user@example.com>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn a_plain_request_passes_unchanged() {
        assert_eq!(
            inspect(OPTIONS.as_bytes(), src()),
            Verdict::Pass(OPTIONS.as_bytes().to_vec())
        );
    }

    #[test]
    fn an_unknown_method_gets_501_with_the_request_identity() {
        let m = OPTIONS.replace("OPTIONS", "FOO");
        let v = inspect(m.as_bytes(), src());
        assert_eq!(status(&v), Some(501));
        let Verdict::Answer { response, .. } = v else {
            return;
        };
        let text = String::from_utf8_lossy(&response);
        assert!(
            text.starts_with("SIP/2.0 501 Not Implemented\r\n"),
            "{text}"
        );
        assert!(text.contains("CSeq: 1 FOO\r\n"), "{text}");
        assert!(text.contains("Call-ID: c1\r\n"), "{text}");
        assert!(text.contains("received=127.0.0.1;rport=40000"), "{text}");
        assert!(text.contains("Allow: "), "{text}");
        assert!(text.contains("To: <sip:user@example.com>;tag="), "{text}");
    }

    #[test]
    fn request_line_defects_get_400_and_505() {
        for (from, to, code) in [
            (
                "OPTIONS sip:user@example.com SIP/2.0",
                "OPTIONS  sip:user@example.com SIP/2.0",
                400,
            ),
            (
                "OPTIONS sip:user@example.com SIP/2.0",
                "OPTIONS sip:user@example.com SIP/2.0 ",
                400,
            ),
            (
                "OPTIONS sip:user@example.com SIP/2.0",
                "OPTIONS <sip:user@example.com> SIP/2.0",
                400,
            ),
            (
                "OPTIONS sip:user@example.com SIP/2.0",
                "OPTIONS sip:user@example.com SIP/7.0",
                505,
            ),
        ] {
            let m = OPTIONS.replace(from, to);
            assert_eq!(status(&inspect(m.as_bytes(), src())), Some(code), "{to:?}");
        }
    }

    #[test]
    fn an_ack_is_never_answered() {
        let m = OPTIONS
            .replace("OPTIONS sip", "ACK  sip")
            .replace("1 OPTIONS", "1 ACK");
        assert_eq!(inspect(m.as_bytes(), src()), Verdict::Drop);
    }

    #[test]
    fn folded_spaced_headers_reach_the_stack_in_a_form_it_keys() {
        let m = OPTIONS
            .replace(
                "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx",
                "Via  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.1;branch=z9hG4bKx",
            )
            .replace(";tag=1", " ;\r\n tag = 1");
        let Verdict::Pass(bytes) = inspect(m.as_bytes(), src()) else {
            panic!("not passed");
        };
        assert_eq!(
            stack_takes(&bytes),
            Ok(()),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
    }

    #[test]
    fn a_from_without_tag_gets_the_null_tag_which_is_stripped_on_the_way_out() {
        let m = OPTIONS.replace("<sip:a@example.com>;tag=1", "<sip:a@example.com>");
        let Verdict::Pass(bytes) = inspect(m.as_bytes(), src()) else {
            panic!("not passed");
        };
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains(NULL_FROM_TAG), "{text}");
        let back = strip_null_tag(&bytes).expect("tag found");
        assert!(!String::from_utf8_lossy(&back).contains(NULL_FROM_TAG));
    }

    #[test]
    fn nothing_panics_on_prefixes_and_junk() {
        let bytes = OPTIONS.as_bytes();
        for cut in 0..bytes.len() {
            let _ = inspect(bytes.get(..cut).unwrap_or_default(), src());
        }
        for junk in [
            &b""[..],
            b"\r\n\r\n",
            b"\xff\xfe\x00",
            b"A B C\r\nVia:\r\n\r\n",
            b"\"\r\n",
        ] {
            let _ = inspect(junk, src());
        }
        assert_eq!(
            address_defect("\"unclosed <sip:a@b>", false),
            Some("unterminated quoted string")
        );
        assert_eq!(address_defect("\"ok\" <sip:a@b>;tag=1", false), None);
        assert_eq!(
            address_defect("caller<sip:caller@example.com>;tag=323", false),
            None
        );
    }
}
