//! Durability against the final tables: acknowledged allocations stay, acknowledged releases stay done.

use std::net::IpAddr;

use super::anomaly::{Anomaly, AnomalyKind};
use super::index::ByOwner;
use super::operation::{ClientOp, OpKind, Outcome};
use crate::history::FinalTable;

/// Final tables of the `ok` final reads, with the read that produced each.
fn finals(ops: &[ClientOp]) -> Vec<(&ClientOp, &FinalTable)> {
    ops.iter()
        .filter_map(|o| match &o.kind {
            OpKind::FinalRead { table: Some(t) } => Some((o, t)),
            _ => None,
        })
        .collect()
}

/// Reports acknowledged allocations missing from a final table (unless a release that may have
/// taken effect after them exists), and acknowledged releases whose address is back with the
/// same owner (unless an allocation by that owner may have followed).
pub fn find(ops: &[ClientOp]) -> Vec<Anomaly> {
    let finals = finals(ops);
    let mut out = Vec::new();
    if finals.is_empty() {
        return out;
    }
    let by_owner = ByOwner::new(ops);
    for a in ops.iter().filter(|o| !o.retry) {
        let OpKind::Allocate { network, owner, ranges, ips: Some(ips), .. } = &a.kind else {
            continue;
        };
        for (ip, range) in ips.iter().zip(ranges) {
            let group = by_owner.get(network, owner);
            let released = group.iter().any(|r| r.may_release(network, owner, *ip, range.cidr()) && r.end() > a.call);
            if released {
                continue;
            }
            for (f, table) in &finals {
                let holders = table.holders(network, *ip);
                if !holders.is_some_and(|h| h.contains(owner)) {
                    let now = holders.map_or("nobody".to_string(), |h| h.to_string());
                    out.push(Anomaly::new(
                        AnomalyKind::LostAllocation,
                        format!(
                            "{network}/{ip} given to {owner} by {} and never released; {} says {now}",
                            a.label(),
                            f.label()
                        ),
                        vec![a.call, f.call],
                    ));
                }
            }
        }
    }
    for r in ops.iter().filter(|o| o.outcome == Outcome::Ok) {
        for (f, table) in &finals {
            if let Some(ip) = undone(&by_owner, r, table) {
                out.push(Anomaly::new(
                    AnomalyKind::UndoneRelease,
                    format!(
                        "{} released {ip} of {}, but {} still gives it to that owner",
                        r.label(),
                        r_owner(r),
                        f.label()
                    ),
                    vec![r.call, f.call],
                ));
            }
        }
    }
    out
}

fn r_owner(r: &ClientOp) -> &str {
    match &r.kind {
        OpKind::Release { owner, .. } | OpKind::ReleaseIp { owner, .. } => owner,
        _ => "",
    }
}

/// First address in `table` that the `ok` release `r` freed and that nothing can explain.
fn undone(by_owner: &ByOwner<'_>, r: &ClientOp, table: &FinalTable) -> Option<IpAddr> {
    let (network, owner) = match &r.kind {
        OpKind::Release { network, owner, .. } | OpKind::ReleaseIp { network, owner, .. } => (network, owner),
        _ => return None,
    };
    table.network(network).filter(|(_, h)| h.contains(owner)).map(|(ip, _)| *ip).find(|ip| {
        let released_here = match &r.kind {
            OpKind::Release { ranges, .. } => ranges.iter().any(|x| x.contains(*ip)),
            OpKind::ReleaseIp { ip: target, .. } => target == ip,
            _ => false,
        };
        released_here && !explained(by_owner.get(network, owner), r, network, owner, *ip)
    })
}

/// Whether some allocation by `owner` may hold `ip` despite the release `r`: it may have taken
/// effect after `r`, or (for a range release) it holds `ip` through a pool `r` did not release.
fn explained(group: &[&ClientOp], r: &ClientOp, network: &str, owner: &str, ip: IpAddr) -> bool {
    group.iter().any(|g| {
        let OpKind::Allocate { network: n, owner: o, ranges, ips, exhausted, .. } = &g.kind else {
            return false;
        };
        if n != network || o != owner || *exhausted || !g.may_apply() {
            return false;
        }
        ranges.iter().enumerate().any(|(k, range)| {
            let gives = range.contains(ip) && ips.as_ref().is_none_or(|v| v[k] == ip);
            let other_pool = match &r.kind {
                OpKind::Release { ranges: rel, .. } => rel.iter().all(|x| x.cidr() != range.cidr()),
                _ => false,
            };
            gives && (other_pool || g.end() > r.call)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::pair;
    use crate::history::parse_history;

    fn ops(text: &str) -> Vec<ClientOp> {
        pair(&parse_history(text.as_bytes()).unwrap()).unwrap().ops
    }

    const ALLOC: &str = r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"allocate","value":{"request_id":"a","network":"n","owner":"a/eth0","ranges":[{"range":"10.0.0.0/29"}]}}
{"index":1,"time":1,"process":0,"type":"ok","f":"allocate","value":{"ips":["10.0.0.1"]}}
"#;
    const EMPTY_FINAL: &str = r#"{"index":4,"time":4,"process":2,"type":"invoke","f":"read","value":{"final":true}}
{"index":5,"time":5,"process":2,"type":"ok","f":"read","value":{"allocations":{}}}
"#;

    #[test]
    fn an_info_release_may_explain_a_missing_allocation() {
        let rel = r#"{"index":2,"time":2,"process":1,"type":"invoke","f":"release","value":{"request_id":"r","network":"n","ip":"10.0.0.1","owner":"a/eth0"}}
{"index":3,"time":3,"process":1,"type":"info","f":"release","value":{}}
"#;
        assert!(find(&ops(&format!("{ALLOC}{rel}{EMPTY_FINAL}"))).is_empty());
    }

    #[test]
    fn a_failed_release_does_not() {
        let rel = r#"{"index":2,"time":2,"process":1,"type":"invoke","f":"release","value":{"request_id":"r","network":"n","ip":"10.0.0.1","owner":"a/eth0"}}
{"index":3,"time":3,"process":1,"type":"fail","f":"release","value":{}}
"#;
        let found = find(&ops(&format!("{ALLOC}{rel}{EMPTY_FINAL}")));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, AnomalyKind::LostAllocation);
    }

    #[test]
    fn without_final_reads_nothing_is_claimed() {
        assert!(find(&ops(ALLOC)).is_empty());
    }
}
