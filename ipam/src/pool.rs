//! One pool: the addresses held in one CIDR of one network name — what whereabouts keeps in one
//! `IPPool` object. It finds the lowest free address of a [`Range`] in O(log n) and finds an
//! owner's address in O(1).
//!
//! The records live in one dense vector (a release moves the last record into the hole) with
//! three hash indexes of 4-byte slot numbers: by offset, by container + interface, by pod +
//! interface. Filled with a million allocations, the pools take 224 bytes of resident memory per
//! allocation (`cargo bench -p ipam --bench apply_profile -- memory`, docs/benchmarks.md).
//!
//! Two offset sets are kept: `used` (this pool's own allocations) and, once another pool of the
//! same network name overlaps this one, `blocked` (own allocations plus addresses held through the
//! overlapping pools), so a request with overlapping ranges enabled never takes an address that
//! another range of its network holds.

use std::hash::BuildHasher;
use std::net::IpAddr;

use hashbrown::{DefaultHashBuilder, HashTable};
use ipnet::IpNet;

use super::ip::{self, Family};
use super::offset_set::OffsetSet;
use super::owner::{Allocation, Sym};
use super::packed;
use super::range::Range;

/// The addresses held in one (network name, CIDR).
#[derive(Clone, Debug)]
pub struct Pool {
    network: Sym,
    cidr: IpNet,
    base: u128,
    used: OffsetSet,
    blocked: Option<OffsetSet>,
    slots: Vec<(u128, Allocation)>,
    by_offset: HashTable<u32>,
    by_container: HashTable<u32>,
    by_pod: HashTable<u32>,
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
            slots: Vec::new(),
            by_offset: HashTable::new(),
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
        self.slots.len()
    }

    /// True when no address is held.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
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
        self.slot_of(offset).map(|i| &self.slots[i].1)
    }

    fn slot_of(&self, offset: u128) -> Option<usize> {
        let slots = &self.slots;
        self.by_offset.find(self.hasher.hash_one(offset), |&i| slots[i as usize].0 == offset).map(|&i| i as usize)
    }

    /// True for IPv4 `.0` addresses, which the allocator never hands out.
    pub fn is_reserved(&self, offset: u128) -> bool {
        self.used.is_reserved(offset)
    }

    /// Where `container_id` + `ifname` holds an address here.
    pub fn find_by_container(&self, container_id: &str, ifname: Sym) -> Option<u128> {
        self.find_by_container_packed(&packed::pack(container_id), ifname)
    }

    /// Where the packed `container` + `ifname` holds an address here.
    pub fn find_by_container_packed(&self, container: &[u8], ifname: Sym) -> Option<u128> {
        let hash = self.hasher.hash_one((container, ifname));
        let slots = &self.slots;
        self.by_container
            .find(hash, |&i| slots[i as usize].1.is_owned_by_packed(container, ifname))
            .map(|&i| slots[i as usize].0)
    }

    /// Where pod `namespace/name` holds an address on `ifname` here.
    pub fn find_by_pod(&self, namespace: Sym, name: &str, ifname: Sym) -> Option<u128> {
        self.find_by_pod_packed(namespace, &packed::pack(name), ifname)
    }

    /// Where pod `namespace` + packed `name` holds an address on `ifname` here.
    pub fn find_by_pod_packed(&self, namespace: Sym, name: &[u8], ifname: Sym) -> Option<u128> {
        let hash = self.hasher.hash_one((namespace, name, ifname));
        let slots = &self.slots;
        self.by_pod
            .find(hash, |&i| slots[i as usize].1.is_for_pod_packed(namespace, name, ifname))
            .map(|&i| slots[i as usize].0)
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
        assert!(self.slot_of(offset).is_none(), "{} is already held", self.ip_at(offset));
        self.used.insert(offset);
        if let Some(blocked) = &mut self.blocked {
            blocked.insert(offset);
        }
        let slot = self.slots.len();
        u32::try_from(slot).expect("fewer than 2^32 allocations in one pool");
        self.slots.push((offset, allocation));
        self.index(slot);
    }

    /// Frees `offset`; `still_blocked` keeps it blocked for overlap-aware requests (another pool
    /// of the network still holds the address).
    pub fn remove(&mut self, offset: u128, still_blocked: bool) -> Option<Allocation> {
        let slot = self.slot_of(offset)?;
        self.unindex(slot);
        let last = self.slots.len() - 1;
        if slot != last {
            self.unindex(last);
        }
        let (_, allocation) = self.slots.swap_remove(slot);
        if slot != last {
            self.index(slot);
        }
        self.used.remove(offset);
        if let (Some(blocked), false) = (&mut self.blocked, still_blocked) {
            blocked.remove(offset);
        }
        Some(allocation)
    }

    /// Replaces the record at the held `offset` (a repeated ADD re-owning its address).
    pub fn replace(&mut self, offset: u128, allocation: Allocation) {
        let slot = self.slot_of(offset).expect("replace of a held offset");
        self.unindex(slot);
        self.slots[slot].1 = allocation;
        self.index(slot);
    }

    /// Marks `offset` as held through another pool of the network.
    pub fn block(&mut self, offset: u128) {
        let used = &self.used;
        self.blocked.get_or_insert_with(|| used.clone()).insert(offset);
    }

    /// Clears a mark set by [`Pool::block`], unless this pool holds the address itself.
    pub fn unblock(&mut self, offset: u128) {
        let held = self.slot_of(offset).is_some();
        if let (Some(blocked), false) = (&mut self.blocked, held) {
            blocked.remove(offset);
        }
    }

    /// Held offsets in ascending order.
    pub fn offsets(&self) -> Vec<u128> {
        let mut offsets: Vec<u128> = self.slots.iter().map(|(o, _)| *o).collect();
        offsets.sort_unstable();
        offsets
    }

    /// Held offsets in `[lo, hi]`, unordered.
    pub fn offsets_between(&self, lo: u128, hi: u128) -> impl Iterator<Item = u128> + '_ {
        self.slots.iter().map(|(o, _)| *o).filter(move |o| (lo..=hi).contains(o))
    }

    /// Adds slot `slot` to the indexes.
    fn index(&mut self, slot: usize) {
        let Pool { slots, by_offset, by_container, by_pod, hasher, .. } = self;
        let (offset, a) = &slots[slot];
        let i = slot as u32;
        by_offset.insert_unique(hasher.hash_one(*offset), i, |&j| hasher.hash_one(slots[j as usize].0));
        by_container.insert_unique(container_hash(hasher, a), i, |&j| container_hash(hasher, &slots[j as usize].1));
        if let Some(hash) = pod_hash(hasher, a) {
            by_pod.insert_unique(hash, i, |&j| pod_hash(hasher, &slots[j as usize].1).expect("indexed by pod"));
        }
    }

    /// Removes slot `slot` from the indexes.
    fn unindex(&mut self, slot: usize) {
        let Pool { slots, by_offset, by_container, by_pod, hasher, .. } = self;
        let (offset, a) = &slots[slot];
        let i = slot as u32;
        if let Ok(entry) = by_offset.find_entry(hasher.hash_one(*offset), |&j| j == i) {
            entry.remove();
        }
        if let Ok(entry) = by_container.find_entry(container_hash(hasher, a), |&j| j == i) {
            entry.remove();
        }
        if let Some(hash) = pod_hash(hasher, a) {
            if let Ok(entry) = by_pod.find_entry(hash, |&j| j == i) {
                entry.remove();
            }
        }
    }
}

