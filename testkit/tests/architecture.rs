//! The workspace's architecture, checked: crates depend on each other in one direction and only on
//! what their job needs (from `cargo metadata`), and no two sibling modules of a crate import each
//! other (from a scan of the sources, see `testkit::module_graph`). A new cycle or a new arrow from
//! the domain to storage, network or CNI code fails here, naming the files and lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use testkit::module_graph::ModuleGraph;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("testkit sits in the workspace root").to_path_buf()
}

/// Normal (non-dev, non-build) dependencies of every workspace package, by package name.
fn metadata() -> (BTreeMap<String, BTreeSet<String>>, BTreeMap<String, PathBuf>) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Only this platform's dependencies: the others' sources need not be on this machine.
    let rustc = Command::new("rustc").arg("-vV").output().expect("run rustc -vV");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("rustc -vV names the host");
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--filter-platform", &host])
        .current_dir(workspace_root())
        .output()
        .expect("run cargo metadata");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    let members: BTreeSet<&str> =
        meta["workspace_members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    let mut names = BTreeMap::new();
    let mut srcs = BTreeMap::new();
    for p in meta["packages"].as_array().unwrap() {
        names.insert(p["id"].as_str().unwrap().to_string(), p["name"].as_str().unwrap().to_string());
        if members.contains(p["id"].as_str().unwrap()) {
            let manifest = PathBuf::from(p["manifest_path"].as_str().unwrap());
            srcs.insert(p["name"].as_str().unwrap().to_string(), manifest.parent().unwrap().join("src"));
        }
    }
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let name = &names[node["id"].as_str().unwrap()];
        let normal: BTreeSet<String> = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].is_null()))
            .map(|d| names[d["pkg"].as_str().unwrap()].clone())
            .collect();
        deps.entry(name.clone()).or_default().extend(normal);
    }
    (deps, srcs)
}

/// Every package `name` reaches through normal dependencies.
fn closure(deps: &BTreeMap<String, BTreeSet<String>>, name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![name.to_string()];
    while let Some(n) = todo.pop() {
        for d in deps.get(&n).into_iter().flatten() {
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    seen
}

#[test]
fn crates_depend_only_on_what_their_job_needs() {
    let (deps, _) = metadata();
    let mut problems = Vec::new();
    // The domain: pure, no I/O crates at all.
    let allowed: BTreeSet<&str> = ["ipnet", "serde", "thiserror", "hashbrown", "postcard"].into();
    for d in &deps["ipam"] {
        if !allowed.contains(d.as_str()) {
            problems.push(format!("ipam (the pure domain) depends on {d}"));
        }
    }
    let forbid = |krate: &str, what: &str, banned: &[&str], problems: &mut Vec<String>| {
        for b in closure(&deps, krate).intersection(&banned.iter().map(|s| s.to_string()).collect()) {
            problems.push(format!("{krate} ({what}) reaches {b}"));
        }
    };
    forbid(
        "ipam",
        "the pure domain",
        &["tokio", "sled", "tonic", "openraft", "proto", "raft-store", "plugin"],
        &mut problems,
    );
    forbid("raft-store", "storage", &["tonic", "proto", "cluster", "plugin", "hyper", "kube"], &mut problems);
    forbid("plugin", "the CNI plugin", &["sled", "openraft", "raft-store", "cluster", "kube"], &mut problems);
    forbid(
        "proto",
        "the wire contract",
        &["ipam", "raft-store", "cluster", "plugin", "sled", "openraft"],
        &mut problems,
    );
    forbid(
        "loadgen",
        "shared by the reference bench",
        &["ipam", "proto", "raft-store", "cluster", "plugin"],
        &mut problems,
    );
    forbid("bench-reference", "the reference bench", &["ipam", "raft-store", "cluster", "plugin"], &mut problems);
    for product in ["ipam", "raft-store", "proto", "cluster", "plugin"] {
        forbid(product, "a product crate", &["testkit", "jepsen-tests"], &mut problems);
    }
    assert!(problems.is_empty(), "dependency rules broken:\n{}", problems.join("\n"));
}

#[test]
fn no_two_sibling_modules_of_a_crate_import_each_other() {
    let (_, srcs) = metadata();
    let mut cycles = Vec::new();
    for (name, src) in &srcs {
        let graph = ModuleGraph::read(src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
        assert!(!graph.modules.is_empty(), "{name}: no modules read under {}", src.display());
        cycles.extend(graph.sibling_cycles().into_iter().map(|c| format!("{name}: {c}")));
    }
    assert!(cycles.is_empty(), "import cycles between modules:\n{}", cycles.join("\n"));
}

#[test]
fn the_domain_reads_no_clock_randomness_or_io() {
    let (_, srcs) = metadata();
    let banned = [
        "SystemTime",
        "Instant::now",
        "std::fs",
        "std::net::Tcp",
        "std::net::Udp",
        "rand::",
        "std::env::var",
        "std::process",
    ];
    let mut found = Vec::new();
    let graph = ModuleGraph::read(&srcs["ipam"]).unwrap();
    for file in graph.modules.values() {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            let code = line.split("//").next().unwrap_or("");
            for b in banned {
                if code.contains(b) {
                    found.push(format!("{}:{}: {b}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "the domain must stay pure (no clock, randomness or I/O):\n{}", found.join("\n"));
}
