//! Absolute-deadline frame pacing: frame `n` is due at `origin + n * period`, so timing never drifts.
//!
//! Convention: `ticks` counts frames already handed out. Frame 0 is due at `origin` itself
//! (play starts at once), and [`Pacer::next_deadline`] is `origin + period * ticks`. Deadlines
//! are computed from the origin each time in integer nanoseconds, never by adding periods up.

use std::time::{Duration, Instant};

/// Default for [`Pacer::max_catch_up_frames`]: at most 3 frames (60 ms at 20 ms) are sent in
/// one burst after a stall; older frames are skipped so the far end's jitter buffer is not flooded.
pub const DEFAULT_MAX_CATCH_UP_FRAMES: u32 = 3;

/// What [`Pacer::due`] tells the caller to do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Due {
    /// Frames to send now, oldest first (0 when it is not yet time).
    pub frames: u32,
    /// Frames dropped because the caller was too late; advance the RTP timestamp over them
    /// (`RtpSender::skip(skipped * FRAME_SAMPLES)`) so the far end keeps the timeline.
    pub skipped: u64,
    /// How late the first of `frames` is (zero when `frames` is 0): a metric for the loop.
    pub late: Duration,
}

/// Paces one stream of fixed-period frames on absolute deadlines.
#[derive(Debug, Clone)]
pub struct Pacer {
    origin: Instant,
    period: Duration,
    ticks: u64,
    max_catch_up_frames: u32,
}

impl Pacer {
    /// A pacer whose frame 0 is due at `origin`.
    ///
    /// # Panics
    /// If `period` is zero: a programming error (the period is a constant), not input.
    pub fn new(origin: Instant, period: Duration) -> Self {
        assert!(!period.is_zero(), "pacer period must be positive");
        Pacer {
            origin,
            period,
            ticks: 0,
            max_catch_up_frames: DEFAULT_MAX_CATCH_UP_FRAMES,
        }
    }

    /// Sets the burst bound (at least 1) used by [`Pacer::due`].
    pub fn with_max_catch_up_frames(mut self, frames: u32) -> Self {
        self.max_catch_up_frames = frames.max(1);
        self
    }

    pub fn origin(&self) -> Instant {
        self.origin
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    /// Frames handed out (sent or skipped) so far.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    pub fn max_catch_up_frames(&self) -> u32 {
        self.max_catch_up_frames
    }

    /// Offset of frame `n` from the origin, exact in nanoseconds.
    fn offset(&self, n: u64) -> Duration {
        let nanos = self.period.as_nanos().saturating_mul(u128::from(n));
        let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
        // The remainder of a division by 10^9 always fits in u32.
        Duration::new(secs, (nanos % 1_000_000_000) as u32)
    }

    fn deadline_of(&self, n: u64) -> Instant {
        self.origin.checked_add(self.offset(n)).expect(
            "ticks grow by one per period (due() never passes now), so an Instant overflow \
             would take centuries of calls",
        )
    }

    /// When the next frame (number `ticks`) is due: the instant to sleep until.
    pub fn next_deadline(&self) -> Instant {
        self.deadline_of(self.ticks)
    }

    /// Counts one frame as handed out without asking the clock (for callers that send
    /// exactly one frame per wake-up at `next_deadline`). Do not mix with [`Pacer::due`] for
    /// the same frames: `due` already counts what it returns.
    pub fn advance(&mut self) {
        self.ticks += 1;
    }

