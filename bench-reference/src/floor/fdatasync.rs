//! The disk floor: append a block to a file, `fdatasync` it, again and again. A commit made
//! durable by one node costs at least one of these; a quorum of three on one disk, two.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use loadgen::LatencySummary;
use serde::Serialize;

/// What `fdatasync` measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always `fdatasync-floor`.
    pub system: &'static str,
    /// Appends made (each followed by one `fdatasync`).
    pub count: u64,
    /// Bytes per append.
    pub block_bytes: usize,
    /// Latency of write + `fdatasync`, ms.
    pub latency_ms: LatencySummary,
    /// Appends per second, one after the other.
    pub throughput: f64,
}

impl Report {
    /// The report as a few lines of text.
    pub fn to_text(&self) -> String {
        let l = &self.latency_ms;
        format!(
            "fdatasync floor: {} appends of {} bytes, each fdatasync'd: {:.0}/s\n  latency ms: p50 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}\n",
            self.count, self.block_bytes, self.throughput, l.p50, l.p99, l.p999, l.max
        )
    }
}

/// Appends `count` blocks of `block_bytes` to a fresh file in `dir`, `fdatasync` after each, and
/// removes the file.
pub fn run(dir: &Path, count: u64, block_bytes: usize) -> anyhow::Result<Report> {
    anyhow::ensure!(count > 0 && block_bytes > 0, "--count and --block-bytes must be > 0");
    let path = dir.join(format!(".fdatasync-floor.{}", std::process::id()));
    let mut file = OpenOptions::new().create_new(true).append(true).open(&path)?;
    let block = vec![0xa5u8; block_bytes];
    let mut h = loadgen::latency::new_histogram();
    let start = Instant::now();
    let result = (|| -> std::io::Result<()> {
        for _ in 0..count {
            let t = Instant::now();
            file.write_all(&block)?;
            file.sync_data()?;
            loadgen::latency::record(&mut h, t.elapsed());
        }
        Ok(())
    })();
    let elapsed = start.elapsed().max(Duration::from_nanos(1));
    drop(file);
    let _ = std::fs::remove_file(&path);
    result?;
    Ok(Report {
        system: "fdatasync-floor",
        count,
        block_bytes,
        latency_ms: LatencySummary::from_histogram(&h),
        throughput: (count as f64 / elapsed.as_secs_f64()).round(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_append_is_measured_and_the_file_removed() {
        let dir = tempfile::tempdir().unwrap();
        let report = run(dir.path(), 20, 4096).unwrap();
        assert_eq!(report.count, 20);
        assert!(report.latency_ms.max >= report.latency_ms.p50);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no file left behind");
        assert!(run(dir.path(), 0, 4096).is_err());
        assert!(run(&dir.path().join("missing"), 1, 4096).is_err());
    }
}
