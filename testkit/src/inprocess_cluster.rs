//! An in-process test cluster: N `cluster::node::Node`s of this process on 127.0.0.1, each with a
//! temporary data directory and its own gRPC port, stop/restart, links cut through
//! [`FaultyNetwork`], and small client helpers. For the in-process tests of `cluster/tests` (the
//! real-process launcher is [`crate::node_processes`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cluster::node::{ClusterState, InitialCluster, LogFormat, Node, NodeOptions};
use cluster::raft_net::client::PeerNetwork;

use crate::faulty_network::{Faults, FaultyNetwork};
use crate::requests;
use proto::ipam as pb;
use proto::ipam::ipam_client::IpamClient;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tonic::transport::Channel;

/// Upper bound for anything a test waits for (elections, catch-up): a bound, not a speed claim.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `check` until it returns `Some`, or panics after [`PATIENCE`] naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A cluster of in-process nodes.
pub struct TestCluster {
    /// The running nodes by id.
    pub nodes: BTreeMap<u64, Node>,
    /// Every node's address (also of stopped ones).
    pub addrs: BTreeMap<u64, SocketAddr>,
    /// The links cut between nodes.
    pub faults: Arc<Faults>,
    dir: TempDir,
    tweak: fn(&mut NodeOptions),
    /// With TLS: where `certs init` wrote the CA and certificates.
    pub certs: Option<std::path::PathBuf>,
}

fn no_tweak(_: &mut NodeOptions) {}

impl TestCluster {
    /// Starts `n` nodes (ids 0..n) that bootstrap together.
    pub async fn start(n: u64) -> TestCluster {
        TestCluster::start_tweaked(n, no_tweak).await
    }

