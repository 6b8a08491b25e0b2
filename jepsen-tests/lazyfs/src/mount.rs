//! Mounting: the FUSE session, the control server, and what happens when the mount ends.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::control;
use crate::fuse::Fuse;
use crate::power::PowerError;
use crate::state::{LazyFs, Options};
use crate::sys;

/// What to do with pending changes when the mount ends (unmount or SIGTERM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnExit {
    /// Drop them, as a cut does: the backing directory is left as the last fsyncs left it.
    #[default]
    Cut,
    /// Make them durable, as a clean shutdown would.
    Sync,
}

/// Everything a mount needs.
#[derive(Debug, Clone)]
pub struct MountConfig {
    /// The backing directory (one filesystem).
    pub backing: PathBuf,
    /// Where to mount.
    pub mountpoint: PathBuf,
    /// Where to put the control socket.
    pub control: PathBuf,
    /// The fsync semantics.
    pub options: Options,
    /// FUSE worker threads.
    pub threads: usize,
    /// What happens to pending changes at the end.
    pub on_exit: OnExit,
}

/// Why mounting or running failed.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The backing directory could not be opened or prepared.
    #[error("backing directory {0}: {1}")]
    Backing(PathBuf, #[source] io::Error),
    /// The FUSE mount failed.
    #[error("mounting at {0}: {1}")]
    Mount(PathBuf, #[source] io::Error),
    /// The control socket could not be bound.
    #[error("control socket {0}: {1}")]
    Control(PathBuf, #[source] io::Error),
    /// The FUSE session ended with an error.
    #[error("FUSE session: {0}")]
    Session(#[source] io::Error),
    /// Closing (the on-exit cut or sync) failed.
    #[error("closing: {0}")]
    Close(#[from] PowerError),
}

/// Ends the mount from any thread (the binary's signal handler).
#[derive(Debug, Clone)]
pub struct Unmounter {
    inner: Arc<Mutex<fuser::SessionUnmounter>>,
    mountpoint: PathBuf,
}

impl Unmounter {
    /// Unmounts; when the mount is busy, detaches it (`umount -l`): the session then ends when
    /// the last user lets go.
    pub fn unmount(&self) {
        let result = self.inner.lock().unwrap_or_else(|p| p.into_inner()).unmount();
        if let Err(e) = result {
            tracing::warn!(error = %e, "unmount failed; detaching");
            let path = sys::cname(self.mountpoint.as_os_str()).expect("mountpoint has no NUL");
            // SAFETY: NUL-terminated path.
            if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } != 0 {
                tracing::error!(error = %io::Error::last_os_error(), "lazy unmount failed");
            }
        }
    }
}

/// A live mount.
#[derive(Debug)]
pub struct Mounted {
    fs: Arc<LazyFs>,
    unmounter: Unmounter,
    session: JoinHandle<io::Result<()>>,
    control: PathBuf,
    on_exit: OnExit,
}

fn raise_fd_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid rlimit to fill and then to set.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Mounts and starts the control server; returns once both are live.
pub fn mount(config: &MountConfig) -> Result<Mounted, MountError> {
    sys::clear_umask();
    raise_fd_limit();
    let fs = Arc::new(
        LazyFs::open(&config.backing, &config.options).map_err(|e| MountError::Backing(config.backing.clone(), e))?,
    );
    let mut fuse_config = fuser::Config::default();
    fuse_config.mount_options = vec![
        fuser::MountOption::FSName(format!("lazyfs:{}", config.backing.display())),
        fuser::MountOption::Subtype("lazyfs".into()),
        fuser::MountOption::DefaultPermissions,
    ];
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        fuse_config.acl = fuser::SessionACL::All;
    }
    fuse_config.n_threads = Some(config.threads.max(1));
    fuse_config.clone_fd = config.threads > 1;
    let mut session = fuser::Session::new(Fuse(fs.clone()), &config.mountpoint, &fuse_config).map_err(|e| {
        let _ = fs.close(false);
        MountError::Mount(config.mountpoint.clone(), e)
    })?;
    let unmounter =
        Unmounter { inner: Arc::new(Mutex::new(session.unmount_callable())), mountpoint: config.mountpoint.clone() };
    let listener = control::bind(&config.control).map_err(|e| {
        unmounter.unmount();
        MountError::Control(config.control.clone(), e)
    })?;
    let session = std::thread::Builder::new()
        .name("fuse-session".into())
        .spawn(move || session.run())
        .map_err(MountError::Session)?;
    let server_fs = fs.clone();
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || control::serve(server_fs, listener))
        .map_err(MountError::Session)?;
    tracing::info!(
        backing = %config.backing.display(),
        mountpoint = %config.mountpoint.display(),
        control = %config.control.display(),
        options = ?config.options,
        "mounted"
    );
    Ok(Mounted { fs, unmounter, session, control: config.control.clone(), on_exit: config.on_exit })
}

impl Mounted {
    /// The filesystem (for in-process control).
    pub fn fs(&self) -> &Arc<LazyFs> {
        &self.fs
    }

    /// A handle that ends the mount from another thread.
    pub fn unmounter(&self) -> Unmounter {
        self.unmounter.clone()
    }

    /// Waits for the mount to end, then applies the on-exit policy and removes the graveyard and
    /// the control socket.
    pub fn wait(self) -> Result<(), MountError> {
        let session = self.session.join().unwrap_or_else(|_| Err(io::Error::other("FUSE session thread panicked")));
        Self::finish(&self.fs, self.on_exit, &self.control)?;
        session.map_err(MountError::Session)
    }

    /// The end of a mount: the on-exit cut or sync, then cleanup. Safe to call twice.
    pub fn finish(fs: &LazyFs, on_exit: OnExit, control: &Path) -> Result<(), MountError> {
        let _ = std::fs::remove_file(control);
        match fs.close(on_exit == OnExit::Sync) {
            Ok(()) | Err(PowerError::Closed) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The control socket path.
    pub fn control(&self) -> &Path {
        &self.control
    }

    /// The on-exit policy.
    pub fn on_exit(&self) -> OnExit {
        self.on_exit
    }
}
