//! `whereabouts-ctl`: the operator's view of the cluster — status, members, membership changes,
//! allocations, who holds an address, guarded releases — over the same IPAM API every client uses.

mod bench;
mod certs;
mod client;
mod cluster_version;
#[cfg(feature = "kubernetes")]
mod import;
mod output;
mod snapshot;

use std::time::Duration;

use clap::{Parser, Subcommand};
use proto::ipam as pb;
use raft_store::types::{display_id, node_id};

use client::Cluster;
pub use output::Output;
use output::{print, table};

/// whereabouts-rs operator CLI.
#[derive(Debug, Parser)]
#[command(name = "whereabouts-ctl", version, about)]
pub struct Cli {
    /// Cluster nodes, `host:port,...` (any node will do; the first that answers is used).
    #[arg(long, env = "WHEREABOUTS_ENDPOINTS", value_delimiter = ',', default_value = "127.0.0.1:7000")]
    pub endpoints: Vec<String>,
    /// Per-call timeout in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "table")]
    pub output: Output,
    /// TLS: CA, client certificate and key (an admin certificate for membership, releases and
    /// backups), or --insecure for a cluster running plain TCP.
    #[command(flatten)]
    pub tls: crate::tls::TlsOptions,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Leader, term, members, applied index and pool usage.
    Status {
        /// Ask only the first endpoint for its own view (works without a quorum; may be stale).
        #[arg(long)]
        local: bool,
    },
    /// The members and their roles.
    Members,
    /// Add a node as a learner (it receives the log without voting).
    AddLearner {
        /// Node id as `status` shows it: the ordinal, or `ORDINAL#INCARNATION` for a member that
        /// rejoined after losing its data directory.
        #[arg(long, value_parser = parse_node_id)]
        id: u64,
        /// Its gRPC address, host:port.
        #[arg(long)]
        addr: String,
    },
    /// Make a learner a voter.
    Promote {
        /// Node id as `status` shows it: the ordinal, or `ORDINAL#INCARNATION` for a member that
        /// rejoined after losing its data directory.
        #[arg(long, value_parser = parse_node_id)]
        id: u64,
    },
    /// Remove a node from the cluster.
    Remove {
        /// Node id as `status` shows it: the ordinal, or `ORDINAL#INCARNATION` for a member that
        /// rejoined after losing its data directory.
        #[arg(long, value_parser = parse_node_id)]
        id: u64,
    },
    /// Held addresses.
    Allocations {
        /// Only this network name ("" is the unnamed network).
        #[arg(long)]
        network: Option<String>,
    },
    /// Show, or change, what the replicated state remembers beyond allocations: replies kept for
    /// request-id deduplication and history entries kept (`who-has`). Written through the log, so
    /// every node applies the same limits.
    Settings {
        /// Replies remembered for request-id deduplication (1024 to 4,000,000; default 65,536).
        #[arg(long)]
        request_cache: Option<u64>,
        /// History entries kept (0 to 1,000,000; default 10,000).
        #[arg(long)]
        history: Option<u64>,
    },
    /// Each member's release and log formats, and the cluster version: the newest log format the
    /// leader writes. Raise it once every member runs the new release (the last step of an
    /// upgrade); lower it, then `--compact`, before rolling members back (docs/upgrades.md).
    ClusterVersion {
        /// Set the cluster version (refused while a member cannot read it).
        #[arg(long)]
        set: Option<u32>,
        /// Then have every member snapshot and purge its log, so that no entry newer than the
        /// cluster version is left.
        #[arg(long)]
        compact: bool,
    },
    /// Who holds an address, and what happened to it recently.
    WhoHas {
        /// The address.
        ip: String,
    },
    /// Issue a CA and certificates for a development or test cluster.
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Back up, inspect, or restore the IPAM state.
    #[command(subcommand)]
    Snapshot(snapshot::SnapshotCommand),
    /// Free one address, only if the given owner holds it.
    Release {
        /// The address.
        #[arg(long)]
        ip: String,
        /// Its owner, `containerID/ifname`.
        #[arg(long)]
        owner: String,
        /// Network name of the pool.
        #[arg(long, default_value = "")]
        network: String,
    },
    /// Load generator: concurrent clients allocating and releasing, throughput and latency.
    Bench(bench::BenchArgs),
    /// Seed the cluster from whereabouts' IPPools (migration); a dry run unless --apply.
    #[cfg(feature = "kubernetes")]
    Import(import::ImportArgs),
}

