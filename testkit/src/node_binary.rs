//! Finding the `whereabouts-node` binary from a crate that cannot name it with
//! `env!("CARGO_BIN_EXE_whereabouts-node")` (only the `cluster` crate's own tests can): the
//! plugin's tests and benchmark.

use std::path::PathBuf;

/// Environment variable naming the node binary.
pub const NODE_BIN_ENV: &str = "WHEREABOUTS_NODE_BIN";

/// `$WHEREABOUTS_NODE_BIN`, else `whereabouts-node` in the target profile directory of the
/// running test or bench (`target/<profile>/deps/..`). Panics with "whereabouts-node binary not
/// found at …" and how to build it when absent: a missing binary is a failure, never a skip.
pub fn locate() -> PathBuf {
    locate_binary("whereabouts-node", NODE_BIN_ENV, "cluster")
}

/// `$env`, else binary `name` (built by crate `package`) in the target profile directory of the
/// running test or bench. Panics with where it looked and how to build it when absent.
pub fn locate_binary(name: &str, env: &str, package: &str) -> PathBuf {
    let path = match std::env::var_os(env) {
        Some(p) => PathBuf::from(p),
        None => {
            let exe = std::env::current_exe().expect("current exe");
            let dir = exe.parent().expect("exe dir");
            let profile_dir = if dir.ends_with("deps") { dir.parent().expect("profile dir") } else { dir };
            profile_dir.join(name)
        }
    };
    assert!(
        path.is_file(),
        "{name} binary not found at {} (build it with `cargo build -p {package} --bin {name}` into the same target \
         directory, or set {env})",
        path.display()
    );
    path
}
