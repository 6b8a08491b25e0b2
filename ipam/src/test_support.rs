//! Builders the domain's unit tests share (test builds only): a range from its CIDR, an
//! attachment on `eth0`, a one-range ADD event, the first address of a reply.

use crate::event::{Allocate, Command, Event, Outcome, Reply};
use crate::owner::{Attachment, Owner};
use crate::range::{Range, RangeSpec};

/// An empty state at cluster version 2, where this release's semantics apply (overlapping ranges
/// off reserve nothing across the network); `State::default()` is at version 1, release 0.1.0's.
pub fn state_v2() -> crate::State {
    crate::State { cluster_version: 2, ..Default::default() }
}

/// The whole of `cidr` as a range.
pub fn range(cidr: &str) -> Range {
    Range::parse(&RangeSpec { range: cidr.into(), ..Default::default() }, "ipam").unwrap().0
}

/// Container `cid`'s `eth0` on CNI network `cni-net`.
pub fn att(cid: &str) -> Attachment {
    Attachment::new(Owner::new(cid, "eth0"), "cni-net")
}

/// An ADD of `a` from `r` in network `network`, at leader time 1,000 ms.
pub fn allocate_event(network: &str, r: &Range, a: Attachment, overlapping: bool) -> Event {
    let cmd =
        Allocate { network: network.into(), ranges: vec![r.clone()], statics: vec![], overlapping, attachment: a };
    Event::new(Command::Allocate(cmd), 1_000)
}

/// The first address an allocation reply gave (panics on anything else).
pub fn first_ip(reply: Reply) -> String {
    match reply {
        Ok(Outcome::Allocated(l)) => l[0].ip.to_string(),
        other => panic!("unexpected reply: {other:?}"),
    }
}
