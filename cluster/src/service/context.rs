//! What every IPAM handler of a node shares: its Raft handle, the state machine to read, the
//! proposer to write through, connections to peers (for forwarding), metrics and limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::ipam::ipam_client::IpamClient;
use raft_store::types::{typ, NodeId};
use raft_store::{Machine, SharedMachine};
use tonic::transport::Channel;

use crate::leader_lease::{LeaderLease, Leadership};
use crate::metrics::Metrics;
use crate::proposer::Proposer;
use crate::tls::Transport;

/// Shared by all handlers of one node.
pub struct Context {
    /// This node's id.
    pub id: NodeId,
    /// The cluster's name.
    pub cluster: String,
    /// Its Raft.
    pub raft: typ::Raft,
    /// Its state machine (read side).
    pub machine: SharedMachine,
    /// Where writes go when this node leads.
    pub proposer: Proposer,
    /// Connections to other nodes' IPAM service.
    pub peers: PeerClients,
    /// Counters and histograms.
    pub metrics: Arc<Metrics>,
    /// Longest time a call may take on this node.
    pub request_timeout: Duration,
    /// Plain TCP or mutual TLS (then every call is authorized from its client certificate).
    pub transport: Transport,
    /// How long this node, leading, may go without a quorum's acknowledgment and still serve.
    pub lease: LeaderLease,
}

impl Context {
    /// The leader openraft currently knows of: id and address.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let id = m.current_leader?;
        let addr = m.membership_config.membership().get_node(&id)?.addr.clone();
        Some((id, addr))
    }

    /// This node's part as far as leading goes (see [`crate::leader_lease`]).
    pub fn leadership(&self) -> Leadership {
        self.lease.judge(self.id, &self.raft.metrics().borrow())
    }

    /// Runs `f` on the state machine under its read lock.
    pub fn with_machine<T>(&self, f: impl FnOnce(&Machine) -> T) -> T {
        let guard = self.machine.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&guard)
    }
}

/// One lazily connected IPAM client per peer address (rebuilt when certificates are reloaded).
pub struct PeerClients {
    transport: Transport,
    clients: Mutex<HashMap<String, (u64, IpamClient<Channel>)>>,
}

impl PeerClients {
    /// Clients that connect over `transport`.
    pub fn new(transport: Transport) -> PeerClients {
        PeerClients { transport, clients: Mutex::default() }
    }

    /// The client for `addr` (`host:port`).
    pub fn client(&self, addr: &str) -> Result<IpamClient<Channel>, String> {
        let generation = self.transport.generation();
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((g, c)) = clients.get(addr) {
            if *g == generation {
                return Ok(c.clone());
            }
        }
        let endpoint = self.transport.endpoint(addr)?.connect_timeout(Duration::from_millis(500)).tcp_nodelay(true);
        let client = IpamClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(proto::MAX_MESSAGE_BYTES * 16)
            .max_encoding_message_size(proto::MAX_MESSAGE_BYTES);
        clients.insert(addr.to_string(), (generation, client.clone()));
        Ok(client)
    }
}
