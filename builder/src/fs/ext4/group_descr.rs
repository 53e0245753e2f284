//! Block group descriptors (32 bytes, or 64 with the 64bit feature) and their checksums.

use super::csum::{crc32c_raw, put_u16, put_u32};

/// `bg_flags`: the inode table is zeroed.
pub const EXT4_BG_INODE_ZEROED: u16 = 0x4;

#[derive(Debug, Clone, Default)]
pub struct GroupDesc {
    pub block_bitmap: u64,
    pub inode_bitmap: u64,
    pub inode_table: u64,
    pub free_blocks: u32,
    pub free_inodes: u32,
    pub used_dirs: u32,
    pub flags: u16,
    pub block_bitmap_csum: u32,
    pub inode_bitmap_csum: u32,
    pub itable_unused: u32,
}

impl GroupDesc {
    /// Serialises descriptor `group` into `out` (`desc_size` bytes) with its checksum.
    pub fn write(&self, out: &mut [u8], group: u32, fs_seed: u32) {
        let size = out.len();
        out.fill(0);
        put_u32(out, 0x0, self.block_bitmap as u32);
        put_u32(out, 0x4, self.inode_bitmap as u32);
        put_u32(out, 0x8, self.inode_table as u32);
        put_u16(out, 0xC, self.free_blocks as u16);
        put_u16(out, 0xE, self.free_inodes as u16);
        put_u16(out, 0x10, self.used_dirs as u16);
        put_u16(out, 0x12, self.flags);
        put_u16(out, 0x18, self.block_bitmap_csum as u16);
        put_u16(out, 0x1A, self.inode_bitmap_csum as u16);
        put_u16(out, 0x1C, self.itable_unused as u16);
        if size >= 64 {
            put_u32(out, 0x20, (self.block_bitmap >> 32) as u32);
            put_u32(out, 0x24, (self.inode_bitmap >> 32) as u32);
            put_u32(out, 0x28, (self.inode_table >> 32) as u32);
            put_u16(out, 0x2C, (self.free_blocks >> 16) as u16);
            put_u16(out, 0x2E, (self.free_inodes >> 16) as u16);
            put_u16(out, 0x30, (self.used_dirs >> 16) as u16);
            put_u16(out, 0x32, (self.itable_unused >> 16) as u16);
            put_u16(out, 0x38, (self.block_bitmap_csum >> 16) as u16);
            put_u16(out, 0x3A, (self.inode_bitmap_csum >> 16) as u16);
        }
        // bg_checksum: crc32c(seed, group number, descriptor with the checksum field zero).
        let c = crc32c_raw(crc32c_raw(fs_seed, &group.to_le_bytes()), out);
        put_u16(out, 0x1E, (c & 0xFFFF) as u16);
    }
}
