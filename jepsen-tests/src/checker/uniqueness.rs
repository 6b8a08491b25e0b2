//! Uniqueness: no address certainly held by two owners at the same moment.
//!
//! An `ok` allocation certainly holds its address from its completion until the invoke of the
//! first release that may undo it. Indeterminate allocations have no known address and only
//! count through the final tables.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::anomaly::{Anomaly, AnomalyKind};
use super::index::ByOwner;
use super::operation::{ClientOp, OpKind};

struct Hold<'a> {
    op: &'a ClientOp,
    owner: &'a str,
    pool: IpNet,
    overlapping: bool,
    from: u64,
    until: u64,
}

/// Finds pairs of `ok` allocations whose certain holding intervals of one address overlap,
/// and final tables listing two holders of one address in an overlapping network.
pub fn find(ops: &[ClientOp]) -> Vec<Anomaly> {
    let mut holds: BTreeMap<(&str, IpAddr), Vec<Hold>> = BTreeMap::new();
    let by_owner = ByOwner::new(ops);
    for a in ops.iter().filter(|o| !o.retry) {
        let OpKind::Allocate { network, owner, ranges, overlapping, ips: Some(ips), .. } = &a.kind else {
            continue;
        };
        for (ip, range) in ips.iter().zip(ranges) {
            let until = by_owner
                .get(network, owner)
                .iter()
                .filter(|r| r.may_release(network, owner, *ip, range.cidr()) && r.end() > a.call)
                .map(|r| r.call)
                .min()
                .unwrap_or(u64::MAX);
            holds.entry((network, *ip)).or_default().push(Hold {
                op: a,
                owner,
                pool: range.cidr(),
                overlapping: *overlapping,
                from: a.end(),
                until,
            });
        }
    }
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for ((network, ip), hs) in &holds {
        for (i, x) in hs.iter().enumerate() {
            for y in &hs[i + 1..] {
                let shared = x.pool == y.pool || (x.overlapping && y.overlapping);
                let t = x.from.max(y.from);
                if x.owner == y.owner || !shared || t >= x.until || t >= y.until {
                    continue;
                }
                if !seen.insert((*network, *ip, x.owner.min(y.owner), x.owner.max(y.owner))) {
                    continue;
                }
                out.push(Anomaly::new(
                    AnomalyKind::DuplicateAddress,
                    format!(
                        "{network}/{ip} held by {} ({}) and {} ({}) at once (from #{t})",
                        x.owner,
                        x.op.label(),
                        y.owner,
                        y.op.label()
                    ),
                    vec![x.op.call, y.op.call],
                ));
            }
        }
    }
    out.extend(final_duplicates(ops));
    out
}

fn final_duplicates(ops: &[ClientOp]) -> Vec<Anomaly> {
    let overlapping: BTreeSet<&str> = ops
        .iter()
        .filter_map(|o| match &o.kind {
            OpKind::Allocate { network, overlapping: true, .. } => Some(network.as_str()),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for f in ops {
        let OpKind::FinalRead { table: Some(t) } = &f.kind else {
            continue;
        };
        for (network, ip, holders) in t.entries() {
            if holders.len() > 1 && overlapping.contains(network) {
                out.push(Anomaly::new(
                    AnomalyKind::DuplicateAddress,
                    format!("{network}/{ip} held by {holders} in the final table of {}", f.label()),
                    vec![f.call],
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::pair;
    use crate::history::parse_history;

    fn ops(lines: &[(u64, &str, &str, &str)]) -> Vec<ClientOp> {
        let text: String = lines
            .iter()
            .enumerate()
            .map(|(i, (p, ty, f, v))| {
                format!(r#"{{"index":{i},"time":{i},"process":{p},"type":"{ty}","f":"{f}","value":{v}}}"#) + "\n"
            })
            .collect();
        pair(&parse_history(text.as_bytes()).unwrap()).unwrap().ops
    }

    const A: &str = r#"{"request_id":"a","network":"n","owner":"a/eth0","ranges":[{"range":"10.0.0.0/29"}]}"#;
    const B: &str = r#"{"request_id":"b","network":"n","owner":"b/eth0","ranges":[{"range":"10.0.0.0/29"}]}"#;
    const REL_A: &str = r#"{"request_id":"ra","network":"n","owner":"a/eth0","ranges":[{"range":"10.0.0.0/29"}]}"#;
    const IP1: &str = r#"{"ips":["10.0.0.1"]}"#;

    #[test]
    fn release_concurrent_with_the_second_allocation_excuses_it() {
        let h = ops(&[
            (0, "invoke", "allocate", A),
            (0, "ok", "allocate", IP1),
            (0, "invoke", "release", REL_A),
            (1, "invoke", "allocate", B),
            (1, "ok", "allocate", IP1),
            (0, "ok", "release", "{}"),
        ]);
        assert!(find(&h).is_empty());
    }

    #[test]
    fn release_after_the_second_allocation_does_not() {
        let h = ops(&[
            (0, "invoke", "allocate", A),
            (0, "ok", "allocate", IP1),
            (1, "invoke", "allocate", B),
            (1, "ok", "allocate", IP1),
            (0, "invoke", "release", REL_A),
            (0, "info", "release", "{}"),
        ]);
        let found = find(&h);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, AnomalyKind::DuplicateAddress);
        assert_eq!(found[0].events, vec![0, 2]);
    }

    #[test]
    fn different_networks_may_share_an_address() {
        let b_other = B.replace(r#""network":"n""#, r#""network":"m""#);
        let h = ops(&[
            (0, "invoke", "allocate", A),
            (0, "ok", "allocate", IP1),
            (1, "invoke", "allocate", &b_other),
            (1, "ok", "allocate", IP1),
        ]);
        assert!(find(&h).is_empty());
    }
}
