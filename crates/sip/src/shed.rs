//! Load shedding: new calls are refused (503 with Retry-After) while the media threads start
//! to fall behind, so that the calls in progress keep their quality.
//!
//! Sans-IO: [`Shedder::update`] takes the time and the RTP engine's pacing figures (rounds
//! run, one per due 1 ms phase, and rounds that started more than 2 ms late) and says whether
//! to refuse. Once per [`WINDOW`] it compares the late share of that window's rounds with the
//! threshold; in between, the last verdict stands. A window with fewer than [`MIN_ROUNDS`]
//! rounds never sheds. A round late by 2 ms is still well inside a packet's 5 ms budget: the
//! line stops taking calls before its callers hear the difference.

use std::time::{Duration, Instant};

/// How often the verdict is revised.
pub const WINDOW: Duration = Duration::from_millis(250);
/// Rounds a window needs before its late share counts.
pub const MIN_ROUNDS: u64 = 200;

/// Refuses new calls while more than a given share of pacing rounds starts late.
#[derive(Debug)]
pub struct Shedder {
    /// Late rounds per million past which new calls are refused; 0: never.
    threshold_ppm: u64,
    last: Option<(Instant, u64, u64)>,
    shedding: bool,
}

impl Shedder {
    /// `late_percent`: the share of late rounds (0 to 100) past which new calls are refused;
    /// 0 turns shedding off.
    pub fn new(late_percent: f64) -> Shedder {
        let ppm = (late_percent.clamp(0.0, 100.0) * 10_000.0).round() as u64;
        Shedder {
            threshold_ppm: ppm,
            last: None,
            shedding: false,
        }
    }

    /// `sent`: rounds run so far; `late`: of those, rounds that started late (both only grow).
    /// True while new calls should be refused.
    pub fn update(&mut self, now: Instant, sent: u64, late: u64) -> bool {
        if self.threshold_ppm == 0 {
            return false;
        }
        match self.last {
            None => self.last = Some((now, sent, late)),
            Some((since, sent0, late0)) if now.saturating_duration_since(since) >= WINDOW => {
                let sent_now = sent.saturating_sub(sent0);
                let late_now = late.saturating_sub(late0);
                self.shedding = sent_now >= MIN_ROUNDS
                    && late_now.saturating_mul(1_000_000)
                        > sent_now.saturating_mul(self.threshold_ppm);
                self.last = Some((now, sent, late));
            }
            Some(_) => {}
        }
        self.shedding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    /// A shedder refusing past `percent`, and the start of its first window (no rounds yet).
    fn started(percent: f64) -> (Shedder, Instant) {
        let t0 = Instant::now();
        let mut s = Shedder::new(percent);
        assert!(!s.update(t0, 0, 0));
        (s, t0)
    }

    #[test]
    fn sheds_while_the_late_share_is_over_the_threshold() {
        let (mut s, t0) = started(1.0);
        // 50,000 rounds in the first second, 100 late (0.2 %): keep taking calls.
        assert!(!s.update(at(t0, 1000), 50_000, 100));
        // The next second: 50,000 more, 2,000 late (4 %): refuse.
        assert!(s.update(at(t0, 2000), 100_000, 2_100));
        // The verdict stands until the window is over...
        assert!(s.update(at(t0, 2100), 100_000, 2_100));
        // ...and lifts once a window is back under the threshold.
        assert!(!s.update(at(t0, 3000), 150_000, 2_200));
    }

    #[test]
    fn a_quiet_line_never_sheds() {
        let (mut s, t0) = started(1.0);
        // Every round late, but too few of them to call it overload.
        assert!(!s.update(at(t0, 1000), 100, 100));
    }

    #[test]
    fn zero_turns_it_off() {
        let (mut s, t0) = started(0.0);
        assert!(!s.update(at(t0, 1000), 50_000, 50_000));
    }

    #[test]
    fn exactly_at_the_threshold_is_not_over_it() {
        let (mut s, t0) = started(1.0);
        assert!(!s.update(at(t0, 1000), 10_000, 100));
        assert!(s.update(at(t0, 2000), 20_000, 201));
    }
}
