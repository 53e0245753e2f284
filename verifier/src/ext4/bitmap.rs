//! Block and inode bitmaps: their checksums, and the free counts they imply against the
//! group descriptors, the superblock totals, the ownership map and the walk.

use super::crc::crc32c_raw;
use super::owner::OwnerMap;
use super::walk::Entry;
use super::{Ext4, FileType};
use crate::bytes::{Le, ReadAt};
use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::{BTreeSet, HashSet};

/// What the bitmaps say, once checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BitmapTotals {
    pub free_blocks: u64,
    pub free_inodes: u64,
    pub used_dirs: u64,
}

pub(crate) fn bit(bytes: &[u8], i: u64) -> bool {
    bytes.get((i / 8) as usize).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

/// Fails unless every bit of a bitmap block from `used` (the group's blocks or inodes) to
/// the block's end is set: e2fsprogs and the kernel keep that padding set, so that nothing
/// past the group's end is ever allocated, and e2fsck reports it unset ("Padding at end of
/// ... bitmap is not set").
fn padding_set(raw: &[u8], used: u64, what: &str, offset: u64, unit: &str) -> Result<()> {
    let bits = raw.len() as u64 * 8;
    // Bit by bit up to a byte boundary, then whole bytes.
    let aligned = used.next_multiple_of(8).min(bits);
    let first = (used..aligned).find(|&i| !bit(raw, i)).or_else(|| {
        let k = raw.get((aligned / 8) as usize..)?.iter().position(|&b| b != 0xFF)?;
        let byte = raw[aligned as usize / 8 + k];
        Some(aligned + 8 * k as u64 + u64::from(byte.trailing_ones()))
    });
    if let Some(i) = first {
        return Err(Error::corrupt(
            what,
            Some(offset + i / 8),
            format!("bit {i} is clear: the padding past the group's {used} {unit}s must be all ones"),
        ));
    }
    Ok(())
}

impl<R: ReadAt> Ext4<R> {
    /// Checks one bitmap's metadata_csum checksum (16 bits with 32-byte descriptors).
    fn check_bitmap_csum(
        &self,
        what: &str,
        group: u32,
        raw: &[u8],
        bytes: usize,
        stored: u32,
        offset: u64,
    ) -> Result<()> {
        if !self.sb.features.has_metadata_csum() {
            return Ok(());
        }
        let mut computed = crc32c_raw(self.sb.csum_seed(), Le(raw).bytes(0, bytes));
        let mut stored = stored;
        if self.sb.desc_size() < 64 {
            computed &= 0xFFFF;
            stored &= 0xFFFF;
        }
        if computed != stored {
            return Err(Error::corrupt(
                format!("ext4 {what} of group {group}"),
                Some(offset),
                format!("checksum mismatch: descriptor says {stored:#010x}, computed {computed:#010x}"),
            ));
        }
        Ok(())
    }

    /// Checks every bitmap against its checksum, its descriptor's free count, the
    /// ownership map (a block is in use exactly when something owns it) and the walk (an
    /// inode is in use exactly when it is reserved or reachable), and the sums against the
    /// superblock.
    pub fn check_bitmaps(&self, owners: &OwnerMap, entries: &[Entry]) -> Result<BitmapTotals> {
        let sb = &self.sb;
        let bs = sb.block_size();
        let mut used_inodes: BTreeSet<u32> = entries.iter().map(|e| e.ino).collect();
        used_inodes.extend(self.special_inodes());
        used_inodes.extend(self.orphan_inodes()?);
        let mut dirs_per_group = vec![0u64; self.groups.len()];
        let mut seen = HashSet::new();
        for e in entries {
            if e.file_type == FileType::Directory && seen.insert(e.ino) {
                // The walk only yields inodes that `inode()` accepted (1..=s_inodes_count).
                let g = (e.ino.saturating_sub(1) / sb.s_inodes_per_group.max(1)) as usize;
                if let Some(d) = dirs_per_group.get_mut(g) {
                    *d += 1;
                }
            }
        }
        let mut totals = BitmapTotals { free_blocks: 0, free_inodes: 0, used_dirs: 0 };
        for gd in &self.groups {
            let g = u64::from(gd.group);
            let first = sb.group_first_block(g);
            let n = sb.blocks_in_group(g);
            let free = if gd.block_uninit() {
                n.saturating_sub(owners.owned_in(first, first.saturating_add(n)))
            } else {
                let what = format!("ext4 block bitmap of group {g}");
                let raw = self.read_block(gd.bg_block_bitmap, &what)?;
                let off = gd.bg_block_bitmap * bs;
                self.check_bitmap_csum(
                    "block bitmap",
                    gd.group,
                    &raw,
                    (sb.s_clusters_per_group / 8) as usize,
                    gd.bg_block_bitmap_csum,
                    off,
                )?;
                padding_set(&raw, n, &what, off, "block")?;
                let mut owned = vec![0u8; n.div_ceil(8) as usize];
                owners.mark_owned(first, first + n, &mut owned);
                let mut free = 0;
                for (k, (&have, &want)) in raw.iter().zip(&owned).enumerate() {
                    // Bits past the group's last block are padding, not compared.
                    let valid = (n - 8 * k as u64).min(8);
                    let mask = if valid >= 8 { 0xFF } else { (1u8 << valid) - 1 };
                    free += u64::from((!have & mask).count_ones());
                    let diff = (have ^ want) & mask;
                    if diff != 0 {
                        let i = 8 * k as u64 + u64::from(diff.trailing_zeros());
                        let block = first + i;
                        return Err(match owners.owner(block) {
                            None => Error::corrupt(
                                &what,
                                Some(off),
                                format!("block {block} is marked in use but no structure or file owns it"),
                            ),
                            Some(o) => Error::corrupt(
                                &what,
                                Some(off),
                                format!("block {block} is marked free but belongs to {o}"),
                            ),
                        });
                    }
                }
                free
            };
            if free != u64::from(gd.bg_free_blocks_count) {
                return Err(Error::corrupt(
                    format!("ext4 group descriptor {g}"),
                    None,
                    format!(
                        "bg_free_blocks_count is {}, the block bitmap has {free} free blocks",
                        gd.bg_free_blocks_count
                    ),
                ));
            }
            totals.free_blocks += free;

            let ipg = u64::from(sb.s_inodes_per_group);
            // Inode numbers of this group: `base + 1 ..= base + ipg` (u64, so no overflow).
            let base = g * ipg;
            let in_group = |from: u64| {
                let lo = u32::try_from(from).unwrap_or(u32::MAX);
                let hi = u32::try_from(base + ipg).unwrap_or(u32::MAX);
                // An empty range (`from` past the group) asks nothing; BTreeSet::range would
                // panic on it.
                if from > base + ipg { None } else { used_inodes.range(lo..=hi).next().copied() }
            };
            let free_inodes = if gd.inode_uninit() {
                if let Some(ino) = in_group(base + 1) {
                    return Err(Error::corrupt(
                        format!("ext4 group descriptor {g}"),
                        None,
                        format!("INODE_UNINIT is set but inode {ino} is in use"),
                    ));
                }
                ipg
            } else {
                let what = format!("ext4 inode bitmap of group {g}");
                let raw = self.read_block(gd.bg_inode_bitmap, &what)?;
                let off = gd.bg_inode_bitmap * bs;
                self.check_bitmap_csum(
                    "inode bitmap",
                    gd.group,
                    &raw,
                    (ipg / 8) as usize,
                    gd.bg_inode_bitmap_csum,
                    off,
                )?;
                padding_set(&raw, ipg, &what, off, "inode")?;
                let mut free = 0;
                for i in 0..ipg {
                    let ino = u32::try_from(base + i + 1).unwrap_or(u32::MAX);
                    let used = bit(&raw, i);
                    let reached = used_inodes.contains(&ino);
                    match (used, reached) {
                        (false, false) => free += 1,
                        (true, true) => {}
                        (true, false) => {
                            return Err(Error::corrupt(
                                &what,
                                Some(off),
                                format!("inode {ino} is marked in use but no directory names it"),
                            ));
                        }
                        (false, true) => {
                            return Err(Error::corrupt(
                                &what,
                                Some(off),
                                format!("inode {ino} is marked free but the tree names it"),
                            ));
                        }
                    }
                }
                free
            };
            if free_inodes != u64::from(gd.bg_free_inodes_count) {
                return Err(Error::corrupt(
                    format!("ext4 group descriptor {g}"),
                    None,
                    format!(
                        "bg_free_inodes_count is {}, the inode bitmap has {free_inodes} free inodes",
                        gd.bg_free_inodes_count
                    ),
                ));
            }
            totals.free_inodes += free_inodes;
            // With group checksums, inodes past `ipg - bg_itable_unused` were never used.
            if sb.features.gdt_csum() || sb.features.has_metadata_csum() {
                let unused = u64::from(gd.bg_itable_unused);
                if unused > ipg {
                    return Err(Error::corrupt(
                        format!("ext4 group descriptor {g}"),
                        None,
                        format!("bg_itable_unused {unused} exceeds s_inodes_per_group {ipg}"),
                    ));
                }
                // `unused == 0` (a full inode table) leaves nothing to check.
                if let Some(ino) = in_group(base + (ipg - unused) + 1) {
                    return Err(Error::corrupt(
                        format!("ext4 group descriptor {g}"),
                        None,
                        format!("bg_itable_unused {unused} says inode {ino} was never used, but it is"),
                    ));
                }
            }
            let dirs = dirs_per_group.get(g as usize).copied().unwrap_or(0);
            if dirs != u64::from(gd.bg_used_dirs_count) {
                return Err(Error::corrupt(
                    format!("ext4 group descriptor {g}"),
                    None,
                    format!(
                        "bg_used_dirs_count is {}, the tree has {} in the group",
                        gd.bg_used_dirs_count,
                        crate::report::count(
                            usize::try_from(dirs).unwrap_or(usize::MAX),
                            "directory",
                            "directories"
                        )
                    ),
                ));
            }
            totals.used_dirs += dirs;
        }
        if totals.free_blocks != sb.s_free_blocks_count {
            return Err(Error::corrupt(
                "ext4 superblock",
                Some(super::superblock::SUPERBLOCK_OFFSET),
                format!(
                    "s_free_blocks_count is {}, the bitmaps have {} free blocks",
                    sb.s_free_blocks_count, totals.free_blocks
                ),
            ));
        }
        if totals.free_inodes != u64::from(sb.s_free_inodes_count) {
            return Err(Error::corrupt(
                "ext4 superblock",
                Some(super::superblock::SUPERBLOCK_OFFSET),
                format!(
                    "s_free_inodes_count is {}, the bitmaps have {} free inodes",
                    sb.s_free_inodes_count, totals.free_inodes
                ),
            ));
        }
        Ok(totals)
    }
}
