//! RFC 4733 telephone-event payloads: parsing, and turning a stream of event packets into key presses.
#![warn(clippy::arithmetic_side_effects)]
#![cfg_attr(test, allow(clippy::arithmetic_side_effects))]

use crate::rtp::RtpError;

/// Length of one telephone-event block (event, E/R/volume, duration).
pub const EVENT_LEN: usize = 4;
/// How far back (in RTP timestamp units, 8 kHz: 5 s) a timestamp is taken to be a late,
/// reordered packet of an event already reported, rather than a sender that restarted its clock.
pub const STALE_EVENT_WINDOW_SAMPLES: u32 = 5 * 8000;

/// One telephone-event block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfEvent {
    /// Event code: 0-9, 10 `*`, 11 `#`, 12-15 `A`-`D` are DTMF; others are other tones.
    pub event: u8,
    /// The E bit: this packet ends the event.
    pub end: bool,
    /// Power level in -dBm0 (0..=63).
    pub volume: u8,
    /// Duration so far, in RTP timestamp units.
    pub duration: u16,
}

/// Parses the first telephone-event block of a payload (further blocks, e.g. RFC 2198
/// redundancy, are ignored). Never panics.
pub fn parse_event(payload: &[u8]) -> Result<DtmfEvent, RtpError> {
    match payload {
        [event, flags, d0, d1, ..] => Ok(DtmfEvent {
            event: *event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([*d0, *d1]),
        }),
        _ => Err(RtpError::EventTooShort { len: payload.len() }),
    }
}

/// The key for a DTMF event code, or `None` for non-DTMF events.
pub fn event_char(event: u8) -> Option<char> {
    /// The keys of event codes 0..=15 (RFC 4733 table 7).
    const KEYS: [char; 16] = [
        '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
    ];
    KEYS.get(usize::from(event)).copied()
}

/// Turns the packets of one telephone-event stream into key presses, each reported once.
///
/// All packets of one event share its RTP timestamp (start, continuations and the three
/// retransmitted end packets), so a press is reported at the first packet seen with a new
/// timestamp: lowest latency, and a lost start packet still yields the digit later.
#[derive(Debug, Clone, Default)]
pub struct DtmfReceiver {
    last_timestamp: Option<u32>,
}

impl DtmfReceiver {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one telephone-event packet (its RTP timestamp and payload); returns the key if
    /// this packet starts a new DTMF event. Malformed payloads are ignored.
    pub fn on_packet(&mut self, timestamp: u32, payload: &[u8]) -> Option<char> {
        let event = parse_event(payload).ok()?;
        if let Some(last) = self.last_timestamp {
            let behind = last.wrapping_sub(timestamp);
            // Same event, or a late packet of an earlier one (reordering), is not a new press.
            if behind < STALE_EVENT_WINDOW_SAMPLES {
                return None;
            }
        }
        self.last_timestamp = Some(timestamp);
        event_char(event.event)
    }

    /// Forgets the last event (e.g. after the remote changed SSRC).
    pub fn reset(&mut self) {
        self.last_timestamp = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(event: u8, end: bool, volume: u8, duration: u16) -> [u8; 4] {
        let d = duration.to_be_bytes();
        [event, (u8::from(end) << 7) | volume, d[0], d[1]]
    }

    #[test]
    fn parses_event() {
        assert_eq!(
            parse_event(&[5, 0x8A, 0x03, 0x20]),
            Ok(DtmfEvent {
                event: 5,
                end: true,
                volume: 10,
                duration: 800
            })
        );
        // Reserved bit is ignored, extra bytes too.
        assert_eq!(
            parse_event(&[11, 0x40 | 7, 0, 160, 9, 9]),
            Ok(DtmfEvent {
                event: 11,
                end: false,
                volume: 7,
                duration: 160
            })
        );
        for len in 0..4 {
            assert_eq!(
                parse_event(&[0; 4][..len]),
                Err(RtpError::EventTooShort { len })
            );
        }
    }

    #[test]
    fn event_chars() {
        let all: String = (0..=15).filter_map(event_char).collect();
        assert_eq!(all, "0123456789*#ABCD");
        assert_eq!(event_char(16), None);
        assert_eq!(event_char(255), None);
    }

    /// A realistic sequence: start, continuations, three end packets, for "1", "1", "#".
    #[test]
    fn reports_each_press_once() {
        let mut rx = DtmfReceiver::new();
        let mut keys = String::new();
        let mut ts = 1_000u32;
        for ev in [1u8, 1, 11] {
            for i in 0..6u16 {
                keys.extend(rx.on_packet(ts, &payload(ev, false, 10, 160 * (i + 1))));
            }
            for _ in 0..3 {
                keys.extend(rx.on_packet(ts, &payload(ev, true, 10, 1120)));
            }
            ts = ts.wrapping_add(1600);
        }
        assert_eq!(keys, "11#");
    }

    #[test]
    fn late_packets_and_lost_starts() {
        let mut rx = DtmfReceiver::new();
        // Start of "5" lost: its end packet still reports it.
        assert_eq!(rx.on_packet(100, &payload(5, true, 10, 800)), Some('5'));
        assert_eq!(rx.on_packet(2000, &payload(6, false, 10, 160)), Some('6'));
        // A reordered end packet of "5" arriving after "6" started is not a new press.
        assert_eq!(rx.on_packet(100, &payload(5, true, 10, 800)), None);
        // Non-DTMF events consume their timestamp but give no key.
        assert_eq!(rx.on_packet(4000, &payload(16, false, 10, 160)), None);
        assert_eq!(rx.on_packet(4000, &payload(16, true, 10, 800)), None);
        // Malformed payloads are ignored and do not disturb state.
        assert_eq!(rx.on_packet(9000, &[1, 2]), None);
        assert_eq!(rx.on_packet(9000, &payload(9, false, 10, 160)), Some('9'));
        // A timestamp far in the past means the sender restarted: a new press.
        assert_eq!(
            rx.on_packet(9000u32.wrapping_sub(100_000), &payload(3, false, 10, 160)),
            Some('3')
        );
        // Timestamps wrap around 2^32.
        assert_eq!(
            rx.on_packet(u32::MAX - 10, &payload(4, false, 10, 160)),
            Some('4')
        );
        assert_eq!(rx.on_packet(150, &payload(7, false, 10, 160)), Some('7'));
        rx.reset();
        assert_eq!(rx.on_packet(150, &payload(7, false, 10, 160)), Some('7'));
    }
}
