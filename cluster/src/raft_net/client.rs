//! openraft's network: how this node reaches its peers. One gRPC channel per peer, shared by every
//! client openraft makes for it (openraft makes a new one for each linearizable read); every call
//! names its target and cluster; no request is cancelled on the wire when openraft stops waiting
//! for it (see [`super::lane`]); failures are classified for openraft: a peer that cannot be
//! reached is `Unreachable` (openraft backs off), and only a message that really is too large is
//! `PayloadTooLarge` (openraft then sends fewer entries).

// openraft fixes the error types of the network trait (RPCError is large).
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, SnapshotMismatch,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::{BasicNode, SnapshotSegmentId};
use prost::Message as _;
use proto::raft::install_snapshot_response::Result as SnapshotResult;
use proto::raft::raft_client::RaftClient;
use tokio::sync::Semaphore;
use tonic::transport::Channel;
use tonic::Code;

use super::lane::{EntriesKey, Lane, WIRE_TIMEOUT};
use super::{CLUSTER_KEY, MAX_RAFT_MESSAGE_BYTES, TARGET_KEY};
use crate::convert::raft as conv;
use crate::tls::Transport;
use raft_store::types::{NodeId, TypeConfig};

/// Requests without entries (heartbeats, votes, snapshot chunks) that may be unanswered on the
/// wire to one peer at once; past that the peer is treated as unreachable until some answer.
const MAX_UNANSWERED: usize = 16;

/// What this node keeps per peer: the channel (rebuilt when the address or the TLS material
/// changes), the replication lane and the budget of unanswered requests.
struct Peer {
    addr: String,
    generation: u64,
    client: RaftClient<Channel>,
    lane: Arc<Lane>,
    unanswered: Arc<Semaphore>,
}

/// What a call to one peer uses: its channel, its replication lane, its budget of unanswered
/// requests.
type PeerHandles = (RaftClient<Channel>, Arc<Lane>, Arc<Semaphore>);

/// Makes a [`PeerClient`] per peer; cloning shares the peers' channels.
#[derive(Clone)]
pub struct PeerNetwork {
    cluster: Arc<str>,
    transport: Transport,
    peers: Arc<Mutex<HashMap<NodeId, Peer>>>,
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
        PeerNetwork { cluster: cluster.into(), transport, peers: Arc::default() }
    }

    /// The channel, lane and budget for node `target` at `addr`.
    fn peer(&self, target: NodeId, addr: &str) -> Result<PeerHandles, String> {
        let generation = self.transport.generation();
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = peers.get(&target) {
            if p.addr == addr && p.generation == generation {
                return Ok((p.client.clone(), p.lane.clone(), p.unanswered.clone()));
            }
        }
        let endpoint = self
            .transport
            .endpoint(addr)?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5));
        let client = RaftClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(MAX_RAFT_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_RAFT_MESSAGE_BYTES);
        // A new address is a new peer process: its lane starts empty.
        let peer = Peer {
            addr: addr.to_string(),
            generation,
            client: client.clone(),
            lane: Arc::default(),
            unanswered: Arc::new(Semaphore::new(MAX_UNANSWERED)),
        };
        let out = (client, peer.lane.clone(), peer.unanswered.clone());
        peers.insert(target, peer);
        Ok(out)
    }
}

/// The connection to one peer.
pub struct PeerClient {
    network: PeerNetwork,
    target: NodeId,
    addr: String,
}

type RpcError<E> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;
type Rpc<T, E = openraft::error::Infallible> = Result<T, RpcError<E>>;

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient { network: self.clone(), target, addr: node.addr.clone() }
    }
}

/// Whether a status says that a message exceeded a size limit (tonic's codec on either side).
fn is_size_limit(status: &tonic::Status) -> bool {
    matches!(status.code(), Code::ResourceExhausted | Code::OutOfRange)
        && status.message().to_ascii_lowercase().contains("message length too large")
}

/// Classifies a failed call for openraft. An oversized message asks openraft to send fewer
/// entries (half of `entries`); anything else that says the peer did not take the message —
/// refused, reset, unavailable, throttled (HTTP/2 ENHANCE_YOUR_CALM arrives as
/// RESOURCE_EXHAUSTED) — is `Unreachable`, so openraft backs off before trying again.
fn rpc_error<E: std::error::Error>(status: tonic::Status, entries: usize) -> RpcError<E> {
    if is_size_limit(&status) {
        return RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint((entries as u64 / 2).max(1)));
    }
    match status.code() {
        Code::Unavailable | Code::ResourceExhausted | Code::DeadlineExceeded | Code::Cancelled => {
            RPCError::Unreachable(Unreachable::new(&status))
        }
        _ => RPCError::Network(NetworkError::new(&status)),
    }
}

fn timed_out<E: std::error::Error>(ttl: Duration) -> RpcError<E> {
    let e = std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no answer within {ttl:?}"));
    RPCError::Network(NetworkError::new(&e))
}

fn network<E: std::error::Error>(e: impl std::error::Error + 'static) -> RpcError<E> {
    RPCError::Network(NetworkError::new(&e))
}

