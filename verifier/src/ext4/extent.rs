//! File block maps: extent trees (`ext4_extent_header` 0xF30A, index and leaf nodes, the
//! extent tail checksum) and the ext2/ext3 indirect block map, both turned into a list of
//! logical-to-physical extents plus the metadata blocks the map itself occupies.

use super::Ext4;
use super::crc::crc32c_raw;
use super::inode::Inode;
use crate::bytes::{Le, ReadAt};
use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::HashSet;

/// `eh_magic`.
pub const EXT4_EXT_MAGIC: u16 = 0xF30A;
/// The deepest extent tree the kernel builds is 5 levels; anything deeper is corrupt.
pub const EXT4_MAX_EXTENT_DEPTH: u16 = 5;
/// Largest length of an initialized extent; longer `ee_len` values mark unwritten extents.
const EXT_INIT_MAX_LEN: u16 = 32768;

/// A run of `len` blocks of a file: logical block `logical` lives at physical `physical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Extent {
    pub logical: u64,
    pub physical: u64,
    pub len: u64,
    /// An unwritten (preallocated) extent: it reads as zeros.
    pub unwritten: bool,
}

/// Everything an inode's block map describes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlockMap {
    /// Data extents, sorted by logical block, never overlapping.
    pub extents: Vec<Extent>,
    /// Blocks of the map itself: extent tree index/leaf blocks or indirect blocks.
    pub meta_blocks: Vec<u64>,
}

/// An extent tree node header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtentHeader {
    pub eh_magic: u16,
    pub eh_entries: u16,
    pub eh_max: u16,
    pub eh_depth: u16,
    pub eh_generation: u32,
}

impl ExtentHeader {
    /// Decodes and checks a node header; `capacity` is how many 12-byte entries fit the node.
    pub fn parse(raw: &[u8], capacity: usize, name: &str, offset: Option<u64>) -> Result<Self> {
        crate::bytes::need(raw, 12, name, offset)?;
        let b = Le(raw);
        let h = ExtentHeader {
            eh_magic: b.u16(0),
            eh_entries: b.u16(2),
            eh_max: b.u16(4),
            eh_depth: b.u16(6),
            eh_generation: b.u32(8),
        };
        if h.eh_magic != EXT4_EXT_MAGIC {
            return Err(Error::corrupt(
                name,
                offset,
                format!("eh_magic is {:#06x}, expected {EXT4_EXT_MAGIC:#06x}", h.eh_magic),
            ));
        }
        if usize::from(h.eh_max) > capacity || h.eh_max == 0 {
            return Err(Error::corrupt(
                name,
                offset,
                format!("eh_max is {}, the node holds 1..={capacity} entries", h.eh_max),
            ));
        }
        if h.eh_entries > h.eh_max {
            return Err(Error::corrupt(
                name,
                offset,
                format!("eh_entries {} exceeds eh_max {}", h.eh_entries, h.eh_max),
            ));
        }
        if h.eh_depth > EXT4_MAX_EXTENT_DEPTH {
            return Err(Error::corrupt(
                name,
                offset,
                format!("eh_depth is {}, at most {EXT4_MAX_EXTENT_DEPTH}", h.eh_depth),
            ));
        }
        Ok(h)
    }
}

impl<R: ReadAt> Ext4<R> {
    /// The block map of `inode`: extent tree or indirect blocks. Loops (a block visited
    /// twice), overlapping extents and pointers outside the filesystem are errors; the work
    /// done is bounded by the filesystem's size.
    pub fn block_map(&self, inode: &Inode) -> Result<BlockMap> {
        let mut map = BlockMap::default();
        let mut seen = HashSet::new();
        if inode.has_extents() {
            let name = format!("ext4 inode {} extent header", inode.ino);
            let h = ExtentHeader::parse(&inode.i_block, 4, &name, Some(inode.offset + 0x28))?;
            self.extent_node(inode, &inode.i_block, h, None, &mut map, &mut seen, (0, u64::MAX))?;
        } else if inode.i_flags & super::inode::EXT4_INLINE_DATA_FL != 0 {
            return Err(Error::unsupported(
                format!("ext4 inode {}", inode.ino),
                Some(inode.offset),
                "inline data",
            ));
        } else {
            self.indirect_map(inode, &mut map, &mut seen)?;
        }
        // Leaves arrive in tree order; check that logical ranges never overlap.
        for w in map.extents.windows(2) {
            if w[0].logical + w[0].len > w[1].logical {
                return Err(Error::corrupt(
                    format!("ext4 inode {} block map", inode.ino),
                    Some(inode.offset),
                    format!(
                        "extents overlap: logical {}+{} and {}+{}",
                        w[0].logical, w[0].len, w[1].logical, w[1].len
                    ),
                ));
            }
        }
        Ok(map)
    }

