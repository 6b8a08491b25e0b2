//! The lab network: one network namespace per node, joined to a bridge in the root namespace by a
//! veth pair, in a private range used for nothing else (`10.213.0.0/24`: the harness is `.1` on
//! the bridge, node `k` is `.10+k`). Faults are nftables rules inside a node's namespace (table
//! `inet wrj`), so deleting the namespace deletes them too.
//!
//! Every name starts with [`PREFIX`]; [`Lab::create`] first removes leftovers of a crashed run,
//! and dropping the [`Lab`] removes everything it made (processes in its namespaces included).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _};

/// Prefix of every namespace, link and nftables table the lab creates.
pub const PREFIX: &str = "wrj";
/// The bridge in the root namespace.
const BRIDGE: &str = "wrj-br";
/// Port every node serves gRPC on.
pub const NODE_PORT: u16 = 7000;
/// Highest node id the address plan allows.
pub const MAX_NODE_ID: u64 = 200;

/// The harness's own address on the bridge.
pub fn host_ip() -> Ipv4Addr {
    Ipv4Addr::new(10, 213, 0, 1)
}

/// Node `id`'s address (inside its namespace).
pub fn node_ip(id: u64) -> Ipv4Addr {
    Ipv4Addr::new(10, 213, 0, 10 + id.min(MAX_NODE_ID) as u8)
}

/// Node `id`'s gRPC address, `ip:port`.
pub fn node_addr(id: u64) -> String {
    format!("{}:{NODE_PORT}", node_ip(id))
}

/// Node `id`'s namespace name.
pub fn ns_name(id: u64) -> String {
    format!("{PREFIX}-n{id}")
}

/// Runs a command, failing with its stderr when it exits non-zero.
pub fn run_cmd(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program).args(args).output().with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Faults currently set on one node's namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkFaults {
    /// Peers whose traffic (both directions) is dropped.
    pub blocked: BTreeSet<u64>,
    /// Percentage of incoming packets dropped at random.
    pub drop_percent: u8,
}

/// The namespaces and bridge of one run.
#[derive(Debug)]
pub struct Lab {
    nodes: BTreeSet<u64>,
    faults: BTreeMap<u64, LinkFaults>,
}

impl Lab {
    /// Checks the tools, removes leftovers of an earlier run and creates the bridge.
    pub fn create() -> anyhow::Result<Lab> {
        for tool in ["ip", "nft"] {
            run_cmd(tool, &["-V"])
                .with_context(|| format!("`{tool}` is needed (apt-get install iproute2 nftables)"))?;
        }
        cleanup_leftovers();
        run_cmd("ip", &["link", "add", BRIDGE, "type", "bridge"])?;
        let lab = Lab { nodes: BTreeSet::new(), faults: BTreeMap::new() };
        run_cmd("ip", &["addr", "add", &format!("{}/24", host_ip()), "dev", BRIDGE])?;
        run_cmd("ip", &["link", "set", BRIDGE, "up"])?;
        Ok(lab)
    }

