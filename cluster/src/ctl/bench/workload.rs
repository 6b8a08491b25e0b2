//! What the bench asks for: the pools (aligned ranges, as `etcd-scheme-bench` lays them out, so
//! both systems get the same CIDRs) and realistic owners — a 64-hex container id, a pod named
//! like a Deployment's (`checkout-41-7d9f8b6c5d-x2kq9`), a UUID pod uid, a node, Multus' `net1`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proto::ipam as pb;
use rand::Rng;

/// An aligned range of `size` addresses (a power of two): pool `index` of the bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolRange {
    network: u128,
    size: u128,
    ipv6: bool,
}

impl PoolRange {
    /// Pool `index` of `size` addresses: IPv4 from 10.0.0.0 up, IPv6 from fd00:be::/64 up
    /// (the layout of `bench-reference`'s pools).
    pub fn new(index: u32, size: u128, ipv6: bool) -> anyhow::Result<PoolRange> {
        anyhow::ensure!(size.is_power_of_two() && size >= 4, "pool size {size} must be a power of two ≥ 4");
        let base: u128 = if ipv6 {
            u128::from(Ipv6Addr::new(0xfd00, 0xbe, 0, 0, 0, 0, 0, 0))
        } else {
            u128::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)))
        };
        let span: u128 = if ipv6 { 1 << 64 } else { 1 << 24 };
        let offset = size.checked_mul(u128::from(index)).filter(|o| o + size <= span);
        let offset = offset.ok_or_else(|| anyhow::anyhow!("pool {index} of size {size} does not fit"))?;
        Ok(PoolRange { network: base + offset, size, ipv6 })
    }

    /// The range in CIDR notation.
    pub fn cidr(&self) -> String {
        let bits = if self.ipv6 { 128 } else { 32 };
        let ip = if self.ipv6 {
            IpAddr::V6(Ipv6Addr::from(self.network))
        } else {
            IpAddr::V4(Ipv4Addr::from(self.network as u32))
        };
        format!("{ip}/{}", bits - self.size.trailing_zeros())
    }

    /// Addresses whereabouts-rs may hand out (no network or last address, no IPv4 `.0`).
    pub fn usable(&self) -> u128 {
        let dot_zero = if self.ipv6 { 0 } else { (self.size / 256).saturating_sub(1) };
        self.size - 2 - dot_zero
    }
}

/// Kubernetes' pod-name suffix alphabet (no vowels, no look-alikes).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
const DEPLOYMENTS: [&str; 8] =
    ["frontend", "checkout", "payments-api", "redis-cache", "inventory", "search-indexer", "kafka-consumer", "web"];
const NAMESPACES: [&str; 4] = ["default", "shop", "payments", "data"];

fn suffix(rng: &mut impl Rng, n: usize) -> String {
    (0..n).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

fn uuid_v4(rng: &mut impl Rng) -> String {
    let mut b: [u8; 16] = rng.random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// ReplicaSets the bench's pods belong to (about ten pods each at a million pods).
const REPLICA_SETS: u64 = 100_000;

/// The pod-template hash of ReplicaSet `rs`: 10 characters, a function of `rs` as in Kubernetes.
fn template_hash(rs: u64) -> String {
    let mut z = rs.wrapping_add(0x9e37_79b9_7f4a_7c15);
    (0..10)
        .map(|_| {
            z = (z ^ (z >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            ALPHABET[(z >> 33) as usize % ALPHABET.len()] as char
        })
        .collect()
}

/// A fresh attachment: 64-hex container id, a pod of one of 100,000 ReplicaSets named as a
/// Deployment names them (`checkout-41-7d9f8b6c5d-x2kq9`), UUID pod uid, one of 50 nodes,
/// interface `net1` (a Multus secondary network, where whereabouts is used).
pub fn attachment(rng: &mut impl Rng) -> pb::Attachment {
    let rs = rng.random_range(0..REPLICA_SETS);
    let deployment = DEPLOYMENTS[rs as usize % DEPLOYMENTS.len()];
    let container: [u8; 32] = rng.random();
    pb::Attachment {
        container_id: container.iter().map(|x| format!("{x:02x}")).collect(),
        ifname: "net1".into(),
        pod_namespace: NAMESPACES[rs as usize % NAMESPACES.len()].into(),
        pod_name: format!("{deployment}-{}-{}-{}", rs / DEPLOYMENTS.len() as u64, template_hash(rs), suffix(rng, 5)),
        pod_uid: uuid_v4(rng),
        node: format!("worker-{:02}", rng.random_range(0..50)),
        cni_network: "macvlan-conf".into(),
    }
}

/// A fresh request id (128 random bits in hex, as the CNI plugin makes them).
pub fn request_id(rng: &mut impl Rng) -> String {
    format!("{:032x}", rng.random::<u128>())
}

/// The Allocate request for `attachment` in the pool `cidr` of `network`.
pub fn allocate(network: &str, cidr: &str, attachment: pb::Attachment, request_id: String) -> pb::AllocateRequest {
    pb::AllocateRequest {
        request_id,
        network_name: network.into(),
        ranges: vec![pb::RangeSpec { range: cidr.into(), ..Default::default() }],
        static_ips: vec![],
        enable_overlapping_ranges: None,
        attachment: Some(attachment),
    }
}

/// The Release (CNI DEL) request for what `attachment` holds in `network`.
pub fn release(network: &str, attachment: &pb::Attachment, request_id: String) -> pb::ReleaseRequest {
    pb::ReleaseRequest {
        request_id,
        network_name: network.into(),
        container_id: attachment.container_id.clone(),
        ifname: attachment.ifname.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_follow_the_reference_layout() {
        let r = PoolRange::new(1, 4096, false).unwrap();
        assert_eq!(r.cidr(), "10.0.16.0/20");
        assert_eq!(r.usable(), 4096 - 2 - 15);
        assert_eq!(PoolRange::new(2, 4096, true).unwrap().cidr(), "fd00:be::2000/116");
        assert_eq!(PoolRange::new(0, 1 << 64, true).unwrap().cidr(), "fd00:be::/64");
        assert!(PoolRange::new(0, 100, false).is_err());
        assert!(PoolRange::new(5000, 4096, false).is_err());
    }

    #[test]
    fn owners_look_like_kubernetes_ones() {
        let mut rng = rand::rng();
        let a = attachment(&mut rng);
        assert_eq!(a.container_id.len(), 64);
        assert!(a.container_id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a.pod_uid.len(), 36);
        assert_eq!(&a.pod_uid[14..15], "4");
        let parts: Vec<&str> = a.pod_name.rsplitn(3, '-').collect();
        assert_eq!((parts[0].len(), parts[1].len()), (5, 10), "{}", a.pod_name);
        assert_eq!(template_hash(7), template_hash(7));
        assert_ne!(template_hash(7), template_hash(8));
        assert_ne!(request_id(&mut rng), request_id(&mut rng));
    }
}
