//! The control surface and the process: `lazyfs ctl`, the fsync delay, and how a mount ends.

mod common;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{write_file, Mount};

fn ctl(m: &Mount, args: &[&str]) -> (bool, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_lazyfs"))
        .arg("ctl")
        .arg("--control")
        .arg(&m.control)
        .args(args)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.success(), json)
}

#[test]
fn ctl_prints_json_and_fails_when_a_cut_is_refused() {
    if !common::can_mount("ctl_prints_json_and_fails_when_a_cut_is_refused") {
        return;
    }
    let m = Mount::start(&[]);
    fs::write(m.path("f"), b"12345").unwrap();
    let (ok, status) = ctl(&m, &["status"]);
    assert!(ok);
    assert_eq!(status["status"]["dirty_bytes"], 5);
    assert_eq!(status["status"]["pending_namespace_ops"], 1);
    let held = fs::File::open(m.path("f")).unwrap();
    let (ok, refused) = ctl(&m, &["cut", "--wait-ms", "100"]);
    assert!(!ok);
    assert!(refused["error"]["message"].as_str().unwrap().contains("still open"), "{refused}");
    drop(held);
    let (ok, cut) = ctl(&m, &["cut"]);
    assert!(ok, "{cut}");
    assert_eq!(cut["cut"]["dropped_bytes"], 5);
    assert!(!m.path("f").exists());
}

#[test]
fn fsync_delay_holds_every_fsync_back_until_turned_off() {
    if !common::can_mount("fsync_delay_holds_every_fsync_back_until_turned_off") {
        return;
    }
    let m = Mount::start(&["--fsync-delay-ms", "300"]);
    assert_eq!(m.status().fsync_delay_ms, 300);
    let start = Instant::now();
    write_file(&m.path("f"), b"x", Some(false));
    common::fsync_dir(&m.mnt);
    assert!(start.elapsed() >= Duration::from_millis(600), "two fsyncs, each delayed 300 ms");
    m.client().set_fsync_delay(Duration::ZERO).unwrap();
    assert_eq!(m.status().fsync_delay_ms, 0);
    let (ok, _) = ctl(&m, &["delay", "50"]);
    assert!(ok);
    assert_eq!(m.status().fsync_delay_ms, 50);
}

#[test]
fn sigterm_drops_pending_changes_by_default_and_cleans_up() {
    if !common::can_mount("sigterm_drops_pending_changes_by_default_and_cleans_up") {
        return;
    }
    let mut m = Mount::start(&[]);
    write_file(&m.path("durable"), b"d", Some(false));
    common::fsync_dir(&m.mnt);
    write_file(&m.path("pending"), b"p", None);
    fs::write(m.path("durable"), b"changed").unwrap();
    assert!(m.stop(), "lazyfs exits 0 on SIGTERM and unmounts");
    assert_eq!(common::names(&m.backing), vec!["durable"], "no graveyard, no undone name left");
    assert_eq!(fs::read(m.backing_path("durable")).unwrap(), b"d");
    assert!(!m.control.exists(), "the control socket is removed");
}

#[test]
fn on_exit_sync_makes_pending_changes_durable() {
    if !common::can_mount("on_exit_sync_makes_pending_changes_durable") {
        return;
    }
    let mut m = Mount::start(&["--on-exit", "sync"]);
    fs::create_dir(m.path("d")).unwrap();
    fs::write(m.path("d/f"), b"kept at exit").unwrap();
    assert!(m.stop());
    assert_eq!(common::names(&m.backing), vec!["d"]);
    assert_eq!(fs::read(m.backing_path("d/f")).unwrap(), b"kept at exit");
}

#[test]
fn a_remount_over_the_same_backing_directory_sees_only_durable_state() {
    if !common::can_mount("a_remount_over_the_same_backing_directory_sees_only_durable_state") {
        return;
    }
    let mut m = Mount::start(&[]);
    write_file(&m.path("f"), b"v1", Some(false));
    common::fsync_dir(&m.mnt);
    fs::write(m.path("f"), b"v2").unwrap();
    m.cut();
    m.remount();
    assert_eq!(fs::read(m.path("f")).unwrap(), b"v1");
    let s = m.status();
    assert_eq!((s.dirty_files, s.pending_namespace_ops, s.cuts), (0, 0, 0));
}
