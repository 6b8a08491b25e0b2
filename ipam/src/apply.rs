//! `apply`: folds one event into the state and returns its reply. Deterministic and pure — no
//! clock, no randomness, no I/O — so every node that applies the same log reaches the same state
//! and the same replies.
//!
//! An allocation is planned first (which address for each range, re-using what the owner already
//! holds) and committed only when every range got one: `ipRanges` are all-or-nothing and a failed
//! request leaves nothing behind.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;

use super::error::IpamError;
use super::event::{
    check_request_id, Allocate, Command, Configure, Event, Gc, Lease, Outcome, Release, ReleaseIp, Reply,
};
use super::owner::{Allocation, Attachment, Sym};
use super::packed;
use super::pool::Pool;
use super::state::{HistoryAction, HistoryEntry, PoolKey, State};

/// Applies `event` to `state` and returns the reply (the cached one for a repeated request id).
pub fn apply(state: &mut State, event: &Event) -> Reply {
    state.events_applied += 1;
    if let Some(reply) = event.request_id.as_ref().and_then(|id| state.requests.get(id)) {
        return reply.clone();
    }
    let reply = match event.validate() {
        Err(e) => Err(IpamError::Invalid(e)),
        Ok(()) => match &event.command {
            Command::Allocate(cmd) => allocate(state, cmd, event.time_ms),
            Command::Release(cmd) => release(state, cmd, event.time_ms),
            Command::ReleaseIp(cmd) => release_ip(state, cmd, event.time_ms),
            Command::Gc(cmd) => gc(state, cmd, event.time_ms),
            Command::Configure(cmd) => Ok(configure(state, cmd)),
            Command::SetClusterVersion(cmd) => {
                let previous = state.cluster_version();
                state.cluster_version = cmd.version;
                // Idempotent by nature: not remembered (see `Command::SetClusterVersion`).
                return Ok(Outcome::ClusterVersion { previous, current: cmd.version });
            }
        },
    };
    // An invalid request id is answered (with the error) but not remembered: a snapshot could not
    // hold it.
    if let Some(id) = event.request_id.as_ref().filter(|id| check_request_id(id).is_ok()) {
        remember(state, id, &reply);
    }
    reply
}

fn remember(state: &mut State, id: &str, reply: &Reply) {
    if state.limits.request_cache == 0 {
        return;
    }
    trim_requests(state, state.limits.request_cache - 1);
    state.requests.insert(id.to_string(), reply.clone());
    state.request_order.push_back(id.to_string());
}

/// Forgets the oldest remembered replies until at most `keep` are left.
fn trim_requests(state: &mut State, keep: usize) {
    while state.request_order.len() > keep {
        if let Some(old) = state.request_order.pop_front() {
            state.requests.remove(&old);
        }
    }
}

