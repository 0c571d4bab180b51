//! Sans-IO media for belteken: G.711, audio import, RTP, RFC 4733 DTMF, pacing, speech detection and recording.
//!
//! Nothing here opens a socket, spawns a task or reads a clock: time comes in as
//! `Instant`/`Duration` arguments (enforced by `clippy.toml` in this crate), and every parser
//! of network bytes returns a typed error instead of panicking.
//!
//! Nothing here indexes or slices in a way that can panic: every access is checked (`get`,
//! `split_first_chunk`, `chunks_exact`) or indexes a fixed-size table with a type that cannot
//! exceed it. The parsers of network and file bytes (`rtp`, `dtmf`, `wav`, `import`) also do
//! no unchecked integer arithmetic. Tests may index: a panic there is a failed test.
#![warn(clippy::string_slice, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::indexing_slicing, clippy::string_slice))]

pub mod audio;
pub mod dtmf;
pub mod g711;
pub mod import;
pub mod pacer;
pub mod recorder;
pub mod rtp;
pub mod stream;
pub mod tags;
pub mod vad;
pub mod wav;
pub mod wheel;

use std::time::Duration;

/// The one sample rate everything in this crate speaks after import (G.711 narrowband).
pub const SAMPLE_RATE_HZ: u32 = 8000;
/// Samples in one 20 ms frame at [`SAMPLE_RATE_HZ`]; also the G.711 payload bytes per frame.
pub const FRAME_SAMPLES: usize = 160;
/// Duration of one frame (the RTP packetisation time, `ptime`).
pub const FRAME_DURATION: Duration = Duration::from_millis(20);

/// A G.711 codec as negotiated in SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// The static RTP payload type (RFC 3551 table 4).
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The encoding name used in SDP `a=rtpmap` lines.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The codec for a static payload type, if it is one of ours.
    pub fn from_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The codec for an SDP encoding name (case-insensitive, as SDP names are).
    pub fn from_name(name: &str) -> Option<Codec> {
        if name.eq_ignore_ascii_case("PCMU") {
            Some(Codec::Pcmu)
        } else if name.eq_ignore_ascii_case("PCMA") {
            Some(Codec::Pcma)
        } else {
            None
        }
    }

    /// Encodes `min(pcm.len(), out.len())` samples into `out`; returns how many were written.
    pub fn encode(self, pcm: &[i16], out: &mut [u8]) -> usize {
        let pairs = out.iter_mut().zip(pcm);
        // One loop per law so each inlines its encoder.
        match self {
            Codec::Pcmu => pairs.for_each(|(o, &s)| *o = g711::ulaw_encode(s)),
            Codec::Pcma => pairs.for_each(|(o, &s)| *o = g711::alaw_encode(s)),
        }
        pcm.len().min(out.len())
    }

    /// Decodes every byte of `payload`, appending the samples to `out` (it is not cleared, so a
    /// caller can reuse one buffer and decide when to clear it).
    pub fn decode(self, payload: &[u8], out: &mut Vec<i16>) {
        let table = match self {
            Codec::Pcmu => &g711::ULAW_TO_LINEAR,
            Codec::Pcma => &g711::ALAW_TO_LINEAR,
        };
        out.extend(payload.iter().map(|&b| g711::lookup(table, b)));
    }
}

/// Tests need some `Instant` to start from (there is no other constructor); its value is
/// irrelevant because every later time is this plus a `Duration`.
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
pub(crate) fn test_origin() -> std::time::Instant {
    std::time::Instant::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_identity() {
        assert_eq!(Codec::Pcmu.payload_type(), 0);
        assert_eq!(Codec::Pcma.payload_type(), 8);
        assert_eq!(Codec::Pcmu.name(), "PCMU");
        assert_eq!(Codec::Pcma.name(), "PCMA");
        for c in [Codec::Pcmu, Codec::Pcma] {
            assert_eq!(Codec::from_payload_type(c.payload_type()), Some(c));
            assert_eq!(Codec::from_name(&c.name().to_lowercase()), Some(c));
        }
        assert_eq!(Codec::from_payload_type(101), None);
        assert_eq!(Codec::from_name("opus"), None);
    }

    #[test]
    fn encode_stops_at_shorter_buffer() {
        let mut out = [0u8; 4];
        assert_eq!(Codec::Pcmu.encode(&[0; 10], &mut out), 4);
        assert_eq!(out, [0xFF; 4]);
        assert_eq!(Codec::Pcma.encode(&[0; 2], &mut out), 2);
        assert_eq!(&out[..2], &[0xD5, 0xD5]);
    }

    #[test]
    fn decode_appends() {
        let mut out = vec![1];
        Codec::Pcmu.decode(&[0xFF, 0x80], &mut out);
        Codec::Pcma.decode(&[0xD5], &mut out);
        assert_eq!(out, vec![1, 0, 32124, 8]);
    }

    /// A 1 kHz tone survives encode+decode within a fraction of a dB, for both laws.
    #[test]
    fn tone_round_trip_keeps_level() {
        let pcm = audio::tone(1000.0, Duration::from_secs(1), 10_000);
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let mut enc = vec![0u8; pcm.len()];
            assert_eq!(codec.encode(&pcm, &mut enc), pcm.len());
            let mut dec = Vec::new();
            codec.decode(&enc, &mut dec);
            let (a, b) = (vad::rms_dbfs(&pcm), vad::rms_dbfs(&dec));
            assert!((a - b).abs() < 0.2, "{codec:?}: {a} vs {b}");
            // And the error is small sample by sample: G.711 SNR is ~38 dB for this level.
            let err: Vec<i16> = pcm.iter().zip(&dec).map(|(x, y)| x - y).collect();
            assert!(a - vad::rms_dbfs(&err) > 30.0, "{codec:?} SNR too low");
        }
    }
}