/// Runs the CLI.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let out = cli.output;
    if let Command::Certs(cmd) = cli.command {
        return certs::run(out, cmd);
    }
    if let Command::Snapshot(
        cmd @ (snapshot::SnapshotCommand::Inspect { .. } | snapshot::SnapshotCommand::Restore { .. }),
    ) = cli.command
    {
        return snapshot::run_offline(out, cmd);
    }
    // Every other command talks to the cluster: TLS, or plain TCP only with --insecure.
    let transport = crate::tls::Transport::from_options(&cli.tls, Duration::from_secs(3600))?;
    let cluster = Cluster::new(cli.endpoints.clone(), Duration::from_secs_f64(cli.timeout.max(0.1)), transport);
    match cli.command {
        Command::Certs(_) => unreachable!("handled above"),
        Command::Status { local } => status(&cluster, out, local).await,
        Command::Members => {
            let (_, s) =
                cluster.call(pb::StatusRequest { local: false }, |mut c, r| async move { c.status(r).await }).await?;
            print(out, &s.members, || members_table(&s.members))
        }
        Command::AddLearner { id, addr } => {
            let (_, r) = cluster
                .call(pb::AddLearnerRequest { id, addr }, |mut c, r| async move { c.add_learner(r).await })
                .await?;
            print(out, &r.members, || members_table(&r.members))
        }
        Command::Promote { id } => {
            let (_, r) = cluster
                .call(pb::PromoteRequest { id, replaces: vec![] }, |mut c, r| async move { c.promote(r).await })
                .await?;
            print(out, &r.members, || members_table(&r.members))
        }
        Command::Remove { id } => {
            let (_, r) =
                cluster.call(pb::RemoveNodeRequest { id }, |mut c, r| async move { c.remove_node(r).await }).await?;
            print(out, &r.members, || members_table(&r.members))
        }
        Command::Allocations { network } => allocations(&cluster, out, network).await,
        Command::Snapshot(cmd) => snapshot::run(&cluster, out, cmd).await,
        Command::Bench(args) => bench::run(cli.endpoints, cluster.transport().clone(), out, args).await,
        #[cfg(feature = "kubernetes")]
        Command::Import(args) => import::run(&cluster, out, args).await,
        Command::ClusterVersion { set, compact } => cluster_version::run(&cluster, out, set, compact).await,
        Command::Settings { request_cache, history } => {
            let msg = pb::SettingsRequest { request_cache, history };
            let (_, r) = cluster.call(msg, |mut c, r| async move { c.settings(r).await }).await?;
            print(out, &r, || format!("request-cache: {}\nhistory: {}", r.request_cache, r.history))
        }
        Command::WhoHas { ip } => {
            let (_, r) = cluster.call(pb::WhoHasRequest { ip }, |mut c, r| async move { c.who_has(r).await }).await?;
            print(out, &r, || {
                let mut text = allocations_table(&r.holders);
                let rows: Vec<Vec<String>> = r
                    .history
                    .iter()
                    .map(|h| {
                        vec![
                            h.event.to_string(),
                            h.time_ms.to_string(),
                            h.action.clone(),
                            h.network_name.clone(),
                            format!("{}/{}", h.container_id, h.ifname),
                            h.pod.clone(),
                        ]
                    })
                    .collect();
                text.push_str("\n\nhistory:\n");
                text.push_str(&table(&["EVENT", "TIME_MS", "ACTION", "NETWORK", "OWNER", "POD"], &rows));
                text
            })
        }
        Command::Release { ip, owner, network } => {
            let (container_id, ifname) = owner
                .rsplit_once('/')
                .ok_or_else(|| anyhow::anyhow!("--owner {owner:?}: expected containerID/ifname"))?;
            let msg = pb::ReleaseIpRequest {
                request_id: format!("ctl-{:032x}", rand::random::<u128>()),
                network_name: network,
                ip,
                container_id: container_id.into(),
                ifname: ifname.into(),
            };
            let (_, r) = cluster.call(msg, |mut c, r| async move { c.release_ip(r).await }).await?;
            print(out, &r, || match r.released.is_empty() {
                true => "nothing released: the address was not held".to_string(),
                false => r
                    .released
                    .iter()
                    .map(|l| format!("released {} (pool {})", l.ip, l.pool))
                    .collect::<Vec<_>>()
                    .join("\n"),
            })
        }
    }
}

