//! RTP (RFC 3550) packet parsing and a no-allocation packet writer for our outgoing streams.
#![warn(clippy::arithmetic_side_effects)]
#![cfg_attr(test, allow(clippy::arithmetic_side_effects))]

use thiserror::Error;

/// RTP version this code speaks; anything else is rejected.
pub const RTP_VERSION: u8 = 2;
/// Fixed RTP header length in bytes (no CSRCs, no extension).
pub const RTP_HEADER_LEN: usize = 12;
/// Length in bytes of one CSRC identifier.
const CSRC_LEN: usize = 4;
/// Length in bytes of the header-extension preamble (profile + length in words).
const EXTENSION_HEADER_LEN: usize = 4;

/// Why bytes from the network are not an RTP packet (or not a telephone-event payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtpError {
    /// Fewer bytes than the part of the header being read needs.
    #[error("RTP packet too short: {len} bytes, need {need}")]
    TooShort { len: usize, need: usize },
    /// The two version bits are not 2.
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    /// The CSRC list runs past the end of the packet.
    #[error("RTP CSRC count {count} runs past the end of a {len}-byte packet")]
    CsrcOverflow { count: u8, len: usize },
    /// The header extension runs past the end of the packet.
    #[error("RTP header extension of {words} words runs past the end of a {len}-byte packet")]
    ExtensionOverflow { words: u16, len: usize },
    /// The padding count is zero or larger than the bytes after the header.
    #[error("RTP padding of {padding} bytes is invalid with {available} bytes after the header")]
    BadPadding { padding: u8, available: usize },
    /// A telephone-event payload is shorter than its 4 bytes.
    #[error("telephone-event payload too short: {len} bytes, need 4")]
    EventTooShort { len: usize },
    /// The caller's output buffer cannot hold the packet being written.
    #[error("output buffer of {have} bytes cannot hold a {need}-byte RTP packet")]
    BufferTooSmall { need: usize, have: usize },
}

/// A parsed RTP packet borrowing its payload from the received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// The payload with CSRCs, header extension and padding removed.
    pub payload: &'a [u8],
}

fn be16(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes(b.try_into().ok()?))
}

fn be32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

/// Parses one RTP datagram. Never panics, whatever the bytes.
pub fn parse(buf: &[u8]) -> Result<RtpPacket<'_>, RtpError> {
    let len = buf.len();
    let too_short = RtpError::TooShort {
        len,
        need: RTP_HEADER_LEN,
    };
    let (&b0, &b1) = (buf.first().ok_or(too_short)?, buf.get(1).ok_or(too_short)?);
    let version = b0 >> 6;
    if version != RTP_VERSION {
        return Err(RtpError::BadVersion(version));
    }
    if len < RTP_HEADER_LEN {
        return Err(too_short);
    }
    let has_padding = b0 & 0x20 != 0;
    let has_extension = b0 & 0x10 != 0;
    let csrc_count = b0 & 0x0F;
    let sequence = be16(buf, 2).ok_or(too_short)?;
    let timestamp = be32(buf, 4).ok_or(too_short)?;
    let ssrc = be32(buf, 8).ok_or(too_short)?;

    // At most 12 + 15 * 4 bytes: no overflow, but checked like every length read here.
    let csrc_overflow = RtpError::CsrcOverflow {
        count: csrc_count,
        len,
    };
    let mut offset = usize::from(csrc_count)
        .checked_mul(CSRC_LEN)
        .and_then(|n| n.checked_add(RTP_HEADER_LEN))
        .ok_or(csrc_overflow)?;
    if offset > len {
        return Err(csrc_overflow);
    }
    if has_extension {
        let need = offset.saturating_add(EXTENSION_HEADER_LEN);
        let words = offset
            .checked_add(2)
            .and_then(|at| be16(buf, at))
            .ok_or(RtpError::TooShort { len, need })?;
        let extension_overflow = RtpError::ExtensionOverflow { words, len };
        offset = usize::from(words)
            .checked_mul(4)
            .and_then(|n| n.checked_add(need))
            .ok_or(extension_overflow)?;
        if offset > len {
            return Err(extension_overflow);
        }
    }
    // `offset <= len` from here on.
    let available = len.saturating_sub(offset);
    let mut end = len;
    if has_padding {
        // The last byte counts the padding including itself, so 0 is invalid too.
        let padding = buf.last().copied().unwrap_or(0);
        end = match len.checked_sub(usize::from(padding)) {
            Some(end) if padding != 0 && usize::from(padding) <= available => end,
            _ => return Err(RtpError::BadPadding { padding, available }),
        };
    }
    Ok(RtpPacket {
        payload_type: b1 & 0x7F,
        marker: b1 & 0x80 != 0,
        sequence,
        timestamp,
        ssrc,
        payload: buf.get(offset..end).ok_or(too_short)?,
    })
}

