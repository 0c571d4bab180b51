//! A timer wheel of 20 one-millisecond phases for many 20 ms streams: one pacing loop serves them all.
//!
//! Every stream served by a wheel starts on the wheel's millisecond grid ([`PhaseWheel::align`]),
//! so all of its deadlines (`origin + n × 20 ms`) fall on the same phase, `origin mod 20 ms`.
//! A loop then wakes once per millisecond that has streams (not once per stream and frame),
//! asks [`PhaseWheel::advance`] which phases came due, and lets each stream of those phases
//! send what its own absolute-deadline [`crate::pacer::Pacer`] says is due. Time is an
//! argument; the wheel reads no clock.

use std::time::{Duration, Instant};

/// Phases per period: the 20 ms frame period in 1 ms steps.
pub const PHASES: usize = 20;
/// Width of one phase.
pub const PHASE: Duration = Duration::from_millis(1);

/// Streams (by caller-chosen key) grouped by the millisecond of the 20 ms period they send on.
#[derive(Debug)]
pub struct PhaseWheel {
    epoch: Instant,
    slots: [Vec<usize>; PHASES],
    /// The next millisecond tick (counted from `epoch`) not yet handed out by `advance`.
    next_tick: u64,
    len: usize,
}

fn ms_since(epoch: Instant, t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(epoch).as_millis()).unwrap_or(u64::MAX)
}

impl PhaseWheel {
    /// A wheel whose millisecond grid starts at `epoch`; `now` is where ticking starts.
    pub fn new(epoch: Instant, now: Instant) -> Self {
        PhaseWheel {
            epoch,
            slots: Default::default(),
            next_tick: ms_since(epoch, now),
            len: 0,
        }
    }

    /// The first instant on the wheel's grid at or after `now`: the origin to give a new stream's pacer.
    pub fn align(&self, now: Instant) -> Instant {
        let since = now.saturating_duration_since(self.epoch);
        let ms = since.as_nanos().div_ceil(PHASE.as_nanos());
        let ms = u64::try_from(ms).unwrap_or(u64::MAX / 2);
        self.epoch + Duration::from_millis(ms)
    }

    fn phase_of(&self, origin: Instant) -> usize {
        // Reduced modulo PHASES, so it fits usize.
        (ms_since(self.epoch, origin) % PHASES as u64) as usize
    }

    /// Adds `key` to the phase of `origin` (an instant from [`PhaseWheel::align`]).
    pub fn insert(&mut self, key: usize, origin: Instant) {
        let phase = self.phase_of(origin);
        // `phase_of` reduces modulo PHASES: the slot is always there.
        if let Some(slot) = self.slots.get_mut(phase) {
            debug_assert!(!slot.contains(&key), "a key is in the wheel once");
            slot.push(key);
            self.len += 1;
        }
    }

    /// Removes `key` from the phase of `origin`; returns whether it was there.
    pub fn remove(&mut self, key: usize, origin: Instant) -> bool {
        let phase = self.phase_of(origin);
        let Some(slot) = self.slots.get_mut(phase) else {
            return false;
        };
        match slot.iter().position(|&k| k == key) {
            Some(i) => {
                slot.swap_remove(i);
                self.len -= 1;
                true
            }
            None => false,
        }
    }

    /// Streams in the wheel.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// When the loop should next call [`PhaseWheel::advance`]; `None` when no stream is in the wheel.
    pub fn next_wake(&self) -> Option<Instant> {
        if self.len == 0 {
            return None;
        }
        // The next tick whose phase has a stream; at most one period ahead.
        let ahead = (0..PHASES as u64)
            .find(|i| {
                let phase = ((self.next_tick + i) % PHASES as u64) as usize;
                self.slots.get(phase).is_some_and(|s| !s.is_empty())
            })
            .unwrap_or(0);
        Some(self.epoch + Duration::from_millis(self.next_tick + ahead))
    }

    /// The phases whose tick came due by `now`, each at most once (a loop that was late by
    /// more than a period lets each pacer catch up or skip by itself). Call
    /// [`PhaseWheel::keys`] for each.
    pub fn advance(&mut self, now: Instant) -> DuePhases {
        let current = ms_since(self.epoch, now);
        if current < self.next_tick {
            return DuePhases { next: 0, end: 0 };
        }
        let first = self
            .next_tick
            .max(current.saturating_sub(PHASES as u64 - 1));
        self.next_tick = current + 1;
        DuePhases {
            next: first,
            end: current + 1,
        }
    }

    /// The keys in `phase`.
    pub fn keys(&self, phase: usize) -> &[usize] {
        self.slots.get(phase % PHASES).map_or(&[], Vec::as_slice)
    }
}

/// The phases due in one [`PhaseWheel::advance`], oldest first.
#[derive(Debug, Clone)]
pub struct DuePhases {
    next: u64,
    end: u64,
}

impl Iterator for DuePhases {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if self.next >= self.end {
            return None;
        }
        let phase = (self.next % PHASES as u64) as usize;
        self.next += 1;
        Some(phase)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_fire_on_their_phase_only() {
        let t0 = crate::test_origin();
        let mut w = PhaseWheel::new(t0, t0);
        assert_eq!(w.next_wake(), None);
        let a = w.align(t0 + Duration::from_micros(2500));
        assert_eq!(a, t0 + Duration::from_millis(3));
        w.insert(7, a);
        let b = w.align(t0 + Duration::from_millis(5));
        assert_eq!(b, t0 + Duration::from_millis(5));
        w.insert(9, b);
        assert_eq!(w.next_wake(), Some(a));
        // Nothing is due before the first phase.
        let due: Vec<usize> = w.advance(t0 + Duration::from_micros(2900)).collect();
        assert!(due.iter().all(|&p| w.keys(p).is_empty()));
        let keys: Vec<usize> = w.advance(a).flat_map(|p| w.keys(p).to_vec()).collect();
        assert_eq!(keys, vec![7]);
        assert_eq!(w.next_wake(), Some(b));
        let keys: Vec<usize> = w
            .advance(t0 + Duration::from_millis(23))
            .flat_map(|p| w.keys(p).to_vec())
            .collect();
        assert_eq!(keys, vec![9, 7]);
        assert!(w.remove(7, a));
        assert!(!w.remove(7, a));
        assert_eq!(w.len(), 1);
        assert_eq!(w.next_wake(), Some(t0 + Duration::from_millis(25)));
    }

    #[test]
    fn a_late_loop_sees_each_phase_once() {
        let t0 = crate::test_origin();
        let mut w = PhaseWheel::new(t0, t0);
        w.insert(1, t0);
        let phases: Vec<usize> = w.advance(t0 + Duration::from_millis(100)).collect();
        assert_eq!(phases.len(), PHASES);
        let mut sorted = phases.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), PHASES);
        assert_eq!(w.advance(t0 + Duration::from_millis(100)).count(), 0);
    }
}