/// Sets the limits and forgets at once what they no longer allow (oldest first).
fn configure(state: &mut State, cmd: &Configure) -> Outcome {
    if let Some(n) = cmd.request_cache {
        state.limits.request_cache = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(n) = cmd.history {
        state.limits.history = usize::try_from(n).unwrap_or(usize::MAX);
    }
    trim_requests(state, state.limits.request_cache);
    while state.history.len() > state.limits.history {
        state.history.pop_front();
    }
    Outcome::Configured(state.limits)
}

/// One address chosen for a request, before it is committed.
struct Planned {
    cidr: IpNet,
    offset: u128,
    ip: IpAddr,
    /// The owner already holds it (repeated ADD); else it is new.
    held: bool,
}

fn allocate(state: &mut State, cmd: &Allocate, time_ms: u64) -> Reply {
    let network = state.names.intern(&cmd.network);
    let created = pools_created_by(state, network, cmd);
    let plan = plan_allocation(state, network, cmd);
    let plan = match plan {
        Ok(plan) => plan,
        Err(e) => {
            // Leave no trace of a failed request: drop the pools it created, all still empty.
            for cidr in created {
                state.pools.remove(&PoolKey { network, cidr });
                state.networks.get_mut(&network).expect("created above").retain(|c| *c != cidr);
            }
            return Err(e);
        }
    };
    // Release 0.1.0 (format 1) reserves every address across the network's pools, whatever
    // `overlapping` says: until the cluster version is 2, every member must apply as it does.
    let reserve = cmd.overlapping || state.cluster_version() < 2;
    let mut leases = Vec::with_capacity(plan.len());
    let mut committed: HashSet<(IpNet, u128)> = HashSet::new();
    for p in plan {
        leases.push(Lease { ip: p.ip, pool: p.cidr });
        if !committed.insert((p.cidr, p.offset)) {
            continue; // the same range twice in one request: one address
        }
        let record = Allocation::new(&cmd.attachment, time_ms, reserve, &mut state.names);
        let key = PoolKey { network, cidr: p.cidr };
        let pool = state.pools.get_mut(&key).expect("planned pools exist");
        let action = if p.held {
            let old = pool.get(p.offset).expect("held");
            // A repeated ADD keeps the time and the reservation the address was given with.
            let (since_ms, overlap_reserved) = (old.since_ms, old.overlap_reserved);
            let mut record = record;
            (record.since_ms, record.overlap_reserved) = (since_ms, overlap_reserved);
            if *old == record {
                continue;
            }
            pool.replace(p.offset, record);
            HistoryAction::Reowned
        } else {
            pool.insert(p.offset, record);
            if reserve {
                set_blocked_elsewhere(state, network, p.cidr, p.ip, true);
            }
            HistoryAction::Allocated
        };
        record_history(state, network, &key, p.offset, action, time_ms);
    }
    Ok(Outcome::Allocated(leases))
}

/// Creates the pools `cmd` needs that do not exist yet; returns their CIDRs.
fn pools_created_by(state: &mut State, network: Sym, cmd: &Allocate) -> Vec<IpNet> {
    let mut created = Vec::new();
    for s in &cmd.statics {
        let cidr = cmd.ranges.iter().map(|r| r.network()).find(|n| n.contains(&s.addr())).unwrap_or(s.trunc());
        if ensure_pool(state, network, cidr) {
            created.push(cidr);
        }
    }
    for r in &cmd.ranges {
        if ensure_pool(state, network, r.network()) {
            created.push(r.network());
        }
    }
    created
}

/// Creates the pool (network, cidr) if missing, blocking what overlapping pools hold reserved.
pub(crate) fn ensure_pool(state: &mut State, network: Sym, cidr: IpNet) -> bool {
    let key = PoolKey { network, cidr };
    if state.pools.contains_key(&key) {
        return false;
    }
    let mut pool = Pool::new(network, cidr);
    for other in state.network_pools(network).filter(|o| overlaps(&o.cidr(), &cidr)) {
        let (lo, hi) = span_in(other, &cidr);
        let reserved = |o: &u128| other.get(*o).is_some_and(|a| a.overlap_reserved);
        for offset in other.offsets_between(lo, hi).filter(reserved) {
            let ip = other.ip_at(offset);
            pool.block(pool.offset_of(&ip).expect("inside the overlap"));
        }
    }
    state.pools.insert(key, pool);
    state.networks.entry(network).or_default().push(cidr);
    true
}

fn plan_allocation(state: &State, network: Sym, cmd: &Allocate) -> Result<Vec<Planned>, IpamError> {
    let att = &cmd.attachment;
    let pool_of = |cidr: IpNet| &state.pools[&PoolKey { network, cidr }];
    let mut by_range: Vec<Option<Planned>> = (0..cmd.ranges.len()).map(|_| None).collect();
    let mut extra: Vec<Planned> = Vec::new();
    for s in &cmd.statics {
        let slot = cmd.ranges.iter().position(|r| r.network().contains(&s.addr()));
        let cidr = slot.map(|i| cmd.ranges[i].network()).unwrap_or(s.trunc());
        let pool = pool_of(cidr);
        let offset = pool.offset_of(&s.addr()).expect("pool contains the address");
        if cmd.overlapping {
            // The same address asked for twice, in two overlapping pools of this request.
            let twice = by_range.iter().flatten().chain(extra.iter()).find(|p| p.ip == s.addr() && p.cidr != cidr);
            if let Some(p) = twice {
                let holder = format!("{} (asked for in pool {} by the same request)", att.owner, p.cidr);
                return Err(taken(state, network, s.addr(), holder));
            }
        }
        let already = by_range.iter().flatten().chain(extra.iter()).find(|p| p.cidr == cidr);
        let held = match (held_by(state, pool, att)?, already) {
            (_, Some(p)) if p.offset != offset => return Err(conflict(att, pool, p.ip, s.addr())),
            (Some(h), _) if h != offset => return Err(conflict(att, pool, pool.ip_at(h), s.addr())),
            (Some(_), _) => true,
            (None, _) => match pool.get(offset) {
                Some(a) => return Err(taken(state, network, s.addr(), a.owner(&state.names).to_string())),
                // Checked on the other pools' records, not on overlap marks: a static address may be
                // one the allocator never hands out (a `.0`), which carries no mark.
                None if cmd.overlapping && holders_of(state, network, s.addr()).any(|c| c != cidr) => {
                    let holder = state.who_has(&s.addr()).into_iter().find(|v| v.network == cmd.network);
                    let holder = holder.map(|v| v.attachment.owner.to_string()).unwrap_or_default();
                    return Err(taken(state, network, s.addr(), holder));
                }
                None => false,
            },
        };
        let planned = Planned { cidr, offset, ip: s.addr(), held };
        match slot {
            Some(i) if by_range[i].is_none() => by_range[i] = Some(planned),
            _ => extra.push(planned),
        }
    }
    for (i, range) in cmd.ranges.iter().enumerate() {
        if by_range[i].is_some() {
            continue;
        }
        let cidr = range.network();
        let pool = pool_of(cidr);
        let planned_so_far: Vec<&Planned> = by_range.iter().flatten().chain(extra.iter()).collect();
        if let Some(same) = planned_so_far.iter().find(|p| p.cidr == cidr) {
            // The same pool twice in one request: whereabouts gives the owner one address.
            by_range[i] = Some(Planned { cidr, offset: same.offset, ip: same.ip, held: same.held });
            continue;
        }
        if let Some(offset) = held_by(state, pool, att)? {
            by_range[i] = Some(Planned { cidr, offset, ip: pool.ip_at(offset), held: true });
            continue;
        }
        let clashes = |offset: u128| {
            let ip = pool.ip_at(offset);
            planned_so_far.iter().any(|p| p.ip == ip && (p.cidr == cidr || cmd.overlapping))
        };
        let offset = pool
            .lowest_free(range, cmd.overlapping, clashes)
            .ok_or_else(|| IpamError::Exhausted { network: cmd.network.clone(), range: range.describe() })?;
        by_range[i] = Some(Planned { cidr, offset, ip: pool.ip_at(offset), held: false });
    }
    Ok(by_range.into_iter().flatten().chain(extra).collect())
}

/// The address the attachment already holds in `pool`: the one of its pod + interface (a new
/// sandbox of the same pod keeps its address, as in whereabouts), else the one of its container +
/// interface. Both must agree: a pool holds at most one address per key. A pod without a namespace
/// (podman's `K8S_POD_NAME` alone) is not a key: its name is unique on one host at most.
fn held_by(state: &State, pool: &Pool, att: &Attachment) -> Result<Option<u128>, IpamError> {
    let Some(ifname) = state.names.lookup(&att.owner.ifname) else {
        return Ok(None);
    };
    let by_pod = att
        .pod
        .as_ref()
        .filter(|p| !p.namespace.is_empty())
        .and_then(|p| Some((state.names.lookup(&p.namespace)?, p.name.as_str())))
        .and_then(|(ns, name)| pool.find_by_pod(ns, name, ifname));
    let by_container = pool.find_by_container(&att.owner.container_id, ifname);
    match (by_pod, by_container) {
        (Some(a), Some(b)) if a != b => Err(conflict(att, pool, pool.ip_at(b), pool.ip_at(a).to_string())),
        (found, None) | (None, found) => Ok(found),
        (Some(a), Some(_)) => Ok(Some(a)),
    }
}

fn conflict(att: &Attachment, pool: &Pool, held: IpAddr, wanted: impl ToString) -> IpamError {
    let owner = match &att.pod {
        Some(pod) => format!("{} (pod {pod})", att.owner),
        None => att.owner.to_string(),
    };
    IpamError::OwnerConflict { owner, pool: pool.cidr().to_string(), held, wanted: wanted.to_string() }
}

fn taken(state: &State, network: Sym, ip: IpAddr, holder: String) -> IpamError {
    IpamError::AddressTaken { network: state.names.name(network).to_string(), ip, holder }
}

fn release(state: &mut State, cmd: &Release, time_ms: u64) -> Reply {
    let (Some(network), Some(ifname)) = (state.names.lookup(&cmd.network), state.names.lookup(&cmd.owner.ifname))
    else {
        return Ok(Outcome::Released(Vec::new()));
    };
    let only_node = match &cmd.only_node {
        Some(name) => match state.names.lookup(name) {
            Some(sym) => Some(sym),
            None => return Ok(Outcome::Released(Vec::new())),
        },
        None => None,
    };
    let found: Vec<(IpNet, u128)> = state
        .network_pools(network)
        .filter_map(|p| p.find_by_container(&cmd.owner.container_id, ifname).map(|o| (p, o)))
        .filter(|(p, o)| only_node.is_none() || p.get(*o).is_some_and(|a| a.node == only_node))
        .map(|(p, o)| (p.cidr(), o))
        .collect();
    let leases = found.into_iter().map(|(cidr, offset)| free(state, network, cidr, offset, time_ms)).collect();
    Ok(Outcome::Released(leases))
}

fn release_ip(state: &mut State, cmd: &ReleaseIp, time_ms: u64) -> Reply {
    let Some(network) = state.names.lookup(&cmd.network) else {
        return Ok(Outcome::Released(Vec::new()));
    };
    let holders: Vec<(IpNet, u128)> = state
        .network_pools(network)
        .filter_map(|p| p.offset_of(&cmd.ip).filter(|o| p.get(*o).is_some()).map(|o| (p.cidr(), o)))
        .collect();
    let ifname = state.names.lookup(&cmd.expected.ifname);
    let mut leases = Vec::new();
    let mut mismatch = None;
    for (cidr, offset) in holders {
        let a = state.pools[&PoolKey { network, cidr }].get(offset).expect("held");
        if ifname.is_some_and(|i| a.is_owned_by(&cmd.expected.container_id, i)) {
            leases.push(free(state, network, cidr, offset, time_ms));
        } else {
            mismatch.get_or_insert_with(|| a.owner(&state.names).to_string());
        }
    }
    match mismatch {
        Some(holder) if leases.is_empty() => {
            Err(IpamError::OwnerMismatch { ip: cmd.ip, holder, expected: cmd.expected.to_string() })
        }
        _ => Ok(Outcome::Released(leases)),
    }
}

fn gc(state: &mut State, cmd: &Gc, time_ms: u64) -> Reply {
    let (Some(network), Some(cni_network), Some(node)) =
        (state.names.lookup(&cmd.network), state.names.lookup(&cmd.cni_network), state.names.lookup(&cmd.node))
    else {
        return Ok(Outcome::Released(Vec::new()));
    };
    // Compared packed, as the pools store them: no container id of the pool is unpacked.
    let kept_owners: Vec<(Vec<u8>, Sym)> =
        cmd.keep.iter().filter_map(|o| Some((packed::pack(&o.container_id), state.names.lookup(&o.ifname)?))).collect();
    let keep: HashSet<(&[u8], Sym)> = kept_owners.iter().map(|(c, i)| (c.as_slice(), *i)).collect();
    let mut doomed = Vec::new();
    for pool in state.network_pools(network) {
        for offset in pool.offsets() {
            let a = pool.get(offset).expect("held");
            let kept = keep.contains(&(a.container_packed(), a.ifname));
            if a.cni_network == cni_network && a.node == Some(node) && !kept {
                doomed.push((pool.cidr(), offset));
            }
        }
    }
    let leases = doomed.into_iter().map(|(cidr, offset)| free(state, network, cidr, offset, time_ms)).collect();
    Ok(Outcome::Released(leases))
}

/// Frees a held address and lifts the overlap block it put on other pools.
fn free(state: &mut State, network: Sym, cidr: IpNet, offset: u128, time_ms: u64) -> Lease {
    let key = PoolKey { network, cidr };
    record_history(state, network, &key, offset, HistoryAction::Released, time_ms);
    let ip = state.pools[&key].ip_at(offset);
    let held_elsewhere = holders_of(state, network, ip).any(|c| c != cidr);
    state.pools.get_mut(&key).expect("pool exists").remove(offset, held_elsewhere);
    set_blocked_elsewhere(state, network, cidr, ip, false);
    Lease { ip, pool: cidr }
}

/// CIDRs of the network's pools that hold `ip` reserved across the network (allocations made with
/// overlapping ranges off are invisible to the other pools, as in whereabouts).
fn holders_of(state: &State, network: Sym, ip: IpAddr) -> impl Iterator<Item = IpNet> + '_ {
    state
        .network_pools(network)
        .filter(move |p| p.offset_of(&ip).and_then(|o| p.get(o)).is_some_and(|a| a.overlap_reserved))
        .map(|p| p.cidr())
}

