//! STATUS (1.1.0): succeeds when ADD can be served. Fails with 50 when the cluster cannot be
//! reached or has no leader within the (capped) budget, or when a configured range has no free
//! address.
//!
//! Exhaustion test: a range is full when the addresses held in it reach [`allocatable`] (bounds,
//! exclusions, `.0` rule). The pool counters of `Status` (`used` per `network_name` + CIDR) give a
//! cheap lower bound: below the range's capacity the range is not full (overlapping pools aside).
//! Only when `used` reaches it are the network's allocations listed and those inside this range
//! counted exactly (all pools of the network when overlapping ranges are on, since an address
//! held there blocks this range too; only this pool otherwise).

use std::collections::HashSet;
use std::net::IpAddr;

use ipam::Range;
use ipnet::IpNet;
use proto::ipam::{Allocation, ListAllocationsRequest, StatusRequest};

use super::{allocatable, require_endpoints};
use crate::client::{request, Cluster};
use crate::error::PluginError;
use crate::request::Request;

/// Runs STATUS.
pub async fn status(req: &Request, cluster: &mut Cluster<'_>) -> Result<(), PluginError> {
    require_endpoints(req)?;
    let status = cluster
        .call("Status", |mut client, deadline| async move {
            client.status(request(StatusRequest { local: false }, deadline)).await
        })
        .await?;
    if status.leader_id.is_none() {
        return Err(PluginError::NoLeader(format!(
            "node {} is {:?} in term {}",
            status.node_id, status.role, status.term
        )));
    }
    let cfg = &req.config;
    let mut listed: Option<Vec<Allocation>> = None;
    for range in &cfg.ranges {
        let capacity = allocatable(range);
        let used = status
            .pools
            .iter()
            .filter(|p| p.network_name == cfg.network_name && p.cidr.parse::<IpNet>().ok() == Some(range.network()))
            .map(|p| u128::from(p.used))
            .sum::<u128>();
        if used < capacity {
            continue;
        }
        if listed.is_none() {
            listed = Some(list_network(cluster, &cfg.network_name).await?);
        }
        let held = held_in(range, listed.as_deref().unwrap_or_default(), cfg.overlapping);
        if held >= capacity {
            return Err(PluginError::PoolExhausted(format!(
                "range {} of network {:?}: {held} of {capacity} addresses held",
                range.describe(),
                cfg.network_name
            )));
        }
    }
    tracing::debug!(leader = ?status.leader_id, "status ok");
    Ok(())
}

/// Every allocation of `network`, page by page.
async fn list_network(cluster: &mut Cluster<'_>, network: &str) -> Result<Vec<Allocation>, PluginError> {
    let mut all = Vec::new();
    let mut after = String::new();
    loop {
        let message = ListAllocationsRequest {
            network_name: Some(network.to_string()),
            limit: 0,
            after: after.clone(),
            local: false,
        };
        let reply = cluster
            .call("ListAllocations", |mut client, deadline| {
                let message = message.clone();
                async move { client.list_allocations(request(message, deadline)).await }
            })
            .await?;
        all.extend(reply.allocations);
        if reply.next.is_empty() || reply.next == after {
            return Ok(all);
        }
        after = reply.next;
    }
}

/// Distinct addresses of `allocations` that `range` could otherwise hand out.
fn held_in(range: &Range, allocations: &[Allocation], overlapping: bool) -> u128 {
    let pool = range.network();
    allocations
        .iter()
        .filter(|a| overlapping || a.pool.parse::<IpNet>().ok() == Some(pool))
        .filter_map(|a| a.ip.parse::<IpAddr>().ok())
        .filter(|ip| range.offset_of(ip).is_some_and(|o| range.allows(o)))
        .collect::<HashSet<_>>()
        .len() as u128
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipam::RangeSpec;

    fn alloc(ip: &str, pool: &str) -> Allocation {
        Allocation { ip: ip.into(), pool: pool.into(), ..Default::default() }
    }

    #[test]
    fn counts_only_addresses_the_range_could_give() {
        let spec = RangeSpec { range: "10.0.0.0/29".into(), exclude: vec!["10.0.0.6".into()], ..Default::default() };
        let range = Range::parse(&spec, "ipam").unwrap().0;
        let allocs = [
            alloc("10.0.0.1", "10.0.0.0/29"),
            alloc("10.0.0.1", "10.0.0.0/29"),
            alloc("10.0.0.2", "10.0.0.0/24"),
            alloc("10.0.0.6", "10.0.0.0/29"),
            alloc("10.0.0.9", "10.0.0.0/24"),
        ];
        assert_eq!(held_in(&range, &allocs, true), 2);
        assert_eq!(held_in(&range, &allocs, false), 1);
    }
}
