//! The RTP engine: one media thread per core paces, sends and receives the RTP of many calls.
//!
//! Each thread owns a [`PhaseWheel`] of 20 one-millisecond phases and the sans-IO
//! [`media::stream::Stream`] of every call placed on it, plus each call's UDP socket (one per
//! call, so SDP, the port range, NAT latching and demultiplexing stay per call). It sleeps in
//! one `epoll_wait` on all of its sockets, a `timerfd` armed for the next phase (nanosecond
//! precision, absolute 20 ms deadlines kept by each stream's pacer) and an `eventfd` that
//! call tasks ring when they send a command to a thread with no phase due within 2 ms (a busy
//! thread takes its commands at its next phase, without a wakeup of their own). A socket is read only when epoll says it is
//! readable (level-triggered, one read per readiness, so no read ends in EAGAIN), and nothing
//! is allocated per packet: prompt frames are borrowed from the shared `Arc<Prompt>`, packets
//! are built in the stream's own buffer.
//!
//! A call task talks to its stream through a [`MediaHandle`] (commands over a bounded
//! channel) and hears back [`StreamEvent`]s on a bounded tokio channel, so it wakes only for
//! events, never for every frame.
//!
//! A panic while a thread works on one call's stream ends that stream alone: the thread drops
//! it, which closes the call's event channel, and the call hangs up (see `call.rs`). A thread
//! that stops all the same is counted and announced (`Stats::media_thread_stopped`): the
//! process cannot carry calls on it and must be restarted.
//!
//! The engine belongs to its SIP server (no process-wide state: two servers in one process
//! have their own threads and figures); its threads are joined when the server and its last
//! call let go of it.

// Nothing a peer sends may panic this code: no slicing or indexing that can go out of bounds.
#![warn(clippy::string_slice, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::string_slice, clippy::indexing_slicing))]

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::time::Instant;

use media::recorder::Recorder;
use media::stream::{Command, Received, Stream, StreamConfig, StreamEvent};
use media::wheel::PhaseWheel;
use nix::poll::PollTimeout as EpollTimeout;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::metrics::Stats;

/// Commands waiting for one media thread; past this the call is refused (503) or the
/// command dropped with a warning, never queued without bound.
const MAX_QUEUED_COMMANDS: usize = 16_384;
/// Events waiting for one call task (prompt ends, digits, recordings, timeouts).
pub(crate) const MAX_QUEUED_EVENTS: usize = 64;
/// Per-call packet counts are added to the shared figures every this many packets (1 s).
const STATS_FLUSH_PACKETS: u64 = 50;
/// Readiness events taken from epoll in one wait.
const EPOLL_BATCH: usize = 256;
/// Largest datagram we read; RTP for G.711 is 172 bytes.
const MAX_DATAGRAM_BYTES: usize = 1500;
/// A pacing round that starts this long after its phase was due counts as late.
pub(crate) const LATE_ROUND: std::time::Duration = std::time::Duration::from_millis(2);
/// Counts and announces its thread's end, however it ends (a return or a panic), unless its
/// engine is shutting down.
struct ThreadWatch {
    stats: Arc<Stats>,
    stopping: Arc<AtomicBool>,
}

impl Drop for ThreadWatch {
    fn drop(&mut self) {
        if self.stopping.load(Ordering::SeqCst) && !std::thread::panicking() {
            return;
        }
        self.stats
            .media_threads_stopped
            .fetch_add(1, Ordering::SeqCst);
        self.stats.media_thread_stopped_notify.notify_waiters();
        tracing::error!(
            thread = std::thread::current().name().unwrap_or("?"),
            "a media thread stopped: its calls have no media; the process must restart"
        );
    }
}

/// How late a command may be taken when the thread has a phase due within this anyway.
const COMMAND_SLACK: std::time::Duration = std::time::Duration::from_millis(2);
/// Media threads at most, whatever the core count.
const MAX_THREADS: usize = 16;

const WAKE_KEY: u64 = u64::MAX;
const TIMER_KEY: u64 = u64::MAX - 1;

