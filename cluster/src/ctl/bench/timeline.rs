//! `--timeline`: one CSV line per operation, `op_start_ns,attempt_sent_ns,end_ns,op,ok,attempts`
//! in Unix nanoseconds, sorted by end (benches/failover.sh reads it to time an outage).

use std::io::Write as _;
use std::path::Path;

/// Most timeline rows a client keeps (bounds memory on long runs).
pub const MAX_ROWS_PER_CLIENT: usize = 2_000_000;

/// One line of `--timeline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// When the operation started.
    pub op_start_ns: u64,
    /// When its successful attempt was sent (0 if it failed).
    pub attempt_sent_ns: u64,
    /// When it ended.
    pub end_ns: u64,
    /// A release (else an allocation).
    pub release: bool,
    /// It succeeded.
    pub ok: bool,
    /// Attempts it took (0 if it failed).
    pub attempts: u32,
}

/// Writes `rows` to `path`, sorted by `end_ns`.
pub fn write(path: &Path, rows: &mut [Row]) -> std::io::Result<()> {
    rows.sort_by_key(|r| r.end_ns);
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(w, "op_start_ns,attempt_sent_ns,end_ns,op,ok,attempts")?;
    for r in rows.iter() {
        let op = if r.release { "release" } else { "allocate" };
        writeln!(w, "{},{},{},{op},{},{}", r.op_start_ns, r.attempt_sent_ns, r.end_ns, u8::from(r.ok), r.attempts)?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_written_sorted_by_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let mut rows = [
            Row { op_start_ns: 5, attempt_sent_ns: 6, end_ns: 9, release: true, ok: true, attempts: 2 },
            Row { op_start_ns: 1, attempt_sent_ns: 0, end_ns: 3, release: false, ok: false, attempts: 0 },
        ];
        write(&path, &mut rows).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "op_start_ns,attempt_sent_ns,end_ns,op,ok,attempts\n1,0,3,allocate,0,0\n5,6,9,release,1,2\n"
        );
    }
}
