//! whereabouts-compatible CNI configuration: the network configuration a runtime passes on stdin
//! (or the first plugin of a configuration list), its `ipam` section, and the flat file merged
//! under it. Keys are matched as whereabouts' Go decoder matches them (case-insensitively, the
//! later of two spellings winning: [`go_fields`]), then parsed once into an [`IpamConfig`]; values
//! whereabouts silently ignores are accepted with a [`Warning`] naming the field; values that
//! cannot work are a [`ConfigError`] naming the field and the value.

mod cluster_keys;
mod flat_file;
mod go_fields;
mod ipam_config;
mod json;
mod ordered;
mod schema;
mod static_keys;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub use cluster_keys::{ClusterKeys, TlsPaths};
pub use flat_file::{candidates as flat_file_candidates, FileSource, MapFiles, NoFiles, FLAT_FILE_PATHS};
pub use go_fields::key_matches;
pub use ipam_config::{resolve_requested_ip, IpamConfig, MAX_RANGES};
pub use static_keys::{Dns, Route, StaticAddress};

use ipam::{FieldError, FieldProblem, Warning};
use json::Obj;
use ordered::Ordered;
use schema::Shape;

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

/// A network configuration as read from stdin: exact field names, warnings met on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Netconf {
    /// The configuration (or configuration list) with every known key in its exact spelling.
    pub value: Value,
    /// Unknown keys dropped from the `ipam` section and its parts.
    pub warnings: Vec<Warning>,
}

/// Parses stdin: JSON, then key matching as whereabouts' decoder does it.
pub fn read_netconf(stdin: &[u8]) -> Result<Netconf, ConfigError> {
    if stdin.len() > MAX_CONFIG_BYTES {
        let n = stdin.len().to_string();
        return Err(FieldError::new("(stdin)", n, FieldProblem::TooLarge { limit: MAX_CONFIG_BYTES as u64 }).into());
    }
    let parsed = Ordered::parse(stdin).map_err(|e| ConfigError::Json(e.to_string()))?;
    if !matches!(parsed, Ordered::Object(_)) {
        // libcni's skel cannot decode it into a network configuration either (code 6).
        return Err(ConfigError::Json("a network configuration is a JSON object".into()));
    }
    let mut warnings = Vec::new();
    let value = go_fields::canonical(&parsed, &Shape::Struct(&schema::NETCONF), "", &mut warnings);
    Ok(Netconf { value, warnings })
}

/// Parses a CNI network configuration (or configuration list), merging the first flat file that
/// `files` has.
pub fn load(stdin: &[u8], files: &dyn FileSource) -> Result<Loaded, ConfigError> {
    load_netconf(&read_netconf(stdin)?, files)
}

/// The plugin's part of a configuration: the network configuration itself or, for a list, its
/// first plugin; the path prefix errors use; and the top level (for `cniVersion` and `name`).
fn plugin_conf(root: &Value) -> Result<(Obj<'_>, &'static str), FieldError> {
    let top = Obj::new(root, "")?;
    match (top.get("type"), top.get("plugins")) {
        (None, Some(plugins)) => {
            let first = match plugins {
                Value::Array(list) if !list.is_empty() => &list[0],
                other => return Err(json::wrong_type("plugins", other, "a non-empty list")),
            };
            Ok((Obj::new(first, "plugins[0]")?, "plugins[0]."))
        }
        _ => Ok((top, "")),
    }
}