async fn status(cluster: &Cluster, out: Output, local: bool) -> anyhow::Result<()> {
    let (addr, s) = cluster.call(pb::StatusRequest { local }, |mut c, r| async move { c.status(r).await }).await?;
    let versions = match out {
        Output::Table => Some(cluster_version::fetch(cluster).await),
        Output::Json => None,
    };
    print(out, &s, || {
        let leader = s.leader_id.map_or("none".to_string(), |l| format!("{} ({})", display_id(l), s.leader_addr));
        let mut text = format!(
            "answered by:  node {} at {addr}{}\nleader:       {leader}\nterm:         {}\napplied:      {} (last log {}, snapshot {})\nallocations:  {}\n\n",
            display_id(s.node_id),
            if local { " (local view)" } else { "" },
            s.term,
            s.applied_index,
            s.last_log_index,
            s.snapshot_index,
            s.allocations
        );
        text.push_str(&members_table(&s.members));
        let rows: Vec<Vec<String>> = s
            .pools
            .iter()
            .map(|p| {
                let usable: f64 = p.usable.parse().unwrap_or(f64::INFINITY);
                let pct = if usable > 0.0 { format!("{:.1}%", p.used as f64 * 100.0 / usable) } else { "-".into() };
                vec![display_network(&p.network_name), p.cidr.clone(), p.used.to_string(), p.usable.clone(), pct]
            })
            .collect();
        text.push_str("\n\n");
        text.push_str(&table(&["NETWORK", "POOL", "USED", "USABLE", "USE"], &rows));
        match versions {
            Some(Ok(v)) => {
                text.push_str(
                    "

",
                );
                text.push_str(&cluster_version::render(&v));
            }
            Some(Err(e)) => text.push_str(&format!(
                "

cluster version: unknown ({e})"
            )),
            None => {}
        }
        text
    })
}

async fn allocations(cluster: &Cluster, out: Output, network: Option<String>) -> anyhow::Result<()> {
    let mut all = Vec::new();
    let mut after = String::new();
    loop {
        let msg =
            pb::ListAllocationsRequest { network_name: network.clone(), limit: 0, after: after.clone(), local: false };
        let (_, page) = cluster.call(msg, |mut c, r| async move { c.list_allocations(r).await }).await?;
        all.extend(page.allocations);
        if page.next.is_empty() {
            break;
        }
        after = page.next;
    }
    print(out, &all, || allocations_table(&all))
}

fn display_network(name: &str) -> String {
    if name.is_empty() {
        "(unnamed)".into()
    } else {
        name.into()
    }
}

/// `N` or `N#I` (ordinal, incarnation), as [`display_id`] writes it, to a Raft node id.
fn parse_node_id(s: &str) -> Result<u64, String> {
    let number = |v: &str, what: &str| v.trim().parse::<u32>().map_err(|e| format!("{what} {v:?}: {e}"));
    match s.split_once('#') {
        None => Ok(u64::from(number(s, "ordinal")?)),
        Some((o, i)) => Ok(node_id(u64::from(number(o, "ordinal")?), number(i, "incarnation")?)),
    }
}

fn members_table(members: &[pb::Member]) -> String {
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|m| vec![display_id(m.id), m.addr.clone(), if m.voter { "voter" } else { "learner" }.to_string()])
        .collect();
    table(&["ID", "ADDRESS", "ROLE"], &rows)
}

fn allocations_table(allocations: &[pb::Allocation]) -> String {
    let rows: Vec<Vec<String>> = allocations
        .iter()
        .map(|a| {
            let att = a.attachment.clone().unwrap_or_default();
            let pod =
                if att.pod_name.is_empty() { String::new() } else { format!("{}/{}", att.pod_namespace, att.pod_name) };
            vec![
                display_network(&a.network_name),
                a.pool.clone(),
                a.ip.clone(),
                format!("{}/{}", att.container_id, att.ifname),
                pod,
                att.node,
            ]
        })
        .collect();
    table(&["NETWORK", "POOL", "IP", "OWNER", "POD", "NODE"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_parse_as_status_shows_them() {
        for id in [0, 2, node_id(1, 1), node_id(4, 7)] {
            assert_eq!(parse_node_id(&display_id(id)), Ok(id));
        }
        assert!(parse_node_id("1#x").unwrap_err().contains("incarnation"));
        assert!(parse_node_id("-1").unwrap_err().contains("ordinal"));
    }
}
