//! A lazyfs mount for one test: the real `lazyfs` binary over a fresh backing directory, with a
//! guard that always ends it and unmounts.
#![allow(dead_code)] // each test binary uses a different part

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lazyfs::{Client, CutReport, Status};

/// How long a mount may take to come up or to go away.
const STARTUP: Duration = Duration::from_secs(20);

/// True when this process can mount FUSE (root and `/dev/fuse`); prints why not otherwise.
pub fn can_mount(test: &str) -> bool {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let fuse = Path::new("/dev/fuse").exists();
    if !(root && fuse) {
        eprintln!("SKIPPED {test}: needs root and /dev/fuse (root: {root}, /dev/fuse: {fuse})");
    }
    root && fuse
}

fn mounted(mnt: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    let mnt = mnt.to_string_lossy();
    info.lines().any(|l| l.split(' ').nth(4) == Some(mnt.as_ref()))
}

/// A running `lazyfs mount`; ends it (SIGTERM, then SIGKILL) and unmounts on drop.
pub struct Mount {
    /// Holds the backing directory, mountpoint and socket.
    pub dir: tempfile::TempDir,
    /// The backing directory.
    pub backing: PathBuf,
    /// The mountpoint.
    pub mnt: PathBuf,
    /// The control socket.
    pub control: PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
    spawns: u32,
}

impl Mount {
    /// Mounts a fresh, empty backing directory with extra `lazyfs mount` flags.
    pub fn start(extra: &[&str]) -> Mount {
        let dir = tempfile::Builder::new().prefix("lazyfs-test").tempdir().expect("tempdir");
        let backing = dir.path().join("backing");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&backing).unwrap();
        std::fs::create_dir(&mnt).unwrap();
        let control = dir.path().join("ctl.sock");
        let mut m = Mount {
            dir,
            backing,
            mnt,
            control,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            spawns: 0,
        };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        self.spawns += 1;
        let log = File::create(self.dir.path().join(format!("lazyfs-{}.log", self.spawns))).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_lazyfs"))
            .arg("mount")
            .arg("--backing")
            .arg(&self.backing)
            .arg("--mount")
            .arg(&self.mnt)
            .arg("--control")
            .arg(&self.control)
            .args(&self.extra)
            .env("RUST_LOG", "lazyfs=debug,info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn lazyfs");
        self.child = Some(child);
        let deadline = Instant::now() + STARTUP;
        loop {
            if mounted(&self.mnt) && self.client().status().is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("lazyfs exited before mounting: {status}");
            }
            assert!(Instant::now() < deadline, "lazyfs did not mount within {STARTUP:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The control client.
    pub fn client(&self) -> Client {
        Client::new(&self.control)
    }

    /// A path inside the mount.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }

    /// A path inside the backing directory.
    pub fn backing_path(&self, rel: &str) -> PathBuf {
        self.backing.join(rel)
    }

    /// Power cut (nothing of the test may be open).
    pub fn cut(&self) -> CutReport {
        let report = self.client().cut(Duration::from_secs(10)).expect("cut");
        assert!(report.errors.is_empty(), "undo errors: {:?}", report.errors);
        report
    }

    /// The status.
    pub fn status(&self) -> Status {
        self.client().status().expect("status")
    }

    /// Ends the lazyfs process (SIGTERM, bounded wait, then SIGKILL) and makes sure nothing is
    /// left mounted. Returns whether it exited on SIGTERM by itself with status 0.
    pub fn stop(&mut self) -> bool {
        let mut clean = false;
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling our own child by its pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + STARTUP;
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        clean = status.success();
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        if mounted(&self.mnt) {
            clean = false;
            let ok = Command::new("fusermount3").arg("-u").arg(&self.mnt).status().is_ok_and(|s| s.success());
            if !ok {
                let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
            }
        }
        clean
    }

    /// Stops and mounts again over the same backing directory.
    pub fn remount(&mut self) {
        assert!(self.stop(), "lazyfs did not stop cleanly");
        self.spawn();
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes `data` to a new or truncated file; fsyncs it when asked (`Some(true)`: fdatasync).
pub fn write_file(path: &Path, data: &[u8], sync: Option<bool>) {
    let mut f = File::create(path).unwrap();
    f.write_all(data).unwrap();
    match sync {
        Some(true) => f.sync_data().unwrap(),
        Some(false) => f.sync_all().unwrap(),
        None => {}
    }
}

/// fsyncs a directory.
pub fn fsync_dir(path: &Path) {
    OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY).open(path).unwrap().sync_all().unwrap();
}

/// The names in a directory, sorted.
pub fn names(path: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(path).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}
