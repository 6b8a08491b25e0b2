//! `etcd-scheme-bench`: an etcd allocation scheme (whereabouts' whole-pool compare-and-swap, or one
//! key per address) against a real etcd cluster on loopback.

use bench_reference::bench::{self, Config, Scheme};
use bench_reference::etcd::loopback_endpoint;
use bench_reference::output::Output;
use clap::Parser;
use loadgen::{Limits, Mix};

/// Load generator running an etcd-based IPAM scheme against etcd.
///
/// --scheme whole-pool (whereabouts' IPPool read-modify-write): each op GETs the whole pool object,
/// picks the lowest free address (or removes the owner's entry), and writes the whole object back with
/// a txn comparing mod_revision; a lost race re-reads and retries (up to 100 attempts, no sleep).
///
/// --scheme key-per-address: one key per address (<prefix><pool>/<offset> = owner id); an allocation
/// claims a random offset with a create-if-absent txn, another one if taken, and after 8 misses reads
/// the pool's keys and picks among the free ones (up to 100 claims); a release deletes the owner's key
/// with a txn comparing the owner id.
///
/// Stops at --ops or --duration, whichever comes first, and always by duration + grace.
#[derive(Debug, Parser)]
#[command(name = "etcd-scheme-bench", version)]
struct Args {
    /// etcd client endpoints, comma-separated host:port (loopback only).
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379")]
    endpoints: Vec<String>,
    /// Concurrent clients (tokio tasks, one connection each).
    #[arg(long, default_value_t = 1)]
    clients: u32,
    /// Pools; clients are spread over them round-robin.
    #[arg(long, default_value_t = 1)]
    pools: u32,
    /// Addresses per pool, a power of two (4096 = a /20).
    #[arg(long, default_value_t = 4096)]
    pool_size: u64,
    /// Stop after this many operations in total.
    #[arg(long)]
    ops: Option<u64>,
    /// Stop starting operations after this many seconds [default: 10, or 60 with --ops].
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds after --duration at which operations still running are cut (counted as errors).
    #[arg(long, default_value_t = 5.0)]
    grace: f64,
    /// Budget of one operation, retries included, in seconds (whereabouts' RequestTimeout).
    #[arg(long, default_value_t = 10.0)]
    op_timeout: f64,
    /// allocate:release ratio per client: 1:1 steady state, 1:0 fills.
    #[arg(long, default_value = "1:1")]
    mix: Mix,
    /// Allocations written into each pool before the run (unmeasured), e.g. 2048 for a half-full /20.
    #[arg(long, default_value_t = 0)]
    prefill: u64,
    /// IPv6 pools.
    #[arg(long)]
    ipv6: bool,
    /// Key prefix of the pool objects or address keys (everything under it is deleted first).
    #[arg(long, default_value = "/registry/whereabouts.cni.cncf.io/ippools/bench/")]
    prefix: String,
    /// Allocation scheme.
    #[arg(long, value_enum, default_value_t = Scheme::WholePool)]
    scheme: Scheme,
    /// Seed of the clients' random offset choices (key-per-address), for reproducible runs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let endpoints = args.endpoints.iter().map(|e| loopback_endpoint(e)).collect::<anyhow::Result<Vec<_>>>()?;
    let cfg = Config {
        endpoints,
        clients: args.clients,
        pools: args.pools,
        pool_size: u128::from(args.pool_size),
        limits: Limits::from_flags(args.ops, args.duration, args.grace, args.op_timeout)?,
        mix: args.mix,
        ipv6: args.ipv6,
        prefill: args.prefill,
        prefix: args.prefix,
        scheme: args.scheme,
        seed: args.seed,
    };
    let report = bench::run(cfg).await?;
    args.output.print(&report, |r| r.to_text())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_is_parsed_on_the_command_line() {
        let mix = |m: &str| Args::try_parse_from(["etcd-scheme-bench", "--mix", m]).map(|a| a.mix);
        assert_eq!(mix("3:0").unwrap(), Mix::new(3, 0).unwrap());
        assert!(mix("0:1").is_err());
        assert!(mix("1").is_err());
        let default = Args::try_parse_from(["etcd-scheme-bench"]).unwrap();
        assert_eq!(default.mix, Mix::new(1, 1).unwrap());
    }

    #[test]
    fn scheme_defaults_to_whole_pool() {
        let scheme = |s: &[&str]| Args::try_parse_from([&["etcd-scheme-bench"], s].concat()).map(|a| a.scheme);
        assert_eq!(scheme(&[]).unwrap(), Scheme::WholePool);
        assert_eq!(scheme(&["--scheme", "whole-pool"]).unwrap(), Scheme::WholePool);
        assert_eq!(scheme(&["--scheme", "key-per-address"]).unwrap(), Scheme::KeyPerAddress);
        assert!(scheme(&["--scheme", "lease"]).is_err());
        let seed = Args::try_parse_from(["etcd-scheme-bench", "--seed", "42"]).unwrap().seed;
        assert_eq!(seed, 42);
        for s in [Scheme::WholePool, Scheme::KeyPerAddress] {
            use clap::ValueEnum;
            assert_eq!(s.to_possible_value().unwrap().get_name(), s.name(), "report name = CLI name");
        }
    }

    #[test]
    fn cli_definition_is_valid() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
