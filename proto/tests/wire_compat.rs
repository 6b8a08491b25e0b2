//! The gRPC contract stays wire-compatible with every release: the current `proto/` (as built,
//! `proto::FILE_DESCRIPTOR_SET`) compared with each baseline in `compat/` shows no breaking change.
//! `wire_compat/diff.rs` is the comparison; `wire_compat/diff_cases.rs` shows that each of its
//! rules reports what it should and nothing else.

#[path = "wire_compat/diff.rs"]
mod diff;
#[path = "wire_compat/diff_cases.rs"]
mod diff_cases;

use std::path::Path;

use prost::Message;
use prost_types::FileDescriptorSet;

/// A baseline file's release, from its name (`0.1.0.binpb`).
type Version = (u64, u64, u64);

fn parse_version(text: &str) -> Option<Version> {
    let mut parts = text.split('.').map(|p| p.parse::<u64>().ok());
    let version = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(version)
}

/// Every baseline in `compat/`, oldest first. Panics on a file there that is neither the README
/// nor a `<major>.<minor>.<patch>.binpb` that decodes: a misnamed baseline must not go unchecked.
fn baselines() -> Vec<(Version, FileDescriptorSet)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("compat");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("read compat/") {
        let path = entry.expect("list compat/").path();
        let name = path.file_name().and_then(|n| n.to_str()).expect("file name").to_string();
        if name == "README.md" {
            continue;
        }
        let version = name
            .strip_suffix(".binpb")
            .and_then(parse_version)
            .unwrap_or_else(|| panic!("compat/{name} is not named <major>.<minor>.<patch>.binpb"));
        let bytes = std::fs::read(&path).expect("read baseline");
        let set = FileDescriptorSet::decode(bytes.as_slice())
            .unwrap_or_else(|e| panic!("compat/{name} is no FileDescriptorSet: {e}"));
        found.push((version, set));
    }
    found.sort_by_key(|(version, _)| *version);
    found
}

fn current() -> FileDescriptorSet {
    FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET).expect("decode FILE_DESCRIPTOR_SET")
}

fn show((major, minor, patch): Version) -> String {
    format!("{major}.{minor}.{patch}")
}

#[test]
fn current_tree_breaks_no_release() {
    let current = current();
    let mut failures = Vec::new();
    for (version, baseline) in baselines() {
        for change in diff::breaking_changes(&baseline, &current) {
            failures.push(format!("against {}: {change}", show(version)));
        }
    }
    assert!(
        failures.is_empty(),
        "proto/ breaks the wire contract of a release (see docs/operations.md, \"Wire \
         compatibility\"):\n{}",
        failures.join("\n")
    );
}

#[test]
fn baselines_are_releases_with_content() {
    let baselines = baselines();
    let versions: Vec<Version> = baselines.iter().map(|(v, _)| *v).collect();
    assert!(versions.contains(&(0, 1, 0)), "compat/0.1.0.binpb is missing: {versions:?}");
    let crate_version = parse_version(env!("CARGO_PKG_VERSION")).expect("crate version");
    for (version, set) in &baselines {
        assert!(*version <= crate_version, "compat/{} is newer than this crate", show(*version));
        // An empty set would make the comparison vacuous.
        let services = set.file.iter().map(|f| f.service.len()).sum::<usize>();
        let messages = set.file.iter().map(|f| f.message_type.len()).sum::<usize>();
        assert!(services > 0 && messages > 0, "compat/{} holds no contract", show(*version));
    }
}

#[test]
fn built_descriptor_set_is_the_tree_of_both_files() {
    let names: Vec<String> = current().file.iter().map(|f| f.name().to_string()).collect();
    assert_eq!(names, ["ipam.proto", "raft.proto"]);
}
