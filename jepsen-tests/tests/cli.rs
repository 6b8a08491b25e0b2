//! The `jepsen-tests check` binary: output formats and exit codes.

use std::process::Command;

fn check(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_jepsen-tests"))
        .arg("check")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("binary runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn valid_history_exits_zero_with_a_table() {
    let (code, out) = check(&["testdata/valid_concurrent.jsonl"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verdict: VALID"), "{out}");
    assert!(out.contains("allocate"), "{out}");
}

#[test]
fn anomalies_exit_one_and_json_is_parseable() {
    let (code, out) = check(&["testdata/not_lowest.jsonl", "--output", "json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["verdict"], "invalid");
    assert_eq!(v["anomalies"]["not-linearizable"]["count"], 1);
}

#[test]
fn unknown_and_bad_input_have_their_own_codes() {
    let (code, _) = check(&["testdata/valid_info_applied.jsonl", "--max-states", "1"]);
    assert_eq!(code, 3);
    let (code, _) = check(&["testdata/malformed_orphan_completion.jsonl"]);
    assert_eq!(code, 4);
    let (code, _) = check(&["testdata/does-not-exist.jsonl"]);
    assert_eq!(code, 4);
}
