//! Namespace changes across a power cut: only what an fsync of the directory made durable
//! survives; everything else is undone, newest first.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;

use common::{fsync_dir, names, write_file, Mount};

#[test]
fn file_created_and_fsynced_in_a_directory_never_fsynced_is_gone() {
    if !common::can_mount("file_created_and_fsynced_in_a_directory_never_fsynced_is_gone") {
        return;
    }
    let m = Mount::start(&[]);
    write_file(&m.path("new"), b"data", Some(false));
    assert!(m.backing_path("new").exists(), "namespace changes reach the backing directory at once");
    let report = m.cut();
    assert_eq!(report.undone.len(), 1);
    assert!(!m.path("new").exists());
    assert!(!m.backing_path("new").exists());
}

#[test]
fn file_created_then_directory_fsynced_is_kept() {
    if !common::can_mount("file_created_then_directory_fsynced_is_kept") {
        return;
    }
    let m = Mount::start(&[]);
    write_file(&m.path("new"), b"data", Some(false));
    fsync_dir(&m.mnt);
    m.cut();
    assert_eq!(fs::read(m.path("new")).unwrap(), b"data");
}

#[test]
fn durable_create_on_fsync_keeps_a_fsynced_new_file() {
    if !common::can_mount("durable_create_on_fsync_keeps_a_fsynced_new_file") {
        return;
    }
    let m = Mount::start(&["--durable-create-on-fsync"]);
    write_file(&m.path("fsynced"), b"data", Some(false));
    write_file(&m.path("not-fsynced"), b"data", None);
    assert_eq!(m.status().pending_namespace_ops, 1);
    m.cut();
    assert_eq!(names(&m.mnt), vec!["fsynced"]);
    assert_eq!(fs::read(m.path("fsynced")).unwrap(), b"data");
}

#[test]
fn rename_over_an_existing_file_without_directory_fsync_brings_the_old_file_back() {
    if !common::can_mount("rename_over_an_existing_file_without_directory_fsync_brings_the_old_file_back") {
        return;
    }
    let m = Mount::start(&[]);
    write_file(&m.path("snap"), b"old snapshot", Some(false));
    fsync_dir(&m.mnt);
    write_file(&m.path("snap.tmp"), b"new snapshot", Some(false));
    fs::rename(m.path("snap.tmp"), m.path("snap")).unwrap();
    assert_eq!(fs::read(m.path("snap")).unwrap(), b"new snapshot");
    assert_eq!(names(&m.mnt), vec!["snap"], "the graveyard stays hidden");
    m.cut();
    assert_eq!(names(&m.mnt), vec!["snap"]);
    assert_eq!(fs::read(m.path("snap")).unwrap(), b"old snapshot");
    assert_eq!(names(&m.backing), vec![".lazyfs-graveyard", "snap"]);
    assert!(names(&m.backing_path(".lazyfs-graveyard")).is_empty());
}

#[test]
fn rename_then_directory_fsync_is_kept_and_the_replaced_file_is_deleted() {
    if !common::can_mount("rename_then_directory_fsync_is_kept_and_the_replaced_file_is_deleted") {
        return;
    }
    let m = Mount::start(&[]);
    write_file(&m.path("snap"), b"old", Some(false));
    fsync_dir(&m.mnt);
    write_file(&m.path("snap.tmp"), b"new", Some(false));
    fs::rename(m.path("snap.tmp"), m.path("snap")).unwrap();
    fsync_dir(&m.mnt);
    assert!(names(&m.backing_path(".lazyfs-graveyard")).is_empty(), "a durable removal deletes for real");
    m.cut();
    assert_eq!(fs::read(m.path("snap")).unwrap(), b"new");
}

#[test]
fn unlink_without_directory_fsync_brings_the_file_back_with_its_durable_content() {
    if !common::can_mount("unlink_without_directory_fsync_brings_the_file_back_with_its_durable_content") {
        return;
    }
    let m = Mount::start(&[]);
    write_file(&m.path("f"), b"durable", Some(false));
    fsync_dir(&m.mnt);
    fs::write(m.path("f"), b"not durable").unwrap();
    let ino = fs::metadata(m.path("f")).unwrap().ino();
    fs::remove_file(m.path("f")).unwrap();
    assert!(!m.path("f").exists());
    m.cut();
    assert_eq!(fs::read(m.path("f")).unwrap(), b"durable");
    assert_eq!(fs::metadata(m.path("f")).unwrap().ino(), ino, "the same inode comes back");
}

