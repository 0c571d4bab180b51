//! Fixed-bucket histograms and percentile summaries: allocated once, no allocation per sample.

use serde::Serialize;

/// Histogram bucket width.
const BUCKET_NS: u64 = 10_000;
/// Buckets: 10 µs each up to 500 ms; later samples land in `over` (the exact max is kept).
const BUCKETS: usize = 50_000;

/// A latency histogram in nanoseconds with 10 µs resolution.
#[derive(Debug, Clone)]
pub struct Hist {
    buckets: Vec<u64>,
    over: u64,
    count: u64,
    sum_ns: u128,
    max_ns: u64,
}

impl Default for Hist {
    fn default() -> Self {
        Hist {
            buckets: vec![0; BUCKETS],
            over: 0,
            count: 0,
            sum_ns: 0,
            max_ns: 0,
        }
    }
}

impl Hist {
    pub fn record(&mut self, ns: u64) {
        let i = (ns / BUCKET_NS) as usize;
        match self.buckets.get_mut(i) {
            Some(b) => *b += 1,
            None => self.over += 1,
        }
        self.count += 1;
        self.sum_ns += u128::from(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    pub fn merge(&mut self, other: &Hist) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.over += other.over;
        self.count += other.count;
        self.sum_ns += other.sum_ns;
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value at quantile `q` (0..=1), as the upper edge of its bucket (capped at the max).
    pub fn quantile_ns(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let target = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0u64;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b;
            if seen >= target {
                return ((i as u64 + 1) * BUCKET_NS).min(self.max_ns);
            }
        }
        self.max_ns
    }

    /// Samples above `ns`.
    pub fn above(&self, ns: u64) -> u64 {
        let first = (ns / BUCKET_NS) as usize + 1;
        self.buckets.iter().skip(first).sum::<u64>() + self.over
    }

    pub fn summary(&self) -> Summary {
        let ms = |ns: u64| ns as f64 / 1e6;
        Summary {
            count: self.count,
            mean_ms: if self.count == 0 {
                0.0
            } else {
                (self.sum_ns / u128::from(self.count)) as f64 / 1e6
            },
            p50_ms: ms(self.quantile_ns(0.50)),
            p90_ms: ms(self.quantile_ns(0.90)),
            p99_ms: ms(self.quantile_ns(0.99)),
            p999_ms: ms(self.quantile_ns(0.999)),
            max_ms: ms(self.max_ns),
            over_5ms: self.above(5_000_000),
            over_20ms: self.above(20_000_000),
        }
    }
}

/// Percentiles in milliseconds (values are bucket upper edges: 10 µs resolution).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub over_5ms: u64,
    pub over_20ms: u64,
}

/// CPU seconds (user, system) this process has used, from /proc/self/stat.
pub fn self_cpu_seconds() -> (f64, f64) {
    proc_cpu_seconds("/proc/self/stat").unwrap_or((0.0, 0.0))
}

/// CPU seconds (user, system) of a process from its /proc/PID/stat.
pub fn proc_cpu_seconds(path: &str) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the ")" that closes the command name: state is field 3; utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // USER_HZ is 100 on every Linux architecture we run on.
    let tick = 100.0;
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime / tick, stime / tick))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut h = Hist::default();
        for i in 1..=100u64 {
            h.record(i * 100_000); // 0.1 .. 10 ms
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.quantile_ns(0.5), 5_000_000 + BUCKET_NS);
        assert_eq!(h.quantile_ns(1.0), 10_000_000);
        assert_eq!(h.above(5_000_000), 50);
        h.record(10_000_000_000);
        assert_eq!(h.summary().max_ms, 10_000.0);
    }
}
