//! The folded state of the log: every pool, the interned names, the replies of recent requests
//! (so a retried request id is answered, not applied twice) and a bounded history of what was
//! given and freed (for `who-had` questions). Only [`super::apply`] changes it.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::event::Reply;
use super::format::FORMAT_MIN;
use super::limits::Limits;
use super::owner::{Attachment, Interner, Owner, PodRef, Sym};
use super::pool::Pool;

/// A pool is named as whereabouts names an `IPPool`: network name + CIDR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    pub network: Sym,
    pub cidr: IpNet,
}

/// What happened to an address, for the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryAction {
    /// Given to an owner.
    Allocated,
    /// Kept by a repeated ADD of the same pod, now under a new container id.
    Reowned,
    /// Freed.
    Released,
}

/// One line of the allocation history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Number of the event (events applied so far, counting this one).
    pub event: u64,
    /// Leader time of the event (ms since the Unix epoch).
    pub time_ms: u64,
    /// What happened.
    pub action: HistoryAction,
    /// Network name.
    pub network: String,
    /// The address.
    pub ip: IpAddr,
    /// Its owner.
    pub owner: Owner,
    /// The owner's pod, when known. (Snapshots encode this type with a non-self-describing
    /// format: no field of it may be skipped when serializing.)
    pub pod: Option<PodRef>,
}

/// A held address as queries report it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationView {
    /// Network name ("" when unset).
    pub network: String,
    /// The pool's CIDR.
    pub pool: IpNet,
    /// The address.
    pub ip: IpAddr,
    /// Who holds it.
    pub attachment: Attachment,
    /// When it was given (leader time, ms since the Unix epoch).
    pub since_ms: u64,
}

/// Size and use of one pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolUsage {
    /// Network name.
    pub network: String,
    /// CIDR.
    pub cidr: IpNet,
    /// Addresses the allocator may hand out in the whole CIDR (no network/last/`.0` addresses).
    pub usable: u128,
    /// Addresses held.
    pub used: u64,
}

/// The state machine's data. Same events in, same state and replies out.
#[derive(Clone, Debug, Default)]
pub struct State {
    pub(crate) limits: Limits,
    pub(crate) names: Interner,
    pub(crate) pools: HashMap<PoolKey, Pool>,
    /// Pools of each network name in creation order (the order operations visit them).
    pub(crate) networks: HashMap<Sym, Vec<IpNet>>,
    pub(crate) requests: HashMap<String, Reply>,
    pub(crate) request_order: VecDeque<String>,
    pub(crate) history: VecDeque<HistoryEntry>,
    pub(crate) events_applied: u64,
    /// Set by `SetClusterVersion`; 0 (never set) reads as [`FORMAT_MIN`].
    pub(crate) cluster_version: u32,
}

impl State {
    /// An empty state with the given bounds.
    pub fn new(limits: Limits) -> State {
        State { limits, ..State::default() }
    }

    /// The bounds this state was made with.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The cluster version: the newest format a leader may write (see [`crate::format`]).
    pub fn cluster_version(&self) -> u32 {
        self.cluster_version.max(FORMAT_MIN)
    }

    /// Events applied since the beginning of the log.
    pub fn events_applied(&self) -> u64 {
        self.events_applied
    }

    /// Total number of held addresses.
    pub fn allocation_count(&self) -> usize {
        self.pools.values().map(Pool::len).sum()
    }

    /// Every pool with its size and use, ordered by network name then CIDR.
    pub fn pool_usage(&self) -> Vec<PoolUsage> {
        let mut out: Vec<PoolUsage> = self
            .pools
            .values()
            .map(|p| PoolUsage {
                network: self.names.name(p.network()).to_string(),
                cidr: p.cidr(),
                usable: usable_addresses(&p.cidr()),
                used: p.len() as u64,
            })
            .collect();
        out.sort_by(|a, b| (&a.network, a.cidr).cmp(&(&b.network, b.cidr)));
        out
    }

