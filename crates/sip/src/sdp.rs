//! SDP offer/answer for one audio stream (RFC 4566, RFC 3264), G.711 and telephone-event only.
//!
//! The parser is tolerant of what real stacks send and never panics on input; the answer
//! keeps every offered media line (rejected ones with port 0) in the offer's order.
//!
//! Tolerant of content, strict about structure: a body that is not `v=0` followed by
//! `<letter>=<value>` lines, or whose `m=` line cannot be read, is malformed (the INVITE gets
//! 400); a well-formed offer with nothing we can take is [`SdpError::NoCommonCodec`] (488).

#![warn(clippy::string_slice, clippy::indexing_slicing)]

use std::net::{IpAddr, SocketAddr};

/// Longest SDP body we look at.
pub const MAX_SDP_BYTES: usize = 16 * 1024;

pub use media::Codec;

/// The direction attribute of a media line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// Our direction in an answer to this offered direction.
    fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }
    fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// One `m=` line of an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLine {
    pub kind: String,
    pub port: u16,
    pub proto: String,
    pub formats: Vec<String>,
    pub connection: Option<IpAddr>,
    pub direction: Direction,
    /// (payload type, encoding name in upper case, clock rate)
    pub rtpmaps: Vec<(u8, String, u32)>,
    pub ptime: Option<u32>,
}

/// A parsed offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub session_connection: Option<IpAddr>,
    pub media: Vec<MediaLine>,
}

/// What we agreed to for the audio stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// Index of the accepted audio line in the offer.
    pub media_index: usize,
    pub codec: Codec,
    /// Payload type of telephone-event, when offered at 8000 Hz.
    pub telephone_event: Option<u8>,
    /// Where the caller said to send RTP (before latching); `None` when on hold (port 0 / 0.0.0.0).
    pub remote: Option<SocketAddr>,
    pub direction: Direction,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP body is too large")]
    TooLarge,
    #[error("SDP is not UTF-8 text")]
    NotText,
    #[error("SDP has no media line")]
    NoMedia,
    #[error("malformed SDP line {0}")]
    Malformed(usize),
    #[error("no common audio codec (G.711 PCMU or PCMA required)")]
    NoCommonCodec,
}

impl SdpError {
    /// Whether the body is no valid SDP at all (a bad request) rather than an offer we cannot
    /// take (not acceptable here).
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            SdpError::TooLarge | SdpError::NotText | SdpError::Malformed(_)
        )
    }
}

/// Parses an SDP offer.
pub fn parse(body: &[u8]) -> Result<Offer, SdpError> {
    if body.len() > MAX_SDP_BYTES {
        return Err(SdpError::TooLarge);
    }
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
    let mut offer = Offer {
        session_connection: None,
        media: Vec::new(),
    };
    let mut session_direction = Direction::SendRecv;
    let mut seen_version = false;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let Some((kind, value)) = line.split_once('=') else {
            return Err(SdpError::Malformed(n + 1));
        };
        // RFC 4566 section 5: `<type>=<value>`, the type one letter, `v=0` first.
        let mut type_chars = kind.chars();
        let one_letter = matches!(
            (type_chars.next(), type_chars.next()),
            (Some(c), None) if c.is_ascii_alphabetic()
        );
        if !one_letter || (!seen_version && (kind != "v" || value.trim() != "0")) {
            return Err(SdpError::Malformed(n + 1));
        }
        seen_version = true;
        match kind {
            "m" => {
                let mut parts = value.split_ascii_whitespace();
                let media_kind = parts.next().ok_or(SdpError::Malformed(n + 1))?;
                let port_field = parts.next().ok_or(SdpError::Malformed(n + 1))?;
                // "port/count" is allowed; we only use the first port.
                let port = port_field
                    .split('/')
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
                    .ok_or(SdpError::Malformed(n + 1))?;
                let proto = parts.next().ok_or(SdpError::Malformed(n + 1))?;
                let formats: Vec<String> = parts.map(str::to_string).collect();
                if formats.is_empty() {
                    return Err(SdpError::Malformed(n + 1));
                }
                offer.media.push(MediaLine {
                    kind: media_kind.to_string(),
                    port,
                    proto: proto.to_string(),
                    formats,
                    connection: None,
                    direction: session_direction,
                    rtpmaps: Vec::new(),
                    ptime: None,
                });
            }
            "c" => {
                // c=IN IP4 192.0.2.1 (a TTL or count suffix may follow a slash)
                let addr = value
                    .split_ascii_whitespace()
                    .nth(2)
                    .and_then(|a| a.split('/').next())
                    .and_then(|a| a.parse::<IpAddr>().ok());
                match offer.media.last_mut() {
                    Some(m) => m.connection = addr,
                    None => offer.session_connection = addr,
                }
            }
            "a" => {
                let (name, arg) = match value.split_once(':') {
                    Some((n, a)) => (n, Some(a)),
                    None => (value, None),
                };
                let direction = match name {
                    "sendrecv" => Some(Direction::SendRecv),
                    "sendonly" => Some(Direction::SendOnly),
                    "recvonly" => Some(Direction::RecvOnly),
                    "inactive" => Some(Direction::Inactive),
                    _ => None,
                };
                match (offer.media.last_mut(), direction) {
                    (Some(m), Some(d)) => m.direction = d,
                    (None, Some(d)) => session_direction = d,
                    (Some(m), None) => match (name, arg) {
                        ("rtpmap", Some(arg)) => {
                            if let Some(map) = parse_rtpmap(arg) {
                                m.rtpmaps.push(map);
                            }
                        }
                        ("ptime", Some(arg)) => m.ptime = arg.trim().parse().ok(),
                        _ => {}
                    },
                    (None, None) => {}
                }
            }
            _ => {}
        }
    }
    if offer.media.is_empty() {
        return Err(SdpError::NoMedia);
    }
    Ok(offer)
}

