//! The ext4 superblock (1024 bytes at byte 1024 of the filesystem and in backup groups).

use super::Ext4Options;
use super::csum::{crc32c_raw, put_u16, put_u32, put_u64};
use super::planner::Geometry;

pub const EXT4_SUPER_MAGIC: u16 = 0xEF53;

pub const COMPAT_HAS_JOURNAL: u32 = 0x4;
pub const COMPAT_EXT_ATTR: u32 = 0x8;
pub const COMPAT_RESIZE_INODE: u32 = 0x10;
pub const COMPAT_DIR_INDEX: u32 = 0x20;

pub const INCOMPAT_FILETYPE: u32 = 0x2;
pub const INCOMPAT_EXTENTS: u32 = 0x40;
pub const INCOMPAT_64BIT: u32 = 0x80;
pub const INCOMPAT_FLEX_BG: u32 = 0x200;

/// `s_feature_incompat` of every filesystem we write: filetype, extents, flex_bg, and 64bit
/// when the size needs it (or it is asked for).
pub fn incompat_features(is_64bit: bool) -> u32 {
    let base = INCOMPAT_FILETYPE | INCOMPAT_EXTENTS | INCOMPAT_FLEX_BG;
    if is_64bit { base | INCOMPAT_64BIT } else { base }
}

pub const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
pub const RO_COMPAT_LARGE_FILE: u32 = 0x2;
pub const RO_COMPAT_HUGE_FILE: u32 = 0x8;
pub const RO_COMPAT_DIR_NLINK: u32 = 0x20;
pub const RO_COMPAT_EXTRA_ISIZE: u32 = 0x40;
pub const RO_COMPAT_METADATA_CSUM: u32 = 0x400;

/// `s_flags`: directory hashes treat name bytes as signed (as mke2fs on x86 does).
pub const EXT2_FLAGS_SIGNED_HASH: u32 = 0x1;
/// `s_def_hash_version`: half_md4.
pub const EXT2_HASH_HALF_MD4: u8 = 1;
pub const LOG_GROUPS_PER_FLEX: u8 = 4;
pub const JOURNAL_INO: u32 = 8;
pub const FIRST_INO: u32 = 11;
pub const INODE_SIZE: u16 = 256;
/// Bytes of the inode past the 128-byte base that our inodes use (up to i_projid).
pub const EXTRA_ISIZE: u16 = 32;

/// Counters that are only known after the data has been written.
pub struct SuperCounts {
    pub free_blocks: u64,
    pub free_inodes: u32,
    /// `s_jnl_blocks`: the journal inode's `i_block` and its size (high, low).
    pub jnl_blocks: [u32; 17],
}

/// Serialises the superblock; `group` is the group it is stored in (`s_block_group_nr`).
pub fn build(geo: &Geometry, opts: &Ext4Options, counts: &SuperCounts, group: u32) -> [u8; 1024] {
    let mut b = [0u8; 1024];
    let t = opts.time.secs;
    let (t_lo, t_hi) = (t as u32, ((t >> 32) & 0xFF) as u8);
    put_u32(&mut b, 0x0, geo.inodes_count());
    put_u32(&mut b, 0x4, geo.blocks as u32);
    put_u32(&mut b, 0x8, geo.r_blocks as u32);
    put_u32(&mut b, 0xC, counts.free_blocks as u32);
    put_u32(&mut b, 0x10, counts.free_inodes);
    put_u32(&mut b, 0x14, 0); // s_first_data_block
    put_u32(&mut b, 0x18, 2); // s_log_block_size: 1024 << 2
    put_u32(&mut b, 0x1C, 2); // s_log_cluster_size
    put_u32(&mut b, 0x20, geo.blocks_per_group);
    put_u32(&mut b, 0x24, geo.blocks_per_group);
    put_u32(&mut b, 0x28, geo.inodes_per_group);
    put_u32(&mut b, 0x2C, 0); // s_mtime: never mounted
    put_u32(&mut b, 0x30, t_lo); // s_wtime
    put_u16(&mut b, 0x34, 0); // s_mnt_count
    put_u16(&mut b, 0x36, 0xFFFF); // s_max_mnt_count = -1
    put_u16(&mut b, 0x38, EXT4_SUPER_MAGIC);
    put_u16(&mut b, 0x3A, 1); // s_state: cleanly unmounted
    put_u16(&mut b, 0x3C, 1); // s_errors: continue
    put_u32(&mut b, 0x40, t_lo); // s_lastcheck
    put_u32(&mut b, 0x44, 0); // s_checkinterval
    put_u32(&mut b, 0x48, 0); // s_creator_os: Linux
    put_u32(&mut b, 0x4C, 1); // s_rev_level: dynamic
    put_u32(&mut b, 0x54, FIRST_INO);
    put_u16(&mut b, 0x58, INODE_SIZE);
    put_u16(&mut b, 0x5A, group as u16);
    put_u32(&mut b, 0x5C, COMPAT_HAS_JOURNAL | COMPAT_EXT_ATTR | COMPAT_RESIZE_INODE | COMPAT_DIR_INDEX);
    put_u32(&mut b, 0x60, incompat_features(geo.is_64bit));
    put_u32(
        &mut b,
        0x64,
        RO_COMPAT_SPARSE_SUPER
            | RO_COMPAT_LARGE_FILE
            | RO_COMPAT_HUGE_FILE
            | RO_COMPAT_DIR_NLINK
            | RO_COMPAT_EXTRA_ISIZE
            | RO_COMPAT_METADATA_CSUM,
    );
    b[0x68..0x78].copy_from_slice(&opts.uuid);
    b[0x78..0x78 + opts.label.len()].copy_from_slice(&opts.label);
    put_u16(&mut b, 0xCE, geo.rsv_gdt_blocks as u16);
    put_u32(&mut b, 0xE0, JOURNAL_INO);
    b[0xEC..0xFC].copy_from_slice(&opts.hash_seed);
    b[0xFC] = EXT2_HASH_HALF_MD4;
    b[0xFD] = 1; // s_jnl_backup_type: EXT3_JNL_BACKUP_BLOCKS
    put_u16(&mut b, 0xFE, if geo.is_64bit { 64 } else { 0 });
    put_u32(&mut b, 0x100, 0x0004 | 0x0008); // s_default_mount_opts: user_xattr, acl
    put_u32(&mut b, 0x108, t_lo); // s_mkfs_time
    for (i, v) in counts.jnl_blocks.iter().enumerate() {
        put_u32(&mut b, 0x10C + 4 * i, *v);
    }
    if geo.is_64bit {
        put_u32(&mut b, 0x150, (geo.blocks >> 32) as u32);
        put_u32(&mut b, 0x154, (geo.r_blocks >> 32) as u32);
        put_u32(&mut b, 0x158, (counts.free_blocks >> 32) as u32);
    }
    put_u16(&mut b, 0x15C, EXTRA_ISIZE); // s_min_extra_isize
    put_u16(&mut b, 0x15E, EXTRA_ISIZE); // s_want_extra_isize
    put_u32(&mut b, 0x160, EXT2_FLAGS_SIGNED_HASH);
    b[0x174] = LOG_GROUPS_PER_FLEX;
    b[0x175] = 1; // s_checksum_type: crc32c
    put_u64(&mut b, 0x178, 0); // s_kbytes_written
    b[0x274] = t_hi; // s_wtime_hi
    b[0x276] = t_hi; // s_mkfs_time_hi
    b[0x277] = t_hi; // s_lastcheck_hi
    let c = crc32c_raw(!0, &b[..0x3FC]);
    put_u32(&mut b, 0x3FC, c);
    b
}
