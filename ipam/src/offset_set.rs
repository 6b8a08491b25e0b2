//! A set of address offsets in a network of up to 2^128 addresses, as a 64-ary tree of bitmaps.
//!
//! It answers "lowest offset in `[from, to]` that is not in the set" in O(depth) — at most 22
//! levels for a whole IPv6 space, 4 for an IPv4 /8 — however many offsets are set: a subtree that
//! is completely set is flagged (and collapsed), and an absent subtree is completely clear. Dense
//! sets (what lowest-first allocation produces) take about one bit per address; sparse ones only
//! materialise the paths they use.
//!
//! IPv4 addresses ending in `.0` are never handed out (whereabouts' promise). They are modelled
//! as *reserved* offsets: set from the moment their leaf exists and never counted, so a pool full
//! but for its `.0` addresses is found full without scanning them.

const FANOUT_BITS: u32 = 6;
const FANOUT: u32 = 1 << FANOUT_BITS;

#[derive(Clone, Debug)]
enum Node {
    /// No offset of this subtree is set (reserved offsets aside).
    Empty,
    /// Every offset of this subtree is set.
    Full,
    /// Level 0: one bit per offset.
    Leaf(u64),
    /// Level ≥ 1: the children present, in slot order.
    Inner(Box<Inner>),
}

#[derive(Clone, Debug)]
struct Inner {
    /// Slots that have a child in `children`.
    present: u64,
    /// Slots whose child is `Node::Full`.
    full: u64,
    children: Vec<Node>,
}

impl Inner {
    fn index(&self, slot: u32) -> usize {
        (self.present & ((1u64 << slot) - 1)).count_ones() as usize
    }
}

/// The set itself. Offsets run from 0 to `2^host_bits - 1`.
#[derive(Clone, Debug)]
pub struct OffsetSet {
    last: u128,
    root_level: u32,
    root: Node,
    len: u128,
    /// Offsets `o` with `o % 256 == residue` are reserved (IPv4 `.0` addresses).
    reserved_residue: Option<u8>,
}

impl OffsetSet {
    /// An empty set over `2^host_bits` offsets. `reserved_residue` marks every offset congruent to
    /// it modulo 256 as reserved (pass `256 - (network address % 256)` for IPv4's `.0` rule).
    pub fn new(host_bits: u8, reserved_residue: Option<u8>) -> OffsetSet {
        let host_bits = u32::from(host_bits.min(128));
        let levels = host_bits.div_ceil(FANOUT_BITS).max(1);
        OffsetSet {
            last: super::ip::last_offset(host_bits as u8),
            root_level: levels - 1,
            root: Node::Empty,
            len: 0,
            reserved_residue,
        }
    }

    /// Highest valid offset.
    pub fn last(&self) -> u128 {
        self.last
    }

    /// Number of offsets inserted (reserved ones are not counted).
    pub fn len(&self) -> u128 {
        self.len
    }

    /// True when no offset has been inserted.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True for offsets that can never be inserted (IPv4 `.0` addresses).
    pub fn is_reserved(&self, offset: u128) -> bool {
        self.reserved_residue.is_some_and(|r| offset % 256 == u128::from(r))
    }

    /// True when `offset` was inserted.
    pub fn contains(&self, offset: u128) -> bool {
        if offset > self.last || self.is_reserved(offset) {
            return false;
        }
        let mut node = &self.root;
        let mut level = self.root_level;
        loop {
            match node {
                Node::Empty => return false,
                Node::Full => return true,
                Node::Leaf(bits) => return bits & (1u64 << (offset % 64) as u32) != 0,
                Node::Inner(inner) => {
                    let slot = slot_of(offset, level);
                    if inner.present & (1u64 << slot) == 0 {
                        return false;
                    }
                    node = &inner.children[inner.index(slot)];
                    level -= 1;
                }
            }
        }
    }

    /// Inserts `offset`; returns false if it was already there or is reserved.
    /// Panics if `offset` is beyond [`OffsetSet::last`] (callers map addresses through their range).
    pub fn insert(&mut self, offset: u128) -> bool {
        assert!(offset <= self.last, "offset {offset} beyond the set's last offset {}", self.last);
        if self.is_reserved(offset) {
            return false;
        }
        let residue = self.reserved_residue;
        let inserted = insert_in(&mut self.root, self.root_level, 0, offset, residue);
        if inserted {
            self.len += 1;
        }
        inserted
    }

    /// Removes `offset`; returns false if it was not there (reserved offsets are never removed).
    pub fn remove(&mut self, offset: u128) -> bool {
        if offset > self.last || self.is_reserved(offset) {
            return false;
        }
        let residue = self.reserved_residue;
        let removed = remove_in(&mut self.root, self.root_level, 0, offset, residue);
        if removed {
            self.len -= 1;
        }
        removed
    }

