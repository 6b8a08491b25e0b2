//! Linearizability per network (independent keys) against the lowest-free model.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::anomaly::{Anomaly, AnomalyKind};
use super::operation::{ClientOp, OpKind, Outcome};
use crate::model::{NetOp, NetworkModel, Observation, OwnerId, PoolId, PoolRange, ReqId, Request};
use crate::wgl::{self, Budget, Timed};

/// Search result for one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum LinStatus {
    /// A linearization was found.
    Linearizable,
    /// No linearization exists; see the `not-linearizable` anomaly.
    NotLinearizable,
    /// The search bound was hit: nothing is claimed.
    Unknown {
        /// Which bound.
        reason: String,
    },
}

/// Linearizability verdict of one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkVerdict {
    /// Network name.
    pub network: String,
    /// Operations given to the search (definite and indeterminate).
    pub ops: usize,
    /// Memoized configurations explored.
    pub states: usize,
    /// Outcome.
    #[serde(flatten)]
    pub status: LinStatus,
}

#[derive(Default)]
struct Names {
    owners: HashMap<String, OwnerId>,
    owner_names: Vec<String>,
    pools: HashMap<IpNet, PoolId>,
    reqs: HashMap<String, ReqId>,
}

impl Names {
    fn owner(&mut self, name: &str) -> OwnerId {
        if let Some(id) = self.owners.get(name) {
            return *id;
        }
        let id = OwnerId::try_from(self.owner_names.len()).unwrap_or(OwnerId::MAX);
        self.owners.insert(name.to_string(), id);
        self.owner_names.push(name.to_string());
        id
    }

    fn pool(&mut self, cidr: IpNet) -> PoolId {
        let next = PoolId::try_from(self.pools.len()).unwrap_or(PoolId::MAX);
        *self.pools.entry(cidr).or_insert(next)
    }

    fn req(&mut self, id: Option<&str>, repeated: &BTreeSet<&str>) -> Option<ReqId> {
        let id = id.filter(|i| repeated.contains(i))?;
        let next = ReqId::try_from(self.reqs.len()).unwrap_or(ReqId::MAX);
        Some(*self.reqs.entry(id.to_string()).or_insert(next))
    }

    fn owner_name(&self, id: OwnerId) -> &str {
        self.owner_names.get(id as usize).map_or("?", String::as_str)
    }
}

fn to_net_op(op: &ClientOp, network: &str, names: &mut Names, repeated: &BTreeSet<&str>) -> Option<NetOp> {
    if op.network().is_some_and(|n| n != network) {
        return None;
    }
    let ok = op.outcome == Outcome::Ok;
    let req = names.req(op.request_id(), repeated);
    let (request, expect) = match &op.kind {
        OpKind::Allocate { owner, ranges, overlapping, ips, exhausted, .. } => {
            let expect = match op.outcome {
                Outcome::Ok => Some(Observation::Allocated(ips.clone().unwrap_or_default())),
                Outcome::Fail if *exhausted => Some(Observation::Exhausted),
                Outcome::Fail => return None,
                Outcome::Info | Outcome::Pending => None,
            };
            let ranges = ranges.iter().map(|r| PoolRange { pool: names.pool(r.cidr()), range: r.clone() }).collect();
            let owner = names.owner(owner);
            let request = Request::Allocate { req, owner, ranges, overlapping: *overlapping };
            (request, expect)
        }
        OpKind::Release { owner, ranges, .. } if op.may_apply() => {
            let pools = ranges.iter().map(|r| names.pool(r.cidr())).collect();
            let owner = names.owner(owner);
            let request = Request::Release { req, owner, pools };
            (request, ok.then_some(Observation::Released))
        }
        OpKind::ReleaseIp { ip, owner, .. } if op.may_apply() => {
            let owner = names.owner(owner);
            let request = Request::ReleaseIp { req, ip: *ip, owner };
            (request, ok.then_some(Observation::Released))
        }
        OpKind::ReadOwner { owner, ips: Some(ips), .. } if ok => {
            let owner = names.owner(owner);
            let seen = Observation::Owned(ips.iter().copied().collect());
            (Request::ReadOwner { owner }, Some(seen))
        }
        OpKind::FinalRead { table: Some(t) } if ok => {
            let mut seen: BTreeMap<IpAddr, BTreeSet<OwnerId>> = BTreeMap::new();
            for (ip, holders) in t.network(network) {
                let ids = holders.iter().map(|h| names.owner(h)).collect();
                seen.insert(*ip, ids);
            }
            (Request::ReadAll, Some(Observation::Table(seen)))
        }
        _ => return None,
    };
    Some(NetOp { request, expect })
}

