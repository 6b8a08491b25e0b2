//! Key matching as Go's `encoding/json` does it when whereabouts decodes its configuration: a key
//! names the field whose JSON name equals it; failing that, the first field (in declaration order)
//! whose name equals it case-insensitively (Unicode simple folding: ASCII letters, plus `K` KELVIN
//! SIGN for `k` and `ſ` LONG S for `s`). Keys are taken in document order, so a later key for the
//! same field overwrites an earlier one; a `null` changes nothing. Underscores are not folded:
//! `rangeStart` is not `range_start`.
//!
//! [`canonical`] rewrites a configuration into exact field names once, so the parser after it
//! reads plain keys.

use serde_json::{Map, Value};

use super::ordered::Ordered;
use super::schema::{Fields, Shape};
use ipam::Warning;

/// `s` folded for comparison (see the module doc).
fn fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{212A}' => 'k',
            '\u{017F}' => 's',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Whether Go's decoder would take `key` for a field named `name`, ignoring which field it would
/// prefer when several match. For tools that must find a key as the plugin will (the fuzz harness).
pub fn key_matches(key: &str, name: &str) -> bool {
    key == name || fold(key) == fold(name)
}

/// The field `key` is decoded into, if any.
pub fn field_for(fields: &Fields, key: &str) -> Option<&'static str> {
    if let Some((name, _)) = fields.fields.iter().find(|(name, _)| *name == key) {
        return Some(name);
    }
    let folded = fold(key);
    fields.fields.iter().find(|(name, _)| fold(name) == folded).map(|(name, _)| *name)
}

/// `value` (found at `path`) with every object of a known shape rewritten to exact field names.
/// Keys of a struct that match no field are kept (when the struct keeps unknown keys) or dropped
/// with a warning naming them.
pub fn canonical(value: &Ordered, shape: &Shape, path: &str, warnings: &mut Vec<Warning>) -> Value {
    match (shape, value) {
        (Shape::Struct(fields), Ordered::Object(entries)) => {
            let mut out = Map::new();
            for (key, v) in entries {
                let sub = join(path, key);
                match field_for(fields, key) {
                    Some(_) if matches!(v, Ordered::Null) => {}
                    Some(name) => {
                        let shape = fields.shape_of(name).expect("listed");
                        out.insert(name.to_string(), canonical(v, shape, &join(path, name), warnings));
                    }
                    None if fields.keep_unknown => {
                        out.insert(key.clone(), v.to_value());
                    }
                    None => warnings.push(Warning { field: sub, message: "unknown key, ignored".into() }),
                }
            }
            Value::Object(out)
        }
        (Shape::List(item), Ordered::Array(items)) => Value::Array(
            items.iter().enumerate().map(|(i, v)| canonical(v, item, &format!("{path}[{i}]"), warnings)).collect(),
        ),
        // Scalars, opaque values, and values of the wrong type (the parser names the field).
        (_, other) => other.to_value(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::{IPAM, NETCONF};
    use serde_json::json;

    fn canon(json: &str, fields: &'static Fields) -> (Value, Vec<Warning>) {
        let mut w = Vec::new();
        let v = canonical(&Ordered::parse(json.as_bytes()).unwrap(), &Shape::Struct(fields), "ipam", &mut w);
        (v, w)
    }

    #[test]
    fn key_matches_folds_as_go_does_but_not_underscores() {
        assert!(key_matches("Ipam", "ipam"));
        assert!(key_matches("TIMEOUT_\u{17F}ECONDS", "timeout_seconds"));
        assert!(!key_matches("timeoutSeconds", "timeout_seconds"));
    }

    #[test]
    fn keys_match_exactly_then_case_insensitively_in_declaration_order() {
        let (v, w) = canon(
            r#"{"TYPE":"whereabouts","Range":"10.0.0.0/24","Range_Start":"10.0.0.5","IPRANGES":[{"RANGE":"10.1.0.0/24"}],
                "GATEWAY":"10.0.0.1","Gateway":"10.0.0.9","ExClUdE":["10.0.0.8"],"dns":{"NameServers":["1.1.1.1"]}}"#,
            &IPAM,
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            v,
            json!({"type": "whereabouts", "range": "10.0.0.0/24", "range_start": "10.0.0.5",
                   "ipRanges": [{"range": "10.1.0.0/24"}], "gateway": "10.0.0.1", "Gateway": "10.0.0.9",
                   "exclude": ["10.0.0.8"], "dns": {"nameservers": ["1.1.1.1"]}})
        );
    }

    #[test]
    fn the_later_key_wins_and_null_changes_nothing() {
        let (v, _) = canon(r#"{"range":"a","RANGE":"b","range_start":"x","Range_Start":null}"#, &IPAM);
        assert_eq!(v, json!({"range": "b", "range_start": "x"}));
    }

    #[test]
    fn underscores_are_not_folded_and_unknown_keys_are_named() {
        let (v, w) =
            canon(r#"{"rangeStart":"10.0.0.5","range":"10.0.0.0/24","routes":[{"DST":"0.0.0.0/0","via":"x"}]}"#, &IPAM);
        assert_eq!(v, json!({"range": "10.0.0.0/24", "routes": [{"dst": "0.0.0.0/0"}]}));
        let fields: Vec<&str> = w.iter().map(|w| w.field.as_str()).collect();
        assert_eq!(fields, ["ipam.rangeStart", "ipam.routes[0].via"]);
    }

    #[test]
    fn go_folds_the_kelvin_sign_and_the_long_s() {
        assert_eq!(field_for(&IPAM, "\u{212A}ubernetes"), Some("kubernetes"));
        assert_eq!(field_for(&IPAM, "\u{017F}leep_for_race"), Some("sleep_for_race"));
        assert_eq!(field_for(&IPAM, "kübernetes"), None);
    }

    #[test]
    fn the_network_configuration_keeps_the_interface_plugins_keys() {
        let mut w = Vec::new();
        let parsed =
            Ordered::parse(br#"{"CNIVersion":"1.0.0","NAME":"n","master":"eth0","IPAM":{"type":"whereabouts"}}"#);
        let v = canonical(&parsed.unwrap(), &Shape::Struct(&NETCONF), "", &mut w);
        assert_eq!(v, json!({"cniVersion": "1.0.0", "name": "n", "master": "eth0", "ipam": {"type": "whereabouts"}}));
        assert!(w.is_empty());
    }
}
