//! Liveness: how long after a recovery fault (heal, resume, restart) the next `ok` operation came.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::anomaly::{Anomaly, AnomalyKind};
use super::operation::{ClientOp, Outcome};
use crate::history::{Event, EventType};

/// Nemesis functions after which the cluster should serve again.
pub const RECOVERY_FAULTS: [&str; 3] = ["heal", "resume", "restart"];

/// One recovery fault and the first `ok` client completion after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    /// heal, resume or restart.
    pub fault: String,
    /// Index of the nemesis event (its completion when there is one, else its invoke).
    pub index: u64,
    /// Its time (ns since run start).
    pub time: u64,
    /// Index of the first `ok` client completion after it.
    pub first_ok: Option<u64>,
    /// Nanoseconds from the fault to that completion.
    pub recovery_ns: Option<u64>,
}

/// Liveness summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Liveness {
    /// Every recovery fault in order.
    pub recoveries: Vec<Recovery>,
    /// Longest measured recovery (ns).
    pub max_recovery_ns: Option<u64>,
}

impl Liveness {
    /// The last recovery fault, the one the liveness verdict is about.
    pub fn last(&self) -> Option<&Recovery> {
        self.recoveries.last()
    }
}

fn recovery_points(nemesis: &[Event]) -> Vec<&Event> {
    let mut open: HashMap<&str, &Event> = HashMap::new();
    let mut points = Vec::new();
    for ev in nemesis {
        let f = ev.op.f();
        if !RECOVERY_FAULTS.contains(&f) {
            continue;
        }
        if ev.kind == EventType::Invoke {
            if let Some(prev) = open.insert(f, ev) {
                points.push(prev);
            }
        } else {
            open.remove(f);
            points.push(ev);
        }
    }
    points.extend(open.into_values());
    points.sort_by_key(|e| e.index);
    points
}

/// Measures recovery after each recovery fault; reports `no-recovery` when operations were
/// invoked after the last one and none completed `ok`, and `slow-recovery` past `limit`.
pub fn measure(ops: &[ClientOp], nemesis: &[Event], limit: Option<Duration>) -> (Liveness, Vec<Anomaly>) {
    let mut oks: Vec<(u64, u64)> = ops.iter().filter(|o| o.outcome == Outcome::Ok).filter_map(|o| o.done).collect();
    oks.sort_unstable();
    let recoveries: Vec<Recovery> = recovery_points(nemesis)
        .into_iter()
        .map(|ev| {
            let first = oks.iter().find(|(i, _)| *i > ev.index);
            Recovery {
                fault: ev.op.f().to_string(),
                index: ev.index,
                time: ev.time,
                first_ok: first.map(|(i, _)| *i),
                recovery_ns: first.map(|(_, t)| t.saturating_sub(ev.time)),
            }
        })
        .collect();
    let mut anomalies = Vec::new();
    if let Some(last) = recoveries.last() {
        let later: Vec<u64> = ops.iter().filter(|o| o.call > last.index).map(|o| o.call).collect();
        if last.first_ok.is_none() && !later.is_empty() {
            anomalies.push(Anomaly::new(
                AnomalyKind::NoRecovery,
                format!(
                    "{} operations invoked after {} #{} and none completed ok",
                    later.len(),
                    last.fault,
                    last.index
                ),
                std::iter::once(last.index).chain(later.into_iter().take(3)).collect(),
            ));
        }
        let limit_ns = limit.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        if let (Some(took), Some(max)) = (last.recovery_ns, limit_ns) {
            if took > max {
                anomalies.push(Anomaly::new(
                    AnomalyKind::SlowRecovery,
                    format!(
                        "first ok {:.3}s after {} #{} (limit {:.3}s)",
                        took as f64 / 1e9,
                        last.fault,
                        last.index,
                        max as f64 / 1e9
                    ),
                    vec![last.index],
                ));
            }
        }
    }
    let max_recovery_ns = recoveries.iter().filter_map(|r| r.recovery_ns).max();
    (Liveness { recoveries, max_recovery_ns }, anomalies)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::pair;
    use crate::history::parse_history;

    #[test]
    fn recovery_is_measured_from_the_heal_completion() {
        let text = r#"{"index":0,"time":0,"process":"nemesis","type":"invoke","f":"partition"}
{"index":1,"time":10,"process":"nemesis","type":"invoke","f":"heal"}
{"index":2,"time":20,"process":0,"type":"invoke","f":"read","value":{"network":"n","owner":"o"}}
{"index":3,"time":30,"process":"nemesis","type":"ok","f":"heal"}
{"index":4,"time":75,"process":0,"type":"ok","f":"read","value":{"ips":[]}}
{"index":5,"time":80,"process":"nemesis","type":"invoke","f":"resume"}
"#;
        let p = pair(&parse_history(text.as_bytes()).unwrap()).unwrap();
        let (live, anomalies) = measure(&p.ops, &p.nemesis, Some(Duration::from_nanos(40)));
        assert_eq!(live.recoveries.len(), 2);
        assert_eq!(live.recoveries[0].index, 3);
        assert_eq!(live.recoveries[0].recovery_ns, Some(45));
        assert_eq!(live.last().map(|r| r.first_ok), Some(None));
        // no operation was invoked after the last resume: nothing to blame, and the limit
        // only applies to the last recovery
        assert!(anomalies.is_empty());
    }
}
