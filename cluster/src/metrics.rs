//! The node's Prometheus registry. Call counters and latency histograms are updated by the
//! handlers; the Raft and pool gauges are set from a [`Live`] view that the caller hands to
//! [`Metrics::render`] at every scrape. Other parts of the node (the Kubernetes exporter and
//! reconciler) add their metrics through [`Collector`] when the registry is built: the registry
//! never reaches into them or into the service.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use ipam::PoolUsage;
use raft_store::types::{typ, NodeId};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    rpc: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabel {
    rpc: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    network: String,
    cidr: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

/// Something that adds its own metrics to the node's registry (under the `whereabouts_` prefix).
pub trait Collector {
    /// Registers every metric of `self` into `registry`.
    fn register(&self, registry: &mut Registry);
}

/// What the gauges show, read by the caller from live state just before a scrape.
pub struct Live<'a> {
    /// This node's id.
    pub id: NodeId,
    /// openraft's view of this node.
    pub raft: &'a typ::RaftMetrics,
    /// Usage of every pool in the state machine.
    pub pools: Vec<PoolUsage>,
}

/// Every metric of a node.
pub struct Metrics {
    registry: Registry,
    /// Addresses handed out.
    pub allocations: Counter,
    /// Addresses freed.
    pub releases: Counter,
    /// DELs the plugin could not deliver when they ran (the cluster was unreachable), delivered
    /// later from the plugin's node.
    pub deferred_releases: Counter,
    calls: Family<CallLabels, Counter>,
    latency: Family<RpcLabel, Histogram, fn() -> Histogram>,
    term: Gauge,
    leader: Gauge,
    is_leader: Gauge,
    last_log_index: Gauge,
    applied_index: Gauge,
    snapshot_index: Gauge,
    pool_usable: Family<PoolLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pool_used: Family<PoolLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new(&[])
    }
}

impl Metrics {
    /// The node's metrics plus those of `collectors`.
    pub fn new(collectors: &[&dyn Collector]) -> Metrics {
        let mut registry = Registry::with_prefix("whereabouts");
        let m = Metrics {
            allocations: Counter::default(),
            releases: Counter::default(),
            deferred_releases: Counter::default(),
            calls: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            term: Gauge::default(),
            leader: Gauge::default(),
            is_leader: Gauge::default(),
            last_log_index: Gauge::default(),
            applied_index: Gauge::default(),
            snapshot_index: Gauge::default(),
            pool_usable: Family::default(),
            pool_used: Family::default(),
            registry: Registry::default(),
        };
        for c in collectors {
            c.register(&mut registry);
        }
        registry.register("allocations", "Addresses handed out", m.allocations.clone());
        registry.register("releases", "Addresses freed", m.releases.clone());
        registry.register(
            "deferred_releases",
            "DELs that could not reach the cluster when they ran, delivered later by the plugin",
            m.deferred_releases.clone(),
        );
        registry.register("calls", "IPAM calls by RPC and result", m.calls.clone());
        registry.register("call_duration_seconds", "IPAM call latency on this node", m.latency.clone());
        registry.register("raft_term", "Current Raft term", m.term.clone());
        registry.register("raft_leader", "Id of the current leader (-1: none)", m.leader.clone());
        registry.register("raft_is_leader", "1 when this node leads", m.is_leader.clone());
        registry.register("raft_last_log_index", "Last log index on this node", m.last_log_index.clone());
        registry.register("raft_applied_index", "Last log index applied to the state machine", m.applied_index.clone());
        registry.register("raft_snapshot_index", "Last log index covered by the snapshot", m.snapshot_index.clone());
        registry.register(
            "pool_usable",
            "Addresses the allocator may hand out in the pool's CIDR",
            m.pool_usable.clone(),
        );
        registry.register("pool_used", "Addresses held in the pool", m.pool_used.clone());
        Metrics { registry, ..m }
    }

    /// Counts one call of `rpc` that started at `started`.
    pub fn observe(&self, rpc: &'static str, started: std::time::Instant, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.calls.get_or_create(&CallLabels { rpc: rpc.into(), result: result.into() }).inc();
        self.latency.get_or_create(&RpcLabel { rpc: rpc.into() }).observe(started.elapsed().as_secs_f64());
    }

    /// Sets the gauges from `live` and encodes everything in the OpenMetrics text format.
    pub fn render(&self, live: Live<'_>) -> String {
        let raft = live.raft;
        self.term.set(raft.current_term as i64);
        self.leader.set(raft.current_leader.map_or(-1, |l| l as i64));
        self.is_leader.set(i64::from(raft.current_leader == Some(live.id)));
        self.last_log_index.set(raft.last_log_index.unwrap_or(0) as i64);
        self.applied_index.set(raft.last_applied.map_or(0, |l| l.index) as i64);
        self.snapshot_index.set(raft.snapshot.map_or(0, |l| l.index) as i64);
        for pool in live.pools {
            let labels = PoolLabels { network: pool.network, cidr: pool.cidr.to_string() };
            self.pool_usable.get_or_create(&labels).set(pool.usable as f64);
            self.pool_used.get_or_create(&labels).set(pool.used as i64);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("encoding into a String");
        out
    }
}