    /// Same, with options adjusted by `tweak` (e.g. a low snapshot threshold).
    pub async fn start_tweaked(n: u64, tweak: fn(&mut NodeOptions)) -> TestCluster {
        let mut listeners = BTreeMap::new();
        for id in 0..n {
            listeners.insert(id, TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let addrs = listeners.iter().map(|(id, l)| (*id, l.local_addr().unwrap())).collect();
        let mut c = TestCluster {
            nodes: BTreeMap::new(),
            addrs,
            faults: Arc::default(),
            dir: tempfile::tempdir().unwrap(),
            tweak,
            certs: None,
        };
        for (id, listener) in listeners {
            c.launch(id, listener, ClusterState::New).await;
        }
        c.founded().await;
        c
    }

    /// Waits until the new cluster raised its cluster version (every node applied it), as a
    /// cluster founded by this release does by itself: tests run with this release's semantics.
    pub async fn founded(&self) {
        eventually("the new cluster to raise its cluster version", || async {
            self.nodes
                .values()
                .all(|n| n.ctx.with_machine(|m| m.state.cluster_version()) >= ipam::FORMAT_MAX)
                .then_some(())
        })
        .await
    }

    /// Starts node `id` on `listener` (plain TCP, links cut through [`Self::faults`]).
    async fn launch(&mut self, id: u64, listener: TcpListener, state: ClusterState) {
        let opts = self.options(id, state);
        let network = PeerNetwork::new("test", cluster::tls::Transport::Insecure);
        let node = Node::start_with(opts, listener, FaultyNetwork::new(network, id, self.faults.clone()))
            .await
            .unwrap_or_else(|e| panic!("node {id} did not start: {e:#}"));
        self.nodes.insert(id, node);
    }

    /// Starts `n` nodes speaking mutual TLS, with certificates for peers `n0..`, plugin identities
    /// `worker-1`, `worker-2` and operator `admin`.
    pub async fn start_tls(n: u64) -> TestCluster {
        let mut listeners = BTreeMap::new();
        for id in 0..n {
            listeners.insert(id, TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let addrs = listeners.iter().map(|(id, l)| (*id, l.local_addr().unwrap())).collect();
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        let plan = cluster::tls::certs::Plan {
            peers: (0..n).map(|id| (format!("n{id}"), vec!["127.0.0.1".to_string()])).collect(),
            nodes: vec!["worker-1".into(), "worker-2".into()],
            admins: vec!["admin".into()],
            days: 1,
        };
        cluster::tls::certs::init(&certs, &plan).unwrap();
        let mut c = TestCluster {
            nodes: BTreeMap::new(),
            addrs,
            faults: Arc::default(),
            dir,
            tweak: no_tweak,
            certs: Some(certs),
        };
        for (id, listener) in listeners {
            let opts = c.options(id, ClusterState::New);
            c.nodes.insert(id, Node::start_on(opts, listener).await.unwrap());
        }
        c.founded().await;
        c
    }

    /// TLS options presenting certificate `name` (e.g. `peer-n0`, `node-worker-1`, `admin-admin`).
    pub fn tls_as(&self, name: &str) -> cluster::tls::TlsOptions {
        let dir = self.certs.as_ref().expect("a TLS cluster");
        cluster::tls::TlsOptions {
            tls_ca: Some(dir.join("ca.pem")),
            tls_cert: Some(dir.join(format!("{name}.pem"))),
            tls_key: Some(dir.join(format!("{name}-key.pem"))),
            insecure: false,
        }
    }

    /// A client of node `id` presenting certificate `name`.
    pub fn client_as(&self, id: u64, name: &str) -> IpamClient<Channel> {
        let files = self.tls_as(name).files().unwrap().unwrap();
        let transport = cluster::tls::Transport::Tls(tokio::sync::watch::channel(Arc::new(files.load(0).unwrap())).1);
        IpamClient::new(transport.endpoint(&self.addrs[&id].to_string()).unwrap().connect_lazy())
    }

    /// The options of node `id`.
    pub fn options(&self, id: u64, state: ClusterState) -> NodeOptions {
        let founders: BTreeMap<u64, String> = self.addrs.iter().map(|(i, a)| (*i, a.to_string())).collect();
        let mut opts = NodeOptions {
            id,
            listen: self.addrs[&id],
            advertise_addr: Some(self.addrs[&id].to_string()),
            initial_cluster: InitialCluster(founders),
            initial_cluster_state: state,
            cluster_name: "test".into(),
            tls: match &self.certs {
                Some(_) => self.tls_as(&format!("peer-n{id}")),
                None => cluster::tls::TlsOptions { insecure: true, ..Default::default() },
            },
            tls_reload_seconds: 1,
            data_dir: self.dir.path().join(format!("node-{id}")),
            metrics_listen: None,
            log_level: "warn".into(),
            log_format: LogFormat::Text,
            snapshot_threshold: 10_000,
            heartbeat_ms: 50,
            election_timeout_ms: 300,
            bootstrap_wait_ms: 2_000,
            request_timeout_ms: 3_000,
            max_batch: 256,
            max_in_flight: 4,
            request_cache: None,
            history: None,
            kube: Default::default(),
        };
        (self.tweak)(&mut opts);
        opts
    }

    /// A client of node `id`'s IPAM service (as the operator when the cluster speaks TLS).
    pub fn client(&self, id: u64) -> IpamClient<Channel> {
        if self.certs.is_some() {
            return self.client_as(id, "admin-admin");
        }
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{}", self.addrs[&id])).unwrap().connect_lazy();
        IpamClient::new(channel)
    }

    /// The leader all running nodes agree on.
    pub async fn leader(&self) -> u64 {
        eventually("all running nodes to agree on a leader", || async {
            let seen: Vec<Option<u64>> =
                self.nodes.values().map(|n| n.raft.metrics().borrow().current_leader).collect();
            let first = seen.first().copied().flatten()?;
            let running_leader = self.nodes.contains_key(&first);
            (running_leader && seen.iter().all(|l| *l == Some(first))).then_some(first)
        })
        .await
    }

    /// Cuts leader `old` off from every other node (both ways) and returns the leader the others
    /// then elect among themselves.
    pub async fn isolate_leader(&self, old: u64) -> u64 {
        let rest: Vec<u64> = self.nodes.keys().copied().filter(|id| *id != old).collect();
        self.faults.partition(&[old], &rest);
        eventually("the majority to elect a new leader", || async {
            let l = self.nodes[&rest[0]].raft.metrics().borrow().current_leader?;
            let agreed = rest.iter().all(|id| self.nodes[id].raft.metrics().borrow().current_leader == Some(l));
            (l != old && agreed).then_some(l)
        })
        .await
    }

    /// A running node other than `not`.
    pub fn other_than(&self, not: u64) -> u64 {
        *self.nodes.keys().find(|id| **id != not).expect("another node")
    }

    /// Stops node `id` (its data directory stays).
    pub async fn stop(&mut self, id: u64) {
        let node = self.nodes.remove(&id).expect("running");
        node.shutdown().await.unwrap();
    }

    /// Starts node `id` again on its address and data directory.
    pub async fn restart(&mut self, id: u64) {
        let listener = TcpListener::bind(self.addrs[&id]).await.unwrap();
        self.launch(id, listener, ClusterState::New).await;
    }

    /// Starts a new, empty node `id` that joins later (`existing` state); returns its address.
    pub async fn spawn_joiner(&mut self, id: u64) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        self.addrs.insert(id, addr);
        self.launch(id, listener, ClusterState::Existing).await;
        addr
    }

    /// The allocation table of node `id`'s state machine (local, for comparisons).
    pub fn table(&self, id: u64) -> Vec<(String, String, String)> {
        self.nodes[&id].ctx.with_machine(|m| {
            m.state
                .allocations(None)
                .into_iter()
                .map(|v| (v.network, v.ip.to_string(), v.attachment.owner.to_string()))
                .collect()
        })
    }

    /// Waits until every running node applied `index`.
    pub async fn applied_everywhere(&self, index: u64) {
        eventually("every node to apply the log", || async {
            self.nodes
                .values()
                .all(|n| n.raft.metrics().borrow().last_applied.is_some_and(|l| l.index >= index))
                .then_some(())
        })
        .await
    }

    /// Last log index applied by node `id`.
    pub fn applied(&self, id: u64) -> u64 {
        self.nodes[&id].raft.metrics().borrow().last_applied.map_or(0, |l| l.index)
    }

    /// Stops every node.
    pub async fn shutdown(mut self) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            self.stop(id).await;
        }
    }
}

/// An ADD for `container` on `eth0` in `range` of network `network` (request id `req-<container>`).
pub fn allocate(container: &str, network: &str, range: &str) -> pb::AllocateRequest {
    requests::allocate(network, range)
        .request_id(format!("req-{container}"))
        .container(container)
        .cni_network("test-net")
        .build()
}

/// A DEL for `container` on `eth0` (request id `del-<container>`).
pub fn release(container: &str, network: &str) -> pb::ReleaseRequest {
    pb::ReleaseRequest {
        request_id: format!("del-{container}"),
        network_name: network.into(),
        container_id: container.into(),
        ifname: "eth0".into(),
        deferred_ms: 0,
    }
}

/// Allocates through node `via` and returns the address.
pub async fn add(c: &TestCluster, via: u64, container: &str, range: &str) -> Result<String, tonic::Status> {
    let resp = c.client(via).allocate(allocate(container, "", range)).await?;
    Ok(resp.into_inner().leases[0].ip.clone())
}
