//! Fixed-size bit set naming which operations are linearized (part of the memo key).

/// A set of operation numbers below a fixed bound.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BitSet(Vec<u64>);

impl BitSet {
    /// An empty set able to hold `0..len`.
    pub fn new(len: usize) -> Self {
        BitSet(vec![0; len.div_ceil(64)])
    }

    /// Adds `i`.
    pub fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    /// Removes `i`.
    pub fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }

    /// Whether `i` is in the set.
    pub fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::BitSet;

    #[test]
    fn set_get_clear() {
        let mut b = BitSet::new(130);
        b.set(0);
        b.set(129);
        assert!(b.get(0) && b.get(129) && !b.get(64));
        b.clear(129);
        assert!(!b.get(129));
        assert_eq!(b, {
            let mut c = BitSet::new(130);
            c.set(0);
            c
        });
    }
}