    /// Held addresses, optionally of one network name, ordered by network, pool and address.
    pub fn allocations(&self, network: Option<&str>) -> Vec<AllocationView> {
        let mut keys: Vec<&PoolKey> = match network {
            Some(name) => match self.names.lookup(name) {
                Some(sym) => self.pools.keys().filter(|k| k.network == sym).collect(),
                None => Vec::new(),
            },
            None => self.pools.keys().collect(),
        };
        keys.sort_by(|a, b| (self.names.name(a.network), a.cidr).cmp(&(self.names.name(b.network), b.cidr)));
        let mut out = Vec::new();
        for key in keys {
            let pool = &self.pools[key];
            out.extend(pool.offsets().into_iter().map(|o| self.view(pool, o)));
        }
        out
    }

    /// Every allocation of `ip`, in any network (several only with overlapping ranges disabled or
    /// several network names).
    pub fn who_has(&self, ip: &IpAddr) -> Vec<AllocationView> {
        let mut out: Vec<AllocationView> = self
            .pools
            .values()
            .filter_map(|p| p.offset_of(ip).filter(|o| p.get(*o).is_some()).map(|o| self.view(p, o)))
            .collect();
        out.sort_by(|a, b| (&a.network, a.pool).cmp(&(&b.network, b.pool)));
        out
    }

    /// What `owner` holds in network `network`, in pool creation order (what CNI CHECK compares).
    pub fn owner_addresses(&self, network: &str, owner: &Owner) -> Vec<AllocationView> {
        let (Some(net), Some(ifname)) = (self.names.lookup(network), self.names.lookup(&owner.ifname)) else {
            return Vec::new();
        };
        self.network_pools(net)
            .filter_map(|p| p.find_by_container(&owner.container_id, ifname).map(|o| self.view(p, o)))
            .collect()
    }

    /// The history entries about `ip`, oldest first.
    pub fn history_of(&self, ip: &IpAddr) -> Vec<HistoryEntry> {
        self.history.iter().filter(|h| h.ip == *ip).cloned().collect()
    }

    /// The whole retained history, oldest first.
    pub fn history(&self) -> impl Iterator<Item = &HistoryEntry> {
        self.history.iter()
    }

    pub(crate) fn network_pools(&self, network: Sym) -> impl Iterator<Item = &Pool> {
        let cidrs = self.networks.get(&network).map(Vec::as_slice).unwrap_or_default();
        cidrs.iter().map(move |cidr| &self.pools[&PoolKey { network, cidr: *cidr }])
    }

    pub(crate) fn view(&self, pool: &Pool, offset: u128) -> AllocationView {
        let a = pool.get(offset).expect("offset is held");
        AllocationView {
            network: self.names.name(pool.network()).to_string(),
            pool: pool.cidr(),
            ip: pool.ip_at(offset),
            attachment: a.attachment(&self.names),
            since_ms: a.since_ms,
        }
    }
}

/// Number of addresses the allocator may ever hand out from the whole of `cidr`: all but the
/// network and last addresses and, for IPv4, those ending in `.0`.
pub fn usable_addresses(cidr: &IpNet) -> u128 {
    let host_bits = u32::from(cidr.max_prefix_len() - cidr.prefix_len());
    if host_bits < 2 {
        return 0;
    }
    let size_minus_one = if host_bits == 128 { u128::MAX } else { (1u128 << host_bits) - 1 };
    let mut usable = size_minus_one - 1;
    if let IpNet::V4(_) = cidr {
        if host_bits >= 8 {
            // One `.0` per 256 addresses; the first is the network address, already excluded.
            usable -= (1u128 << (host_bits - 8)) - 1;
        }
    }
    usable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_counts_follow_the_allocator_rules() {
        let n = |s: &str| s.parse::<IpNet>().unwrap();
        assert_eq!(usable_addresses(&n("10.0.0.0/24")), 254);
        assert_eq!(usable_addresses(&n("10.0.0.0/23")), 509);
        assert_eq!(usable_addresses(&n("10.0.0.224/28")), 14);
        assert_eq!(usable_addresses(&n("10.0.0.0/31")), 0);
        assert_eq!(usable_addresses(&n("2001::/120")), 254);
        assert_eq!(usable_addresses(&n("::/0")), u128::MAX - 1);
    }
}
