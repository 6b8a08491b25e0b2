//! The allocator driven by structured operations (`arbitrary`): allocations with overlapping
//! CIDRs, bounds, exclusions and static addresses, releases, guarded releases and GC, over small
//! sets of networks, owners, pods and nodes — so that conflicts are frequent. After every step the
//! invariants hold, a failure changes nothing, the overlap rule holds in networks that only ever
//! asked for it, and a follower restored from a snapshot (at points the input chooses) keeps
//! answering exactly as the original.

#![no_main]

use std::collections::HashSet;
use std::net::IpAddr;

use arbitrary::Arbitrary;
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;
use ipam::{
    Allocate, Attachment, Command, Event, Gc, Limits, Owner, Range, RangeSpec, Release, ReleaseIp, State,
};
use whereabouts_fuzz::{apply_checked, check_no_overlap, check_range, observable, snapshot_round_trip};

const NETWORKS: [&str; 2] = ["", "tenant"];
const CIDRS: [&str; 12] = [
    "10.0.0.0/30",
    "10.0.0.0/29",
    "10.0.0.4/30",
    "10.0.0.8/29",
    "10.0.0.0/28",
    "10.0.0.0/24",
    "10.0.0.0/23",
    "10.0.1.0/24",
    "fd00::/126",
    "fd00::/125",
    "fd00::/120",
    "fd00::/64",
];

#[derive(Arbitrary, Debug)]
struct RangeChoice {
    cidr: u8,
    start: Option<u8>,
    end: Option<u8>,
    exclude: Vec<(u8, u8)>,
}

#[derive(Arbitrary, Debug)]
struct Who {
    container: u8,
    ifname: bool,
    pod: Option<u8>,
    node: Option<bool>,
    cni_network: bool,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Allocate {
        network: bool,
        ranges: Vec<RangeChoice>,
        statics: Vec<(u8, u16, u8)>,
        overlapping: bool,
        who: Who,
    },
    Release {
        network: bool,
        who: Who,
        only_node: Option<bool>,
    },
    ReleaseIp {
        network: bool,
        addr: (u8, u16),
        who: Who,
    },
    Gc {
        network: bool,
        cni_network: bool,
        node: bool,
        keep: Vec<Who>,
    },
    /// Take a snapshot and continue on both the original and the restored copy.
    Restore,
}

#[derive(Arbitrary, Debug)]
struct Step {
    op: Op,
    request_id: Option<u8>,
    time_ms: u16,
}

fn cidr(i: u8) -> IpNet {
    CIDRS[usize::from(i) % CIDRS.len()].parse().expect("listed CIDRs parse")
}

fn addr_in(net: IpNet, offset: u128) -> IpAddr {
    match net {
        IpNet::V4(n) => IpAddr::V4((u32::from(n.network()).wrapping_add(offset as u32)).into()),
        IpNet::V6(n) => IpAddr::V6((u128::from(n.network()).wrapping_add(offset)).into()),
    }
}

fn range(c: &RangeChoice) -> Option<Range> {
    let net = cidr(c.cidr);
    let spec = RangeSpec {
        range: net.to_string(),
        range_start: c.start.map(|o| addr_in(net, o.into()).to_string()),
        range_end: c.end.map(|o| addr_in(net, o.into()).to_string()),
        exclude: c
            .exclude
            .iter()
            .take(4)
            .map(|(o, p)| format!("{}/{}", addr_in(net, (*o).into()), net.max_prefix_len() - p % 4))
            .collect(),
    };
    let (range, _) = Range::parse(&spec, "range").ok()?;
    check_range(&range);
    Some(range)
}

fn owner(w: &Who) -> Owner {
    Owner::new(format!("c{}", w.container % 4), if w.ifname { "eth1" } else { "eth0" })
}

fn attachment(w: &Who) -> Attachment {
    let mut a = Attachment::new(owner(w), if w.cni_network { "other" } else { "net" });
    if let Some(p) = w.pod {
        a = a.with_pod("ns", format!("p{}", p % 3));
    }
    if let Some(n) = w.node {
        a = a.with_node(if n { "n1" } else { "n0" });
    }
    a
}

fn command(op: &Op) -> Option<Command> {
    let net = |b: &bool| NETWORKS[usize::from(*b)].to_string();
    Some(match op {
        Op::Allocate { network, ranges, statics, overlapping, who } => Command::Allocate(Allocate {
            network: net(network),
            ranges: ranges.iter().take(4).filter_map(range).collect(),
            statics: statics
                .iter()
                .take(3)
                .map(|(c, offset, prefix)| {
                    let base = cidr(*c);
                    let p = base.prefix_len().saturating_add(prefix % 3).min(base.max_prefix_len());
                    IpNet::new(addr_in(base, (*offset).into()), p).expect("prefix within the family")
                })
                .collect(),
            overlapping: *overlapping,
            attachment: attachment(who),
        }),
        Op::Release { network, who, only_node } => Command::Release(Release {
            network: net(network),
            owner: owner(who),
            only_node: only_node.map(|n| if n { "n1" } else { "n0" }.to_string()),
        }),
        Op::ReleaseIp { network, addr: (c, offset), who } => Command::ReleaseIp(ReleaseIp {
            network: net(network),
            ip: addr_in(cidr(*c), (*offset).into()),
            expected: owner(who),
        }),
        Op::Gc { network, cni_network, node, keep } => Command::Gc(Gc {
            network: net(network),
            cni_network: if *cni_network { "other" } else { "net" }.into(),
            node: if *node { "n1" } else { "n0" }.into(),
            keep: keep.iter().take(4).map(owner).collect(),
        }),
        Op::Restore => return None,
    })
}

fuzz_target!(|steps: Vec<Step>| {
    let limits = Limits { request_cache: 3, history: 5 };
    let mut state = State::new(limits);
    let mut restored: Option<State> = None;
    // Networks in which some allocation did not ask for the overlap rule.
    let mut mixed: HashSet<String> = HashSet::new();
    for step in steps.iter().take(48) {
        let Some(cmd) = command(&step.op) else {
            restored = Some(snapshot_round_trip(&state));
            continue;
        };
        if let Command::Allocate(a) = &cmd {
            if !a.overlapping {
                mixed.insert(a.network.clone());
            }
        }
        let mut event = Event::new(cmd, step.time_ms.into());
        if let Some(id) = step.request_id {
            event = event.with_request_id(format!("r{}", id % 6));
        }
        let reply = apply_checked(&mut state, &event);
        if let Some(copy) = restored.as_mut() {
            assert_eq!(apply_checked(copy, &event), reply, "a restored follower answered differently");
            assert_eq!(observable(copy), observable(&state));
        }
        for network in NETWORKS.iter().filter(|n| !mixed.contains(**n)) {
            check_no_overlap(&state, network);
        }
    }
    snapshot_round_trip(&state);
});
