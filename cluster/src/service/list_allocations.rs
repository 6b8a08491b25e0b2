//! `ListAllocations`: every allocation, one page at a time. Linearizable: served by the leader after it confirmed its leadership with a quorum, never
//! from a follower's possibly stale state. With `local`, the node's own
//! state (for comparing nodes).

use proto::ipam as pb;
use tonic::{Request, Response, Status};

use super::call::Call;
use super::context::Context;
use crate::convert::api as conv;

/// Default and largest page of `ListAllocations`.
const DEFAULT_PAGE: usize = 10_000;
const MAX_PAGE: usize = 100_000;

/// Serves `ListAllocations`, one page at a time.
pub async fn handle(
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
    let one_page = |m: &raft_store::Machine| {
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
fn cursor(v: &ipam::AllocationView) -> String {
    fn addr(ip: std::net::IpAddr) -> String {
        match ip {
            std::net::IpAddr::V4(a) => format!("4{:08x}", u32::from(a)),
            std::net::IpAddr::V6(a) => format!("6{:032x}", u128::from(a)),
        }
    }
    format!("{}\u{1}{}{:03}\u{1}{}", v.network, addr(v.pool.network()), v.pool.prefix_len(), addr(v.ip))
}
