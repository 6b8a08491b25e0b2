//! Pairs invocations with completions and canonicalises their ranges: the checker's trusted input.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::history::{Event, EventType, FinalTable, HistoryError, NodeId, Op, Process, RangeSpec, ERROR_EXHAUSTED};
use crate::model::Range;

/// How a client operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied, result known.
    Ok,
    /// Not applied.
    Fail,
    /// Unknown (timeout, connection lost).
    Info,
    /// No completion before the history ended: treated like `Info`.
    Pending,
}

/// What a client operation asked and, when it completed `ok`, what it got.
#[derive(Debug, Clone)]
pub enum OpKind {
    /// CNI ADD.
    Allocate {
        /// Client request id.
        request_id: String,
        /// Network name.
        network: String,
        /// Owner.
        owner: String,
        /// Canonical ranges, request order.
        ranges: Vec<Arc<Range>>,
        /// Overlapping flag.
        overlapping: bool,
        /// Addresses returned by an `ok` completion.
        ips: Option<Vec<IpAddr>>,
        /// A `fail` completion said "exhausted".
        exhausted: bool,
    },
    /// Release by owner and ranges.
    Release {
        /// Client request id.
        request_id: String,
        /// Network name.
        network: String,
        /// Owner.
        owner: String,
        /// Canonical ranges.
        ranges: Vec<Arc<Range>>,
    },
    /// Guarded release of one address.
    ReleaseIp {
        /// Optional client request id.
        request_id: Option<String>,
        /// Network name.
        network: String,
        /// Address.
        ip: IpAddr,
        /// Expected holder.
        owner: String,
    },
    /// Per-owner read.
    ReadOwner {
        /// Network name.
        network: String,
        /// Owner.
        owner: String,
        /// Result of an `ok` completion.
        ips: Option<Vec<IpAddr>>,
    },
    /// Final full read.
    FinalRead {
        /// Result of an `ok` completion.
        table: Option<FinalTable>,
    },
}

/// One client operation: invoke plus (optional) completion.
#[derive(Debug, Clone)]
pub struct ClientOp {
    /// Client number.
    pub process: u64,
    /// Node the client talked to (from the invoke).
    pub node: Option<NodeId>,
    /// Index of the invoke event.
    pub call: u64,
    /// Index and time of the completion event, whatever its type.
    pub done: Option<(u64, u64)>,
    /// How it ended.
    pub outcome: Outcome,
    /// True when an earlier-invoked operation used the same request id (the reply may be a cached one).
    pub retry: bool,
    /// Request and result.
    pub kind: OpKind,
}

impl Outcome {
    /// Lower-case name (`pending` for an invoke never completed).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
            Outcome::Pending => "pending",
        }
    }
}

impl ClientOp {
    /// Index after which the operation certainly has no further effect; `u64::MAX` for info/pending.
    pub fn end(&self) -> u64 {
        match (self.outcome, self.done) {
            (Outcome::Ok | Outcome::Fail, Some((i, _))) => i,
            _ => u64::MAX,
        }
    }

    /// Whether it may have changed the state (anything but a definite `fail`).
    pub fn may_apply(&self) -> bool {
        self.outcome != Outcome::Fail
    }

    /// Whether this is a release (possibly applied) that would free `ip` held by `owner` in `pool`.
    pub fn may_release(&self, network: &str, owner: &str, ip: IpAddr, pool: IpNet) -> bool {
        self.may_apply()
            && match &self.kind {
                OpKind::Release { network: n, owner: o, ranges, .. } => {
                    n == network && o == owner && ranges.iter().any(|r| r.cidr() == pool)
                }
                OpKind::ReleaseIp { network: n, owner: o, ip: a, .. } => n == network && o == owner && *a == ip,
                _ => false,
            }
    }

    /// Network touched, if the operation concerns a single one.
    pub fn network(&self) -> Option<&str> {
        match &self.kind {
            OpKind::Allocate { network, .. }
            | OpKind::Release { network, .. }
            | OpKind::ReleaseIp { network, .. }
            | OpKind::ReadOwner { network, .. } => Some(network),
            OpKind::FinalRead { .. } => None,
        }
    }

