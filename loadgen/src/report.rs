//! The report of one run, in the schema both load generators print: `system`, `clients`,
//! `pools`, `ops_ok`, `errors`, `conflicts`, `duration_s`, `throughput`,
//! `latency_ms.{p50,p99,p999,max}`, then `retries`, per-kind counts and latencies, the setup,
//! `error_kinds` and each system's extra fields ([`Extras`]). `bench-report` reads both.

use std::fmt;
use std::time::Duration;

use hdrhistogram::AdditionError;
use serde::{Serialize, Serializer};

use crate::error_kinds::{ErrorKinds, FailureKind};
use crate::latency::{Latencies, LatencySummary};
use crate::mix::Mix;

/// Addresses per pool as a report writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolSize {
    /// A JSON number (`etcd-scheme-bench`, whose `--pool-size` is a u64).
    Number(u64),
    /// A JSON string of the decimal value (`whereabouts-ctl bench`: its pools reach 2^64, which
    /// not every JSON reader holds exactly as a number).
    Decimal(u128),
}

impl fmt::Display for PoolSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolSize::Number(n) => n.fmt(f),
            PoolSize::Decimal(n) => n.fmt(f),
        }
    }
}

impl Serialize for PoolSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PoolSize::Number(n) => s.serialize_u64(*n),
            PoolSize::Decimal(n) => s.collect_str(n),
        }
    }
}

/// What a run was asked to do: the setup fields of its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    /// The system measured (`etcd-whereabouts-scheme`, `whereabouts-rs`): how `bench-report` tells them apart.
    pub system: &'static str,
    /// Concurrent clients.
    pub clients: u32,
    /// Pools the clients are spread over.
    pub pools: u32,
    /// Addresses per pool.
    pub pool_size: PoolSize,
    /// Allocations per pool made before the measured phase.
    pub prefill: u64,
    /// `allocate:release`.
    pub mix: Mix,
    /// IPv6 pools.
    pub ipv6: bool,
}

/// What a run measured: its figures that do not come from the setup.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured<K> {
    /// Wall time from the first operation started to the last client done.
    pub elapsed: Duration,
    /// Successful allocations.
    pub allocations_ok: u64,
    /// Successful releases.
    pub releases_ok: u64,
    /// Latency of all successful operations.
    pub latency: LatencySummary,
    /// Latency of successful allocations.
    pub allocate_latency: LatencySummary,
    /// Latency of successful releases.
    pub release_latency: LatencySummary,
    /// Compare-and-swaps that lost a race.
    pub conflicts: u64,
    /// Attempts beyond the first.
    pub retries: u64,
    /// Failed operations by cause.
    pub errors: ErrorKinds<K>,
}

impl<K: FailureKind> Measured<K> {
    /// Summarizes the merged latencies of a run.
    pub fn new(
        latencies: &Latencies,
        elapsed: Duration,
        errors: ErrorKinds<K>,
        conflicts: u64,
        retries: u64,
    ) -> Result<Measured<K>, AdditionError> {
        Ok(Measured {
            elapsed,
            allocations_ok: latencies.allocate.len(),
            releases_ok: latencies.release.len(),
            latency: LatencySummary::from_histogram(&latencies.all()?),
            allocate_latency: LatencySummary::from_histogram(&latencies.allocate),
            release_latency: LatencySummary::from_histogram(&latencies.release),
            conflicts,
            retries,
            errors,
        })
    }
}

/// What a load generator adds to the shared report: its own fields (serialized after the shared
/// ones) and its own words on the text report's setup and retries lines.
pub trait Extras: Serialize {
    /// Said right after `prefill N/pool` on the setup line (e.g. how long the prefill took);
    /// nothing by default.
    fn prefill_note(&self) -> String {
        String::new()
    }
    /// Said at the end of the setup line; nothing by default.
    fn setup_note(&self) -> String {
        String::new()
    }
    /// Whether the system's writes can lose compare-and-swap races: the text report then has a
    /// `conflicts` line (with the retries), otherwise a `retries` line.
    fn has_conflicts(&self) -> bool;
}

