//! A kill -9 around the install of a snapshot sent by the leader must leave a data directory
//! openraft starts from. openraft 0.9 purges the log up to the snapshot as soon as it accepts it
//! and only then has its state machine worker install it (`install_full_snapshot` in its engine);
//! these tests call the store in that order and "kill" the node at each point by copying the data
//! directory while the store holds it open (the copy has what a killed process leaves: what was
//! written to the files, not what sled still buffered), then start openraft's way from the copy
//! (`StorageHelper::get_initial_state`, what `Raft::new` runs).
//!
//! Regression (chaos suite): a follower killed between the purge and the install could never
//! start again: "Failed to get log entries, expected index: [9895, 9940), got [None, None)".

#![allow(clippy::result_large_err)] // openraft's StorageError is large.

use std::io::Cursor;
use std::path::Path;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine, StorageHelper};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader, RaftSnapshotBuilder};
use raft_store::types::{typ, TypeConfig};
use raft_store::{LogStore, StateMachineStore};

fn id(index: u64) -> typ::LogId {
    LogId::new(CommittedLeaderId::new(1, 0), index)
}

fn entries(indexes: std::ops::RangeInclusive<u64>) -> Vec<typ::Entry> {
    indexes.map(|i| Entry::<TypeConfig> { log_id: id(i), payload: EntryPayload::Blank }).collect()
}

fn open(dir: &Path) -> (LogStore, StateMachineStore) {
    let raft_store::Opened { log, state_machine, .. } = raft_store::open(dir, "test", 1).expect("open the store");
    (log, state_machine)
}

/// What a kill -9 leaves of `from` right now: its files as written so far.
fn killed_copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            killed_copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A follower as node 1 was: entries 1..=30 flushed, committed up to 25 and applied, a snapshot
/// at 20 and the log purged up to 10 after it (openraft keeps some entries behind a snapshot).
async fn lagging_follower(dir: &Path) -> (LogStore, StateMachineStore) {
    let (mut log, mut sm) = open(dir);
    log.blocking_append(entries(1..=25)).await.unwrap();
    sm.apply(entries(1..=20)).await.unwrap();
    sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
    log.purge(id(10)).await.unwrap();
    log.save_committed(Some(id(25))).await.unwrap();
    sm.apply(entries(21..=25)).await.unwrap();
    // The committed hint is not synced by itself: the next flush of the log carries it.
    log.blocking_append(entries(26..=30)).await.unwrap();
    (log, sm)
}

/// The leader's snapshot at 40 (built by a node that applied 1..=40).
async fn leaders_snapshot(dir: &Path) -> typ::Snapshot {
    let (_log, mut sm) = open(dir);
    sm.apply(entries(1..=40)).await.unwrap();
    sm.get_snapshot_builder().await.build_snapshot().await.unwrap()
}

async fn install(sm: &mut StateMachineStore, snapshot: typ::Snapshot) {
    let data: Vec<u8> = snapshot.snapshot.into_inner();
    sm.install_snapshot(&snapshot.meta, Box::new(Cursor::new(data))).await.unwrap();
}

/// Starts openraft's way from `dir`: the start must succeed and be consistent.
async fn start(dir: &Path) -> (LogStore, StateMachineStore, typ::LogId) {
    let (mut log, mut sm) = open(dir);
    let state = StorageHelper::new(&mut log, &mut sm).get_initial_state().await.expect("openraft starts from it");
    let committed = state.committed.expect("something committed");
    (log, sm, committed)
}

