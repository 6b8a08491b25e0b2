//! `whereabouts`, the CNI IPAM plugin of whereabouts-rs: reads the CNI invocation (environment
//! and network configuration on stdin), asks the Raft-replicated IPAM cluster over gRPC, and
//! prints the CNI result or error on stdout.
//!
//! Layout (as host-local and libcni's `skel`): [`invocation`] and [`request`] validate the input
//! once; [`commands`] has one module per CNI command; [`client`] talks to the cluster within one
//! time budget; [`cni`] holds the result types per spec version; [`error::to_cni_error`] is the
//! only place errors become CNI codes. [`run`] is the entry point, with the outside world
//! injected through [`Env`] and [`ClientFactory`].

pub mod client;
pub mod cni;
pub mod cni_args;
pub mod commands;
pub mod config;
pub mod env;
pub mod error;
pub mod invocation;
pub mod last_leader;
pub mod logging;
pub mod node_name;
pub mod pending;
pub mod request;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::io::Write;
use std::time::Instant;

pub use client::{ClientFactory, TcpFactory};
pub use env::Env;

use cni::{CniVersion, VersionResult};
use error::{to_cni_error, PluginError};
use invocation::{Command, EnvError, Invocation};

/// One line about the plugin, printed on stderr when `CNI_COMMAND` is unset (as `skel` does).
pub const ABOUT: &str = concat!("CNI whereabouts plugin (whereabouts-rs) v", env!("CARGO_PKG_VERSION"));

/// Runs one CNI invocation and returns the process exit status (0 on success; 1 after printing
/// a CNI error on stdout).
pub fn run(mut env: Env, factory: &dyn ClientFactory) -> i32 {
    let started = Instant::now();
    let invocation = match Invocation::from_env(&env) {
        Ok(inv) => inv,
        Err(EnvError::NoCommand) => {
            let versions: Vec<&str> = CniVersion::ALL.iter().map(|v| v.as_str()).collect();
            let _ = writeln!(env.stderr, "{ABOUT}\nCNI protocol versions supported: {}", versions.join(", "));
            return 0;
        }
        Err(e) => return fail(&mut env, e.into(), None, CniVersion::LATEST),
    };
    let command = invocation.command;
    if command == Command::Version {
        return version(&mut env);
    }
    let req = match request::load(&mut env, invocation, started) {
        Ok(req) => req,
        Err((e, version)) => return fail(&mut env, e, Some(command), version),
    };
    let (dispatch, problems) =
        logging::dispatch(req.config.log_file.as_deref(), req.config.log_level.as_deref(), env.stderr.clone());
    tracing::dispatcher::with_default(&dispatch, || {
        let span = tracing::info_span!(
            "cni",
            command = command.as_str(),
            network = %req.config.cni_network,
            container_id = %req.invocation.container_id,
            ifname = %req.invocation.ifname,
            request_id = %req.request_id,
        );
        let _entered = span.enter();
        for p in &problems {
            tracing::warn!("{p}");
        }
        for w in &req.warnings {
            tracing::warn!(field = %w.field, "{}", w.message);
        }
        if let Some(problem) = &req.config_problem {
            tracing::warn!("the configuration would not pass ADD ({problem}); DEL releases by owner anyway");
        }
        tracing::debug!(node = %req.node.name, source = %req.node.source, "node name");
        let outcome = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PluginError::Internal(format!("cannot start the async runtime: {e}")))
            .and_then(|rt| rt.block_on(commands::execute(&req, factory)));
        let outcome = outcome.and_then(|out| match out {
            Some(json) => print(&mut env, &json),
            None => Ok(()),
        });
        match outcome {
            Ok(()) => {
                tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "done");
                0
            }
            Err(e) => fail(&mut env, e, Some(command), req.version),
        }
    })
}

/// VERSION: the supported versions, echoing the input's `cniVersion` when given.
fn version(env: &mut Env) -> i32 {
    let asked = if env.stdin_is_terminal {
        None
    } else {
        request::read_stdin(env)
            .ok()
            .and_then(|bytes| config::read_netconf(&bytes).ok())
            .and_then(|n| n.value.get("cniVersion").and_then(|v| v.as_str()).map(str::to_string))
    };
    let json = serde_json::to_string_pretty(&VersionResult::new(asked.as_deref())).expect("serializable");
    match print(env, &json) {
        Ok(()) => 0,
        Err(e) => fail(env, e, Some(Command::Version), CniVersion::LATEST),
    }
}

fn print(env: &mut Env, json: &str) -> Result<(), PluginError> {
    writeln!(env.stdout, "{json}").and_then(|()| env.stdout.flush()).map_err(|e| PluginError::Stdout(e.to_string()))
}

/// Prints the CNI error for `err` on stdout, logs it, and returns the exit status.
fn fail(env: &mut Env, err: PluginError, command: Option<Command>, version: CniVersion) -> i32 {
    let cni = to_cni_error(&err, command, version);
    if tracing::enabled!(tracing::Level::ERROR) {
        tracing::error!(code = cni.code, "{err}");
    } else {
        let _ = writeln!(env.stderr, "whereabouts: error {}: {err}", cni.code);
    }
    let json = serde_json::to_string_pretty(&cni).expect("serializable");
    let _ = writeln!(env.stdout, "{json}");
    let _ = env.stdout.flush();
    1
}
