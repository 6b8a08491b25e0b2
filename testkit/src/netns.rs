//! Network namespaces a test creates (and always deletes), and running commands in them through
//! iproute2's `ip`: the plugin's end-to-end tests put a "host" and containers in namespaces, the
//! chaos harness puts every node in its own.

use std::ffi::OsStr;
use std::fs::File;
use std::future::Future;
use std::os::fd::AsRawFd;
use std::process::{Command, Output};

/// A command that could not run or exited non-zero.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The program could not be started (missing, not executable).
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why it could not start.
        #[source]
        source: std::io::Error,
    },
    /// It ran and exited non-zero.
    #[error("{command}: {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Its standard error, trimmed.
        stderr: String,
    },
}

/// `ip` (iproute2) by absolute path, so that a cleared environment still finds it; plain `ip`
/// (looked up in `PATH`) when none of the usual places has it.
pub fn ip_binary() -> &'static str {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("ip")
}

/// Runs `program ARGS`, returning its standard output; fails with its stderr on a non-zero exit.
pub fn run_command(program: &str, args: &[&str]) -> Result<String, CommandError> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| CommandError::Spawn { program: program.to_string(), source })?;
    if !out.status.success() {
        return Err(CommandError::Failed {
            command: format!("{program} {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `ip ARGS`.
pub fn ip(args: &[&str]) -> Result<String, CommandError> {
    run_command(ip_binary(), args)
}

/// A command that runs `program` inside namespace `netns` (`ip netns exec`, which execs the
/// program itself, so the child's pid is the program's), or directly when `netns` is `None`.
pub fn command_in(netns: Option<&str>, program: impl AsRef<OsStr>) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Command::new(ip_binary());
            c.args(["netns", "exec", ns]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// A named network namespace with its loopback up; deleted (with every process in it) on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `name`, first removing a leftover of the same name from a crashed run.
    pub fn create(name: &str) -> Result<Netns, CommandError> {
        remove(name);
        ip(&["netns", "add", name])?;
        let ns = Netns { name: name.to_string() };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Its `ip netns` name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/var/run/netns/NAME`, as `CNI_NETNS` wants it.
    pub fn path(&self) -> String {
        format!("/var/run/netns/{}", self.name)
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        command_in(Some(&self.name), program)
    }

    /// Runs `program ARGS` inside the namespace and collects its output (any exit status).
    pub fn exec(&self, program: &str, args: &[&str]) -> std::io::Result<Output> {
        self.command(program).args(args).output()
    }

    /// `ip -n NAME ARGS`.
    pub fn ip(&self, args: &[&str]) -> Result<String, CommandError> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        remove(&self.name);
    }
}

/// Kills every process in namespace `name` and deletes it; errors (it does not exist) are
/// ignored.
pub fn remove(name: &str) {
    if let Ok(pids) = ip(&["netns", "pids", name]) {
        for pid in pids.split_whitespace() {
            let _ = run_command("kill", &["-9", pid]);
        }
    }
    let _ = ip(&["netns", "del", name]);
}

/// Removes the namespaces (with their processes) and links whose names start with `prefix`,
/// left by an earlier run that crashed.
pub fn remove_leftovers(prefix: &str) {
    if let Ok(list) = ip(&["netns", "list"]) {
        for ns in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if ns.starts_with(prefix) {
                remove(ns);
            }
        }
    }
    if let Ok(links) = ip(&["-o", "link", "show"]) {
        for name in links.lines().filter_map(|l| l.split(':').nth(1)) {
            let name = name.trim().split('@').next().unwrap_or_default();
            if name.starts_with(prefix) {
                let _ = ip(&["link", "del", name]);
            }
        }
    }
}

/// Runs `make()`'s future on a fresh current-thread runtime in a thread that entered namespace
/// `netns` (if any): how a test reaches servers listening on that namespace's loopback. Panics
/// when the namespace cannot be entered.
pub fn block_on_in<T, F, Fut>(netns: Option<&str>, make: F) -> T
where
    T: Send,
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = T>,
{
    std::thread::scope(|s| {
        s.spawn(move || {
            if let Some(ns) = netns {
                let f = File::open(format!("/var/run/netns/{ns}")).unwrap_or_else(|e| panic!("netns {ns}: {e}"));
                // SAFETY: setns on a valid namespace fd only changes this thread's network namespace.
                let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
            }
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(make())
        })
        .join()
        .expect("the thread in the namespace panicked")
    })
}

/// `Ok` when this process can create namespaces (root, iproute2 present); else why not.
pub fn can_create_namespaces() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("network namespaces need root".into());
    }
    ip(&["-V"]).map(drop).map_err(|e| format!("iproute2 is needed (apt-get install iproute2): {e}"))
}
