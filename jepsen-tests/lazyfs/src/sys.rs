//! Thin, safe wrappers over the `*at` system calls the passthrough needs.
//!
//! Every backing object is reached through a directory file descriptor plus a name (or an
//! `O_PATH` descriptor of the object itself), never through a path from the backing root, so a
//! rename of an ancestor never invalidates what the filesystem holds. Each wrapper turns `-1` into
//! the `io::Error` of `errno` and nothing else.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// A name as the C calls want it. FUSE never hands us a name with a NUL byte; one would be EINVAL.
pub fn cname(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// The `/proc/self/fd/N` path of a descriptor: how an `O_PATH` descriptor is reopened for I/O.
pub fn proc_path(fd: BorrowedFd<'_>) -> CString {
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL in a number")
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`.
pub fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<libc::stat> {
    let name = cname(name)?;
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: valid fd, NUL-terminated name, `st` is written by the kernel on success.
    check(unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), st.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) })?;
    // SAFETY: fstatat succeeded, so it filled `st`.
    Ok(unsafe { st.assume_init() })
}

/// `fstat` of any descriptor, `O_PATH` ones included (`AT_EMPTY_PATH`).
pub fn stat_fd(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: valid fd, empty NUL-terminated path, `st` is written by the kernel on success.
    check(unsafe {
        libc::fstatat(fd.as_raw_fd(), c"".as_ptr(), st.as_mut_ptr(), libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW)
    })?;
    // SAFETY: fstatat succeeded, so it filled `st`.
    Ok(unsafe { st.assume_init() })
}

fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open call and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `openat(dir, name, flags | O_CLOEXEC, mode)`.
pub fn open_at(dir: BorrowedFd<'_>, name: &OsStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    let name = cname(name)?;
    // SAFETY: valid fd and NUL-terminated name.
    let fd = check(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC, mode) })?;
    Ok(owned(fd))
}

/// An `O_PATH` handle on `dir/name` itself (a symlink is not followed): pins the inode.
pub fn open_path_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    open_at(dir, name, libc::O_PATH | libc::O_NOFOLLOW, 0)
}

/// Reopens an `O_PATH` descriptor of a regular file or directory with real access `flags`.
pub fn reopen(fd: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<OwnedFd> {
    let path = proc_path(fd);
    // SAFETY: NUL-terminated path.
    let fd = check(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) })?;
    Ok(owned(fd))
}

/// `mkdirat`.
pub fn mkdir_at(dir: BorrowedFd<'_>, name: &OsStr, mode: libc::mode_t) -> io::Result<()> {
    let name = cname(name)?;
    // SAFETY: valid fd and NUL-terminated name.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) }).map(drop)
}

/// `mknodat`.
pub fn mknod_at(dir: BorrowedFd<'_>, name: &OsStr, mode: libc::mode_t, rdev: libc::dev_t) -> io::Result<()> {
    let name = cname(name)?;
    // SAFETY: valid fd and NUL-terminated name.
    check(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, rdev) }).map(drop)
}

/// `symlinkat(target, dir, name)`.
pub fn symlink_at(target: &OsStr, dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let (target, name) = (cname(target)?, cname(name)?);
    // SAFETY: valid fd and NUL-terminated strings.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) }).map(drop)
}

/// `unlinkat(dir, name, flags)`; `flags` is 0 or `AT_REMOVEDIR`.
pub fn unlink_at(dir: BorrowedFd<'_>, name: &OsStr, flags: libc::c_int) -> io::Result<()> {
    let name = cname(name)?;
    // SAFETY: valid fd and NUL-terminated name.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) }).map(drop)
}

/// `renameat2(from_dir, from, to_dir, to, flags)`.
pub fn rename_at(
    from_dir: BorrowedFd<'_>,
    from: &OsStr,
    to_dir: BorrowedFd<'_>,
    to: &OsStr,
    flags: libc::c_uint,
) -> io::Result<()> {
    let (from, to) = (cname(from)?, cname(to)?);
    // SAFETY: valid fds and NUL-terminated names.
    check(unsafe { libc::renameat2(from_dir.as_raw_fd(), from.as_ptr(), to_dir.as_raw_fd(), to.as_ptr(), flags) })
        .map(drop)
}

/// A new hard link `to_dir/to` of the object an `O_PATH` descriptor holds (`AT_EMPTY_PATH`, which
/// needs `CAP_DAC_READ_SEARCH`: lazyfs runs as root).
pub fn link_fd(fd: BorrowedFd<'_>, to_dir: BorrowedFd<'_>, to: &OsStr) -> io::Result<()> {
    let to = cname(to)?;
    // SAFETY: valid fds, empty and NUL-terminated names.
    check(unsafe { libc::linkat(fd.as_raw_fd(), c"".as_ptr(), to_dir.as_raw_fd(), to.as_ptr(), libc::AT_EMPTY_PATH) })
        .map(drop)
}

/// A new hard link `to_dir/to` of `from_dir/from` (the link itself when it is a symlink).
pub fn link_at(from_dir: BorrowedFd<'_>, from: &OsStr, to_dir: BorrowedFd<'_>, to: &OsStr) -> io::Result<()> {
    let (from, to) = (cname(from)?, cname(to)?);
    // SAFETY: valid fds and NUL-terminated names.
    check(unsafe { libc::linkat(from_dir.as_raw_fd(), from.as_ptr(), to_dir.as_raw_fd(), to.as_ptr(), 0) }).map(drop)
}

/// The target of the symlink an `O_PATH` descriptor holds.
pub fn read_link_fd(fd: BorrowedFd<'_>) -> io::Result<OsString> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: valid fd, empty NUL-terminated path, `buf` is writable for its length.
    let n = unsafe { libc::readlinkat(fd.as_raw_fd(), c"".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(OsString::from_vec(buf))
}

/// `chmod` through the `/proc/self/fd` path of an `O_PATH` descriptor (not for symlinks).
pub fn chmod_fd(fd: BorrowedFd<'_>, mode: libc::mode_t) -> io::Result<()> {
    let path = proc_path(fd);
    // SAFETY: NUL-terminated path.
    check(unsafe { libc::chmod(path.as_ptr(), mode) }).map(drop)
}

/// `fchownat(fd, "", uid, gid, AT_EMPTY_PATH)`; `u32::MAX` leaves an id unchanged.
pub fn chown_fd(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: valid fd and empty NUL-terminated path.
    check(unsafe { libc::fchownat(fd.as_raw_fd(), c"".as_ptr(), uid, gid, libc::AT_EMPTY_PATH) }).map(drop)
}

/// `fchownat(dir, name, uid, gid, AT_SYMLINK_NOFOLLOW)`.
pub fn chown_at(dir: BorrowedFd<'_>, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
    let name = cname(name)?;
    // SAFETY: valid fd and NUL-terminated name.
    check(unsafe { libc::fchownat(dir.as_raw_fd(), name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) }).map(drop)
}

/// `utimensat` through the `/proc/self/fd` path of an `O_PATH` descriptor (not for symlinks).
pub fn utimens_fd(fd: BorrowedFd<'_>, times: &[libc::timespec; 2]) -> io::Result<()> {
    let path = proc_path(fd);
    // SAFETY: NUL-terminated path, `times` points at two timespecs.
    check(unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), times.as_ptr(), 0) }).map(drop)
}

/// `fstatvfs` of the filesystem an `O_PATH` descriptor lives on.
pub fn statvfs_fd(fd: BorrowedFd<'_>) -> io::Result<libc::statvfs> {
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: valid fd, `st` is written by the kernel on success.
    check(unsafe { libc::fstatvfs(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstatvfs succeeded, so it filled `st`.
    Ok(unsafe { st.assume_init() })
}

/// `fsync` or `fdatasync` of a real (not `O_PATH`) descriptor.
pub fn sync_fd(fd: BorrowedFd<'_>, data_only: bool) -> io::Result<()> {
    // SAFETY: valid fd.
    check(unsafe {
        if data_only {
            libc::fdatasync(fd.as_raw_fd())
        } else {
            libc::fsync(fd.as_raw_fd())
        }
    })
    .map(drop)
}

/// Sets the process umask to 0: FUSE hands over modes with the caller's umask already applied.
pub fn clear_umask() {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(0) };
}

/// One entry of a backing directory: name, backing inode number, and whether it is a directory.
#[derive(Debug, Clone)]
pub struct DirEntry {
    /// The entry's name.
    pub name: OsString,
    /// The backing inode number (`d_ino`).
    pub ino: u64,
    /// The entry's type, from the directory itself.
    pub kind: std::fs::FileType,
}

/// Every entry of the directory an `O_PATH` (or real) descriptor holds, without `.` and `..`.
pub fn list_dir(fd: BorrowedFd<'_>) -> io::Result<Vec<DirEntry>> {
    use std::os::unix::fs::DirEntryExt;
    let path = std::path::PathBuf::from(OsStr::from_bytes(proc_path(fd).as_bytes()));
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        out.push(DirEntry { name: entry.file_name(), ino: entry.ino(), kind: entry.file_type()? });
    }
    Ok(out)
}

/// Removes `dir/name` and, when it is a directory, everything below it (`rm -rf`), through
/// descriptors only. Depth is bounded by the tree itself; a missing entry is not an error.
pub fn remove_tree_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let st = match stat_at(dir, name) {
        Ok(st) => st,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return unlink_at(dir, name, 0);
    }
    let sub = open_at(dir, name, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)?;
    for entry in list_dir(std::os::fd::AsFd::as_fd(&sub))? {
        remove_tree_at(std::os::fd::AsFd::as_fd(&sub), &entry.name)?;
    }
    unlink_at(dir, name, libc::AT_REMOVEDIR)
}
