//! openraft's own storage test suite, run against our sled log and state machine, plus
//! restart checks: what was flushed survives reopening, and a snapshot bounds what is replayed.

#![allow(clippy::result_large_err)] // openraft's StorageError is large; its suite returns it.

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{RaftSnapshotBuilder, StorageError};
use raft_store::types::TypeConfig;
use raft_store::{LogStore, StateMachineStore};
use tempfile::TempDir;

struct SledBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for SledBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let raft_store::Opened { log, state_machine: sm, .. } =
            raft_store::open(dir.path(), "test", 0).expect("open store");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite_passes() -> Result<(), StorageError<u64>> {
    Suite::test_all(SledBuilder)
}

#[tokio::test]
async fn vote_and_snapshot_survive_reopen_and_a_foreign_identity_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let vote = openraft::Vote::new(3, 1);
    {
        let raft_store::Opened { mut log, state_machine: mut sm, .. } =
            raft_store::open(dir.path(), "test", 1).unwrap();
        log.save_vote(&vote).await.unwrap();
        let mut builder = sm.get_snapshot_builder().await;
        builder.build_snapshot().await.unwrap();
    }
    let raft_store::Opened { mut log, state_machine: mut sm, .. } = raft_store::open(dir.path(), "test", 1).unwrap();
    assert_eq!(log.read_vote().await.unwrap(), Some(vote));
    assert!(sm.get_current_snapshot().await.unwrap().is_some());
    drop((log, sm));
    let err = raft_store::open(dir.path(), "test", 2).unwrap_err();
    assert!(err.to_string().contains("belongs to node 1 of cluster \"test\""), "{err}");
    let err = raft_store::open(dir.path(), "other", 1).unwrap_err();
    assert!(err.to_string().contains("not node 1 of cluster \"other\""), "{err}");
}
