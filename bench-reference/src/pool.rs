//! The pool object as whereabouts keeps it: one value holding every allocation of a range.
//!
//! whereabouts stores an `IPPool` custom resource per range; kube-apiserver writes CRDs to etcd as JSON, so
//! the etcd value is the whole object, `spec.allocations` being a map from the decimal offset of the IP
//! (from the network address) to `{id, podref, ifname}`. Every allocation and release rewrites all of it.

use std::collections::{BTreeMap, HashSet};

use loadgen::PoolRange;
use serde::{Deserialize, Serialize};

/// One allocation: the owner of an IP (whereabouts' `IPAllocation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// Container id.
    pub id: String,
    /// `namespace/pod`.
    pub podref: String,
    /// Interface name inside the pod.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ifname: String,
}

/// Object metadata, as kube-apiserver stores it (no resourceVersion: etcd's mod_revision is that).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Pool name.
    pub name: String,
    /// Namespace of the pool.
    pub namespace: String,
}

/// `spec` of the pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// The range in CIDR notation.
    pub range: String,
    /// Decimal offset from the network address → owner.
    pub allocations: BTreeMap<String, Allocation>,
}

/// The whole pool object, shaped like whereabouts' `IPPool` resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolObject {
    /// `whereabouts.cni.cncf.io/v1alpha1`.
    pub api_version: String,
    /// `IPPool`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: Metadata,
    /// Range and allocations.
    pub spec: Spec,
}

impl PoolObject {
    /// An empty pool for `range`.
    pub fn new(name: &str, range: &PoolRange) -> Self {
        PoolObject {
            api_version: "whereabouts.cni.cncf.io/v1alpha1".into(),
            kind: "IPPool".into(),
            metadata: Metadata { name: name.into(), namespace: "kube-system".into() },
            spec: Spec { range: range.cidr(), allocations: BTreeMap::new() },
        }
    }

    /// The JSON bytes stored in etcd.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a pool object always serializes")
    }

    /// Parses the JSON bytes read from etcd.
    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The offset held by `id` + `ifname`, if any.
    pub fn find(&self, id: &str, ifname: &str) -> Option<u128> {
        self.spec.allocations.iter().find(|(_, a)| a.id == id && a.ifname == ifname).and_then(|(k, _)| k.parse().ok())
    }

    /// The lowest free offset in `range`, scanning every address as whereabouts does
    /// (a set of the reserved offsets, then a walk from the first usable address up).
    pub fn lowest_free(&self, range: &PoolRange) -> Option<u128> {
        let reserved: HashSet<u128> = self.spec.allocations.keys().filter_map(|k| k.parse().ok()).collect();
        (range.first_offset()..=range.last_offset()).find(|o| !reserved.contains(o))
    }

    /// whereabouts' allocate step: the offset already held by this owner, or the lowest free one, now
    /// recorded. `None` when the range is exhausted.
    pub fn allocate(&mut self, range: &PoolRange, owner: &Allocation) -> Option<u128> {
        if let Some(held) = self.find(&owner.id, &owner.ifname) {
            return Some(held);
        }
        let offset = self.lowest_free(range)?;
        self.spec.allocations.insert(offset.to_string(), owner.clone());
        Some(offset)
    }

    /// whereabouts' release step: removes the entry of `id` + `ifname`, returning its offset
    /// (`None` if the owner held nothing: nothing to write).
    pub fn release(&mut self, id: &str, ifname: &str) -> Option<u128> {
        let offset = self.find(id, ifname)?;
        self.spec.allocations.remove(&offset.to_string());
        Some(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(n: u32) -> Allocation {
        Allocation { id: format!("bench-0-{n}"), podref: format!("bench/bench-0-{n}"), ifname: "eth0".into() }
    }

    #[test]
    fn lowest_free_fills_holes_first() {
        let r = PoolRange::new(0, 8, false).unwrap();
        let mut p = PoolObject::new("p", &r);
        assert_eq!(p.lowest_free(&r), Some(1));
        for n in 0..4 {
            assert_eq!(p.allocate(&r, &owner(n)), Some(u128::from(n) + 1));
        }
        assert_eq!(p.release("bench-0-1", "eth0"), Some(2));
        assert_eq!(p.lowest_free(&r), Some(2));
        assert_eq!(p.allocate(&r, &owner(9)), Some(2));
        assert_eq!(p.allocate(&r, &owner(10)), Some(5));
        assert_eq!(p.allocate(&r, &owner(11)), Some(6));
        // 0 and 7 (network and last address) are never given: the /29 is full.
        assert_eq!(p.allocate(&r, &owner(12)), None);
    }

    #[test]
    fn allocate_is_idempotent_per_owner_and_release_of_unknown_is_none() {
        let r = PoolRange::new(0, 16, true).unwrap();
        let mut p = PoolObject::new("p", &r);
        assert_eq!(p.allocate(&r, &owner(1)), Some(1));
        assert_eq!(p.allocate(&r, &owner(1)), Some(1));
        assert_eq!(p.spec.allocations.len(), 1);
        assert_eq!(p.release("bench-0-7", "eth0"), None);
        assert_eq!(p.release("bench-0-1", "eth1"), None);
        assert_eq!(p.release("bench-0-1", "eth0"), Some(1));
        assert!(p.spec.allocations.is_empty());
    }

    #[test]
    fn encode_decode_round_trip_and_wire_shape() {
        let r = PoolRange::new(0, 4096, false).unwrap();
        let mut p = PoolObject::new("10.0.0.0-20", &r);
        p.allocate(&r, &owner(1));
        let bytes = p.encode();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["kind"], "IPPool");
        assert_eq!(v["apiVersion"], "whereabouts.cni.cncf.io/v1alpha1");
        assert_eq!(v["spec"]["range"], "10.0.0.0/20");
        assert_eq!(v["spec"]["allocations"]["1"]["podref"], "bench/bench-0-1");
        assert_eq!(PoolObject::decode(&bytes).unwrap(), p);
        // whereabouts omits an empty ifname.
        let raw = br#"{"apiVersion":"a","kind":"IPPool","metadata":{"name":"n","namespace":"k"},
            "spec":{"range":"10.0.0.0/20","allocations":{"5":{"id":"c","podref":"ns/p"}}}}"#;
        let q = PoolObject::decode(raw).unwrap();
        assert_eq!(q.find("c", ""), Some(5));
        assert!(PoolObject::decode(b"{}").is_err());
    }
}
