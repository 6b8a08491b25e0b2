//! `whereabouts-ctl cluster-version`: each member's release, the log formats it reads and holds,
//! and the replicated cluster version; `--set` changes it, `--compact` snapshots every member's
//! log (the downgrade runbook in docs/upgrades.md).

use proto::ipam as pb;
use raft_store::types::display_id;

use super::client::Cluster;
use super::output::{print, table, Output};

/// Asks any node; with `set` the leader changes the version (refused while a member cannot read
/// it), with `compact` every member snapshots and purges its log.
pub async fn run(cluster: &Cluster, out: Output, set: Option<u32>, compact: bool) -> anyhow::Result<()> {
    let msg = pb::ClusterVersionRequest { set, compact };
    let (_, r) = cluster.call(msg, |mut c, r| async move { c.cluster_version(r).await }).await?;
    print(out, &r, || render(&r))
}

/// The cluster version of a cluster the caller reached, for `status` (`None` when the node
/// answering runs release 0.1.0, which has no cluster version, or the call failed).
pub async fn fetch(cluster: &Cluster) -> Result<pb::ClusterVersionResponse, String> {
    let msg = pb::ClusterVersionRequest { set: None, compact: false };
    match cluster.call(msg, |mut c, r| async move { c.cluster_version(r).await }).await {
        Ok((_, r)) => Ok(r),
        Err(e) => Err(format!("{e:#}")),
    }
}

/// The human form: the version line, then one row per member.
pub fn render(r: &pb::ClusterVersionResponse) -> String {
    let fmt = |f: Option<u32>| f.map_or("-".to_string(), |f| f.to_string());
    let rows: Vec<Vec<String>> = r
        .members
        .iter()
        .map(|m| {
            let role = if m.voter { "voter" } else { "learner" };
            if !m.reachable {
                let why = if m.error.is_empty() { "no answer".to_string() } else { m.error.clone() };
                return vec![display_id(m.id), m.addr.clone(), role.into(), "?".into(), "?".into(), "?".into(), why];
            }
            vec![
                display_id(m.id),
                m.addr.clone(),
                role.into(),
                m.binary_version.clone(),
                format!("{}-{}", m.format_min, m.format_max),
                format!("log {} / snapshot {}", fmt(m.newest_log_format), fmt(m.snapshot_format)),
                m.error.clone(),
            ]
        })
        .collect();
    let mut text = format!(
        "cluster version: {} (every member reads up to {}; nothing stored is newer than {}: {})\n",
        r.cluster_version,
        r.highest_possible,
        r.cluster_version,
        if r.downgrade_ready { "yes — members may run any release that reads it" } else { "no" }
    );
    if r.highest_possible > r.cluster_version {
        text.push_str(&format!(
            "  every member runs a release that reads format {}: finish the upgrade with `whereabouts-ctl \
             cluster-version --set {}`\n",
            r.highest_possible, r.highest_possible
        ));
    }
    text.push('\n');
    text.push_str(&table(&["ID", "ADDRESS", "ROLE", "RELEASE", "READS", "HOLDS", "NOTE"], &rows));
    text
}
