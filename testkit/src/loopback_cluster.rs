//! A real `whereabouts-node` cluster on loopback: N founders on free ports of 127.0.0.1
//! (optionally all inside one network namespace the test created), their data directories and
//! logs in a temporary directory, killed when the [`LoopbackCluster`] is dropped. Built on
//! [`NodeProcesses`]; used by the cluster's process tests and the plugin's end-to-end tests and
//! benchmark.
//!
//! The `async` methods connect from the caller's namespace (tests without a namespace call them
//! from their tokio runtime); the blocking ones ([`LoopbackCluster::wait_ready`],
//! [`LoopbackCluster::allocations`]) run their calls inside the cluster's namespace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proto::ipam as pb;
use proto::ipam::ipam_client::IpamClient;
use tonic::transport::{Channel, Endpoint};

use crate::netns::block_on_in;
use crate::node_processes::{Join, NodeProcesses, Placement};

/// Short heartbeat and election timeouts and a low snapshot threshold: for tests that kill
/// leaders and want lagging nodes to catch up by snapshot, without waiting long for elections.
pub const QUICK_RAFT: [&str; 8] = [
    "--heartbeat-ms",
    "50",
    "--election-timeout-ms",
    "300",
    "--request-timeout-ms",
    "2000",
    "--snapshot-threshold",
    "50",
];

/// `n` distinct free TCP ports on 127.0.0.1, reserved for this test process (see
/// [`crate::ports`]): a node restarted or started late finds its port still free.
pub fn free_ports(n: usize) -> Vec<u16> {
    crate::ports::reserve(n)
}

/// Per-node flags (TLS files) that replace `--insecure`.
type NodeArgs = Box<dyn Fn(u64) -> Vec<String>>;

/// What to start: [`LoopbackOptions::new`], then the settings that differ, then
/// [`LoopbackOptions::prepare`] or [`LoopbackOptions::start`].
pub struct LoopbackOptions {
    bin: PathBuf,
    size: u64,
    netns: Option<String>,
    args: Vec<String>,
    tls: Option<NodeArgs>,
}

impl LoopbackOptions {
    /// `size` nodes of binary `bin`, plain TCP (`--insecure`), default timeouts.
    pub fn new(bin: impl Into<PathBuf>, size: u64) -> LoopbackOptions {
        LoopbackOptions { bin: bin.into(), size, netns: None, args: Vec::new(), tls: None }
    }

    /// Runs every node inside network namespace `netns` (which the test created).
    pub fn netns(mut self, netns: Option<&str>) -> LoopbackOptions {
        self.netns = netns.map(str::to_string);
        self
    }

    /// Flags every node gets (e.g. [`QUICK_RAFT`]).
    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> LoopbackOptions {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Mutual TLS instead of `--insecure`: `flags(id)` gives node `id`'s `--tls-*` flags.
    pub fn tls(mut self, flags: impl Fn(u64) -> Vec<String> + 'static) -> LoopbackOptions {
        self.tls = Some(Box::new(flags));
        self
    }

    /// Ports, directories and placements for the nodes; none started.
    pub fn prepare(self) -> LoopbackCluster {
        let dir = tempfile::Builder::new().prefix("wb-cluster-").tempdir().expect("tempdir");
        let ports = free_ports(self.size as usize);
        let endpoints: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let founders: BTreeMap<u64, Placement> = (0..self.size)
            .map(|id| {
                let mut place = Placement::at(endpoints[id as usize].clone()).in_netns(self.netns.as_deref());
                place.args = match &self.tls {
                    Some(flags) => flags(id),
                    None => vec!["--insecure".into()],
                };
                (id, place)
            })
            .collect();
        let nodes = NodeProcesses::new(&self.bin, dir.path(), founders).expect("node directory").with_args(self.args);
        LoopbackCluster { nodes, endpoints, netns: self.netns, dir }
    }

    /// [`LoopbackOptions::prepare`], then starts every node (without waiting for a leader).
    pub fn start(self) -> LoopbackCluster {
        let mut cluster = self.prepare();
        for id in 0..cluster.endpoints.len() as u64 {
            cluster.start_node(id);
        }
        cluster
    }

    /// [`LoopbackOptions::start`], then [`LoopbackCluster::wait_ready`]: a cluster with a leader.
    pub fn start_ready(self, timeout: Duration) -> LoopbackCluster {
        let mut cluster = self.start();
        cluster.wait_ready(timeout);
        cluster
    }
}

/// A gRPC client to `endpoint` (`host:port`), connecting within one second.
pub async fn connect(endpoint: &str) -> Result<IpamClient<Channel>, String> {
    let ep = Endpoint::from_shared(format!("http://{endpoint}")).map_err(|e| e.to_string())?;
    let ep = ep.connect_timeout(Duration::from_secs(1)).timeout(Duration::from_secs(5));
    ep.connect().await.map(IpamClient::new).map_err(|e| e.to_string())
}

/// Asks `endpoint` for its status (linearizable: it only succeeds with a working leader).
pub async fn status(endpoint: &str) -> Result<pb::StatusResponse, String> {
    let mut c = connect(endpoint).await?;
    c.status(pb::StatusRequest { local: false }).await.map(|r| r.into_inner()).map_err(|s| s.to_string())
}

/// Asks `endpoint` for the cluster version.
pub async fn cluster_version(endpoint: &str) -> Result<u32, String> {
    let mut c = connect(endpoint).await?;
    let req = pb::ClusterVersionRequest { set: None, compact: false };
    c.cluster_version(req).await.map(|r| r.into_inner().cluster_version).map_err(|s| s.to_string())
}

/// N founders on loopback. Fields drop in order: the processes first, then their directory.
pub struct LoopbackCluster {
    /// The node processes (kill, restart, logs).
    pub nodes: NodeProcesses,
    endpoints: Vec<String>,
    netns: Option<String>,
    dir: tempfile::TempDir,
}

impl LoopbackCluster {
    /// `127.0.0.1:PORT` of every node, by id.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Node `id`'s `127.0.0.1:PORT`.
    pub fn endpoint(&self, id: u64) -> &str {
        &self.endpoints[id as usize]
    }

