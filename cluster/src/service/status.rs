//! `Status`: who leads, the term, members, how far this node applied the log, pool usage. The
//! default answer comes from the leader after a linearizable read; `local` answers from this
//! node alone, which still works when the cluster has no quorum.

use proto::ipam as pb;
use raft_store::types::typ;
use tonic::{Request, Response, Status};

use super::call::Call;
use super::context::Context;
use crate::convert::api as conv;

/// The members of `metrics`' membership, voters first, by id.
pub fn members(metrics: &typ::RaftMetrics) -> Vec<pb::Member> {
    let membership = metrics.membership_config.membership();
    let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
    let mut out: Vec<pb::Member> = membership
        .nodes()
        .map(|(id, node)| pb::Member { id: *id, addr: node.addr.clone(), voter: voters.contains(id) })
        .collect();
    out.sort_by_key(|m| (!m.voter, m.id));
    out
}

fn report(ctx: &Context) -> pb::StatusResponse {
    let metrics = ctx.raft.metrics().borrow().clone();
    let leader_addr = ctx.leader().map(|(_, a)| a).unwrap_or_default();
    let (pools, allocations) = ctx.with_machine(|m| (m.state.pool_usage(), m.state.allocation_count() as u64));
    pb::StatusResponse {
        node_id: ctx.id,
        leader_id: metrics.current_leader,
        leader_addr,
        term: metrics.current_term,
        members: members(&metrics),
        applied_index: metrics.last_applied.map_or(0, |l| l.index),
        last_log_index: metrics.last_log_index.unwrap_or(0),
        pools: pools.into_iter().map(conv::pool_usage).collect(),
        allocations,
        role: format!("{:?}", metrics.state),
        snapshot_index: metrics.snapshot.map_or(0, |s| s.index),
    }
}

/// Serves `Status`.
pub async fn handle(ctx: &Context, req: Request<pb::StatusRequest>) -> Result<Response<pb::StatusResponse>, Status> {
    let call = Call::new(ctx, "status", &req);
    call.require_authenticated()?;
    if req.get_ref().local {
        return call.ok(report(ctx));
    }
    if let Some(leader) = call.route()? {
        return call.forward(&leader, req.into_inner(), |mut c, r| async move { c.status(r).await }).await;
    }
    call.read(|_| ()).await?;
    call.ok(report(ctx))
}
