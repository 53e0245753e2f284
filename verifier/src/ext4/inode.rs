//! Inodes (`struct ext4_inode`): mode, owner, sizes, times with their extra precision,
//! flags, link count, device numbers and the inode checksum.

use super::crc::crc32c_raw;
use super::superblock::Superblock;
use crate::bytes::Le;
use crate::error::{Error, Result};
use serde::Serialize;

/// `i_flags`: the inode uses an extent tree.
pub const EXT4_EXTENTS_FL: u32 = 0x80000;
/// `i_flags`: the directory has a hashed index.
pub const EXT4_INDEX_FL: u32 = 0x1000;
/// `i_flags`: `i_blocks` counts filesystem blocks, not 512-byte sectors.
pub const EXT4_HUGE_FILE_FL: u32 = 0x40000;
/// `i_flags`: data is stored inside the inode.
pub const EXT4_INLINE_DATA_FL: u32 = 0x1000_0000;
/// `i_flags`: a verity file, whose Merkle tree is stored past `i_size`.
pub const EXT4_VERITY_FL: u32 = 0x10_0000;
/// `i_flags`: the inode holds a large extended attribute value.
pub const EXT4_EA_INODE_FL: u32 = 0x20_0000;

/// A time with nanoseconds: seconds since the epoch (widened by the epoch bits) and nsec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Timestamp {
    pub sec: i64,
    pub nsec: u32,
}

impl Timestamp {
    /// Decodes a 32-bit time and, when present, its `_extra` word: the low two bits extend
    /// the seconds (epoch bits), the upper 30 bits are nanoseconds.
    pub fn decode(secs: u32, extra: Option<u32>) -> Self {
        let base = i64::from(secs as i32);
        match extra {
            Some(x) => Timestamp { sec: base + (i64::from(x & 3) << 32), nsec: x >> 2 },
            None => Timestamp { sec: base, nsec: 0 },
        }
    }
}

/// The type of a file, from the top four bits of `i_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum FileType {
    Fifo,
    CharDevice,
    Directory,
    BlockDevice,
    Regular,
    Symlink,
    Socket,
}

impl FileType {
    pub fn from_mode(mode: u16) -> Option<Self> {
        Some(match mode & 0xF000 {
            0x1000 => FileType::Fifo,
            0x2000 => FileType::CharDevice,
            0x4000 => FileType::Directory,
            0x6000 => FileType::BlockDevice,
            0x8000 => FileType::Regular,
            0xA000 => FileType::Symlink,
            0xC000 => FileType::Socket,
            _ => return None,
        })
    }

    /// The type as a person names it: "regular file", "directory".
    pub fn as_str(self) -> &'static str {
        match self {
            FileType::Fifo => "FIFO",
            FileType::CharDevice => "character device",
            FileType::Directory => "directory",
            FileType::BlockDevice => "block device",
            FileType::Regular => "regular file",
            FileType::Symlink => "symlink",
            FileType::Socket => "socket",
        }
    }

    /// The directory entry `file_type` code for this type.
    pub fn dirent_code(self) -> u8 {
        match self {
            FileType::Regular => 1,
            FileType::Directory => 2,
            FileType::CharDevice => 3,
            FileType::BlockDevice => 4,
            FileType::Fifo => 5,
            FileType::Socket => 6,
            FileType::Symlink => 7,
        }
    }
}

/// One decoded inode. `_lo`/`_hi` halves are joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inode {
    pub ino: u32,
    /// Byte offset of the inode in the image.
    pub offset: u64,
    pub i_mode: u16,
    pub i_uid: u32,
    pub i_gid: u32,
    pub i_size: u64,
    pub i_atime: Timestamp,
    pub i_ctime: Timestamp,
    pub i_mtime: Timestamp,
    /// Creation time; `None` when the inode is too small to hold it.
    pub i_crtime: Option<Timestamp>,
    pub i_dtime: u32,
    pub i_links_count: u16,
    /// Raw `i_blocks_lo | l_i_blocks_high << 32`.
    pub i_blocks: u64,
    pub i_flags: u32,
    pub i_generation: u32,
    pub i_file_acl: u64,
    /// The 60 bytes of `i_block`: extent tree root, block map, symlink or device number.
    #[serde(skip)]
    pub i_block: [u8; 60],
    pub i_extra_isize: u16,
    pub i_checksum: u32,
    pub i_projid: u32,
    /// The bytes after `128 + i_extra_isize`, where in-inode extended attributes live.
    #[serde(skip)]
    pub ibody: Vec<u8>,
}

