//! One call's media as a sans-IO state machine: plays shared prompt frames, records, reads DTMF, latches.
//!
//! Strict RTP: the caller's media source is learnt only from a run of
//! [`PROBATION_PACKETS`] in-sequence packets from one address (as Asterisk's `strictrtp` with
//! its `probation`), and from then on packets from any other address, audio and RFC 4733
//! events alike, are dropped and counted ([`Received::Foreign`]) until a re-offer with new
//! SDP ([`Command::Update`]) starts learning again. Before the source is learnt the stream
//! sends to the offer's address only when the call says so ([`BeforeLatch`]): for a caller
//! from anywhere, an SDP `c=` line naming a third party must not turn the server into a
//! reflector of the call's audio.
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

/// Packets with consecutive sequence numbers from one source address before the stream takes
/// that address as the caller's (Asterisk's `probation`): 60 ms of a 20 ms stream, far more
/// than a stray or spoofed packet, and few enough that the caller's first words are kept.
pub const PROBATION_PACKETS: u16 = 4;

/// Sources tracked at once while learning. One flooding source cannot keep the caller's own
/// run from completing (each source has its own run); a newcomer replaces the source with the
/// shortest run.
const MAX_CANDIDATES: usize = 4;

/// Where a stream sends before it has learnt the caller's media source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeforeLatch {
    /// To the offer's address at once. For calls from a configured trunk, whose media servers
    /// may sit at another address than its signalling and whose SDP is trusted not to name a
    /// third party.
    OfferAddress,
    /// Nowhere: the first packet goes to the learnt source. For callers from anywhere, whose
    /// SDP may name a third party (the server would reflect the call's audio at it) or a
    /// private address behind NAT (latching finds the public one). Such a caller must send
    /// RTP anyway (the media timeout ends a call without it), so only the first
    /// [`PROBATION_PACKETS`] frames are lost. The signalling source is no better target: it
    /// says nothing about the media port, and behind a proxy it is not the caller at all.
    Silent,
}

/// What [`Stream::on_datagram`] did with a datagram, for the server's counters and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// From the learnt source: used (audio recorded, digits read).
    Accepted,
    /// This packet completed a source's probation: it is now the caller's (and was used).
    Latched,
    /// Part of a probation run (dropped: not yet known to be the caller's).
    Learning,
    /// From another address than the learnt source: dropped.
    Foreign,
    /// Not RTP, RTCP, or a payload type the call did not negotiate.
    Ignored,
}

/// A source on probation: its address, the last sequence number seen and its run length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Candidate {
    addr: SocketAddr,
    last_sequence: u16,
    run: u16,
}

/// The strict-RTP source state: learning from candidates, or latched to one address.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Learning([Option<Candidate>; MAX_CANDIDATES]),
    Latched(SocketAddr),
}

impl Source {
    const LEARNING: Source = Source::Learning([None; MAX_CANDIDATES]);

