//! sled 0.34.7 on lazyfs: what survives a power cut of what sled acknowledged.
//!
//! sled's `flush()` writes with `pwrite` and then calls `sync_file_range` (never fsync), and sled
//! never fsyncs a directory. Durability comes only from the periodic flusher thread
//! (`flush_every_ms`, 500 ms by default, as raft-store runs it), which calls `fsync` on the data
//! file after each round. These tests pin that behaviour down: they run `examples/sled_probe`
//! as a separate process, kill it with SIGKILL right after `flush()` returned, cut, and reopen.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{fsync_dir, Mount};

/// The `sled_probe` example next to this test binary, (re)built once per test process so it is
/// never stale (`cargo nextest run --test sled` alone does not build examples).
fn probe() -> PathBuf {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            let probe = exe.parent().and_then(Path::parent).unwrap().join("examples/sled_probe");
            let cargo = option_env!("CARGO").unwrap_or("cargo");
            let built = Command::new(cargo)
                .args(["build", "--quiet", "-p", "lazyfs", "--example", "sled_probe"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .is_ok_and(|s| s.success());
            assert!(built || probe.exists(), "could not build examples/sled_probe at {}", probe.display());
            probe
        })
        .clone()
}

/// A running `sled_probe write` and the lines it prints; killed on drop if the test fails first.
struct Writer {
    child: Option<Child>,
    lines: Receiver<String>,
}

impl Writer {
    /// Starts `sled_probe write`.
    fn start(db: &Path, first: u64, count: u64, flush_every: &str) -> Writer {
        let mut child = Command::new(probe())
            .args(["write", db.to_str().unwrap(), &first.to_string(), &count.to_string(), flush_every])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Writer { child: Some(child), lines }
    }

    /// Waits (bounded) for the probe to print `word`.
    fn expect(&mut self, word: &str) {
        match self.lines.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line == word => {}
            other => {
                self.end();
                panic!("sled_probe: expected {word:?}, got {other:?}");
            }
        }
    }

    /// SIGKILL, as the chaos suite kills a node.
    fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn end(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.end();
    }
}

/// Opens, inserts, flushes, and returns the still running probe.
fn write_and_flush(db: &Path, first: u64, count: u64, flush_every: &str) -> Writer {
    let mut w = Writer::start(db, first, count, flush_every);
    w.expect("opened");
    w.expect("flushed");
    w
}

/// `sled_probe read`: (number of keys, largest key).
fn read(db: &Path) -> (u64, Option<u64>) {
    let out = Command::new(probe()).args(["read", db.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "sled_probe read failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let words: Vec<&str> = text.split_whitespace().collect();
    let last = match words.get(3) {
        Some(w) if w.starts_with("Some(") => Some(w[5..w.len() - 1].parse().unwrap()),
        _ => None,
    };
    (words[1].parse().unwrap(), last)
}

/// A mount with a sled database of keys 0..100 made fully durable with `ctl sync`.
fn mount_with_durable_db() -> (Mount, PathBuf) {
    let m = Mount::start(&[]);
    let db = m.path("db");
    write_and_flush(&db, 0, 100, "500").kill();
    m.client().sync().unwrap();
    assert_eq!(read(&db), (100, Some(99)));
    m.client().sync().unwrap(); // whatever the read wrote
    (m, db)
}

#[test]
fn sled_flush_alone_is_not_durable_it_is_lost_on_a_cut() {
    if !common::can_mount("sled_flush_alone_is_not_durable_it_is_lost_on_a_cut") {
        return;
    }
    let (m, db) = mount_with_durable_db();
    let mut w = Writer::start(&db, 100, 100, "none");
    w.expect("opened"); // recovery fsyncs the data file and a new snapshot file
    let before = m.status();
    w.expect("flushed");
    let after = m.status();
    w.kill();
    // Inserts + flush() reached lazyfs as writes only: no fsync, no fdatasync.
    assert_eq!((after.fsyncs, after.fdatasyncs), (before.fsyncs, before.fdatasyncs));
    assert!(after.dirty_bytes > 0);
    m.cut();
    assert_eq!(read(&db), (100, Some(99)), "the 100 keys acknowledged by flush() are gone");
}

#[test]
fn sled_flush_is_durable_once_the_periodic_flusher_fsynced() {
    if !common::can_mount("sled_flush_is_durable_once_the_periodic_flusher_fsynced") {
        return;
    }
    let (m, db) = mount_with_durable_db();
    let w = write_and_flush(&db, 100, 100, "500");
    let at_flush = m.status().fsyncs;
    let deadline = Instant::now() + Duration::from_secs(20);
    while m.status().fsyncs == at_flush {
        assert!(Instant::now() < deadline, "sled's flusher thread never fsynced");
        std::thread::sleep(Duration::from_millis(10));
    }
    w.kill();
    m.cut();
    assert_eq!(read(&db), (200, Some(199)));
}

#[test]
fn sled_never_fsyncs_a_directory_so_a_new_database_vanishes_on_a_cut() {
    if !common::can_mount("sled_never_fsyncs_a_directory_so_a_new_database_vanishes_on_a_cut") {
        return;
    }
    let m = Mount::start(&[]);
    let db = m.path("db");
    let w = write_and_flush(&db, 0, 100, "500");
    let deadline = Instant::now() + Duration::from_secs(20);
    while m.status().fsyncs == 0 {
        assert!(Instant::now() < deadline, "sled's flusher thread never fsynced");
        std::thread::sleep(Duration::from_millis(10));
    }
    w.kill();
    assert_eq!(m.status().fsyncdirs, 0);
    m.cut();
    assert!(!db.exists(), "the directory sled made was never fsynced, nor its parent");
}

#[test]
fn sled_database_survives_when_the_caller_fsyncs_its_directories() {
    if !common::can_mount("sled_database_survives_when_the_caller_fsyncs_its_directories") {
        return;
    }
    let m = Mount::start(&[]);
    let db = m.path("db");
    let w = write_and_flush(&db, 0, 100, "500");
    fsync_dir(&db);
    fsync_dir(&m.mnt);
    let at_dirsync = m.status().fsyncs;
    let deadline = Instant::now() + Duration::from_secs(20);
    while m.status().fsyncs == at_dirsync {
        assert!(Instant::now() < deadline, "sled's flusher thread never fsynced");
        std::thread::sleep(Duration::from_millis(10));
    }
    w.kill();
    m.cut();
    assert_eq!(read(&db), (100, Some(99)));
}
