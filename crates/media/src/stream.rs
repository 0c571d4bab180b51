//! One call's media as a sans-IO state machine: plays shared prompt frames, records, reads DTMF, latches.
//!
//! The IO loop that owns many streams feeds it datagrams ([`Stream::on_datagram`]) and
//! millisecond ticks ([`Stream::on_tick`], which hands each due packet to a sink with its
//! destination), applies the call's [`Command`]s, and forwards [`StreamEvent`]s from
//! [`Stream::poll_event`] to the call. Time is always an argument; nothing here allocates per
//! packet (prompt frames are borrowed from the shared `Arc<Prompt>`, the packet is built in a
//! buffer the stream owns).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::audio::Prompt;
use crate::dtmf::DtmfReceiver;
use crate::pacer::Pacer;
use crate::recorder::{EndReason, Recorder, RecorderLimits};
use crate::rtp::{RtpSender, RTP_HEADER_LEN};
use crate::{Codec, FRAME_DURATION, FRAME_SAMPLES};

/// Events a stream keeps for its call before the loop collects them; more is a bug in the loop.
const MAX_PENDING_EVENTS: usize = 64;

/// What the call asks its media to do.
#[derive(Debug)]
pub enum Command {
    /// The call was answered: start the outgoing stream with frame 0 due at `origin`.
    Start { origin: Instant },
    /// Play these prompts one after another (replacing what plays); `play` names this request
    /// in the [`StreamEvent::PromptFinished`] it ends with.
    Play {
        play: u64,
        prompts: Vec<Arc<Prompt>>,
    },
    /// Stop playing (silence follows); no `PromptFinished` is reported for what was cut.
    StopPlayback,
    /// Start recording the caller with these limits (`now` is the start).
    StartRecording { limits: RecorderLimits },
    /// A re-INVITE's answer: the codec, the telephone-event payload type and, when the
    /// re-INVITE carried an offer, its remote address (unlatches if it changed).
    Update {
        remote: Option<Option<SocketAddr>>,
        codec: Codec,
        telephone_event: Option<u8>,
    },
}

/// What a stream tells its call.
#[derive(Debug)]
pub enum StreamEvent {
    /// The prompts of `Play { play, .. }` have all been sent.
    PromptFinished { play: u64 },
    /// A recording ended by its own limits; the recorder is handed back whole.
    RecordingFinished {
        recorder: Box<Recorder>,
        reason: EndReason,
    },
    /// An RFC 4733 key press.
    Digit(char),
    /// No RTP from the caller for the media timeout since the answer or the last packet.
    MediaTimeout,
}

/// How a stream begins.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub ssrc: u32,
    pub initial_sequence: u16,
    pub initial_timestamp: u32,
    pub codec: Codec,
    pub telephone_event: Option<u8>,
    /// The address from the offer's SDP, until the caller's RTP is latched.
    pub remote: Option<SocketAddr>,
    /// After the answer, this long without RTP from the caller raises [`StreamEvent::MediaTimeout`].
    pub media_timeout: Duration,
}

/// Packets a tick produced, for the server's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickCounts {
    pub sent: u64,
    /// Frames dropped because the loop was more than the catch-up bound late.
    pub late: u64,
    /// Frames sent more than [`LATE_SEND`] after their deadline (a catch-up burst's older
    /// frames, or a loop that woke late).
    pub sent_late: u64,
}

/// A frame sent this long after its deadline counts as sent late (half a frame).
pub const LATE_SEND: Duration = Duration::from_millis(10);

/// One call's media state.
#[derive(Debug)]
pub struct Stream {
    codec: Codec,
    telephone_event: Option<u8>,
    remote: Option<SocketAddr>,
    latched: bool,
    sender: RtpSender,
    pacer: Option<Pacer>,
    playing: Option<(Arc<Prompt>, usize)>,
    queued: VecDeque<Arc<Prompt>>,
    play: u64,
    recorder: Option<Recorder>,
    dtmf: DtmfReceiver,
    last_received: Instant,
    media_timeout: Duration,
    timeout_reported: bool,
    events: VecDeque<StreamEvent>,
    decoded: Vec<i16>,
    out: [u8; RTP_HEADER_LEN + FRAME_SAMPLES],
}