enum Msg {
    Open {
        id: u64,
        socket: UdpSocket,
        config: StreamConfig,
        events: mpsc::Sender<StreamEvent>,
        stats: Arc<Stats>,
        /// Panic on this stream's first frame (an injected fault, see `fault`).
        fault: bool,
    },
    Command {
        id: u64,
        command: Command,
    },
    TakeRecording {
        id: u64,
        reply: oneshot::Sender<Option<Recorder>>,
    },
    Close {
        id: u64,
    },
}

struct Shard {
    tx: SyncSender<Msg>,
    wake: Arc<EventFd>,
    /// Set while the thread waits with no phase due within [`COMMAND_SLACK`]: only then does
    /// a command ring the eventfd. A busy thread takes its commands at its next phase, which
    /// saves a wakeup (a context switch) per command.
    parked: Arc<AtomicBool>,
}

impl Shard {
    fn send(&self, msg: Msg) -> Result<(), Msg> {
        let result = match self.tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(m) | TrySendError::Disconnected(m)) => Err(m),
        };
        if result.is_ok() {
            // Pairs with the fence in `MediaThread::park`: either the thread sees this message
            // before it waits, or this sees it parked and rings.
            std::sync::atomic::fence(Ordering::SeqCst);
            if self.parked.load(Ordering::SeqCst) {
                // Wakes the thread from epoll_wait; an error only means the counter is
                // saturated, which already wakes it.
                let _ = self.wake.write(1);
            }
        }
        result
    }
}

/// One SIP server's media threads: started with the server, stopped and joined when the last
/// handle to them goes (the server's, and every call's [`MediaHandle`]).
pub(crate) struct RtpEngine {
    shards: Vec<Shard>,
    next_shard: AtomicUsize,
    next_id: AtomicU64,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Set as the engine is dropped: its threads' ends are no fault then.
    stopping: Arc<AtomicBool>,
}

/// Media threads for a server on this machine: one per core, at most [`MAX_THREADS`].
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_THREADS)
}

impl RtpEngine {
    /// Starts `threads` media threads counting into `stats`. With `fault` (an injected fault,
    /// see `fault`) they panic as they start.
    pub(crate) fn start(
        threads: usize,
        stats: Arc<Stats>,
        fault: bool,
    ) -> io::Result<Arc<RtpEngine>> {
        let stopping = Arc::new(AtomicBool::new(false));
        let mut shards = Vec::with_capacity(threads);
        let mut handles = Vec::with_capacity(threads);
        for n in 0..threads.max(1) {
            let (tx, rx) = std::sync::mpsc::sync_channel(MAX_QUEUED_COMMANDS);
            let wake = Arc::new(EventFd::from_flags(
                EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC,
            )?);
            let parked = Arc::new(AtomicBool::new(true));
            let mut thread = MediaThread::new(rx, wake.clone(), parked.clone(), stats.clone())?;
            let watch = ThreadWatch {
                stats: stats.clone(),
                stopping: stopping.clone(),
            };
            let handle = std::thread::Builder::new()
                .name(format!("rtp-{n}"))
                .spawn(move || {
                    let _watch = watch;
                    if fault {
                        crate::fault::fire("fault injected: media thread");
                    }
                    thread.run();
                })?;
            shards.push(Shard { tx, wake, parked });
            handles.push(handle);
        }
        Ok(Arc::new(RtpEngine {
            shards,
            next_shard: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            threads: handles,
            stopping,
        }))
    }

    /// Places a call's stream on a media thread. `socket` is the call's bound RTP socket.
    pub(crate) fn open(
        self: &Arc<Self>,
        socket: UdpSocket,
        config: StreamConfig,
        stats: Arc<Stats>,
        fault: bool,
    ) -> io::Result<(MediaHandle, mpsc::Receiver<StreamEvent>)> {
        socket.set_nonblocking(true)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let shard = self.next_shard.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        let (events_tx, events_rx) = mpsc::channel(MAX_QUEUED_EVENTS);
        let msg = Msg::Open {
            id,
            socket,
            config,
            events: events_tx,
            stats,
            fault,
        };
        let queue_full = || {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                "the media thread's command queue is full",
            )
        };
        self.shards
            .get(shard)
            .ok_or_else(queue_full)?
            .send(msg)
            .map_err(|_| queue_full())?;
        Ok((
            MediaHandle {
                engine: self.clone(),
                shard,
                id,
                closed: false,
            },
            events_rx,
        ))
    }
}

