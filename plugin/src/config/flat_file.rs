//! whereabouts' flat configuration file (`whereabouts.d/whereabouts.conf`): IPAM keys shared by
//! every network on a node, merged *under* the inline configuration as whereabouts does it with
//! `mergo.Merge(&inline, flat)` (mergo v0.3.16, no options):
//! - a field the inline section leaves empty (absent, `null`, `""`, `0`, `false`, `[]`) takes the
//!   flat file's value; a non-empty inline value wins;
//! - lists are replaced whole, never appended or merged item by item;
//! - the structs `dns` and `kubernetes` are merged field by field, by the same rules;
//! - `enable_overlapping_ranges` always keeps its inline value (default true): whereabouts saves
//!   and restores it around the merge.
//!
//! Both sides are in exact field names already ([`super::go_fields::canonical`]).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::schema::IPAM_STRUCTS;
use ipam::ip::parse_ip_sloppy;

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

/// Files by path: a fixed set (tests, and callers that read the files beforehand).
pub struct MapFiles(pub std::collections::HashMap<PathBuf, Vec<u8>>);

impl FileSource for MapFiles {
    fn read(&self, path: &Path) -> std::io::Result<Option<Vec<u8>>> {
        Ok(self.0.get(path).cloned())
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

/// True for values mergo treats as empty (so the flat file may fill them).
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_empty),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Bool(b) => !b,
    }
}

/// The inline value of `key` as whereabouts holds it when merging: the top-level `range_start`
/// and `range_end` are decoded with a lenient parser that turns anything but an address into
/// nothing, so an unparsable inline bound is filled from the flat file.
fn inline_is_empty(key: &str, v: &Value) -> bool {
    match (key, v) {
        ("range_start" | "range_end", Value::String(s)) => parse_ip_sloppy(s).is_none(),
        _ => is_empty(v),
    }
}

/// Fills what `inline` leaves empty from `flat` (see the module doc).
pub fn merge_under(inline: &mut Map<String, Value>, flat: &Map<String, Value>) {
    for (key, value) in flat {
        if key == "enable_overlapping_ranges" || is_empty(value) {
            continue;
        }
        match inline.get_mut(key) {
            Some(Value::Object(mine)) if IPAM_STRUCTS.contains(&key.as_str()) => {
                if let Value::Object(theirs) = value {
                    merge_fields(mine, theirs);
                }
            }
            Some(existing) if !inline_is_empty(key, existing) => {}
            _ => {
                inline.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Field-by-field merge of one struct (`dns`, `kubernetes`).
fn merge_fields(inline: &mut Map<String, Value>, flat: &Map<String, Value>) {
    for (key, value) in flat {
        if is_empty(value) {
            continue;
        }
        match inline.get(key) {
            Some(existing) if !is_empty(existing) => {}
            _ => {
                inline.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merged(inline: Value, flat: Value) -> Value {
        let (Value::Object(mut i), Value::Object(f)) = (inline, flat) else { panic!("objects") };
        merge_under(&mut i, &f);
        Value::Object(i)
    }

    #[test]
    fn inline_wins_and_empty_values_are_filled() {
        let got = merged(
            json!({"range": "10.1.0.0/24", "log_level": "", "timeout_seconds": 0, "exclude": []}),
            json!({"range": "10.9.0.0/24", "log_level": "debug", "timeout_seconds": 5, "exclude": ["10.1.0.9"],
                   "endpoints": ["a:1"]}),
        );
        assert_eq!(
            got,
            json!({"range": "10.1.0.0/24", "log_level": "debug", "timeout_seconds": 5, "exclude": ["10.1.0.9"],
                   "endpoints": ["a:1"]})
        );
    }

    #[test]
    fn lists_are_replaced_whole_and_structs_merged_field_by_field() {
        let got = merged(
            json!({"ipRanges": [{"range": "10.0.0.0/24"}], "dns": {"nameservers": ["1.1.1.1"]},
                   "kubernetes": {"k8s_api_root": "https://api"}}),
            json!({"ipRanges": [{"range": "10.5.0.0/24"}, {"range": "fd00::/64"}],
                   "dns": {"nameservers": ["9.9.9.9"], "domain": "flat.example"},
                   "kubernetes": {"kubeconfig": "/k"}}),
        );
        assert_eq!(
            got,
            json!({"ipRanges": [{"range": "10.0.0.0/24"}], "dns": {"nameservers": ["1.1.1.1"], "domain": "flat.example"},
                   "kubernetes": {"k8s_api_root": "https://api", "kubeconfig": "/k"}})
        );
    }

    #[test]
    fn the_overlap_flag_is_never_taken_from_the_flat_file() {
        let got = merged(json!({}), json!({"enable_overlapping_ranges": false}));
        assert_eq!(got, json!({}));
    }

    #[test]
    fn an_unparsable_inline_bound_is_filled_as_whereabouts_does() {
        let got = merged(
            json!({"range_start": "junk", "gateway": "junk"}),
            json!({"range_start": "10.0.0.5", "gateway": "10.0.0.1"}),
        );
        assert_eq!(got, json!({"range_start": "10.0.0.5", "gateway": "junk"}), "gateway is kept as a string");
    }
}