fn container_hash(hasher: &DefaultHashBuilder, a: &Allocation) -> u64 {
    hasher.hash_one((a.container_packed(), a.ifname))
}

fn pod_hash(hasher: &DefaultHashBuilder, a: &Allocation) -> Option<u64> {
    a.pod_packed().map(|(ns, name)| hasher.hash_one((ns, name, a.ifname)))
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

    #[test]
    fn a_release_moves_the_last_record_and_every_lookup_follows_it() {
        let r = range("10.0.0.0/28", &[]);
        let mut names = Interner::default();
        let mut pool = Pool::new(names.intern(""), r.network());
        for o in 1..=6u128 {
            pool.insert(o, alloc(&mut names, &format!("c{o}"), &format!("p{o}")));
        }
        let (eth0, ns) = (names.lookup("eth0").unwrap(), names.lookup("ns").unwrap());
        // The first record's slot is refilled by the last one's, then the last is released.
        assert!(pool.remove(1, false).is_some());
        assert!(pool.remove(5, false).is_some());
        assert!(pool.remove(1, false).is_none(), "released twice");
        for o in [2u128, 3, 4, 6] {
            assert_eq!(pool.get(o).map(|a| a.container_id()), Some(format!("c{o}")));
            assert_eq!(pool.find_by_container(&format!("c{o}"), eth0), Some(o));
            assert_eq!(pool.find_by_pod(ns, &format!("p{o}"), eth0), Some(o));
        }
        for o in [1u128, 5] {
            assert!(pool.get(o).is_none());
            assert_eq!(pool.find_by_container(&format!("c{o}"), eth0), None);
            assert_eq!(pool.find_by_pod(ns, &format!("p{o}"), eth0), None);
        }
        assert_eq!(pool.offsets(), vec![2, 3, 4, 6]);
        assert_eq!(pool.lowest_free(&r, true, |_| false), Some(1));
    }
}
