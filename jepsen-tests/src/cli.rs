//! Command-line interface of the `jepsen-tests` binary.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::checker::{check_file, CheckOptions, Verdict};
use crate::history::HistoryError;

/// Exit code for an unreadable or malformed history.
pub const EXIT_BAD_INPUT: u8 = 4;

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

/// Runs the command, printing the report to stdout; returns the verdict.
pub fn run(cli: &Cli) -> Result<Verdict, HistoryError> {
    match &cli.command {
        Command::Check(args) => {
            let opts = CheckOptions {
                max_states: args.max_states,
                time_limit: args.time_limit_secs,
                max_examples: args.max_examples,
                max_recovery: args.max_recovery_secs,
            };
            let report = check_file(&args.history, &opts)?;
            match args.output {
                Output::Text => print!("{report}"),
                Output::Json => {
                    let text =
                        serde_json::to_string_pretty(&report).map_err(|e| HistoryError::malformed(0, e.to_string()))?;
                    println!("{text}");
                }
            }
            Ok(report.verdict)
        }
    }
}