fn silence(codec: Codec) -> &'static [u8] {
    static PCMU: [u8; FRAME_SAMPLES] = [0xFF; FRAME_SAMPLES];
    static PCMA: [u8; FRAME_SAMPLES] = [0xD5; FRAME_SAMPLES];
    match codec {
        Codec::Pcmu => &PCMU,
        Codec::Pcma => &PCMA,
    }
}

impl Stream {
    pub fn new(config: StreamConfig, now: Instant) -> Self {
        Stream {
            codec: config.codec,
            telephone_event: config.telephone_event,
            remote: config.remote,
            latched: false,
            sender: RtpSender::new(
                config.ssrc,
                config.codec.payload_type(),
                config.initial_sequence,
                config.initial_timestamp,
            ),
            pacer: None,
            playing: None,
            queued: VecDeque::new(),
            play: 0,
            recorder: None,
            dtmf: DtmfReceiver::new(),
            last_received: now,
            media_timeout: config.media_timeout,
            timeout_reported: false,
            events: VecDeque::with_capacity(4),
            decoded: Vec::with_capacity(FRAME_SAMPLES),
            out: [0; RTP_HEADER_LEN + FRAME_SAMPLES],
        }
    }

    /// Frame 0's deadline once started: the stream's phase on a wheel.
    pub fn origin(&self) -> Option<Instant> {
        self.pacer.as_ref().map(Pacer::origin)
    }

