//! Random namespace and data changes: whatever a cut undoes, it must leave exactly the state the
//! last fsyncs made durable, with no undo error and an empty graveyard.

mod common;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::{fsync_dir, Mount};

/// A small deterministic generator (the test must not depend on a random seed at run time).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a tree holds: every path with its kind and content (file bytes or symlink target).
type Tree = BTreeMap<PathBuf, (char, Vec<u8>)>;

fn snapshot(root: &Path) -> Tree {
    fn walk(root: &Path, dir: &Path, out: &mut Tree) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                out.insert(rel, ('d', vec![]));
                walk(root, &path, out);
            } else if t.is_symlink() {
                out.insert(rel, ('l', fs::read_link(&path).unwrap().into_os_string().into_encoded_bytes()));
            } else {
                out.insert(rel, ('f', fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Tree::new();
    walk(root, root, &mut out);
    out
}

/// An existing path (half the time) or a new name in an existing directory.
fn pick(rng: &mut Rng, root: &Path) -> PathBuf {
    fn walk(dir: &Path, all: &mut Vec<PathBuf>, dirs: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            all.push(e.path());
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
                walk(&e.path(), all, dirs);
            }
        }
    }
    let (mut existing, mut dirs) = (Vec::new(), vec![root.to_path_buf()]);
    walk(root, &mut existing, &mut dirs);
    if !existing.is_empty() && rng.below(2) == 0 {
        return existing.swap_remove(rng.below(existing.len() as u64) as usize);
    }
    let dir = &dirs[rng.below(dirs.len() as u64) as usize];
    dir.join(["a", "b", "c", "d"][rng.below(4) as usize])
}

/// One random change; failures (missing paths, wrong kinds) are part of the game. Returns
/// whether it took effect.
fn change(rng: &mut Rng, root: &Path) -> bool {
    let p = pick(rng, root);
    let q = pick(rng, root);
    let data: Vec<u8> = (0..rng.below(3000)).map(|i| (i % 251) as u8).collect();
    let result = match rng.below(10) {
        0 => fs::write(&p, &data),
        1 => OpenOptions::new().write(true).open(&p).and_then(|f| f.write_all_at(&data, rng.below(5000))),
        2 => OpenOptions::new().write(true).open(&p).and_then(|f| f.set_len(rng.below(4000))),
        3 => fs::remove_file(&p),
        4 => fs::create_dir(&p),
        5 => fs::remove_dir(&p),
        6 | 7 => fs::rename(&p, &q),
        8 => fs::hard_link(&p, &q),
        _ => std::os::unix::fs::symlink("target", &p),
    };
    result.is_ok()
}

/// fsync of every file and every directory, bottom up: makes the whole tree durable.
fn fsync_all(dir: &Path) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            fsync_all(&e.path());
        } else if t.is_file() {
            fs::File::open(e.path()).unwrap().sync_all().unwrap();
        }
    }
    fsync_dir(dir);
}

/// A random fsync of one file or directory (if it exists).
fn random_fsync(rng: &mut Rng, root: &Path) {
    let p = if rng.below(3) == 0 { root.to_path_buf() } else { pick(rng, root) };
    match fs::symlink_metadata(&p) {
        Ok(m) if m.is_dir() => fsync_dir(&p),
        Ok(m) if m.is_file() => fs::File::open(&p).unwrap().sync_all().unwrap(),
        _ => {}
    }
}

#[test]
fn unsynced_random_changes_are_undone_exactly() {
    if !common::can_mount("unsynced_random_changes_are_undone_exactly") {
        return;
    }
    let m = Mount::start(&[]);
    let (mut trees, mut applied, mut undone, mut dropped) = (0, 0, 0, 0);
    for seed in 1..=12u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        for _ in 0..30 {
            change(&mut rng, &m.mnt);
        }
        fsync_all(&m.mnt);
        trees += usize::from(!snapshot(&m.mnt).is_empty());
        let s = m.status();
        assert_eq!(s.pending_namespace_ops, 0, "seed {seed}: a full fsync walk settles everything: {:?}", s.pending);
        let durable = snapshot(&m.mnt);
        for _ in 0..40 {
            applied += usize::from(change(&mut rng, &m.mnt));
        }
        let report = m.cut();
        undone += report.undone.len();
        dropped += report.dropped_files;
        assert_eq!(snapshot(&m.mnt), durable, "seed {seed}");
        assert!(common::names(&m.backing_path(".lazyfs-graveyard")).is_empty(), "seed {seed}");
    }
    eprintln!("non-empty trees {trees}, changes applied {applied}, undone {undone}, files dropped {dropped}");
    // The game is not vacuous: the generator does reach real trees and real undo work.
    assert!(trees >= 6 && applied >= 100 && undone >= 50 && dropped >= 6);
}

#[test]
fn random_changes_and_fsyncs_cut_without_undo_errors_and_a_second_cut_changes_nothing() {
    if !common::can_mount("random_changes_and_fsyncs_cut_without_undo_errors_and_a_second_cut_changes_nothing") {
        return;
    }
    let m = Mount::start(&[]);
    for seed in 1..=12u64 {
        let mut rng = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03));
        for _ in 0..30 {
            change(&mut rng, &m.mnt);
            if rng.below(3) == 0 {
                random_fsync(&mut rng, &m.mnt);
            }
        }
        fsync_all(&m.mnt);
        for _ in 0..40 {
            change(&mut rng, &m.mnt);
            if rng.below(3) == 0 {
                random_fsync(&mut rng, &m.mnt);
            }
        }
        m.cut(); // asserts no undo error
        assert!(common::names(&m.backing_path(".lazyfs-graveyard")).is_empty(), "seed {seed}");
        let after = snapshot(&m.mnt);
        assert_eq!(m.status().pending_namespace_ops, 0);
        // A second cut right away has nothing left to undo.
        assert_eq!(m.cut(), lazyfs::CutReport::default(), "seed {seed}");
        assert_eq!(snapshot(&m.mnt), after, "seed {seed}");
    }
}
