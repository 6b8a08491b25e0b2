//! The log of namespace changes not yet made durable, and the rule that decides which become
//! durable on a directory fsync.
//!
//! Every namespace change is applied to the backing directory at once and recorded here with the
//! directories it touches (by backing inode number) and how to undo it. `fsync` of a directory
//! settles (makes durable, removes from the log) every pending entry touching that directory, and
//! — to keep the undo of what stays pending consistent — every *earlier* pending entry touching a
//! directory of a settled one, transitively. Only cross-directory renames and `rmdir` (which
//! touches the removed directory too) touch more than one directory, so this closure rarely
//! reaches beyond the fsynced directory.
//!
//! Invariant kept by that rule: if an entry is pending, every later entry that shares a
//! directory with it is pending too. So undoing the pending entries newest first always finds each
//! directory exactly as the entry left it, whatever later, settled entries did elsewhere.

use std::collections::{HashSet, VecDeque};

/// A directory, named by its backing inode number (stable while the filesystem holds it open).
pub type DirKey = u64;

/// A change that can say what it is, for status reports.
pub trait Describe {
    /// A short description.
    fn describe(&self) -> String;
}

/// One pending namespace change.
#[derive(Debug)]
pub struct Entry<U> {
    /// The directories whose entries this change altered.
    pub dirs: Vec<DirKey>,
    /// The backing inode number of the object the change named (for `--durable-create-on-fsync`).
    pub subject: Option<u64>,
    /// How to take the change back, or what to clean up once it is durable.
    pub undo: U,
}

/// Pending namespace changes, oldest first.
#[derive(Debug)]
pub struct Journal<U> {
    pending: VecDeque<Entry<U>>,
}

impl<U> Default for Journal<U> {
    fn default() -> Self {
        Journal { pending: VecDeque::new() }
    }
}

impl<U> Journal<U> {
    /// Appends a change just applied to the backing directory.
    pub fn record(&mut self, entry: Entry<U>) {
        self.pending.push_back(entry);
    }

    /// How many changes are pending.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Descriptions of the oldest `n` pending changes, with the directories each touches.
    pub fn describe(&self, n: usize) -> Vec<String>
    where
        U: Describe,
    {
        self.pending.iter().take(n).map(|e| format!("{} (dirs {:?})", e.undo.describe(), e.dirs)).collect()
    }

    /// True when every namespace change is durable.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Settles every pending change touching `dir`, with the closure of the module docs, and
    /// returns the settled entries oldest first (their graveyard entries can now be deleted).
    pub fn settle_dir(&mut self, dir: DirKey) -> Vec<Entry<U>> {
        self.settle(|e| e.dirs.contains(&dir), false)
    }

    /// Settles every pending change that named the object `subject`, the changes that named the
    /// directories those are in (the `mkdir` or `rename` of each ancestor, transitively), and the
    /// closure of the module docs: `--durable-create-on-fsync`.
    pub fn settle_named(&mut self, subject: u64) -> Vec<Entry<U>> {
        self.settle(|e| e.subject == Some(subject), true)
    }

    /// Removes and returns every pending change, newest first: the order to undo them in.
    pub fn drain_for_undo(&mut self) -> Vec<Entry<U>> {
        self.pending.drain(..).rev().collect()
    }

    /// Removes and returns every pending change, oldest first: all of them become durable.
    pub fn drain_all(&mut self) -> Vec<Entry<U>> {
        self.pending.drain(..).collect()
    }

    fn settle(&mut self, seed: impl Fn(&Entry<U>) -> bool, ancestors: bool) -> Vec<Entry<U>> {
        let mut frontier: HashSet<DirKey> = HashSet::new();
        let mut settle = vec![false; self.pending.len()];
        for (i, e) in self.pending.iter().enumerate().rev() {
            let names_a_frontier_dir = ancestors && e.subject.is_some_and(|s| frontier.contains(&s));
            if seed(e) || names_a_frontier_dir || e.dirs.iter().any(|d| frontier.contains(d)) {
                settle[i] = true;
                frontier.extend(e.dirs.iter().copied());
            }
        }
        let mut settled = Vec::new();
        let mut kept = VecDeque::with_capacity(self.pending.len());
        for (e, s) in self.pending.drain(..).zip(settle) {
            if s {
                settled.push(e);
            } else {
                kept.push_back(e);
            }
        }
        self.pending = kept;
        settled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u32, dirs: &[DirKey]) -> Entry<u32> {
        Entry { dirs: dirs.to_vec(), subject: Some(u64::from(id) + 1000), undo: id }
    }

    fn ids(v: &[Entry<u32>]) -> Vec<u32> {
        v.iter().map(|e| e.undo).collect()
    }

    #[test]
    fn fsync_of_one_directory_leaves_the_others_pending() {
        let mut j = Journal::default();
        j.record(entry(1, &[10]));
        j.record(entry(2, &[20]));
        j.record(entry(3, &[10]));
        assert_eq!(ids(&j.settle_dir(10)), vec![1, 3]);
        assert_eq!(j.len(), 1);
        assert_eq!(ids(&j.drain_for_undo()), vec![2]);
    }

    #[test]
    fn a_cross_directory_rename_pulls_in_earlier_changes_of_the_other_directory() {
        let mut j = Journal::default();
        j.record(entry(1, &[20])); // create in E
        j.record(entry(2, &[10, 20])); // rename D -> E
        j.record(entry(3, &[20])); // later change in E
        j.record(entry(4, &[30]));
        assert_eq!(ids(&j.settle_dir(10)), vec![1, 2]);
        assert_eq!(ids(&j.drain_for_undo()), vec![4, 3]);
    }

    #[test]
    fn pending_entries_never_precede_a_settled_entry_sharing_a_directory() {
        // Exhaustive over small random-ish sequences: the invariant of the module docs.
        let dirs: [&[DirKey]; 5] = [&[1], &[2], &[1, 2], &[3], &[2, 3]];
        for seed in 0..3000u32 {
            let mut j = Journal::default();
            let mut settled = Vec::new();
            let mut x = seed;
            for id in 0..8 {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                j.record(entry(id, dirs[(x >> 8) as usize % dirs.len()]));
                if (x >> 4) % 3 == 0 {
                    settled.extend(j.settle_dir(DirKey::from((x >> 12) % 3 + 1)));
                }
            }
            settled.extend(j.settle_dir(2));
            let pending: Vec<_> = j.drain_all();
            assert_eq!(settled.len() + pending.len(), 8);
            for p in &pending {
                for s in settled.iter().filter(|s| s.undo > p.undo) {
                    assert!(!s.dirs.iter().any(|d| p.dirs.contains(d)), "seed {seed}: {} before {}", p.undo, s.undo);
                }
            }
        }
    }

    #[test]
    fn settle_named_settles_the_change_that_named_it_and_its_ancestors() {
        let mut j = Journal::default();
        let mkdir = |id, parent, dir| Entry { dirs: vec![parent], subject: Some(dir), undo: id };
        j.record(mkdir(1, 1, 10)); // mkdir /a (ino 10)
        j.record(mkdir(2, 10, 20)); // mkdir /a/b (ino 20)
        j.record(entry(3, &[30])); // unrelated
        j.record(Entry { dirs: vec![20], subject: Some(99), undo: 4 }); // create /a/b/f (ino 99)
        j.record(Entry { dirs: vec![20], subject: Some(98), undo: 5 }); // a later create in /a/b
        assert_eq!(ids(&j.settle_named(99)), vec![1, 2, 4]);
        assert_eq!(ids(&j.drain_all()), vec![3, 5]);
    }
}
