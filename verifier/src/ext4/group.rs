//! Block group descriptors (`struct ext4_group_desc`, 32 or 64 bytes) and their checksums:
//! crc16 with gdt_csum, the low 16 bits of crc32c with metadata_csum.

use super::crc::{crc16, crc32c_raw};
use super::superblock::Superblock;
use crate::bytes::Le;
use crate::error::{Error, Result};
use serde::Serialize;

/// `bg_flags`: the inode table and bitmap are not initialized.
pub const EXT4_BG_INODE_UNINIT: u16 = 0x1;
/// `bg_flags`: the block bitmap is not initialized.
pub const EXT4_BG_BLOCK_UNINIT: u16 = 0x2;
/// `bg_flags`: the inode table is zeroed.
pub const EXT4_BG_INODE_ZEROED: u16 = 0x4;

/// One decoded group descriptor; `_lo`/`_hi` halves joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupDesc {
    pub group: u32,
    pub bg_block_bitmap: u64,
    pub bg_inode_bitmap: u64,
    pub bg_inode_table: u64,
    pub bg_free_blocks_count: u32,
    pub bg_free_inodes_count: u32,
    pub bg_used_dirs_count: u32,
    pub bg_flags: u16,
    pub bg_exclude_bitmap: u64,
    pub bg_block_bitmap_csum: u32,
    pub bg_inode_bitmap_csum: u32,
    pub bg_itable_unused: u32,
    pub bg_checksum: u16,
}

impl GroupDesc {
    /// Decodes descriptor `group` from its `raw` bytes (`desc_size` long) and checks its
    /// checksum and that its bitmaps and inode table lie inside the filesystem.
    pub fn parse(sb: &Superblock, group: u32, raw: &[u8], offset: u64) -> Result<Self> {
        let name = format!("ext4 group descriptor {group}");
        crate::bytes::need(raw, sb.desc_size() as usize, &name, Some(offset))?;
        let b = Le(raw);
        let wide = sb.desc_size() >= 64;
        let hi32 = |off: usize| if wide { u64::from(b.u32(off)) << 32 } else { 0 };
        let hi16 = |off: usize| if wide { u32::from(b.u16(off)) << 16 } else { 0 };
        let d = GroupDesc {
            group,
            bg_block_bitmap: u64::from(b.u32(0x0)) | hi32(0x20),
            bg_inode_bitmap: u64::from(b.u32(0x4)) | hi32(0x24),
            bg_inode_table: u64::from(b.u32(0x8)) | hi32(0x28),
            bg_free_blocks_count: u32::from(b.u16(0xC)) | hi16(0x2C),
            bg_free_inodes_count: u32::from(b.u16(0xE)) | hi16(0x2E),
            bg_used_dirs_count: u32::from(b.u16(0x10)) | hi16(0x30),
            bg_flags: b.u16(0x12),
            bg_exclude_bitmap: u64::from(b.u32(0x14)) | hi32(0x34),
            bg_block_bitmap_csum: u32::from(b.u16(0x18)) | hi16(0x38),
            bg_inode_bitmap_csum: u32::from(b.u16(0x1A)) | hi16(0x3A),
            bg_itable_unused: u32::from(b.u16(0x1C)) | hi16(0x32),
            bg_checksum: b.u16(0x1E),
        };
        if let Some(computed) = checksum(sb, group, &raw[..sb.desc_size() as usize])
            && computed != d.bg_checksum
        {
            return Err(Error::corrupt(
                name,
                Some(offset),
                format!("bg_checksum mismatch: stored {:#06x}, computed {computed:#06x}", d.bg_checksum),
            ));
        }
        let itable_blocks = sb.inode_table_blocks();
        for (field, block, len) in [
            ("bg_block_bitmap", d.bg_block_bitmap, 1),
            ("bg_inode_bitmap", d.bg_inode_bitmap, 1),
            ("bg_inode_table", d.bg_inode_table, itable_blocks),
        ] {
            if block < u64::from(sb.s_first_data_block) || block.saturating_add(len) > sb.s_blocks_count {
                return Err(Error::corrupt(
                    name,
                    Some(offset),
                    format!(
                        "{field} {block} (+{len} blocks) lies outside the filesystem's {} blocks",
                        sb.s_blocks_count
                    ),
                ));
            }
        }
        if d.bg_free_blocks_count as u64 > sb.blocks_in_group(u64::from(group)) {
            return Err(Error::corrupt(
                name,
                Some(offset),
                format!(
                    "bg_free_blocks_count {} exceeds the group's {} blocks",
                    d.bg_free_blocks_count,
                    sb.blocks_in_group(u64::from(group))
                ),
            ));
        }
        if d.bg_free_inodes_count > sb.s_inodes_per_group {
            return Err(Error::corrupt(
                name,
                Some(offset),
                format!(
                    "bg_free_inodes_count {} exceeds s_inodes_per_group {}",
                    d.bg_free_inodes_count, sb.s_inodes_per_group
                ),
            ));
        }
        Ok(d)
    }

    pub fn block_uninit(&self) -> bool {
        self.bg_flags & EXT4_BG_BLOCK_UNINIT != 0
    }
    pub fn inode_uninit(&self) -> bool {
        self.bg_flags & EXT4_BG_INODE_UNINIT != 0
    }
}

/// The checksum a descriptor should carry, or `None` when neither gdt_csum nor
/// metadata_csum is enabled.
pub fn checksum(sb: &Superblock, group: u32, raw: &[u8]) -> Option<u16> {
    let le_group = group.to_le_bytes();
    let head = raw.get(..0x1E)?;
    let tail = raw.get(0x20..).unwrap_or(&[]);
    if sb.features.has_metadata_csum() {
        let mut c = crc32c_raw(sb.csum_seed(), &le_group);
        c = crc32c_raw(c, head);
        c = crc32c_raw(c, &[0, 0]);
        c = crc32c_raw(c, tail);
        Some((c & 0xFFFF) as u16)
    } else if sb.features.gdt_csum() {
        let mut c = crc16(!0, &sb.s_uuid);
        c = crc16(c, &le_group);
        c = crc16(c, head);
        Some(crc16(c, tail))
    } else {
        None
    }
}

impl Superblock {
    /// Blocks taken by one group's inode table.
    pub fn inode_table_blocks(&self) -> u64 {
        (u64::from(self.s_inodes_per_group) * u64::from(self.s_inode_size)).div_ceil(self.block_size())
    }
}
