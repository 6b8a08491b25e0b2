//! What the bench asks for: addresses in loadgen's pools (the layout `etcd-scheme-bench` uses
//! too, so both systems get the same CIDRs) for realistic owners — a 64-hex container id, a pod
//! named like a Deployment's (`checkout-41-7d9f8b6c5d-x2kq9`), a UUID pod uid, a node, Multus' `net1`.

use loadgen::PoolRange;
use proto::ipam as pb;
use rand::Rng;

/// Addresses whereabouts-rs may hand out in `range`: no network or last address, no IPv4 `.0`.
pub fn usable(range: &PoolRange) -> u128 {
    range.usable() - range.inner_dot_zero()
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
        deferred_ms: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_skips_network_last_and_ipv4_dot_zero() {
        assert_eq!(usable(&PoolRange::new(1, 4096, false).unwrap()), 4096 - 2 - 15);
        assert_eq!(usable(&PoolRange::new(0, 256, false).unwrap()), 254);
        assert_eq!(usable(&PoolRange::new(2, 4096, true).unwrap()), 4094);
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