impl Inode {
    /// Decodes inode `ino` from its `s_inode_size` bytes and checks its checksum when
    /// metadata_csum is on. An all-zero inode (never used) is accepted without a checksum.
    pub fn parse(sb: &Superblock, ino: u32, raw: &[u8], offset: u64) -> Result<Self> {
        let name = format!("ext4 inode {ino}");
        let isz = usize::from(sb.s_inode_size);
        crate::bytes::need(raw, isz, &name, Some(offset))?;
        let raw = &raw[..isz];
        let b = Le(raw);
        let big = isz > 128;
        let i_extra_isize = if big { b.u16(0x80) } else { 0 };
        let end_extra = 128 + usize::from(i_extra_isize);
        if big && (end_extra > isz || i_extra_isize % 4 != 0) {
            return Err(Error::corrupt(
                name,
                Some(offset),
                format!("i_extra_isize {i_extra_isize} does not fit a {isz}-byte inode"),
            ));
        }
        // A field in the extra part exists only when i_extra_isize reaches past its end.
        let has = |field_end: usize| big && end_extra >= field_end;
        let i_checksum = u32::from(b.u16(0x7C)) | if has(0x84) { u32::from(b.u16(0x82)) << 16 } else { 0 };
        if sb.features.has_metadata_csum() && raw.iter().any(|&x| x != 0) {
            let computed = checksum(sb, ino, raw, has(0x84));
            if computed != i_checksum {
                return Err(Error::corrupt(
                    name,
                    Some(offset),
                    format!("i_checksum mismatch: stored {i_checksum:#010x}, computed {computed:#010x}"),
                ));
            }
        }
        let extra = |off: usize| if has(off + 4) { Some(b.u32(off)) } else { None };
        Ok(Inode {
            ino,
            offset,
            i_mode: b.u16(0x0),
            i_uid: u32::from(b.u16(0x2)) | (u32::from(b.u16(0x78)) << 16),
            i_gid: u32::from(b.u16(0x18)) | (u32::from(b.u16(0x7A)) << 16),
            i_size: u64::from(b.u32(0x4)) | (u64::from(b.u32(0x6C)) << 32),
            i_atime: Timestamp::decode(b.u32(0x8), extra(0x8C)),
            i_ctime: Timestamp::decode(b.u32(0xC), extra(0x84)),
            i_mtime: Timestamp::decode(b.u32(0x10), extra(0x88)),
            i_crtime: if has(0x94) { Some(Timestamp::decode(b.u32(0x90), extra(0x94))) } else { None },
            i_dtime: b.u32(0x14),
            i_links_count: b.u16(0x1A),
            i_blocks: u64::from(b.u32(0x1C)) | (u64::from(b.u16(0x74)) << 32),
            i_flags: b.u32(0x20),
            i_generation: b.u32(0x64),
            i_file_acl: u64::from(b.u32(0x68)) | (u64::from(b.u16(0x76)) << 32),
            i_block: b.array(0x28),
            i_extra_isize,
            i_checksum,
            i_projid: if has(0xA0) { b.u32(0x9C) } else { 0 },
            ibody: raw.get(end_extra.min(isz)..).unwrap_or(&[]).to_vec(),
        })
    }

    pub fn file_type(&self) -> Option<FileType> {
        FileType::from_mode(self.i_mode)
    }

    /// Permission bits including setuid, setgid and sticky.
    pub fn permissions(&self) -> u16 {
        self.i_mode & 0o7777
    }

    pub fn has_extents(&self) -> bool {
        self.i_flags & EXT4_EXTENTS_FL != 0
    }

    /// Space used in 512-byte sectors, as `stat` and debugfs report it.
    pub fn sectors(&self, sb: &Superblock) -> u64 {
        if sb.features.huge_file() && self.i_flags & EXT4_HUGE_FILE_FL != 0 {
            self.i_blocks.saturating_mul(sb.block_size() / 512)
        } else {
            self.i_blocks
        }
    }

