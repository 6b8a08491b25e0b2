//! A real local whereabouts-node cluster for end-to-end tests and the benchmark: N processes on
//! loopback (optionally inside a network namespace the test created), each with its own data
//! directory in a temporary directory, killed when the [`LocalCluster`] is dropped.
//!
//! The node binary comes from `WHEREABOUTS_NODE_BIN`, else `whereabouts-node` in the target
//! profile directory of the running test or bench (`target/<profile>/deps/..`). A missing binary
//! is a failure, never a skip.

#![allow(dead_code)]

use std::fs::File;
use std::future::Future;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proto::ipam::ipam_client::IpamClient;
use proto::ipam::{Allocation, ListAllocationsRequest, StatusRequest, StatusResponse};
use tonic::transport::{Channel, Endpoint};

/// Environment variable naming the node binary.
pub const NODE_BIN_ENV: &str = "WHEREABOUTS_NODE_BIN";

/// Where the node binary is; panics with "whereabouts-node binary not found at …" if absent.
pub fn node_binary() -> PathBuf {
    let path = match std::env::var_os(NODE_BIN_ENV) {
        Some(p) => PathBuf::from(p),
        None => {
            let exe = std::env::current_exe().expect("current exe");
            let dir = exe.parent().expect("exe dir");
            let profile_dir = if dir.ends_with("deps") { dir.parent().expect("profile dir") } else { dir };
            profile_dir.join("whereabouts-node")
        }
    };
    assert!(
        path.is_file(),
        "whereabouts-node binary not found at {} (build it with `cargo build -p cluster --bin whereabouts-node` \
         into the same target directory, or set {NODE_BIN_ENV})",
        path.display()
    );
    path
}

/// `ip` (iproute2), by absolute path so a cleared environment still finds it.
pub fn ip_binary() -> &'static str {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("iproute2 `ip` not found")
}

/// Runs `make()`'s future on a fresh current-thread runtime in a thread that entered network
/// namespace `netns` (if any): how the test reaches nodes listening on that namespace's loopback.
pub fn block_on_in<T, F, Fut>(netns: Option<&str>, make: F) -> T
where
    T: Send,
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = T>,
{
    std::thread::scope(|s| {
        s.spawn(move || {
            if let Some(ns) = netns {
                let f = File::open(format!("/var/run/netns/{ns}")).unwrap_or_else(|e| panic!("netns {ns}: {e}"));
                // SAFETY: setns on a valid namespace fd only changes this thread's network namespace.
                let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
            }
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(make())
        })
        .join()
        .expect("rpc thread panicked")
    })
}

/// A gRPC client to `endpoint`, connecting within one second.
pub async fn client(endpoint: &str) -> Result<IpamClient<Channel>, String> {
    let ep = Endpoint::from_shared(format!("http://{endpoint}")).map_err(|e| e.to_string())?;
    let ep = ep.connect_timeout(Duration::from_secs(1)).timeout(Duration::from_secs(5));
    ep.connect().await.map(IpamClient::new).map_err(|e| e.to_string())
}

/// Asks `endpoint` for its status (linearizable: it only succeeds with a working leader).
pub async fn status(endpoint: &str) -> Result<StatusResponse, String> {
    let mut c = client(endpoint).await?;
    c.status(StatusRequest { local: false }).await.map(|r| r.into_inner()).map_err(|s| s.to_string())
}

/// N `whereabouts-node` processes forming one cluster.
pub struct LocalCluster {
    /// `127.0.0.1:PORT` of each node, by id.
    pub endpoints: Vec<String>,
    netns: Option<String>,
    children: Vec<Option<Child>>,
    dir: tempfile::TempDir,
}

impl LocalCluster {
    /// Starts `size` nodes (inside `netns` when given) and waits until one is leader.
    pub fn start(netns: Option<&str>, size: usize) -> LocalCluster {
        let bin = node_binary();
        let dir = tempfile::Builder::new().prefix("wb-cluster-").tempdir().expect("tempdir");
        let endpoints: Vec<String> = free_ports(size).into_iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let initial: Vec<String> = endpoints.iter().enumerate().map(|(i, e)| format!("{i}={e}")).collect();
        let mut cluster = LocalCluster { endpoints, netns: netns.map(str::to_string), children: Vec::new(), dir };
        for id in 0..size {
            let log = File::create(cluster.log_path(id)).expect("log file");
            let mut cmd = match netns {
                Some(ns) => {
                    let mut c = Command::new(ip_binary());
                    c.args(["netns", "exec", ns]).arg(&bin);
                    c
                }
                None => Command::new(&bin),
            };
            cmd.arg("--id")
                .arg(id.to_string())
                .arg("--listen")
                .arg(&cluster.endpoints[id])
                .arg("--initial-cluster")
                .arg(initial.join(","))
                .arg("--data-dir")
                .arg(cluster.dir.path().join(format!("node-{id}")))
                .arg("--log-level")
                .arg("info,openraft=warn")
                .arg("--insecure")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log fd"))
                .stderr(log);
            let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
            cluster.children.push(Some(child));
        }
        cluster.wait_ready(Duration::from_secs(60));
        cluster
    }

    fn log_path(&self, id: usize) -> PathBuf {
        self.dir.path().join(format!("node-{id}.log"))
    }

    /// The network namespace the nodes run in.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// Waits until some node reports a leader; panics with the node logs after `timeout` or if a
    /// node exits.
    pub fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            for (id, child) in self.children.iter_mut().enumerate() {
                if let Some(status) = child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                    panic!("whereabouts-node {id} exited ({status}) during start-up\n{}", self.logs());
                }
            }
            let endpoints = self.endpoints.clone();
            let leader = block_on_in(self.netns.as_deref(), || async move {
                for e in &endpoints {
                    if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(2), status(e)).await {
                        if s.leader_id.is_some() {
                            return true;
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

    /// Every allocation of `network`, read from the cluster.
    pub fn allocations(&self, network: &str) -> Vec<Allocation> {
        let endpoints = self.endpoints.clone();
        let network = network.to_string();
        block_on_in(self.netns.as_deref(), || async move {
            for e in &endpoints {
                let Ok(mut c) = client(e).await else { continue };
                let req = ListAllocationsRequest {
                    network_name: Some(network.clone()),
                    limit: 0,
                    after: String::new(),
                    local: false,
                };
                if let Ok(r) = c.list_allocations(req).await {
                    return r.into_inner().allocations;
                }
            }
            panic!("no node answered ListAllocations");
        })
    }

    /// Kills every node and waits for them to exit.
    pub fn stop(&mut self) {
        for child in self.children.iter_mut().filter_map(Option::take).collect::<Vec<_>>().iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last lines of every node's log (for failure messages).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for id in 0..self.endpoints.len() {
            let text = std::fs::read_to_string(self.log_path(id)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            out.push_str(&format!("--- node {id} ({}) ---\n", self.endpoints[id]));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `n` distinct free TCP ports on 127.0.0.1 (all bound at once, then released).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind")).collect();
    listeners.iter().map(|l| l.local_addr().expect("addr").port()).collect()
}
