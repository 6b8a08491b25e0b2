//! Running a runtime's commands with a bound on each: `timeout` kills a hung call, so a test can
//! only fail, never hang.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// Longest any single runtime command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);

/// `program args` inside network namespace `netns` (its `/var/run/netns` path) without leaving the
/// host's mount namespace (runtimes bind-mount the namespaces they create under `/run/netns`,
/// which must be seen by their later calls), bounded by [`COMMAND_TIMEOUT`].
pub fn in_netns(netns: &Path, program: &str) -> Command {
    let mut c = Command::new("timeout");
    c.arg("--kill-after=5").arg(COMMAND_TIMEOUT.as_secs().to_string());
    c.arg("nsenter").arg(format!("--net={}", netns.display())).arg("--").arg(program);
    c
}

/// Runs `cmd`; returns its stdout, panicking with its stderr (and `what`) on failure.
pub fn ok(what: &str, cmd: &mut Command) -> String {
    let out = output(what, cmd);
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd` and collects its output, whatever its exit status.
pub fn output(what: &str, cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"))
}
