//! The nodes' disks on the power-loss filesystem (`jepsen-tests/lazyfs`): one `lazyfs mount`
//! process per node, mounted on the node's data directory before the node first starts, its
//! backing directory in `results/<run>/lazyfs/backing-<id>`. A power cut ([`Disks::cut`]) drops
//! what the node did not fsync; [`Disks::set_delay`] makes its fsyncs slow.
//!
//! The mounts are made in the root namespace; `ip netns exec` gives every node process a copy of
//! that mount namespace (made when the node starts), so a node sees the mount made before it
//! started. Dropping [`Disks`] (after the nodes were killed) ends every mount: SIGTERM (lazyfs
//! unmounts and exits), a bounded wait, then SIGKILL and a lazy unmount. [`Disks::new`] first
//! detaches mounts a crashed run left behind.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use lazyfs::{Client, CutReport, Status};

/// How long a mount may take to come up, or to end after SIGTERM.
const MOUNT_WAIT: Duration = Duration::from_secs(20);
/// How long a cut waits for the killed node's file handles to be released.
pub const CUT_WAIT: Duration = Duration::from_secs(15);
/// The name every backing directory starts with (leftover detection keys on it).
const BACKING: &str = "backing-";

/// One node's mount.
#[derive(Debug)]
struct Mount {
    child: Child,
    mountpoint: PathBuf,
    backing: PathBuf,
    control: PathBuf,
    /// The fsync delay set last.
    delay: Duration,
}

/// Every node's lazyfs mount.
#[derive(Debug)]
pub struct Disks {
    bin: PathBuf,
    root: PathBuf,
    mounts: BTreeMap<u64, Mount>,
}

/// Mountpoints of lazyfs mounts in this mount namespace whose backing directory has a name the
/// harness gives (`…/lazyfs/backing-<id>`).
fn harness_mounts() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines().filter_map(|line| harness_mountpoint(line).map(PathBuf::from)).collect()
}

/// The mountpoint of one `/proc/self/mountinfo` line, when it is a lazyfs mount of the harness.
fn harness_mountpoint(line: &str) -> Option<&str> {
    let (head, tail) = line.split_once(" - ")?;
    let mut tail = tail.split(' ');
    let (fstype, source) = (tail.next()?, tail.next()?);
    // Mounted with mount(2) the type is `fuse`; through fusermount3 it is `fuse.lazyfs`.
    let fuse = fstype == "fuse" || fstype == "fuse.lazyfs";
    let is_ours = fuse && source.starts_with("lazyfs:") && source.contains("/lazyfs/backing-");
    is_ours.then(|| head.split(' ').nth(4)).flatten()
}

fn is_mounted(mountpoint: &Path) -> bool {
    harness_mounts().iter().any(|m| m == mountpoint)
}

fn lazy_unmount(mountpoint: &Path) {
    let ok = Command::new("umount").arg("-l").arg(mountpoint).stderr(Stdio::null()).status();
    if !ok.is_ok_and(|s| s.success()) {
        let _ = Command::new("fusermount3").arg("-uz").arg(mountpoint).stderr(Stdio::null()).status();
    }
}

impl Disks {
    /// No mount yet; `bin` is the `lazyfs` binary, `root` holds the backing directories,
    /// control sockets and lazyfs logs. Detaches lazyfs mounts of an earlier, crashed run.
    pub fn new(bin: &Path, root: &Path) -> anyhow::Result<Disks> {
        if !bin.is_file() {
            bail!("no lazyfs binary at {} (build it: cargo build -p lazyfs, or pass --lazyfs-bin)", bin.display());
        }
        if !Path::new("/dev/fuse").exists() {
            bail!("the power-loss filesystem needs /dev/fuse (modprobe fuse; apt-get install fuse3)");
        }
        for leftover in harness_mounts() {
            tracing::warn!(mountpoint = %leftover.display(), "detaching a lazyfs mount left by an earlier run");
            lazy_unmount(&leftover);
        }
        std::fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
        Ok(Disks { bin: bin.to_path_buf(), root: root.to_path_buf(), mounts: BTreeMap::new() })
    }