/// After `source` took (`block`) or freed `ip`, updates the overlap marks of the network's other
/// pools containing it.
pub(crate) fn set_blocked_elsewhere(state: &mut State, network: Sym, source: IpNet, ip: IpAddr, block: bool) {
    let others: Vec<IpNet> =
        state.network_pools(network).map(|p| p.cidr()).filter(|c| *c != source && c.contains(&ip)).collect();
    for cidr in others {
        let still_held = block || holders_of(state, network, ip).any(|c| c != cidr);
        let pool = state.pools.get_mut(&PoolKey { network, cidr }).expect("listed");
        let offset = pool.offset_of(&ip).expect("contains");
        if still_held {
            pool.block(offset);
        } else {
            pool.unblock(offset);
        }
    }
}

fn record_history(state: &mut State, network: Sym, key: &PoolKey, offset: u128, action: HistoryAction, time_ms: u64) {
    if state.limits.history == 0 {
        return;
    }
    let pool = &state.pools[key];
    let a = pool.get(offset).expect("held when recorded");
    let view = a.attachment(&state.names);
    let entry = HistoryEntry {
        event: state.events_applied,
        time_ms,
        action,
        network: state.names.name(network).to_string(),
        ip: pool.ip_at(offset),
        owner: view.owner,
        pod: view.pod,
    };
    if state.history.len() >= state.limits.history {
        state.history.pop_front();
    }
    state.history.push_back(entry);
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Offsets in `pool` covering the part of `cidr` it contains.
fn span_in(pool: &Pool, cidr: &IpNet) -> (u128, u128) {
    let lo = pool.offset_of(&cidr.network()).unwrap_or(0);
    let hi = pool.offset_of(&cidr.broadcast()).unwrap_or(u128::MAX);
    (lo, hi)
}

#[cfg(test)]
mod reservation_tests;
#[cfg(test)]
mod tests;
