//! Prometheus metrics and the small HTTP server that serves them with `/healthz` and `/readyz`.
//! Raft and pool gauges are refreshed from live state at every scrape; call counters and latency
//! histograms are updated by the handlers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::ipam::Context;

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

/// Every metric of a node.
pub struct Metrics {
    registry: Registry,
    /// Addresses handed out.
    pub allocations: Counter,
    /// Addresses freed.
    pub releases: Counter,
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
    /// Exporter and reconciler metrics (feature `kubernetes`).
    #[cfg(feature = "kubernetes")]
    pub kube: Arc<crate::kube::KubeMetrics>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("whereabouts");
        let m = Metrics {
            allocations: Counter::default(),
            releases: Counter::default(),
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
            #[cfg(feature = "kubernetes")]
            kube: Arc::default(),
            registry: Registry::default(),
        };
        #[cfg(feature = "kubernetes")]
        m.kube.register(&mut registry);
        registry.register("allocations", "Addresses handed out", m.allocations.clone());
        registry.register("releases", "Addresses freed", m.releases.clone());
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
}

impl Metrics {
    /// Counts one call of `rpc` that started at `started`.
    pub fn observe(&self, rpc: &'static str, started: Instant, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.calls.get_or_create(&CallLabels { rpc: rpc.into(), result: result.into() }).inc();
        self.latency.get_or_create(&RpcLabel { rpc: rpc.into() }).observe(started.elapsed().as_secs_f64());
    }

    /// Refreshes the gauges from the node's state and encodes everything in the text format.
    pub fn render(&self, ctx: &Context) -> String {
        let raft = ctx.raft.metrics().borrow().clone();
        self.term.set(raft.current_term as i64);
        self.leader.set(raft.current_leader.map_or(-1, |l| l as i64));
        self.is_leader.set(i64::from(raft.current_leader == Some(ctx.id)));
        self.last_log_index.set(raft.last_log_index.unwrap_or(0) as i64);
        self.applied_index.set(raft.last_applied.map_or(0, |l| l.index) as i64);
        self.snapshot_index.set(raft.snapshot.map_or(0, |l| l.index) as i64);
        for pool in ctx.with_machine(|m| m.state.pool_usage()) {
            let labels = PoolLabels { network: pool.network, cidr: pool.cidr.to_string() };
            self.pool_usable.get_or_create(&labels).set(pool.usable as f64);
            self.pool_used.get_or_create(&labels).set(pool.used as i64);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("encoding into a String");
        out
    }
}

async fn metrics(State(ctx): State<Arc<Context>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], ctx.metrics.render(&ctx))
}

async fn readyz(State(ctx): State<Arc<Context>>) -> impl IntoResponse {
    let raft = ctx.raft.metrics().borrow().clone();
    let member = raft.membership_config.membership().get_node(&ctx.id).is_some();
    match (raft.current_leader, member) {
        (Some(leader), true) => (StatusCode::OK, format!("ready: leader is node {leader}\n")),
        (None, _) => (StatusCode::SERVICE_UNAVAILABLE, "not ready: no leader known\n".to_string()),
        (Some(_), false) => {
            (StatusCode::SERVICE_UNAVAILABLE, "not ready: not a member of the cluster yet\n".to_string())
        }
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(ctx);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// Binds the metrics listener (separately, so a bad address fails start-up with a clear error).
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
