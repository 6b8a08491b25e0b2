//! Mixed versions: what the harness saw while members ran two releases. A `roll` that ended
//! `info` with `caught_up: false` is a member that, restarted on the other release, did not serve
//! and catch up (`roll-stalled`); a `cluster-version` observation in which a member stores an
//! entry or snapshot newer than the cluster version (at the end, or in the `cluster` a roll
//! recorded before a rollback) breaks the rule that the leader writes only what every release in
//! the cluster reads (`format-above-cluster-version`).

use serde_json::Value;

use super::anomaly::{Anomaly, AnomalyKind};
use crate::history::{Event, EventType, Op};

/// Reports stalled rolls and formats above the cluster version.
pub fn find(nemesis: &[Event]) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for ev in nemesis {
        let Op::Nemesis(n) = &ev.op else { continue };
        match n.f.as_str() {
            "roll" if ev.kind == EventType::Info && n.value.get("caught_up") == Some(&Value::Bool(false)) => {
                let v = &n.value;
                let why = match v.get("exited") {
                    Some(e) => format!("it exited ({e})"),
                    None => format!("members behind after {} ms: {}", v["within_ms"], v["behind"]),
                };
                out.push(Anomaly::new(
                    AnomalyKind::RollStalled,
                    format!(
                        "after node {} moved from {} to {}, not every member caught up: {why}; log: {}",
                        v["node"], v["from"], v["to"], v["message"]
                    ),
                    vec![ev.index],
                ));
            }
            "cluster-version" => out.extend(above(ev, &n.value)),
            "roll" => out.extend(n.value.get("cluster").map(|c| above(ev, c)).unwrap_or_default()),
            _ => {}
        }
    }
    out
}

/// The members of one `cluster-version` observation that store a newer format than its version.
fn above(ev: &Event, v: &Value) -> Vec<Anomaly> {
    let Some(version) = v.get("cluster_version").and_then(Value::as_u64) else { return Vec::new() };
    let members = v.get("members").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut out = Vec::new();
    for m in members {
        for field in ["newest_log_format", "snapshot_format"] {
            if let Some(format) = m.get(field).and_then(Value::as_u64).filter(|f| *f > version) {
                out.push(Anomaly::new(
                    AnomalyKind::FormatAboveClusterVersion,
                    format!("member {} reports {field} {format} at cluster version {version}", m["id"]),
                    vec![ev.index],
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::parse_history;

    fn kinds(history: &str) -> Vec<AnomalyKind> {
        let events = parse_history(history.as_bytes()).unwrap();
        find(&events).into_iter().map(|a| a.kind).collect()
    }

    #[test]
    fn a_roll_that_caught_up_is_fine_one_that_did_not_is_reported() {
        let ok = r#"{"index":0,"time":0,"process":"nemesis","type":"invoke","f":"roll","value":{"node":2,"from":"old","to":"new"}}
{"index":1,"time":1,"process":"nemesis","type":"ok","f":"roll","value":{"node":2,"from":"old","to":"new","caught_up_ms":800}}
"#;
        assert!(kinds(ok).is_empty());
        let stalled = r#"{"index":0,"time":0,"process":"nemesis","type":"invoke","f":"roll","value":{"node":1,"from":"new","to":"old"}}
{"index":1,"time":1,"process":"nemesis","type":"info","f":"roll","value":{"node":1,"from":"new","to":"old","caught_up":false,"within_ms":30000,"behind":{"1":{"applied_index":40},"leader_applied":52},"message":{"1":"unknown variant"}}}
"#;
        let found = find(&parse_history(stalled.as_bytes()).unwrap());
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].kind, found[0].events.as_slice()), (AnomalyKind::RollStalled, &[1][..]));
        assert!(
            found[0].message.contains("node 1") && found[0].message.contains("unknown variant"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn formats_above_the_cluster_version_are_reported_per_member() {
        let h = r#"{"index":0,"time":0,"process":"nemesis","type":"info","f":"cluster-version","value":{"cluster_version":1,"members":[{"id":0,"newest_log_format":1,"snapshot_format":1},{"id":1,"newest_log_format":2,"snapshot_format":null},{"id":2}]}}
{"index":1,"time":1,"process":"nemesis","type":"info","f":"cluster-version","value":{"cluster_version":2,"members":[{"id":0,"newest_log_format":2,"snapshot_format":2}]}}
{"index":2,"time":2,"process":"nemesis","type":"info","f":"cluster-version","value":{"errors":{"0":"Unimplemented"}}}
"#;
        assert_eq!(kinds(h), [AnomalyKind::FormatAboveClusterVersion]);
        let before_rollback = r#"{"index":0,"time":0,"process":"nemesis","type":"invoke","f":"roll","value":{"node":0,"from":"new","to":"old","cluster":{"cluster_version":1,"members":[{"id":0,"newest_log_format":2},{"id":1,"newest_log_format":1}]}}}
{"index":1,"time":1,"process":"nemesis","type":"invoke","f":"roll","value":{"node":0,"from":"new","to":"old","cluster":{"errors":{}}}}
"#;
        let found = find(&parse_history(before_rollback.as_bytes()).unwrap());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].kind, found[0].events.as_slice()), (AnomalyKind::FormatAboveClusterVersion, &[0][..]));
    }
}
