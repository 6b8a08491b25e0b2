//! `whereabouts-ctl`: operate a whereabouts-rs cluster.

use clap::Parser;
use cluster::ctl::{self, Cli};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    ctl::run(Cli::parse()).await
}
