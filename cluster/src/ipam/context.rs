//! What every IPAM handler of a node shares: its Raft handle, the state machine to read, the
//! proposer to write through, connections to peers (for forwarding), metrics and limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::ipam::ipam_client::IpamClient;
use raft_store::store::{Machine, SharedMachine};
use raft_store::types::{typ, NodeId};
use tonic::transport::{Channel, Endpoint};

use crate::metrics::Metrics;
use crate::proposer::Proposer;

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

    /// Runs `f` on the state machine under its read lock.
    pub fn with_machine<T>(&self, f: impl FnOnce(&Machine) -> T) -> T {
        let guard = self.machine.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&guard)
    }
}

/// One lazily connected IPAM client per peer address.
#[derive(Default)]
pub struct PeerClients {
    clients: Mutex<HashMap<String, IpamClient<Channel>>>,
}

impl PeerClients {
    /// The client for `addr` (`host:port`).
    pub fn client(&self, addr: &str) -> Result<IpamClient<Channel>, String> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(addr) {
            return Ok(c.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true);
        let client = IpamClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(proto::MAX_MESSAGE_BYTES * 16)
            .max_encoding_message_size(proto::MAX_MESSAGE_BYTES);
        clients.insert(addr.to_string(), client.clone());
        Ok(client)
    }
}
