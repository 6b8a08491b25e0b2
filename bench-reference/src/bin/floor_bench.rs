//! `floor-bench`: the floors whereabouts-rs' figures are compared with in the same run.
//!
//! `floor-bench echo --clients 64 --duration 3 --output json` starts a bare tonic echo server in
//! a child process (itself, `floor-bench serve-echo`), drives it with loadgen's closed loop and
//! prints a report of the shared schema; `floor-bench fdatasync --dir DIR` times append +
//! `fdatasync` on the disk that holds DIR.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::Context;
use bench_reference::floor::{echo, fdatasync};
use bench_reference::output::Output;
use clap::{Parser, Subcommand};
use loadgen::{Limits, Mix};

/// Floors of the benchmarks: a bare tonic unary echo, and fdatasync latency.
#[derive(Debug, Parser)]
#[command(name = "floor-bench", version)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// A bare tonic unary echo at the given concurrency (server in a child process, loopback).
    Echo(EchoArgs),
    /// Append + fdatasync latency on the disk of --dir.
    Fdatasync(FsyncArgs),
    /// Serve the echo on 127.0.0.1 (an ephemeral port, printed as `LISTENING <addr>`); used by
    /// `echo`, which runs it as its child.
    #[command(hide = true)]
    ServeEcho,
}

#[derive(Debug, clap::Args)]
struct EchoArgs {
    /// Concurrent clients (tokio tasks, one HTTP/2 connection each).
    #[arg(long, default_value_t = 1)]
    clients: u32,
    /// Stop after this many calls in total.
    #[arg(long)]
    ops: Option<u64>,
    /// Stop starting calls after this many seconds [default: 10, or 60 with --ops].
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds after --duration at which calls still running are cut (counted as errors).
    #[arg(long, default_value_t = 5.0)]
    grace: f64,
    /// Budget of one call, in seconds.
    #[arg(long, default_value_t = 10.0)]
    op_timeout: f64,
    /// Bytes per call, each way (an AllocateRequest is about 150–250).
    #[arg(long, default_value_t = 200)]
    payload_bytes: usize,
    /// Label: the pools of the runs this floor is compared with (the report's cell in bench-report).
    #[arg(long, default_value_t = 1)]
    pools: u32,
    /// Label: their prefill (see --pools).
    #[arg(long, default_value_t = 0)]
    prefill: u64,
    /// Label: their allocate:release mix (see --pools).
    #[arg(long, default_value = "1:1")]
    mix: Mix,
    /// Label: their pool size (see --pools).
    #[arg(long, default_value_t = 0)]
    pool_size: u64,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Debug, clap::Args)]
struct FsyncArgs {
    /// A directory on the disk to measure (a temporary file is created and removed there).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Appends (each followed by one fdatasync).
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Bytes per append.
    #[arg(long, default_value_t = 4096)]
    block_bytes: usize,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// The echo server child, killed when dropped.
struct ServerChild(Child);

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `floor-bench serve-echo` and reads the address it listens on.
fn start_server() -> anyhow::Result<(ServerChild, std::net::SocketAddr)> {
    let exe = std::env::current_exe().context("locating floor-bench")?;
    let mut child = Command::new(exe)
        .arg("serve-echo")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the echo server")?;
    let stdout = child.stdout.take().context("the echo server's stdout")?;
    let child = ServerChild(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).context("reading the echo server's address")?;
    let addr = line.trim().strip_prefix("LISTENING ").with_context(|| format!("unexpected line {line:?}"))?;
    Ok((child, addr.parse().with_context(|| format!("address {addr:?}"))?))
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    match Args::parse().command {
        Cmd::ServeEcho => tokio::runtime::Runtime::new()?.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            println!("LISTENING {}", listener.local_addr()?);
            echo::serve(listener).await
        }),
        Cmd::Echo(a) => {
            let (_server, addr) = start_server()?;
            let cfg = echo::Config {
                addr,
                clients: a.clients,
                limits: Limits::from_flags(a.ops, a.duration, a.grace, a.op_timeout)?,
                payload_bytes: a.payload_bytes,
                pools: a.pools,
                prefill: a.prefill,
                mix: a.mix,
                pool_size: a.pool_size,
            };
            let report = tokio::runtime::Runtime::new()?.block_on(echo::run(cfg))?;
            Ok(a.output.print(&report, |r| r.to_text())?)
        }
        Cmd::Fdatasync(a) => {
            let report = fdatasync::run(&a.dir, a.count, a.block_bytes)
                .with_context(|| format!("measuring fdatasync in {}", a.dir.display()))?;
            Ok(a.output.print(&report, fdatasync::Report::to_text)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_valid() {
        use clap::CommandFactory;
        Args::command().debug_assert();
        assert!(Args::try_parse_from(["floor-bench", "echo", "--clients", "64", "--pool-size", "4096"]).is_ok());
        assert!(Args::try_parse_from(["floor-bench", "fdatasync", "--count", "0"]).is_ok(), "checked when run");
    }
}
