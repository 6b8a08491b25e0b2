//! The lab network: one network namespace per node ([`testkit::netns::Netns`]), joined to a bridge in the root namespace by a
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
use std::process::Stdio;

use anyhow::{bail, Context as _};
use testkit::netns::{ip, remove_leftovers, run_command, Netns};
use testkit::node_processes::Placement;

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

/// Where node `id` runs: its address, in its namespace.
pub fn placement(id: u64) -> Placement {
    Placement::at(node_addr(id)).in_netns(Some(&ns_name(id)))
}

/// Faults currently set on one node's namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkFaults {
    /// Peers whose traffic (both directions) is dropped.
    pub blocked: BTreeSet<u64>,
    /// Percentage of incoming packets dropped at random.
    pub drop_percent: u8,
}

/// The namespaces and bridge of one run. Fields drop in order: the namespaces (with what runs
/// in them) first, then the bridge goes in `Drop`.
#[derive(Debug)]
pub struct Lab {
    nodes: BTreeMap<u64, Netns>,
    faults: BTreeMap<u64, LinkFaults>,
}

impl Lab {
    /// Checks the tools, removes leftovers of an earlier run and creates the bridge.
    pub fn create() -> anyhow::Result<Lab> {
        ip(&["-V"]).context("`ip` is needed (apt-get install iproute2 nftables)")?;
        run_command("nft", &["-V"]).context("`nft` is needed (apt-get install iproute2 nftables)")?;
        remove_leftovers(&format!("{PREFIX}-"));
        ip(&["link", "add", BRIDGE, "type", "bridge"])?;
        let lab = Lab { nodes: BTreeMap::new(), faults: BTreeMap::new() };
        ip(&["addr", "add", &format!("{}/24", host_ip()), "dev", BRIDGE])?;
        ip(&["link", "set", BRIDGE, "up"])?;
        Ok(lab)
    }

    /// Creates node `id`'s namespace, veth pair and address.
    pub fn add_node(&mut self, id: u64) -> anyhow::Result<()> {
        if id > MAX_NODE_ID {
            bail!("node id {id} is beyond the lab's address plan ({MAX_NODE_ID})");
        }
        let ns = ns_name(id);
        let veth = format!("{PREFIX}-v{id}");
        let netns = Netns::create(&ns)?;
        self.nodes.insert(id, netns);
        ip(&["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns])?;
        ip(&["link", "set", &veth, "master", BRIDGE, "up"])?;
        let netns = &self.nodes[&id];
        netns.ip(&["addr", "add", &format!("{}/24", node_ip(id)), "dev", "eth0"])?;
        netns.ip(&["link", "set", "eth0", "up"])?;
        Ok(())
    }

    /// Kills what runs in node `id`'s namespace and deletes it (with its veth and rules).
    pub fn remove_node(&mut self, id: u64) {
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
    pub fn clear_faults(&mut self) -> anyhow::Result<()> {
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
    let mut child = testkit::netns::command_in(Some(ns), "nft")
        .args(["-f", "-"])
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

impl Drop for Lab {
    fn drop(&mut self) {
        self.nodes.clear();
        let _ = ip(&["link", "del", BRIDGE]);
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