    /// Request id, for operations that carry one.
    pub fn request_id(&self) -> Option<&str> {
        match &self.kind {
            OpKind::Allocate { request_id, .. } | OpKind::Release { request_id, .. } => Some(request_id),
            OpKind::ReleaseIp { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// Short description for messages: `allocate p3 #12-#15`.
    pub fn label(&self) -> String {
        let f = match self.kind {
            OpKind::Allocate { .. } => "allocate",
            OpKind::Release { .. } | OpKind::ReleaseIp { .. } => "release",
            OpKind::ReadOwner { .. } => "read",
            OpKind::FinalRead { .. } => "final read",
        };
        let end = self.done.map_or("…".to_string(), |(i, _)| format!("#{i}"));
        let node = self.node.map_or(String::new(), |n| format!(" node {n}"));
        format!("{f} p{}{node} #{}-{end}", self.process, self.call)
    }
}

/// A history split into client operations (in invoke order) and nemesis events.
#[derive(Debug, Clone, Default)]
pub struct Paired {
    /// Client operations, ordered by invoke index.
    pub ops: Vec<ClientOp>,
    /// Nemesis events in file order.
    pub nemesis: Vec<Event>,
}

fn ranges(index: u64, specs: &[RangeSpec]) -> Result<Vec<Arc<Range>>, HistoryError> {
    if specs.is_empty() {
        return Err(HistoryError::malformed(index, "no ranges"));
    }
    specs
        .iter()
        .map(|s| Range::parse(s).map(Arc::new).map_err(|e| HistoryError::malformed(index, e.to_string())))
        .collect()
}

fn kind_of(invoke: &Event, done: Option<&Event>) -> Result<OpKind, HistoryError> {
    let i = invoke.index;
    let ok = done.filter(|d| d.kind == EventType::Ok);
    let need = |what: &str| HistoryError::malformed(ok.map_or(i, |d| d.index), format!("ok {what} without result"));
    Ok(match (&invoke.op, done.map(|d| &d.op)) {
        (Op::Allocate(a), d) => {
            let out = match d {
                Some(Op::Allocate(o)) => Some(o),
                _ => None,
            };
            let rs = ranges(i, &a.ranges)?;
            let ips = if ok.is_some() {
                let ips = out.and_then(|o| o.ips.clone()).ok_or_else(|| need("allocate"))?;
                if ips.len() != rs.len() {
                    return Err(HistoryError::malformed(
                        ok.map_or(i, |d| d.index),
                        format!("{} ips for {} ranges", ips.len(), rs.len()),
                    ));
                }
                Some(ips)
            } else {
                None
            };
            let failed = done.is_some_and(|d| d.kind == EventType::Fail);
            OpKind::Allocate {
                request_id: a.request_id.clone(),
                network: a.network.clone(),
                owner: a.owner.clone(),
                ranges: rs,
                overlapping: a.overlapping,
                ips,
                exhausted: failed && out.and_then(|o| o.error.as_deref()) == Some(ERROR_EXHAUSTED),
            }
        }
        (Op::Release(r), _) => OpKind::Release {
            request_id: r.request_id.clone(),
            network: r.network.clone(),
            owner: r.owner.clone(),
            ranges: ranges(i, &r.ranges)?,
        },
        (Op::ReleaseIp(r), _) => OpKind::ReleaseIp {
            request_id: r.request_id.clone(),
            network: r.network.clone(),
            ip: r.ip,
            owner: r.owner.clone(),
        },
        (Op::ReadOwner(r), d) => {
            let ips = match (ok, d) {
                (Some(_), Some(Op::ReadOwner(o))) => Some(o.ips.clone().ok_or_else(|| need("read"))?),
                _ => None,
            };
            OpKind::ReadOwner { network: r.network.clone(), owner: r.owner.clone(), ips }
        }
        (Op::FinalRead(_), d) => {
            let table = match (ok, d) {
                (Some(_), Some(Op::FinalRead(o))) => Some(o.allocations.clone().ok_or_else(|| need("final read"))?),
                _ => None,
            };
            OpKind::FinalRead { table }
        }
        (Op::Nemesis(_), _) => return Err(HistoryError::malformed(i, "nemesis op on a client")),
    })
}

fn same_shape(a: &Op, b: &Op) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// Pairs each client's invoke with its next completion. A client has at most one operation
/// outstanding; a completion must match its invoke's function. Invokes never completed are `Pending`.
pub fn pair(events: &[Event]) -> Result<Paired, HistoryError> {
    let mut open: HashMap<u64, &Event> = HashMap::new();
    let mut done: Vec<(&Event, Option<&Event>)> = Vec::new();
    let mut nemesis = Vec::new();
    for ev in events {
        let Process::Client(p) = ev.process else {
            nemesis.push(ev.clone());
            continue;
        };
        if ev.kind == EventType::Invoke {
            if let Some(prev) = open.insert(p, ev) {
                return Err(HistoryError::malformed(
                    ev.index,
                    format!("p{p} invokes while #{} is outstanding", prev.index),
                ));
            }
            continue;
        }
        let inv = open
            .remove(&p)
            .ok_or_else(|| HistoryError::malformed(ev.index, format!("p{p} completes with nothing outstanding")))?;
        if !same_shape(&inv.op, &ev.op) {
            return Err(HistoryError::malformed(
                ev.index,
                format!("completion of {} does not match invoke #{}", ev.op.f(), inv.index),
            ));
        }
        done.push((inv, Some(ev)));
    }
    done.extend(open.into_values().map(|inv| (inv, None)));
    done.sort_by_key(|(inv, _)| inv.index);
    let mut seen_ids: HashSet<String> = HashSet::new();
    let mut ops = Vec::with_capacity(done.len());
    for (inv, comp) in done {
        let Process::Client(process) = inv.process else {
            continue;
        };
        let outcome = match comp.map(|c| c.kind) {
            Some(EventType::Ok) => Outcome::Ok,
            Some(EventType::Fail) => Outcome::Fail,
            Some(_) => Outcome::Info,
            None => Outcome::Pending,
        };
        let mut op = ClientOp {
            process,
            node: inv.node,
            call: inv.index,
            done: comp.map(|c| (c.index, c.time)),
            outcome,
            retry: false,
            kind: kind_of(inv, comp)?,
        };
        if let Some(id) = op.request_id() {
            op.retry = !seen_ids.insert(id.to_string());
        }
        ops.push(op);
    }
    Ok(Paired { ops, nemesis })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::parse_history;

    const H: &str = r#"
{"index":0,"time":0,"process":0,"type":"invoke","f":"allocate","node":0,"value":{"request_id":"a","network":"n","owner":"x/eth0","ranges":[{"range":"10.0.0.0/29"}]}}
{"index":1,"time":1,"process":"nemesis","type":"info","f":"kill","value":{"nodes":[2]}}
{"index":2,"time":2,"process":1,"type":"invoke","f":"allocate","node":1,"value":{"request_id":"a","network":"n","owner":"x/eth0","ranges":[{"range":"10.0.0.0/29"}]}}
{"index":3,"time":3,"process":0,"type":"fail","f":"allocate","node":0,"value":{"error":"exhausted"}}
"#;

    #[test]
    fn pairs_and_marks_pending_and_retries() {
        let events = parse_history(H.as_bytes()).unwrap();
        let p = pair(&events).unwrap();
        assert_eq!(p.nemesis.len(), 1);
        assert_eq!(p.ops.len(), 2);
        assert_eq!(p.ops[0].outcome, Outcome::Fail);
        assert!(matches!(p.ops[0].kind, OpKind::Allocate { exhausted: true, .. }));
        assert_eq!(p.ops[1].outcome, Outcome::Pending);
        assert!(p.ops[1].retry && !p.ops[0].retry);
        assert_eq!(p.ops[1].end(), u64::MAX);
    }

    #[test]
    fn double_invoke_and_orphan_completion_are_malformed() {
        let events = parse_history(H.as_bytes()).unwrap();
        let mut bad = events.clone();
        bad[2].process = Process::Client(0);
        bad.truncate(3);
        assert!(matches!(pair(&bad), Err(HistoryError::Malformed { index: 2, .. })));
        let orphan = vec![events[3].clone()];
        assert!(matches!(pair(&orphan), Err(HistoryError::Malformed { index: 3, .. })));
    }
}
