//! Latency histograms: how both load generators record an operation's latency and summarize
//! a run's (microseconds recorded, milliseconds reported).

use std::time::Duration;

use hdrhistogram::{AdditionError, Histogram};
use serde::Serialize;

use crate::mix::OpKind;

/// Lowest recordable latency, µs (anything faster is recorded as 1 µs).
const LOWEST_US: u64 = 1;
/// Highest recordable latency, µs: 10 minutes (anything slower is recorded as that).
const HIGHEST_US: u64 = 600_000_000;
/// Significant decimal digits kept.
const SIGNIFICANT_DIGITS: u8 = 3;

/// A histogram of latencies in microseconds, from 1 µs to 10 minutes, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS).expect("valid histogram bounds")
}

/// Records one latency, clamped to the histogram's bounds (so recording never fails).
pub fn record(h: &mut Histogram<u64>, latency: Duration) {
    let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).clamp(LOWEST_US, h.high());
    h.saturating_record(us);
}

/// Latency percentiles in milliseconds, as both reports print them.
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
        let ms = |us: u64| us as f64 / 1000.0;
        LatencySummary {
            p50: ms(h.value_at_quantile(0.50)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// The latencies of one client's (or a whole run's) successful operations, by kind.
#[derive(Debug, Clone)]
pub struct Latencies {
    /// Successful allocations.
    pub allocate: Histogram<u64>,
    /// Successful releases.
    pub release: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies { allocate: new_histogram(), release: new_histogram() }
    }
}

impl Latencies {
    /// Records a successful operation of `kind` that took `latency`.
    pub fn record(&mut self, kind: OpKind, latency: Duration) {
        match kind {
            OpKind::Allocate => record(&mut self.allocate, latency),
            OpKind::Release => record(&mut self.release, latency),
        }
    }

    /// Adds `other`'s operations to these (another client's).
    pub fn merge(&mut self, other: &Latencies) -> Result<(), AdditionError> {
        self.allocate.add(&other.allocate)?;
        self.release.add(&other.release)
    }

    /// Allocations and releases in one histogram.
    pub fn all(&self) -> Result<Histogram<u64>, AdditionError> {
        let mut all = self.allocate.clone();
        all.add(&self.release)?;
        Ok(all)
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
        assert_eq!(LatencySummary::from_histogram(&new_histogram()), LatencySummary::default());
        let mut h = new_histogram();
        record(&mut h, Duration::from_nanos(10));
        record(&mut h, Duration::from_secs(3600));
        assert_eq!(h.len(), 2);
        let s = LatencySummary::from_histogram(&h);
        assert_eq!(s.p50, 0.001);
        assert!(s.max >= 599_000.0, "{s:?}");
    }

    #[test]
    fn milliseconds_are_the_recorded_microseconds_over_a_thousand() {
        // Values below 2048 µs are exact at 3 significant digits: the summary shows them as they were.
        let mut h = new_histogram();
        record(&mut h, Duration::from_micros(1234));
        assert_eq!(
            LatencySummary::from_histogram(&h),
            LatencySummary { p50: 1.234, p99: 1.234, p999: 1.234, max: 1.234 }
        );
    }

    #[test]
    fn latencies_split_by_kind_and_merge() {
        let mut a = Latencies::default();
        // Below 2048 µs every microsecond is its own bucket: the figures are exact.
        a.record(OpKind::Allocate, Duration::from_micros(1000));
        a.record(OpKind::Allocate, Duration::from_micros(1500));
        let mut b = Latencies::default();
        b.record(OpKind::Release, Duration::from_micros(2000));
        a.merge(&b).unwrap();
        assert_eq!((a.allocate.len(), a.release.len()), (2, 1));
        let all = a.all().unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(LatencySummary::from_histogram(&all).max, 2.0);
        // `all` is a copy: the per-kind histograms are unchanged.
        assert_eq!(a.allocate.len(), 2);
    }
}
