//! Shared by the domain benchmarks: realistic attachments (64-hex container id, UUID pod uid, pod
//! named like a Deployment's — `checkout-41-7d9f8b6c5d-x2kq9` —, one of 50 nodes, Multus' `net1`)
//! from a seeded generator, events with fresh request ids, and states prefilled lowest-first as the
//! allocator fills them.

#![allow(dead_code)]

use ipam::{
    apply, Allocate, Attachment, Command, Event, Limits, Outcome, Owner, PodRef, Range, RangeSpec, Release, State,
};

/// ReplicaSets the pods belong to.
pub const REPLICA_SETS: usize = 100_000;
/// Kubernetes' name-suffix alphabet (no vowels, no look-alikes).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// splitmix64: deterministic, fast, good enough to make names.
pub struct Gen(u64);

impl Gen {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Gen {
        Gen(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn hex(&mut self, digits: usize) -> String {
        let mut s = String::with_capacity(digits + 16);
        while s.len() < digits {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(digits);
        s
    }

    fn suffix(&mut self, n: usize) -> String {
        (0..n).map(|_| ALPHABET[self.below(ALPHABET.len())] as char).collect()
    }

    fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!("{}-{}-4{}-a{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
    }

    /// A Kubernetes-looking attachment. Pods belong to one of [`REPLICA_SETS`] ReplicaSets (about
    /// ten pods each at a million pods), so they share `<deployment>-<pod-template-hash>-` as a
    /// Deployment's pods do, and differ in the 5-character suffix.
    pub fn attachment(&mut self) -> Attachment {
        const DEPLOYMENTS: [&str; 8] = [
            "frontend",
            "checkout",
            "payments-api",
            "redis-cache",
            "inventory",
            "search-indexer",
            "kafka-consumer",
            "web",
        ];
        const NAMESPACES: [&str; 4] = ["default", "shop", "payments", "data"];
        let rs = self.below(REPLICA_SETS);
        // The template hash is a function of the ReplicaSet, as in Kubernetes.
        let mut h = Gen::new(rs as u64);
        let template: String = (0..10).map(|_| ALPHABET[h.below(ALPHABET.len())] as char).collect();
        let deployment = format!("{}-{}", DEPLOYMENTS[rs % DEPLOYMENTS.len()], rs / DEPLOYMENTS.len());
        Attachment {
            owner: Owner { container_id: self.hex(64), ifname: "net1".into() },
            pod: Some(PodRef {
                namespace: NAMESPACES[rs % NAMESPACES.len()].into(),
                name: format!("{deployment}-{template}-{}", self.suffix(5)),
            }),
            pod_uid: Some(self.uuid()),
            node: Some(format!("worker-{:02}", self.below(50))),
            cni_network: "macvlan-conf".into(),
        }
    }

    /// A fresh request id, as the plugin makes them (32 hex digits).
    pub fn request_id(&mut self) -> String {
        self.hex(32)
    }
}

/// The range `cidr` (whole CIDR, no excludes).
pub fn range(cidr: &str) -> Range {
    Range::parse(&RangeSpec { range: cidr.into(), ..Default::default() }, "ipam").expect("valid range").0
}

/// An Allocate event for `attachment` from `range`, with a fresh request id.
pub fn allocate(g: &mut Gen, range: &Range, attachment: Attachment, time_ms: u64) -> Event {
    let cmd = Allocate {
        network: String::new(),
        ranges: vec![range.clone()],
        statics: vec![],
        overlapping: true,
        attachment,
    };
    Event::new(Command::Allocate(cmd), time_ms).with_request_id(g.request_id())
}

/// A Release (CNI DEL) event for `owner`, with a fresh request id.
pub fn release(g: &mut Gen, owner: &Owner, time_ms: u64) -> Event {
    Event::new(Command::Release(Release { network: String::new(), owner: owner.clone(), only_node: None }), time_ms)
        .with_request_id(g.request_id())
}

/// A state with the node's default limits and `count` allocations made lowest-first in `range`.
pub fn filled(g: &mut Gen, range: &Range, count: u64) -> State {
    let mut state = State::new(Limits::default());
    // The pool exists even when empty (as after a first allocation and its release).
    let a = g.attachment();
    let owner = a.owner.clone();
    assert!(matches!(apply(&mut state, &allocate(g, range, a, 1)), Ok(Outcome::Allocated(_))));
    assert!(matches!(apply(&mut state, &release(g, &owner, 1)), Ok(Outcome::Released(_))));
    for i in 0..count {
        let a = g.attachment();
        let ev = allocate(g, range, a, 1_764_000_000_000 + i);
        assert!(matches!(apply(&mut state, &ev), Ok(Outcome::Allocated(_))), "prefill {i}");
    }
    state
}
