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

    pub fn len(&self) -> u64 {
        self.len
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

    /// The 8 bits from `pos` on (bits past the end read as clear).
    fn byte_at(&self, pos: u64) -> u8 {
        let (w, b) = ((pos / 64) as usize, pos % 64);
        let lo = self.words.get(w).copied().unwrap_or(0) >> b;
        let hi = if b > 56 { self.words.get(w + 1).copied().unwrap_or(0) << (64 - b) } else { 0 };
        let mut v = ((lo | hi) & 0xFF) as u8;
        if pos + 8 > self.len {
            v &= ((1u16 << self.len.saturating_sub(pos).min(8)) - 1) as u8;
        }
        v
    }

    /// Number of set bits in `[start, start + len)`.
    pub fn count_range(&self, start: u64, len: u64) -> u64 {
        let full = len / 8;
        let mut n: u64 = (0..full).map(|j| self.byte_at(start + 8 * j).count_ones() as u64).sum();
        for i in start + 8 * full..start + len {
            n += self.get(i) as u64;
        }
        n
    }

    /// The on-disk bitmap block for bits `[start, start + count)`: bit `k` of the block is
    /// bit `start + k`, and every bit from `count` to the end of the block is set (padding).
    pub fn block(&self, start: u64, count: u64, block_size: usize) -> Vec<u8> {
        let mut out = vec![0u8; block_size];
        for (j, byte) in out.iter_mut().enumerate() {
            let k = 8 * j as u64;
            if k + 8 <= count {
                *byte = self.byte_at(start + k);
            } else {
                for bit in 0..8 {
                    if k + bit >= count || self.get(start + k + bit) {
                        *byte |= 1 << bit;
                    }
                }
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
        // Unaligned starts and partial bytes agree with bit-by-bit reading.
        let mut c = Bitmap::new(200);
        for i in (0..200).filter(|i| i % 3 == 0 || i % 7 == 0) {
            c.set(i);
        }
        for start in [0, 5, 61, 63, 120] {
            let blk = c.block(start, 70, 16);
            for k in 0..128u64 {
                let want = k >= 70 || c.get(start + k);
                assert_eq!(blk[(k / 8) as usize] >> (k % 8) & 1 == 1, want, "start {start} bit {k}");
            }
            assert_eq!(c.count_range(start, 70), (start..start + 70).filter(|&i| c.get(i)).count() as u64);
        }
    }
}
