//! One SIP server's counters for `/metrics`: responses sent by status code, calls in progress
//! by state, how long the store took to commit a signature, panics that ended one request,
//! call or media stream and nothing more, and the media threads' pacing rounds.
//!
//! Relaxed atomics owned by the server (in its `Stats`): a count costs one uncontended add,
//! and nothing is allocated or locked on the call path. [`Metrics::render`] writes them in the
//! Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Lowest and highest status code counted one by one; others are not counted.
const FIRST_CODE: u16 = 100;
const LAST_CODE: u16 = 699;
const CODES: usize = (LAST_CODE - FIRST_CODE + 1) as usize;

/// Upper bounds of the signature-commit histogram, in milliseconds.
const SIGN_BUCKETS_MS: [u64; 12] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

/// The counters of one SIP server.
#[derive(Debug)]
pub struct Metrics {
    responses: [AtomicU64; CODES],
    panics_contained: AtomicU64,
    calls: [AtomicI64; CallState::ALL.len()],
    sign_buckets: [AtomicU64; SIGN_BUCKETS_MS.len()],
    sign_count: AtomicU64,
    sign_sum_micros: AtomicU64,
    /// Pacing rounds run by the server's media threads (one per due phase, 1 ms apart).
    rounds: AtomicU64,
    /// Of those, rounds that started more than `rtp_engine::LATE_ROUND` after their phase.
    rounds_late: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            responses: [const { AtomicU64::new(0) }; CODES],
            panics_contained: AtomicU64::new(0),
            calls: [const { AtomicI64::new(0) }; CallState::ALL.len()],
            sign_buckets: [const { AtomicU64::new(0) }; SIGN_BUCKETS_MS.len()],
            sign_count: AtomicU64::new(0),
            sign_sum_micros: AtomicU64::new(0),
            rounds: AtomicU64::new(0),
            rounds_late: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counts one SIP response sent with this status code.
    pub(crate) fn response(&self, code: u16) {
        if let Some(slot) = code
            .checked_sub(FIRST_CODE)
            .and_then(|i| self.responses.get(usize::from(i)))
        {
            slot.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one panic that ended a request, a call or a call's media stream, and nothing
    /// more.
    pub(crate) fn panic_contained(&self) {
        self.panics_contained.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one pacing round of a media thread, and whether it started late.
    pub(crate) fn round(&self, late: bool) {
        self.rounds.fetch_add(1, Ordering::Relaxed);
        if late {
            self.rounds_late.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The media threads' pacing rounds so far, and how many of them started late.
    pub fn pacing_rounds(&self) -> (u64, u64) {
        (
            self.rounds.load(Ordering::Relaxed),
            self.rounds_late.load(Ordering::Relaxed),
        )
    }

    fn calls(&self, state: CallState) -> &AtomicI64 {
        // One slot per `CallState`, in declaration order.
        &self.calls[state as usize]
    }

    /// Records how long one `Signing::sign` took (whatever its outcome).
    pub(crate) fn sign_duration(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        // Non-cumulative here; `render` sums them into Prometheus's cumulative buckets.
        if let Some(slot) = SIGN_BUCKETS_MS
            .iter()
            .position(|ms| micros <= ms.saturating_mul(1000))
            .and_then(|i| self.sign_buckets.get(i))
        {
            slot.fetch_add(1, Ordering::Relaxed);
        }
        self.sign_count.fetch_add(1, Ordering::Relaxed);
        self.sign_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// The state of a call in progress, for the `belteken_calls_active` gauge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallState {
    /// INVITE accepted for handling, not yet answered (ringing).
    Ringing,
    /// Answered: the caller hears the flow.
    Answered,
    /// The caller's voice is being recorded.
    Recording,
    /// Waiting for the store (signature, withdrawal) or a transfer.
    Waiting,
}

impl CallState {
    const ALL: [CallState; 4] = [
        CallState::Ringing,
        CallState::Answered,
        CallState::Recording,
        CallState::Waiting,
    ];

    fn as_str(self) -> &'static str {
        match self {
            CallState::Ringing => "ringing",
            CallState::Answered => "answered",
            CallState::Recording => "recording",
            CallState::Waiting => "waiting",
        }
    }
}

/// A call's place in the `belteken_calls_active` gauge; leaves it when dropped.
#[derive(Debug)]
pub(crate) struct CallGauge {
    stats: Arc<Stats>,
    state: CallState,
}

impl CallGauge {
    pub fn new(stats: Arc<Stats>, state: CallState) -> CallGauge {
        stats.metrics.calls(state).fetch_add(1, Ordering::Relaxed);
        CallGauge { stats, state }
    }

    pub fn set(&mut self, state: CallState) {
        if state != self.state {
            let m = &self.stats.metrics;
            m.calls(self.state).fetch_sub(1, Ordering::Relaxed);
            m.calls(state).fetch_add(1, Ordering::Relaxed);
            self.state = state;
        }
    }
}

impl Drop for CallGauge {
    fn drop(&mut self) {
        self.stats
            .metrics
            .calls(self.state)
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Appends the counters in the Prometheus text format (with `# HELP` and `# TYPE`).
    pub fn render(&self, out: &mut String) {
        out.push_str(
            "# HELP belteken_sip_responses_total SIP responses sent by belteken, by status code.\n\
    # TYPE belteken_sip_responses_total counter\n",
        );
        for (i, slot) in self.responses.iter().enumerate() {
            let n = slot.load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "belteken_sip_responses_total{{code=\"{}\"}} {n}",
                    usize::from(FIRST_CODE) + i
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP belteken_panics_contained_total Panics that ended one SIP request, call or media \
    stream and nothing more (each a bug to report).\n# TYPE belteken_panics_contained_total counter\n\
    belteken_panics_contained_total {}",
            self.panics_contained.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP belteken_calls_active Calls in progress, by state.\n# TYPE belteken_calls_active gauge\n",
        );
        for state in CallState::ALL {
            let n = self.calls(state).load(Ordering::Relaxed).max(0);
            let _ = writeln!(
                out,
                "belteken_calls_active{{state=\"{}\"}} {n}",
                state.as_str()
            );
        }
        out.push_str(
            "# HELP belteken_store_sign_seconds Time the store took to commit a signature durably.\n\
    # TYPE belteken_store_sign_seconds histogram\n",
        );
        let mut cumulative = 0u64;
        for (ms, slot) in SIGN_BUCKETS_MS.iter().zip(self.sign_buckets.iter()) {
            cumulative += slot.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "belteken_store_sign_seconds_bucket{{le=\"{}\"}} {cumulative}",
                *ms as f64 / 1000.0
            );
        }
        let count = self.sign_count.load(Ordering::Relaxed);
        let sum = self.sign_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "belteken_store_sign_seconds_bucket{{le=\"+Inf\"}} {count}\n\
    belteken_store_sign_seconds_sum {sum}\nbelteken_store_sign_seconds_count {count}"
        );
    }
}

/// Live figures of the channel.
#[derive(Debug, Default)]
pub struct Stats {
    pub calls_in_progress: AtomicUsize,
    pub calls_total: AtomicU64,
    pub calls_rejected_busy: AtomicU64,
    /// Of those, refused because the media threads were falling behind (load shedding).
    pub calls_shed: AtomicU64,
    /// Calls in progress per trunk (by name).
    pub calls_by_trunk: std::sync::Mutex<std::collections::BTreeMap<String, usize>>,
    /// Set when the server drains for shutdown: new calls get 503, calls in progress finish.
    pub draining: std::sync::atomic::AtomicBool,
    /// RTP packets sent to callers.
    pub rtp_packets_sent: AtomicU64,
    /// RTP frames dropped because their send time had passed (the pacer fell behind).
    pub rtp_frames_late: AtomicU64,
    /// RTP packets sent more than `media::stream::LATE_SEND` after their deadline.
    pub rtp_packets_sent_late: AtomicU64,
    /// RTP and RTCP datagrams dropped because they came from another address than the
    /// caller's learnt media source (strict RTP).
    pub rtp_foreign_packets: AtomicU64,
    /// Calls in progress per (campaign, flow step), for the console's now view.
    pub calls_by_step: std::sync::Mutex<std::collections::BTreeMap<(String, String), usize>>,
    /// Responses, calls by state, signature times, contained panics, pacing rounds.
    pub metrics: crate::metrics::Metrics,
    /// Media threads of this server that stopped other than at its shutdown.
    pub(crate) media_threads_stopped: AtomicUsize,
    /// Rung when one of them stops.
    pub(crate) media_thread_stopped_notify: tokio::sync::Notify,
}

impl Stats {
    /// Waits until one of the server's media threads stops (it never should); returns at
    /// once if one already has.
    pub async fn media_thread_stopped(&self) {
        loop {
            let notified = self.media_thread_stopped_notify.notified();
            if self.media_threads_stopped.load(Ordering::SeqCst) > 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Stats {
    /// Calls in progress from the trunk named `name`.
    pub fn trunk_calls(&self, name: &str) -> usize {
        self.calls_by_trunk
            .lock()
            .map(|m| m.get(name).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    pub(crate) fn trunk_call_started(&self, name: &str) {
        if let Ok(mut m) = self.calls_by_trunk.lock() {
            *m.entry(name.to_string()).or_default() += 1;
        }
    }

    pub(crate) fn trunk_call_ended(&self, name: &str) {
        if let Ok(mut m) = self.calls_by_trunk.lock() {
            if let Some(n) = m.get_mut(name) {
                *n = n.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    #[test]
    fn counts_show_in_the_exposition() {
        let stats = Arc::new(Stats::default());
        let m = &stats.metrics;
        let mut before = String::new();
        m.render(&mut before);
        m.response(486);
        m.response(486);
        m.response(99);
        m.response(700);
        m.sign_duration(Duration::from_millis(3));
        let gauge = CallGauge::new(stats.clone(), CallState::Ringing);
        let mut other = CallGauge::new(stats.clone(), CallState::Ringing);
        other.set(CallState::Recording);
        let mut after = String::new();
        m.render(&mut after);
        let code = "belteken_sip_responses_total{code=\"486\"}";
        assert_eq!(value(&after, code) - value(&before, code), 2.0, "{after}");
        assert!(!after.contains("code=\"99\"") && !after.contains("code=\"700\""));
        let b5 = "belteken_store_sign_seconds_bucket{le=\"0.005\"}";
        let b2 = "belteken_store_sign_seconds_bucket{le=\"0.002\"}";
        assert!(value(&after, b5) - value(&before, b5) >= 1.0, "{after}");
        assert!(
            value(&after, b5) >= value(&after, b2),
            "buckets are cumulative"
        );
        assert!(value(&after, "belteken_calls_active{state=\"recording\"}") >= 1.0);
        drop(gauge);
        drop(other);
        let mut gone = String::new();
        m.render(&mut gone);
        assert_eq!(
            value(&gone, "belteken_calls_active{state=\"recording\"}"),
            0.0
        );
        // Another server's counters are its own.
        let mut fresh = String::new();
        Stats::default().metrics.render(&mut fresh);
        assert_eq!(value(&fresh, code), 0.0);
        for line in after.lines().filter(|l| !l.starts_with('#')) {
            let (name, v) = line.rsplit_once(' ').expect("name value");
            assert!(name.starts_with("belteken_"), "{line}");
            assert!(v.parse::<f64>().is_ok(), "{line}");
        }
    }
}