    /// The namespace the nodes run in.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// The temporary directory of data directories and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `--initial-cluster` of these nodes.
    pub fn initial_cluster(&self) -> &str {
        self.nodes.initial_cluster()
    }

    /// Node `id`'s data directory.
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.nodes.data_dir(id)
    }

    /// Starts node `id` (again) on its port and data directory; panics if it cannot.
    pub fn start_node(&mut self, id: u64) {
        self.nodes.start(id, Join::Founder, None).unwrap_or_else(|e| panic!("start node {id}: {e}"));
    }

    /// SIGKILL of node `id`.
    pub fn kill(&mut self, id: u64) {
        self.nodes.kill(id);
    }

    /// Kills every node and waits for them to exit.
    pub fn stop(&mut self) {
        self.nodes.kill_all();
    }

    /// A client of node `id`, connecting on first use.
    pub fn client(&self, id: u64) -> IpamClient<Channel> {
        let ch = Endpoint::from_shared(format!("http://{}", self.endpoint(id))).expect("a valid URI").connect_lazy();
        IpamClient::new(ch)
    }

    /// The leader, as the started nodes report it, and one of them (bounded: about 30 s; panics
    /// with the node logs after).
    pub async fn leader(&self) -> u64 {
        for _ in 0..600 {
            let started = self.nodes.started();
            for id in &started {
                let mut req = tonic::Request::new(pb::StatusRequest { local: false });
                req.set_timeout(Duration::from_secs(1));
                if let Ok(s) = self.client(*id).status(req).await {
                    if let Some(l) = s.into_inner().leader_id.filter(|l| started.contains(l)) {
                        return l;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no leader within 30 s\n{}", self.logs());
    }

    /// Blocks until some node reports a leader; panics with the node logs after `timeout` or if
    /// a node exits.
    pub fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            for id in self.nodes.started() {
                if let Some(status) = self.nodes.exited(id) {
                    panic!("whereabouts-node {id} exited ({status}) during start-up\n{}", self.logs());
                }
            }
            let endpoints = self.endpoints.clone();
            // With every founder started, a new cluster also raises its cluster version by itself
            // (see `service::cluster_version::raise_when_founded`): wait for that too, so that tests
            // run with this release's semantics.
            let all_started = self.nodes.started().len() == endpoints.len();
            let leader = block_on_in(self.netns(), || async move {
                for e in &endpoints {
                    if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(2), status(e)).await {
                        if s.leader_id.is_some() {
                            return !all_started || cluster_version(e).await.is_ok_and(|v| v >= ipam::FORMAT_MAX);
                        }
                    }
                }
                false
            });
            if leader {
                return;
            }
            assert!(Instant::now() < deadline, "no leader within {timeout:?}\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every allocation of `network` (`""`: the default network), read linearizably from the
    /// first node that answers; blocks, calling from inside the cluster's namespace.
    pub fn allocations(&self, network: &str) -> Vec<pb::Allocation> {
        let endpoints = self.endpoints.clone();
        let network = network.to_string();
        block_on_in(self.netns(), || async move {
            for e in &endpoints {
                let Ok(mut c) = connect(e).await else { continue };
                let req = crate::requests::list_all(false).network(&network).build();
                if let Ok(r) = c.list_allocations(req).await {
                    return r.into_inner().allocations;
                }
            }
            panic!("no node answered ListAllocations");
        })
    }

    /// The last lines of every node's log (for failure messages).
    pub fn logs(&self) -> String {
        format!("(in {})\n{}", self.dir().display(), self.nodes.log_tails(30))
    }
}
