//! Convergence: the members agreed on one applied index after the load (the harness's `converge`
//! event), every node's final table is the same, and every final read answered.

use std::collections::BTreeSet;

use super::anomaly::{Anomaly, AnomalyKind};
use super::operation::{ClientOp, OpKind, Outcome};
use crate::history::{Event, FinalTable, Op};

const MAX_DIFFS: usize = 3;

/// Reports `converge` events that say the members did not agree, final reads that did not
/// complete `ok`, and final tables that differ from the first one.
pub fn find(ops: &[ClientOp], nemesis: &[Event]) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for ev in nemesis {
        let Op::Nemesis(n) = &ev.op else { continue };
        if n.f == "converge" && n.value.get("converged") == Some(&serde_json::Value::Bool(false)) {
            let members = n.value.get("members").map_or("?".to_string(), |m| m.to_string());
            out.push(Anomaly::new(
                AnomalyKind::NotConverged,
                format!("the members did not agree on one leader and applied index; last answers: {members}"),
                vec![ev.index],
            ));
        }
    }
    let mut reference: Option<(&ClientOp, &FinalTable)> = None;
    for f in ops {
        let OpKind::FinalRead { table } = &f.kind else {
            continue;
        };
        let Some(table) = table.as_ref().filter(|_| f.outcome == Outcome::Ok) else {
            out.push(Anomaly::new(
                AnomalyKind::FinalReadFailed,
                format!("{} ended {}", f.label(), f.outcome.as_str()),
                vec![f.call],
            ));
            continue;
        };
        match reference {
            None => reference = Some((f, table)),
            Some((r, rt)) if rt != table => out.push(Anomaly::new(
                AnomalyKind::DivergingFinalTables,
                format!("{} vs {}: {}", r.label(), f.label(), diff(rt, table)),
                vec![r.call, f.call],
            )),
            Some(_) => {}
        }
    }
    out
}

fn diff(a: &FinalTable, b: &FinalTable) -> String {
    let keys: BTreeSet<(&str, &std::net::IpAddr)> = a.entries().chain(b.entries()).map(|(n, ip, _)| (n, ip)).collect();
    let show = |t: &FinalTable, n: &str, ip: &std::net::IpAddr| {
        t.holders(n, *ip).map_or("none".to_string(), |h| h.to_string())
    };
    let diffs: Vec<String> = keys
        .into_iter()
        .filter(|(n, ip)| a.holders(n, **ip) != b.holders(n, **ip))
        .map(|(n, ip)| format!("{n}/{ip} {} vs {}", show(a, n, ip), show(b, n, ip)))
        .collect();
    let more = diffs.len().saturating_sub(MAX_DIFFS);
    let mut text = diffs.into_iter().take(MAX_DIFFS).collect::<Vec<_>>().join("; ");
    if more > 0 {
        text.push_str(&format!("; {more} more"));
    }
    text
}
