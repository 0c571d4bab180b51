//! One SIP server's counters for `/metrics`: responses sent by status code, calls in progress
//! by state, how long the store took to commit a signature, panics that ended one request,
//! call or media stream and nothing more, and the media threads' pacing rounds.
//!
//! Relaxed atomics owned by the server (in its `Stats`): a count costs one uncontended add,
//! and nothing is allocated or locked on the call path. [`Stats`] is a `prometheus_client`
//! collector: `/metrics` reads the counters when it is scraped.

use std::fmt;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

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
        // Non-cumulative here; the encoder sums them into cumulative buckets.
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

/// One unlabelled counter. Names are given without `_total`: the encoder adds it.
pub(crate) fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> fmt::Result {
    ConstCounter::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)
}

/// One unlabelled gauge.
pub(crate) fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> fmt::Result {
    ConstGauge::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// A gauge with one label, a sample per `(label value, value)`.
pub(crate) fn gauge_family<'a>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    samples: impl IntoIterator<Item = (&'a str, i64)>,
) -> fmt::Result {
    let mut family = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (value, n) in samples {
        ConstGauge::new(n).encode(family.encode_family(&[(label, value)])?)?;
    }
    Ok(())
}

impl Metrics {
    /// Encodes the counters for `/metrics`.
    fn encode(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let mut family = e.encode_descriptor(
            "belteken_sip_responses",
            "SIP responses sent by belteken, by status code.",
            None,
            MetricType::Counter,
        )?;
        for (code, slot) in (FIRST_CODE..=LAST_CODE).zip(self.responses.iter()) {
            let n = slot.load(Ordering::Relaxed);
            if n > 0 {
                let code = code.to_string();
                ConstCounter::new(n).encode(family.encode_family(&[("code", code.as_str())])?)?;
            }
        }
        counter(
            e,
            "belteken_panics_contained",
            "Panics that ended one SIP request, call or media stream and nothing more (each a \
             bug to report).",
            self.panics_contained.load(Ordering::Relaxed),
        )?;
        gauge_family(
            e,
            "belteken_calls_active",
            "Calls in progress, by state.",
            "state",
            CallState::ALL.map(|state| {
                (
                    state.as_str(),
                    self.calls(state).load(Ordering::Relaxed).max(0),
                )
            }),
        )?;
        // Non-cumulative per bucket, as the encoder wants them; the last bound is +Inf.
        let mut buckets: Vec<(f64, u64)> = SIGN_BUCKETS_MS
            .iter()
            .zip(self.sign_buckets.iter())
            .map(|(ms, slot)| (*ms as f64 / 1000.0, slot.load(Ordering::Relaxed)))
            .collect();
        let count = self.sign_count.load(Ordering::Relaxed);
        let bounded: u64 = buckets.iter().map(|(_, n)| n).sum();
        buckets.push((f64::MAX, count.saturating_sub(bounded)));
        e.encode_descriptor(
            "belteken_store_sign_seconds",
            "Time the store took to commit a signature durably.",
            None,
            MetricType::Histogram,
        )?
        .encode_histogram::<NoLabelSet>(
            self.sign_sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            count,
            &buckets,
            None,
        )
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

impl Collector for Stats {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        gauge(
            &mut e,
            "belteken_calls_in_progress",
            "Calls in progress.",
            i64::try_from(self.calls_in_progress.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
        )?;
        let counters = [
            ("belteken_calls", "INVITEs that started a call attempt.", &self.calls_total),
            (
                "belteken_calls_rejected_busy",
                "Calls refused with 503 (max_calls, a trunk's max_calls, load shedding or draining).",
                &self.calls_rejected_busy,
            ),
            (
                "belteken_calls_shed",
                "Calls refused with 503 because the media threads were falling behind.",
                &self.calls_shed,
            ),
            ("belteken_rtp_packets_sent", "RTP packets sent to callers.", &self.rtp_packets_sent),
            (
                "belteken_rtp_frames_late",
                "RTP frames dropped because the pacer fell behind.",
                &self.rtp_frames_late,
            ),
            (
                "belteken_rtp_packets_sent_late",
                "RTP packets sent more than 10 ms after their deadline.",
                &self.rtp_packets_sent_late,
            ),
            (
                "belteken_rtp_foreign_packets",
                "Datagrams dropped on a call's RTP port because they came from another address \
                 than the caller's learnt media source.",
                &self.rtp_foreign_packets,
            ),
            (
                "belteken_media_rounds",
                "Pacing rounds run by the media threads (one per due 1 ms phase).",
                &self.metrics.rounds,
            ),
            (
                "belteken_media_rounds_late",
                "Pacing rounds that started more than 2 ms after their phase was due.",
                &self.metrics.rounds_late,
            ),
        ];
        for (name, help, value) in counters {
            counter(&mut e, name, help, load(value))?;
        }
        self.metrics.encode(&mut e)?;
        let by_trunk: Vec<(String, i64)> = self
            .calls_by_trunk
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), i64::try_from(*v).unwrap_or(i64::MAX)))
                    .collect()
            })
            .unwrap_or_default();
        if !by_trunk.is_empty() {
            gauge_family(
                &mut e,
                "belteken_trunk_calls_in_progress",
                "Calls in progress per trunk.",
                "trunk",
                by_trunk.iter().map(|(t, n)| (t.as_str(), *n)),
            )?;
        }
        Ok(())
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

    fn exposition(stats: &Arc<Stats>) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(stats.clone()));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("encodes");
        out
    }

    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    #[test]
    fn counts_show_in_the_exposition() {
        let stats = Arc::new(Stats::default());
        let m = &stats.metrics;
        let before = exposition(&stats);
        m.response(486);
        m.response(486);
        m.response(99);
        m.response(700);
        m.sign_duration(Duration::from_millis(3));
        let gauge = CallGauge::new(stats.clone(), CallState::Ringing);
        let mut other = CallGauge::new(stats.clone(), CallState::Ringing);
        other.set(CallState::Recording);
        let after = exposition(&stats);
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
        let gone = exposition(&stats);
        assert_eq!(
            value(&gone, "belteken_calls_active{state=\"recording\"}"),
            0.0
        );
        // Another server's counters are its own.
        let fresh = exposition(&Arc::new(Stats::default()));
        assert_eq!(value(&fresh, code), 0.0);
        for line in after.lines().filter(|l| !l.starts_with('#')) {
            let (name, v) = line.rsplit_once(' ').expect("name value");
            assert!(name.starts_with("belteken_"), "{line}");
            assert!(v.parse::<f64>().is_ok(), "{line}");
        }
    }
}