    /// Frames due at `now`, counted as handed out. If more than `max_catch_up_frames` are
    /// due, only the newest that many are returned and the older ones are skipped.
    pub fn due(&mut self, now: Instant) -> Due {
        let Some(elapsed) = now.checked_duration_since(self.origin) else {
            return Due::default();
        };
        // Frames 0..=index have deadlines at or before now.
        let index = elapsed.as_nanos() / self.period.as_nanos();
        let due_total = u64::try_from(index)
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
            .saturating_sub(self.ticks);
        if due_total == 0 {
            return Due::default();
        }
        let frames = due_total.min(u64::from(self.max_catch_up_frames));
        let skipped = due_total - frames;
        self.ticks += skipped;
        let late = now.saturating_duration_since(self.next_deadline());
        self.ticks += frames;
        Due {
            // frames <= max_catch_up_frames, a u32.
            frames: frames as u32,
            skipped,
            late,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS20: Duration = Duration::from_millis(20);

    #[test]
    fn first_frame_is_due_at_origin() {
        let t0 = crate::test_origin();
        let mut p = Pacer::new(t0, MS20);
        assert_eq!(p.next_deadline(), t0);
        assert_eq!(p.due(t0).frames, 1);
        assert_eq!(p.next_deadline(), t0 + MS20);
        assert_eq!(p.due(t0 + Duration::from_millis(19)).frames, 0);
        let d = p.due(t0 + Duration::from_millis(21));
        assert_eq!(
            (d.frames, d.skipped, d.late),
            (1, 0, Duration::from_millis(1))
        );
        // Asking again at the same time gives nothing: due counts what it returns.
        assert_eq!(p.due(t0 + Duration::from_millis(21)), Due::default());
    }

    #[test]
    fn before_origin_nothing_is_due() {
        let t0 = crate::test_origin() + Duration::from_secs(1);
        let mut p = Pacer::new(t0, MS20);
        assert_eq!(p.due(t0 - Duration::from_millis(5)), Due::default());
        assert_eq!(p.ticks(), 0);
    }

    #[test]
    fn small_lateness_catches_up_large_lateness_skips() {
        let t0 = crate::test_origin();
        let mut p = Pacer::new(t0, MS20);
        // 50 ms late at the start: frames 0, 1, 2 are due (deadlines 0, 20, 40).
        let d = p.due(t0 + Duration::from_millis(50));
        assert_eq!((d.frames, d.skipped), (3, 0));
        assert_eq!(d.late, Duration::from_millis(50));
        // Stall of one second: 50 frames due, only 3 sent, 47 skipped, timeline kept.
        let d = p.due(t0 + Duration::from_millis(1050));
        assert_eq!((d.frames, d.skipped), (3, 47));
        assert_eq!(d.late, Duration::from_millis(50));
        assert_eq!(p.ticks(), 53);
        assert_eq!(p.next_deadline(), t0 + Duration::from_millis(1060));

        let mut p = Pacer::new(t0, MS20).with_max_catch_up_frames(0);
        assert_eq!(p.max_catch_up_frames(), 1);
        let d = p.due(t0 + Duration::from_millis(100));
        assert_eq!((d.frames, d.skipped), (1, 5));
    }

    #[test]
    fn advance_steps_one_frame() {
        let t0 = crate::test_origin();
        let mut p = Pacer::new(t0, MS20);
        p.advance();
        p.advance();
        assert_eq!(p.next_deadline(), t0 + 2 * MS20);
        assert_eq!(p.due(t0 + 2 * MS20).frames, 1);
    }

    /// A million frames, each polled exactly at its deadline plus a jitter, never drift.
    #[test]
    fn a_million_ticks_never_drift() {
        let t0 = crate::test_origin();
        // A period that is not a whole number of anything nice, to catch rounding.
        let period = Duration::from_nanos(20_000_001);
        let mut p = Pacer::new(t0, period);
        let mut sent = 0u64;
        for i in 0..1_000_000u64 {
            let deadline = p.next_deadline();
            let jitter = Duration::from_micros((i * 7919) % 3000);
            let d = p.due(deadline + jitter);
            assert_eq!((d.frames, d.skipped), (1, 0), "tick {i}");
            sent += u64::from(d.frames);
        }
        assert_eq!(sent, 1_000_000);
        assert_eq!(
            p.next_deadline(),
            t0 + Duration::from_nanos(20_000_001 * 1_000_000)
        );
    }
}
