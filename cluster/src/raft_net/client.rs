//! openraft's network: one lazily connected gRPC channel per peer. Transport failures map to
//! `Unreachable` (openraft backs off), oversized batches to `PayloadTooLarge` (openraft splits them).

// openraft fixes the error types of the network trait (RPCError is large).
#![allow(clippy::result_large_err)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, SnapshotMismatch,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::{BasicNode, SnapshotSegmentId};
use proto::raft::install_snapshot_response::Result as SnapshotResult;
use proto::raft::raft_client::RaftClient;
use tonic::transport::Channel;
use tonic::Code;

use super::{CLUSTER_KEY, MAX_RAFT_MESSAGE_BYTES};
use crate::convert::raft as conv;
use crate::tls::Transport;
use raft_store::types::{NodeId, TypeConfig};

/// Makes a [`PeerClient`] per peer.
#[derive(Clone)]
pub struct PeerNetwork {
    cluster: Arc<str>,
    transport: Transport,
    faults: Option<(NodeId, Arc<Faults>)>,
}

impl std::fmt::Debug for PeerNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerNetwork").field("cluster", &self.cluster).field("tls", &self.transport.is_tls()).finish()
    }
}

impl PeerNetwork {
    /// The network of a node of cluster `cluster` (sent with every message, checked by peers),
    /// reaching its peers over `transport`.
    pub fn new(cluster: &str, transport: Transport) -> PeerNetwork {
        PeerNetwork { cluster: cluster.into(), transport, faults: None }
    }

    /// The same network for node `me`, whose links can be cut by `faults` (in-process tests).
    pub fn with_faults(mut self, me: NodeId, faults: Arc<Faults>) -> PeerNetwork {
        self.faults = Some((me, faults));
        self
    }
}

/// Links cut on purpose, for in-process tests of partitions: a message from `from` to `to` fails
/// as if the peer were unreachable.
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

/// The connection to one peer.
pub struct PeerClient {
    cluster: Arc<str>,
    transport: Transport,
    source: Option<(NodeId, Arc<Faults>)>,
    target: NodeId,
    addr: String,
    client: Option<(u64, RaftClient<Channel>)>,
}

type Rpc<T, E = openraft::error::Infallible> = Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        let source = self.faults.clone();
        let transport = self.transport.clone();
        PeerClient { cluster: self.cluster.clone(), transport, source, target, addr: node.addr.clone(), client: None }
    }
}

/// Classifies a failed call for openraft: a peer that cannot be reached (refused, reset, down)
/// is `Unreachable` so openraft backs off; an oversized message asks openraft to send fewer entries.
fn rpc_error<E: std::error::Error>(status: tonic::Status) -> RPCError<NodeId, BasicNode, RaftError<NodeId, E>> {
    match status.code() {
        Code::ResourceExhausted | Code::OutOfRange => RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(1)),
        Code::Unavailable => RPCError::Unreachable(Unreachable::new(&status)),
        _ => RPCError::Network(NetworkError::new(&status)),
    }
}

/// Waits for a Raft RPC at most its hard TTL (the deadline it also sends as `grpc-timeout`). The
/// server enforces that deadline only while it can answer: a peer or a connection that stopped
/// answering would otherwise hold this replication stream until HTTP/2 keep-alive notices it
/// (seconds), with the leader unable to commit meanwhile.
async fn within<T, E: std::error::Error>(
    option: &RPCOption,
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>> {
    let ttl = option.hard_ttl();
    match tokio::time::timeout(ttl, call).await {
        Ok(answer) => answer.map(tonic::Response::into_inner).map_err(rpc_error),
        Err(_) => {
            let e = std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no answer within {ttl:?}"));
            Err(RPCError::Network(NetworkError::new(&e)))
        }
    }
}

impl PeerClient {
    fn client<E: std::error::Error>(
        &mut self,
    ) -> Result<RaftClient<Channel>, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>> {
        if let Some((me, faults)) = &self.source {
            if faults.is_cut(*me, self.target) {
                let e = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "link cut by the test");
                return Err(RPCError::Unreachable(Unreachable::new(&e)));
            }
        }
        let generation = self.transport.generation();
        if let Some((g, c)) = &self.client {
            if *g == generation {
                return Ok(c.clone());
            }
        }
        let endpoint = self
            .transport
            .endpoint(&self.addr)
            .map_err(|e| RPCError::Network(NetworkError::new(&std::io::Error::other(e))))?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5));
        let client = RaftClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(MAX_RAFT_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_RAFT_MESSAGE_BYTES);
        self.client = Some((generation, client.clone()));
        Ok(client)
    }

    fn request<T>(&self, msg: T, option: &RPCOption) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        req.set_timeout(option.hard_ttl());
        if let Ok(v) = tonic::metadata::MetadataValue::try_from(&*self.cluster) {
            req.metadata_mut().insert(CLUSTER_KEY, v);
        }
        req
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: openraft::raft::AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Rpc<openraft::raft::AppendEntriesResponse<NodeId>> {
        let msg = conv::append_to_pb(&rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut client = self.client()?;
        let resp = within(&option, client.append_entries(self.request(msg, &option))).await?;
        conv::append_resp_from_pb(resp).map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: openraft::raft::InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Rpc<openraft::raft::InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let msg = conv::snapshot_to_pb(&rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut client = self.client()?;
        let resp = within(&option, client.install_snapshot(self.request(msg, &option))).await?;
        match resp.result {
            Some(SnapshotResult::Vote(v)) => {
                let vote = conv::vote_from_pb(Some(v)).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
                Ok(openraft::raft::InstallSnapshotResponse { vote })
            }
            Some(SnapshotResult::Mismatch(m)) => {
                let mismatch = SnapshotMismatch {
                    expect: SnapshotSegmentId { id: m.expected_id, offset: m.expected_offset },
                    got: SnapshotSegmentId { id: m.got_id, offset: m.got_offset },
                };
                let err = RaftError::APIError(InstallSnapshotError::SnapshotMismatch(mismatch));
                Err(RPCError::RemoteError(RemoteError::new(self.target, err)))
            }
            None => Err(RPCError::Network(NetworkError::new(&conv::DecodeError("empty snapshot response".into())))),
        }
    }

    async fn vote(
        &mut self,
        rpc: openraft::raft::VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Rpc<openraft::raft::VoteResponse<NodeId>> {
        let mut client = self.client()?;
        let resp = within(&option, client.vote(self.request(conv::vote_req_to_pb(&rpc), &option))).await?;
        conv::vote_resp_from_pb(resp).map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }
}
