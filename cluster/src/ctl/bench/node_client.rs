//! One bench client as loadgen drives it: each operation becomes a real Allocate or Release with
//! a fresh request id on the client's [`Conn`], its failure is classified, and with `--timeline`
//! it leaves a [`Row`].

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use loadgen::{Client, OpContext, OpKind};
use proto::ipam as pb;
use tokio::time::Instant;

use super::client::{unix_ns, Conn, Failure, Op};
use super::timeline::{Row, MAX_ROWS_PER_CLIENT};
use super::workload;

/// A client of the bench: its connections, its pool and its timeline.
pub struct NodeClient {
    /// The client's connections (home endpoint first).
    pub conn: Conn,
    /// Network the pools are created under.
    pub network: Arc<str>,
    /// The client's pool.
    pub cidr: String,
    /// Retry as the CNI plugin does (`--retry`).
    pub retry: bool,
    /// Keep a timeline row per operation (`--timeline`).
    pub timeline: bool,
    /// The timeline so far (at most [`MAX_ROWS_PER_CLIENT`]).
    pub rows: Vec<Row>,
}

impl Client for NodeClient {
    type Owner = pb::Attachment;
    type Failure = Failure;
    /// A failed release has an unknown outcome: the owner is kept, a later release is idempotent.
    const KEEPS_OWNER_OF_FAILED_RELEASE: bool = true;

    fn new_owner(&mut self) -> pb::Attachment {
        workload::attachment(&mut rand::rng())
    }

    async fn run(&mut self, op: OpKind, owner: &pb::Attachment, ctx: OpContext<'_>) -> Result<(), Failure> {
        let op_start_ns = if self.timeline { unix_ns() } else { 0 };
        let request = {
            let id = workload::request_id(&mut rand::rng());
            match op {
                OpKind::Allocate => Op::Allocate(workload::allocate(&self.network, &self.cidr, owner.clone(), id)),
                OpKind::Release => Op::Release(workload::release(&self.network, owner, id)),
            }
        };
        let result = self.conn.run(&request, ctx.deadline, self.retry).await;
        let release = op == OpKind::Release;
        let mut row = Row { op_start_ns, attempt_sent_ns: 0, end_ns: 0, release, ok: false, attempts: 0 };
        let outcome = match result {
            Ok(done) => {
                ctx.attempts.retries.fetch_add(u64::from(done.attempts - 1), Relaxed);
                (row.ok, row.attempts, row.attempt_sent_ns) = (true, done.attempts, done.attempt_sent_ns);
                Ok(())
            }
            Err(_) if Instant::now() >= ctx.hard_stop => Err(Failure::CutAtHardStop),
            Err(failure) => Err(failure),
        };
        if self.timeline && self.rows.len() < MAX_ROWS_PER_CLIENT {
            row.end_ns = unix_ns();
            self.rows.push(row);
        }
        outcome
    }
}
