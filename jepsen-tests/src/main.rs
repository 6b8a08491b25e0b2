//! `jepsen-tests` binary: parse arguments, run, map the verdict to the exit code.

use std::process::ExitCode;

use clap::Parser;
use jepsen_tests::cli::{run, Cli, EXIT_BAD_INPUT};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(verdict) => ExitCode::from(verdict.exit_code()),
        Err(err) => {
            eprintln!("error: {:#}", anyhow::Error::new(err));
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}
