//! Snapshot and backup decoding (`ipam::snapshot::decode`,
//! `raft_store::decode_backup`): arbitrary bytes give an error or a state that keeps every
//! invariant and encodes back canonically; the same bytes wrapped in a well-formed backup header
//! are accepted exactly when they decode as a snapshot.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ipam::snapshot;
use raft_store::{decode_backup, encode_backup, BackupHeader};
use whereabouts_fuzz::{check_state, snapshot_round_trip};

fuzz_target!(|data: &[u8]| {
    let decoded = snapshot::decode(data);
    if let Ok(state) = &decoded {
        check_state(state);
        snapshot_round_trip(state);
    }
    let _ = decode_backup(data);
    let header = BackupHeader {
        format: String::new(),
        version: 0,
        cluster: "fuzz".into(),
        applied_index: 1,
        applied_term: 1,
        taken_at_ms: 0,
        allocations: decoded.as_ref().map_or(0, |s| s.allocation_count() as u64),
        data_len: 0,
        crc32: 0,
    };
    let file = encode_backup(header, data);
    match decode_backup(&file) {
        Ok((_, body)) => {
            assert!(decoded.is_ok(), "a backup of undecodable data was accepted");
            assert_eq!(body, data);
        }
        Err(e) => assert!(decoded.is_err(), "a backup of a valid snapshot was refused: {e}"),
    }
});
