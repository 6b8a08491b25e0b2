//! `whereabouts-ctl snapshot save|restore|inspect`: back up a running cluster to a file, check a
//! file, and rebuild a new cluster's data directories from it (offline, one per member).

use std::path::{Path, PathBuf};

use clap::Subcommand;
use proto::ipam as pb;
use raft_store::{decode_backup, restore};
use serde::Serialize;

use super::client::Cluster;
use super::output::{print, Output};
use crate::node::InitialCluster;

/// Backup commands.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Save a consistent backup of the cluster's IPAM state to FILE.
    Save {
        /// Where to write it (written to FILE.part, checked, then renamed).
        file: PathBuf,
    },
    /// Check a backup file and print what it holds.
    Inspect {
        /// The backup.
        file: PathBuf,
    },
    /// Create a new node's data directory from a backup (offline; run once per member of the new
    /// cluster with the same file and --initial-cluster, then start the nodes).
    Restore {
        /// The backup.
        file: PathBuf,
        /// The data directory to create (must not exist or be empty).
        #[arg(long)]
        data_dir: PathBuf,
        /// This member's node id.
        #[arg(long)]
        id: u64,
        /// The new cluster's members, `ID=HOST:PORT,...`.
        #[arg(long, value_parser = crate::node::parse_initial_cluster)]
        initial_cluster: InitialCluster,
        /// The new cluster's name (give the nodes the same --cluster-name).
        #[arg(long, default_value = "whereabouts", value_parser = crate::node::parse_cluster_name)]
        cluster_name: String,
    },
}

#[derive(Serialize)]
struct Summary {
    file: String,
    cluster: String,
    applied_index: u64,
    allocations: u64,
    bytes: usize,
}

fn summarize(file: &Path, bytes: &[u8]) -> anyhow::Result<Summary> {
    let (h, _) = decode_backup(bytes)?;
    Ok(Summary {
        file: file.display().to_string(),
        cluster: h.cluster,
        applied_index: h.applied_index,
        allocations: h.allocations,
        bytes: bytes.len(),
    })
}

/// Runs a snapshot command that talks to the cluster (`save`); the others go to [`run_offline`].
pub async fn run(cluster: &Cluster, out: Output, cmd: SnapshotCommand) -> anyhow::Result<()> {
    match cmd {
        SnapshotCommand::Save { file } => {
            let (_, bytes) = cluster
                .call(pb::SaveSnapshotRequest {}, |mut c, r| async move {
                    let mut stream = c.save_snapshot(r).await?.into_inner();
                    let mut bytes = Vec::new();
                    while let Some(chunk) = stream.message().await? {
                        bytes.extend_from_slice(&chunk.data);
                    }
                    Ok(tonic::Response::new(bytes))
                })
                .await?;
            let summary = summarize(&file, &bytes)?;
            let part = file.with_extension("part");
            std::fs::write(&part, &bytes)?;
            std::fs::File::open(&part)?.sync_all()?;
            std::fs::rename(&part, &file)?;
            print(out, &summary, || {
                format!(
                    "saved {} allocations (log index {}) to {} ({} bytes)",
                    summary.allocations, summary.applied_index, summary.file, summary.bytes
                )
            })
        }
        offline => run_offline(out, offline),
    }
}

/// Runs a snapshot command that needs no cluster (`inspect`, `restore`): no transport, no TLS.
pub fn run_offline(out: Output, cmd: SnapshotCommand) -> anyhow::Result<()> {
    match cmd {
        SnapshotCommand::Save { .. } => anyhow::bail!("`snapshot save` talks to the cluster"),
        SnapshotCommand::Inspect { file } => {
            let bytes = std::fs::read(&file)?;
            let summary = summarize(&file, &bytes)?;
            print(out, &summary, || {
                format!(
                    "{}: cluster {:?}, log index {}, {} allocations, {} bytes, checksum ok",
                    summary.file, summary.cluster, summary.applied_index, summary.allocations, summary.bytes
                )
            })
        }
        SnapshotCommand::Restore { file, data_dir, id, initial_cluster, cluster_name } => {
            let bytes = std::fs::read(&file)?;
            let restored = restore(&bytes, &data_dir, &cluster_name, id, &initial_cluster.0)?;
            print(
                out,
                &serde_json::json!({"data_dir": data_dir, "id": id, "allocations": restored.allocations, "index": restored.index}),
                || {
                    format!(
                    "restored {} allocations into {} for node {id} of cluster {cluster_name:?}; start it with --data-dir {} --cluster-name {cluster_name} (no bootstrap happens: the membership is in the snapshot)",
                    restored.allocations,
                    data_dir.display(),
                    data_dir.display()
                )
                },
            )
        }
    }
}
