//! whereabouts-compatible CNI configuration: the network configuration a runtime passes on stdin
//! (or the first plugin of a configuration list), its `ipam` section, and the flat file merged
//! under it. Parsed once into an [`IpamConfig`]; values whereabouts silently ignores are accepted
//! with a [`Warning`] naming the field; values that cannot work are a [`ConfigError`] naming the
//! field and the value.

mod flat_file;
mod ipam;
mod json;

use std::path::PathBuf;

use serde_json::Value;

pub use flat_file::{candidates as flat_file_candidates, FileSource, NoFiles, FLAT_FILE_PATHS};
pub use ipam::{resolve_requested_ip, Dns, IpamConfig, Route, StaticAddress, TlsPaths, MAX_RANGES};

use crate::domain::{FieldError, FieldProblem, Warning};
use json::Obj;

/// Largest configuration accepted on stdin or in the flat file.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// Not JSON at all.
    #[error("invalid JSON in the network configuration: {0}")]
    Json(String),
    /// A field breaks a rule.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// The flat file exists but cannot be read or parsed.
    #[error("flat file {path}: {reason}")]
    FlatFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// A loaded configuration with the warnings to log.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The validated configuration.
    pub config: IpamConfig,
    /// Values accepted but ignored or adjusted.
    pub warnings: Vec<Warning>,
    /// The flat file merged in, if any.
    pub flat_file: Option<PathBuf>,
}

/// Parses a CNI network configuration (or configuration list), merging the first flat file that
/// `files` has.
pub fn load(stdin: &[u8], files: &dyn FileSource) -> Result<Loaded, ConfigError> {
    if stdin.len() > MAX_CONFIG_BYTES {
        let n = stdin.len().to_string();
        return Err(FieldError::new("(stdin)", n, FieldProblem::TooLarge { limit: MAX_CONFIG_BYTES as u64 }).into());
    }
    let root: Value = serde_json::from_slice(stdin).map_err(|e| ConfigError::Json(e.to_string()))?;
    let top = Obj::new(&root, "")?;
    let cni_version = top.string("cniVersion")?.unwrap_or_default();
    let (netconf, prefix) = match (top.get("type"), top.get("plugins")) {
        (None, Some(plugins)) => {
            let first = match plugins {
                Value::Array(list) if !list.is_empty() => &list[0],
                other => return Err(json::wrong_type("plugins", other, "a non-empty list").into()),
            };
            (Obj::new(first, "plugins[0]")?, "plugins[0].")
        }
        _ => (top, ""),
    };
    let cni_network = netconf.string("name")?.or(Obj::new(&root, "")?.string("name")?).unwrap_or_default();
    let Some(ipam_value) = netconf.get("ipam") else {
        return Err(FieldError::new(format!("{prefix}ipam"), "", FieldProblem::Missing).into());
    };
    let mut ipam_map = match ipam_value {
        Value::Object(m) => m.clone(),
        other => return Err(json::wrong_type(&format!("{prefix}ipam"), other, "an object").into()),
    };
    let inline = Obj { map: &ipam_map, path: format!("{prefix}ipam") };
    let ipam_type = inline.string("type")?.unwrap_or_default();
    if ipam_type != "whereabouts" {
        let problem = FieldProblem::Invalid("this plugin only serves \"type\": \"whereabouts\"".into());
        return Err(FieldError::new(inline.field("type"), ipam_type, problem).into());
    }

    let mut flat_used = None;
    for path in flat_file::candidates(inline.string("configuration_path")?.as_deref()) {
        let bytes = match files.read(&path) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => continue,
            Err(e) => return Err(ConfigError::FlatFile { path, reason: e.to_string() }),
        };
        if bytes.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::FlatFile { path, reason: format!("larger than {MAX_CONFIG_BYTES} bytes") });
        }
        let flat: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ConfigError::FlatFile { path: path.clone(), reason: format!("invalid JSON: {e}") })?;
        let Value::Object(flat) = flat else {
            return Err(ConfigError::FlatFile { path, reason: "expected a JSON object of IPAM keys".into() });
        };
        flat_file::merge_under(&mut ipam_map, &flat);
        flat_used = Some(path);
        break;
    }

    let mut warnings = Vec::new();
    let ipam = Obj { map: &ipam_map, path: format!("{prefix}ipam") };
    let config = ipam::parse(&ipam, cni_version, cni_network, &netconf, &mut warnings)?;
    Ok(Loaded { config, warnings, flat_file: flat_used })
}

#[cfg(test)]
mod tests;