#[test]
fn unlink_then_directory_fsync_is_kept() {
    if !common::can_mount("unlink_then_directory_fsync_is_kept") {
        return;
    }
    let m = Mount::start(&[]);
    write_file(&m.path("f"), b"x", Some(false));
    fsync_dir(&m.mnt);
    fs::remove_file(m.path("f")).unwrap();
    fsync_dir(&m.mnt);
    m.cut();
    assert!(names(&m.mnt).is_empty());
}

#[test]
fn mkdir_without_parent_fsync_takes_its_whole_subtree_with_it() {
    if !common::can_mount("mkdir_without_parent_fsync_takes_its_whole_subtree_with_it") {
        return;
    }
    let m = Mount::start(&[]);
    fs::create_dir_all(m.path("a/b")).unwrap();
    write_file(&m.path("a/b/f"), b"x", Some(false));
    fsync_dir(&m.path("a/b"));
    fsync_dir(&m.path("a"));
    // "a" itself was never made durable in the root: it and all below it are gone.
    m.cut();
    assert!(names(&m.mnt).is_empty());
}

#[test]
fn directory_tree_fsynced_bottom_up_is_kept() {
    if !common::can_mount("directory_tree_fsynced_bottom_up_is_kept") {
        return;
    }
    let m = Mount::start(&[]);
    fs::create_dir_all(m.path("a/b")).unwrap();
    write_file(&m.path("a/b/f"), b"x", Some(false));
    fsync_dir(&m.path("a/b"));
    fsync_dir(&m.path("a"));
    fsync_dir(&m.mnt);
    m.cut();
    assert_eq!(fs::read(m.path("a/b/f")).unwrap(), b"x");
}

#[test]
fn rmdir_and_the_removal_of_its_entries_come_back_together() {
    if !common::can_mount("rmdir_and_the_removal_of_its_entries_come_back_together") {
        return;
    }
    let m = Mount::start(&[]);
    fs::create_dir(m.path("d")).unwrap();
    write_file(&m.path("d/f"), b"x", Some(false));
    m.client().sync().unwrap();
    fs::remove_file(m.path("d/f")).unwrap();
    fs::remove_dir(m.path("d")).unwrap();
    m.cut();
    assert_eq!(fs::read(m.path("d/f")).unwrap(), b"x");
}

#[test]
fn cross_directory_rename_is_undone_as_one_change() {
    if !common::can_mount("cross_directory_rename_is_undone_as_one_change") {
        return;
    }
    let m = Mount::start(&[]);
    fs::create_dir(m.path("from")).unwrap();
    fs::create_dir(m.path("to")).unwrap();
    write_file(&m.path("from/f"), b"x", Some(false));
    m.client().sync().unwrap();
    fs::rename(m.path("from/f"), m.path("to/f")).unwrap();
    fs::create_dir(m.path("other")).unwrap();
    m.cut();
    assert_eq!(names(&m.path("from")), vec!["f"]);
    assert!(names(&m.path("to")).is_empty());
    assert_eq!(names(&m.mnt), vec!["from", "to"]);
}

#[test]
fn link_symlink_and_mknod_are_undone() {
    if !common::can_mount("link_symlink_and_mknod_are_undone") {
        return;
    }
    let m = Mount::start(&[]);
    write_file(&m.path("f"), b"x", Some(false));
    fsync_dir(&m.mnt);
    fs::hard_link(m.path("f"), m.path("hard")).unwrap();
    std::os::unix::fs::symlink("f", m.path("soft")).unwrap();
    assert_eq!(fs::read_link(m.path("soft")).unwrap().to_str(), Some("f"));
    assert_eq!(fs::read(m.path("soft")).unwrap(), b"x");
    let fifo = std::ffi::CString::new(m.path("fifo").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    assert_eq!(names(&m.mnt), vec!["f", "fifo", "hard", "soft"]);
    assert_eq!(fs::metadata(m.path("f")).unwrap().nlink(), 2);
    m.cut();
    assert_eq!(names(&m.mnt), vec!["f"]);
    assert_eq!(fs::metadata(m.path("f")).unwrap().nlink(), 1);
}

#[test]
fn cut_refuses_while_a_file_is_open() {
    if !common::can_mount("cut_refuses_while_a_file_is_open") {
        return;
    }
    let m = Mount::start(&[]);
    let f = fs::File::create(m.path("held")).unwrap();
    let err = m.client().cut(std::time::Duration::from_millis(200)).unwrap_err();
    assert!(err.to_string().contains("still open"), "{err}");
    assert!(m.path("held").exists(), "a refused cut changes nothing");
    drop(f);
    m.cut();
    assert!(!m.path("held").exists());
}
