//! One invocation, parsed and validated in the order libcni's `skel` checks things: environment
//! (code 4), stdin (5), JSON (6), version (1, including commands the version does not allow),
//! then the configuration (7). Everything after this trusts the [`Request`].
//!
//! DEL is the exception to "a bad configuration is code 7": it needs only the network's names and
//! the cluster's location to release by owner, so a configuration ADD would refuse (a range with
//! no usable address, a bad exclude) still gets its DEL served, with the problem logged.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::config::{self, ConfigError, IpamConfig, MAX_CONFIG_BYTES};
use ipam::{FieldError, FieldProblem, Warning};
use serde_json::Value;

use crate::client::{new_request_id, Budget, DEFAULT_BUDGET};
use crate::cni::{negotiate, CniVersion};
use crate::cni_args::CniArgs;
use crate::env::Env;
use crate::error::PluginError;
use crate::invocation::{Command, Invocation};
use crate::node_name::NodeName;

/// A validated invocation (anything but VERSION).
#[derive(Debug)]
pub struct Request {
    /// Command and `CNI_*` parameters.
    pub invocation: Invocation,
    /// The version results and errors are printed in.
    pub version: CniVersion,
    /// The validated IPAM configuration (flat file merged); for a DEL whose configuration was
    /// refused, only its names and cluster keys (see [`Request::config_problem`]).
    pub config: IpamConfig,
    /// Why the configuration was refused, for a DEL served anyway.
    pub config_problem: Option<String>,
    /// Configuration warnings to log.
    pub warnings: Vec<Warning>,
    /// The network configuration as given, for keys the loader does not read
    /// (`cni.dev/valid-attachments`).
    pub raw: Value,
    /// Parsed `CNI_ARGS`.
    pub args: CniArgs,
    /// The node this plugin acts for, and where the name came from.
    pub node: NodeName,
    /// Where DELs that could not reach the cluster wait (`ipam.state_dir`, else the default).
    pub state_dir: PathBuf,
    /// Id of every write of this invocation, reused on retries.
    pub request_id: String,
    /// The total time budget, started when the invocation started.
    pub budget: Budget,
}

/// Reads stdin, checks the version and loads the configuration. On error, also returns the
/// version to print the error in (the newest until the configuration's is known).
pub fn load(env: &mut Env, invocation: Invocation, started: Instant) -> Result<Request, (PluginError, CniVersion)> {
    let latest = |e: PluginError| (e, CniVersion::LATEST);
    let args = CniArgs::parse(&invocation.args).map_err(|e| latest(e.into()))?;
    let stdin = read_stdin(env).map_err(latest)?;
    let netconf = config::read_netconf(&stdin).map_err(|e| latest(e.into()))?;
    let version = version_of(&netconf.value).map_err(latest)?;
    let with_version = |e: PluginError| (e, version);
    if let Some(minimum) = CniVersion::minimum_for(invocation.command.as_str()) {
        if version < minimum {
            return Err(with_version(PluginError::CommandNotAllowed { command: invocation.command, version }));
        }
    }
    let (loaded, config_problem) = match config::load_netconf(&netconf, env.files.as_ref()) {
        Ok(loaded) => (loaded, None),
        Err(e @ (ConfigError::Field(_) | ConfigError::FlatFile { .. })) if invocation.command == Command::Del => {
            (config::load_for_release(&netconf, env.files.as_ref()), Some(e.to_string()))
        }
        Err(e) => return Err(with_version(e.into())),
    };
    validate_network_name(&loaded.config.cni_network).map_err(|e| with_version(e.into()))?;
    let total = loaded.config.cluster.timeout_seconds.map(Duration::from_secs_f64).unwrap_or(DEFAULT_BUDGET);
    let total = match invocation.command {
        // STATUS is polled by runtimes: answer quickly.
        Command::Status => total.min(STATUS_BUDGET_CAP),
        _ => total,
    };
    let node = NodeName::resolve(&loaded.config.cluster, env);
    let state_dir =
        loaded.config.cluster.state_dir.as_ref().map(PathBuf::from).unwrap_or_else(|| env.state_dir.clone());
    Ok(Request {
        version,
        config: loaded.config,
        config_problem,
        warnings: loaded.warnings,
        raw: netconf.value,
        args,
        node,
        state_dir,
        request_id: new_request_id(),
        budget: Budget::since(started, total),
        invocation,
    })
}

/// Longest a STATUS may take.
pub const STATUS_BUDGET_CAP: Duration = Duration::from_secs(5);

/// Reads at most [`MAX_CONFIG_BYTES`] (+1 to detect larger input) from stdin; larger input is a
/// configuration error (code 7) before any parsing, wherever the cut falls.
pub fn read_stdin(env: &mut Env) -> Result<Vec<u8>, PluginError> {
    let mut buf = Vec::new();
    (&mut env.stdin)
        .take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| PluginError::Stdin(e.to_string()))?;
    if buf.len() > MAX_CONFIG_BYTES {
        let problem = FieldProblem::TooLarge { limit: MAX_CONFIG_BYTES as u64 };
        return Err(FieldError::new("(stdin)", format!("more than {MAX_CONFIG_BYTES} bytes"), problem).into());
    }
    Ok(buf)
}

/// The version of a network configuration: `cniVersion` and `cniVersions` of the top level.
fn version_of(raw: &Value) -> Result<CniVersion, PluginError> {
    let field = |key: &str| raw.get(key).filter(|v| !v.is_null());
    let cni_version = match field("cniVersion") {
        None => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(other) => {
            let problem = FieldProblem::WrongType("expected a string".into());
            return Err(FieldError::new("cniVersion", other.to_string(), problem).into());
        }
    };
    let versions = match field("cniVersions") {
        None => Vec::new(),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Some(other) => {
            let problem = FieldProblem::WrongType("expected a list of strings".into());
            return Err(FieldError::new("cniVersions", other.to_string(), problem).into());
        }
    };
    Ok(negotiate(cni_version, &versions)?)
}

/// The CNI network `name`: required, and made of the characters libcni allows.
fn validate_network_name(name: &str) -> Result<(), FieldError> {
    if name.is_empty() {
        return Err(FieldError::new("name", "", FieldProblem::Missing));
    }
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok {
        let problem =
            FieldProblem::Invalid("must start with a letter or digit, then letters, digits, '_', '.' or '-'".into());
        return Err(FieldError::new("name", name, problem));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn version_comes_from_cni_version_and_list() {
        assert_eq!(version_of(&json!({"cniVersion": "0.4.0"})).unwrap(), CniVersion::V0_4_0);
        assert_eq!(version_of(&json!({"cniVersion": "0.3.1", "cniVersions": ["1.0.0"]})).unwrap(), CniVersion::V1_0_0);
        assert_eq!(version_of(&json!({})).unwrap(), CniVersion::V0_1_0, "no cniVersion means 0.1.0");
        assert!(matches!(version_of(&json!({"cniVersion": "9.9.9"})), Err(PluginError::Incompatible(_))));
        assert!(matches!(version_of(&json!({"cniVersion": 1})), Err(PluginError::Field(f)) if f.field == "cniVersion"));
        assert!(
            matches!(version_of(&json!({"cniVersions": "1.0.0"})), Err(PluginError::Field(f)) if f.field == "cniVersions")
        );
    }

    #[test]
    fn network_names_follow_libcni() {
        assert!(validate_network_name("net-1.a_b").is_ok());
        assert_eq!(validate_network_name("").unwrap_err().field, "name");
        assert!(validate_network_name("bad name").is_err());
        assert!(validate_network_name("-x").is_err());
    }
}
