//! The 256-byte ext4 inode: fields, nanosecond time encoding and the inode checksum.

use super::csum::{crc32c_raw, inode_seed, put_u16, put_u32};
use super::superblock::EXTRA_ISIZE;
use crate::tree::Timestamp;

pub const S_IFIFO: u16 = 0o010000;
pub const S_IFCHR: u16 = 0o020000;
pub const S_IFDIR: u16 = 0o040000;
pub const S_IFBLK: u16 = 0o060000;
pub const S_IFREG: u16 = 0o100000;
pub const S_IFLNK: u16 = 0o120000;
pub const S_IFSOCK: u16 = 0o140000;

pub const EXT4_INDEX_FL: u32 = 0x1000;
pub const EXT4_EXTENTS_FL: u32 = 0x80000;

/// Offset of the in-inode extended attribute area (after the 32 extra bytes).
pub const XATTR_IBODY_OFFSET: usize = 0x80 + EXTRA_ISIZE as usize;
pub const INODE_BYTES: usize = 256;

#[derive(Debug, Clone)]
pub struct Inode {
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime: Timestamp,
    pub ctime: Timestamp,
    pub mtime: Timestamp,
    pub crtime: Timestamp,
    pub links: u16,
    /// `i_blocks` in 512-byte units.
    pub blocks_512: u64,
    pub flags: u32,
    pub i_block: [u8; 60],
    pub file_acl: u64,
    /// The in-inode xattr area (magic + entries + values), empty for none.
    pub ibody_xattrs: Vec<u8>,
}

impl Default for Inode {
    fn default() -> Self {
        Inode {
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            atime: Timestamp::default(),
            ctime: Timestamp::default(),
            mtime: Timestamp::default(),
            crtime: Timestamp::default(),
            links: 0,
            blocks_512: 0,
            flags: 0,
            i_block: [0; 60],
            file_acl: 0,
            ibody_xattrs: Vec::new(),
        }
    }
}

/// Earliest and latest second ext4 can store (32-bit seconds plus two epoch bits).
pub const MIN_SECS: i64 = -(1 << 31);
pub const MAX_SECS: i64 = (1 << 34) - (1 << 31) - 1;

/// Splits a time into ext4's 32-bit seconds and the `_extra` word (epoch bits + nanos).
/// Times outside ext4's range are clamped to it.
pub fn encode_time(t: Timestamp) -> (u32, u32) {
    let secs = t.secs.clamp(MIN_SECS, MAX_SECS);
    let lo = secs as i32;
    let epoch = (((secs - lo as i64) >> 32) & 3) as u32;
    (lo as u32, epoch | (t.nanos.min(999_999_999) << 2))
}

impl Inode {
    pub fn to_bytes(&self, ino: u32, fs_seed: u32) -> [u8; INODE_BYTES] {
        let mut b = [0u8; INODE_BYTES];
        put_u16(&mut b, 0x0, self.mode);
        put_u16(&mut b, 0x2, self.uid as u16);
        put_u32(&mut b, 0x4, self.size as u32);
        let (a, ax) = encode_time(self.atime);
        let (c, cx) = encode_time(self.ctime);
        let (m, mx) = encode_time(self.mtime);
        let (cr, crx) = encode_time(self.crtime);
        put_u32(&mut b, 0x8, a);
        put_u32(&mut b, 0xC, c);
        put_u32(&mut b, 0x10, m);
        put_u16(&mut b, 0x18, self.gid as u16);
        put_u16(&mut b, 0x1A, self.links);
        put_u32(&mut b, 0x1C, self.blocks_512 as u32);
        put_u32(&mut b, 0x20, self.flags);
        b[0x28..0x64].copy_from_slice(&self.i_block);
        put_u32(&mut b, 0x68, self.file_acl as u32);
        put_u32(&mut b, 0x6C, (self.size >> 32) as u32);
        put_u16(&mut b, 0x74, (self.blocks_512 >> 32) as u16);
        put_u16(&mut b, 0x76, (self.file_acl >> 32) as u16);
        put_u16(&mut b, 0x78, (self.uid >> 16) as u16);
        put_u16(&mut b, 0x7A, (self.gid >> 16) as u16);
        put_u16(&mut b, 0x80, EXTRA_ISIZE);
        put_u32(&mut b, 0x84, cx);
        put_u32(&mut b, 0x88, mx);
        put_u32(&mut b, 0x8C, ax);
        put_u32(&mut b, 0x90, cr);
        put_u32(&mut b, 0x94, crx);
        b[XATTR_IBODY_OFFSET..XATTR_IBODY_OFFSET + self.ibody_xattrs.len()]
            .copy_from_slice(&self.ibody_xattrs);
        // i_checksum_lo (0x7C) and i_checksum_hi (0x82) are zero while summing.
        let csum = crc32c_raw(inode_seed(fs_seed, ino, 0), &b);
        put_u16(&mut b, 0x7C, (csum & 0xFFFF) as u16);
        put_u16(&mut b, 0x82, (csum >> 16) as u16);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_before_1970_and_after_2038_use_epoch_bits() {
        assert_eq!(encode_time(Timestamp { secs: -1, nanos: 5 }), (u32::MAX, 5 << 2));
        assert_eq!(encode_time(Timestamp { secs: 1 << 32, nanos: 0 }), (0, 1));
        assert_eq!(encode_time(Timestamp { secs: 0x8000_0000, nanos: 0 }), (0x8000_0000, 1));
        assert_eq!(encode_time(Timestamp { secs: i64::MIN, nanos: 0 }), (0x8000_0000, 0));
        assert_eq!(encode_time(Timestamp { secs: i64::MAX, nanos: 0 }), (0x7FFF_FFFF, 3));
    }
}
