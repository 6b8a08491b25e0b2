//! Latency histograms and the report, in the JSON schema shared with whereabouts-rs' own load generator.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies are recorded in microseconds, from 1 µs to 10 minutes, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Records one latency (saturating at the histogram's upper bound).
pub fn record(h: &mut Histogram<u64>, latency: Duration) {
    let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).clamp(1, h.high());
    h.saturating_record(us);
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest seen.
    pub max: f64,
}

impl LatencySummary {
    /// Summarizes a histogram of microseconds (all zero when it is empty).
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| round3(us as f64 / 1000.0);
        LatencySummary {
            p50: ms(h.value_at_quantile(0.50)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The result of one run. The first fields are the schema shared with whereabouts-rs' load generator;
/// the rest are extras a comparison script may ignore.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `etcd-whereabouts-scheme`.
    pub system: String,
    /// Concurrent clients.
    pub clients: u32,
    /// Pools the clients are spread over.
    pub pools: u32,
    /// Operations that succeeded.
    pub ops_ok: u64,
    /// Operations that failed (exhausted pool, 100 lost races, etcd errors, cut at the hard stop).
    pub errors: u64,
    /// Compare-and-swap writes that lost the race (each one costs a re-read and a retry).
    pub conflicts: u64,
    /// Measured wall time in seconds.
    pub duration_s: f64,
    /// `ops_ok / duration_s`.
    pub throughput: f64,
    /// Latency of successful ops, retries included.
    pub latency_ms: LatencySummary,
    /// Attempts beyond the first (lost races, plus the extra round after creating a missing pool).
    pub retries: u64,
    /// Successful allocations.
    pub allocations_ok: u64,
    /// Successful releases.
    pub releases_ok: u64,
    /// Latency of successful allocations.
    pub allocate_latency_ms: LatencySummary,
    /// Latency of successful releases.
    pub release_latency_ms: LatencySummary,
    /// Addresses per pool.
    pub pool_size: u64,
    /// Allocations per pool written before the measured phase.
    pub prefill: u64,
    /// `allocate:release`.
    pub mix: String,
    /// IPv6 pools.
    pub ipv6: bool,
    /// Errors by kind.
    pub error_kinds: ErrorKinds,
}

/// Failed operations by cause.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ErrorKinds {
    /// The pool had no free address.
    pub exhausted: u64,
    /// 100 attempts all lost the race (whereabouts gives up then too).
    pub retries_exhausted: u64,
    /// gRPC errors or undecodable pool objects.
    pub etcd: u64,
    /// Over the per-operation budget (`--op-timeout`).
    pub timeout: u64,
    /// Still in flight at the hard stop (duration + grace).
    pub cut_at_hard_stop: u64,
}

impl ErrorKinds {
    /// Sum of all kinds.
    pub fn total(&self) -> u64 {
        self.exhausted + self.retries_exhausted + self.etcd + self.timeout + self.cut_at_hard_stop
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &ErrorKinds) {
        self.exhausted += other.exhausted;
        self.retries_exhausted += other.retries_exhausted;
        self.etcd += other.etcd;
        self.timeout += other.timeout;
        self.cut_at_hard_stop += other.cut_at_hard_stop;
    }
}

impl Report {
    /// Human-readable lines.
    pub fn to_text(&self) -> String {
        let l =
            |s: &LatencySummary| format!("p50 {} ms  p99 {} ms  p999 {} ms  max {} ms", s.p50, s.p99, s.p999, s.max);
        let e = &self.error_kinds;
        format!(
            "system      {}\n\
             setup       {} clients, {} pools of {} ({}), prefill {}/pool, mix {}\n\
             ops ok      {} in {:.2} s = {:.1} ops/s ({} allocations, {} releases)\n\
             latency     {}\n\
             allocate    {}\n\
             release     {}\n\
             conflicts   {} ({:.2} per ok op), retries {}\n\
             errors      {} (exhausted {}, retries exhausted {}, etcd {}, timeout {}, cut at hard stop {})\n",
            self.system,
            self.clients,
            self.pools,
            self.pool_size,
            if self.ipv6 { "IPv6" } else { "IPv4" },
            self.prefill,
            self.mix,
            self.ops_ok,
            self.duration_s,
            self.throughput,
            self.allocations_ok,
            self.releases_ok,
            l(&self.latency_ms),
            l(&self.allocate_latency_ms),
            l(&self.release_latency_ms),
            self.conflicts,
            if self.ops_ok == 0 { 0.0 } else { self.conflicts as f64 / self.ops_ok as f64 },
            self.retries,
            self.errors,
            e.exhausted,
            e.retries_exhausted,
            e.etcd,
            e.timeout,
            e.cut_at_hard_stop,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_distribution() {
        let mut h = new_histogram();
        // 1..=1000 ms: p50 ≈ 500 ms, p99 ≈ 990 ms, p999 ≈ 999 ms, max 1000 ms.
        for ms in 1..=1000u64 {
            record(&mut h, Duration::from_millis(ms));
        }
        let s = LatencySummary::from_histogram(&h);
        let close = |a: f64, b: f64| (a - b).abs() <= b * 0.002;
        assert!(close(s.p50, 500.0), "{s:?}");
        assert!(close(s.p99, 990.0), "{s:?}");
        assert!(close(s.p999, 999.0), "{s:?}");
        assert!(close(s.max, 1000.0), "{s:?}");
        assert!(s.p50 <= s.p99 && s.p99 <= s.p999 && s.p999 <= s.max);
    }

    #[test]
    fn empty_and_sub_microsecond_and_huge() {
        let h = new_histogram();
        assert_eq!(LatencySummary::from_histogram(&h), LatencySummary::default());
        let mut h = new_histogram();
        record(&mut h, Duration::from_nanos(10));
        record(&mut h, Duration::from_secs(3600));
        assert_eq!(h.len(), 2);
        let s = LatencySummary::from_histogram(&h);
        assert_eq!(s.p50, 0.001);
        assert!(s.max >= 599_000.0, "{s:?}");
    }

    #[test]
    fn json_has_the_shared_schema() {
        let r = Report {
            system: "etcd-whereabouts-scheme".into(),
            clients: 4,
            pools: 1,
            ops_ok: 10,
            errors: 0,
            conflicts: 3,
            duration_s: 2.0,
            throughput: 5.0,
            latency_ms: LatencySummary { p50: 1.0, p99: 2.0, p999: 3.0, max: 4.0 },
            retries: 3,
            allocations_ok: 5,
            releases_ok: 5,
            allocate_latency_ms: LatencySummary::default(),
            release_latency_ms: LatencySummary::default(),
            pool_size: 4096,
            prefill: 0,
            mix: "1:1".into(),
            ipv6: false,
            error_kinds: ErrorKinds::default(),
        };
        let v = serde_json::to_value(&r).unwrap();
        for key in ["system", "clients", "pools", "ops_ok", "errors", "conflicts", "duration_s", "throughput"] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        for key in ["p50", "p99", "p999", "max"] {
            assert!(v["latency_ms"][key].is_number(), "missing latency_ms.{key}");
        }
        assert_eq!(v["system"], "etcd-whereabouts-scheme");
        assert!(r.to_text().contains("5.0 ops/s"));
    }
}