    /// The lowest offset in `[from, to]` that is neither inserted nor reserved.
    pub fn first_clear(&self, from: u128, to: u128) -> Option<u128> {
        let to = to.min(self.last);
        if from > to {
            return None;
        }
        find_clear(&self.root, self.root_level, 0, from, to, self.reserved_residue)
    }
}

fn shift_of(level: u32) -> u32 {
    level * FANOUT_BITS
}

fn slot_of(offset: u128, level: u32) -> u32 {
    ((offset >> shift_of(level)) % u128::from(FANOUT)) as u32
}

fn is_reserved(residue: Option<u8>, offset: u128) -> bool {
    residue.is_some_and(|r| offset % 256 == u128::from(r))
}

/// The reserved bits of the leaf starting at `base` (a multiple of 64).
fn leaf_pattern(residue: Option<u8>, base: u128) -> u64 {
    match residue {
        None => 0,
        Some(r) => {
            let distance = (u128::from(r) + 256 - base % 256) % 256;
            if distance < 64 {
                1u64 << distance
            } else {
                0
            }
        }
    }
}

fn empty_node(level: u32, base: u128, residue: Option<u8>) -> Node {
    if level == 0 {
        Node::Leaf(leaf_pattern(residue, base))
    } else {
        Node::Inner(Box::new(Inner { present: 0, full: 0, children: Vec::new() }))
    }
}

fn full_node(level: u32) -> Node {
    if level == 0 {
        Node::Leaf(u64::MAX)
    } else {
        Node::Inner(Box::new(Inner { present: u64::MAX, full: u64::MAX, children: vec![Node::Full; FANOUT as usize] }))
    }
}

fn insert_in(node: &mut Node, level: u32, base: u128, offset: u128, residue: Option<u8>) -> bool {
    if matches!(node, Node::Empty) {
        *node = empty_node(level, base, residue);
    }
    match node {
        Node::Full => false,
        Node::Empty => unreachable!("materialised above"),
        Node::Leaf(bits) => {
            let bit = 1u64 << (offset - base) as u32;
            if *bits & bit != 0 {
                return false;
            }
            *bits |= bit;
            if *bits == u64::MAX {
                *node = Node::Full;
            }
            true
        }
        Node::Inner(inner) => {
            let slot = slot_of(offset, level);
            let bit = 1u64 << slot;
            if inner.full & bit != 0 {
                return false;
            }
            let idx = inner.index(slot);
            if inner.present & bit == 0 {
                inner.children.insert(idx, Node::Empty);
                inner.present |= bit;
            }
            let child_base = base + (u128::from(slot) << shift_of(level));
            let inserted = insert_in(&mut inner.children[idx], level - 1, child_base, offset, residue);
            if matches!(inner.children[idx], Node::Full) {
                inner.full |= bit;
                if inner.full == u64::MAX {
                    *node = Node::Full;
                }
            }
            inserted
        }
    }
}

fn remove_in(node: &mut Node, level: u32, base: u128, offset: u128, residue: Option<u8>) -> bool {
    if matches!(node, Node::Full) {
        *node = full_node(level);
    }
    match node {
        Node::Empty => false,
        Node::Full => unreachable!("expanded above"),
        Node::Leaf(bits) => {
            let bit = 1u64 << (offset - base) as u32;
            if *bits & bit == 0 {
                return false;
            }
            *bits &= !bit;
            if *bits == leaf_pattern(residue, base) {
                *node = Node::Empty;
            }
            true
        }
        Node::Inner(inner) => {
            let slot = slot_of(offset, level);
            let bit = 1u64 << slot;
            if inner.present & bit == 0 {
                return false;
            }
            let idx = inner.index(slot);
            let child_base = base + (u128::from(slot) << shift_of(level));
            let removed = remove_in(&mut inner.children[idx], level - 1, child_base, offset, residue);
            if removed {
                inner.full &= !bit;
                if matches!(inner.children[idx], Node::Empty) {
                    inner.children.remove(idx);
                    inner.present &= !bit;
                    if inner.present == 0 {
                        *node = Node::Empty;
                    }
                }
            }
            removed
        }
    }
}

/// First offset of `[from, to]` in a subtree with nothing set but reserved offsets.
fn first_unreserved(from: u128, to: u128, residue: Option<u8>) -> Option<u128> {
    if !is_reserved(residue, from) {
        Some(from)
    } else if from < to {
        // Reserved offsets are 256 apart, so the next one is clear.
        Some(from + 1)
    } else {
        None
    }
}