/// The result of one run. The fields up to `latency_ms` are the schema `bench-report` compares;
/// the rest are extras a comparison may ignore.
#[derive(Debug, Clone, Serialize)]
#[serde(bound(serialize = "K: FailureKind, X: Serialize"))]
pub struct Report<K, X> {
    /// The system measured.
    pub system: String,
    /// Concurrent clients.
    pub clients: u32,
    /// Pools the clients are spread over.
    pub pools: u32,
    /// Operations that succeeded.
    pub ops_ok: u64,
    /// Operations that failed.
    pub errors: u64,
    /// Compare-and-swap writes that lost the race (0 where there is no compare-and-swap).
    pub conflicts: u64,
    /// Measured wall time in seconds (to the millisecond).
    pub duration_s: f64,
    /// `ops_ok / duration_s`, to a tenth.
    pub throughput: f64,
    /// Latency of successful ops, retries included.
    pub latency_ms: LatencySummary,
    /// Attempts beyond the first.
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
    pub pool_size: PoolSize,
    /// Allocations per pool made before the measured phase.
    pub prefill: u64,
    /// `allocate:release`.
    pub mix: Mix,
    /// IPv6 pools.
    pub ipv6: bool,
    /// Errors by kind.
    pub error_kinds: ErrorKinds<K>,
    /// The system's own fields.
    #[serde(flatten)]
    pub extras: X,
}

impl<K: FailureKind, X: Extras> Report<K, X> {
    /// The report of a run set up as `setup` that measured `m`.
    pub fn new(setup: Setup, m: Measured<K>, extras: X) -> Report<K, X> {
        let elapsed = m.elapsed.as_secs_f64();
        let ops_ok = m.allocations_ok + m.releases_ok;
        Report {
            system: setup.system.into(),
            clients: setup.clients,
            pools: setup.pools,
            ops_ok,
            errors: m.errors.total(),
            conflicts: m.conflicts,
            duration_s: (elapsed * 1000.0).round() / 1000.0,
            throughput: if elapsed > 0.0 { (ops_ok as f64 / elapsed * 10.0).round() / 10.0 } else { 0.0 },
            latency_ms: m.latency,
            retries: m.retries,
            allocations_ok: m.allocations_ok,
            releases_ok: m.releases_ok,
            allocate_latency_ms: m.allocate_latency,
            release_latency_ms: m.release_latency,
            pool_size: setup.pool_size,
            prefill: setup.prefill,
            mix: setup.mix,
            ipv6: setup.ipv6,
            error_kinds: m.errors,
            extras,
        }
    }

