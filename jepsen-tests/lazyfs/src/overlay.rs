//! The un-fsynced state of one regular file: dirty extents and a pending size over the backing
//! file's durable bytes.
//!
//! Invariant: the backing file holds exactly the durable content (what the last fsync left);
//! every write and size change since lives here, and reads see `backing ⊕ overlay`. A cut drops
//! the overlay; an fsync writes it into the backing file ([`Overlay::writeback_plan`]) and drops it.
//!
//! Three numbers describe the logical file: `durable_len` (the backing length when the overlay
//! began), `floor` (the smallest size the file had since: backing bytes at or past it were cut
//! off by a truncate and read as zeros), and `size` (the current logical size). Extents never
//! overlap, never touch, and never reach past `size`.

use std::collections::BTreeMap;

/// Pending data changes of one file (see the module docs for the invariant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    durable_len: u64,
    floor: u64,
    size: u64,
    extents: BTreeMap<u64, Vec<u8>>,
}

/// What an fsync must do to the backing file, in order, to make it hold the logical content.
#[derive(Debug, PartialEq, Eq)]
pub struct WritebackPlan<'a> {
    /// First cut the backing file to this length (a truncate below the durable length happened).
    pub truncate_to: Option<u64>,
    /// Then write each extent at its offset.
    pub extents: Vec<(u64, &'a [u8])>,
    /// Finally set the length to this, when the writes alone do not leave it there.
    pub final_len: Option<u64>,
}

impl Overlay {
    /// A clean overlay over a backing file of `durable_len` bytes.
    pub fn new(durable_len: u64) -> Self {
        Overlay { durable_len, floor: durable_len, size: durable_len, extents: BTreeMap::new() }
    }

    /// The logical size of the file.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes held in memory (the sum of the extents' lengths).
    pub fn dirty_bytes(&self) -> u64 {
        self.extents.values().map(|e| e.len() as u64).sum()
    }

    /// True when the overlay changes nothing: an fsync would not touch the backing file.
    pub fn is_clean(&self) -> bool {
        self.extents.is_empty() && self.floor == self.durable_len && self.size == self.durable_len
    }

    /// The part of `[offset, offset+len)` that must come from the backing file: `[offset, end)`.
    /// The caller reads it (short reads are zeros) and then calls [`Overlay::apply_to`].
    pub fn backing_range(&self, offset: u64, len: u64) -> Option<(u64, u64)> {
        let end = offset.saturating_add(len).min(self.size).min(self.floor);
        (offset < end).then_some((offset, end))
    }

    /// The logical length of a read of `len` bytes at `offset` (0 at or past the end).
    pub fn read_len(&self, offset: u64, len: u64) -> u64 {
        offset.saturating_add(len).min(self.size).saturating_sub(offset)
    }

    /// Copies the extents that overlap `[offset, offset + buf.len())` into `buf`.
    pub fn apply_to(&self, offset: u64, buf: &mut [u8]) {
        let end = offset + buf.len() as u64;
        let first = self.extents.range(..=offset).next_back().map(|(s, _)| *s).unwrap_or(offset);
        for (&start, data) in self.extents.range(first..end) {
            let e_end = start + data.len() as u64;
            let lo = start.max(offset);
            let hi = e_end.min(end);
            if lo < hi {
                buf[(lo - offset) as usize..(hi - offset) as usize]
                    .copy_from_slice(&data[(lo - start) as usize..(hi - start) as usize]);
            }
        }
    }