impl Drop for RtpEngine {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Each thread ends when its command channel closes; a parked one is woken to see it.
        for shard in std::mem::take(&mut self.shards) {
            let Shard { tx, wake, .. } = shard;
            drop(tx);
            let _ = wake.write(1);
        }
        for thread in std::mem::take(&mut self.threads) {
            let _ = thread.join();
        }
    }
}

/// A call's side of its stream on a media thread; closes the stream when dropped.
pub(crate) struct MediaHandle {
    engine: Arc<RtpEngine>,
    shard: usize,
    id: u64,
    closed: bool,
}

impl MediaHandle {
    /// Sends `msg` to this call's media thread (`Err` when its queue is full).
    fn send(&self, msg: Msg) -> Result<(), Msg> {
        match self.engine.shards.get(self.shard) {
            Some(shard) => shard.send(msg),
            None => Err(msg),
        }
    }

    pub(crate) fn command(&self, command: Command) {
        if self.closed {
            return;
        }
        let id = self.id;
        if self.send(Msg::Command { id, command }).is_err() {
            warn!("media command dropped: the media thread's queue is full");
        }
    }

    /// Ends the recording in progress and hands it over; `None` if none is in progress (it
    /// may have ended by itself, and then its event is on the way).
    pub(crate) async fn take_recording(&self) -> Option<Recorder> {
        if self.closed {
            return None;
        }
        let (reply, answer) = oneshot::channel();
        let msg = Msg::TakeRecording { id: self.id, reply };
        if self.send(msg).is_err() {
            warn!("recording not taken: the media thread's queue is full");
            return None;
        }
        answer.await.ok().flatten()
    }

    /// Stops the stream (no more RTP sent or read) and releases its socket.
    pub(crate) fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            let id = self.id;
            // A full queue here leaks nothing for long: the thread drops streams whose
            // event channel has closed (see `MediaThread::deliver`).
            let _ = self.send(Msg::Close { id });
        }
    }
}

impl Drop for MediaHandle {
    fn drop(&mut self) {
        self.close();
    }
}

struct Slot {
    id: u64,
    generation: u32,
    stream: Stream,
    socket: UdpSocket,
    events: mpsc::Sender<StreamEvent>,
    stats: Arc<Stats>,
    unflushed_sent: u64,
    unflushed_late: u64,
    unflushed_sent_late: u64,
    /// Datagrams from another address than the learnt source, not yet added to the figures.
    unflushed_foreign: u64,
    /// Whether this call's first foreign datagram was logged (the only one that is: a flood
    /// must not flood the log, and addresses are never logged per packet).
    foreign_logged: bool,
    /// The origin the stream was put in the wheel with.
    in_wheel: Option<Instant>,
    /// Panic on the first frame (an injected fault).
    fault: bool,
}

impl Slot {
    fn flush_stats(&mut self) {
        self.stats
            .rtp_packets_sent
            .fetch_add(self.unflushed_sent, Ordering::Relaxed);
        self.stats
            .rtp_frames_late
            .fetch_add(self.unflushed_late, Ordering::Relaxed);
        self.stats
            .rtp_packets_sent_late
            .fetch_add(self.unflushed_sent_late, Ordering::Relaxed);
        self.stats
            .rtp_foreign_packets
            .fetch_add(self.unflushed_foreign, Ordering::Relaxed);
        self.unflushed_sent = 0;
        self.unflushed_late = 0;
        self.unflushed_sent_late = 0;
        self.unflushed_foreign = 0;
    }

    /// Sends the stream's frames due by `now` and hands its events over; false when the call
    /// is gone.
    fn pace(&mut self, now: Instant) -> bool {
        if self.fault {
            crate::fault::fire("fault injected: media stream");
        }
        let socket = &self.socket;
        let counts = self.stream.on_tick(now, |packet, to| {
            if let Err(e) = socket.send_to(packet, to) {
                debug!(error = %e, "RTP send failed");
            }
        });
        self.unflushed_sent += counts.sent;
        self.unflushed_late += counts.late;
        self.unflushed_sent_late += counts.sent_late;
        if self.unflushed_sent >= STATS_FLUSH_PACKETS {
            self.flush_stats();
        }
        self.deliver()
    }