/// Cheap RTP/RTCP demultiplexing for rtcp-mux (RFC 5761 §4): the second byte, marker bit
/// ignored, falls in the RTCP packet-type range 192..=223 (SR 200, RR 201, SDES 202, BYE 203,
/// APP 204, feedback 205/206, XR 207). Also requires version 2.
pub fn looks_like_rtcp(buf: &[u8]) -> bool {
    match (buf.first(), buf.get(1)) {
        (Some(&b0), Some(&b1)) => b0 >> 6 == RTP_VERSION && (64..=95).contains(&(b1 & 0x7F)),
        _ => false,
    }
}

/// Writes the packets of one outgoing RTP stream (one SSRC) into caller-owned buffers.
///
/// The timestamp advances by the payload length, i.e. one sample per byte as in G.711 at
/// 8 kHz; use [`RtpSender::skip`] for time that passed without sending.
#[derive(Debug, Clone)]
pub struct RtpSender {
    ssrc: u32,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    marker_pending: bool,
    packets_sent: u64,
    octets_sent: u64,
}

impl RtpSender {
    /// `payload_type` is masked to 7 bits; the first packet carries the marker bit.
    pub fn new(ssrc: u32, payload_type: u8, initial_seq: u16, initial_ts: u32) -> Self {
        RtpSender {
            ssrc,
            payload_type: payload_type & 0x7F,
            sequence: initial_seq,
            timestamp: initial_ts,
            marker_pending: true,
            packets_sent: 0,
            octets_sent: 0,
        }
    }

    /// Writes the 12-byte header and `payload` into `out`, returns the packet length and
    /// advances sequence (+1) and timestamp (+`payload.len()`). Nothing is allocated. If
    /// `out` is too small, nothing is written and the stream state is unchanged.
    pub fn write_packet(&mut self, payload: &[u8], out: &mut [u8]) -> Result<usize, RtpError> {
        let need = RTP_HEADER_LEN.saturating_add(payload.len());
        let have = out.len();
        let Some((header, body)) = out
            .get_mut(..need)
            .and_then(|o| o.split_first_chunk_mut::<RTP_HEADER_LEN>())
        else {
            return Err(RtpError::BufferTooSmall { need, have });
        };
        let [s0, s1] = self.sequence.to_be_bytes();
        let [t0, t1, t2, t3] = self.timestamp.to_be_bytes();
        let [i0, i1, i2, i3] = self.ssrc.to_be_bytes();
        let marker = if self.marker_pending { 0x80 } else { 0 };
        *header = [
            RTP_VERSION << 6,
            self.payload_type | marker,
            s0,
            s1,
            t0,
            t1,
            t2,
            t3,
            i0,
            i1,
            i2,
            i3,
        ];
        // `body` is `need - 12 = payload.len()` bytes long.
        body.copy_from_slice(payload);

        self.marker_pending = false;
        self.sequence = self.sequence.wrapping_add(1);
        // RTP timestamps are modulo 2^32; a payload longer than u32::MAX is impossible in a datagram.
        self.timestamp = self.timestamp.wrapping_add(payload.len() as u32);
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.octets_sent = self.octets_sent.wrapping_add(payload.len() as u64);
        Ok(need)
    }

    /// Sets the marker bit on the next packet: the start of a talkspurt after silence or a pause.
    pub fn mark_talkspurt(&mut self) {
        self.marker_pending = true;
    }

