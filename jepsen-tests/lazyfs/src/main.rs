//! `lazyfs`: mount the power-loss fault filesystem, or control a running mount.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use lazyfs::control::{Client, Request, Response};
use lazyfs::mount::{MountConfig, Mounted, OnExit};
use lazyfs::Options;

/// A FUSE passthrough that keeps writes in memory until fsync and drops the rest on a power cut.
#[derive(Debug, Parser)]
#[command(name = "lazyfs", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Mount in the foreground until unmounted or SIGTERM/SIGINT.
    Mount(MountArgs),
    /// Send a request to a running mount's control socket and print its JSON answer.
    Ctl {
        /// The mount's control socket.
        #[arg(long)]
        control: PathBuf,
        #[command(subcommand)]
        request: CtlRequest,
    },
}

#[derive(Debug, clap::Args)]
struct MountArgs {
    /// The backing directory (must be one filesystem; lazyfs keeps `.lazyfs-graveyard` in it).
    #[arg(long)]
    backing: PathBuf,
    /// The mountpoint (an existing directory).
    #[arg(long)]
    mount: PathBuf,
    /// Where to create the control socket.
    #[arg(long)]
    control: PathBuf,
    /// Treat fsync of a file as also making durable the create/link/rename that named it and
    /// the creation of its ancestor directories (roughly as ext4 does in practice). Default:
    /// strict POSIX, only fsync of the directory does.
    #[arg(long)]
    durable_create_on_fsync: bool,
    /// Sleep this long before every fsync/fdatasync/fsyncdir (a slow disk); `ctl delay` changes it.
    #[arg(long, default_value_t = 0)]
    fsync_delay_ms: u64,
    /// FUSE worker threads.
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// What to do with un-fsynced changes when the mount ends.
    #[arg(long, value_enum, default_value_t = ExitPolicy::Cut)]
    on_exit: ExitPolicy,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExitPolicy {
    /// Drop them, as a power cut does.
    Cut,
    /// Make them durable, as a clean shutdown does.
    Sync,
}

#[derive(Debug, Subcommand)]
enum CtlRequest {
    /// Power cut: drop un-fsynced data, undo un-fsynced namespace changes. Kill the users first.
    Cut {
        /// How long to wait for open handles to close before refusing.
        #[arg(long, default_value_t = 10_000)]
        wait_ms: u64,
    },
    /// Make every pending change durable.
    Sync,
    /// Print dirty bytes, pending namespace changes and fsync counts.
    Status,
    /// Set the fsync delay (0 turns it off).
    Delay {
        /// Milliseconds.
        ms: u64,
    },
}

/// Blocks the termination signals in this thread and every thread it starts, so that one thread
/// can take them with `sigwait`.
fn block_signals() -> libc::sigset_t {
    // SAFETY: a zeroed sigset is valid input to sigemptyset, which initialises it; the calls
    // only read and write `set`.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_signal(set: &libc::sigset_t) -> i32 {
    let mut sig = 0;
    // SAFETY: `set` is an initialised sigset and `sig` is writable.
    unsafe { libc::sigwait(set, &mut sig) };
    sig
}

fn run_mount(args: MountArgs) -> anyhow::Result<()> {
    let signals = block_signals();
    let on_exit = match args.on_exit {
        ExitPolicy::Cut => OnExit::Cut,
        ExitPolicy::Sync => OnExit::Sync,
    };
    let config = MountConfig {
        backing: args.backing,
        mountpoint: args.mount,
        control: args.control,
        options: Options {
            durable_create_on_fsync: args.durable_create_on_fsync,
            fsync_delay: Duration::from_millis(args.fsync_delay_ms),
        },
        threads: args.threads,
        on_exit,
    };
    let mounted = lazyfs::mount::mount(&config)?;
    let unmounter = mounted.unmounter();
    let fs = mounted.fs().clone();
    let control = mounted.control().to_path_buf();
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        let sig = wait_signal(&signals);
        tracing::info!(signal = sig, "signal: unmounting");
        unmounter.unmount();
        // A detached mount ends only when its last user lets go; do not wait for that forever.
        std::thread::sleep(Duration::from_secs(5));
        tracing::warn!("mount still busy 5s after the signal; exiting anyway");
        let code = match Mounted::finish(&fs, on_exit, &control) {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!(error = %e, "closing failed");
                1
            }
        };
        std::process::exit(code);
    })?;
    mounted.wait()?;
    tracing::info!("unmounted");
    Ok(())
}

fn run_ctl(control: PathBuf, request: CtlRequest) -> anyhow::Result<()> {
    let request = match request {
        CtlRequest::Cut { wait_ms } => Request::Cut(Duration::from_millis(wait_ms)),
        CtlRequest::Sync => Request::Sync,
        CtlRequest::Status => Request::Status,
        CtlRequest::Delay { ms } => Request::Delay(Duration::from_millis(ms)),
    };
    let response = Client::new(&control).request(&request)?;
    println!("{}", serde_json::to_string_pretty(&response)?);
    match response {
        Response::Error { message } => anyhow::bail!("{message}"),
        Response::Cut(report) if !report.errors.is_empty() => {
            anyhow::bail!("cut finished with {} undo error(s)", report.errors.len())
        }
        _ => Ok(()),
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().command {
        Command::Mount(args) => run_mount(args).context("lazyfs mount"),
        Command::Ctl { control, request } => run_ctl(control, request).context("lazyfs ctl"),
    }
}
