//! An RTP (or RTCP, on the same port) datagram from anyone: parse it, and decode its payload
//! as the media thread would (G.711 voice or a telephone-event).
#![no_main]

use libfuzzer_sys::fuzz_target;
use media::rtp;

fuzz_target!(|data: &[u8]| {
    if rtp::looks_like_rtcp(data) {
        return;
    }
    let Ok(packet) = rtp::parse(data) else {
        return;
    };
    assert!(packet.payload.len() <= data.len().saturating_sub(rtp::RTP_HEADER_LEN));
    match media::Codec::from_payload_type(packet.payload_type) {
        Some(codec) => {
            let mut pcm = Vec::new();
            codec.decode(packet.payload, &mut pcm);
            assert_eq!(
                pcm.len(),
                packet.payload.len(),
                "G.711: one sample per byte"
            );
        }
        None => {
            let mut rx = media::dtmf::DtmfReceiver::new();
            let _ = rx.on_packet(packet.timestamp, packet.payload);
        }
    }
});
