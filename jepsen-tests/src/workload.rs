//! What the clients of a chaos run ([`crate::harness`]) and of the simulation ([`crate::sim`])
//! do: allocate, release (by owner and by address) and check, on small pools (/28s, so
//! exhaustion and reuse happen) of a few networks. Three network shapes rotate:
//!
//! - `overlap`: two overlapping pools in one `network_name` (a /28 and the /29 inside it);
//! - `dual`: dual-stack `ipRanges` (an IPv4 /28 and an IPv6 /124, one address from each or none);
//! - `exclude`: a /28 with `range_start` and an excluded /30.
//!
//! Pool addresses are data only (the benchmarking range 198.18.0.0/15 and fd00::/8): nothing
//! ever sends traffic to them. Requests never carry pod references or GC, which the checker's
//! model does not know; `enable_overlapping_ranges` is left at its default (true).

use std::net::IpAddr;

use crate::history::{Allocate, Op, RangeSpec, ReadOwner, Release, ReleaseIp};
use crate::rng::Rng;

/// Owners per network (more than a /28 holds, so pools run out).
pub const OWNERS: u64 = 12;

/// One network of the workload.
#[derive(Debug, Clone)]
pub struct NetworkSpec {
    /// `network_name`.
    pub name: String,
    /// The range lists an allocation may ask for (one is chosen per request).
    pub requests: Vec<Vec<RangeSpec>>,
    /// Every range of the network: a release by owner frees the owner's addresses in all of
    /// them (the cluster releases the owner in every pool of the network).
    pub all_ranges: Vec<RangeSpec>,
}

fn spec(range: &str) -> RangeSpec {
    RangeSpec::new(range)
}

/// The networks of a run (`count` of them, shapes rotating).
pub fn networks(count: usize) -> Vec<NetworkSpec> {
    (0..count.clamp(1, 250))
        .map(|i| {
            let v4 = format!("198.18.{i}.0");
            match i % 3 {
                0 => {
                    let (big, small) = (spec(&format!("{v4}/28")), spec(&format!("{v4}/29")));
                    NetworkSpec {
                        name: format!("overlap-{i}"),
                        requests: vec![vec![big.clone()], vec![big.clone()], vec![small.clone()]],
                        all_ranges: vec![big, small],
                    }
                }
                1 => {
                    let both = vec![spec(&format!("{v4}/28")), spec(&format!("fd00:18:{i:x}::/124"))];
                    NetworkSpec { name: format!("dual-{i}"), requests: vec![both.clone()], all_ranges: both }
                }
                _ => {
                    let mut r = spec(&format!("{v4}/28"));
                    r.range_start = format!("198.18.{i}.2").parse().ok();
                    r.exclude = vec![format!("198.18.{i}.8/30")];
                    NetworkSpec { name: format!("exclude-{i}"), requests: vec![vec![r.clone()]], all_ranges: vec![r] }
                }
            }
        })
        .collect()
}

/// `<containerID>/<ifname>` of owner `k` (two interface names, so owners differ by ifname too).
pub fn owner(k: u64) -> String {
    let ifname = if k % 3 == 2 { "net1" } else { "eth0" };
    format!("ctr{k}/{ifname}")
}

/// Splits an owner into container id and ifname.
pub fn split_owner(owner: &str) -> (&str, &str) {
    owner.split_once('/').unwrap_or((owner, "eth0"))
}

/// The next operation of a client. `guess` proposes an address an owner may hold (for guarded
/// releases); `request_id` is unique per operation and reused by every retry of it.
pub fn next_op(
    rng: &mut Rng,
    nets: &[NetworkSpec],
    request_id: String,
    guess: impl Fn(&str, &str) -> Option<IpAddr>,
) -> Op {
    let net = rng.pick(nets).expect("at least one network");
    let owner_name = owner(rng.below(OWNERS));
    let network = net.name.clone();
    match rng.below(100) {
        0..=44 => {
            let ranges = rng.pick(&net.requests).cloned().unwrap_or_default();
            Op::Allocate(Allocate::new(request_id, network, owner_name, ranges))
        }
        45..=69 => Op::Release(Release { request_id, network, owner: owner_name, ranges: net.all_ranges.clone() }),
        70..=79 => {
            let ip = match guess(&network, &owner_name) {
                Some(ip) if rng.chance(75) => ip,
                _ => random_ip(rng, &net.all_ranges[0]),
            };
            Op::ReleaseIp(ReleaseIp { request_id: Some(request_id), network, ip, owner: owner_name })
        }
        _ => Op::ReadOwner(ReadOwner { network, owner: owner_name, ips: None }),
    }
}

/// An address inside the first 16 of a range's CIDR (for guarded releases of unknown holders).
fn random_ip(rng: &mut Rng, range: &RangeSpec) -> IpAddr {
    let base: IpAddr = range.range.split('/').next().and_then(|a| a.parse().ok()).unwrap_or([0, 0, 0, 0].into());
    let k = 1 + rng.below(14) as u8;
    match base {
        IpAddr::V4(a) => {
            let o = a.octets();
            IpAddr::from([o[0], o[1], o[2], o[3] + k])
        }
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) + u128::from(k)).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Range;

    #[test]
    fn every_range_parses_in_the_checker_model() {
        for n in networks(6) {
            for r in n.requests.iter().flatten().chain(&n.all_ranges) {
                Range::parse(r).unwrap_or_else(|e| panic!("{}: {r:?}: {e}", n.name));
            }
        }
    }

    #[test]
    fn ops_are_well_formed_and_mixed() {
        let nets = networks(3);
        let mut rng = Rng::new(1);
        let mut kinds = [0; 4];
        for i in 0..400 {
            match next_op(&mut rng, &nets, format!("r{i}"), |_, _| None) {
                Op::Allocate(a) => {
                    kinds[0] += 1;
                    assert!(!a.ranges.is_empty());
                }
                Op::Release(_) => kinds[1] += 1,
                Op::ReleaseIp(_) => kinds[2] += 1,
                Op::ReadOwner(_) => kinds[3] += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(kinds.iter().all(|k| *k > 20), "{kinds:?}");
        assert_eq!(split_owner("ctr2/net1"), ("ctr2", "net1"));
    }
}