    /// Judges a packet from `from` with sequence number `sequence`.
    fn judge(&mut self, from: SocketAddr, sequence: u16) -> Received {
        let candidates = match self {
            Source::Latched(addr) if *addr == from => return Received::Accepted,
            Source::Latched(_) => return Received::Foreign,
            Source::Learning(candidates) => candidates,
        };
        let known = candidates.iter_mut().flatten().find(|c| c.addr == from);
        let run = match known {
            Some(c) => {
                // In sequence: one more than the last (wrapping at 65,535). Anything else (a
                // gap, a repeat, reordering) starts the run again from this packet.
                c.run = if sequence == c.last_sequence.wrapping_add(1) {
                    c.run.saturating_add(1)
                } else {
                    1
                };
                c.last_sequence = sequence;
                c.run
            }
            None => {
                let newcomer = Candidate {
                    addr: from,
                    last_sequence: sequence,
                    run: 1,
                };
                // A free slot, else the one with the shortest run (the first of equals).
                let slot = candidates
                    .iter_mut()
                    .min_by_key(|c| c.map_or(0, |c| c.run.saturating_add(1)));
                if let Some(slot) = slot {
                    *slot = Some(newcomer);
                }
                1
            }
        };
        if run >= PROBATION_PACKETS {
            *self = Source::Latched(from);
            Received::Latched
        } else {
            Received::Learning
        }
    }
}

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
    /// re-INVITE carried new SDP (an offer that differs from the last one), its address: the
    /// source is then learnt again (the caller may have moved), while packets keep going to
    /// the source learnt before (or, with [`BeforeLatch::OfferAddress`], to the new address).
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
    /// The address from the offer's SDP; sent to before the caller's source is learnt only
    /// with [`BeforeLatch::OfferAddress`].
    pub remote: Option<SocketAddr>,
    /// Whether to send to `remote` before the caller's source is learnt.
    pub before_latch: BeforeLatch,
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
    before_latch: BeforeLatch,
    source: Source,
    /// Where packets go: the learnt source, else per `before_latch` (the offer's address, or
    /// the source learnt before a re-offer, or nowhere).
    remote: Option<SocketAddr>,
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
            before_latch: config.before_latch,
            source: Source::LEARNING,
            remote: match config.before_latch {
                BeforeLatch::OfferAddress => config.remote,
                BeforeLatch::Silent => None,
            },
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

    /// Where packets go now (the learnt source, or per [`BeforeLatch`]).
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// The caller's learnt media source, if learnt.
    pub fn latched(&self) -> Option<SocketAddr> {
        match self.source {
            Source::Latched(addr) => Some(addr),
            Source::Learning(_) => None,
        }
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
                    // New SDP: learn the source again. Until then, packets go where they went
                    // (a source that proved itself), or to the new offer's address for a trunk;
                    // an offer without an address (hold) stops them.
                    self.source = Source::LEARNING;
                    if remote.is_none() || self.before_latch == BeforeLatch::OfferAddress {
                        self.remote = remote;
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

    /// Handles one datagram from `from` that arrived at `now`, and says what became of it.
    pub fn on_datagram(&mut self, now: Instant, data: &[u8], from: SocketAddr) -> Received {
        // Checked before parsing: a flood from elsewhere costs one comparison per packet.
        if let Source::Latched(addr) = self.source {
            if addr != from {
                return Received::Foreign;
            }
        }
        if crate::rtp::looks_like_rtcp(data) {
            return Received::Ignored;
        }
        let Ok(packet) = crate::rtp::parse(data) else {
            return Received::Ignored;
        };
        let is_audio = packet.payload_type == self.codec.payload_type();
        let is_event = Some(packet.payload_type) == self.telephone_event;
        if !is_audio && !is_event {
            return Received::Ignored;
        }
        let verdict = self.source.judge(from, packet.sequence);
        match verdict {
            Received::Accepted => {}
            Received::Latched => {
                // Symmetric RTP: answer to where the caller's media really comes from.
                self.remote = Some(from);
            }
            Received::Learning | Received::Foreign | Received::Ignored => return verdict,
        }
        self.last_received = now;
        if is_event {
            if let Some(digit) = self.dtmf.on_packet(packet.timestamp, packet.payload) {
                self.push_event(StreamEvent::Digit(digit));
            }
            return verdict;
        }
        if let Some(recorder) = &mut self.recorder {
            self.decoded.clear();
            self.codec.decode(packet.payload, &mut self.decoded);
            recorder.push(now, &self.decoded);
        }
        verdict
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
                // `len` is what `write_packet` wrote into `out`, so `get` always finds it.
                if let (Some(remote), Some(packet)) = (self.remote, self.out.get(..len)) {
                    sink(packet, remote);
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
            before_latch: BeforeLatch::OfferAddress,
            media_timeout: Duration::from_secs(30),
        }
    }

    /// Feeds `count` audio packets from `from` with sequence numbers from `first` on (each
    /// 20 ms of silence) and returns what became of each.
    fn feed(
        s: &mut Stream,
        now: Instant,
        from: SocketAddr,
        first: u16,
        count: u16,
    ) -> Vec<Received> {
        (0..count)
            .map(|k| {
                let seq = first.wrapping_add(k);
                let ts = u32::from(seq).wrapping_mul(160);
                s.on_datagram(now, &rtp(0, seq, ts, &[0xFF; 160]), from)
            })
            .collect()
    }

    /// A telephone-event packet for `event` (0-9 are the digits).
    fn digit_packet(seq: u16, ts: u32, event: u8) -> Vec<u8> {
        rtp(101, seq, ts, &[event, 0x0A, 0, 160])
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("addr")
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
        let fed = feed(&mut s, t0, real, 1, PROBATION_PACKETS);
        assert_eq!(fed.last(), Some(&Received::Latched));
        assert_eq!(s.remote(), Some(real));
        s.on_datagram(t0, &rtp(101, 5, 800, &[5, 0x0A, 0, 160]), real);
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
        // New SDP: the source is learnt again; a trunk's stream sends to the new address.
        s.handle(
            t0,
            Command::Update {
                remote: Some(Some(sdp)),
                codec: Codec::Pcma,
                telephone_event: None,
            },
        );
        assert_eq!(s.remote(), Some(sdp));
        assert_eq!(s.latched(), None);
        let mut pts = Vec::new();
        s.on_tick(t0 + Duration::from_secs(31), |p, _| {
            pts.push(crate::rtp::parse(p).expect("ours").payload_type)
        });
        assert_eq!(pts.first(), Some(&8));
        assert!(matches!(s.poll_event(), Some(StreamEvent::MediaTimeout)));
        s.on_tick(t0 + Duration::from_secs(32), |_, _| {});
        assert!(s.poll_event().is_none(), "the timeout is reported once");
    }

    #[test]
    fn learns_the_source_only_from_a_run_of_in_sequence_packets() {
        let t0 = crate::test_origin();
        let real = addr("127.0.0.1:5000");
        let mut s = Stream::new(config(addr("127.0.0.1:4000")), t0);
        // Three in sequence, then a gap: the run starts again from the packet after the gap.
        assert_eq!(feed(&mut s, t0, real, 100, 3), vec![Received::Learning; 3]);
        assert_eq!(feed(&mut s, t0, real, 104, 1), vec![Received::Learning]);
        // A repeated sequence number is no progress either.
        assert_eq!(feed(&mut s, t0, real, 104, 1), vec![Received::Learning]);
        assert_eq!(s.latched(), None);
        // The trunk policy sends to the offer until then.
        assert_eq!(s.remote(), Some(addr("127.0.0.1:4000")));
        assert_eq!(
            feed(&mut s, t0, real, 105, 3),
            vec![Received::Learning, Received::Learning, Received::Latched]
        );
        assert_eq!(s.latched(), Some(real));
        assert_eq!(s.remote(), Some(real));
        // From now on the source's packets count whatever their sequence (loss, reordering).
        assert_eq!(feed(&mut s, t0, real, 200, 1), vec![Received::Accepted]);
        assert_eq!(feed(&mut s, t0, real, 150, 1), vec![Received::Accepted]);
    }

    #[test]
    fn probation_runs_across_the_sequence_wrap() {
        let t0 = crate::test_origin();
        let real = addr("127.0.0.1:5000");
        let mut s = Stream::new(config(real), t0);
        // 65,534, 65,535, 0, 1: in sequence.
        let fed = feed(&mut s, t0, real, 65_534, PROBATION_PACKETS);
        assert_eq!(fed.last(), Some(&Received::Latched));
        assert_eq!(s.latched(), Some(real));
    }

    #[test]
    fn nothing_goes_to_the_offer_of_a_caller_from_anywhere_before_latching() {
        let t0 = crate::test_origin();
        let third_party = addr("127.0.0.3:4000");
        let real = addr("127.0.0.1:5000");
        let mut s = Stream::new(
            StreamConfig {
                before_latch: BeforeLatch::Silent,
                ..config(third_party)
            },
            t0,
        );
        s.handle(t0, Command::Start { origin: t0 });
        let mut sent = Vec::new();
        s.on_tick(t0 + Duration::from_millis(100), |_, to| sent.push(to));
        assert!(sent.is_empty(), "sent before latching: {sent:?}");
        assert_eq!(s.remote(), None);
        feed(&mut s, t0, real, 7, PROBATION_PACKETS);
        s.on_tick(t0 + Duration::from_millis(120), |_, to| sent.push(to));
        assert_eq!(
            sent,
            vec![real],
            "the learnt source, never the SDP's third party"
        );
    }

    #[test]
    fn drops_audio_and_digits_from_a_foreign_source_after_latching() {
        let t0 = crate::test_origin();
        let real = addr("127.0.0.1:5000");
        let intruder = addr("127.0.0.2:5000");
        let mut s = Stream::new(config(real), t0);
        s.handle(t0, Command::Start { origin: t0 });
        s.handle(
            t0,
            Command::StartRecording {
                limits: RecorderLimits {
                    max: Duration::from_secs(5),
                    silence_end: Duration::from_secs(1),
                    initial_silence: Duration::from_secs(2),
                },
            },
        );
        feed(&mut s, t0, real, 1, PROBATION_PACKETS);
        // The intruder sends a perfect run of its own, with digits: all dropped.
        let fed = feed(&mut s, t0, intruder, 1000, 10);
        assert_eq!(fed, vec![Received::Foreign; 10]);
        assert_eq!(
            s.on_datagram(t0, &digit_packet(1010, 9000, 1), intruder),
            Received::Foreign
        );
        assert!(s.poll_event().is_none(), "no digit from the intruder");
        // Even from the caller's IP address on another port.
        assert_eq!(
            s.on_datagram(t0, &digit_packet(9, 9000, 1), addr("127.0.0.1:5002")),
            Received::Foreign
        );
        assert!(s.poll_event().is_none());
        // Packets still go to the caller, and the caller's digits still count.
        let mut sent = Vec::new();
        s.on_tick(t0 + Duration::from_millis(1), |_, to| sent.push(to));
        assert_eq!(sent, vec![real]);
        assert_eq!(
            s.on_datagram(t0, &digit_packet(5, 800, 1), real),
            Received::Accepted
        );
        assert!(matches!(s.poll_event(), Some(StreamEvent::Digit('1'))));
        // Foreign packets do not keep the call alive: the media timeout counts from the
        // caller's last packet.
        let late = t0 + Duration::from_secs(31);
        feed(&mut s, late, intruder, 2000, 3);
        s.on_tick(late, |_, _| {});
        let mut timed_out = false;
        while let Some(e) = s.poll_event() {
            timed_out |= matches!(e, StreamEvent::MediaTimeout);
        }
        assert!(timed_out);
    }

    #[test]
    fn a_flood_during_learning_does_not_keep_the_caller_from_latching() {
        let t0 = crate::test_origin();
        let real = addr("127.0.0.1:5000");
        let mut s = Stream::new(config(real), t0);
        // The caller's packets interleaved with out-of-sequence junk from several sources.
        for k in 0..PROBATION_PACKETS {
            for n in 0..3u16 {
                let from = SocketAddr::new(addr("127.0.0.2:1").ip(), 6000 + n);
                feed(&mut s, t0, from, k.wrapping_mul(7), 1);
            }
            let fed = feed(&mut s, t0, real, 40 + k, 1);
            let want = if k + 1 == PROBATION_PACKETS {
                Received::Latched
            } else {
                Received::Learning
            };
            assert_eq!(fed, vec![want]);
        }
        assert_eq!(s.latched(), Some(real));
    }

    #[test]
    fn a_re_offer_starts_learning_again() {
        let t0 = crate::test_origin();
        let first = addr("127.0.0.1:5000");
        let moved = addr("127.0.0.1:5008");
        let mut s = Stream::new(
            StreamConfig {
                before_latch: BeforeLatch::Silent,
                ..config(first)
            },
            t0,
        );
        s.handle(t0, Command::Start { origin: t0 });
        feed(&mut s, t0, first, 1, PROBATION_PACKETS);
        assert_eq!(feed(&mut s, t0, moved, 1, 1), vec![Received::Foreign]);
        s.handle(
            t0,
            Command::Update {
                remote: Some(Some(moved)),
                codec: Codec::Pcmu,
                telephone_event: Some(101),
            },
        );
        assert_eq!(s.latched(), None);
        // Until the new source is learnt, packets go to the one learnt before: a caller from
        // anywhere never has them sent to an address only its SDP names.
        assert_eq!(s.remote(), Some(first));
        let fed = feed(&mut s, t0, moved, 10, PROBATION_PACKETS);
        assert_eq!(fed.last(), Some(&Received::Latched));
        assert_eq!(s.remote(), Some(moved));
        assert_eq!(feed(&mut s, t0, first, 5, 1), vec![Received::Foreign]);
        // Hold (an offer without an address): nothing is sent until the caller is back.
        s.handle(
            t0,
            Command::Update {
                remote: Some(None),
                codec: Codec::Pcmu,
                telephone_event: Some(101),
            },
        );
        assert_eq!((s.remote(), s.latched()), (None, None));
        s.handle(
            t0,
            Command::Update {
                remote: Some(Some(moved)),
                codec: Codec::Pcmu,
                telephone_event: Some(101),
            },
        );
        assert_eq!(
            s.remote(),
            None,
            "a caller from anywhere: nothing before the source"
        );
        feed(&mut s, t0, moved, 20, PROBATION_PACKETS);
        assert_eq!(s.latched(), Some(moved));
        // An answer without an offer (no new SDP) keeps what was learnt.
        s.handle(
            t0,
            Command::Update {
                remote: None,
                codec: Codec::Pcmu,
                telephone_event: Some(101),
            },
        );
        assert_eq!(s.latched(), Some(moved));
    }
}
