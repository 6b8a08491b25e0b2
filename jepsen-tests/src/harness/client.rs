//! A client process: invokes one operation at a time, retries it (with the same request id)
//! against random nodes until it gets a definite answer or its time budget runs out, and records
//! the invoke and the completion (`ok`, `fail` or `info`) in the history.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::ipam as pb;
use testkit::requests;

use super::rpc::Answer;
use super::run_state::RunState;
use crate::history::{EventType, Op, Process, RangeSpec};
use crate::rng::Rng;
use crate::workload::{next_op, split_owner, NetworkSpec};

/// Most attempts of one operation (the time budget usually ends it first).
const MAX_ATTEMPTS: u32 = 500;
/// Deadline of one attempt (a little above the nodes' request timeout).
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(2_500);

/// Runs client `p` until the run stops or the operation bound is reached.
pub async fn run_client(p: u64, st: Arc<RunState>, nets: Arc<Vec<NetworkSpec>>, mut rng: Rng) -> anyhow::Result<()> {
    for seq in 0..st.max_ops {
        if st.stop.load(Ordering::Relaxed) {
            break;
        }
        if st.invoked.fetch_add(1, Ordering::Relaxed) >= st.max_ops {
            st.stop.store(true, Ordering::Relaxed);
            break;
        }
        let op = next_op(&mut rng, &nets, format!("p{p}-{seq}"), |n, o| st.guess(n, o));
        let first = st.pick_target(&mut rng);
        st.history.record(Process::Client(p), EventType::Invoke, Some(first), op.clone())?;
        let (kind, done, node) = execute(&st, &mut rng, op, first).await;
        if kind == EventType::Ok {
            st.learn(&done);
            st.oks.fetch_add(1, Ordering::Relaxed);
        }
        st.history.record(Process::Client(p), kind, Some(node), done)?;
        if !st.think.is_zero() {
            tokio::time::sleep(st.think).await;
        }
    }
    Ok(())
}

/// Tries `op` until a definite answer or the budget ends; returns the completion to record.
async fn execute(st: &RunState, rng: &mut Rng, op: Op, first: u64) -> (EventType, Op, u64) {
    let started = Instant::now();
    let mut node = first;
    let mut last = String::from("no attempt");
    for _ in 0..MAX_ATTEMPTS {
        match attempt(st, node, &op).await {
            Answer::Ok(done) => return (EventType::Ok, done, node),
            Answer::Refused(reason) => return (EventType::Fail, with_error(op, reason), node),
            Answer::Unknown(e) => last = e,
        }
        if started.elapsed() >= st.op_budget {
            break;
        }
        tokio::time::sleep(Duration::from_millis(rng.between(20, 150))).await;
        node = st.pick_target(rng);
    }
    (EventType::Info, with_error(op, last), node)
}

fn with_error(op: Op, reason: String) -> Op {
    match op {
        Op::Allocate(a) => Op::Allocate(a.with_error(reason)),
        other => other,
    }
}

fn pb_range(r: &RangeSpec) -> pb::RangeSpec {
    pb::RangeSpec {
        range: r.range.clone(),
        range_start: r.range_start.map(|a| a.to_string()).unwrap_or_default(),
        range_end: r.range_end.map(|a| a.to_string()).unwrap_or_default(),
        exclude: r.exclude.clone(),
    }
}

fn parse_ips<'a>(ips: impl Iterator<Item = &'a str>) -> Result<Vec<IpAddr>, String> {
    ips.map(|s| s.parse().map_err(|_| format!("bad address {s:?} in a reply"))).collect()
}

/// One attempt of `op` against `node`; on OK, the completed operation (with its results).
// Requests default the fields the harness does not set, so new proto fields keep it compiling.
#[allow(clippy::needless_update)]
async fn attempt(st: &RunState, node: u64, op: &Op) -> Answer<Op> {
    let c = &st.clients;
    let t = ATTEMPT_TIMEOUT;
    match op {
        Op::Allocate(a) => {
            let (container_id, ifname) = split_owner(&a.owner);
            let msg = requests::Allocate::new(&a.network)
                .request_id(a.request_id.clone())
                .ranges(a.ranges.iter().map(pb_range))
                .container(container_id)
                .ifname(ifname)
                .cni_network("jepsen")
                .build();
            match c.call(node, t, msg, |mut c, r| async move { c.allocate(r).await }).await {
                Answer::Ok(resp) => match parse_ips(resp.leases.iter().map(|l| l.ip.as_str())) {
                    Ok(ips) => Answer::Ok(Op::Allocate(a.clone().with_ips(ips))),
                    Err(e) => Answer::Unknown(e),
                },
                Answer::Refused(e) => Answer::Refused(e),
                Answer::Unknown(e) => Answer::Unknown(e),
            }
        }
        Op::Release(r) => {
            let (container_id, ifname) = split_owner(&r.owner);
            let msg = pb::ReleaseRequest {
                request_id: r.request_id.clone(),
                network_name: r.network.clone(),
                container_id: container_id.into(),
                ifname: ifname.into(),
                ..Default::default()
            };
            map_ok(c.call(node, t, msg, |mut c, r| async move { c.release(r).await }).await, op)
        }
        Op::ReleaseIp(r) => {
            let (container_id, ifname) = split_owner(&r.owner);
            let msg = pb::ReleaseIpRequest {
                request_id: r.request_id.clone().unwrap_or_default(),
                network_name: r.network.clone(),
                ip: r.ip.to_string(),
                container_id: container_id.into(),
                ifname: ifname.into(),
                ..Default::default()
            };
            map_ok(c.call(node, t, msg, |mut c, r| async move { c.release_ip(r).await }).await, op)
        }
        Op::ReadOwner(r) => {
            let (container_id, ifname) = split_owner(&r.owner);
            let msg = pb::CheckRequest {
                network_name: r.network.clone(),
                container_id: container_id.into(),
                ifname: ifname.into(),
                ..Default::default()
            };
            match c.call(node, t, msg, |mut c, r| async move { c.check(r).await }).await {
                Answer::Ok(resp) => match parse_ips(resp.allocations.iter().map(|a| a.ip.as_str())) {
                    Ok(ips) => {
                        let mut done = r.clone();
                        done.ips = Some(ips);
                        Answer::Ok(Op::ReadOwner(done))
                    }
                    Err(e) => Answer::Unknown(e),
                },
                Answer::Refused(e) => Answer::Refused(e),
                Answer::Unknown(e) => Answer::Unknown(e),
            }
        }
        Op::FinalRead(_) | Op::Nemesis(_) => Answer::Refused("not a client operation".into()),
    }
}

fn map_ok<T>(a: Answer<T>, op: &Op) -> Answer<Op> {
    match a {
        Answer::Ok(_) => Answer::Ok(op.clone()),
        Answer::Refused(e) => Answer::Refused(e),
        Answer::Unknown(e) => Answer::Unknown(e),
    }
}
