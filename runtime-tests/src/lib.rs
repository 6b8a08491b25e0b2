//! Machinery for running the `whereabouts` plugin under real container runtimes nobody here wrote
//! (podman 4 with its CNI backend, containerd's CRI plugin): a private network namespace holding a
//! 3-node cluster, the runtime and its bridge, so nothing of the host's network is touched; a
//! busybox image built locally (nothing is pulled); bounded commands; and clean-up of what the
//! runtimes leave outside the namespace (mounts under the work directory, cgroup directories).
//!
//! The tests in `tests/` need root (namespaces, runtimes); not root, they say so and skip. As root,
//! a missing runtime is a failure naming the Debian package, never a skip.

pub mod binaries;
pub mod command;
pub mod host;
pub mod image;

/// True when the tests can run here; otherwise prints why they are skipped.
pub fn runnable(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("{test}: skipped: container runtimes and network namespaces need root (CI runs as root)");
        return false;
    }
    true
}
