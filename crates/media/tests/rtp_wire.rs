//! Pins the exact bytes `RtpSender` puts on the wire, and round-trips them through `parse`.

use media::rtp::{self, RtpSender};
use media::{Codec, FRAME_SAMPLES};

#[test]
fn known_good_pcma_header() {
    let mut sender = RtpSender::new(0xCAFE_BABE, Codec::Pcma.payload_type(), 0x1234, 0x0001_0000);
    let payload = [0xD5u8; FRAME_SAMPLES];
    let mut buf = [0u8; 1500];

    let n = sender
        .write_packet(&payload, &mut buf)
        .expect("1500 bytes hold one frame");
    assert_eq!(n, 172);
    #[rustfmt::skip]
    let first: [u8; 12] = [
        0x80,                   // V=2, P=0, X=0, CC=0
        0x88,                   // M=1 (first packet), PT=8 (PCMA)
        0x12, 0x34,             // sequence
        0x00, 0x01, 0x00, 0x00, // timestamp
        0xCA, 0xFE, 0xBA, 0xBE, // SSRC
    ];
    assert_eq!(buf[..12], first);
    assert!(buf[12..n].iter().all(|&b| b == 0xD5));

    let n = sender.write_packet(&payload, &mut buf).expect("fits");
    #[rustfmt::skip]
    let second: [u8; 12] = [
        0x80, 0x08,             // no marker
        0x12, 0x35,             // sequence + 1
        0x00, 0x01, 0x00, 0xA0, // timestamp + 160
        0xCA, 0xFE, 0xBA, 0xBE,
    ];
    assert_eq!(buf[..12], second);

    let parsed = rtp::parse(&buf[..n]).expect("we parse what we write");
    assert_eq!(parsed.payload_type, 8);
    assert!(!parsed.marker);
    assert_eq!(parsed.sequence, 0x1235);
    assert_eq!(parsed.timestamp, 0x0001_00A0);
    assert_eq!(parsed.ssrc, 0xCAFE_BABE);
    assert_eq!(parsed.payload, &payload[..]);
}

/// A telephone-event packet as captured from a SIP phone (PT 101, digit 5, end, vol 10, dur 800).
#[test]
fn known_good_telephone_event() {
    let packet: [u8; 16] = [
        0x80, 0x65, 0x00, 0x2A, 0x00, 0x00, 0x1F, 0x40, 0x11, 0x22, 0x33, 0x44, 0x05, 0x8A, 0x03,
        0x20,
    ];
    let p = rtp::parse(&packet).expect("valid");
    assert_eq!((p.payload_type, p.sequence, p.timestamp), (101, 42, 8000));
    let ev = media::dtmf::parse_event(p.payload).expect("valid event");
    assert_eq!(
        (ev.event, ev.end, ev.volume, ev.duration),
        (5, true, 10, 800)
    );
    let mut rx = media::dtmf::DtmfReceiver::new();
    assert_eq!(rx.on_packet(p.timestamp, p.payload), Some('5'));
    assert_eq!(rx.on_packet(p.timestamp, p.payload), None);
}
