//! The human-readable summary table of a [`Report`].

use std::fmt::{self, Display, Formatter, Write as _};

use super::linearizable::LinStatus;
use super::report::{Report, Verdict};

const TYPES: [&str; 4] = ["invoke", "ok", "fail", "info"];

fn secs(ns: u64) -> String {
    format!("{:.3}s", ns as f64 / 1e9)
}

impl Display for Report {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let verdict = match self.verdict {
            Verdict::Valid => "VALID".to_string(),
            Verdict::Invalid => match self.anomaly_count() {
                1 => "INVALID (1 anomaly)".to_string(),
                n => format!("INVALID ({n} anomalies)"),
            },
            Verdict::Unknown => "UNKNOWN (search bound hit; nothing claimed)".to_string(),
        };
        writeln!(f, "verdict: {verdict}")?;
        writeln!(f, "events: {}   final reads ok: {}", self.events, self.final_reads)?;
        writeln!(f)?;
        write!(f, "{:<10}", "ops")?;
        for t in TYPES {
            write!(f, "{t:>8}")?;
        }
        writeln!(f)?;
        for (name, by_type) in &self.ops {
            write!(f, "{name:<10}")?;
            for t in TYPES {
                write!(f, "{:>8}", by_type.get(t).copied().unwrap_or(0))?;
            }
            writeln!(f)?;
        }
        let mut nem = String::new();
        for (fault, n) in &self.nemesis {
            let _ = write!(nem, "{}{fault} {n}", if nem.is_empty() { "" } else { ", " });
        }
        writeln!(f, "\nnemesis: {}", if nem.is_empty() { "none" } else { &nem })?;
        match self.liveness.last() {
            None => writeln!(f, "liveness: no heal/resume/restart in the history")?,
            Some(r) => {
                let after = match (r.first_ok, r.recovery_ns) {
                    (Some(i), Some(ns)) => format!("first ok #{i} after {}", secs(ns)),
                    _ => "no ok operation after it".to_string(),
                };
                let max = self.liveness.max_recovery_ns.map_or(String::new(), |m| {
                    format!(" (max over {} recoveries {})", self.liveness.recoveries.len(), secs(m))
                });
                writeln!(f, "liveness: last {} #{}: {after}{max}", r.fault, r.index)?;
            }
        }
        writeln!(f, "linearizability:")?;
        if self.linearizability.is_empty() {
            writeln!(f, "  (no client operations)")?;
        }
        for v in &self.linearizability {
            let status = match &v.status {
                LinStatus::Linearizable => "linearizable".to_string(),
                LinStatus::NotLinearizable => "NOT LINEARIZABLE".to_string(),
                LinStatus::Unknown { reason } => format!("UNKNOWN: {reason}"),
            };
            writeln!(f, "  {:<16} {status} ({} ops, {} states)", v.network, v.ops, v.states)?;
        }
        if self.anomalies.is_empty() {
            return writeln!(f, "anomalies: none");
        }
        writeln!(f, "anomalies:")?;
        for (kind, g) in &self.anomalies {
            writeln!(f, "  {}: {}", kind.as_str(), g.count)?;
            for a in &g.examples {
                writeln!(f, "    - {}", a.message)?;
            }
        }
        Ok(())
    }
}