#[tokio::test]
async fn a_kill_after_openraft_purges_for_a_snapshot_it_has_not_installed_leaves_a_log_it_starts_from() {
    let (node, leader, killed) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut log, sm) = lagging_follower(node.path()).await;
    let _snapshot = leaders_snapshot(leader.path()).await;
    // openraft accepted the snapshot at 40: it purges at once, the install is still queued.
    log.purge(id(40)).await.unwrap();
    assert_eq!(log.get_log_state().await.unwrap().last_purged_log_id, Some(id(40)), "purged for openraft");
    assert!(log.try_get_log_entries(0..100).await.unwrap().is_empty(), "entries up to 40 are not read any more");
    killed_copy(node.path(), killed.path());
    drop((log, sm));

    // Before the fix: the purge was on disk, the snapshot at 40 was not, and this failed with
    // "Failed to get log entries, expected index: [21, 26), got [None, None)".
    let (mut log, mut sm, committed) = start(killed.path()).await;
    assert_eq!(committed, id(25), "the committed entries after the snapshot were re-applied");
    assert_eq!(sm.applied_state().await.unwrap().0, Some(id(25)));
    let state = log.get_log_state().await.unwrap();
    assert_eq!((state.last_purged_log_id, state.last_log_id), (Some(id(10)), Some(id(30))), "the log as before");
}

#[tokio::test]
async fn an_append_after_the_purge_waits_for_the_install_and_a_kill_at_any_point_leaves_a_log_openraft_starts_from() {
    let (node, leader) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut log, mut sm) = lagging_follower(node.path()).await;
    let snapshot = leaders_snapshot(leader.path()).await;
    log.purge(id(40)).await.unwrap();

    // A new leader appends 41..=45 while the state machine worker still installs the snapshot:
    // written now, they would follow a gap (21..=40) after a kill.
    let mut appender = log.clone();
    let append = appender.blocking_append(entries(41..=45));
    tokio::pin!(append);
    tokio::select! {
        // Runs the append up to where it waits.
        biased;
        appended = &mut append => panic!("appended before the snapshot covering the purge was stored: {appended:?}"),
        () = std::future::ready(()) => {}
    }
    assert!(log.try_get_log_entries(41..=45).await.unwrap().is_empty(), "nothing written before the snapshot");
    let killed_waiting = tempfile::tempdir().unwrap();
    killed_copy(node.path(), killed_waiting.path());

    install(&mut sm, snapshot).await;
    let killed_installed = tempfile::tempdir().unwrap();
    killed_copy(node.path(), killed_installed.path());
    append.await.expect("the append goes ahead once the snapshot is stored");
    let killed_appended = tempfile::tempdir().unwrap();
    killed_copy(node.path(), killed_appended.path());
    drop((log, sm));

    // Killed while the append waited: the log and snapshot from before the install.
    let (_, _, committed) = start(killed_waiting.path()).await;
    assert_eq!(committed, id(25));
    // Killed after the install: openraft purges the log the snapshot covers itself.
    let (mut log, _, committed) = start(killed_installed.path()).await;
    assert_eq!(committed, id(40));
    assert_eq!(log.get_log_state().await.unwrap().last_purged_log_id, Some(id(40)));
    // Killed after the append: the purge went to disk with it, no gap.
    let (mut log, mut sm, committed) = start(killed_appended.path()).await;
    assert_eq!(committed, id(40));
    assert_eq!(sm.applied_state().await.unwrap().0, Some(id(40)));
    let state = log.get_log_state().await.unwrap();
    assert_eq!((state.last_purged_log_id, state.last_log_id), (Some(id(40)), Some(id(45))));
    let ids: Vec<u64> = log.try_get_log_entries(0..100).await.unwrap().iter().map(|e| e.log_id.index).collect();
    assert_eq!(ids, (41..=45).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_purge_the_stored_snapshot_covers_is_written_at_once() {
    let (node, killed) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut log, mut sm) = lagging_follower(node.path()).await;
    sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
    log.purge(id(15)).await.unwrap();
    killed_copy(node.path(), killed.path());
    drop((log, sm));
    let (mut log, _, committed) = start(killed.path()).await;
    assert_eq!(committed, id(25));
    assert_eq!(log.get_log_state().await.unwrap().last_purged_log_id, Some(id(15)), "on disk before it returned");
}
