//! whereabouts' flat configuration file (`whereabouts.d/whereabouts.conf`): IPAM keys shared by
//! every network on a node, merged *under* the inline configuration (inline wins).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Where whereabouts looks for the flat file, after `configuration_path`, first found wins.
pub const FLAT_FILE_PATHS: [&str; 3] = [
    "/etc/kubernetes/cni/net.d/whereabouts.d/whereabouts.conf",
    "/etc/cni/net.d/whereabouts.d/whereabouts.conf",
    "/host/etc/cni/net.d/whereabouts.d/whereabouts.conf",
];

/// Reads files for the configuration loader; the plugin passes the real file system, tests a map.
pub trait FileSource {
    /// The contents of `path`, or `None` if it does not exist.
    fn read(&self, path: &Path) -> std::io::Result<Option<Vec<u8>>>;
}

/// No files at all (a configuration that must be complete inline).
pub struct NoFiles;

impl FileSource for NoFiles {
    fn read(&self, _: &Path) -> std::io::Result<Option<Vec<u8>>> {
        Ok(None)
    }
}

/// The candidate paths in lookup order.
pub fn candidates(configuration_path: Option<&str>) -> Vec<PathBuf> {
    configuration_path
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .into_iter()
        .chain(FLAT_FILE_PATHS.iter().map(PathBuf::from))
        .collect()
}

/// True for values Go's `mergo` treats as unset (so the flat file may fill them).
fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Bool(b) => !b,
    }
}

/// Fills keys of `inline` that are unset from `flat`. `enable_overlapping_ranges` always keeps
/// its inline value (default true), as in whereabouts.
pub fn merge_under(inline: &mut Map<String, Value>, flat: &Map<String, Value>) {
    for (key, value) in flat {
        if key == "enable_overlapping_ranges" {
            continue;
        }
        match inline.get(key) {
            Some(existing) if !is_unset(existing) => {}
            _ => {
                inline.insert(key.clone(), value.clone());
            }
        }
    }
}
