//! openraft's own storage test suite, run against the in-memory log and state machine (as
//! `raft-store/tests/storage_suite.rs` runs it against the sled ones), plus the crash model the
//! simulation relies on: a machine opened again on the same disk resumes from its snapshot.

#![allow(clippy::result_large_err)] // openraft's StorageError is large; its suite returns it.

use std::sync::{Arc, Mutex};

use openraft::storage::RaftStateMachine;
use openraft::testing::{StoreBuilder, Suite};
use openraft::{CommittedLeaderId, EntryPayload, LogId, RaftSnapshotBuilder, StorageError};
use raft_store::types::{typ, Batch, TypeConfig};
use testkit::mem_log::MemLog;
use testkit::mem_state_machine::{MemSm, NoObserver, SmDisk};

struct MemBuilder;

impl StoreBuilder<TypeConfig, MemLog, MemSm, ()> for MemBuilder {
    async fn build(&self) -> Result<((), MemLog, MemSm), StorageError<u64>> {
        Ok(((), MemLog::default(), MemSm::fresh()))
    }
}

#[test]
fn openraft_storage_suite_passes() -> Result<(), StorageError<u64>> {
    Suite::test_all(MemBuilder)
}

fn allocation(index: u64, container: &str) -> typ::Entry {
    let spec = ipam::RangeSpec { range: "10.1.0.0/24".into(), range_start: None, range_end: None, exclude: vec![] };
    let (range, _) = ipam::Range::parse(&spec, "range").unwrap();
    let cmd = ipam::Allocate {
        network: "n".into(),
        ranges: vec![range],
        statics: Vec::new(),
        overlapping: true,
        attachment: ipam::Attachment::new(ipam::Owner::new(container, "eth0"), "test"),
    };
    let event = ipam::Event::new(ipam::Command::Allocate(cmd), 0).with_request_id(format!("r{index}"));
    typ::Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 0), index),
        payload: EntryPayload::Normal(Batch::new(vec![event], ipam::FORMAT_MIN)),
    }
}

#[tokio::test]
async fn a_machine_reopened_on_its_disk_resumes_from_its_snapshot_only() {
    let disk = Arc::new(Mutex::new(SmDisk::default()));
    let mut sm = MemSm::open(3, disk.clone(), Arc::new(NoObserver)).unwrap();
    assert!(sm.get_current_snapshot().await.unwrap().is_none());
    sm.apply([allocation(1, "a"), allocation(2, "b")]).await.unwrap();
    let built = sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
    sm.apply([allocation(3, "c")]).await.unwrap();
    assert_eq!(sm.volatile().state.allocations(None).len(), 3);
    drop(sm); // a crash: what was applied after the snapshot is gone with the memory

    let mut again = MemSm::open(3, disk, Arc::new(NoObserver)).unwrap();
    let current = again.get_current_snapshot().await.unwrap().expect("the snapshot survived");
    assert_eq!(current.meta, built.meta);
    let (applied, _) = again.applied_state().await.unwrap();
    assert_eq!(applied.map(|l| l.index), Some(2));
    assert_eq!(again.volatile().state.allocations(None).len(), 2);
}
