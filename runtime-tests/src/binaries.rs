//! The binaries under test, found in the target directory the test runs from (the `plugin` and
//! `cluster` crates build them: `cargo build -p plugin -p cluster --bins`), and the runtime tools
//! each test needs, with the Debian package that provides them.

use std::path::{Path, PathBuf};

/// `whereabouts` (the CNI plugin) next to the running test's profile directory, or
/// `$WHEREABOUTS_PLUGIN_BIN`. Panics with how to build it when absent.
pub fn plugin() -> PathBuf {
    testkit::node_binary::locate_binary("whereabouts", "WHEREABOUTS_PLUGIN_BIN", "plugin")
}

/// Panics unless every program in `tools` (absolute paths) exists, naming the package to install.
pub fn require(tools: &[(&str, &str)]) {
    let missing: Vec<String> = tools
        .iter()
        .filter(|(path, _)| !Path::new(path).exists())
        .map(|(path, package)| format!("{path} (apt-get install {package})"))
        .collect();
    assert!(missing.is_empty(), "missing: {}", missing.join(", "));
}
