//! One pool: the addresses held in one CIDR of one network name — what whereabouts keeps in one
//! `IPPool` object. It finds the lowest free address of a [`Range`] in O(log n) and finds an
//! owner's address in O(1).
//!
//! Two offset sets are kept: `used` (this pool's own allocations) and, once another pool of the
//! same network name overlaps this one, `blocked` (own allocations plus addresses held through the
//! overlapping pools), so a request with overlapping ranges enabled never takes an address that
//! another range of its network holds.

use std::hash::BuildHasher;
use std::net::IpAddr;

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use ipnet::IpNet;

use super::ip::{self, Family};
use super::offset_set::OffsetSet;
use super::owner::{Allocation, Sym};
use super::range::Range;

/// The addresses held in one (network name, CIDR).
#[derive(Clone, Debug)]
pub struct Pool {
    network: Sym,
    cidr: IpNet,
    base: u128,
    used: OffsetSet,
    blocked: Option<OffsetSet>,
    allocations: HashMap<u128, Allocation>,
    by_container: HashTable<u128>,
    by_pod: HashTable<u128>,
    hasher: DefaultHashBuilder,
}

impl Pool {
    /// An empty pool for `cidr` (host bits must be clear) of network name `network`.
    pub fn new(network: Sym, cidr: IpNet) -> Pool {
        let base = ip::ip_to_u128(&cidr.network());
        let residue = match Family::of(&cidr.addr()) {
            Family::V4 => Some(((256 - base % 256) % 256) as u8),
            Family::V6 => None,
        };
        Pool {
            network,
            cidr,
            base,
            used: OffsetSet::new(ip::host_bits(&cidr), residue),
            blocked: None,
            allocations: HashMap::default(),
            by_container: HashTable::new(),
            by_pod: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// The network name (interned).
    pub fn network(&self) -> Sym {
        self.network
    }

    /// The CIDR of the pool.
    pub fn cidr(&self) -> IpNet {
        self.cidr
    }

    /// Number of held addresses.
    pub fn len(&self) -> usize {
        self.allocations.len()
    }

    /// True when no address is held.
    pub fn is_empty(&self) -> bool {
        self.allocations.is_empty()
    }

    /// Offset of `ip` in this pool, if inside the CIDR.
    pub fn offset_of(&self, ip: &IpAddr) -> Option<u128> {
        self.cidr.contains(ip).then(|| ip::ip_to_u128(ip) - self.base)
    }

    /// Address at `offset`.
    pub fn ip_at(&self, offset: u128) -> IpAddr {
        ip::u128_to_ip(Family::of(&self.cidr.addr()), self.base + offset)
    }

    /// The allocation at `offset`, if held.
    pub fn get(&self, offset: u128) -> Option<&Allocation> {
        self.allocations.get(&offset)
    }

    /// True for IPv4 `.0` addresses, which the allocator never hands out.
    pub fn is_reserved(&self, offset: u128) -> bool {
        self.used.is_reserved(offset)
    }

    /// Where `container_id` + `ifname` holds an address here.
    pub fn find_by_container(&self, container_id: &str, ifname: Sym) -> Option<u128> {
        let hash = self.hasher.hash_one((container_id, ifname));
        self.by_container.find(hash, |o| self.allocations[o].is_owned_by(container_id, ifname)).copied()
    }

    /// Where pod `namespace/name` holds an address on `ifname` here.
    pub fn find_by_pod(&self, namespace: Sym, name: &str, ifname: Sym) -> Option<u128> {
        let hash = self.hasher.hash_one((namespace, name, ifname));
        self.by_pod.find(hash, |o| self.allocations[o].is_for_pod(namespace, name, ifname)).copied()
    }

    /// The lowest offset `range` allows that is free (and not blocked through overlapping ranges
    /// when `respect_overlap`), skipping offsets for which `skip` is true.
    pub fn lowest_free(&self, range: &Range, respect_overlap: bool, skip: impl Fn(u128) -> bool) -> Option<u128> {
        let set = if respect_overlap { self.blocked.as_ref().unwrap_or(&self.used) } else { &self.used };
        let mut from = range.first();
        loop {
            let candidate = set.first_clear(from, range.last())?;
            if let Some((_, end)) = range.exclude_containing(candidate) {
                from = end.checked_add(1)?;
            } else if skip(candidate) {
                from = candidate + 1;
            } else {
                return Some(candidate);
            }
        }
    }

    /// Records `allocation` at the free `offset`.
    pub fn insert(&mut self, offset: u128, allocation: Allocation) {
        assert!(!self.allocations.contains_key(&offset), "{} is already held", self.ip_at(offset));
        self.used.insert(offset);
        if let Some(blocked) = &mut self.blocked {
            blocked.insert(offset);
        }
        self.allocations.insert(offset, allocation);
        self.index(offset);
    }

    /// Frees `offset`; `still_blocked` keeps it blocked for overlap-aware requests (another pool
    /// of the network still holds the address).
    pub fn remove(&mut self, offset: u128, still_blocked: bool) -> Option<Allocation> {
        if !self.allocations.contains_key(&offset) {
            return None;
        }
        self.unindex(offset);
        let allocation = self.allocations.remove(&offset);
        self.used.remove(offset);
        if let (Some(blocked), false) = (&mut self.blocked, still_blocked) {
            blocked.remove(offset);
        }
        allocation
    }

    /// Replaces the record at the held `offset` (a repeated ADD re-owning its address).
    pub fn replace(&mut self, offset: u128, allocation: Allocation) {
        self.unindex(offset);
        self.allocations.insert(offset, allocation);
        self.index(offset);
    }

    /// Marks `offset` as held through another pool of the network.
    pub fn block(&mut self, offset: u128) {
        let used = &self.used;
        self.blocked.get_or_insert_with(|| used.clone()).insert(offset);
    }

    /// Clears a mark set by [`Pool::block`], unless this pool holds the address itself.
    pub fn unblock(&mut self, offset: u128) {
        if let (Some(blocked), false) = (&mut self.blocked, self.allocations.contains_key(&offset)) {
            blocked.remove(offset);
        }
    }

    /// Held offsets in ascending order.
    pub fn offsets(&self) -> Vec<u128> {
        let mut offsets: Vec<u128> = self.allocations.keys().copied().collect();
        offsets.sort_unstable();
        offsets
    }

    /// Held offsets in `[lo, hi]`, unordered.
    pub fn offsets_between(&self, lo: u128, hi: u128) -> impl Iterator<Item = u128> + '_ {
        self.allocations.keys().copied().filter(move |o| (lo..=hi).contains(o))
    }

    fn index(&mut self, offset: u128) {
        let Pool { allocations, by_container, by_pod, hasher, .. } = self;
        let a = &allocations[&offset];
        by_container.insert_unique(container_hash(hasher, a), offset, |o| container_hash(hasher, &allocations[o]));
        if let Some(hash) = pod_hash(hasher, a) {
            by_pod.insert_unique(hash, offset, |o| pod_hash(hasher, &allocations[o]).expect("indexed by pod"));
        }
    }

    fn unindex(&mut self, offset: u128) {
        let Pool { allocations, by_container, by_pod, hasher, .. } = self;
        let a = &allocations[&offset];
        if let Ok(entry) = by_container.find_entry(container_hash(hasher, a), |o| *o == offset) {
            entry.remove();
        }
        if let Some(hash) = pod_hash(hasher, a) {
            if let Ok(entry) = by_pod.find_entry(hash, |o| *o == offset) {
                entry.remove();
            }
        }
    }
}

fn container_hash(hasher: &DefaultHashBuilder, a: &Allocation) -> u64 {
    hasher.hash_one((&*a.container_id, a.ifname))
}

fn pod_hash(hasher: &DefaultHashBuilder, a: &Allocation) -> Option<u64> {
    a.pod.as_ref().map(|(ns, name)| hasher.hash_one((*ns, &**name, a.ifname)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owner::{Attachment, Interner, Owner, PodRef};
    use crate::range::RangeSpec;

    fn range(s: &str, exclude: &[&str]) -> Range {
        let spec = RangeSpec {
            range: s.into(),
            exclude: exclude.iter().map(|e| e.to_string()).collect(),
            ..Default::default()
        };
        Range::parse(&spec, "ipam").unwrap().0
    }

    fn alloc(names: &mut Interner, cid: &str, pod: &str) -> Allocation {
        let att = Attachment {
            owner: Owner { container_id: cid.into(), ifname: "eth0".into() },
            pod: Some(PodRef { namespace: "ns".into(), name: pod.into() }),
            pod_uid: None,
            node: None,
            cni_network: "net".into(),
        };
        Allocation::new(&att, 0, true, names)
    }

    #[test]
    fn lowest_free_honours_excludes_and_skip() {
        let r = range("10.0.0.0/24", &["10.0.0.0/30", "10.0.0.5"]);
        let mut names = Interner::default();
        let mut pool = Pool::new(names.intern(""), r.network());
        assert_eq!(pool.lowest_free(&r, true, |_| false), Some(4));
        assert_eq!(pool.lowest_free(&r, true, |o| o == 4), Some(6));
        pool.insert(4, alloc(&mut names, "c1", "p1"));
        assert_eq!(pool.lowest_free(&r, true, |_| false), Some(6));
        let eth0 = names.lookup("eth0").unwrap();
        assert_eq!(pool.find_by_container("c1", eth0), Some(4));
        assert_eq!(pool.find_by_pod(names.lookup("ns").unwrap(), "p1", eth0), Some(4));
        assert_eq!(pool.find_by_container("c2", eth0), None);
        assert!(pool.remove(4, false).is_some());
        assert_eq!(pool.find_by_container("c1", eth0), None);
        assert!(pool.is_empty());
    }

    #[test]
    fn blocked_addresses_only_bind_overlap_aware_requests() {
        let r = range("10.0.0.0/29", &[]);
        let mut names = Interner::default();
        let mut pool = Pool::new(names.intern("n"), r.network());
        pool.block(1);
        assert_eq!(pool.lowest_free(&r, true, |_| false), Some(2));
        assert_eq!(pool.lowest_free(&r, false, |_| false), Some(1));
        pool.insert(2, alloc(&mut names, "c1", "p1"));
        pool.unblock(2); // held here: stays blocked
        assert_eq!(pool.lowest_free(&r, true, |_| false), Some(3));
        pool.unblock(1);
        assert_eq!(pool.lowest_free(&r, true, |_| false), Some(1));
    }

    #[test]
    fn replace_moves_the_indexes() {
        let r = range("10.0.0.0/29", &[]);
        let mut names = Interner::default();
        let mut pool = Pool::new(names.intern(""), r.network());
        pool.insert(1, alloc(&mut names, "old", "p1"));
        pool.replace(1, alloc(&mut names, "new", "p1"));
        let eth0 = names.lookup("eth0").unwrap();
        assert_eq!(pool.find_by_container("old", eth0), None);
        assert_eq!(pool.find_by_container("new", eth0), Some(1));
        assert_eq!(pool.len(), 1);
    }
}