    /// Records a write of `data` at `offset`, merging with every extent it overlaps or touches.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let end = offset + data.len() as u64;
        self.size = self.size.max(end);
        // Fast path (sequential appends): extend the extent that ends exactly here.
        if let Some((&start, prev)) = self.extents.range_mut(..offset).next_back() {
            let prev_end = start + prev.len() as u64;
            if prev_end == offset && self.extents.range(offset..=end).next().is_none() {
                self.extents.get_mut(&start).expect("just seen").extend_from_slice(data);
                return;
            }
        }
        let mut new_start = offset;
        let mut new_end = end;
        let mut merged: Vec<(u64, Vec<u8>)> = Vec::new();
        if let Some((&start, prev)) = self.extents.range(..offset).next_back() {
            if start + prev.len() as u64 >= offset {
                new_start = start;
                new_end = new_end.max(start + prev.len() as u64);
                merged.push((start, self.extents.remove(&start).expect("just seen")));
            }
        }
        let following: Vec<u64> = self.extents.range(offset..=end).map(|(s, _)| *s).collect();
        for start in following {
            let e = self.extents.remove(&start).expect("just listed");
            new_end = new_end.max(start + e.len() as u64);
            merged.push((start, e));
        }
        let mut buf = vec![0u8; (new_end - new_start) as usize];
        for (start, e) in &merged {
            let at = (start - new_start) as usize;
            buf[at..at + e.len()].copy_from_slice(e);
        }
        let at = (offset - new_start) as usize;
        buf[at..at + data.len()].copy_from_slice(data);
        self.extents.insert(new_start, buf);
    }

    /// Records a size change (truncate or extend): bytes past a shrink are gone, an extension
    /// reads as zeros.
    pub fn set_len(&mut self, len: u64) {
        if len < self.size {
            self.floor = self.floor.min(len);
            let cut: Vec<u64> = self.extents.range(len..).map(|(s, _)| *s).collect();
            for start in cut {
                self.extents.remove(&start);
            }
            if let Some((&start, e)) = self.extents.range_mut(..len).next_back() {
                let keep = (len - start) as usize;
                if e.len() > keep {
                    e.truncate(keep);
                }
            }
        }
        self.size = len;
    }

    /// The steps that make the backing file hold the logical content (see [`WritebackPlan`]).
    pub fn writeback_plan(&self) -> WritebackPlan<'_> {
        let truncate_to = (self.floor < self.durable_len).then_some(self.floor);
        let mut len_after = truncate_to.unwrap_or(self.durable_len);
        let extents: Vec<(u64, &[u8])> = self.extents.iter().map(|(s, e)| (*s, e.as_slice())).collect();
        if let Some((s, e)) = extents.last() {
            len_after = len_after.max(s + e.len() as u64);
        }
        let final_len = (len_after != self.size).then_some(self.size);
        WritebackPlan { truncate_to, extents, final_len }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the logical content of `o` over `backing` the way the filesystem does.
    fn read(o: &Overlay, backing: &[u8], offset: u64, len: u64) -> Vec<u8> {
        let mut buf = vec![0u8; o.read_len(offset, len) as usize];
        if let Some((lo, hi)) = o.backing_range(offset, len) {
            let src = &backing[lo.min(backing.len() as u64) as usize..hi.min(backing.len() as u64) as usize];
            buf[..src.len()].copy_from_slice(src);
        }
        o.apply_to(offset, &mut buf);
        buf
    }

    /// Applies the writeback plan to an in-memory backing file.
    fn writeback(o: &Overlay, backing: &mut Vec<u8>) {
        let plan = o.writeback_plan();
        if let Some(t) = plan.truncate_to {
            backing.truncate(t as usize);
        }
        for (off, data) in plan.extents {
            let end = off as usize + data.len();
            if backing.len() < end {
                backing.resize(end, 0);
            }
            backing[off as usize..end].copy_from_slice(data);
        }
        if let Some(l) = plan.final_len {
            backing.resize(l as usize, 0);
        }
    }

    #[test]
    fn reads_merge_backing_and_extents() {
        let backing = b"0123456789".to_vec();
        let mut o = Overlay::new(10);
        o.write(2, b"ab");
        o.write(8, b"xyz");
        assert_eq!(o.size(), 11);
        assert_eq!(read(&o, &backing, 0, 100), b"01ab4567xyz");
        assert_eq!(read(&o, &backing, 3, 2), b"b4");
        assert_eq!(read(&o, &backing, 11, 5), b"");
    }

    #[test]
    fn overlapping_and_touching_writes_merge_into_one_extent() {
        let mut o = Overlay::new(0);
        o.write(0, b"aaaa");
        o.write(4, b"bb");
        o.write(10, b"cc");
        o.write(3, b"XXXXXXXX");
        assert_eq!(o.extents.len(), 1);
        assert_eq!(read(&o, &[], 0, 100), b"aaaXXXXXXXXc");
        assert_eq!(o.dirty_bytes(), 12);
    }

    #[test]
    fn sequential_appends_extend_one_extent() {
        let mut o = Overlay::new(0);
        for i in 0..100u8 {
            o.write(u64::from(i), &[i]);
        }
        assert_eq!(o.extents.len(), 1);
        assert_eq!(read(&o, &[], 0, 200), (0..100u8).collect::<Vec<_>>());
    }

    #[test]
    fn truncate_then_extend_reads_zeros_not_old_bytes() {
        let backing = b"0123456789".to_vec();
        let mut o = Overlay::new(10);
        o.write(1, b"ab");
        o.set_len(2);
        o.set_len(6);
        o.write(5, b"Z");
        assert_eq!(read(&o, &backing, 0, 100), b"0a\0\0\0Z");
        let mut b = backing.clone();
        writeback(&o, &mut b);
        assert_eq!(b, b"0a\0\0\0Z");
    }

    #[test]
    fn writeback_makes_backing_equal_to_the_logical_content() {
        fn write_middle(o: &mut Overlay) {
            o.write(3, b"abc");
        }
        fn extend(o: &mut Overlay) {
            o.set_len(20);
        }
        fn shrink_then_write_past(o: &mut Overlay) {
            o.set_len(4);
            o.write(8, b"q");
        }
        fn write_past_then_shrink(o: &mut Overlay) {
            o.write(12, b"tail");
            o.set_len(13);
        }
        let cases: [fn(&mut Overlay); 4] = [write_middle, extend, shrink_then_write_past, write_past_then_shrink];
        for f in cases {
            let backing = b"0123456789".to_vec();
            let mut o = Overlay::new(10);
            f(&mut o);
            let expected = read(&o, &backing, 0, 1000);
            let mut b = backing.clone();
            writeback(&o, &mut b);
            assert_eq!(b, expected);
        }
    }

    #[test]
    fn clean_overlay_has_an_empty_plan() {
        let mut o = Overlay::new(5);
        assert!(o.is_clean());
        o.set_len(5);
        assert!(o.is_clean());
        assert_eq!(o.writeback_plan(), WritebackPlan { truncate_to: None, extents: vec![], final_len: None });
        o.write(0, b"x");
        assert!(!o.is_clean());
    }
}
