//! Printing results: aligned tables for people, JSON for scripts.

use clap::ValueEnum;
use serde::Serialize;

/// How to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns.
    Table,
    /// One JSON document.
    Json,
}

/// Formats rows as left-aligned columns under `headers`.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = vec![line(headers.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.iter().map(|r| line(r.clone())));
    out.join("\n")
}

/// Prints `value` as JSON, or `human` as is. A closed stdout (`| head`) ends quietly.
pub fn print<T: Serialize>(output: Output, value: &T, human: impl FnOnce() -> String) -> anyhow::Result<()> {
    use std::io::Write;
    let text = match output {
        Output::Json => serde_json::to_string_pretty(value)?,
        Output::Table => human(),
    };
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let t = table(&["ID", "ADDRESS"], &[vec!["0".into(), "127.0.0.1:7000".into()], vec!["10".into(), "x".into()]]);
        assert_eq!(t, "ID  ADDRESS\n0   127.0.0.1:7000\n10  x");
    }
}