/// Runs the search for every network that appears in an operation or a final table.
pub fn check(ops: &[ClientOp], budget: Budget) -> (Vec<NetworkVerdict>, Vec<Anomaly>) {
    let mut networks: BTreeSet<&str> = ops.iter().filter_map(ClientOp::network).collect();
    for op in ops {
        if let OpKind::FinalRead { table: Some(t) } = &op.kind {
            networks.extend(t.networks());
        }
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in ops.iter().filter_map(ClientOp::request_id) {
        *counts.entry(id).or_default() += 1;
    }
    let repeated: BTreeSet<&str> = counts.into_iter().filter(|(_, c)| *c > 1).map(|(i, _)| i).collect();
    let mut verdicts = Vec::new();
    let mut anomalies = Vec::new();
    for network in networks {
        let mut names = Names::default();
        let mut timed = Vec::new();
        let mut origin = Vec::new();
        for op in ops {
            if let Some(net_op) = to_net_op(op, network, &mut names, &repeated) {
                let ret = net_op.expect.is_some().then(|| op.end());
                timed.push(Timed { call: op.call, ret, op: net_op });
                origin.push(op);
            }
        }
        let outcome = wgl::check(&NetworkModel, &timed, budget);
        let (status, states) = match outcome {
            wgl::Outcome::Linearizable { states } => (LinStatus::Linearizable, states),
            wgl::Outcome::Unknown { states, reason } => (LinStatus::Unknown { reason }, states),
            wgl::Outcome::Violation { stuck, state, depth, states } => {
                let op = origin[stuck];
                let net_op = &timed[stuck].op;
                let model = state.apply(&net_op.request).1;
                let seen = net_op.expect.as_ref().map_or("unknown".to_string(), |o| describe(o, &names));
                let detail = match (&net_op.expect, &model) {
                    (Some(Observation::Table(a)), Observation::Table(b)) => table_diff(a, b, &names),
                    _ => format!("observed {seen}; the model gives {}", describe(&model, &names)),
                };
                anomalies.push(Anomaly::new(
                    AnomalyKind::NotLinearizable,
                    format!("{network}: {} cannot be linearized after {depth} other operations: {detail}", op.label()),
                    std::iter::once(op.call).chain(op.done.map(|d| d.0)).collect(),
                ));
                (LinStatus::NotLinearizable, states)
            }
        };
        verdicts.push(NetworkVerdict { network: network.to_string(), ops: timed.len(), states, status });
    }
    (verdicts, anomalies)
}

fn list(ips: impl IntoIterator<Item = IpAddr>) -> String {
    let v: Vec<String> = ips.into_iter().map(|i| i.to_string()).collect();
    format!("[{}]", v.join(", "))
}

fn describe(o: &Observation, names: &Names) -> String {
    match o {
        Observation::Allocated(ips) => list(ips.iter().copied()),
        Observation::Exhausted => "exhausted".to_string(),
        Observation::Released => "released".to_string(),
        Observation::Owned(ips) => list(ips.iter().copied()),
        Observation::Table(t) => {
            let owners = |s: &BTreeSet<OwnerId>| s.iter().map(|o| names.owner_name(*o)).collect::<Vec<_>>().join("+");
            let v: Vec<String> = t.iter().map(|(ip, s)| format!("{ip}={}", owners(s))).collect();
            format!("{{{}}}", v.join(", "))
        }
    }
}

fn table_diff(
    seen: &BTreeMap<IpAddr, BTreeSet<OwnerId>>,
    model: &BTreeMap<IpAddr, BTreeSet<OwnerId>>,
    names: &Names,
) -> String {
    let show = |s: Option<&BTreeSet<OwnerId>>| {
        s.map_or("none".to_string(), |s| s.iter().map(|o| names.owner_name(*o)).collect::<Vec<_>>().join("+"))
    };
    let keys: BTreeSet<&IpAddr> = seen.keys().chain(model.keys()).collect();
    let diffs: Vec<String> = keys
        .into_iter()
        .filter(|ip| seen.get(ip) != model.get(ip))
        .take(3)
        .map(|ip| format!("{ip} read {} vs model {}", show(seen.get(ip)), show(model.get(ip))))
        .collect();
    format!("final table differs from the model state: {}", diffs.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::pair;
    use crate::history::parse_history;

    fn run(text: &str) -> (Vec<NetworkVerdict>, Vec<Anomaly>) {
        let ops = pair(&parse_history(text.as_bytes()).unwrap()).unwrap().ops;
        let budget = Budget { max_states: 10_000, deadline: None };
        check(&ops, budget)
    }

    const RETRY: &str = r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"allocate","value":{"request_id":"r1","network":"n","owner":"a/eth0","ranges":[{"range":"10.0.0.0/29"}]}}
{"index":1,"time":1,"process":0,"type":"info","f":"allocate","value":{}}
{"index":2,"time":2,"process":1,"type":"invoke","f":"release","value":{"request_id":"r2","network":"n","owner":"a/eth0","ranges":[{"range":"10.0.0.0/29"}]}}
{"index":3,"time":3,"process":1,"type":"ok","f":"release","value":{}}
{"index":4,"time":4,"process":0,"type":"invoke","f":"allocate","value":{"request_id":"r1","network":"n","owner":"a/eth0","ranges":[{"range":"10.0.0.0/29"}]}}
{"index":5,"time":5,"process":0,"type":"ok","f":"allocate","value":{"ips":["10.0.0.1"]}}
"#;

    #[test]
    fn a_retried_request_id_may_return_the_cached_reply() {
        let final_empty = r#"{"index":6,"time":6,"process":2,"type":"invoke","f":"read","value":{"final":true}}
{"index":7,"time":7,"process":2,"type":"ok","f":"read","value":{"allocations":{}}}
"#;
        let (v, a) = run(&format!("{RETRY}{final_empty}"));
        assert!(a.is_empty(), "{a:?}");
        assert_eq!(v[0].status, LinStatus::Linearizable);
    }

    #[test]
    fn a_phantom_network_in_the_final_table_is_caught() {
        let phantom = r#"{"index":6,"time":6,"process":2,"type":"invoke","f":"read","value":{"final":true}}
{"index":7,"time":7,"process":2,"type":"ok","f":"read","value":{"allocations":{"n":{"10.0.0.1":"a/eth0"},"ghost":{"10.9.0.1":"x/eth0"}}}}
"#;
        let (v, a) = run(&format!("{RETRY}{phantom}"));
        let names: Vec<&str> = v.iter().map(|x| x.network.as_str()).collect();
        assert_eq!(names, ["ghost", "n"]);
        assert_eq!(v[0].status, LinStatus::NotLinearizable);
        assert_eq!(v[1].status, LinStatus::Linearizable);
        assert_eq!(a.len(), 1);
    }
}