    /// Hands the stream's events to its call; returns false when the call is gone.
    fn deliver(&mut self) -> bool {
        while let Some(event) = self.stream.poll_event() {
            match self.events.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(e)) => {
                    warn!(event = ?e, "media event dropped: the call is not reading its events")
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
            }
        }
        true
    }
}

struct MediaThread {
    rx: Receiver<Msg>,
    wake: Arc<EventFd>,
    parked: Arc<AtomicBool>,
    epoll: Epoll,
    timer: TimerFd,
    armed: Option<Instant>,
    wheel: PhaseWheel,
    slots: Vec<Option<Slot>>,
    generations: Vec<u32>,
    free: Vec<usize>,
    by_id: HashMap<u64, usize>,
    /// The server's figures: pacing rounds, contained panics.
    stats: Arc<Stats>,
}

fn key_of(index: usize, generation: u32) -> u64 {
    (u64::from(generation) << 32) | index as u64
}

impl MediaThread {
    fn new(
        rx: Receiver<Msg>,
        wake: Arc<EventFd>,
        parked: Arc<AtomicBool>,
        stats: Arc<Stats>,
    ) -> io::Result<MediaThread> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        epoll.add(&*wake, EpollEvent::new(EpollFlags::EPOLLIN, WAKE_KEY))?;
        epoll.add(&timer, EpollEvent::new(EpollFlags::EPOLLIN, TIMER_KEY))?;
        let now = Instant::now();
        Ok(MediaThread {
            rx,
            wake,
            parked,
            epoll,
            timer,
            armed: None,
            wheel: PhaseWheel::new(now, now),
            slots: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::new(),
            stats,
        })
    }

    fn run(&mut self) {
        let mut ready = [EpollEvent::empty(); EPOLL_BATCH];
        let mut buf = [0u8; MAX_DATAGRAM_BYTES];
        loop {
            if self.drain_commands().is_none() {
                return;
            }
            self.tick(Instant::now());
            let now = Instant::now();
            let next = self.wheel.next_wake();
            if next.is_none_or(|at| at > now + COMMAND_SLACK) {
                // Nothing due soon: commands must ring. One sent before the flag was up is
                // taken now instead.
                self.parked.store(true, Ordering::SeqCst);
                std::sync::atomic::fence(Ordering::SeqCst);
                match self.drain_commands() {
                    None => return,
                    Some(0) => {}
                    Some(_) => {
                        self.parked.store(false, Ordering::SeqCst);
                        continue;
                    }
                }
            }
            let timeout = match next {
                None => {
                    self.disarm();
                    EpollTimeout::NONE
                }
                Some(at) => {
                    if at <= now {
                        EpollTimeout::ZERO
                    } else {
                        self.arm(at, now);
                        EpollTimeout::NONE
                    }
                }
            };
            let waited = self.epoll.wait(&mut ready, timeout);
            self.parked.store(false, Ordering::SeqCst);
            let n = match waited {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => 0,
                Err(e) => {
                    warn!(error = %e, "epoll_wait failed; the media thread stops");
                    return;
                }
            };
            let now = Instant::now();
            for event in ready.iter().take(n) {
                match event.data() {
                    WAKE_KEY => {
                        let _ = self.wake.read();
                    }
                    TIMER_KEY => {
                        // Clears the expiry count; EAGAIN means it was re-armed meanwhile.
                        let _ = self.timer.wait();
                        self.armed = None;
                    }
                    key => self.receive(key, now, &mut buf),
                }
            }
        }
    }

    fn arm(&mut self, at: Instant, now: Instant) {
        if self.armed == Some(at) {
            return;
        }
        let wait = TimeSpec::from_duration(at - now);
        match self
            .timer
            .set(Expiration::OneShot(wait), TimerSetTimeFlags::empty())
        {
            Ok(()) => self.armed = Some(at),
            Err(e) => warn!(error = %e, "timerfd_settime failed"),
        }
    }

    fn disarm(&mut self) {
        if self.armed.take().is_some() {
            let _ = self.timer.unset();
        }
    }

    /// Applies every queued command and says how many; `None` when every sender is gone.
    fn drain_commands(&mut self) -> Option<usize> {
        let mut applied = 0;
        loop {
            match self.rx.try_recv() {
                Ok(msg) => {
                    self.apply(msg, Instant::now());
                    applied += 1;
                }
                Err(TryRecvError::Empty) => return Some(applied),
                Err(TryRecvError::Disconnected) => return None,
            }
        }
    }

    fn apply(&mut self, msg: Msg, now: Instant) {
        match msg {
            Msg::Open {
                id,
                socket,
                config,
                events,
                stats,
                fault,
            } => {
                let (index, generation) = match self.free.pop() {
                    Some(i) => match self.generations.get_mut(i) {
                        Some(g) => {
                            *g = g.wrapping_add(1);
                            (i, *g)
                        }
                        // Free indices come from `close`, which only frees existing slots.
                        None => return,
                    },
                    None => {
                        self.slots.push(None);
                        self.generations.push(1);
                        (self.slots.len() - 1, 1)
                    }
                };
                let interest = EpollEvent::new(EpollFlags::EPOLLIN, key_of(index, generation));
                if let Err(e) = self.epoll.add(&socket, interest) {
                    warn!(error = %e, "RTP socket not watched; the call has no media");
                }
                let Some(place) = self.slots.get_mut(index) else {
                    return;
                };
                *place = Some(Slot {
                    id,
                    generation,
                    stream: Stream::new(config, now),
                    socket,
                    events,
                    stats,
                    unflushed_sent: 0,
                    unflushed_late: 0,
                    unflushed_sent_late: 0,
                    unflushed_foreign: 0,
                    foreign_logged: false,
                    in_wheel: None,
                    fault,
                });
                self.by_id.insert(id, index);
            }
            Msg::Command { id, command } => {
                let Some(&index) = self.by_id.get(&id) else {
                    return;
                };
                let Some(Some(slot)) = self.slots.get_mut(index) else {
                    return;
                };
                let command = match command {
                    // Every stream starts on this thread's millisecond grid, so its frames
                    // fall on one phase of the wheel.
                    Command::Start { origin } => Command::Start {
                        origin: self.wheel.align(origin.max(now)),
                    },
                    other => other,
                };
                let handled = catch_unwind(AssertUnwindSafe(|| {
                    slot.stream.handle(now, command);
                    slot.deliver()
                }));
                match handled {
                    Err(_) => self.fail(index),
                    Ok(false) => self.close(index),
                    Ok(true) => {
                        if let Some(Some(slot)) = self.slots.get_mut(index) {
                            if slot.in_wheel.is_none() {
                                if let Some(origin) = slot.stream.origin() {
                                    self.wheel.insert(index, origin);
                                    slot.in_wheel = Some(origin);
                                }
                            }
                        }
                    }
                }
            }
            Msg::TakeRecording { id, reply } => {
                let Some(&index) = self.by_id.get(&id) else {
                    let _ = reply.send(None);
                    return;
                };
                let taken = self
                    .slots
                    .get_mut(index)
                    .and_then(Option::as_mut)
                    .map(|s| catch_unwind(AssertUnwindSafe(|| s.stream.take_recording())));
                match taken {
                    Some(Err(_)) => self.fail(index),
                    Some(Ok(recorder)) => {
                        let _ = reply.send(recorder);
                    }
                    None => {
                        let _ = reply.send(None);
                    }
                }
            }
            Msg::Close { id } => {
                if let Some(&index) = self.by_id.get(&id) {
                    self.close(index);
                }
            }
        }
    }

    fn close(&mut self, index: usize) {
        let Some(mut slot) = self.slots.get_mut(index).and_then(Option::take) else {
            return;
        };
        slot.flush_stats();
        if let Some(origin) = slot.in_wheel {
            self.wheel.remove(index, origin);
        }
        let _ = self.epoll.delete(&slot.socket);
        self.by_id.remove(&slot.id);
        self.free.push(index);
    }

    /// Drops a stream whose work panicked: its call hears its event channel close and hangs
    /// up; the thread and its other calls go on.
    fn fail(&mut self, index: usize) {
        self.stats.metrics.panic_contained();
        warn!("a call's media stream panicked: that call ends here");
        self.close(index);
    }

    /// Sends every frame due by `now`.
    fn tick(&mut self, now: Instant) {
        // How late this round starts against the earliest phase due: the first sign that the
        // thread cannot keep its schedule, while packets are still within their budget.
        if let Some(due) = self.wheel.next_wake().filter(|due| *due <= now) {
            self.stats.metrics.round(now - due > LATE_ROUND);
        }
        let mut gone = Vec::new();
        let mut failed = Vec::new();
        for phase in self.wheel.advance(now) {
            for &index in self.wheel.keys(phase) {
                let Some(Some(slot)) = self.slots.get_mut(index) else {
                    continue;
                };
                // One call's stream at a time: a panic in it ends that call alone.
                match catch_unwind(AssertUnwindSafe(|| slot.pace(now))) {
                    Ok(true) => {}
                    Ok(false) => gone.push(index),
                    Err(_) => failed.push(index),
                }
            }
        }
        for index in gone {
            self.close(index);
        }
        for index in failed {
            self.fail(index);
        }
    }

    fn receive(&mut self, key: u64, now: Instant, buf: &mut [u8]) {
        let index = (key & u64::from(u32::MAX)) as usize;
        let generation = (key >> 32) as u32;
        let Some(Some(slot)) = self.slots.get_mut(index) else {
            return;
        };
        if slot.generation != generation {
            return;
        }
        // One read per readiness: epoll reports the socket again if more is queued.
        match slot.socket.recv_from(buf) {
            Ok((len, from)) => {
                let datagram = buf.get(..len).unwrap_or_default();
                let handled = catch_unwind(AssertUnwindSafe(|| {
                    let received = slot.stream.on_datagram(now, datagram, from);
                    (received, slot.deliver())
                }));
                match handled {
                    Ok((received, alive)) => {
                        match received {
                            Received::Foreign => {
                                slot.unflushed_foreign += 1;
                                if !slot.foreign_logged {
                                    slot.foreign_logged = true;
                                    info!(
                                        media = slot.id,
                                        "RTP from another address than the caller's dropped (strict RTP); more is only counted in belteken_rtp_foreign_packets_total"
                                    );
                                }
                            }
                            Received::Latched => {
                                // Once per call (and per re-offer with new SDP); never the address.
                                info!(media = slot.id, "caller's RTP source learnt");
                            }
                            Received::Accepted | Received::Learning | Received::Ignored => {}
                        }
                        if !alive {
                            self.close(index);
                        }
                    }
                    Err(_) => self.fail(index),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => debug!(error = %e, "RTP receive failed"),
        }
    }
}

/// The address to put in SDP for a call's socket.
pub(crate) fn local_addr(socket: &UdpSocket, advertise: std::net::IpAddr) -> Option<SocketAddr> {
    socket
        .local_addr()
        .ok()
        .map(|a| SocketAddr::new(advertise, a.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_engine_joins_its_threads_and_reports_no_fault() {
        let stats = Arc::new(Stats::default());
        let engine = RtpEngine::start(2, stats.clone(), false).expect("engine starts");
        assert_eq!(engine.threads.len(), 2);
        // Returns only once both threads have ended.
        drop(engine);
        assert_eq!(stats.media_threads_stopped.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_media_thread_fault_is_reported_to_its_own_server_only() {
        let faulty = Arc::new(Stats::default());
        let healthy = Arc::new(Stats::default());
        let a = RtpEngine::start(1, faulty.clone(), true).expect("engine starts");
        let b = RtpEngine::start(1, healthy.clone(), false).expect("engine starts");
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while faulty.media_threads_stopped.load(Ordering::SeqCst) == 0 && Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(faulty.media_threads_stopped.load(Ordering::SeqCst), 1);
        drop(a);
        drop(b);
        assert_eq!(healthy.media_threads_stopped.load(Ordering::SeqCst), 0);
    }
}