/// Mask of bits `lo..=hi` (both < 64).
fn bit_range(lo: u32, hi: u32) -> u64 {
    let upper = if hi == 63 { u64::MAX } else { (1u64 << (hi + 1)) - 1 };
    upper & !((1u64 << lo) - 1)
}

/// Lowest clear offset in `[from, to]`, which lies within the subtree at `base`.
fn find_clear(node: &Node, level: u32, base: u128, from: u128, to: u128, residue: Option<u8>) -> Option<u128> {
    match node {
        Node::Full => None,
        Node::Empty => first_unreserved(from, to, residue),
        Node::Leaf(bits) => {
            let clear = !bits & bit_range((from - base) as u32, (to - base) as u32);
            (clear != 0).then(|| base + u128::from(clear.trailing_zeros()))
        }
        Node::Inner(inner) => {
            let shift = shift_of(level);
            let first_slot = ((from - base) >> shift) as u32;
            let last_slot = ((to - base) >> shift) as u32;
            let mut candidates = !inner.full & bit_range(first_slot, last_slot);
            let child_span_last = (1u128 << shift) - 1;
            while candidates != 0 {
                let slot = candidates.trailing_zeros();
                candidates &= candidates - 1;
                let child_base = base + (u128::from(slot) << shift);
                let child_from = from.max(child_base);
                let child_to = to.min(child_base + child_span_last);
                let found = if inner.present & (1u64 << slot) != 0 {
                    let child = &inner.children[inner.index(slot)];
                    find_clear(child, level - 1, child_base, child_from, child_to, residue)
                } else {
                    first_unreserved(child_from, child_to, residue)
                };
                if found.is_some() {
                    return found;
                }
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_clear_follows_inserts_and_removes() {
        let mut set = OffsetSet::new(8, None);
        assert_eq!(set.first_clear(1, 254), Some(1));
        assert!(set.insert(1));
        assert!(!set.insert(1));
        assert!(set.insert(2));
        assert_eq!(set.first_clear(1, 254), Some(3));
        assert!(set.remove(1));
        assert!(!set.remove(1));
        assert_eq!(set.first_clear(1, 254), Some(1));
        assert_eq!(set.len(), 1);
        assert!(set.contains(2) && !set.contains(1));
    }

    #[test]
    fn full_subtrees_collapse_and_expand() {
        let mut set = OffsetSet::new(12, None);
        for o in 0..=set.last() {
            assert!(set.insert(o));
        }
        assert!(matches!(set.root, Node::Full));
        assert_eq!(set.first_clear(0, set.last()), None);
        assert!(set.remove(4000));
        assert_eq!(set.first_clear(0, set.last()), Some(4000));
        assert_eq!(set.first_clear(4001, set.last()), None);
        assert!(set.insert(4000));
        assert!(matches!(set.root, Node::Full));
        for o in 0..=set.last() {
            assert!(set.remove(o));
        }
        assert!(matches!(set.root, Node::Empty));
        assert!(set.is_empty());
    }

    #[test]
    fn reserved_offsets_are_skipped_without_scanning() {
        // A /20 whose network ends in .0: offsets 0, 256, 512, ... are `.0` addresses.
        let mut set = OffsetSet::new(12, Some(0));
        assert_eq!(set.first_clear(256, 300), Some(257));
        for o in 0..=set.last() {
            set.insert(o);
        }
        assert_eq!(set.len(), 4096 - 16);
        assert!(matches!(set.root, Node::Full));
        assert!(!set.insert(512) && !set.remove(512) && !set.contains(512));
        assert!(set.remove(513));
        assert_eq!(set.first_clear(0, set.last()), Some(513));
    }

    #[test]
    fn ipv6_space_is_searchable_at_both_ends() {
        let mut set = OffsetSet::new(128, None);
        assert_eq!(set.first_clear(1, u128::MAX - 1), Some(1));
        set.insert(u128::MAX - 1);
        assert_eq!(set.first_clear(u128::MAX - 1, u128::MAX - 1), None);
        assert_eq!(set.first_clear(u128::MAX - 2, u128::MAX), Some(u128::MAX - 2));
        set.insert(1 << 100);
        assert_eq!(set.first_clear(1 << 100, u128::MAX), Some((1 << 100) + 1));
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn tiny_networks_have_a_single_partial_leaf() {
        let mut set = OffsetSet::new(2, None);
        assert_eq!(set.last(), 3);
        set.insert(1);
        set.insert(2);
        assert_eq!(set.first_clear(1, 2), None);
        assert_eq!(set.first_clear(0, 10), Some(0));
    }
}