    /// Where packets go now (latched or from SDP).
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }

    pub fn is_recording(&self) -> bool {
        self.recorder.is_some()
    }

    /// Applies a command from the call at `now`.
    pub fn handle(&mut self, now: Instant, command: Command) {
        match command {
            Command::Start { origin } => {
                if self.pacer.is_none() {
                    self.pacer = Some(Pacer::new(origin, FRAME_DURATION));
                    self.last_received = origin.max(now);
                }
            }
            Command::Play { play, prompts } => {
                self.play = play;
                self.queued = prompts.into();
                self.playing = self.queued.pop_front().map(|p| (p, 0));
                if self.playing.is_none() {
                    self.push_event(StreamEvent::PromptFinished { play });
                }
            }
            Command::StopPlayback => {
                self.playing = None;
                self.queued.clear();
            }
            Command::StartRecording { limits } => {
                self.recorder = Some(Recorder::new(limits, now));
            }
            Command::Update {
                remote,
                codec,
                telephone_event,
            } => {
                if codec != self.codec {
                    // Same stream (SSRC, sequence, clock), new payload type.
                    self.codec = codec;
                    self.sender = RtpSender::new(
                        self.sender.ssrc(),
                        codec.payload_type(),
                        self.sender.next_sequence(),
                        self.sender.next_timestamp(),
                    );
                }
                self.telephone_event = telephone_event;
                if let Some(remote) = remote {
                    if remote != self.remote {
                        self.remote = remote;
                        self.latched = false;
                    }
                }
            }
        }
    }

    /// Stops the recording (the call ended it, or hung up) and hands it back.
    pub fn take_recording(&mut self) -> Option<Recorder> {
        self.recorder.take()
    }

    fn push_event(&mut self, event: StreamEvent) {
        debug_assert!(
            self.events.len() < MAX_PENDING_EVENTS,
            "the loop collects events after every input"
        );
        if self.events.len() < MAX_PENDING_EVENTS {
            self.events.push_back(event);
        }
    }

    /// The next event for the call.
    pub fn poll_event(&mut self) -> Option<StreamEvent> {
        self.events.pop_front()
    }

    /// Handles one datagram from `from` that arrived at `now`.
    pub fn on_datagram(&mut self, now: Instant, data: &[u8], from: SocketAddr) {
        if crate::rtp::looks_like_rtcp(data) {
            return;
        }
        let Ok(packet) = crate::rtp::parse(data) else {
            return;
        };
        let is_audio = packet.payload_type == self.codec.payload_type();
        let is_event = Some(packet.payload_type) == self.telephone_event;
        if !is_audio && !is_event {
            return;
        }
        // Symmetric RTP: answer to where the caller's media really comes from.
        if !self.latched || self.remote != Some(from) {
            self.remote = Some(from);
            self.latched = true;
        }
        self.last_received = now;
        if is_event {
            if let Some(digit) = self.dtmf.on_packet(packet.timestamp, packet.payload) {
                self.push_event(StreamEvent::Digit(digit));
            }
            return;
        }
        if let Some(recorder) = &mut self.recorder {
            self.decoded.clear();
            self.codec.decode(packet.payload, &mut self.decoded);
            recorder.push(now, &self.decoded);
        }
    }

    /// Sends the frames due by `now` through `sink(packet, destination)`, checks the
    /// recording's limits and the media timeout.
    pub fn on_tick(&mut self, now: Instant, mut sink: impl FnMut(&[u8], SocketAddr)) -> TickCounts {
        let mut counts = TickCounts::default();
        if let Some(pacer) = &mut self.pacer {
            let due = pacer.due(now);
            counts.sent = u64::from(due.frames);
            counts.late = due.skipped;
            // Frame k of the burst is `due.late - k * FRAME_DURATION` late.
            counts.sent_late = (0..due.frames)
                .take_while(|k| {
                    due.late.saturating_sub(FRAME_DURATION.saturating_mul(*k)) > LATE_SEND
                })
                .count() as u64;
            if due.skipped > 0 {
                // Late (the loop stalled): keep the timestamps true, drop what is stale.
                let skipped = u32::try_from(due.skipped).unwrap_or(u32::MAX / 2);
                self.sender
                    .skip(skipped.saturating_mul(FRAME_SAMPLES as u32));
                if let Some((_, index)) = &mut self.playing {
                    *index = index.saturating_add(skipped as usize);
                }
            }
            for _ in 0..due.frames {
                let payload: &[u8] = match &mut self.playing {
                    Some((prompt, index)) => match prompt.frame(self.codec, *index) {
                        Some(frame) => {
                            *index += 1;
                            frame
                        }
                        None => silence(self.codec),
                    },
                    None => silence(self.codec),
                };
                // `out` holds a header and one 160-byte frame, all a frame ever is.
                let Ok(len) = self.sender.write_packet(payload, &mut self.out) else {
                    continue;
                };
                if let Some(remote) = self.remote {
                    sink(&self.out[..len], remote);
                }
            }
            while let Some((prompt, index)) = &self.playing {
                if *index < prompt.frames() {
                    break;
                }
                match self.queued.pop_front() {
                    Some(next) => self.playing = Some((next, 0)),
                    None => {
                        self.playing = None;
                        let play = self.play;
                        self.push_event(StreamEvent::PromptFinished { play });
                    }
                }
            }
            if !self.timeout_reported
                && now.saturating_duration_since(self.last_received) > self.media_timeout
            {
                self.timeout_reported = true;
                self.push_event(StreamEvent::MediaTimeout);
            }
        }
        self.check_recording(now);
        counts
    }

    fn check_recording(&mut self, now: Instant) {
        if let Some(reason) = self.recorder.as_mut().and_then(|r| r.poll(now)) {
            if let Some(recorder) = self.recorder.take() {
                self.push_event(StreamEvent::RecordingFinished {
                    recorder: Box::new(recorder),
                    reason,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(remote: SocketAddr) -> StreamConfig {
        StreamConfig {
            ssrc: 0x1234_5678,
            initial_sequence: 65_534,
            initial_timestamp: 1000,
            codec: Codec::Pcmu,
            telephone_event: Some(101),
            remote: Some(remote),
            media_timeout: Duration::from_secs(30),
        }
    }

    fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut s = RtpSender::new(99, pt, seq, ts);
        let mut out = vec![0u8; 12 + payload.len()];
        let n = s.write_packet(payload, &mut out).expect("fits");
        out.truncate(n);
        out
    }

    #[test]
    fn counts_frames_sent_late_and_dropped() {
        let t0 = crate::test_origin();
        let a: SocketAddr = "127.0.0.1:4000".parse().expect("addr");
        let mut s = Stream::new(config(a), t0);
        s.handle(t0, Command::Start { origin: t0 });
        let on_time = s.on_tick(t0 + Duration::from_millis(2), |_, _| {});
        assert_eq!((on_time.sent, on_time.late, on_time.sent_late), (1, 0, 0));
        // 95 ms late for frame 1 (due at 20 ms): frames 1..=5 are due, the catch-up bound
        // sends the newest 3 (deadlines 60, 80 and 100 ms) and drops 2. At 115 ms they are
        // 55, 35 and 15 ms late: all three over the 10 ms bound.
        let stalled = s.on_tick(t0 + Duration::from_millis(115), |_, _| {});
        assert_eq!((stalled.sent, stalled.late, stalled.sent_late), (3, 2, 3));
        // 8 ms after the next deadline (120 ms): sent, not late.
        let next = s.on_tick(t0 + Duration::from_millis(128), |_, _| {});
        assert_eq!((next.sent, next.late, next.sent_late), (1, 0, 0));
    }

    #[test]
    fn plays_prompts_on_deadlines_and_reports_the_end() {
        let t0 = crate::test_origin();
        let a: SocketAddr = "127.0.0.1:4000".parse().expect("addr");
        let mut s = Stream::new(config(a), t0);
        let prompt = Arc::new(Prompt::from_samples(&[1000; 2 * FRAME_SAMPLES]));
        s.handle(t0, Command::Start { origin: t0 });
        s.handle(
            t0,
            Command::Play {
                play: 7,
                prompts: vec![prompt.clone(), prompt],
            },
        );
        let mut sent = Vec::new();
        for n in 0..5u32 {
            let now = t0 + FRAME_DURATION * n;
            let c = s.on_tick(now, |p, to| sent.push((p.to_vec(), to)));
            assert_eq!(
                c,
                TickCounts {
                    sent: 1,
                    late: 0,
                    sent_late: 0
                }
            );
        }
        let parsed: Vec<_> = sent
            .iter()
            .map(|(p, _)| crate::rtp::parse(p).expect("ours").sequence)
            .collect();
        assert_eq!(parsed, vec![65_534, 65_535, 0, 1, 2]);
        let first = crate::rtp::parse(&sent[0].0).expect("ours");
        assert!(first.marker && first.ssrc == 0x1234_5678 && first.timestamp == 1000);
        assert_eq!(crate::rtp::parse(&sent[4].0).expect("ours").timestamp, 1640);
        assert!(matches!(
            s.poll_event(),
            Some(StreamEvent::PromptFinished { play: 7 })
        ));
        assert!(s.poll_event().is_none());
        // The fifth frame was silence.
        assert!(sent[4].0[12..].iter().all(|&b| b == 0xFF));
    }

    #[test]
    fn latches_reads_dtmf_records_and_times_out() {
        let t0 = crate::test_origin();
        let sdp: SocketAddr = "127.0.0.1:4000".parse().expect("addr");
        let real: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let mut s = Stream::new(config(sdp), t0);
        s.handle(t0, Command::Start { origin: t0 });
        s.handle(
            t0,
            Command::StartRecording {
                limits: RecorderLimits {
                    max: Duration::from_secs(5),
                    silence_end: Duration::from_secs(1),
                    initial_silence: Duration::from_millis(100),
                },
            },
        );
        s.on_datagram(t0, &rtp(0, 1, 0, &[0xFF; 160]), real);
        assert_eq!(s.remote(), Some(real));
        s.on_datagram(t0, &rtp(101, 2, 160, &[5, 0x0A, 0, 160]), real);
        assert!(matches!(s.poll_event(), Some(StreamEvent::Digit('5'))));
        // Silence only: the recording gives up after the initial silence.
        s.on_tick(t0 + Duration::from_millis(120), |_, to| {
            assert_eq!(to, real)
        });
        assert!(matches!(
            s.poll_event(),
            Some(StreamEvent::RecordingFinished {
                reason: EndReason::NoSpeech,
                ..
            })
        ));
        // A re-INVITE to a new address unlatches; the same address does not.
        s.handle(
            t0,
            Command::Update {
                remote: Some(Some(sdp)),
                codec: Codec::Pcma,
                telephone_event: None,
            },
        );
        assert_eq!(s.remote(), Some(sdp));
        let mut pts = Vec::new();
        s.on_tick(t0 + Duration::from_secs(31), |p, _| {
            pts.push(crate::rtp::parse(p).expect("ours").payload_type)
        });
        assert_eq!(pts.first(), Some(&8));
        assert!(matches!(s.poll_event(), Some(StreamEvent::MediaTimeout)));
        s.on_tick(t0 + Duration::from_secs(32), |_, _| {});
        assert!(s.poll_event().is_none(), "the timeout is reported once");
    }
}
