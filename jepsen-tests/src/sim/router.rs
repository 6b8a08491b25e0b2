//! The simulated network: an in-process router between openraft nodes. Every message waits a
//! seeded random delay (simulated time), may be dropped, and is refused across a partition or
//! to a node that is down. Decisions come from one seeded generator.

// openraft fixes the error types of the network trait (RPCError is large).
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;
use raft_store::types::{typ, NodeId, TypeConfig};
use testkit::mem_state_machine::MemSm;

use crate::rng::Rng;

/// Link conditions and the running nodes.
pub struct RouterState {
    /// Running nodes: their Raft handle and state machine.
    pub up: BTreeMap<NodeId, (typ::Raft, MemSm)>,
    /// Cut directed links.
    pub cut: BTreeSet<(NodeId, NodeId)>,
    /// Percentage of messages (and replies) lost.
    pub drop_percent: u64,
    /// Delay of one message, inclusive bounds (ms).
    pub delay_ms: (u64, u64),
    /// Messages delivered and dropped.
    pub delivered: u64,
    /// Messages lost (drop, cut, node down).
    pub lost: u64,
    rng: Rng,
}

/// Shared handle to the router.
#[derive(Clone)]
pub struct Router(Arc<Mutex<RouterState>>);

#[derive(Debug, Clone, Copy)]
enum Fate {
    Deliver(Duration),
    Lose(Duration),
}

impl Router {
    /// A router whose decisions come from `rng`.
    pub fn new(rng: Rng) -> Router {
        Router(Arc::new(Mutex::new(RouterState {
            up: BTreeMap::new(),
            cut: BTreeSet::new(),
            drop_percent: 0,
            delay_ms: (1, 8),
            delivered: 0,
            lost: 0,
            rng,
        })))
    }

    /// Locks the state (faults are set through it).
    pub fn lock(&self) -> MutexGuard<'_, RouterState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The Raft handle of a running node.
    pub fn raft(&self, id: NodeId) -> Option<typ::Raft> {
        self.lock().up.get(&id).map(|(r, _)| r.clone())
    }

    /// The state machine of a running node.
    pub fn machine(&self, id: NodeId) -> Option<MemSm> {
        self.lock().up.get(&id).map(|(_, m)| m.clone())
    }

    fn fate(&self, from: NodeId, to: NodeId) -> Fate {
        let mut s = self.lock();
        let (lo, hi) = s.delay_ms;
        let delay = Duration::from_millis(s.rng.between(lo, hi));
        let pct = s.drop_percent;
        let lost = s.cut.contains(&(from, to)) || !s.up.contains_key(&to) || s.rng.chance(pct);
        if lost {
            s.lost += 1;
            Fate::Lose(delay)
        } else {
            s.delivered += 1;
            Fate::Deliver(delay)
        }
    }

    /// Cuts both directions between every node of `a` and every node of `b`.
    pub fn partition(&self, a: &[NodeId], b: &[NodeId]) {
        let mut s = self.lock();
        for x in a {
            for y in b {
                s.cut.insert((*x, *y));
                s.cut.insert((*y, *x));
            }
        }
    }

    /// Restores every link and stops dropping.
    pub fn heal(&self) {
        let mut s = self.lock();
        s.cut.clear();
        s.drop_percent = 0;
    }
}

/// Builds the connection of node `me` to each peer.
#[derive(Clone)]
pub struct NetFactory {
    /// The sending node.
    pub me: NodeId,
    /// The router.
    pub router: Router,
}

impl RaftNetworkFactory<TypeConfig> for NetFactory {
    type Network = Conn;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Conn {
        Conn { from: self.me, to: target, router: self.router.clone() }
    }
}

/// A link from one node to another.
pub struct Conn {
    from: NodeId,
    to: NodeId,
    router: Router,
}

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

fn unreachable<E: std::error::Error>(why: &str) -> RpcErr<E> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        why.to_string(),
    )))
}

impl Conn {
    /// Delivers (or loses) the request, then the reply, each after its own delay.
    async fn send<T, E, F, Fut>(&self, call: F) -> Result<T, RpcErr<E>>
    where
        E: std::error::Error,
        F: FnOnce(typ::Raft) -> Fut,
        Fut: std::future::Future<Output = Result<T, RaftError<NodeId, E>>>,
    {
        match self.router.fate(self.from, self.to) {
            Fate::Lose(d) => {
                tokio::time::sleep(d).await;
                return Err(unreachable("request lost"));
            }
            Fate::Deliver(d) => tokio::time::sleep(d).await,
        }
        let raft = self.router.raft(self.to).ok_or_else(|| unreachable("target down"))?;
        let result = call(raft).await;
        match self.router.fate(self.to, self.from) {
            Fate::Lose(d) => {
                tokio::time::sleep(d).await;
                Err(unreachable("reply lost"))
            }
            Fate::Deliver(d) => {
                tokio::time::sleep(d).await;
                result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
            }
        }
    }
}

impl RaftNetwork<TypeConfig> for Conn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        self.send(|r| async move { r.append_entries(rpc).await }).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        self.send(|r| async move { r.install_snapshot(rpc).await }).await
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, _option: RPCOption) -> Result<VoteResponse<NodeId>, RpcErr> {
        self.send(|r| async move { r.vote(rpc).await }).await
    }
}
