//! The read calls — `Check`, `ListAllocations`, `WhoHas` — all linearizable: served by the leader
//! after it confirmed its leadership with a quorum, never from a follower's possibly stale state.

use proto::ipam as pb;
use raft_store::domain::Owner;
use tonic::{Request, Response, Status};

use super::call::Call;
use super::context::Context;
use crate::convert::ipam as conv;

/// Default and largest page of `ListAllocations`.
const DEFAULT_PAGE: usize = 10_000;
const MAX_PAGE: usize = 100_000;

/// Serves `Check`.
pub async fn check(ctx: &Context, req: Request<pb::CheckRequest>) -> Result<Response<pb::CheckResponse>, Status> {
    let call = Call::new(ctx, "check", &req);
    let scope = call.node_scope()?;
    if let Some(leader) = call.route()? {
        return call.forward(&leader, req.into_inner(), |mut c, r| async move { c.check(r).await }).await;
    }
    let msg = req.into_inner();
    let owner = Owner { container_id: msg.container_id, ifname: msg.ifname };
    let mut held = call.read(|m| m.state.owner_addresses(&msg.network_name, &owner)).await?;
    if let Some(node) = scope {
        held.retain(|v| v.attachment.node.as_deref() == Some(node.as_str()));
    }
    call.ok(pb::CheckResponse { allocations: held.into_iter().map(conv::allocation).collect() })
}

/// Serves `ListAllocations`, one page at a time.
pub async fn list(
    ctx: &Context,
    req: Request<pb::ListAllocationsRequest>,
) -> Result<Response<pb::ListAllocationsResponse>, Status> {
    let call = Call::new(ctx, "list_allocations", &req);
    call.require_authenticated()?;
    let local = req.get_ref().local;
    if !local {
        if let Some(leader) = call.route()? {
            return call
                .forward(&leader, req.into_inner(), |mut c, r| async move { c.list_allocations(r).await })
                .await;
        }
    }
    let msg = req.into_inner();
    let limit = match msg.limit as usize {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    };
    let one_page = |m: &raft_store::store::Machine| {
        let all = m.state.allocations(msg.network_name.as_deref());
        let start = if msg.after.is_empty() { 0 } else { all.partition_point(|v| cursor(v) <= msg.after) };
        let page: Vec<_> = all.iter().skip(start).take(limit).cloned().collect();
        let more = start + page.len() < all.len();
        (page, more)
    };
    let (page, more) = if local { ctx.with_machine(one_page) } else { call.read(one_page).await? };
    let next = if more { page.last().map(cursor).unwrap_or_default() } else { String::new() };
    call.ok(pb::ListAllocationsResponse { allocations: page.into_iter().map(conv::allocation).collect(), next })
}

/// A position in the listing order (network name, pool, address) as a string that sorts the
/// same way: fixed-width hex keeps numeric order, and names never hold control characters.
fn cursor(v: &raft_store::domain::AllocationView) -> String {
    fn addr(ip: std::net::IpAddr) -> String {
        match ip {
            std::net::IpAddr::V4(a) => format!("4{:08x}", u32::from(a)),
            std::net::IpAddr::V6(a) => format!("6{:032x}", u128::from(a)),
        }
    }
    format!("{}\u{1}{}{:03}\u{1}{}", v.network, addr(v.pool.network()), v.pool.prefix_len(), addr(v.ip))
}

/// Serves `WhoHas`.
pub async fn who_has(ctx: &Context, req: Request<pb::WhoHasRequest>) -> Result<Response<pb::WhoHasResponse>, Status> {
    let call = Call::new(ctx, "who_has", &req);
    call.require_authenticated()?;
    if let Some(leader) = call.route()? {
        return call.forward(&leader, req.into_inner(), |mut c, r| async move { c.who_has(r).await }).await;
    }
    let msg = req.into_inner();
    let ip = conv::ip(&msg.ip, "ip").map_err(|e| call.fail(e))?;
    let (holders, history) = call.read(|m| (m.state.who_has(&ip), m.state.history_of(&ip))).await?;
    call.ok(pb::WhoHasResponse {
        holders: holders.into_iter().map(conv::allocation).collect(),
        history: history.into_iter().map(conv::history).collect(),
    })
}
