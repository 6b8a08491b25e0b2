//! Crafted histories in `testdata/`: each anomaly is reported, valid histories pass.

use std::path::PathBuf;

use jepsen_tests::checker::{check_file, AnomalyKind, CheckOptions, LinStatus, Report, Verdict};
use jepsen_tests::history::HistoryError;

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata").join(format!("{name}.jsonl"))
}

fn check(name: &str) -> Report {
    check_file(&path(name), &CheckOptions::default()).expect("history parses")
}

fn assert_valid(name: &str) {
    let r = check(name);
    assert_eq!(r.verdict, Verdict::Valid, "{name}:\n{r}");
    assert!(r.linearizability.iter().all(|v| v.status == LinStatus::Linearizable));
}

fn assert_reports(name: &str, kind: AnomalyKind) -> Report {
    let r = check(name);
    assert_eq!(r.verdict, Verdict::Invalid, "{name}:\n{r}");
    assert!(r.count(kind) > 0, "{name}: no {kind:?}:\n{r}");
    r
}

#[test]
fn valid_concurrent_history_passes() {
    assert_valid("valid_concurrent");
    let r = check("valid_concurrent");
    assert_eq!(r.final_reads, 3);
    assert_eq!(r.nemesis.get("partition"), Some(&1));
    assert_eq!(r.ops["allocate"]["ok"], 4);
    let last = r.liveness.last().expect("a heal");
    assert_eq!((last.fault.as_str(), last.recovery_ns), ("heal", Some(2_000_000)));
}

#[test]
fn info_allocate_that_took_effect_passes() {
    assert_valid("valid_info_applied");
}

#[test]
fn info_ops_that_never_took_effect_fail_ops_and_exhaustion_pass() {
    assert_valid("valid_info_not_applied");
}

#[test]
fn duplicate_address_is_reported() {
    let r = assert_reports("duplicate_address", AnomalyKind::DuplicateAddress);
    let msg = &r.anomalies[&AnomalyKind::DuplicateAddress].examples[0].message;
    assert!(msg.contains("n1/10.1.0.1"), "{msg}");
    assert!(r.count(AnomalyKind::NotLinearizable) > 0);
}

#[test]
fn lost_allocation_is_reported_once_per_final_read() {
    let r = assert_reports("lost_allocation", AnomalyKind::LostAllocation);
    assert_eq!(r.count(AnomalyKind::LostAllocation), 2);
    assert_eq!(r.count(AnomalyKind::DivergingFinalTables), 0);
}

#[test]
fn undone_releases_are_reported() {
    let r = assert_reports("undone_release", AnomalyKind::UndoneRelease);
    // c0's range release and (through the same table) nothing for c1's release-ip: 10.1.0.1 is c0's.
    assert_eq!(r.count(AnomalyKind::UndoneRelease), 1);
    assert!(r.count(AnomalyKind::NotLinearizable) > 0);
}

#[test]
fn stale_per_owner_read_is_not_linearizable() {
    let r = assert_reports("stale_read", AnomalyKind::NotLinearizable);
    let a = &r.anomalies[&AnomalyKind::NotLinearizable].examples[0];
    assert_eq!(a.events, vec![4, 5], "the read is the culprit: {}", a.message);
    assert_eq!(r.anomaly_count(), 1, "{r}");
}

#[test]
fn not_lowest_allocation_is_not_linearizable() {
    let r = assert_reports("not_lowest", AnomalyKind::NotLinearizable);
    let a = &r.anomalies[&AnomalyKind::NotLinearizable].examples[0];
    assert_eq!(a.events, vec![2, 3]);
    assert!(a.message.contains("observed [10.1.0.3]"), "{}", a.message);
    assert!(a.message.contains("model gives [10.1.0.2]"), "{}", a.message);
    assert_eq!(r.anomaly_count(), 1, "{r}");
}

#[test]
fn diverging_final_tables_and_failed_final_read_are_reported() {
    let r = assert_reports("diverging_final_tables", AnomalyKind::DivergingFinalTables);
    let msg = &r.anomalies[&AnomalyKind::DivergingFinalTables].examples[0].message;
    assert!(msg.contains("10.1.0.5 none vs ghost/eth0"), "{msg}");
    assert_eq!(r.count(AnomalyKind::FinalReadFailed), 1);
}

#[test]
fn a_member_that_stopped_replicating_is_reported_three_ways() {
    // A member rolled back to a release that cannot read the log: its roll stalled, the members
    // never converged, and its local final table misses what it could not apply.
    let r = assert_reports("stale_member", AnomalyKind::RollStalled);
    assert_eq!(r.count(AnomalyKind::RollStalled), 1, "{r}");
    assert_eq!(r.count(AnomalyKind::NotConverged), 1, "{r}");
    assert_eq!(r.count(AnomalyKind::DivergingFinalTables), 1, "{r}");
    assert_eq!(r.count(AnomalyKind::LostAllocation), 1, "{r}");
    let msg = &r.anomalies[&AnomalyKind::DivergingFinalTables].examples[0].message;
    assert!(msg.contains("10.1.0.2 c1/eth0 vs none"), "{msg}");
}

#[test]
fn members_that_did_not_converge_fail_the_run_even_with_equal_tables() {
    let r = assert_reports("not_converged", AnomalyKind::NotConverged);
    assert_eq!(r.anomaly_count(), 1, "{r}");
    assert_eq!(r.anomalies[&AnomalyKind::NotConverged].examples[0].events, vec![2]);
}

#[test]
fn no_ok_after_the_last_resume_is_reported() {
    let r = assert_reports("no_recovery", AnomalyKind::NoRecovery);
    assert_eq!(r.liveness.last().map(|l| l.fault.as_str()), Some("resume"));
}

#[test]
fn slow_recovery_needs_a_limit() {
    let opts = CheckOptions { max_recovery: Some(std::time::Duration::from_millis(1)), ..CheckOptions::default() };
    let r = check_file(&path("valid_concurrent"), &opts).unwrap();
    assert_eq!(r.count(AnomalyKind::SlowRecovery), 1, "{r}");
}

#[test]
fn search_bound_gives_unknown_not_valid() {
    let opts = CheckOptions { max_states: 1, ..CheckOptions::default() };
    let r = check_file(&path("valid_info_applied"), &opts).unwrap();
    assert_eq!(r.verdict, Verdict::Unknown, "{r}");
    assert_eq!(r.verdict.exit_code(), 3);
}

#[test]
fn orphan_completion_is_malformed() {
    let err = check_file(&path("malformed_orphan_completion"), &CheckOptions::default());
    assert!(matches!(err, Err(HistoryError::Malformed { index: 0, .. })));
}

#[test]
fn json_report_round_trips() {
    let r = check("lost_allocation");
    let text = serde_json::to_string(&r).unwrap();
    assert!(text.contains("\"lost-allocation\""));
    let back: Report = serde_json::from_str(&text).unwrap();
    assert_eq!(back, r);
}