/// Validates a configuration read by [`read_netconf`] (the flat file merged in).
pub fn load_netconf(netconf: &Netconf, files: &dyn FileSource) -> Result<Loaded, ConfigError> {
    let root = &netconf.value;
    let top = Obj::new(root, "")?;
    let cni_version = top.string("cniVersion")?.unwrap_or_default();
    let (plugin, prefix) = plugin_conf(root)?;
    let cni_network = plugin.string("name")?.or(top.string("name")?).unwrap_or_default();
    let Some(ipam_value) = plugin.get("ipam") else {
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
    let configuration_path = inline.string("configuration_path")?;
    let mut warnings = netconf.warnings.clone();
    let flat_file = merge_flat_file(&mut ipam_map, configuration_path.as_deref(), files, &mut warnings)?;
    let ipam = Obj { map: &ipam_map, path: format!("{prefix}ipam") };
    let config = ipam_config::parse(&ipam, cni_version, cni_network, &plugin, &mut warnings)?;
    Ok(Loaded { config, warnings, flat_file })
}

/// What DEL works with when [`load_netconf`] refuses the configuration: the network's names and the
/// cluster keys, each read on its own (a bad one falls back to its default). The problems met are
/// returned as warnings.
pub fn load_for_release(netconf: &Netconf, files: &dyn FileSource) -> Loaded {
    let mut warnings = netconf.warnings.clone();
    let mut note = |e: &dyn std::fmt::Display| {
        warnings.push(Warning { field: "(DEL)".into(), message: format!("{e}; releasing by owner anyway") })
    };
    let root = &netconf.value;
    let empty = Value::Object(Map::new());
    let top = Obj::new(root, "").unwrap_or(Obj { map: empty.as_object().expect("object"), path: String::new() });
    let text = |o: &Obj, key: &str| o.string(key).ok().flatten().unwrap_or_default();
    let cni_version = text(&top, "cniVersion");
    let (plugin, prefix) = plugin_conf(root).unwrap_or((Obj { map: top.map, path: String::new() }, ""));
    let cni_network = plugin.string("name").ok().flatten().unwrap_or_else(|| text(&top, "name"));
    let mut ipam_map = match plugin.get("ipam") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    let configuration_path = ipam_map.get("configuration_path").and_then(Value::as_str).map(str::to_string);
    let mut flat_warnings = Vec::new();
    let flat_file = match merge_flat_file(&mut ipam_map, configuration_path.as_deref(), files, &mut flat_warnings) {
        Ok(path) => path,
        Err(e) => {
            note(&e);
            None
        }
    };
    let ipam = Obj { map: &ipam_map, path: format!("{prefix}ipam") };
    let network_name = ipam.string("network_name").unwrap_or_else(|e| {
        note(&e);
        None
    });
    let (cluster, errors) = ClusterKeys::parse_leniently(&ipam);
    for e in &errors {
        note(e);
    }
    let mut config = IpamConfig::for_release(cni_version, cni_network, network_name.unwrap_or_default(), cluster);
    config.log_file = ipam.string("log_file").ok().flatten().filter(|s| !s.is_empty());
    config.log_level = ipam.string("log_level").ok().flatten().filter(|s| !s.is_empty());
    warnings.extend(flat_warnings);
    Loaded { config, warnings, flat_file }
}

/// Merges the first flat file found under `ipam` (inline wins); returns its path.
fn merge_flat_file(
    ipam: &mut Map<String, Value>,
    configuration_path: Option<&str>,
    files: &dyn FileSource,
    warnings: &mut Vec<Warning>,
) -> Result<Option<PathBuf>, ConfigError> {
    for path in flat_file::candidates(configuration_path) {
        let Some(flat) = read_flat_file(&path, files, warnings)? else {
            continue;
        };
        flat_file::merge_under(ipam, &flat);
        return Ok(Some(path));
    }
    Ok(None)
}

fn read_flat_file(
    path: &Path,
    files: &dyn FileSource,
    warnings: &mut Vec<Warning>,
) -> Result<Option<Map<String, Value>>, ConfigError> {
    let failed = |reason: String| ConfigError::FlatFile { path: path.to_path_buf(), reason };
    let bytes = match files.read(path) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(None),
        Err(e) => return Err(failed(e.to_string())),
    };
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(failed(format!("larger than {MAX_CONFIG_BYTES} bytes")));
    }
    let parsed = Ordered::parse(&bytes).map_err(|e| failed(format!("invalid JSON: {e}")))?;
    let label = path.display().to_string();
    match go_fields::canonical(&parsed, &Shape::Struct(&schema::IPAM), &label, warnings) {
        Value::Object(map) => Ok(Some(map)),
        _ => Err(failed("expected a JSON object of IPAM keys".into())),
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod whereabouts_tests;
