//! Batches writes on the leader: events from concurrent clients are gathered into one log entry
//! (one Raft append, one replication round, one disk flush for all of them). At most
//! `max_in_flight` entries are being committed at once; while they are, new requests queue up and
//! the next entry takes all of them — batches grow with load, and a lone request waits for nothing.
//! A batch holds at most `max_batch` events and [`MAX_BATCH_BYTES`] of them (encoded), so an entry
//! and an AppendEntries of entries stay small enough for the follower's fsync to fit its timeout.
//!
//! [`Proposer::write`] is the one write path of a node: validate, stamp the leader's time, propose,
//! wait until a deadline. The IPAM service and the reconciler both write through it.
//!
//! A slot is held while someone still waits for its entry: once every caller of a batch is past
//! its deadline, the slot is released even if openraft never answers (it may not, for an entry a
//! deposed leader's log lost to a snapshot install), so a node does not end up queueing every
//! write until timeout after a few such episodes.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use ipam::{Event, FieldError, FieldProblem, Reply};
use openraft::error::{ClientWriteError, RaftError};
use raft_store::types::{typ, Batch, BatchReply, NodeId};
use raft_store::SharedMachine;
use tokio::sync::{mpsc, oneshot, Semaphore};

#[cfg(all(feature = "planted-bug-eager-format", not(debug_assertions)))]
compile_error!("planted-bug-eager-format is a test-only planted bug: never build it in release");

/// Largest encoded event accepted (a GC keep list of 1,000s of pods and ranges with 1,000s of
/// excludes fit many times over).
pub const MAX_EVENT_BYTES: usize = 512 * 1024;

/// Largest encoded batch (more events wait for the next one; a single event is always taken).
pub const MAX_BATCH_BYTES: usize = 512 * 1024;

/// Why a write did not get a reply from the state machine.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The event breaks a rule the state machine would refuse it for; it never reached the log.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The deadline passed first: the event may or may not be applied (retry with its request id).
    #[error("the write did not complete within the deadline")]
    Timeout,
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

/// Where batches go: the Raft log ([`RaftLog`]), or a fake in tests.
pub trait Log: Clone + Send + Sync + 'static {
    /// Appends `events` as one entry and returns the replies once it is committed and applied.
    fn append(&self, events: Vec<Event>) -> impl Future<Output = Result<BatchReply, WriteError>> + Send;
}

/// The Raft log of this node: entries are written in the format the cluster version allows
/// (read from the applied state when the batch is made; see [`ipam::format`]).
#[derive(Clone)]
pub struct RaftLog {
    /// The node's Raft.
    pub raft: typ::Raft,
    /// Its state machine, for the cluster version.
    pub machine: SharedMachine,
}

impl Log for RaftLog {
    async fn append(&self, events: Vec<Event>) -> Result<BatchReply, WriteError> {
        let cluster_version = self.machine.read().unwrap_or_else(|p| p.into_inner()).state.cluster_version();
        // The planted bug: the newest format whatever the cluster version, so members still on
        // the previous release cannot read what the leader writes (the mixed-version roll test
        // must catch it).
        #[cfg(feature = "planted-bug-eager-format")]
        let cluster_version = ipam::FORMAT_MAX.max(cluster_version);
        let batch = Batch::new(events, cluster_version);
        self.raft.client_write(batch).await.map(|resp| resp.data).map_err(classify)
    }
}

struct Pending {
    event: Event,
    bytes: usize,
    deadline: Instant,
    done: oneshot::Sender<Result<Reply, WriteError>>,
}

/// Handle to the batching task. Cloning shares it.
#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::Sender<Pending>,
}

impl Proposer {
    /// Starts the batching task for `log`.
    pub fn start<L: Log>(log: L, max_batch: usize, max_in_flight: usize) -> Proposer {
        let (tx, rx) = mpsc::channel(65_536);
        tokio::spawn(run(log, rx, max_batch.max(1), Arc::new(Semaphore::new(max_in_flight.max(1)))));
        Proposer { tx }
    }

    /// Validates `event`, stamps it with this node's clock, proposes it and waits for its reply
    /// until `deadline`. What the state machine would refuse never reaches the log (an oversized
    /// GC keep list would otherwise be replicated and flushed on every member before being
    /// refused).
    pub async fn write(&self, mut event: Event, deadline: Instant) -> Result<Reply, WriteError> {
        event.validate()?;
        event.time_ms = crate::clock::now_ms();
        let bytes = postcard::experimental::serialized_size(&event).unwrap_or(usize::MAX);
        if bytes > MAX_EVENT_BYTES {
            let problem = FieldProblem::TooLarge { limit: MAX_EVENT_BYTES as u64 };
            return Err(FieldError::new("request", format!("{bytes} bytes encoded"), problem).into());
        }
        match tokio::time::timeout_at(deadline.into(), self.submit(event, bytes, deadline)).await {
            Ok(result) => result,
            Err(_) => Err(WriteError::Timeout),
        }
    }

    /// Proposes `event` and waits for its reply. Cancel-safe: a caller that stops waiting (deadline)
    /// has its event dropped if it was not proposed yet.
    async fn submit(&self, event: Event, bytes: usize, deadline: Instant) -> Result<Reply, WriteError> {
        let (done, wait) = oneshot::channel();
        let pending = Pending { event, bytes, deadline, done };
        self.tx.send(pending).await.map_err(|_| WriteError::Fatal("proposer stopped".into()))?;
        wait.await.map_err(|_| WriteError::Fatal("proposer dropped the request".into()))?
    }
}

