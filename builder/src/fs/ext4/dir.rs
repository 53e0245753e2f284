//! Directory blocks: linear blocks with the checksum tail, and htree (dx_root, dx_node, leaves).

use super::csum::{crc32c_raw, put_u16, put_u32};
use super::hash::half_md4;
use super::superblock::EXT2_HASH_HALF_MD4;

const BS: usize = 4096;
/// Usable bytes of a leaf block: the last 12 are the checksum tail.
const LEAF_SPACE: usize = BS - 12;
/// dx_entries in the root block: (4096 - 0x20 header - 8-byte tail) / 8.
const ROOT_LIMIT: usize = (BS - 0x20 - 8) / 8;
/// dx_entries in an index node: (4096 - 8 fake dirent - 8-byte tail) / 8.
const NODE_LIMIT: usize = (BS - 8 - 8) / 8;

pub const FT_REG: u8 = 1;
pub const FT_DIR: u8 = 2;
pub const FT_CHR: u8 = 3;
pub const FT_BLK: u8 = 4;
pub const FT_FIFO: u8 = 5;
pub const FT_SOCK: u8 = 6;
pub const FT_SYMLINK: u8 = 7;

#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub name: &'a [u8],
    pub ino: u32,
    pub file_type: u8,
}

fn rec_len(name_len: usize) -> usize {
    (8 + name_len + 3) & !3
}

/// A directory's blocks in logical order, and whether it is an htree.
pub struct DirBlocks {
    pub blocks: Vec<Vec<u8>>,
    pub indexed: bool,
}

/// Fills leaf blocks with entries; each block's last entry stretches to the tail.
struct LeafWriter {
    blocks: Vec<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    last: Option<usize>,
}

impl LeafWriter {
    fn new() -> Self {
        LeafWriter { blocks: Vec::new(), cur: vec![0; BS], pos: 0, last: None }
    }

    fn fits(&self, name_len: usize) -> bool {
        self.pos + rec_len(name_len) <= LEAF_SPACE
    }

    fn push(&mut self, e: &Entry) {
        let rl = rec_len(e.name.len());
        let b = &mut self.cur[self.pos..];
        put_u32(b, 0, e.ino);
        put_u16(b, 4, rl as u16);
        b[6] = e.name.len() as u8;
        b[7] = e.file_type;
        b[8..8 + e.name.len()].copy_from_slice(e.name);
        self.last = Some(self.pos);
        self.pos += rl;
    }

    fn finish_block(&mut self) {
        match self.last {
            Some(l) => put_u16(&mut self.cur, l + 4, (LEAF_SPACE - l) as u16),
            // An empty block is one unused entry spanning it.
            None => put_u16(&mut self.cur, 4, LEAF_SPACE as u16),
        }
        self.blocks.push(std::mem::replace(&mut self.cur, vec![0; BS]));
        self.pos = 0;
        self.last = None;
    }
}

/// Writes the checksum tail (`det_reserved_ft = 0xDE`) of a leaf block.
fn leaf_tail(b: &mut [u8], seed: u32) {
    put_u32(b, LEAF_SPACE, 0);
    put_u16(b, LEAF_SPACE + 4, 12);
    b[LEAF_SPACE + 6] = 0;
    b[LEAF_SPACE + 7] = 0xDE;
    let c = crc32c_raw(seed, &b[..LEAF_SPACE]);
    put_u32(b, LEAF_SPACE + 8, c);
}

/// Writes count and the dx tail checksum of an index block whose count/limit is at `cl`.
fn dx_tail(b: &mut [u8], cl: usize, count: usize, limit: usize, seed: u32) {
    put_u16(b, cl, limit as u16);
    put_u16(b, cl + 2, count as u16);
    let tail = cl + limit * 8;
    put_u32(b, tail, 0);
    put_u32(b, tail + 4, 0);
    let c = crc32c_raw(crc32c_raw(seed, &b[..cl + count * 8]), &b[tail..tail + 8]);
    put_u32(b, tail + 4, c);
}

/// Number of blocks a linear directory with these entries (plus `.` and `..`) fills.
pub fn fits_one_block(entries: &[Entry]) -> bool {
    rec_len(1) + rec_len(2) + entries.iter().map(|e| rec_len(e.name.len())).sum::<usize>() <= LEAF_SPACE
}

