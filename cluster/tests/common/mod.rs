//! Real `whereabouts-node` processes for integration tests.

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use proto::ipam as pb;
use proto::ipam::ipam_client::IpamClient;
use tonic::transport::Channel;

/// Real node processes on 127.0.0.1, killed when dropped.
pub struct Proc {
    pub children: BTreeMap<u64, Child>,
    pub ports: BTreeMap<u64, u16>,
    pub dir: tempfile::TempDir,
}

impl Drop for Proc {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Proc {
    /// Starts `n` nodes that bootstrap a new cluster.
    pub fn start(n: u64) -> Proc {
        let mut p = Proc::prepare(n);
        for id in 0..n {
            p.spawn(id);
        }
        p
    }

    /// Ports and a directory for `n` nodes, none started.
    pub fn prepare(n: u64) -> Proc {
        let ports: BTreeMap<u64, u16> = (0..n).map(|id| (id, free_port())).collect();
        Proc { children: BTreeMap::new(), ports, dir: tempfile::tempdir().unwrap() }
    }

    /// `--initial-cluster` of these nodes.
    pub fn initial_cluster(&self) -> String {
        self.ports.iter().map(|(i, port)| format!("{i}=127.0.0.1:{port}")).collect::<Vec<_>>().join(",")
    }

    /// Starts node `id` (again) on its port and data directory.
    pub fn spawn(&mut self, id: u64) {
        let log = std::fs::File::create(self.dir.path().join(format!("node-{id}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_whereabouts-node"))
            .args(["--id", &id.to_string(), "--listen", &format!("127.0.0.1:{}", self.ports[&id])])
            .args(["--initial-cluster", &self.initial_cluster()])
            .args(["--data-dir", &self.data_dir(id).display().to_string()])
            .args(["--heartbeat-ms", "50", "--election-timeout-ms", "300", "--request-timeout-ms", "2000"])
            .args(["--snapshot-threshold", "50", "--insecure"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start whereabouts-node");
        self.children.insert(id, child);
    }

    /// The data directory of node `id`.
    pub fn data_dir(&self, id: u64) -> std::path::PathBuf {
        self.dir.path().join(format!("data-{id}"))
    }

    /// SIGKILL.
    pub fn kill9(&mut self, id: u64) {
        let mut child = self.children.remove(&id).unwrap();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }

    /// A client of node `id`.
    pub fn client(&self, id: u64) -> IpamClient<Channel> {
        let ch = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", self.ports[&id]))
            .unwrap()
            .connect_lazy();
        IpamClient::new(ch)
    }

    /// The leader, as the running nodes report it (bounded wait).
    pub async fn leader(&self) -> u64 {
        for _ in 0..600 {
            for id in self.children.keys() {
                let mut c = self.client(*id);
                let mut req = tonic::Request::new(pb::StatusRequest { local: false });
                req.set_timeout(Duration::from_secs(1));
                if let Ok(s) = c.status(req).await {
                    if let Some(l) = s.into_inner().leader_id.filter(|l| self.children.contains_key(l)) {
                        return l;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no leader within 30 s; logs in {}", self.dir.path().display());
    }
}
