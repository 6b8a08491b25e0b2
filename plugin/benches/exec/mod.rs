//! What the plugin benches share: one CNI call exec'd as a container runtime does it, and
//! latency series with their quantiles.

#![allow(dead_code)] // each bench uses a part of it

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Debian's `host-local`, the reference both benches run beside ours.
pub const HOST_LOCAL: &str = "/usr/lib/cni/host-local";

/// Runs `binary` once as a runtime would (`CNI_*` variables, the config on stdin, `NODE_NAME`
/// only when given) and returns its wall time and output; panics when it cannot be spawned.
pub fn exec(
    binary: &str,
    command: &str,
    container: &str,
    pod: &str,
    node: Option<&str>,
    stdin: &str,
) -> (Duration, Output) {
    let start = Instant::now();
    let cni_args = format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME={pod}");
    let mut cmd = Command::new(binary);
    cmd.env_clear()
        .envs([
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", container),
            ("CNI_NETNS", "/var/run/netns/bench"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", "/usr/lib/cni"),
            ("CNI_ARGS", cni_args.as_str()),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(node) = node {
        cmd.env("NODE_NAME", node);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{binary}: {e}"));
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("stdin");
    let out = child.wait_with_output().expect("wait");
    (start.elapsed(), out)
}

/// [`exec`] that must succeed: its wall time and stdout; panics with the plugin's output otherwise.
pub fn call(
    binary: &str,
    command: &str,
    container: &str,
    pod: &str,
    node: Option<&str>,
    stdin: &str,
) -> (Duration, String) {
    let (elapsed, out) = exec(binary, command, container, pod, node, stdin);
    assert!(
        out.status.success(),
        "{binary} {command} {container} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (elapsed, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One named series of call latencies.
pub struct Series {
    pub name: String,
    pub samples: Vec<Duration>,
}

impl Series {
    pub fn new(name: &str) -> Series {
        Series { name: name.to_string(), samples: Vec::new() }
    }

    /// The `q` quantile (nearest rank); panics on an empty series.
    pub fn quantile(&self, q: f64) -> Duration {
        let mut s = self.samples.clone();
        s.sort();
        s[((s.len() as f64 - 1.0) * q).round() as usize]
    }

    pub fn mean(&self) -> Duration {
        self.samples.iter().sum::<Duration>() / self.samples.len() as u32
    }
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}
