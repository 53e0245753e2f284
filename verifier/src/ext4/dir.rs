//! Directories: linear blocks of `ext4_dir_entry_2` with the metadata_csum dirent tail, and
//! hashed (htree) directories: `dx_root`, `dx_node` and their `dx_tail` checksums.

use super::Ext4;
use super::crc::crc32c_raw;
use super::inode::{EXT4_INDEX_FL, Inode};
use crate::bytes::{Le, ReadAt};
use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// The hashes a block reached through the index may hold: `lo..hi`, where a set low bit
/// (the collision flag) on `hi` lets the block also hold names hashing to `hi & !1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashRange {
    pub lo: u64,
    pub hi: u64,
}

impl HashRange {
    fn contains(&self, h: u32) -> bool {
        let h = u64::from(h);
        let lo = self.lo & !1;
        let hi = self.hi & !1;
        h >= lo && (h < hi || (self.hi & 1 == 1 && h == hi))
    }
}

/// `det_reserved_ft` of the dirent tail that carries a leaf block's checksum.
pub const EXT4_DIR_TAIL_FT: u8 = 0xDE;

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirEntry {
    pub inode: u32,
    pub name: Vec<u8>,
    /// `file_type` code (0 without the filetype feature).
    pub file_type: u8,
}

/// What a directory holds: its entries and, for an htree, the logical blocks of its index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Directory {
    pub entries: Vec<DirEntry>,
    /// Logical blocks that hold `dx_root`/`dx_node` index data, not entries.
    pub index_blocks: Vec<u64>,
}

impl<R: ReadAt> Ext4<R> {
    /// Reads every entry of directory `inode` (including `.` and `..`), checking record
    /// lengths, the dirent tail checksums, and for htree directories the index structure
    /// and its checksums.
    pub fn read_dir(&self, inode: &Inode) -> Result<Directory> {
        let bs = self.sb.block_size();
        let name = format!("ext4 directory inode {}", inode.ino);
        if !inode.i_size.is_multiple_of(bs) || inode.i_size == 0 {
            return Err(Error::corrupt(
                &name,
                Some(inode.offset),
                format!("i_size {} is not a positive multiple of the block size {bs}", inode.i_size),
            ));
        }
        let nblocks = inode.i_size / bs;
        let map = self.block_map(inode)?;
        if let Some(e) = map.extents.last()
            && e.logical + e.len > nblocks
        {
            return Err(Error::corrupt(
                &name,
                Some(inode.offset),
                format!(
                    "block {} is mapped past i_size {} ({nblocks} blocks)",
                    e.logical + e.len - 1,
                    inode.i_size
                ),
            ));
        }
        let physical = |lblk: u64| {
            // Extents are sorted by logical block and never overlap.
            let i = map.extents.partition_point(|e| e.logical + e.len <= lblk);
            map.extents
                .get(i)
                .filter(|e| lblk >= e.logical && !e.unwritten)
                .map(|e| e.physical + (lblk - e.logical))
        };
        // Blocks are read one at a time, so a corrupt i_size costs no memory; a directory
        // may not have holes.
        let read = |lblk: u64| -> Result<Vec<u8>> {
            let p = physical(lblk).ok_or_else(|| {
                Error::corrupt(
                    format!("ext4 directory inode {}", inode.ino),
                    Some(inode.offset),
                    format!("block {lblk} of {nblocks} is a hole"),
                )
            })?;
            self.read_block(p, &format!("ext4 directory inode {} block {lblk}", inode.ino))
        };
        let csum = self.sb.features.has_metadata_csum();
        let seed = inode.csum_seed(&self.sb);
        let mut index = HashSet::new();
        let mut leaves = HashMap::new();
        let mut version = 0;
        if inode.i_flags & EXT4_INDEX_FL != 0 {
            let root = read(0)?;
            leaves = self.dx_walk(inode, &root, &read, nblocks, &mut index, &physical)?;
            version = root[0x1C];
            // EXT2_FLAGS_UNSIGNED_HASH turns versions 0..=2 into their unsigned variants.
            if version <= 2 && self.sb.s_flags & 0x2 != 0 {
                version += 3;
            }
        }
        let mut out = Directory::default();
        for lblk in 0..nblocks {
            if index.contains(&lblk) && lblk != 0 {
                continue;
            }
            let block = &read(lblk)?;
            let off = physical(lblk).map(|p| p * bs);
            let bname = format!("ext4 directory inode {} block {lblk}", inode.ino);
            let mut end = bs as usize;
            if csum {
                let t = Le(block);
                let tail = end - 12;
                if t.u32(tail) == 0
                    && t.u16(tail + 4) == 12
                    && t.u8(tail + 6) == 0
                    && t.u8(tail + 7) == EXT4_DIR_TAIL_FT
                {
                    let stored = t.u32(tail + 8);
                    let computed = crc32c_raw(seed, &block[..tail]);
                    if stored != computed {
                        return Err(Error::corrupt(
                            bname,
                            off,
                            format!(
                                "det_checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
                            ),
                        ));
                    }
                    end = tail;
                } else if !index.contains(&lblk) {
                    return Err(Error::corrupt(
                        bname,
                        off,
                        "the leaf block has no dirent tail (det_reserved_ft 0xde) although metadata_csum is on",
                    ));
                }
            }
            if index.contains(&lblk) {
                // Block 0 of an htree holds `.` and `..` as ordinary entries, then the root.
                end = 12 + usize::from(Le(block).u16(12 + 4)).min(bs as usize - 12);
            }
            let before = out.entries.len();
            self.parse_entries(
                &block[..end],
                &bname,
                off,
                bs as usize,
                &mut out.entries,
                lblk == 0 && index.contains(&0),
            )?;
            if let Some(range) = leaves.get(&lblk) {
                for e in &out.entries[before..] {
                    let Some(h) = super::hash::dx_hash(&e.name, version, &self.sb.s_hash_seed) else {
                        break;
                    };
                    if !range.contains(h) {
                        return Err(Error::corrupt(
                            &bname,
                            off,
                            format!(
                                "name {:?} hashes to {h:#010x}, outside the index range {:#x}..{:#x} of its block",
                                String::from_utf8_lossy(&e.name),
                                range.lo,
                                range.hi
                            ),
                        ));
                    }
                }
            } else if !leaves.is_empty() && !index.contains(&lblk) && out.entries.len() > before {
                return Err(Error::corrupt(&bname, off, "holds entries but no index entry points at it"));
            }
        }
        let mut idx: Vec<u64> = index.into_iter().collect();
        idx.sort_unstable();
        out.index_blocks = idx;
        Ok(out)
    }

