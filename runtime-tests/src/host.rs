//! One test's private piece of the host: a network namespace (the runtime, its bridge and the
//! cluster all live in it, so the host's links, routes, `ip_forward` and firewall stay as they
//! were), a 3-node cluster listening on that namespace's loopback, and a work directory for the
//! runtime's state. On drop: processes naming the work directory (daemons, shims) and processes
//! left in the cgroups that appeared under the runtime's cgroup parent (a sandbox a failed test
//! did not stop) are killed by pid, every mount under the work directory is detached, those cgroup
//! directories and the libcni result-cache entries that appeared are removed, the namespace is
//! deleted with every process left in it, and the directory goes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use testkit::loopback_cluster::{LoopbackCluster, LoopbackOptions};
use testkit::netns::Netns;

/// Where whereabouts looks for its flat file: a file there would be merged into the test's
/// configuration, so the tests refuse to run with one present.
const FLAT_FILES: [&str; 3] = [
    "/etc/kubernetes/cni/net.d/whereabouts.d/whereabouts.conf",
    "/etc/cni/net.d/whereabouts.d/whereabouts.conf",
    "/host/etc/cni/net.d/whereabouts.d/whereabouts.conf",
];

/// A test's namespace, cluster and work directory.
pub struct Host {
    /// The cluster (in the namespace).
    pub cluster: LoopbackCluster,
    netns: Netns,
    dir: tempfile::TempDir,
    cgroup_parent: String,
    cgroups_before: BTreeSet<PathBuf>,
    results_before: BTreeSet<PathBuf>,
}

/// libcni's result cache (`/var/lib/cni/results`): runtimes write an entry per ADD and remove it
/// on a successful DEL, so a failed test can leave some.
const RESULT_CACHE: &str = "/var/lib/cni/results";

fn cache_entries() -> BTreeSet<PathBuf> {
    std::fs::read_dir(RESULT_CACHE).map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect()).unwrap_or_default()
}

impl Host {
    /// Creates namespace `name` and starts the cluster in it. `cgroup_parent` is the top-level
    /// cgroup directory the runtime puts its containers under (removed afterwards if it is new).
    pub fn new(name: &str, cgroup_parent: &str) -> Host {
        for f in FLAT_FILES {
            assert!(!Path::new(f).exists(), "{f} exists: it would be merged into the test's configuration");
        }
        let netns = Netns::create(name).unwrap_or_else(|e| panic!("create netns {name}: {e}"));
        let cluster = LoopbackOptions::new(testkit::node_binary::locate(), 3)
            .netns(Some(netns.name()))
            .start_ready(Duration::from_secs(90));
        let dir = tempfile::Builder::new().prefix(&format!("{name}-")).tempdir().expect("work dir");
        let cgroups_before = cgroups(cgroup_parent);
        Host {
            cluster,
            netns,
            dir,
            cgroup_parent: cgroup_parent.into(),
            cgroups_before,
            results_before: cache_entries(),
        }
    }

    /// The work directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `/var/run/netns/<name>`.
    pub fn netns_path(&self) -> PathBuf {
        PathBuf::from(self.netns.path())
    }

    /// The `ipam` section every test network uses: `range` with its gateway, this cluster, the
    /// plugin's log and pending-DEL state under the work directory.
    pub fn ipam(&self, range: &str, gateway: &str, network_name: &str) -> Value {
        json!({
            "type": "whereabouts",
            "range": range,
            "gateway": gateway,
            "network_name": network_name,
            "endpoints": self.cluster.endpoints(),
            "timeout_seconds": 20,
            "state_dir": self.dir().join("whereabouts-state"),
            "log_file": self.dir().join("whereabouts.log"),
            "log_level": "debug",
        })
    }

    /// The plugin's log so far (for failure messages).
    pub fn plugin_log(&self) -> String {
        std::fs::read_to_string(self.dir().join("whereabouts.log")).unwrap_or_default()
    }

    /// Held addresses of `network` as `(ip, pod_namespace, pod_name, container_id)`.
    pub fn held(&self, network: &str) -> BTreeSet<(String, String, String, String)> {
        self.cluster
            .allocations(network)
            .into_iter()
            .map(|a| {
                let att = a.attachment.unwrap_or_default();
                (a.ip, att.pod_namespace, att.pod_name, att.container_id)
            })
            .collect()
    }

    /// Kills, by pid, every process whose command line names the work directory (a runtime's
    /// daemons and shims that outlive it), SIGTERM first, then SIGKILL after up to 10 s.
    pub fn kill_processes_naming_dir(&self) {
        let needle = self.dir().to_string_lossy().into_owned();
        let pids = || -> Vec<i32> {
            let me = std::process::id() as i32;
            let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                .filter(|pid| *pid != me)
                .filter(|pid| {
                    std::fs::read(format!("/proc/{pid}/cmdline"))
                        .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                        .unwrap_or(false)
                })
                .collect()
        };
        for (signal, wait) in [(libc::SIGTERM, 100), (libc::SIGKILL, 50)] {
            let found = pids();
            if found.is_empty() {
                return;
            }
            for pid in &found {
                // SAFETY: kill has no memory-safety preconditions; pid came from /proc just now.
                unsafe { libc::kill(*pid, signal) };
            }
            for _ in 0..wait {
                if pids().is_empty() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill_processes_naming_dir();
        let now = cgroups(&self.cgroup_parent);
        let new: Vec<&PathBuf> = now.difference(&self.cgroups_before).collect();
        for cg in &new {
            let procs = std::fs::read_to_string(cg.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                // SAFETY: kill has no memory-safety preconditions; the pid was just read from a
                // cgroup this test's runtime created.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        unmount_under(self.dir());
        for cg in new.into_iter().rev() {
            // A cgroup empties shortly after its processes are killed: a few bounded tries.
            for _ in 0..20 {
                if std::fs::remove_dir(cg).is_ok() || !cg.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        for entry in cache_entries().difference(&self.results_before) {
            let _ = std::fs::remove_file(entry);
        }
    }
}

/// Every cgroup directory at or under `/sys/fs/cgroup/*/<parent>` and `/sys/fs/cgroup/<parent>`,
/// sorted so that a directory comes before its children.
fn cgroups(parent: &str) -> BTreeSet<PathBuf> {
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup").join(parent)];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        roots.extend(entries.filter_map(|e| Some(e.ok()?.path().join(parent))));
    }
    let mut out = BTreeSet::new();
    let mut stack: Vec<(PathBuf, usize)> = roots.into_iter().filter(|p| p.is_dir()).map(|p| (p, 0)).collect();
    while let Some((dir, depth)) = stack.pop() {
        if depth > 8 || out.len() > 10_000 {
            continue;
        }
        if let Ok(entries) = std::fs::read_dir(&dir) {
            stack.extend(entries.filter_map(|e| e.ok()).filter(|e| e.path().is_dir()).map(|e| (e.path(), depth + 1)));
        }
        out.insert(dir);
    }
    out
}

/// Detaches every mount at or under `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let prefix = dir.to_string_lossy().into_owned();
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else { return };
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|m| *m == prefix || m.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_unstable_by(|a, b| b.cmp(a));
    for m in points {
        let _ = std::process::Command::new("umount").arg("-l").arg(m).status();
    }
}
