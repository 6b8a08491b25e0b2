//! The node's HTTP server: `/metrics` (Prometheus), `/healthz` (the process answers) and `/readyz`
//! (this node can serve a write: a leader is known, this node is a member, and, if it leads, a
//! quorum answered within the leader lease), beside the gRPC server in [`super`].

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use raft_store::types::display_id;

use crate::leader_lease::Leadership;
use crate::metrics::Live;
use crate::service::Context;

/// The metrics of the node behind `ctx`, with gauges read from its live state.
pub fn render_metrics(ctx: &Context) -> String {
    let raft = ctx.raft.metrics().borrow().clone();
    let pools = ctx.with_machine(|m| m.state.pool_usage());
    ctx.metrics.render(Live { id: ctx.id, raft: &raft, pools })
}

async fn metrics(State(ctx): State<Arc<Context>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], render_metrics(&ctx))
}

/// Whether the node behind `ctx` can serve a write (`/readyz`): `Ok` or `Err` with the reason.
pub fn readiness(ctx: &Context) -> Result<String, String> {
    let raft = ctx.raft.metrics().borrow().clone();
    let member = raft.membership_config.membership().get_node(&ctx.id).is_some();
    if let Leadership::Isolated { silent_ms } = ctx.lease.judge(ctx.id, &raft) {
        return Err(format!("not ready: this node leads but no quorum answered for {silent_ms} ms"));
    }
    match (raft.current_leader, member) {
        (Some(leader), true) => Ok(format!("ready: leader is node {}", display_id(leader))),
        (None, _) => Err("not ready: no leader known".to_string()),
        (Some(_), false) => Err("not ready: not a member of the cluster yet".to_string()),
    }
}

async fn readyz(State(ctx): State<Arc<Context>>) -> impl IntoResponse {
    match readiness(&ctx) {
        Ok(why) => (StatusCode::OK, format!("{why}\n")),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
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

/// Binds the HTTP listener (separately, so a bad address fails start-up with a clear error).
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