/// Lays out a directory. `entries` are sorted bytewise; `min_blocks` pads a linear
/// directory with empty blocks (lost+found). `seed` is the inode checksum seed.
pub fn build(
    self_ino: u32,
    parent_ino: u32,
    entries: &[Entry],
    hash_seed: &[u8; 16],
    min_blocks: usize,
    seed: u32,
) -> Result<DirBlocks, ()> {
    if fits_one_block(entries) {
        let mut w = LeafWriter::new();
        w.push(&Entry { name: b".", ino: self_ino, file_type: FT_DIR });
        w.push(&Entry { name: b"..", ino: parent_ino, file_type: FT_DIR });
        for e in entries {
            w.push(e);
        }
        w.finish_block();
        while w.blocks.len() < min_blocks {
            w.finish_block();
        }
        let mut blocks = w.blocks;
        for b in &mut blocks {
            leaf_tail(b, seed);
        }
        return Ok(DirBlocks { blocks, indexed: false });
    }
    build_htree(self_ino, parent_ino, entries, hash_seed, seed)
        .map(|blocks| DirBlocks { blocks, indexed: true })
}

fn build_htree(
    self_ino: u32,
    parent_ino: u32,
    entries: &[Entry],
    hash_seed: &[u8; 16],
    seed: u32,
) -> Result<Vec<Vec<u8>>, ()> {
    let mut hashed: Vec<(u32, &Entry)> = entries.iter().map(|e| (half_md4(e.name, hash_seed), e)).collect();
    hashed.sort_by(|a, b| (a.0, a.1.name).cmp(&(b.0, b.1.name)));
    // Leaves: runs of equal hashes never straddle two blocks, so every block's first hash
    // is a clean split key.
    let mut w = LeafWriter::new();
    let mut keys: Vec<u32> = Vec::new();
    let mut i = 0;
    while i < hashed.len() {
        let h = hashed[i].0;
        let mut j = i;
        let mut need = 0;
        while j < hashed.len() && hashed[j].0 == h {
            need += rec_len(hashed[j].1.name.len());
            j += 1;
        }
        if need > LEAF_SPACE {
            return Err(());
        }
        if w.pos + need > LEAF_SPACE {
            w.finish_block();
        }
        if w.pos == 0 {
            keys.push(h);
        }
        for (_, e) in &hashed[i..j] {
            debug_assert!(w.fits(e.name.len()));
            w.push(e);
        }
        i = j;
    }
    w.finish_block();
    let mut leaves = w.blocks;
    for b in &mut leaves {
        leaf_tail(b, seed);
    }
    let n_leaves = leaves.len();
    // Index levels: root -> leaves, or root -> nodes -> leaves.
    let (levels, n_nodes) = if n_leaves <= ROOT_LIMIT {
        (0u8, 0usize)
    } else {
        let n = n_leaves.div_ceil(NODE_LIMIT);
        if n > ROOT_LIMIT {
            return Err(());
        }
        (1, n)
    };
    let first_leaf = 1 + n_nodes;
    let mut root = vec![0u8; BS];
    put_u32(&mut root, 0, self_ino);
    put_u16(&mut root, 4, 12);
    root[6] = 1;
    root[7] = FT_DIR;
    root[8] = b'.';
    put_u32(&mut root, 12, parent_ino);
    put_u16(&mut root, 16, (BS - 12) as u16);
    root[18] = 2;
    root[19] = FT_DIR;
    root[20] = b'.';
    root[21] = b'.';
    root[0x1C] = EXT2_HASH_HALF_MD4; // dx_root_info.hash_version
    root[0x1D] = 8; // info_length
    root[0x1E] = levels;
    let root_targets: Vec<(u32, u32)> = if levels == 0 {
        (0..n_leaves).map(|k| (keys[k], (first_leaf + k) as u32)).collect()
    } else {
        (0..n_nodes).map(|k| (keys[k * NODE_LIMIT], (1 + k) as u32)).collect()
    };
    write_dx_entries(&mut root, 0x20, &root_targets);
    dx_tail(&mut root, 0x20, root_targets.len(), ROOT_LIMIT, seed);
    let mut out = vec![root];
    for k in 0..n_nodes {
        let mut node = vec![0u8; BS];
        put_u16(&mut node, 4, BS as u16); // fake dirent: inode 0 spanning the block
        let lo = k * NODE_LIMIT;
        let hi = (lo + NODE_LIMIT).min(n_leaves);
        let targets: Vec<(u32, u32)> = (lo..hi).map(|l| (keys[l], (first_leaf + l) as u32)).collect();
        write_dx_entries(&mut node, 8, &targets);
        dx_tail(&mut node, 8, targets.len(), NODE_LIMIT, seed);
        out.push(node);
    }
    out.extend(leaves);
    Ok(out)
}

/// Entry 0 shares its hash slot with count/limit; later entries carry their hash.
fn write_dx_entries(b: &mut [u8], cl: usize, targets: &[(u32, u32)]) {
    for (k, &(hash, block)) in targets.iter().enumerate() {
        if k > 0 {
            put_u32(b, cl + 8 * k, hash);
        }
        put_u32(b, cl + 8 * k + 4, block);
    }
}
