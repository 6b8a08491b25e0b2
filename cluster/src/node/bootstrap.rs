//! Static bootstrap, like etcd's `--initial-cluster-state new`: on its very first start (empty data
//! directory) the member with the lowest id of `--initial-cluster` initializes the membership; the
//! others wait to hear from it. Safe when all start at once (one initializer), safe on restart
//! (openraft refuses to initialize a node that has state, and a node with state is not pristine),
//! and never two clusters: only one node ever initializes.

use std::collections::BTreeMap;

use anyhow::Context as _;
use openraft::error::{InitializeError, RaftError};
use openraft::BasicNode;
use raft_store::types::typ;

use super::options::{ClusterState, NodeOptions};

/// Initializes the cluster if this node is the designated bootstrapper of a new cluster.
pub async fn maybe_initialize(raft: &typ::Raft, opts: &NodeOptions, pristine: bool) -> anyhow::Result<()> {
    let members = &opts.initial_cluster.0;
    if opts.initial_cluster_state != ClusterState::New || !pristine {
        return Ok(());
    }
    if members.is_empty() {
        anyhow::bail!("--initial-cluster is empty: a new cluster needs its founding members (or use --initial-cluster-state existing)");
    }
    if !members.contains_key(&opts.id) {
        anyhow::bail!("node id {} is not in --initial-cluster ({:?})", opts.id, members.keys().collect::<Vec<_>>());
    }
    if members.keys().next() != Some(&opts.id) {
        tracing::info!(
            bootstrapper = members.keys().next(),
            "waiting for the lowest-id member to bootstrap the cluster"
        );
        return Ok(());
    }
    let nodes: BTreeMap<u64, BasicNode> =
        members.iter().map(|(id, addr)| (*id, BasicNode::new(addr.clone()))).collect();
    match raft.initialize(nodes).await {
        Ok(()) => {
            tracing::info!(members = ?members, "bootstrapped a new cluster");
            Ok(())
        }
        Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
            tracing::info!(reason = %e, "cluster already initialized");
            Ok(())
        }
        Err(e) => Err(e).context("cannot bootstrap the cluster"),
    }
}