    fn parse_entries(
        &self,
        block: &[u8],
        name: &str,
        off: Option<u64>,
        bs: usize,
        out: &mut Vec<DirEntry>,
        root: bool,
    ) -> Result<()> {
        let b = Le(block);
        let mut pos = 0usize;
        let filetype = self.sb.features.filetype();
        while pos < block.len() {
            if block.len() - pos < 8 {
                return Err(Error::corrupt(
                    name,
                    off,
                    format!("an entry at byte {pos} is cut short by the block end"),
                ));
            }
            let inode = b.u32(pos);
            let mut rec_len = usize::from(b.u16(pos + 4));
            if bs >= 65536 && (rec_len == 65535 || rec_len == 0) {
                rec_len = bs;
            }
            let (name_len, file_type) = if filetype {
                (usize::from(b.u8(pos + 6)), b.u8(pos + 7))
            } else {
                (usize::from(b.u16(pos + 6)), 0)
            };
            if rec_len < 8 || rec_len % 4 != 0 || pos + rec_len > block.len() || 8 + name_len > rec_len {
                return Err(Error::corrupt(
                    name,
                    off,
                    format!(
                        "entry at byte {pos}: rec_len {rec_len} with name_len {name_len} does not fit (must be a multiple of 4, >= 8 + name_len, within the block)"
                    ),
                ));
            }
            if inode != 0 {
                if inode > self.sb.s_inodes_count {
                    return Err(Error::corrupt(
                        name,
                        off,
                        format!(
                            "entry at byte {pos} names inode {inode}, beyond s_inodes_count {}",
                            self.sb.s_inodes_count
                        ),
                    ));
                }
                if name_len == 0 {
                    return Err(Error::corrupt(name, off, format!("entry at byte {pos} has an empty name")));
                }
                out.push(DirEntry { inode, name: b.bytes(pos + 8, name_len).to_vec(), file_type });
            }
            pos += rec_len;
            if root && out.len() >= 2 {
                break;
            }
        }
        Ok(())
    }

