//! Network namespaces the test creates (and always deletes), and running commands in them.

#![allow(dead_code)]

use std::process::{Command, Output};

use super::cluster::ip_binary;

/// Runs `ip ARGS`; panics with its stderr on failure.
pub fn ip(args: &[&str]) -> String {
    let out = Command::new(ip_binary()).args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named network namespace with its loopback up; deleted on drop.
pub struct Netns {
    /// Its name (`ip netns` name).
    pub name: String,
}

impl Netns {
    /// Creates `name` (deleting a leftover of the same name from a crashed run first).
    pub fn create(name: &str) -> Netns {
        assert!(name.len() <= 32, "netns name too long: {name}");
        let _ = Command::new(ip_binary()).args(["netns", "del", name]).output();
        ip(&["netns", "add", name]);
        let ns = Netns { name: name.to_string() };
        ip(&["-n", name, "link", "set", "lo", "up"]);
        ns
    }

    /// `/var/run/netns/NAME`, as `CNI_NETNS`.
    pub fn path(&self) -> String {
        format!("/var/run/netns/{}", self.name)
    }

    /// Runs `program ARGS` inside the namespace.
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        Command::new(ip_binary())
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .output()
            .expect("ip netns exec")
    }

    /// `ip -n NAME ARGS`.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new(ip_binary()).args(["netns", "del", &self.name]).output();
    }
}

/// True when the test can create namespaces (root, iproute2 present).
pub fn can_create_namespaces() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("end-to-end tests need root (network namespaces)".into());
    }
    ip_binary();
    Ok(())
}