    /// Advances the timestamp by `samples` without sending (a pause, or frames the pacer skipped).
    pub fn skip(&mut self, samples: u32) {
        self.timestamp = self.timestamp.wrapping_add(samples);
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    pub fn payload_type(&self) -> u8 {
        self.payload_type
    }

    /// Sequence number the next packet will carry.
    pub fn next_sequence(&self) -> u16 {
        self.sequence
    }

    /// Timestamp the next packet will carry.
    pub fn next_timestamp(&self) -> u32 {
        self.timestamp
    }

    /// Packets written so far (for RTCP sender reports).
    pub fn packets_sent(&self) -> u64 {
        self.packets_sent
    }

    /// Payload octets written so far (for RTCP sender reports).
    pub fn octets_sent(&self) -> u64 {
        self.octets_sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(b0: u8, b1: u8) -> Vec<u8> {
        vec![
            b0, b1, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02, 0x03, 0x04,
        ]
    }

    #[test]
    fn parses_minimal_packet() {
        let mut p = header(0x80, 0x80 | 8);
        p.extend_from_slice(&[1, 2, 3]);
        let pkt = parse(&p).expect("valid packet");
        assert_eq!(
            pkt,
            RtpPacket {
                payload_type: 8,
                marker: true,
                sequence: 0x1234,
                timestamp: 0xDEAD_BEEF,
                ssrc: 0x0102_0304,
                payload: &[1, 2, 3],
            }
        );
        // Header only: empty payload is fine.
        assert_eq!(parse(&p[..12]).expect("valid").payload, &[] as &[u8]);
    }

    #[test]
    fn skips_csrcs_extension_and_padding() {
        // V=2, P=1, X=1, CC=2
        let mut p = header(0x80 | 0x20 | 0x10 | 2, 0);
        p.extend_from_slice(&[0xAA; 8]); // two CSRCs
        p.extend_from_slice(&[0xBE, 0xDE, 0x00, 0x01, 9, 9, 9, 9]); // extension, 1 word
        p.extend_from_slice(&[5, 6, 7]); // payload
        p.extend_from_slice(&[0, 0, 3]); // 3 bytes padding
        let pkt = parse(&p).expect("valid packet");
        assert_eq!(pkt.payload, &[5, 6, 7]);
        assert_eq!(pkt.payload_type, 0);
        assert!(!pkt.marker);
    }

    #[test]
    fn padding_may_consume_whole_payload() {
        let mut p = header(0xA0, 0);
        p.extend_from_slice(&[0, 0, 0, 4]);
        assert_eq!(parse(&p).expect("valid").payload, &[] as &[u8]);
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(parse(&[]), Err(RtpError::TooShort { len: 0, need: 12 }));
        assert_eq!(parse(&[0x80]), Err(RtpError::TooShort { len: 1, need: 12 }));
        assert_eq!(
            parse(&header(0x80, 0)[..11]),
            Err(RtpError::TooShort { len: 11, need: 12 })
        );
        assert_eq!(parse(&header(0x40, 0)), Err(RtpError::BadVersion(1)));
        assert_eq!(parse(&header(0xC0, 0)), Err(RtpError::BadVersion(3)));
        assert_eq!(parse(&header(0x00, 0)), Err(RtpError::BadVersion(0)));
        // CC=15 needs 60 more bytes.
        let mut p = header(0x8F, 0);
        p.extend_from_slice(&[0; 56]);
        assert_eq!(
            parse(&p),
            Err(RtpError::CsrcOverflow { count: 15, len: 68 })
        );
        // Extension flag without room for its preamble.
        let p = header(0x90, 0);
        assert_eq!(parse(&p), Err(RtpError::TooShort { len: 12, need: 16 }));
        // Extension claiming more words than present.
        let mut p = header(0x90, 0);
        p.extend_from_slice(&[0xBE, 0xDE, 0xFF, 0xFF, 1, 2, 3, 4]);
        assert_eq!(
            parse(&p),
            Err(RtpError::ExtensionOverflow {
                words: 0xFFFF,
                len: 20
            })
        );
        // Padding larger than what follows the header.
        let mut p = header(0xA0, 0);
        p.extend_from_slice(&[1, 2, 5]);
        assert_eq!(
            parse(&p),
            Err(RtpError::BadPadding {
                padding: 5,
                available: 3
            })
        );
        // Padding count zero.
        let mut p = header(0xA0, 0);
        p.extend_from_slice(&[1, 2, 0]);
        assert!(matches!(
            parse(&p),
            Err(RtpError::BadPadding { padding: 0, .. })
        ));
        // Padding flag on a header-only packet: the last header byte is not padding.
        assert!(matches!(
            parse(&header(0xA0, 0)),
            Err(RtpError::BadPadding { available: 0, .. })
        ));
    }

    /// Deterministic xorshift so the brute-force tests are reproducible (house rule 9).
    pub(crate) struct XorShift(pub u64);
    impl XorShift {
        pub fn next_u8(&mut self) -> u8 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 32) as u8
        }
    }

