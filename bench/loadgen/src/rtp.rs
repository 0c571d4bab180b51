//! RTP shards: one thread and one UDP socket each, serving many calls.
//!
//! A shard sends every call's 20 ms frames with `sendmmsg` on a 1 ms tick (calls are spread
//! over the 20 phases of the period, as independent phones would be) and reads with
//! `recvmmsg` and kernel receive timestamps (SO_TIMESTAMPNS), so the lateness measured is the
//! server's, not this process's scheduling delay. Incoming packets are matched to their call
//! by the server's source port (today's server sends each call from its own socket, the port
//! it put in its SDP answer). Nothing is allocated per packet.

use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::poll::{PollFd, PollFlags};
use nix::sys::socket::{
    recvmmsg, sendmmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned, MsgFlags,
    MultiHeaders, SockaddrIn,
};
use nix::sys::time::TimeSpec;
use serde::Serialize;

use crate::stats::Hist;

const BATCH: usize = 64;
const PHASES: usize = 20;
const SAMPLES_PER_FRAME: u32 = 160;
const RTP_LEN: usize = 12 + SAMPLES_PER_FRAME as usize;
const NS_PER_SAMPLE: i64 = 125_000;
/// Packets of one DTMF key (RFC 4733): 5 with growing duration, then 3 end packets.
const DTMF_PACKETS: u32 = 8;
const MAX_DTMF: usize = 8;

/// What the SIP side tells a shard.
pub enum Cmd {
    Start(Box<StartCall>),
    Stop { call: u32 },
    Shutdown,
}

pub struct StartCall {
    pub call: u32,
    /// Where the server wants our RTP (its SDP answer); also the port its RTP comes from.
    pub remote: SocketAddrV4,
    pub answered: Instant,
    /// Speak (loud tone) from this offset after the answer, for this long.
    pub speak: Option<(Duration, Duration)>,
    /// DTMF keys at offsets after the answer.
    pub dtmf: Vec<(u8, Duration)>,
    pub dtmf_pt: u8,
}

/// Media figures of one call.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallMedia {
    pub call: u32,
    pub sent: u64,
    pub received: u64,
    /// Packets missing from the received sequence range (sequence gaps).
    pub lost: u64,
    /// Duplicated or reordered packets.
    pub seq_errors: u64,
    /// Consecutive packets whose timestamps do not differ by 160 (the server skipped frames).
    pub ts_errors: u64,
    pub ssrc_changes: u64,
    pub max_lateness_ms: f64,
    pub stray: u64,
}

/// What a shard hands back at shutdown.
pub struct ShardResult {
    pub lateness: Hist,
    pub steady: Hist,
    pub calls: Vec<CallMedia>,
    pub unmatched: u64,
    pub send_errors: u64,
    pub rx_truncated_cmsg: u64,
}

/// Window (realtime ns) in which packets count as steady state; 0 = not set.
#[derive(Default)]
pub struct Window {
    pub start_ns: AtomicI64,
    pub end_ns: AtomicI64,
}

struct Tx {
    remote: SockaddrIn,
    seq: u16,
    ts: u32,
    ssrc: u32,
    answered: Instant,
    speak: Option<(Duration, Duration)>,
    dtmf: [(u8, Duration); MAX_DTMF],
    dtmf_len: usize,
    dtmf_next: usize,
    /// Key being sent: (event, timestamp of its start, packets sent).
    dtmf_active: Option<(u8, u32, u32)>,
    dtmf_pt: u8,
}

struct Rx {
    first_ts: u32,
    anchor_ns: i64,
    started: bool,
    ext_first: i64,
    ext_max: i64,
    last_seq: u16,
    last_ts: u32,
    ssrc: u32,
    cycles: i64,
}

struct Slot {
    call: u32,
    phase: usize,
    tx: Tx,
    rx: Rx,
    media: CallMedia,
}

fn realtime_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// One 20 ms frame of a loud 400 Hz tone (the period divides the frame, so it repeats).
fn tone_frame() -> [u8; SAMPLES_PER_FRAME as usize] {
    let mut f = [0u8; SAMPLES_PER_FRAME as usize];
    for (i, b) in f.iter_mut().enumerate() {
        let v = (2.0 * std::f64::consts::PI * 400.0 * i as f64 / 8000.0).sin() * 16000.0;
        *b = linear_to_ulaw(v as i16);
    }
    f
}

pub struct Shard {
    pub socket: UdpSocket,
    pub local: SocketAddrV4,
}