    /// Major and minor device number of a character or block device. The old encoding
    /// (one 16-bit word in `i_block[0]`) is used when non-zero, else the new one in
    /// `i_block[1]`.
    pub fn device(&self) -> Option<(u32, u32)> {
        match self.file_type()? {
            FileType::CharDevice | FileType::BlockDevice => {}
            _ => return None,
        }
        let b = Le(&self.i_block);
        let old = b.u32(0);
        if old != 0 {
            return Some(((old >> 8) & 0xFF, old & 0xFF));
        }
        let new = b.u32(4);
        Some(((new & 0xFFF00) >> 8, (new & 0xFF) | ((new >> 12) & 0xFFF00)))
    }

    /// Whether a symlink's target is stored in `i_block` itself.
    pub fn is_fast_symlink(&self) -> bool {
        self.file_type() == Some(FileType::Symlink)
            && self.i_flags & (EXT4_EXTENTS_FL | EXT4_INLINE_DATA_FL) == 0
            && self.i_size < 60
    }

    /// Checksum seed of blocks owned by this inode (extent blocks, directory blocks).
    pub fn csum_seed(&self, sb: &Superblock) -> u32 {
        let c = crc32c_raw(sb.csum_seed(), &self.ino.to_le_bytes());
        crc32c_raw(c, &self.i_generation.to_le_bytes())
    }
}

/// The metadata_csum checksum of an inode: crc32c over the inode number, the generation
/// and the inode bytes with both checksum halves taken as zero.
pub fn checksum(sb: &Superblock, ino: u32, raw: &[u8], has_hi: bool) -> u32 {
    let mut c = crc32c_raw(sb.csum_seed(), &ino.to_le_bytes());
    c = crc32c_raw(c, raw.get(0x64..0x68).unwrap_or(&[0; 4]));
    c = crc32c_raw(c, raw.get(..0x7C).unwrap_or(&[]));
    c = crc32c_raw(c, &[0, 0]);
    if has_hi {
        c = crc32c_raw(c, raw.get(0x7E..0x82).unwrap_or(&[]));
        c = crc32c_raw(c, &[0, 0]);
        c = crc32c_raw(c, raw.get(0x84..).unwrap_or(&[]));
        c
    } else {
        c = crc32c_raw(c, raw.get(0x7E..).unwrap_or(&[]));
        c & 0xFFFF
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_decode_epoch_bits_and_nanoseconds() {
        let cases: &[(u32, Option<u32>, i64, u32)] = &[
            (0, None, 0, 0),
            (0x7FFF_FFFF, Some(0), 0x7FFF_FFFF, 0),
            (0x8000_0000, Some(0), -0x8000_0000, 0),
            (0x8000_0000, Some(1), 0x8000_0000, 0),
            (0xB09E_1900, Some((987_654_321 << 2) | 2), 7_258_118_400, 987_654_321),
            (0xFFFF_FFFF, None, -1, 0),
        ];
        for &(secs, extra, sec, nsec) in cases {
            assert_eq!(Timestamp::decode(secs, extra), Timestamp { sec, nsec }, "{secs:#x} {extra:?}");
        }
    }

    fn device(mode: u16, w0: u32, w1: u32) -> Option<(u32, u32)> {
        let mut i_block = [0u8; 60];
        i_block[..4].copy_from_slice(&w0.to_le_bytes());
        i_block[4..8].copy_from_slice(&w1.to_le_bytes());
        let inode = Inode {
            ino: 12,
            offset: 0,
            i_mode: mode,
            i_uid: 0,
            i_gid: 0,
            i_size: 0,
            i_atime: Timestamp { sec: 0, nsec: 0 },
            i_ctime: Timestamp { sec: 0, nsec: 0 },
            i_mtime: Timestamp { sec: 0, nsec: 0 },
            i_crtime: None,
            i_dtime: 0,
            i_links_count: 1,
            i_blocks: 0,
            i_flags: 0,
            i_generation: 0,
            i_file_acl: 0,
            i_block,
            i_extra_isize: 0,
            i_checksum: 0,
            i_projid: 0,
            ibody: Vec::new(),
        };
        inode.device()
    }

    #[test]
    fn device_numbers_old_and_new_encoding() {
        assert_eq!(device(0o020644, 0x0441, 0), Some((4, 65)));
        // 259:300000 only fits the new encoding: minor low byte, major, minor high bits.
        let new = (300_000 & 0xFF) | (259 << 8) | ((300_000 & !0xFF) << 12);
        assert_eq!(device(0o060644, 0, new), Some((259, 300_000)));
        assert_eq!(device(0o100644, 0x0441, 0), None);
    }
}