    /// Mounts node `id`'s disk on `mountpoint` (created if missing), over its backing directory
    /// (kept across remounts); returns once the mount answers on its control socket.
    pub fn mount(&mut self, id: u64, mountpoint: &Path) -> anyhow::Result<()> {
        if self.mounts.contains_key(&id) {
            return Ok(());
        }
        let backing = self.root.join(format!("{BACKING}{id}"));
        let control = self.root.join(format!("ctl-{id}.sock"));
        for dir in [&backing, &mountpoint.to_path_buf()] {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let log_path = self.root.join(format!("lazyfs-{id}.log"));
        let log = File::options().create(true).append(true).open(&log_path)?;
        let child = Command::new(&self.bin)
            .arg("mount")
            .arg("--backing")
            .arg(&backing)
            .arg("--mount")
            .arg(mountpoint)
            .arg("--control")
            .arg(&control)
            .args(["--threads", "2"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", self.bin.display()))?;
        let mountpoint = mountpoint.canonicalize()?;
        let mut mount = Mount { child, mountpoint, backing, control, delay: Duration::ZERO };
        let deadline = Instant::now() + MOUNT_WAIT;
        loop {
            if is_mounted(&mount.mountpoint) && Client::new(&mount.control).status().is_ok() {
                break;
            }
            if let Some(status) = mount.child.try_wait()? {
                bail!("lazyfs for node {id} exited before mounting ({status}); see {}", log_path.display());
            }
            if Instant::now() >= deadline {
                stop(&mut mount);
                bail!("lazyfs for node {id} did not mount within {MOUNT_WAIT:?}; see {}", log_path.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::info!(id, mountpoint = %mount.mountpoint.display(), "lazyfs mounted");
        self.mounts.insert(id, mount);
        Ok(())
    }

    /// Whether node `id` has a mount.
    pub fn has(&self, id: u64) -> bool {
        self.mounts.contains_key(&id)
    }

    /// The control client of node `id`'s mount.
    pub fn client(&self, id: u64) -> anyhow::Result<Client> {
        let m = self.mounts.get(&id).with_context(|| format!("node {id} has no lazyfs mount"))?;
        Ok(Client::new(&m.control))
    }

    /// Power cut of the disks of `ids` at once (their processes must have been killed), off the
    /// runtime's threads: each cut waits up to [`CUT_WAIT`] for the node's handles to be released.
    pub async fn cut(&self, ids: &[u64]) -> Vec<(u64, anyhow::Result<CutReport>)> {
        let mut cuts = Vec::new();
        for id in ids {
            let cut = self.client(*id).map(|c| tokio::task::spawn_blocking(move || c.cut(CUT_WAIT)));
            cuts.push((*id, cut));
        }
        let mut out = Vec::new();
        for (id, cut) in cuts {
            let report = match cut {
                Ok(handle) => handle.await.map_err(anyhow::Error::from).and_then(|r| r.map_err(anyhow::Error::from)),
                Err(e) => Err(e),
            };
            out.push((id, report));
        }
        out
    }

    /// Makes everything on node `id`'s disk durable (after a wipe, so that the deletion holds).
    pub fn sync(&self, id: u64) -> anyhow::Result<()> {
        self.client(id)?.sync()?;
        Ok(())
    }

    /// Sets the delay of every fsync on node `id`'s disk (zero: a normal disk again).
    pub fn set_delay(&mut self, id: u64, delay: Duration) -> anyhow::Result<()> {
        self.client(id)?.set_fsync_delay(delay)?;
        if let Some(m) = self.mounts.get_mut(&id) {
            m.delay = delay;
        }
        Ok(())
    }

    /// Node `id`'s disk: what is pending, fsync counters, the delay in force.
    pub fn status(&self, id: u64) -> anyhow::Result<Status> {
        Ok(self.client(id)?.status()?)
    }

    /// Turns every fsync delay off; returns the nodes whose disk was slow.
    pub fn clear_delays(&mut self) -> anyhow::Result<Vec<u64>> {
        let slow: Vec<u64> = self.mounts.iter().filter(|(_, m)| !m.delay.is_zero()).map(|(id, _)| *id).collect();
        for id in &slow {
            self.set_delay(*id, Duration::ZERO)?;
        }
        Ok(slow)
    }

    /// Ends node `id`'s mount (its process must have been killed) and deletes its backing
    /// directory: the node left the cluster for good.
    pub fn remove(&mut self, id: u64) {
        if let Some(mut m) = self.mounts.remove(&id) {
            stop(&mut m);
            let _ = std::fs::remove_dir_all(&m.backing);
        }
    }
}

/// SIGTERM, a bounded wait, then SIGKILL; a lazy unmount if the mount is still there.
fn stop(m: &mut Mount) {
    let _ = testkit::netns::run_command("kill", &["-TERM", &m.child.id().to_string()]);
    let deadline = Instant::now() + MOUNT_WAIT;
    loop {
        match m.child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                tracing::warn!(mountpoint = %m.mountpoint.display(), "lazyfs did not end on SIGTERM: killing it");
                let _ = m.child.kill();
                let _ = m.child.wait();
                break;
            }
        }
    }
    if is_mounted(&m.mountpoint) {
        lazy_unmount(&m.mountpoint);
    }
}

impl Drop for Disks {
    fn drop(&mut self) {
        for m in self.mounts.values_mut() {
            stop(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_harness_lazyfs_mounts_are_leftovers() {
        let ours = "812 30 0:77 / /work/results/17-s1/nodes/data-2 rw,nosuid,nodev,relatime shared:455 - fuse \
                    lazyfs:/work/results/17-s1/lazyfs/backing-2 rw,user_id=0,group_id=0,default_permissions";
        assert_eq!(harness_mountpoint(ours), Some("/work/results/17-s1/nodes/data-2"));
        let via_fusermount = "9 3 0:7 / /r/nodes/data-0 rw - fuse.lazyfs lazyfs:/r/lazyfs/backing-0 rw";
        assert_eq!(harness_mountpoint(via_fusermount), Some("/r/nodes/data-0"));
        let test_mount = "813 30 0:78 / /tmp/lazyfs-testX/mnt rw - fuse.lazyfs lazyfs:/tmp/lazyfs-testX/backing rw";
        assert_eq!(harness_mountpoint(test_mount), None);
        let other = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw";
        assert_eq!(harness_mountpoint(other), None);
    }
}