    /// Walks the hash index from `dx_root`, checking `dx_root_info`, limits, counts,
    /// ascending hashes and `dx_tail` checksums; records which logical blocks are index
    /// blocks.
    fn dx_walk(
        &self,
        inode: &Inode,
        root: &[u8],
        read: &dyn Fn(u64) -> Result<Vec<u8>>,
        nblocks: u64,
        index: &mut HashSet<u64>,
        physical: &dyn Fn(u64) -> Option<u64>,
    ) -> Result<HashMap<u64, HashRange>> {
        let bs = self.sb.block_size() as usize;
        let b = Le(root);
        let name = format!("ext4 directory inode {} dx_root", inode.ino);
        let off = physical(0).map(|p| p * bs as u64);
        let info_length = b.u8(0x1D);
        let levels = b.u8(0x1E);
        let max_levels = if self.sb.features.large_dir() { 3 } else { 2 };
        if b.u32(0x18) != 0 || info_length != 8 || levels >= max_levels {
            return Err(Error::corrupt(
                &name,
                off,
                format!(
                    "dx_root_info is wrong: reserved_zero {}, info_length {info_length} (expected 8), indirect_levels {levels} (below {max_levels})",
                    b.u32(0x18)
                ),
            ));
        }
        index.insert(0);
        let mut leaves = HashMap::new();
        let full = HashRange { lo: 0, hi: 1 << 32 };
        let mut frontier = vec![(0u64, 0x20usize, full)];
        for depth in 0..=levels {
            let mut next = Vec::new();
            for (lblk, count_off, range) in frontier {
                let owned;
                let block = if lblk == 0 {
                    root
                } else {
                    owned = read(lblk)?;
                    &owned[..]
                };
                let nname = if lblk == 0 {
                    name.clone()
                } else {
                    format!("ext4 directory inode {} dx_node block {lblk}", inode.ino)
                };
                let noff = physical(lblk).map(|p| p * bs as u64);
                let children = self.dx_entries(inode, block, count_off, &nname, noff)?;
                for (i, &(hash, child)) in children.iter().enumerate() {
                    if child >= nblocks || child == 0 {
                        return Err(Error::corrupt(
                            &nname,
                            noff,
                            format!("dx_entry {i} points at block {child}, outside 1..{nblocks}"),
                        ));
                    }
                    let lo = if i == 0 { range.lo } else { u64::from(hash) };
                    let hi = children.get(i + 1).map_or(range.hi, |&(h, _)| u64::from(h));
                    let sub = HashRange { lo, hi };
                    if depth < levels {
                        if !index.insert(child) {
                            return Err(Error::corrupt(
                                &nname,
                                noff,
                                format!("points at index block {child} twice: the htree has a loop"),
                            ));
                        }
                        next.push((child, 8usize, sub));
                    } else if leaves.insert(child, sub).is_some() || index.contains(&child) {
                        return Err(Error::corrupt(
                            &nname,
                            noff,
                            format!("leaf block {child} is reached twice through the index"),
                        ));
                    }
                }
            }
            frontier = next;
        }
        Ok(leaves)
    }

    /// The blocks an index node points at, after checking its limit, count, order and tail.
    fn dx_entries(
        &self,
        inode: &Inode,
        block: &[u8],
        count_off: usize,
        name: &str,
        off: Option<u64>,
    ) -> Result<Vec<(u32, u64)>> {
        let bs = block.len();
        let b = Le(block);
        let limit = usize::from(b.u16(count_off));
        let count = usize::from(b.u16(count_off + 2));
        let csum = self.sb.features.has_metadata_csum();
        let expected_limit = (bs - count_off) / 8 - usize::from(csum);
        if limit != expected_limit || count == 0 || count > limit {
            return Err(Error::corrupt(
                name,
                off,
                format!(
                    "limit {limit} (expected {expected_limit}) and count {count} (1..=limit) are inconsistent"
                ),
            ));
        }
        if csum {
            let tail = count_off + limit * 8;
            let stored = b.u32(tail + 4);
            let mut c = crc32c_raw(inode.csum_seed(&self.sb), &block[..count_off + count * 8]);
            c = crc32c_raw(c, b.bytes(tail, 4));
            c = crc32c_raw(c, &[0; 4]);
            if stored != c {
                return Err(Error::corrupt(
                    name,
                    off,
                    format!("dt_checksum mismatch: stored {stored:#010x}, computed {c:#010x}"),
                ));
            }
        }
        let mut out = vec![(0, u64::from(b.u32(count_off + 4)))];
        let mut prev = 0u32;
        for i in 1..count {
            let e = count_off + 8 * i;
            let hash = b.u32(e);
            if hash < prev {
                return Err(Error::corrupt(
                    name,
                    off,
                    format!("dx_entry {i} hash {hash:#010x} is below the previous {prev:#010x}"),
                ));
            }
            prev = hash;
            out.push((hash, u64::from(b.u32(e + 4))));
        }
        Ok(out)
    }
}
