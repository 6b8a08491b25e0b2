//! Convergence: every node's final table is the same, and every final read answered.

use std::collections::BTreeSet;

use super::anomaly::{Anomaly, AnomalyKind};
use super::operation::{ClientOp, OpKind, Outcome};
use crate::history::FinalTable;

const MAX_DIFFS: usize = 3;

/// Reports final reads that did not complete `ok`, and final tables that differ from the first one.
pub fn find(ops: &[ClientOp]) -> Vec<Anomaly> {
    let mut out = Vec::new();
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
