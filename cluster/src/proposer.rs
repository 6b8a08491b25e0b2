//! Batches writes on the leader: events from concurrent clients are gathered into one log entry
//! (one Raft append, one replication round, one disk flush for all of them). At most
//! `max_in_flight` entries are being committed at once; while they are, new requests queue up and
//! the next entry takes all of them — batches grow with load, and a lone request waits for nothing.

use std::sync::Arc;

use openraft::error::{ClientWriteError, RaftError};
use raft_store::domain::{Event, Reply};
use raft_store::types::{typ, Batch, NodeId};
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Why a write was not applied by this node.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// This node is not (or no longer) the leader.
    #[error("not the leader")]
    NotLeader {
        /// The leader openraft knows of: id and address.
        leader: Option<(NodeId, String)>,
    },
    /// Raft stopped or failed.
    #[error("raft failed: {0}")]
    Fatal(String),
}

struct Pending {
    event: Event,
    done: oneshot::Sender<Result<Reply, WriteError>>,
}

/// Handle to the batching task. Cloning shares it.
#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::Sender<Pending>,
}

impl Proposer {
    /// Starts the batching task for `raft`.
    pub fn start(raft: typ::Raft, max_batch: usize, max_in_flight: usize) -> Proposer {
        let (tx, rx) = mpsc::channel(65_536);
        tokio::spawn(run(raft, rx, max_batch.max(1), Arc::new(Semaphore::new(max_in_flight.max(1)))));
        Proposer { tx }
    }

    /// Proposes `event` and waits for its reply. Cancel-safe: a caller that stops waiting (deadline)
    /// has its event dropped if it was not proposed yet.
    pub async fn submit(&self, event: Event) -> Result<Reply, WriteError> {
        let (done, wait) = oneshot::channel();
        self.tx.send(Pending { event, done }).await.map_err(|_| WriteError::Fatal("proposer stopped".into()))?;
        wait.await.map_err(|_| WriteError::Fatal("proposer dropped the request".into()))?
    }
}

async fn run(raft: typ::Raft, mut rx: mpsc::Receiver<Pending>, max_batch: usize, in_flight: Arc<Semaphore>) {
    while let Some(first) = rx.recv().await {
        // Wait for a slot first: requests arriving meanwhile join this batch.
        let Ok(permit) = in_flight.clone().acquire_owned().await else { return };
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        // A caller that gave up (deadline) will retry with the same request id: do not propose
        // its old copy now.
        batch.retain(|p| !p.done.is_closed());
        if batch.is_empty() {
            continue;
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            let (events, waiters): (Vec<Event>, Vec<_>) = batch.into_iter().map(|p| (p.event, p.done)).unzip();
            let result = raft.client_write(Batch { events }).await;
            drop(permit);
            match result {
                Ok(resp) => {
                    for (done, reply) in waiters.into_iter().zip(resp.data.replies) {
                        let _ = done.send(Ok(reply));
                    }
                }
                Err(e) => {
                    let err = classify(e);
                    for done in waiters {
                        let _ = done.send(Err(err.clone()));
                    }
                }
            }
        });
    }
}

fn classify(e: RaftError<NodeId, ClientWriteError<NodeId, openraft::BasicNode>>) -> WriteError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            WriteError::NotLeader { leader: f.leader_id.zip(f.leader_node.map(|n| n.addr)) }
        }
        other => WriteError::Fatal(other.to_string()),
    }
}
