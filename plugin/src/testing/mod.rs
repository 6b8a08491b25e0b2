//! Test doubles (feature `testing`, on for this crate's tests): an in-process mock of the IPAM
//! gRPC service with scripted replies ([`MockIpam`], [`MockServer`]), endpoints that refuse or
//! never answer, and an [`Env`] whose stdio are in-memory buffers and whose files are a map
//! ([`fake_env`], [`env_with_files`], [`invoke`]).

mod mock_ipam;
mod mock_server;

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use mock_ipam::{MockIpam, MockState, Reply};
pub use mock_server::{refused_endpoint, MockServer, SilentServer};

pub use crate::config::MapFiles;
use crate::env::{Env, SharedWriter};
use crate::ClientFactory;

/// The state directory of in-process test invocations (one per test process).
pub fn test_state_dir() -> PathBuf {
    std::env::temp_dir().join(format!("wb-plugin-test-state-{}", std::process::id()))
}

/// An [`Env`] with `vars`, `files` (path, contents), host name `hostname`, empty stdin and
/// discarded output.
pub fn env_with_files(vars: &[(&str, &str)], files: &[(&str, &str)], hostname: Option<&str>) -> Env {
    let (mut env, _, _) = fake_env(vars, "");
    env.files = Box::new(MapFiles(files.iter().map(|(p, c)| (PathBuf::from(p), c.as_bytes().to_vec())).collect()));
    env.hostname = hostname.map(str::to_string);
    env
}

/// A writer that keeps what was written, readable while shared.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An [`Env`] with `vars`, `stdin`, no flat file, host name `test-host`, and captured stdout and
/// stderr.
pub fn fake_env(vars: &[(&str, &str)], stdin: &str) -> (Env, Capture, Capture) {
    let (out, err) = (Capture::default(), Capture::default());
    let env = Env {
        vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        stdin: Box::new(io::Cursor::new(stdin.as_bytes().to_vec())),
        stdin_is_terminal: false,
        stdout: SharedWriter::new(out.clone()),
        stderr: SharedWriter::new(err.clone()),
        files: Box::new(crate::config::NoFiles),
        hostname: Some("test-host".into()),
        state_dir: test_state_dir(),
    };
    (env, out, err)
}

/// What one invocation produced.
#[derive(Debug)]
pub struct Outcome {
    /// Exit status.
    pub code: i32,
    /// Stdout.
    pub stdout: String,
    /// Stderr (logs when no `log_file`).
    pub stderr: String,
}

impl Outcome {
    /// Stdout parsed as JSON (panics with the output if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}\nstderr: {}", self.stdout, self.stderr))
    }

    /// The CNI error code printed (panics if the invocation succeeded).
    pub fn error_code(&self) -> u64 {
        assert_ne!(self.code, 0, "expected a failure, got {}", self.stdout);
        self.json()["code"].as_u64().expect("error JSON has a code")
    }
}

/// Runs the plugin once with `vars` and `stdin` through `factory`.
pub fn invoke(vars: &[(&str, &str)], stdin: &str, factory: &dyn ClientFactory) -> Outcome {
    let (env, out, err) = fake_env(vars, stdin);
    let code = crate::run(env, factory);
    Outcome { code, stdout: out.text(), stderr: err.text() }
}
