//! Process-wide counters of the SIP channel for `/metrics`: responses sent by status code,
//! calls in progress by state, how long the store took to commit a signature, and panics that
//! ended one request, call or media stream and nothing more.
//!
//! Relaxed atomics in statics: a count costs one uncontended add, and nothing is allocated
//! or locked on the call path. [`render`] writes them in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Lowest and highest status code counted one by one; others are not counted.
const FIRST_CODE: u16 = 100;
const LAST_CODE: u16 = 699;
const CODES: usize = (LAST_CODE - FIRST_CODE + 1) as usize;

static RESPONSES: [AtomicU64; CODES] = [const { AtomicU64::new(0) }; CODES];

/// Counts one SIP response sent with this status code.
pub(crate) fn response(code: u16) {
    if let Some(slot) = code
        .checked_sub(FIRST_CODE)
        .and_then(|i| RESPONSES.get(usize::from(i)))
    {
        slot.fetch_add(1, Ordering::Relaxed);
    }
}

static PANICS_CONTAINED: AtomicU64 = AtomicU64::new(0);

/// Counts one panic that ended a request, a call or a call's media stream, and nothing more.
pub(crate) fn panic_contained() {
    PANICS_CONTAINED.fetch_add(1, Ordering::Relaxed);
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

    fn index(self) -> usize {
        self as usize
    }
}

static CALLS: [AtomicI64; 4] = [const { AtomicI64::new(0) }; 4];

/// A call's place in the `belteken_calls_active` gauge; leaves it when dropped.
#[derive(Debug)]
pub(crate) struct CallGauge(CallState);

impl CallGauge {
    pub fn new(state: CallState) -> CallGauge {
        CALLS[state.index()].fetch_add(1, Ordering::Relaxed);
        CallGauge(state)
    }

    pub fn set(&mut self, state: CallState) {
        if state != self.0 {
            CALLS[self.0.index()].fetch_sub(1, Ordering::Relaxed);
            CALLS[state.index()].fetch_add(1, Ordering::Relaxed);
            self.0 = state;
        }
    }
}

impl Drop for CallGauge {
    fn drop(&mut self) {
        CALLS[self.0.index()].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Upper bounds of the signature-commit histogram, in milliseconds.
const SIGN_BUCKETS_MS: [u64; 12] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

static SIGN_BUCKETS: [AtomicU64; SIGN_BUCKETS_MS.len()] =
    [const { AtomicU64::new(0) }; SIGN_BUCKETS_MS.len()];
static SIGN_COUNT: AtomicU64 = AtomicU64::new(0);
static SIGN_SUM_MICROS: AtomicU64 = AtomicU64::new(0);

/// Records how long one `Store::sign` took (whatever its outcome).
pub(crate) fn sign_duration(took: Duration) {
    let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    // Non-cumulative here; `render` sums them into Prometheus's cumulative buckets.
    if let Some(i) = SIGN_BUCKETS_MS
        .iter()
        .position(|ms| micros <= ms.saturating_mul(1000))
    {
        SIGN_BUCKETS[i].fetch_add(1, Ordering::Relaxed);
    }
    SIGN_COUNT.fetch_add(1, Ordering::Relaxed);
    SIGN_SUM_MICROS.fetch_add(micros, Ordering::Relaxed);
}

/// Appends the counters in the Prometheus text format (with `# HELP` and `# TYPE`).
pub fn render(out: &mut String) {
    out.push_str(
        "# HELP belteken_sip_responses_total SIP responses sent by belteken, by status code.\n\
# TYPE belteken_sip_responses_total counter\n",
    );
    for (i, slot) in RESPONSES.iter().enumerate() {
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
        PANICS_CONTAINED.load(Ordering::Relaxed)
    );
    out.push_str(
        "# HELP belteken_calls_active Calls in progress, by state.\n# TYPE belteken_calls_active gauge\n",
    );
    for state in CallState::ALL {
        let n = CALLS[state.index()].load(Ordering::Relaxed).max(0);
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
    for (ms, slot) in SIGN_BUCKETS_MS.iter().zip(SIGN_BUCKETS.iter()) {
        cumulative += slot.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "belteken_store_sign_seconds_bucket{{le=\"{}\"}} {cumulative}",
            *ms as f64 / 1000.0
        );
    }
    let count = SIGN_COUNT.load(Ordering::Relaxed);
    let sum = SIGN_SUM_MICROS.load(Ordering::Relaxed) as f64 / 1e6;
    let _ = writeln!(
        out,
        "belteken_store_sign_seconds_bucket{{le=\"+Inf\"}} {count}\n\
belteken_store_sign_seconds_sum {sum}\nbelteken_store_sign_seconds_count {count}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statics are shared by every test of the crate: compare before and after.
    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    #[test]
    fn counts_show_in_the_exposition() {
        let mut before = String::new();
        render(&mut before);
        response(486);
        response(486);
        response(99);
        response(700);
        sign_duration(Duration::from_millis(3));
        let gauge = CallGauge::new(CallState::Ringing);
        let mut other = CallGauge::new(CallState::Ringing);
        other.set(CallState::Recording);
        let mut after = String::new();
        render(&mut after);
        let code = "belteken_sip_responses_total{code=\"486\"}";
        assert!(value(&after, code) - value(&before, code) >= 2.0, "{after}");
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
        for line in after.lines().filter(|l| !l.starts_with('#')) {
            let (name, v) = line.rsplit_once(' ').expect("name value");
            assert!(name.starts_with("belteken_"), "{line}");
            assert!(v.parse::<f64>().is_ok(), "{line}");
        }
    }
}
