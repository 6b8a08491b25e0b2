//! A Raft network that cuts links on purpose, for in-process partition tests: it wraps the real
//! network (`cluster::raft_net::client::PeerNetwork`, or any other) and fails a message from `a`
//! to `b` as unreachable while [`Faults`] says the link is cut. Test machinery only: the product's
//! network has no fault hooks.

// openraft fixes the error types of the network trait (RPCError is large).
#![allow(clippy::result_large_err)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;
use raft_store::types::{NodeId, TypeConfig};

/// Links cut on purpose, shared by every node's [`FaultyNetwork`].
#[derive(Debug, Default)]
pub struct Faults {
    cut: Mutex<HashSet<(NodeId, NodeId)>>,
}

impl Faults {
    /// Cuts both directions between every node of `a` and every node of `b`.
    pub fn partition(&self, a: &[NodeId], b: &[NodeId]) {
        let mut cut = self.cut.lock().unwrap_or_else(|p| p.into_inner());
        for x in a {
            for y in b {
                cut.insert((*x, *y));
                cut.insert((*y, *x));
            }
        }
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.cut.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.cut.lock().unwrap_or_else(|p| p.into_inner()).contains(&(from, to))
    }
}

/// The network of node `me`: what [`Faults`] cuts fails, the rest goes to `inner`.
pub struct FaultyNetwork<N> {
    inner: N,
    me: NodeId,
    faults: Arc<Faults>,
}

impl<N> FaultyNetwork<N> {
    /// `inner` for node `me`, with links cut by `faults`.
    pub fn new(inner: N, me: NodeId, faults: Arc<Faults>) -> FaultyNetwork<N> {
        FaultyNetwork { inner, me, faults }
    }
}

type Rpc<T, E = openraft::error::Infallible> = Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

/// The connection of a [`FaultyNetwork`] to one peer.
pub struct FaultyClient<C> {
    inner: C,
    me: NodeId,
    target: NodeId,
    faults: Arc<Faults>,
}

impl<C> FaultyClient<C> {
    fn check<E: std::error::Error>(&self) -> Result<(), RPCError<NodeId, BasicNode, RaftError<NodeId, E>>> {
        if self.faults.is_cut(self.me, self.target) {
            let e = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "link cut by the test");
            return Err(RPCError::Unreachable(Unreachable::new(&e)));
        }
        Ok(())
    }
}

impl<N: RaftNetworkFactory<TypeConfig>> RaftNetworkFactory<TypeConfig> for FaultyNetwork<N> {
    type Network = FaultyClient<N::Network>;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        let inner = self.inner.new_client(target, node).await;
        FaultyClient { inner, me: self.me, target, faults: self.faults.clone() }
    }
}

impl<C: RaftNetwork<TypeConfig>> RaftNetwork<TypeConfig> for FaultyClient<C> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<NodeId>> {
        self.check()?;
        self.inner.append_entries(rpc, option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.check()?;
        self.inner.install_snapshot(rpc, option).await
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, option: RPCOption) -> Rpc<VoteResponse<NodeId>> {
        self.check()?;
        self.inner.vote(rpc, option).await
    }
}