    #[test]
    fn brute_force_never_panics() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut ok = 0;
        for round in 0..2000 {
            for len in 0..64 {
                let mut buf: Vec<u8> = (0..len).map(|_| rng.next_u8()).collect();
                // Force version 2 in half the rounds so the deeper paths get exercised.
                if round % 2 == 0 {
                    if let Some(b) = buf.first_mut() {
                        *b = (*b & 0x3F) | 0x80;
                    }
                }
                if let Ok(p) = parse(&buf) {
                    ok += 1;
                    assert!(p.payload.len() + RTP_HEADER_LEN <= buf.len());
                }
                let _ = looks_like_rtcp(&buf);
                let _ = crate::dtmf::parse_event(&buf);
            }
        }
        assert!(
            ok > 1000,
            "brute force should also hit valid packets ({ok})"
        );
    }

    #[test]
    fn rtcp_demux() {
        assert!(looks_like_rtcp(&[0x80, 200, 0, 6]));
        assert!(looks_like_rtcp(&[0x81, 201]));
        assert!(looks_like_rtcp(&[0x80, 204]));
        assert!(!looks_like_rtcp(&[0x80, 0]));
        assert!(!looks_like_rtcp(&[0x80, 0x80 | 8]));
        assert!(!looks_like_rtcp(&[0x80, 101]));
        assert!(!looks_like_rtcp(&[0x80, 0x80 | 101]));
        assert!(!looks_like_rtcp(&[0x80]));
        assert!(!looks_like_rtcp(&[]));
        assert!(!looks_like_rtcp(&[0x00, 200]));
    }

    #[test]
    fn sender_writes_and_advances() {
        let mut s = RtpSender::new(0x0102_0304, 0, 65535, u32::MAX - 100);
        let mut out = [0u8; 12 + 160];
        let payload = [0xFFu8; 160];
        let n = s.write_packet(&payload, &mut out).expect("buffer fits");
        assert_eq!(n, 172);
        let p = parse(&out[..n]).expect("we parse what we write");
        assert!(p.marker);
        assert_eq!(
            (p.sequence, p.timestamp, p.ssrc),
            (65535, u32::MAX - 100, 0x0102_0304)
        );
        assert_eq!(p.payload, &payload[..]);

        // Sequence and timestamp wrap.
        let n = s.write_packet(&payload, &mut out).expect("buffer fits");
        let p = parse(&out[..n]).expect("valid");
        assert!(!p.marker);
        assert_eq!((p.sequence, p.timestamp), (0, 59));

        s.skip(160 * 5);
        s.mark_talkspurt();
        let n = s.write_packet(&payload, &mut out).expect("buffer fits");
        let p = parse(&out[..n]).expect("valid");
        assert!(p.marker);
        assert_eq!((p.sequence, p.timestamp), (1, 59 + 160 + 800));
        assert_eq!((s.packets_sent(), s.octets_sent()), (3, 480));
        assert_eq!((s.next_sequence(), s.next_timestamp()), (2, 59 + 160 * 7));
        assert_eq!((s.ssrc(), s.payload_type()), (0x0102_0304, 0));
    }

    #[test]
    fn sender_refuses_small_buffer_without_side_effects() {
        let mut s = RtpSender::new(1, 8, 10, 20);
        let mut out = [0u8; 100];
        assert_eq!(
            s.write_packet(&[0; 160], &mut out),
            Err(RtpError::BufferTooSmall {
                need: 172,
                have: 100
            })
        );
        assert_eq!((s.next_sequence(), s.next_timestamp()), (10, 20));
        let n = s.write_packet(&[0; 88], &mut out).expect("fits exactly");
        assert_eq!(n, 100);
        assert!(parse(&out).expect("valid").marker, "marker still pending");
    }
}
