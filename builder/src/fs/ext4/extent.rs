//! Extent trees: the 60-byte root in `i_block` and, beyond four extents, leaf and index blocks.

use super::csum::{crc32c_raw, put_u16, put_u32};

pub const EXT4_EXT_MAGIC: u16 = 0xF30A;
/// Longest initialized extent.
pub const MAX_EXTENT_LEN: u64 = 32768;
/// Entries in the inode's root node.
const ROOT_MAX: usize = 4;
/// Entries in a 4 KiB tree block: (4096 - 12-byte header - 4-byte tail) / 12.
const BLOCK_MAX: usize = 340;

/// One mapping: `len` blocks from logical block `logical` at physical block `physical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub logical: u32,
    pub physical: u64,
    pub len: u16,
}

/// Tree blocks needed to map `n` extents.
pub fn tree_blocks(n: usize) -> usize {
    let mut total = 0;
    let mut count = n;
    while count > ROOT_MAX {
        count = count.div_ceil(BLOCK_MAX);
        total += count;
    }
    total
}

fn header(out: &mut [u8], entries: usize, max: usize, depth: u16) {
    put_u16(out, 0x0, EXT4_EXT_MAGIC);
    put_u16(out, 0x2, entries as u16);
    put_u16(out, 0x4, max as u16);
    put_u16(out, 0x6, depth);
    put_u32(out, 0x8, 0); // eh_generation
}

/// An entry of one tree level: its first logical block and its 12 bytes.
type Entry = (u32, [u8; 12]);

fn leaf_entry(e: &Extent) -> Entry {
    let mut b = [0u8; 12];
    put_u32(&mut b, 0x0, e.logical);
    put_u16(&mut b, 0x4, e.len);
    put_u16(&mut b, 0x6, (e.physical >> 32) as u16);
    put_u32(&mut b, 0x8, e.physical as u32);
    (e.logical, b)
}

fn index_entry(first_logical: u32, block: u64) -> Entry {
    let mut b = [0u8; 12];
    put_u32(&mut b, 0x0, first_logical);
    put_u32(&mut b, 0x4, block as u32);
    put_u16(&mut b, 0x8, (block >> 32) as u16);
    (first_logical, b)
}

/// Builds the tree for `extents` (sorted, non-overlapping). `blocks` supplies at least
/// [`tree_blocks`]`(extents.len())` physical blocks, used in order. Returns the `i_block`
/// bytes and the tree blocks to write, each with its checksum (`inode_seed`).
pub fn build(extents: &[Extent], blocks: &[u64], inode_seed: u32) -> ([u8; 60], Vec<(u64, Vec<u8>)>) {
    let mut level: Vec<Entry> = extents.iter().map(leaf_entry).collect();
    let mut depth = 0u16;
    let mut out = Vec::new();
    let mut next = blocks.iter();
    while level.len() > ROOT_MAX {
        let mut up = Vec::new();
        for chunk in level.chunks(BLOCK_MAX) {
            // The caller supplies tree_blocks(n) blocks, which is exactly what this loop uses.
            let blk = *next.next().expect("caller supplies tree_blocks(n) blocks");
            let mut b = vec![0u8; 4096];
            header(&mut b, chunk.len(), BLOCK_MAX, depth);
            for (i, (_, e)) in chunk.iter().enumerate() {
                b[12 + 12 * i..24 + 12 * i].copy_from_slice(e);
            }
            let tail = 12 + 12 * BLOCK_MAX;
            let c = crc32c_raw(inode_seed, &b[..tail]);
            put_u32(&mut b, tail, c);
            up.push(index_entry(chunk[0].0, blk));
            out.push((blk, b));
        }
        level = up;
        depth += 1;
    }
    let mut root = [0u8; 60];
    header(&mut root, level.len(), ROOT_MAX, depth);
    for (i, (_, e)) in level.iter().enumerate() {
        root[12 + 12 * i..24 + 12 * i].copy_from_slice(e);
    }
    (root, out)
}

/// Extents covering physical runs given as (logical, physical, len), merged where both
/// logically and physically contiguous and split at [`MAX_EXTENT_LEN`].
pub fn from_runs(runs: impl IntoIterator<Item = (u64, u64, u64)>) -> Vec<Extent> {
    let mut out: Vec<Extent> = Vec::new();
    for (mut logical, mut physical, mut len) in runs {
        while len > 0 {
            if let Some(last) = out.last_mut() {
                let l = last.len as u64;
                if last.logical as u64 + l == logical && last.physical + l == physical && l < MAX_EXTENT_LEN {
                    let take = len.min(MAX_EXTENT_LEN - l);
                    last.len = (l + take) as u16;
                    logical += take;
                    physical += take;
                    len -= take;
                    continue;
                }
            }
            let take = len.min(MAX_EXTENT_LEN);
            out.push(Extent { logical: logical as u32, physical, len: take as u16 });
            logical += take;
            physical += take;
            len -= take;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_block_counts() {
        assert_eq!(tree_blocks(4), 0);
        assert_eq!(tree_blocks(5), 1);
        assert_eq!(tree_blocks(340 * 4), 4);
        assert_eq!(tree_blocks(340 * 4 + 1), 6);
    }

    #[test]
    fn runs_merge_and_split() {
        let e = from_runs([(0, 100, 10), (10, 110, 5), (15, 200, 40000)]);
        assert_eq!(
            e,
            vec![
                Extent { logical: 0, physical: 100, len: 15 },
                Extent { logical: 15, physical: 200, len: 32768 },
                Extent { logical: 15 + 32768, physical: 200 + 32768, len: 40000 - 32768 },
            ]
        );
    }
}
