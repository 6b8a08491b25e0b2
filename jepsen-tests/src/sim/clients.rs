//! Simulated clients: the harness's workload (same networks, same operation mix) sent straight to
//! the openraft nodes — writes through `client_write`, checks after `ensure_linearizable` — and
//! recorded in a history (simulated time) that the checker reads at the end.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ipam::{Attachment, Command, Event, IpamError, Outcome, Owner};
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use raft_store::types::Batch;
use tokio::time::Instant;

use super::router::Router;
use crate::history::{EventType, HistoryWriter, Op, Process, RangeSpec, ERROR_EXHAUSTED};
use crate::rng::Rng;
use crate::workload::{next_op, split_owner, NetworkSpec};

/// What the client tasks share.
pub struct ClientCtx {
    /// The router (running nodes).
    pub router: Router,
    /// The history, stamped with simulated time.
    pub history: HistoryWriter<Vec<u8>>,
    /// Simulated time zero.
    pub start: Instant,
    /// Set to stop invoking.
    pub stop: AtomicBool,
    /// The workload's networks.
    pub nets: Vec<NetworkSpec>,
}

impl ClientCtx {
    /// Simulated nanoseconds since the start.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn record(&self, p: u64, kind: EventType, node: u64, op: Op) {
        let _ = self.history.record_at(self.now_ns(), Process::Client(p), kind, Some(node), op);
    }
}

fn domain_range(r: &RangeSpec) -> Option<ipam::Range> {
    let spec = ipam::RangeSpec {
        range: r.range.clone(),
        range_start: r.range_start.map(|a| a.to_string()),
        range_end: r.range_end.map(|a| a.to_string()),
        exclude: r.exclude.clone(),
    };
    ipam::Range::parse(&spec, "range").ok().map(|(range, _)| range)
}

fn owner(o: &str) -> Owner {
    let (c, i) = split_owner(o);
    Owner::new(c, i)
}

/// The log event of a write operation.
fn event(op: &Op, time_ms: u64) -> Option<Event> {
    let (id, command) = match op {
        Op::Allocate(a) => {
            let ranges: Option<Vec<_>> = a.ranges.iter().map(domain_range).collect();
            let cmd = ipam::Allocate {
                network: a.network.clone(),
                ranges: ranges?,
                statics: Vec::new(),
                overlapping: a.overlapping,
                attachment: Attachment::new(owner(&a.owner), "sim"),
            };
            (a.request_id.clone(), Command::Allocate(cmd))
        }
        Op::Release(r) => (
            r.request_id.clone(),
            Command::Release(ipam::Release { network: r.network.clone(), owner: owner(&r.owner), only_node: None }),
        ),
        Op::ReleaseIp(r) => {
            let cmd = ipam::ReleaseIp { network: r.network.clone(), ip: r.ip, expected: owner(&r.owner) };
            (r.request_id.clone().unwrap_or_default(), Command::ReleaseIp(cmd))
        }
        _ => return None,
    };
    Some(Event::new(command, time_ms).with_request_id(id))
}

enum Try {
    Done(EventType, Op),
    Redirect(Option<u64>),
    Unknown,
}

async fn attempt(ctx: &ClientCtx, node: u64, op: &Op) -> Try {
    let Some(raft) = ctx.router.raft(node) else { return Try::Redirect(None) };
    if let Op::ReadOwner(r) = op {
        return match tokio::time::timeout(Duration::from_secs(1), raft.ensure_linearizable()).await {
            Ok(Ok(_)) => {
                let Some(sm) = ctx.router.machine(node) else { return Try::Unknown };
                let ips: Vec<IpAddr> =
                    sm.volatile().state.owner_addresses(&r.network, &owner(&r.owner)).iter().map(|a| a.ip).collect();
                let mut done = r.clone();
                done.ips = Some(ips);
                Try::Done(EventType::Ok, Op::ReadOwner(done))
            }
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => Try::Redirect(f.leader_id),
            _ => Try::Unknown,
        };
    }
    let Some(ev) = event(op, ctx.start.elapsed().as_millis() as u64) else {
        return Try::Done(EventType::Fail, op.clone());
    };
    let write = raft.client_write(Batch::new(vec![ev], ipam::FORMAT_MIN));
    match tokio::time::timeout(Duration::from_secs(1), write).await {
        Ok(Ok(resp)) => match resp.data.replies.into_iter().next() {
            Some(Ok(Outcome::Allocated(leases))) => match op {
                Op::Allocate(a) => {
                    Try::Done(EventType::Ok, Op::Allocate(a.clone().with_ips(leases.iter().map(|l| l.ip).collect())))
                }
                other => Try::Done(EventType::Ok, other.clone()),
            },
            Some(Ok(Outcome::Released(_) | Outcome::Configured(_) | Outcome::ClusterVersion { .. })) => {
                Try::Done(EventType::Ok, op.clone())
            }
            Some(Err(e)) => {
                let done = match (op, &e) {
                    (Op::Allocate(a), IpamError::Exhausted { .. }) => {
                        Op::Allocate(a.clone().with_error(ERROR_EXHAUSTED))
                    }
                    (Op::Allocate(a), e) => Op::Allocate(a.clone().with_error(e.to_string())),
                    (other, _) => other.clone(),
                };
                Try::Done(EventType::Fail, done)
            }
            None => Try::Unknown,
        },
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => Try::Redirect(f.leader_id),
        _ => Try::Unknown,
    }
}

/// Client `p`: one operation at a time until `stop`, each retried (same request id) up to 20
/// times; no definite answer → `info`.
pub async fn run(p: u64, ctx: Arc<ClientCtx>, mut rng: Rng) {
    for seq in 0u64..1_000_000 {
        if ctx.stop.load(Ordering::Relaxed) {
            break;
        }
        let op = next_op(&mut rng, &ctx.nets, format!("s{p}-{seq}"), |_, _| None);
        let up: Vec<u64> = ctx.router.lock().up.keys().copied().collect();
        let mut node = rng.pick(&up).copied().unwrap_or(0);
        ctx.record(p, EventType::Invoke, node, op.clone());
        let mut outcome = None;
        for _ in 0..20 {
            match attempt(&ctx, node, &op).await {
                Try::Done(kind, done) => {
                    outcome = Some((kind, done));
                    break;
                }
                Try::Redirect(Some(leader)) => node = leader,
                Try::Redirect(None) | Try::Unknown => {
                    tokio::time::sleep(Duration::from_millis(rng.between(20, 100))).await;
                    let up: Vec<u64> = ctx.router.lock().up.keys().copied().collect();
                    node = rng.pick(&up).copied().unwrap_or(node);
                }
            }
        }
        let (kind, done) = outcome.unwrap_or((EventType::Info, op));
        ctx.record(p, kind, node, done);
        tokio::time::sleep(Duration::from_millis(rng.between(0, 20))).await;
    }
}