impl PeerClient {
    fn request<T>(&self, msg: T, wire_timeout: Duration) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        // The peer may take this long: it must not give up on a request this node still waits
        // for (openraft's own, shorter deadline only ends this node's wait, see `lane`).
        req.set_timeout(wire_timeout);
        if let Ok(v) = tonic::metadata::MetadataValue::try_from(&*self.network.cluster) {
            req.metadata_mut().insert(CLUSTER_KEY, v);
        }
        req.metadata_mut().insert(TARGET_KEY, tonic::metadata::MetadataValue::from(self.target));
        req
    }

    fn peer<E: std::error::Error>(&self) -> Result<PeerHandles, RpcError<E>> {
        self.network
            .peer(self.target, &self.addr)
            .map_err(|e| RPCError::Network(NetworkError::new(&std::io::Error::other(e))))
    }

    /// Sends one request without entries on the wire in its own task, so that the request ends
    /// on its own (answer or `wire_timeout`) even when openraft stops waiting after `ttl`.
    async fn detached<T, E, F>(&self, ttl: Duration, budget: &Arc<Semaphore>, call: F) -> Rpc<T, E>
    where
        T: Send + 'static,
        E: std::error::Error,
        F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send + 'static,
    {
        let Ok(permit) = budget.clone().try_acquire_owned() else {
            let e = std::io::Error::other(format!("{MAX_UNANSWERED} requests to node {} unanswered", self.target));
            return Err(RPCError::Unreachable(Unreachable::new(&e)));
        };
        let task = tokio::spawn(async move {
            let answer = call.await;
            drop(permit);
            answer
        });
        match tokio::time::timeout(ttl, task).await {
            Ok(Ok(answer)) => answer.map(tonic::Response::into_inner).map_err(|s| rpc_error(s, 0)),
            Ok(Err(join)) => Err(network(join)),
            Err(_) => Err(timed_out(ttl)),
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: openraft::raft::AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Rpc<openraft::raft::AppendEntriesResponse<NodeId>> {
        let ttl = option.hard_ttl();
        let deadline = tokio::time::Instant::now() + ttl;
        let entries = rpc.entries.len();
        let msg = conv::append_to_pb(&rpc).map_err(network)?;
        if msg.encoded_len() > MAX_RAFT_MESSAGE_BYTES {
            return Err(RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint((entries as u64 / 2).max(1))));
        }
        let (mut client, lane, budget) = self.peer()?;
        let resp = match EntriesKey::of(&msg) {
            Some(key) => {
                let req = self.request(msg, WIRE_TIMEOUT);
                let send = async move { client.append_entries(req).await.map(tonic::Response::into_inner) };
                match lane.append(key, deadline, send).await {
                    Some(answer) => answer.map_err(|s| rpc_error(s, entries))?,
                    None => return Err(timed_out(ttl)),
                }
            }
            None => {
                let req = self.request(msg, ttl.max(Duration::from_millis(500)));
                self.detached(ttl, &budget, async move { client.append_entries(req).await }).await?
            }
        };
        conv::append_resp_from_pb(resp).map_err(network)
    }

    async fn install_snapshot(
        &mut self,
        rpc: openraft::raft::InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Rpc<openraft::raft::InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let ttl = option.hard_ttl();
        let msg = conv::snapshot_to_pb(&rpc).map_err(network)?;
        let (mut client, _, budget) = self.peer()?;
        let req = self.request(msg, ttl);
        let resp = self.detached(ttl, &budget, async move { client.install_snapshot(req).await }).await?;
        match resp.result {
            Some(SnapshotResult::Vote(v)) => {
                let vote = conv::vote_from_pb(Some(v)).map_err(network)?;
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
            None => Err(network(conv::DecodeError("empty snapshot response".into()))),
        }
    }

    async fn vote(
        &mut self,
        rpc: openraft::raft::VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Rpc<openraft::raft::VoteResponse<NodeId>> {
        let ttl = option.hard_ttl();
        let (mut client, _, budget) = self.peer()?;
        let req = self.request(conv::vote_req_to_pb(&rpc), ttl);
        let resp = self.detached(ttl, &budget, async move { client.vote(req).await }).await?;
        conv::vote_resp_from_pb(resp).map_err(network)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_real_size_limit_asks_openraft_for_fewer_entries() {
        let too_large = tonic::Status::out_of_range(
            "Error, decoded message length too large: found 70000000 bytes, the limit is: 67108864 bytes",
        );
        let e: RpcError<openraft::error::Infallible> = rpc_error(too_large, 64);
        assert!(matches!(e, RPCError::PayloadTooLarge(_)), "{e:?}");
        // What a peer's HTTP/2 layer says when it throttles us (ENHANCE_YOUR_CALM).
        let calm = tonic::Status::resource_exhausted("h2 protocol error: error reading a body from connection");
        let e: RpcError<openraft::error::Infallible> = rpc_error(calm, 1);
        assert!(matches!(e, RPCError::Unreachable(_)), "throttling is not a size problem: {e:?}");
        let e: RpcError<openraft::error::Infallible> = rpc_error(tonic::Status::unavailable("connection refused"), 1);
        assert!(matches!(e, RPCError::Unreachable(_)));
        let e: RpcError<openraft::error::Infallible> = rpc_error(tonic::Status::invalid_argument("bad vote"), 1);
        assert!(matches!(e, RPCError::Network(_)));
    }
}
