//! In-memory bitmaps: the planner's block allocator map and the on-disk block/inode bitmaps.

/// A fixed-size bit set, bit `i` = block or inode `i` in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    words: Vec<u64>,
    len: u64,
}

impl Bitmap {
    pub fn new(len: u64) -> Self {
        Bitmap { words: vec![0; len.div_ceil(64) as usize], len }
    }

    pub fn get(&self, i: u64) -> bool {
        i < self.len && self.words[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    pub fn set(&mut self, i: u64) {
        self.words[(i / 64) as usize] |= 1 << (i % 64);
    }

    pub fn set_range(&mut self, start: u64, len: u64) {
        for i in start..start + len {
            self.set(i);
        }
    }

    /// First clear bit at or after `from`, if any.
    pub fn next_clear(&self, from: u64) -> Option<u64> {
        let mut i = from;
        while i < self.len {
            let w = self.words[(i / 64) as usize] >> (i % 64);
            if w == u64::MAX >> (i % 64) {
                i = (i / 64 + 1) * 64;
                continue;
            }
            let skip = (!w).trailing_zeros() as u64;
            let pos = i + skip;
            return (pos < self.len).then_some(pos);
        }
        None
    }

    /// Number of set bits.
    pub fn count_ones(&self) -> u64 {
        self.words.iter().map(|w| w.count_ones() as u64).sum()
    }

    /// Number of set bits in `[start, start + len)`.
    pub fn count_range(&self, start: u64, len: u64) -> u64 {
        (start..start + len).filter(|&i| self.get(i)).count() as u64
    }

    /// The on-disk bitmap block for bits `[start, start + count)`: bit `k` of the block is
    /// bit `start + k`, and every bit from `count` to the end of the block is set (padding).
    pub fn block(&self, start: u64, count: u64, block_size: usize) -> Vec<u8> {
        let mut out = vec![0u8; block_size];
        for k in 0..(block_size as u64 * 8) {
            if k >= count || self.get(start + k) {
                out[(k / 8) as usize] |= 1 << (k % 8);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_clear_skips_full_words_and_stops_at_len() {
        let mut b = Bitmap::new(130);
        b.set_range(0, 129);
        assert_eq!(b.next_clear(0), Some(129));
        b.set(129);
        assert_eq!(b.next_clear(5), None);
        let blk = b.block(128, 2, 16);
        assert_eq!(blk, vec![0xFF; 16]);
        assert_eq!(b.count_range(120, 10), 10);
    }
}