fn parse_rtpmap(arg: &str) -> Option<(u8, String, u32)> {
    let (pt, rest) = arg.trim().split_once(' ')?;
    let pt = pt.parse::<u8>().ok()?;
    let mut enc = rest.trim().split('/');
    let name = enc.next()?.to_ascii_uppercase();
    let rate = enc.next()?.parse::<u32>().ok()?;
    Some((pt, name, rate))
}

impl MediaLine {
    fn encoding(&self, pt: u8) -> Option<(&str, u32)> {
        self.rtpmaps
            .iter()
            .find(|(p, _, _)| *p == pt)
            .map(|(_, name, rate)| (name.as_str(), *rate))
    }

    /// The first G.711 codec in the caller's order of preference.
    fn preferred_codec(&self) -> Option<Codec> {
        self.formats.iter().find_map(|f| {
            let pt = f.parse::<u8>().ok()?;
            match (pt, self.encoding(pt)) {
                (0, None) | (0, Some(("PCMU", 8000))) => Some(Codec::Pcmu),
                (8, None) | (8, Some(("PCMA", 8000))) => Some(Codec::Pcma),
                (_, Some(("PCMU", 8000))) | (_, Some(("PCMA", 8000))) => None, // dynamic G.711: rare, not supported
                _ => None,
            }
        })
    }

    fn telephone_event(&self) -> Option<u8> {
        self.formats.iter().find_map(|f| {
            let pt = f.parse::<u8>().ok()?;
            match self.encoding(pt) {
                Some(("TELEPHONE-EVENT", 8000)) => Some(pt),
                _ => None,
            }
        })
    }

    fn is_rtp_audio(&self) -> bool {
        self.kind == "audio" && self.port != 0 && self.proto.starts_with("RTP/AVP")
    }
}

/// Picks the audio stream and codec from an offer (RFC 3264 section 6).
pub fn negotiate(offer: &Offer) -> Result<Negotiated, SdpError> {
    for (index, m) in offer.media.iter().enumerate() {
        if !m.is_rtp_audio() || m.proto != "RTP/AVP" {
            continue;
        }
        let Some(codec) = m.preferred_codec() else {
            continue;
        };
        let ip = m.connection.or(offer.session_connection);
        let remote = match ip {
            Some(ip) if !ip.is_unspecified() => Some(SocketAddr::new(ip, m.port)),
            _ => None,
        };
        return Ok(Negotiated {
            media_index: index,
            codec,
            telephone_event: m.telephone_event(),
            remote,
            direction: m.direction,
        });
    }
    Err(SdpError::NoCommonCodec)
}