impl Shard {
    pub fn bind(ip: std::net::Ipv4Addr) -> std::io::Result<Shard> {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
        // Big buffers: a burst of 64 calls' frames must never be dropped here.
        let _ = s.set_recv_buffer_size(4 << 20);
        let _ = s.set_send_buffer_size(4 << 20);
        s.bind(&SocketAddr::from((ip, 0)).into())?;
        s.set_nonblocking(true)?;
        let socket: UdpSocket = s.into();
        setsockopt(&socket, sockopt::ReceiveTimestampns, &true).map_err(std::io::Error::from)?;
        let local = match socket.local_addr()? {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => return Err(std::io::Error::other("IPv4 only")),
        };
        Ok(Shard { socket, local })
    }
}

/// Runs one shard until `Cmd::Shutdown`.
pub fn run(shard: Shard, cmds: Receiver<Cmd>, window: Arc<Window>, seed: u32) -> ShardResult {
    let sock = shard.socket;
    let fd = sock.as_raw_fd();
    let tone = tone_frame();
    let silence = [0xFFu8; SAMPLES_PER_FRAME as usize];
    let mut slots: Vec<Option<Slot>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut phases: Vec<Vec<usize>> = (0..PHASES).map(|_| Vec::new()).collect();
    // Server source port -> slot + 1.
    let mut by_port: Vec<u32> = vec![0; 65536];
    let mut result = ShardResult {
        lateness: Hist::default(),
        steady: Hist::default(),
        calls: Vec::new(),
        unmatched: 0,
        send_errors: 0,
        rx_truncated_cmsg: 0,
    };
    let mut rng = seed | 1;
    let mut next_rand = move || {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        rng
    };

    let mut send_hdrs = MultiHeaders::<SockaddrIn>::preallocate(BATCH, None);
    let mut recv_hdrs =
        MultiHeaders::<SockaddrIn>::preallocate(BATCH, Some(nix::cmsg_space!(TimeSpec)));
    let mut out = [[0u8; RTP_LEN]; BATCH];
    let mut out_addr: [Option<SockaddrIn>; BATCH] = [None; BATCH];
    let mut out_len = [0usize; BATCH];
    let mut inbuf = [[0u8; 256]; BATCH];
    let mut got: [(usize, u16, i64); BATCH] = [(0, 0, 0); BATCH];

    let epoch = Instant::now();
    let tick = Duration::from_millis(1);
    let mut next_tick = epoch + tick;
    let mut tick_no: u64 = 1;
    let mut shutting_down = false;

    loop {
        // Commands from the SIP side.
        loop {
            match cmds.try_recv() {
                Ok(Cmd::Start(s)) => {
                    let phase =
                        ((s.answered.saturating_duration_since(epoch).as_millis()) as usize + 1)
                            % PHASES;
                    let mut dtmf = [(0u8, Duration::ZERO); MAX_DTMF];
                    let n = s.dtmf.len().min(MAX_DTMF);
                    dtmf[..n].copy_from_slice(&s.dtmf[..n]);
                    let slot = Slot {
                        call: s.call,
                        phase,
                        tx: Tx {
                            remote: SockaddrIn::from(s.remote),
                            seq: next_rand() as u16,
                            ts: next_rand(),
                            ssrc: next_rand(),
                            answered: s.answered,
                            speak: s.speak,
                            dtmf,
                            dtmf_len: n,
                            dtmf_next: 0,
                            dtmf_active: None,
                            dtmf_pt: s.dtmf_pt,
                        },
                        rx: Rx {
                            first_ts: 0,
                            anchor_ns: 0,
                            started: false,
                            ext_first: 0,
                            ext_max: 0,
                            last_seq: 0,
                            last_ts: 0,
                            ssrc: 0,
                            cycles: 0,
                        },
                        media: CallMedia {
                            call: s.call,
                            ..CallMedia::default()
                        },
                    };
                    let idx = match free.pop() {
                        Some(i) => {
                            slots[i] = Some(slot);
                            i
                        }
                        None => {
                            slots.push(Some(slot));
                            slots.len() - 1
                        }
                    };
                    by_port[usize::from(s.remote.port())] = idx as u32 + 1;
                    phases[phase].push(idx);
                }
                Ok(Cmd::Stop { call }) => {
                    // Few stops per second: a linear search is fine.
                    if let Some(idx) = slots
                        .iter()
                        .position(|s| s.as_ref().is_some_and(|s| s.call == call))
                    {
                        if let Some(slot) = slots[idx].take() {
                            let port = slot.tx.remote.port();
                            if by_port[usize::from(port)] == idx as u32 + 1 {
                                by_port[usize::from(port)] = 0;
                            }
                            phases[slot.phase].retain(|&i| i != idx);
                            let mut m = slot.media;
                            if slot.rx.started {
                                let expected =
                                    (slot.rx.ext_max - slot.rx.ext_first + 1).max(0) as u64;
                                m.lost = expected.saturating_sub(m.received);
                            }
                            result.calls.push(m);
                            free.push(idx);
                        }
                    }
                }
                Ok(Cmd::Shutdown) | Err(TryRecvError::Disconnected) => shutting_down = true,
                Err(TryRecvError::Empty) => break,
            }
        }
        if shutting_down {
            break;
        }

        // Send the frames due: every phase whose tick has passed.
        let now = Instant::now();
        while next_tick <= now {
            let phase = (tick_no % PHASES as u64) as usize;
            let mut n = 0usize;
            for &idx in &phases[phase] {
                let Some(slot) = slots[idx].as_mut() else {
                    continue;
                };
                let tx = &mut slot.tx;
                let since = now.saturating_duration_since(tx.answered);
                let buf = &mut out[n];
                buf[0] = 0x80;
                let mut len = RTP_LEN;
                // DTMF (RFC 4733) replaces audio while a key is pressed.
                if tx.dtmf_active.is_none()
                    && tx.dtmf_next < tx.dtmf_len
                    && since >= tx.dtmf[tx.dtmf_next].1
                {
                    tx.dtmf_active = Some((tx.dtmf[tx.dtmf_next].0, tx.ts, 0));
                    tx.dtmf_next += 1;
                }
                if let Some((event, start_ts, k)) = tx.dtmf_active {
                    let end = k >= 5;
                    let duration = (k.min(4) + 1) * SAMPLES_PER_FRAME;
                    buf[1] = tx.dtmf_pt | if k == 0 { 0x80 } else { 0 };
                    buf[4..8].copy_from_slice(&start_ts.to_be_bytes());
                    buf[12] = event;
                    buf[13] = if end { 0x80 | 10 } else { 10 };
                    buf[14..16].copy_from_slice(&(duration as u16).to_be_bytes());
                    len = 16;
                    tx.dtmf_active = if k + 1 >= DTMF_PACKETS {
                        None
                    } else {
                        Some((event, start_ts, k + 1))
                    };
                } else {
                    let speaking = tx
                        .speak
                        .is_some_and(|(at, dur)| since >= at && since < at + dur);
                    buf[1] = 0; // PCMU
                    buf[4..8].copy_from_slice(&tx.ts.to_be_bytes());
                    buf[12..].copy_from_slice(if speaking { &tone } else { &silence });
                }
                buf[2..4].copy_from_slice(&tx.seq.to_be_bytes());
                buf[8..12].copy_from_slice(&tx.ssrc.to_be_bytes());
                tx.seq = tx.seq.wrapping_add(1);
                tx.ts = tx.ts.wrapping_add(SAMPLES_PER_FRAME);
                out_addr[n] = Some(tx.remote);
                out_len[n] = len;
                slot.media.sent += 1;
                n += 1;
                if n == BATCH {
                    flush(
                        &sock,
                        &mut send_hdrs,
                        &out,
                        &out_len,
                        &out_addr,
                        n,
                        &mut result,
                    );
                    n = 0;
                }
            }
            if n > 0 {
                flush(
                    &sock,
                    &mut send_hdrs,
                    &out,
                    &out_len,
                    &out_addr,
                    n,
                    &mut result,
                );
            }
            tick_no += 1;
            next_tick += tick;
        }

        // Receive everything waiting.
        loop {
            let mut count = 0usize;
            {
                let mut iovs = inbuf.each_mut().map(|b| [IoSliceMut::new(&mut b[..])]);
                let res = recvmmsg(
                    fd,
                    &mut recv_hdrs,
                    iovs.iter_mut(),
                    MsgFlags::MSG_DONTWAIT,
                    None,
                );
                let Ok(msgs) = res else { break };
                for msg in msgs {
                    let port = msg.address.map(|a| a.port()).unwrap_or(0);
                    let mut ts_ns = 0i64;
                    match msg.cmsgs() {
                        Ok(cmsgs) => {
                            for c in cmsgs {
                                if let ControlMessageOwned::ScmTimestampns(t) = c {
                                    ts_ns = t.tv_sec() * 1_000_000_000 + t.tv_nsec();
                                }
                            }
                        }
                        Err(_) => result.rx_truncated_cmsg += 1,
                    }
                    got[count] = (msg.bytes, port, ts_ns);
                    count += 1;
                }
            }
            if count == 0 {
                break;
            }
            let start_ns = window.start_ns.load(Ordering::Relaxed);
            let end_ns = window.end_ns.load(Ordering::Relaxed);
            for i in 0..count {
                let (len, port, mut arrival) = got[i];
                if arrival == 0 {
                    arrival = realtime_ns();
                }
                let idx = by_port[usize::from(port)];
                let Some(slot) = (idx as usize)
                    .checked_sub(1)
                    .and_then(|i| slots.get_mut(i))
                    .and_then(Option::as_mut)
                else {
                    result.unmatched += 1;
                    continue;
                };
                let p = &inbuf[i][..len.min(256)];
                if p.len() < 12 || p[0] >> 6 != 2 || (72..=76).contains(&(p[1] & 0x7F)) {
                    slot.media.stray += 1;
                    continue;
                }
                let seq = u16::from_be_bytes([p[2], p[3]]);
                let ts = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
                let ssrc = u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
                let rx = &mut slot.rx;
                let m = &mut slot.media;
                m.received += 1;
                if !rx.started {
                    rx.started = true;
                    rx.first_ts = ts;
                    rx.anchor_ns = arrival;
                    rx.ext_first = i64::from(seq);
                    rx.ext_max = i64::from(seq);
                    rx.last_seq = seq;
                    rx.last_ts = ts;
                    rx.ssrc = ssrc;
                    result.lateness.record(0);
                    continue;
                }
                if ssrc != rx.ssrc {
                    m.ssrc_changes += 1;
                    rx.ssrc = ssrc;
                }
                // Extended sequence number (RFC 3550 A.1, simplified).
                let delta = seq.wrapping_sub(rx.last_seq) as i16;
                if delta == 1 {
                    if ts.wrapping_sub(rx.last_ts) != SAMPLES_PER_FRAME {
                        m.ts_errors += 1;
                    }
                } else if delta <= 0 {
                    m.seq_errors += 1;
                }
                if delta > 0 {
                    if seq < rx.last_seq {
                        rx.cycles += 1;
                    }
                    rx.last_seq = seq;
                    rx.last_ts = ts;
                    rx.ext_max = rx.cycles * 65536 + i64::from(seq);
                }
                // Lateness against the ideal schedule anchored on the first packet: the
                // timestamp says when the frame was due. An early packet moves the anchor.
                let offset = i64::from(ts.wrapping_sub(rx.first_ts) as i32) * NS_PER_SAMPLE;
                let ideal = rx.anchor_ns + offset;
                let late = arrival - ideal;
                let late = if late < 0 {
                    rx.anchor_ns += late;
                    0
                } else {
                    late as u64
                };
                result.lateness.record(late);
                if start_ns != 0 && arrival >= start_ns && (end_ns == 0 || arrival < end_ns) {
                    result.steady.record(late);
                }
                let late_ms = late as f64 / 1e6;
                if late_ms > m.max_lateness_ms {
                    m.max_lateness_ms = late_ms;
                }
            }
            if count < BATCH {
                break;
            }
        }

        // Sleep until the next tick or a packet.
        let wait = next_tick.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
            let _ = nix::poll::ppoll(&mut fds, Some(TimeSpec::from_duration(wait)), None);
        }
    }
    // Calls still open at shutdown.
    for slot in slots.into_iter().flatten() {
        let mut m = slot.media;
        if slot.rx.started {
            let expected = (slot.rx.ext_max - slot.rx.ext_first + 1).max(0) as u64;
            m.lost = expected.saturating_sub(m.received);
        }
        result.calls.push(m);
    }
    result
}

fn flush(
    sock: &UdpSocket,
    hdrs: &mut MultiHeaders<SockaddrIn>,
    out: &[[u8; RTP_LEN]; BATCH],
    lens: &[usize; BATCH],
    addrs: &[Option<SockaddrIn>; BATCH],
    n: usize,
    result: &mut ShardResult,
) {
    let fd = sock.as_raw_fd();
    let mut done = 0;
    while done < n {
        let iovs: [[IoSlice<'_>; 1]; BATCH] =
            std::array::from_fn(|i| [IoSlice::new(&out[i][..lens[i]])]);
        let none: [ControlMessage<'_>; 0] = [];
        match sendmmsg(
            fd,
            hdrs,
            iovs[done..n].iter(),
            &addrs[done..n],
            none,
            MsgFlags::empty(),
        ) {
            Ok(sent) => {
                let k = sent.count();
                if k == 0 {
                    result.send_errors += (n - done) as u64;
                    return;
                }
                done += k;
            }
            Err(nix::errno::Errno::EAGAIN) => {
                // Socket buffer full: wait for room rather than drop (a phone would not drop).
                let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLOUT)];
                let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5u16));
            }
            Err(_) => {
                result.send_errors += 1;
                done += 1;
            }
        }
    }
}