async fn run<L: Log>(log: L, mut rx: mpsc::Receiver<Pending>, max_batch: usize, in_flight: Arc<Semaphore>) {
    let mut carried: Option<Pending> = None;
    loop {
        let first = match carried.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        // Wait for a slot first: requests arriving meanwhile join this batch.
        let Ok(permit) = in_flight.clone().acquire_owned().await else { return };
        let mut bytes = first.bytes;
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(p) if bytes + p.bytes > MAX_BATCH_BYTES => {
                    carried = Some(p);
                    break;
                }
                Ok(p) => {
                    bytes += p.bytes;
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        // A caller that gave up (deadline) will retry with the same request id: do not propose
        // its old copy now.
        batch.retain(|p| !p.done.is_closed());
        let Some(last_deadline) = batch.iter().map(|p| p.deadline).max() else { continue };
        let log = log.clone();
        tokio::spawn(async move {
            let mut events = Vec::with_capacity(batch.len());
            let mut waiters = Vec::with_capacity(batch.len());
            for p in batch {
                events.push(p.event);
                waiters.push(p.done);
            }
            let result = tokio::time::timeout_at(last_deadline.into(), log.append(events)).await;
            drop(permit);
            match result {
                Ok(Ok(reply)) => {
                    for (done, reply) in waiters.into_iter().zip(reply.replies) {
                        let _ = done.send(Ok(reply));
                    }
                }
                Ok(Err(err)) => {
                    for done in waiters {
                        let _ = done.send(Err(err.clone()));
                    }
                }
                Err(_) => {
                    for done in waiters {
                        let _ = done.send(Err(WriteError::Timeout));
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

#[cfg(test)]
mod tests {
    use super::*;
    use ipam::{Command, Owner, Release};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    /// A log whose first `hang` appends never return (openraft's fate for entries a deposed
    /// leader lost), then answers every event with "released nothing"; it records batch sizes.
    #[derive(Clone, Default)]
    struct FakeLog {
        hang: usize,
        calls: Arc<AtomicUsize>,
        batches: Arc<Mutex<Vec<(usize, usize)>>>,
    }

    impl Log for FakeLog {
        async fn append(&self, events: Vec<Event>) -> Result<BatchReply, WriteError> {
            let bytes = events.iter().map(|e| postcard::experimental::serialized_size(e).unwrap()).sum();
            self.batches.lock().unwrap().push((events.len(), bytes));
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.hang {
                std::future::pending::<()>().await;
            }
            Ok(BatchReply { replies: events.iter().map(|_| Ok(ipam::Outcome::Released(vec![]))).collect() })
        }
    }

    fn release(container: &str) -> Event {
        let owner = Owner { container_id: container.into(), ifname: "eth0".into() };
        Event {
            request_id: Some(format!("r-{container}")),
            time_ms: 0,
            command: Command::Release(Release { network: "n".into(), owner, only_node: None }),
        }
    }

    /// Regression: a slot was returned only when openraft answered; two appends that never
    /// answered took both slots and every later write timed out (seen failing before the fix).
    #[tokio::test]
    async fn slots_of_appends_that_never_answer_come_back_after_their_deadline() {
        let log = FakeLog { hang: 2, ..FakeLog::default() };
        let proposer = Proposer::start(log.clone(), 512, 2);
        let soon = || Instant::now() + Duration::from_millis(200);
        let (a, b) = tokio::join!(proposer.write(release("a"), soon()), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            proposer.write(release("b"), soon()).await
        });
        assert!(matches!(a, Err(WriteError::Timeout)) && matches!(b, Err(WriteError::Timeout)));
        assert_eq!(log.calls.load(Ordering::SeqCst), 2, "both hung in the log");
        let c = proposer.write(release("c"), Instant::now() + Duration::from_secs(5)).await;
        assert!(matches!(c, Ok(Ok(_))), "a slot came back: {c:?}");
    }

    #[tokio::test]
    async fn batches_are_capped_by_bytes_and_an_oversized_event_never_reaches_the_log() {
        let log = FakeLog::default();
        // One slot: requests pile up while the first append is in flight.
        let proposer = Proposer::start(log.clone(), 100_000, 1);
        let far = Instant::now() + Duration::from_secs(30);
        // ~4 KiB each (a long container id is capped at 253 bytes, so use a big GC keep list).
        let big = |i: usize| {
            let keep =
                (0..16).map(|k| Owner { container_id: format!("{i:04}-{k:0>240}"), ifname: "eth0".into() }).collect();
            Event {
                request_id: Some(format!("g{i}")),
                time_ms: 0,
                command: Command::Gc(ipam::Gc { network: "n".into(), cni_network: "c".into(), node: "w".into(), keep }),
            }
        };
        let writes: Vec<_> = (0..400).map(|i| proposer.write(big(i), far)).collect();
        for r in futures::future::join_all(writes).await {
            assert!(r.is_ok(), "{r:?}");
        }
        let batches = log.batches.lock().unwrap().clone();
        assert_eq!(batches.iter().map(|b| b.0).sum::<usize>(), 400);
        assert!(batches.len() > 1, "400 x 4 KiB does not fit one batch");
        assert!(batches.iter().all(|&(_, bytes)| bytes <= MAX_BATCH_BYTES), "{batches:?}");

        let huge = Event {
            request_id: None,
            time_ms: 0,
            command: Command::Gc(ipam::Gc {
                network: "n".into(),
                cni_network: "c".into(),
                node: "w".into(),
                keep: (0..4000).map(|k| Owner { container_id: format!("{k:0>200}"), ifname: "eth0".into() }).collect(),
            }),
        };
        let calls = log.calls.load(Ordering::SeqCst);
        match proposer.write(huge, far).await {
            Err(WriteError::Invalid(e)) => assert_eq!(e.field, "request"),
            other => panic!("an 800 KiB event must be refused: {other:?}"),
        }
        assert_eq!(log.calls.load(Ordering::SeqCst), calls, "it never reached the log");
    }
}
