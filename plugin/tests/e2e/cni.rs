//! Executing CNI plugins as a runtime does: one process per call, parameters in the
//! environment, configuration on stdin, bounded in time. Plugins run inside the test's "host"
//! namespace so that everything they create (bridges, veths) stays in namespaces the test owns.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::netns::command_in;

/// Debian's CNI plugins.
pub const DEBIAN_CNI_DIR: &str = "/usr/lib/cni";
/// Our binary.
pub const WHEREABOUTS: &str = env!("CARGO_BIN_EXE_whereabouts");
/// The node name every invocation reports.
pub const NODE: &str = "e2e-node";

/// `CNI_PATH`: our binary's directory, then Debian's plugins.
pub fn cni_path() -> String {
    let ours = Path::new(WHEREABOUTS).parent().expect("binary dir");
    format!("{}:{DEBIAN_CNI_DIR}", ours.display())
}

/// A Debian plugin by name; panics if `containernetworking-plugins` is not installed.
pub fn debian_plugin(name: &str) -> PathBuf {
    let p = Path::new(DEBIAN_CNI_DIR).join(name);
    assert!(p.is_file(), "{} not found: apt-get install containernetworking-plugins", p.display());
    p
}

/// One CNI call.
pub struct Call<'a> {
    /// `CNI_COMMAND`.
    pub command: &'a str,
    /// `CNI_CONTAINERID`.
    pub container_id: &'a str,
    /// `CNI_NETNS` ("" for none).
    pub netns: &'a str,
    /// `CNI_IFNAME`.
    pub ifname: &'a str,
    /// Extra variables (`NODE_NAME`, ...).
    pub env: Vec<(&'a str, &'a str)>,
}

impl<'a> Call<'a> {
    /// A call with the usual interface name and this test's node.
    pub fn new(command: &'a str, container_id: &'a str, netns: &'a str) -> Call<'a> {
        Call { command, container_id, netns, ifname: "eth0", env: vec![("NODE_NAME", NODE)] }
    }
}

/// What a plugin printed and returned.
#[derive(Debug)]
pub struct Outcome {
    /// Exit status.
    pub code: i32,
    /// Stdout as JSON (`Null` if empty).
    pub json: Value,
    /// Stdout as text.
    pub stdout: String,
    /// Stderr.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
}

impl Outcome {
    /// Panics unless the call succeeded.
    pub fn ok(self) -> Outcome {
        assert_eq!(self.code, 0, "plugin failed: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }

    /// The CNI error code printed.
    pub fn error_code(&self) -> u64 {
        assert_ne!(self.code, 0, "expected a failure, got {}", self.stdout);
        self.json["code"]
            .as_u64()
            .unwrap_or_else(|| panic!("no error code in {}\nstderr: {}", self.stdout, self.stderr))
    }
}

/// Runs `plugin` (inside namespace `host` when given) with `call` and `stdin`; kills it after
/// `timeout` and panics.
pub fn exec(plugin: &Path, host: Option<&str>, call: &Call, stdin: &str, timeout: Duration) -> Outcome {
    let mut cmd = command_in(host, plugin);
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("CNI_COMMAND", call.command)
        .env("CNI_CONTAINERID", call.container_id)
        .env("CNI_NETNS", call.netns)
        .env("CNI_IFNAME", call.ifname)
        .env("CNI_PATH", cni_path())
        .env(
            "CNI_ARGS",
            format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=e2e;K8S_POD_NAME={};K8S_POD_UID=uid-{0}", call.container_id),
        )
        .envs(call.env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {}: {e}", plugin.display()));
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{} {} did not finish within {timeout:?}\nstdout: {}\nstderr: {}",
                plugin.display(),
                call.command,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().expect("output");
    let elapsed = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json =
        if stdout.trim().is_empty() { Value::Null } else { serde_json::from_str(&stdout).unwrap_or(Value::Null) };
    Outcome {
        code: out.status.code().unwrap_or(-1),
        json,
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed,
    }
}