    #[allow(clippy::too_many_arguments)]
    fn extent_node(
        &self,
        inode: &Inode,
        node: &[u8],
        h: ExtentHeader,
        block: Option<u64>,
        map: &mut BlockMap,
        seen: &mut HashSet<u64>,
        range: (u64, u64),
    ) -> Result<()> {
        let bs = self.sb.block_size();
        let name = match block {
            Some(b) => format!("ext4 inode {} extent block {b}", inode.ino),
            None => format!("ext4 inode {} extent root", inode.ino),
        };
        let node_off = block.map(|b| b * bs);
        let b = Le(node);
        let mut prev_end = range.0;
        for i in 0..usize::from(h.eh_entries) {
            let e = 12 + 12 * i;
            let lblk = u64::from(b.u32(e));
            if lblk < prev_end || lblk >= range.1 {
                return Err(Error::corrupt(
                    &name,
                    node_off,
                    format!("entry {i} starts at logical block {lblk}, outside {prev_end}..{}", range.1),
                ));
            }
            if h.eh_depth == 0 {
                let raw_len = b.u16(e + 4);
                let (len, unwritten) = if raw_len > EXT_INIT_MAX_LEN {
                    (raw_len - EXT_INIT_MAX_LEN, true)
                } else {
                    (raw_len, false)
                };
                let start = u64::from(b.u32(e + 8)) | (u64::from(b.u16(e + 6)) << 32);
                let len = u64::from(len);
                if len == 0
                    || start < u64::from(self.sb.s_first_data_block)
                    || start + len > self.sb.s_blocks_count
                {
                    return Err(Error::corrupt(
                        &name,
                        node_off,
                        format!(
                            "extent {i} ({start}+{len}) lies outside the filesystem's {} blocks",
                            self.sb.s_blocks_count
                        ),
                    ));
                }
                map.extents.push(Extent { logical: lblk, physical: start, len, unwritten });
                prev_end = lblk + len;
            } else {
                let child = u64::from(b.u32(e + 4)) | (u64::from(b.u16(e + 8)) << 32);
                let next = if i + 1 < usize::from(h.eh_entries) { u64::from(b.u32(e + 12)) } else { range.1 };
                if !seen.insert(child) {
                    return Err(Error::corrupt(
                        &name,
                        node_off,
                        format!("index {i} points at block {child} again: the extent tree has a loop"),
                    ));
                }
                let raw = self.read_block(child, &name)?;
                let cname = format!("ext4 inode {} extent block {child}", inode.ino);
                let ch = ExtentHeader::parse(&raw, (bs as usize - 12) / 12, &cname, Some(child * bs))?;
                if ch.eh_depth + 1 != h.eh_depth {
                    return Err(Error::corrupt(
                        &cname,
                        Some(child * bs),
                        format!("eh_depth is {}, expected {} below its parent", ch.eh_depth, h.eh_depth - 1),
                    ));
                }
                if self.sb.features.has_metadata_csum() {
                    let tail = 12 + 12 * usize::from(ch.eh_max);
                    let stored = Le(&raw).u32(tail);
                    let computed = crc32c_raw(inode.csum_seed(&self.sb), Le(&raw).bytes(0, tail));
                    if stored != computed {
                        return Err(Error::corrupt(
                            &cname,
                            Some(child * bs),
                            format!("et_checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"),
                        ));
                    }
                }
                map.meta_blocks.push(child);
                self.extent_node(inode, &raw, ch, Some(child), map, seen, (lblk, next))?;
                prev_end = lblk;
            }
        }
        Ok(())
    }

    /// The ext2/ext3 map: 12 direct pointers, then single, double and triple indirect blocks.
    fn indirect_map(&self, inode: &Inode, map: &mut BlockMap, seen: &mut HashSet<u64>) -> Result<()> {
        let b = Le(&inode.i_block);
        let per = self.sb.block_size() / 4;
        let mut logical = 0u64;
        for i in 0..12 {
            self.push_block(inode, map, logical, u64::from(b.u32(4 * i)))?;
            logical += 1;
        }
        let mut span = per;
        for level in 1..=3u32 {
            let ptr = u64::from(b.u32(4 * (11 + level as usize)));
            if ptr != 0 {
                self.indirect(inode, ptr, level, logical, map, seen)?;
            }
            logical += span;
            span = span.saturating_mul(per);
        }
        Ok(())
    }

    fn indirect(
        &self,
        inode: &Inode,
        block: u64,
        level: u32,
        first: u64,
        map: &mut BlockMap,
        seen: &mut HashSet<u64>,
    ) -> Result<()> {
        let name = format!("ext4 inode {} indirect block {block}", inode.ino);
        self.check_block(block, &name)?;
        if !seen.insert(block) {
            return Err(Error::corrupt(
                &name,
                Some(block * self.sb.block_size()),
                "reached twice: the block map has a loop",
            ));
        }
        map.meta_blocks.push(block);
        let raw = self.read_block(block, &name)?;
        let per = self.sb.block_size() / 4;
        let span = per.saturating_pow(level - 1);
        for i in 0..per {
            let ptr = u64::from(Le(&raw).u32(4 * i as usize));
            if ptr == 0 {
                continue;
            }
            let logical = first.saturating_add(i.saturating_mul(span));
            if level == 1 {
                self.push_block(inode, map, logical, ptr)?;
            } else {
                self.indirect(inode, ptr, level - 1, logical, map, seen)?;
            }
        }
        Ok(())
    }

    /// Appends one mapped block, merging it into the previous extent when contiguous.
    fn push_block(&self, inode: &Inode, map: &mut BlockMap, logical: u64, physical: u64) -> Result<()> {
        if physical == 0 {
            return Ok(());
        }
        self.check_block(physical, &format!("ext4 inode {} block map", inode.ino))?;
        if let Some(last) = map.extents.last_mut()
            && last.logical + last.len == logical
            && last.physical + last.len == physical
        {
            last.len += 1;
            return Ok(());
        }
        map.extents.push(Extent { logical, physical, len: 1, unwritten: false });
        Ok(())
    }
}
