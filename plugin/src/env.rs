//! The edges of a CNI invocation, injectable (as libcni's `skel` makes `Getenv`, stdin and stdout
//! replaceable): environment variables, stdin, stdout, stderr, the files the plugin reads (flat
//! file, certificate), the host name and the default state directory. [`Env::process`] is the real
//! one; tests build their own.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::config::FileSource;

/// A cloneable, thread-safe writer (stdout, stderr, or a log file): tracing and the command share it.
#[derive(Clone)]
pub struct SharedWriter(Arc<Mutex<Box<dyn Write + Send>>>);

impl SharedWriter {
    /// Wraps `w`.
    pub fn new(w: impl Write + Send + 'static) -> SharedWriter {
        SharedWriter(Arc::new(Mutex::new(Box::new(w))))
    }
}

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

/// Reads files from the real file system (the flat file lookup of whereabouts).
pub struct RealFiles;

impl FileSource for RealFiles {
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Everything a CNI invocation reads from or writes to the outside world.
pub struct Env {
    /// Environment variables (`CNI_*`, `NODE_NAME`, ...).
    pub vars: HashMap<String, String>,
    /// The network configuration.
    pub stdin: Box<dyn Read + Send>,
    /// True when stdin is a terminal: VERSION then does not wait for input.
    pub stdin_is_terminal: bool,
    /// Only the CNI result or error goes here.
    pub stdout: SharedWriter,
    /// Logs when no `log_file` is configured.
    pub stderr: SharedWriter,
    /// Where the flat configuration file is looked up.
    pub files: Box<dyn FileSource + Send + Sync>,
    /// The host name, the last fallback for the node name.
    pub hostname: Option<String>,
    /// Where DELs that could not reach the cluster wait, unless `ipam.state_dir` says otherwise.
    pub state_dir: PathBuf,
}

impl Env {
    /// The real process environment, stdio and file system.
    pub fn process() -> Env {
        use std::io::IsTerminal;
        Env {
            vars: std::env::vars().collect(),
            stdin_is_terminal: io::stdin().is_terminal(),
            stdin: Box::new(io::stdin()),
            stdout: SharedWriter::new(io::stdout()),
            stderr: SharedWriter::new(io::stderr()),
            files: Box::new(RealFiles),
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .or_else(|_| std::fs::read_to_string("/etc/hostname"))
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty()),
            state_dir: PathBuf::from(crate::pending::DEFAULT_STATE_DIR),
        }
    }

    /// The value of `name` unless unset or empty.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The contents of `path` through [`Env::files`], `None` when missing or unreadable.
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        self.files.read(path).ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)], hostname: Option<&str>) -> Env {
        Env {
            vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            stdin: Box::new(io::empty()),
            stdin_is_terminal: false,
            stdout: SharedWriter::new(io::sink()),
            stderr: SharedWriter::new(io::sink()),
            files: Box::new(crate::config::NoFiles),
            hostname: hostname.map(str::to_string),
            state_dir: PathBuf::from("/nonexistent"),
        }
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let e = env(&[("NODE_NAME", ""), ("KUBERNETES_NODE_NAME", "b")], Some("h"));
        assert_eq!((e.var("NODE_NAME"), e.var("KUBERNETES_NODE_NAME")), (None, Some("b")));
        assert_eq!(e.read_file(Path::new("/x")), None);
    }

    #[test]
    fn real_files_report_missing_as_none() {
        assert!(RealFiles.read(Path::new("/nonexistent/whereabouts.conf")).unwrap().is_none());
        let dir = std::env::temp_dir().join(format!("wb-env-test-{}", std::process::id()));
        std::fs::write(&dir, b"{}").unwrap();
        assert_eq!(RealFiles.read(&dir).unwrap(), Some(b"{}".to_vec()));
        std::fs::remove_file(&dir).unwrap();
    }
}
