//! `whereabouts-node`: one member of the whereabouts-rs Raft cluster.

use clap::Parser;
use cluster::node::{self, NodeOptions};
use cluster::telemetry;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = NodeOptions::parse();
    telemetry::init(&opts.log_level, opts.log_format);
    node::run(opts).await
}
