//! Nothing a caller's media or an uploaded file holds panics the media parsers: RTP, RFC 4733
//! events and audio decoding (WAV, MP3, OGG, FLAC) on arbitrary bytes and on damaged real
//! files. The fuzz targets in `fuzz/` search the same entry points for longer.

use std::path::PathBuf;

use media::{audio, dtmf, import, rtp, wav};
use proptest::prelude::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `bytes` with a few bytes overwritten and perhaps cut short.
fn damage(mut bytes: Vec<u8>, edits: &[(usize, u8)], keep: usize) -> Vec<u8> {
    for &(at, b) in edits {
        if !bytes.is_empty() {
            let at = at % bytes.len();
            bytes[at] = b;
        }
    }
    let keep = keep.min(bytes.len()).max(bytes.len() / 4);
    bytes.truncate(keep);
    bytes
}

fn decode(bytes: &[u8], hint: Option<&str>) {
    if let Ok(samples) = audio::decode_bytes(bytes, hint) {
        let _ = import::analyze(&samples);
        let _ = import::prepare(&samples);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_datagram_as_rtp(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = rtp::looks_like_rtcp(&bytes);
        if let Ok(p) = rtp::parse(&bytes) {
            prop_assert!(p.payload.len() + rtp::RTP_HEADER_LEN <= bytes.len());
            let _ = dtmf::parse_event(p.payload);
        }
    }

    #[test]
    fn any_rtp_header_bits(b0 in any::<u8>(), rest in proptest::collection::vec(any::<u8>(), 0..80)) {
        // Version 2 with every padding, extension and CSRC combination.
        let mut bytes = vec![0x80 | (b0 & 0x3F)];
        bytes.extend(rest);
        let _ = rtp::parse(&bytes);
    }

    #[test]
    fn any_event_stream(packets in proptest::collection::vec((any::<u32>(), proptest::collection::vec(any::<u8>(), 0..8)), 0..20)) {
        let mut rx = dtmf::DtmfReceiver::new();
        for (ts, payload) in packets {
            if let Some(key) = rx.on_packet(ts, &payload) {
                prop_assert!(key.is_ascii_digit() || "*#ABCD".contains(key));
            }
        }
    }
}

proptest! {
    // Decoding runs a resampler (slow in a debug build): fewer cases keep this file at a few
    // seconds.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_bytes_as_audio(bytes in proptest::collection::vec(any::<u8>(), 0..2048), hint in 0usize..5) {
        let hint = [None, Some("wav"), Some("mp3"), Some("ogg"), Some("flac")][hint];
        decode(&bytes, hint);
    }

    #[test]
    fn a_damaged_wav(edits in proptest::collection::vec((0usize..100, any::<u8>()), 1..6), keep in 0usize..4000) {
        let samples: Vec<i16> = (0..1600).map(|i| ((i * 37) % 2000) as i16 - 1000).collect();
        let bytes = damage(wav::pcm16_mono(&samples, 8000), &edits, keep);
        decode(&bytes, Some("wav"));
    }
}

proptest! {
    // Each case decodes a whole real file.
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn a_damaged_compressed_file(which in 0usize..3, edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), keep in any::<usize>()) {
        let (name, hint) = [
            ("tone-16k-mono.flac", "flac"),
            ("tone-44k1-stereo.mp3", "mp3"),
            ("tone-48k-stereo.ogg", "ogg"),
        ][which];
        let bytes = damage(fixture(name), &edits, keep);
        decode(&bytes, Some(hint));
    }
}
