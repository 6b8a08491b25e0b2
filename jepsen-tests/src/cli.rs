//! Command-line interface of the `jepsen-tests` binary.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::checker::{check_file, CheckOptions, Verdict};
use crate::harness::RunArgs;
use crate::history::HistoryError;
use crate::sim::SimArgs;

/// Exit code for an unreadable or malformed history.
pub const EXIT_BAD_INPUT: u8 = 4;
/// Exit code when the harness itself failed (setup, a node that never started, …).
pub const EXIT_HARNESS: u8 = 5;

/// `jepsen-tests`: chaos-suite tools for whereabouts-rs.
#[derive(Debug, Parser)]
#[command(name = "jepsen-tests", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a history: exit 0 valid, 1 anomalies, 3 unknown (search bound hit), 4 bad input.
    Check(CheckArgs),
    /// Run real nodes in network namespaces under faults, record and check the history (root).
    /// Exit 0 valid, 1 anomalies, 3 unknown, 5 harness failure.
    Run(Box<RunArgs>),
    /// Deterministic simulation: openraft + the IPAM state machine in memory, seeded faults,
    /// invariants checked at every step. Exit 0 when every seed passes, 1 otherwise.
    Sim(SimArgs),
}

/// Output formats of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Summary table.
    Text,
    /// The full report as JSON.
    Json,
}

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Path to the history (`results/<run>/history.jsonl`).
    pub history: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
    /// Per-network bound on linearizability search states.
    #[arg(long, default_value_t = 500_000)]
    pub max_states: usize,
    /// Wall-clock bound on the linearizability search, in seconds.
    #[arg(long, value_parser = seconds)]
    pub time_limit_secs: Option<Duration>,
    /// Examples printed per anomaly kind.
    #[arg(long, default_value_t = 3)]
    pub max_examples: usize,
    /// Report slow-recovery when the first ok after the last heal takes longer (seconds).
    #[arg(long, value_parser = seconds)]
    pub max_recovery_secs: Option<Duration>,
}

/// Parses a non-negative, finite number of seconds.
fn seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{text:?}: {e}"))
}

/// Runs `check`, printing the report to stdout; returns the verdict.
pub fn run_check(args: &CheckArgs) -> Result<Verdict, HistoryError> {
    let opts = CheckOptions {
        max_states: args.max_states,
        time_limit: args.time_limit_secs,
        max_examples: args.max_examples,
        max_recovery: args.max_recovery_secs,
    };
    let report = check_file(&args.history, &opts)?;
    // A closed stdout (`| head`) is not an error of the check.
    let mut out = std::io::stdout().lock();
    match args.output {
        Output::Text => {
            let _ = write!(out, "{report}");
        }
        Output::Json => {
            let text = serde_json::to_string_pretty(&report).map_err(|e| HistoryError::malformed(0, e.to_string()))?;
            let _ = writeln!(out, "{text}");
        }
    }
    Ok(report.verdict)
}

/// Runs the command; returns the process exit code.
pub fn run(cli: &Cli) -> u8 {
    match &cli.command {
        Command::Check(args) => match run_check(args) {
            Ok(verdict) => verdict.exit_code(),
            Err(err) => {
                eprintln!("error: {:#}", anyhow::Error::new(err));
                EXIT_BAD_INPUT
            }
        },
        Command::Run(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
            let outcome = rt.map_err(anyhow::Error::from).and_then(|rt| rt.block_on(crate::harness::run(args)));
            match outcome {
                Ok(o) => {
                    print!("{}", o.report);
                    println!("results: {}", o.dir.display());
                    match (o.passed, args.expect_anomalies) {
                        (true, _) => 0,
                        (false, true) => {
                            println!("expected the checker to find anomalies (planted bug), it found none");
                            1
                        }
                        (false, false) => o.report.verdict.exit_code(),
                    }
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    EXIT_HARNESS
                }
            }
        }
        Command::Sim(args) => crate::sim::run_cli(args),
    }
}