    /// Human-readable lines (`--output text` / `-o table`).
    pub fn to_text(&self) -> String {
        let l =
            |s: &LatencySummary| format!("p50 {} ms  p99 {} ms  p999 {} ms  max {} ms", s.p50, s.p99, s.p999, s.max);
        let races = if self.extras.has_conflicts() {
            let per_op = if self.ops_ok == 0 { 0.0 } else { self.conflicts as f64 / self.ops_ok as f64 };
            format!("conflicts   {} ({per_op:.2} per ok op), retries {}", self.conflicts, self.retries)
        } else {
            format!("retries     {}", self.retries)
        };
        format!(
            "system      {}\n\
             setup       {} clients, {} pools of {} ({}), prefill {}/pool{}, mix {}{}\n\
             ops ok      {} in {:.2} s = {:.1} ops/s ({} allocations, {} releases)\n\
             latency     {}\n\
             allocate    {}\n\
             release     {}\n\
             {races}\n\
             errors      {} ({})\n",
            self.system,
            self.clients,
            self.pools,
            self.pool_size,
            if self.ipv6 { "IPv6" } else { "IPv4" },
            self.prefill,
            self.extras.prefill_note(),
            self.mix,
            self.extras.setup_note(),
            self.ops_ok,
            self.duration_s,
            self.throughput,
            self.allocations_ok,
            self.releases_ok,
            l(&self.latency_ms),
            l(&self.allocate_latency_ms),
            l(&self.release_latency_ms),
            self.errors,
            self.error_kinds.breakdown(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_kinds::tests::Kind;
    use crate::mix::OpKind;

    #[derive(Debug, Clone, Serialize)]
    struct NoExtras {}

    impl Extras for NoExtras {
        fn has_conflicts(&self) -> bool {
            true
        }
    }

    #[derive(Debug, Clone, Serialize)]
    struct Named {
        network: String,
    }

    impl Extras for Named {
        fn prefill_note(&self) -> String {
            " in 0.5 s".into()
        }
        fn setup_note(&self) -> String {
            format!(", network {:?}", self.network)
        }
        fn has_conflicts(&self) -> bool {
            false
        }
    }

    fn measured() -> Measured<Kind> {
        // Tenths of a millisecond below 2048 µs, where the histogram is exact.
        let mut lat = Latencies::default();
        for us in [100, 200, 300, 400, 500, 600] {
            lat.record(OpKind::Allocate, Duration::from_micros(us));
        }
        for us in [700, 800, 900, 1000] {
            lat.record(OpKind::Release, Duration::from_micros(us));
        }
        let mut errors = ErrorKinds::default();
        errors.count(Kind::Exhausted);
        Measured::new(&lat, Duration::from_millis(2000), errors, 3, 4).unwrap()
    }

    fn setup() -> Setup {
        Setup {
            system: "etcd-whereabouts-scheme",
            clients: 4,
            pools: 1,
            pool_size: PoolSize::Number(4096),
            prefill: 0,
            mix: Mix::new(1, 1).unwrap(),
            ipv6: false,
        }
    }

    #[test]
    fn figures_come_from_the_latencies() {
        let r = Report::new(setup(), measured(), NoExtras {});
        assert_eq!((r.ops_ok, r.allocations_ok, r.releases_ok, r.errors), (10, 6, 4, 1));
        assert_eq!((r.duration_s, r.throughput), (2.0, 5.0));
        assert_eq!((r.conflicts, r.retries), (3, 4));
        assert_eq!(r.latency_ms.max, 1.0);
        assert_eq!(r.allocate_latency_ms.max, 0.6);
        assert_eq!(r.release_latency_ms.p50, 0.8);
    }

    #[test]
    fn throughput_and_duration_are_rounded_and_zero_time_gives_zero() {
        let mut m = measured();
        m.elapsed = Duration::from_micros(3_000_400);
        let r = Report::new(setup(), m.clone(), NoExtras {});
        assert_eq!((r.duration_s, r.throughput), (3.0, 3.3));
        m.elapsed = Duration::ZERO;
        assert_eq!(Report::new(setup(), m, NoExtras {}).throughput, 0.0);
    }

    #[test]
    fn json_has_the_shared_schema_in_order_then_the_extras() {
        let mut s = setup();
        s.pool_size = PoolSize::Decimal(1 << 64);
        s.system = "whereabouts-rs";
        let json = serde_json::to_string(&Report::new(s, measured(), Named { network: "n".into() })).unwrap();
        let keys = [
            "system",
            "clients",
            "pools",
            "ops_ok",
            "errors",
            "conflicts",
            "duration_s",
            "throughput",
            "latency_ms",
            "retries",
            "allocations_ok",
            "releases_ok",
            "allocate_latency_ms",
            "release_latency_ms",
            "pool_size",
            "prefill",
            "mix",
            "ipv6",
            "error_kinds",
            "network",
        ];
        let at: Vec<usize> = keys.iter().map(|k| json.find(&format!("\"{k}\":")).expect(k)).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{json}");
        assert!(
            json.starts_with(r#"{"system":"whereabouts-rs","clients":4,"pools":1,"ops_ok":10,"errors":1,"#),
            "{json}"
        );
        assert!(json.contains(r#""latency_ms":{"p50":"#), "{json}");
        assert!(json.contains(r#""pool_size":"18446744073709551616","prefill":0,"mix":"1:1","ipv6":false"#), "{json}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["error_kinds"]["exhausted"], 1);
        assert_eq!(v["network"], "n");
        let plain = serde_json::to_value(Report::new(setup(), measured(), NoExtras {})).unwrap();
        assert_eq!(plain["pool_size"], 4096);
        assert_eq!(plain.as_object().unwrap().len(), 19, "no extras, no extra keys");
    }

    #[test]
    fn text_has_the_systems_words() {
        let etcd = Report::new(setup(), measured(), NoExtras {}).to_text();
        let lines: Vec<&str> = etcd.lines().collect();
        assert_eq!(lines[0], "system      etcd-whereabouts-scheme");
        assert_eq!(lines[1], "setup       4 clients, 1 pools of 4096 (IPv4), prefill 0/pool, mix 1:1");
        assert_eq!(lines[2], "ops ok      10 in 2.00 s = 5.0 ops/s (6 allocations, 4 releases)");
        assert_eq!(lines[6], "conflicts   3 (0.30 per ok op), retries 4");
        assert_eq!(lines[7], "errors      1 (exhausted 1, retries exhausted 0, cut at hard stop 0)");
        let wrs = Report::new(setup(), measured(), Named { network: "bench".into() }).to_text();
        let lines: Vec<&str> = wrs.lines().collect();
        assert_eq!(
            lines[1],
            "setup       4 clients, 1 pools of 4096 (IPv4), prefill 0/pool in 0.5 s, mix 1:1, network \"bench\""
        );
        assert_eq!(lines[6], "retries     4");
        assert!(lines[3].starts_with("latency     p50 "), "{wrs}");
        assert_eq!(lines.len(), 8);
    }
}
