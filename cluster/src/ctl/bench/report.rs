//! Latency histograms and the report, in the JSON schema of `etcd-scheme-bench`
//! (`bench-reference/src/stats.rs`): `system`, `clients`, `pools`, `ops_ok`, `errors`,
//! `conflicts`, `duration_s`, `throughput`, `latency_ms.{p50,p99,p999,max}`, then extras.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies are recorded in microseconds, from 1 µs to 10 minutes, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Records one latency (saturating at the histogram's bounds).
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
        let ms = |us: u64| (us as f64).round() / 1000.0;
        LatencySummary {
            p50: ms(h.value_at_quantile(0.50)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// Failed operations by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ErrorKinds {
    /// RESOURCE_EXHAUSTED: the pool had no free address.
    pub exhausted: u64,
    /// UNAVAILABLE (no leader, forward failed, node down) and not retried or retries spent.
    pub unavailable: u64,
    /// Over the per-operation budget (`--op-timeout`), DEADLINE_EXCEEDED or CANCELLED.
    pub timeout: u64,
    /// Any other status (a bug: the bench only sends valid requests).
    pub other: u64,
    /// Still in flight at the hard stop (duration + grace).
    pub cut_at_hard_stop: u64,
}

impl ErrorKinds {
    /// Sum of all kinds.
    pub fn total(&self) -> u64 {
        self.exhausted + self.unavailable + self.timeout + self.other + self.cut_at_hard_stop
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, o: &ErrorKinds) {
        self.exhausted += o.exhausted;
        self.unavailable += o.unavailable;
        self.timeout += o.timeout;
        self.other += o.other;
        self.cut_at_hard_stop += o.cut_at_hard_stop;
    }
}

/// The result of one run. The first fields are the schema shared with `etcd-scheme-bench`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `whereabouts-rs`.
    pub system: String,
    /// Concurrent clients.
    pub clients: u32,
    /// Pools the clients are spread over.
    pub pools: u32,
    /// Operations that succeeded.
    pub ops_ok: u64,
    /// Operations that failed.
    pub errors: u64,
    /// Always 0: there is no compare-and-swap to lose (kept for the shared schema).
    pub conflicts: u64,
    /// Measured wall time in seconds.
    pub duration_s: f64,
    /// `ops_ok / duration_s`.
    pub throughput: f64,
    /// Latency of successful ops, retries included.
    pub latency_ms: LatencySummary,
    /// Attempts beyond the first (only with `--retry`).
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
    pub pool_size: String,
    /// Allocations per pool written before the measured phase.
    pub prefill: u64,
    /// `allocate:release`.
    pub mix: String,
    /// IPv6 pools.
    pub ipv6: bool,
    /// Errors by kind.
    pub error_kinds: ErrorKinds,
    /// The network name the pools were created under.
    pub network: String,
    /// The endpoints the clients were spread over.
    pub endpoints: Vec<String>,
    /// Seconds the (unmeasured) prefill took.
    pub prefill_s: f64,
}

impl Report {
    /// Human-readable lines (the same layout as `etcd-scheme-bench`).
    pub fn to_text(&self) -> String {
        let l =
            |s: &LatencySummary| format!("p50 {} ms  p99 {} ms  p999 {} ms  max {} ms", s.p50, s.p99, s.p999, s.max);
        let e = &self.error_kinds;
        format!(
            "system      {}\n\
             setup       {} clients, {} pools of {} ({}), prefill {}/pool in {:.1} s, mix {}, network {:?}\n\
             ops ok      {} in {:.2} s = {:.1} ops/s ({} allocations, {} releases)\n\
             latency     {}\n\
             allocate    {}\n\
             release     {}\n\
             retries     {}\n\
             errors      {} (exhausted {}, unavailable {}, timeout {}, other {}, cut at hard stop {})\n",
            self.system,
            self.clients,
            self.pools,
            self.pool_size,
            if self.ipv6 { "IPv6" } else { "IPv4" },
            self.prefill,
            self.prefill_s,
            self.mix,
            self.network,
            self.ops_ok,
            self.duration_s,
            self.throughput,
            self.allocations_ok,
            self.releases_ok,
            l(&self.latency_ms),
            l(&self.allocate_latency_ms),
            l(&self.release_latency_ms),
            self.retries,
            self.errors,
            e.exhausted,
            e.unavailable,
            e.timeout,
            e.other,
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
        for ms in 1..=1000u64 {
            record(&mut h, Duration::from_millis(ms));
        }
        let s = LatencySummary::from_histogram(&h);
        let close = |a: f64, b: f64| (a - b).abs() <= b * 0.002;
        assert!(close(s.p50, 500.0) && close(s.p99, 990.0) && close(s.p999, 999.0) && close(s.max, 1000.0), "{s:?}");
        assert_eq!(LatencySummary::from_histogram(&new_histogram()), LatencySummary::default());
    }

    #[test]
    fn json_has_the_schema_shared_with_the_etcd_bench() {
        let r = Report {
            system: "whereabouts-rs".into(),
            clients: 4,
            pools: 1,
            ops_ok: 10,
            errors: 0,
            conflicts: 0,
            duration_s: 2.0,
            throughput: 5.0,
            latency_ms: LatencySummary { p50: 1.0, p99: 2.0, p999: 3.0, max: 4.0 },
            retries: 0,
            allocations_ok: 5,
            releases_ok: 5,
            allocate_latency_ms: LatencySummary::default(),
            release_latency_ms: LatencySummary::default(),
            pool_size: "4096".into(),
            prefill: 0,
            mix: "1:1".into(),
            ipv6: false,
            error_kinds: ErrorKinds::default(),
            network: "bench".into(),
            endpoints: vec!["127.0.0.1:7000".into()],
            prefill_s: 0.0,
        };
        let v = serde_json::to_value(&r).unwrap();
        for key in ["system", "clients", "pools", "ops_ok", "errors", "conflicts", "duration_s", "throughput"] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        for key in ["p50", "p99", "p999", "max"] {
            assert!(v["latency_ms"][key].is_number(), "missing latency_ms.{key}");
        }
        assert_eq!(v["system"], "whereabouts-rs");
        assert!(r.to_text().contains("5.0 ops/s"));
    }
}