/// Builds our answer: one line per offered line, only the negotiated one with a port.
pub fn answer(
    offer: &Offer,
    chosen: &Negotiated,
    local: SocketAddr,
    session_id: u64,
    version: u64,
) -> String {
    let ip_kind = if local.is_ipv4() { "IP4" } else { "IP6" };
    let ip = local.ip();
    let mut s = format!(
        "v=0\r\no=belteken {session_id} {version} IN {ip_kind} {ip}\r\ns=belteken\r\nc=IN {ip_kind} {ip}\r\nt=0 0\r\n"
    );
    for (i, m) in offer.media.iter().enumerate() {
        if i == chosen.media_index {
            let pt = chosen.codec.payload_type();
            let mut fmts = pt.to_string();
            if let Some(te) = chosen.telephone_event {
                fmts.push_str(&format!(" {te}"));
            }
            s.push_str(&format!("m=audio {} RTP/AVP {fmts}\r\n", local.port()));
            s.push_str(&format!("a=rtpmap:{pt} {}/8000\r\n", chosen.codec.name()));
            if let Some(te) = chosen.telephone_event {
                s.push_str(&format!(
                    "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n"
                ));
            }
            s.push_str("a=ptime:20\r\n");
            s.push_str(&format!("a={}\r\n", chosen.direction.answer().attribute()));
        } else {
            // A rejected stream keeps its line with port 0 (RFC 3264 section 6).
            let fmt = m.formats.first().map(String::as_str).unwrap_or("0");
            s.push_str(&format!("m={} 0 {} {fmt}\r\n", m.kind, m.proto));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const PJSIP_OFFER: &str = "v=0\r\no=- 3913 3913 IN IP4 127.0.0.1\r\ns=pjmedia\r\nb=AS:84\r\nt=0 0\r\na=X-nat:0\r\nm=audio 12090 RTP/AVP 8 0 101\r\nc=IN IP4 127.0.0.1\r\nb=TIAS:64000\r\na=rtcp:12091 IN IP4 127.0.0.1\r\na=sendrecv\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n";

    #[test]
    fn answers_callers_preferred_g711_and_telephone_event() {
        let offer = parse(PJSIP_OFFER.as_bytes()).expect("valid offer");
        let n = negotiate(&offer).expect("common codec");
        assert_eq!(n.codec, Codec::Pcma);
        assert_eq!(n.telephone_event, Some(101));
        assert_eq!(n.remote, Some("127.0.0.1:12090".parse().expect("addr")));
        let a = answer(&offer, &n, "127.0.0.1:30000".parse().expect("addr"), 7, 1);
        assert!(a.contains("m=audio 30000 RTP/AVP 8 101\r\n"), "{a}");
        assert!(a.contains("a=rtpmap:8 PCMA/8000\r\n"));
        assert!(a.contains("a=rtpmap:101 telephone-event/8000\r\n"));
        assert!(a.contains("a=sendrecv\r\n"));
        assert!(a.starts_with("v=0\r\no=belteken 7 1 IN IP4 127.0.0.1\r\n"));
    }

    #[test]
    fn pcmu_first_wins_and_no_event_when_not_offered() {
        let sdp = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0 8\r\n";
        let offer = parse(sdp.as_bytes()).expect("valid");
        let n = negotiate(&offer).expect("codec");
        assert_eq!(n.codec, Codec::Pcmu);
        assert_eq!(n.telephone_event, None);
        assert_eq!(n.remote, Some("10.0.0.1:4000".parse().expect("addr")));
    }

    #[test]
    fn no_g711_is_rejected() {
        let sdp =
            "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n";
        let offer = parse(sdp.as_bytes()).expect("valid");
        assert_eq!(negotiate(&offer), Err(SdpError::NoCommonCodec));
    }

    #[test]
    fn video_is_rejected_with_port_zero_and_audio_kept() {
        let sdp = "v=0\r\nc=IN IP6 ::1\r\nm=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n";
        let offer = parse(sdp.as_bytes()).expect("valid");
        let n = negotiate(&offer).expect("codec");
        assert_eq!(n.media_index, 1);
        assert_eq!(n.direction, Direction::SendOnly);
        let a = answer(&offer, &n, "[::1]:6000".parse().expect("addr"), 1, 1);
        let video = a.find("m=video 0 RTP/AVP 96").expect("video line kept");
        let audio = a.find("m=audio 6000 RTP/AVP 0").expect("audio line");
        assert!(video < audio);
        assert!(a.contains("a=recvonly"));
        assert!(a.contains("c=IN IP6 ::1"));
    }

    #[test]
    fn hold_address_gives_no_remote() {
        let sdp = "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 4000 RTP/AVP 0\r\n";
        let n = negotiate(&parse(sdp.as_bytes()).expect("valid")).expect("codec");
        assert_eq!(n.remote, None);
    }

    #[test]
    fn garbage_never_panics() {
        for input in [
            &b""[..],
            b"v=0",
            b"v=0\r\nm=audio 4000 RTP/AVP\r\n",
            b"v=0\r\nxy=1\r\n",
            b"v=\xc3\xa9\r\n",
            b"m=",
            b"m=audio",
            b"m=audio x RTP/AVP 0",
            b"\xff\xfe",
            b"v=0\r\nm=audio 99999 RTP/AVP 0",
            b"a=rtpmap:\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:0\r\na=rtpmap:300 PCMU/8000\r\nc=IN",
            b"no equals sign",
        ] {
            let _ = parse(input).and_then(|o| negotiate(&o));
        }
        assert_eq!(
            parse(&vec![b'a'; MAX_SDP_BYTES + 1]),
            Err(SdpError::TooLarge)
        );
    }

    #[test]
    fn structure_is_checked_content_is_not() {
        for bad in [
            &b"m=audio 4000 RTP/AVP 0\r\n"[..],
            b"v=1\r\nm=audio 4000 RTP/AVP 0\r\n",
            b"v=0\r\nthis is not sdp\r\n",
            b"v=0\r\nm=audio many RTP/AVP 0\r\n",
            b"v=0\r\nm=audio 4000 RTP/AVP\r\n",
            b"v=0\r\nmm=audio 4000 RTP/AVP 0\r\n",
        ] {
            let e = parse(bad).expect_err("malformed");
            assert!(e.is_malformed(), "{e:?}");
        }
        // Unknown lines and attributes are fine; an offer without audio we take is not malformed.
        let ok = b"v=0\r\nz=whatever\r\nm=video 5000 RTP/AVP 96\r\na=x-unknown\r\n";
        let offer = parse(ok).expect("well-formed");
        let e = negotiate(&offer).expect_err("no audio");
        assert!(!e.is_malformed());
        assert!(!SdpError::NoMedia.is_malformed());
    }
}