    /// Creates node `id`'s namespace, veth pair and address.
    pub fn add_node(&mut self, id: u64) -> anyhow::Result<()> {
        if id > MAX_NODE_ID {
            bail!("node id {id} is beyond the lab's address plan ({MAX_NODE_ID})");
        }
        let ns = ns_name(id);
        let veth = format!("{PREFIX}-v{id}");
        run_cmd("ip", &["netns", "add", &ns])?;
        self.nodes.insert(id);
        run_cmd("ip", &["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns])?;
        run_cmd("ip", &["link", "set", &veth, "master", BRIDGE, "up"])?;
        run_cmd("ip", &["-n", &ns, "addr", "add", &format!("{}/24", node_ip(id)), "dev", "eth0"])?;
        run_cmd("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
        run_cmd("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Kills what runs in node `id`'s namespace and deletes it (with its veth and rules).
    pub fn remove_node(&mut self, id: u64) {
        remove_ns(&ns_name(id));
        self.nodes.remove(&id);
        self.faults.remove(&id);
    }
}

/// One lab at a time on a machine: a pid file guards the fixed names and addresses.
#[derive(Debug)]
pub struct RunLock(std::path::PathBuf);

impl RunLock {
    /// Takes the lock, failing when another live `jepsen-tests run` holds it.
    pub fn take() -> anyhow::Result<RunLock> {
        let path = std::path::PathBuf::from(format!("/run/{PREFIX}-jepsen.pid"));
        if let Ok(pid) = std::fs::read_to_string(&path) {
            let pid = pid.trim();
            if !pid.is_empty() && pid != std::process::id().to_string() && Path::new(&format!("/proc/{pid}")).exists() {
                bail!("another chaos run (pid {pid}) is using the lab; wait for it or remove {}", path.display());
            }
        }
        std::fs::write(&path, std::process::id().to_string())?;
        Ok(RunLock(path))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Lab {
    /// The faults set on node `id`.
    pub fn faults(&self, id: u64) -> LinkFaults {
        self.faults.get(&id).cloned().unwrap_or_default()
    }

    /// Replaces node `id`'s faults (one atomic nftables transaction).
    pub fn set_faults(&mut self, id: u64, faults: LinkFaults) -> anyhow::Result<()> {
        let mut script = format!("table inet {PREFIX} {{}}\ndelete table inet {PREFIX}\n");
        if faults != LinkFaults::default() {
            script.push_str(&ruleset(&faults));
        }
        nft(&ns_name(id), &script)?;
        self.faults.insert(id, faults);
        Ok(())
    }

    /// Removes every fault from every node.
    pub fn heal_all(&mut self) -> anyhow::Result<()> {
        let ids: Vec<u64> = self.faults.iter().filter(|(_, f)| **f != LinkFaults::default()).map(|(i, _)| *i).collect();
        for id in ids {
            self.set_faults(id, LinkFaults::default())?;
        }
        Ok(())
    }

    /// Cuts every link between group `a` and group `b` (both directions, on both sides).
    pub fn partition(&mut self, a: &[u64], b: &[u64]) -> anyhow::Result<()> {
        for (side, other) in [(a, b), (b, a)] {
            for id in side {
                let mut f = self.faults(*id);
                f.blocked.extend(other.iter().copied());
                self.set_faults(*id, f)?;
            }
        }
        Ok(())
    }
}

fn ruleset(f: &LinkFaults) -> String {
    let mut input = String::new();
    let mut output = String::new();
    if !f.blocked.is_empty() {
        let ips: Vec<String> = f.blocked.iter().map(|p| node_ip(*p).to_string()).collect();
        let set = ips.join(", ");
        input.push_str(&format!("    ip saddr {{ {set} }} drop\n"));
        output.push_str(&format!("    ip daddr {{ {set} }} drop\n"));
    }
    if f.drop_percent > 0 {
        input.push_str(&format!("    iifname \"eth0\" numgen random mod 100 < {} drop\n", f.drop_percent));
    }
    format!(
        "table inet {PREFIX} {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n{input}  }}\n  \
         chain output {{\n    type filter hook output priority 0; policy accept;\n{output}  }}\n}}\n"
    )
}

fn nft(ns: &str, script: &str) -> anyhow::Result<()> {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run nft")?;
    child.stdin.take().context("nft stdin")?.write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("nft in {ns}: {}\n{script}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn remove_ns(ns: &str) {
    if let Ok(pids) = run_cmd("ip", &["netns", "pids", ns]) {
        for pid in pids.split_whitespace() {
            let _ = run_cmd("kill", &["-9", pid]);
        }
    }
    let _ = run_cmd("ip", &["netns", "del", ns]);
}

/// Removes namespaces (and their processes) and links left by an earlier run that crashed.
pub fn cleanup_leftovers() {
    if let Ok(list) = run_cmd("ip", &["netns", "list"]) {
        for ns in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if ns.starts_with(&format!("{PREFIX}-")) {
                remove_ns(ns);
            }
        }
    }
    if let Ok(links) = run_cmd("ip", &["-o", "link", "show"]) {
        for name in links.lines().filter_map(|l| l.split(':').nth(1)) {
            let name = name.trim().split('@').next().unwrap_or_default();
            if name.starts_with(&format!("{PREFIX}-")) {
                let _ = run_cmd("ip", &["link", "del", name]);
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for id in std::mem::take(&mut self.nodes) {
            remove_ns(&ns_name(id));
        }
        let _ = run_cmd("ip", &["link", "del", BRIDGE]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_follow_the_plan() {
        assert_eq!(node_addr(0), "10.213.0.10:7000");
        assert_eq!(node_ip(4), Ipv4Addr::new(10, 213, 0, 14));
        assert_eq!(ns_name(3), "wrj-n3");
    }

    #[test]
    fn rules_drop_both_directions_and_at_random() {
        let f = LinkFaults { blocked: BTreeSet::from([1, 2]), drop_percent: 20 };
        let r = ruleset(&f);
        assert!(r.contains("ip saddr { 10.213.0.11, 10.213.0.12 } drop"), "{r}");
        assert!(r.contains("ip daddr { 10.213.0.11, 10.213.0.12 } drop"), "{r}");
        assert!(r.contains("numgen random mod 100 < 20 drop"), "{r}");
    }
}
