//! `jepsen-tests` binary: parse arguments, start logging, run, exit with the command's code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use jepsen_tests::cli::{run, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // openraft logs every lost message of a simulation as a warning or error: only ours there.
    let default = match cli.command {
        Command::Sim(_) => "warn,openraft=off",
        _ => "info,openraft=warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    ExitCode::from(run(&cli))
}
