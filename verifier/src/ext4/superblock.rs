//! The ext4 superblock (`struct ext4_super_block`, 1024 bytes at byte 1024), every field by its
//! spec name, with its checks: magic, checksum, block size and bounded counts.

use super::crc::crc32c_raw;
use super::features::Features;
use crate::bytes::{Le, ReadAt};
use crate::error::{Error, Result};
use serde::Serialize;

/// Byte offset of the primary superblock from the start of the filesystem.
pub const SUPERBLOCK_OFFSET: u64 = 1024;
/// Size of the superblock structure.
pub const SUPERBLOCK_SIZE: usize = 1024;
/// `s_magic`.
pub const EXT4_MAGIC: u16 = 0xEF53;

/// The decoded superblock. Times are seconds since the epoch with their `_hi` bytes applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Superblock {
    pub s_inodes_count: u32,
    /// `s_blocks_count_lo | s_blocks_count_hi << 32` (hi only with the 64bit feature).
    pub s_blocks_count: u64,
    pub s_r_blocks_count: u64,
    pub s_free_blocks_count: u64,
    pub s_free_inodes_count: u32,
    pub s_first_data_block: u32,
    pub s_log_block_size: u32,
    pub s_log_cluster_size: u32,
    pub s_blocks_per_group: u32,
    pub s_clusters_per_group: u32,
    pub s_inodes_per_group: u32,
    pub s_mtime: i64,
    pub s_wtime: i64,
    pub s_mnt_count: u16,
    pub s_max_mnt_count: i16,
    pub s_magic: u16,
    pub s_state: u16,
    pub s_errors: u16,
    pub s_minor_rev_level: u16,
    pub s_lastcheck: i64,
    pub s_checkinterval: u32,
    pub s_creator_os: u32,
    pub s_rev_level: u32,
    pub s_def_resuid: u16,
    pub s_def_resgid: u16,
    pub s_first_ino: u32,
    pub s_inode_size: u16,
    pub s_block_group_nr: u16,
    pub features: Features,
    pub s_uuid: [u8; 16],
    pub s_volume_name: Vec<u8>,
    pub s_last_mounted: Vec<u8>,
    pub s_algorithm_usage_bitmap: u32,
    pub s_prealloc_blocks: u8,
    pub s_prealloc_dir_blocks: u8,
    pub s_reserved_gdt_blocks: u16,
    pub s_journal_uuid: [u8; 16],
    pub s_journal_inum: u32,
    pub s_journal_dev: u32,
    pub s_last_orphan: u32,
    pub s_hash_seed: [u8; 16],
    pub s_def_hash_version: u8,
    pub s_jnl_backup_type: u8,
    pub s_desc_size: u16,
    pub s_default_mount_opts: u32,
    pub s_first_meta_bg: u32,
    pub s_mkfs_time: i64,
    pub s_jnl_blocks: [u32; 17],
    pub s_min_extra_isize: u16,
    pub s_want_extra_isize: u16,
    pub s_flags: u32,
    pub s_raid_stride: u16,
    pub s_mmp_interval: u16,
    pub s_mmp_block: u64,
    pub s_raid_stripe_width: u32,
    pub s_log_groups_per_flex: u8,
    pub s_checksum_type: u8,
    pub s_kbytes_written: u64,
    pub s_snapshot_inum: u32,
    pub s_snapshot_id: u32,
    pub s_snapshot_r_blocks_count: u64,
    pub s_snapshot_list: u32,
    pub s_error_count: u32,
    pub s_first_error_time: i64,
    pub s_first_error_ino: u32,
    pub s_first_error_block: u64,
    pub s_first_error_line: u32,
    pub s_last_error_time: i64,
    pub s_last_error_ino: u32,
    pub s_last_error_line: u32,
    pub s_last_error_block: u64,
    pub s_first_error_func: Vec<u8>,
    pub s_last_error_func: Vec<u8>,
    pub s_mount_opts: Vec<u8>,
    pub s_usr_quota_inum: u32,
    pub s_grp_quota_inum: u32,
    pub s_overhead_clusters: u32,
    pub s_backup_bgs: [u32; 2],
    pub s_encrypt_algos: [u8; 4],
    pub s_encrypt_pw_salt: [u8; 16],
    pub s_lpf_ino: u32,
    pub s_prj_quota_inum: u32,
    pub s_checksum_seed: u32,
    pub s_encoding: u16,
    pub s_encoding_flags: u16,
    pub s_orphan_file_inum: u32,
    pub s_checksum: u32,
}

/// A NUL-padded on-disk string, cut at its first NUL.
fn cstr(b: &[u8]) -> Vec<u8> {
    b.iter().take_while(|&&c| c != 0).copied().collect()
}

/// A 32-bit time with an 8-bit high part (the `_hi` bytes extend the range past 2038).
fn time(lo: u32, hi: u8) -> i64 {
    i64::from(lo) | (i64::from(hi) << 32)
}

impl Superblock {
    /// Decodes and checks a superblock from its 1024 bytes. `offset` is its byte offset in
    /// the image, used in errors. Whether the image holds all `s_blocks_count` blocks is
    /// checked by [`super::Ext4::open`], so a superblock can be probed on its own.
    pub fn parse(raw: &[u8], offset: u64) -> Result<Self> {
        crate::bytes::need(raw, SUPERBLOCK_SIZE, "ext4 superblock", Some(offset))?;
        let b = Le(raw);
        let at = |what: String| Error::corrupt("ext4 superblock", Some(offset), what);
        let s_magic = b.u16(0x38);
        if s_magic != EXT4_MAGIC {
            return Err(at(format!(
                "s_magic is {s_magic:#06x}, expected {EXT4_MAGIC:#06x}; not an ext2/3/4 filesystem"
            )));
        }
        let features = Features { compat: b.u32(0x5C), incompat: b.u32(0x60), ro_compat: b.u32(0x64) };
        let s_checksum = b.u32(0x3FC);
        if features.has_metadata_csum() {
            let s_checksum_type = b.u8(0x175);
            if s_checksum_type != 1 {
                return Err(at(format!("s_checksum_type is {s_checksum_type}, expected 1 (crc32c)")));
            }
            let computed = crc32c_raw(!0, &raw[..0x3FC]);
            if computed != s_checksum {
                return Err(at(format!(
                    "s_checksum mismatch: stored {s_checksum:#010x}, computed {computed:#010x}"
                )));
            }
        }
        let hi64 = |off: usize| {
            if features.is_64bit() { u64::from(b.u32(off)) << 32 } else { 0 }
        };
        let mut s_jnl_blocks = [0u32; 17];
        for (i, v) in s_jnl_blocks.iter_mut().enumerate() {
            *v = b.u32(0x10C + 4 * i);
        }
        let sb = Superblock {
            s_inodes_count: b.u32(0x0),
            s_blocks_count: u64::from(b.u32(0x4)) | hi64(0x150),
            s_r_blocks_count: u64::from(b.u32(0x8)) | hi64(0x154),
            s_free_blocks_count: u64::from(b.u32(0xC)) | hi64(0x158),
            s_free_inodes_count: b.u32(0x10),
            s_first_data_block: b.u32(0x14),
            s_log_block_size: b.u32(0x18),
            s_log_cluster_size: b.u32(0x1C),
            s_blocks_per_group: b.u32(0x20),
            s_clusters_per_group: b.u32(0x24),
            s_inodes_per_group: b.u32(0x28),
            s_mtime: time(b.u32(0x2C), b.u8(0x275)),
            s_wtime: time(b.u32(0x30), b.u8(0x274)),
            s_mnt_count: b.u16(0x34),
            s_max_mnt_count: b.u16(0x36) as i16,
            s_magic,
            s_state: b.u16(0x3A),
            s_errors: b.u16(0x3C),
            s_minor_rev_level: b.u16(0x3E),
            s_lastcheck: time(b.u32(0x40), b.u8(0x277)),
            s_checkinterval: b.u32(0x44),
            s_creator_os: b.u32(0x48),
            s_rev_level: b.u32(0x4C),
            s_def_resuid: b.u16(0x50),
            s_def_resgid: b.u16(0x52),
            s_first_ino: if b.u32(0x4C) == 0 { 11 } else { b.u32(0x54) },
            s_inode_size: if b.u32(0x4C) == 0 { 128 } else { b.u16(0x58) },
            s_block_group_nr: b.u16(0x5A),
            features,
            s_uuid: b.array(0x68),
            s_volume_name: cstr(b.bytes(0x78, 16)),
            s_last_mounted: cstr(b.bytes(0x88, 64)),
            s_algorithm_usage_bitmap: b.u32(0xC8),
            s_prealloc_blocks: b.u8(0xCC),
            s_prealloc_dir_blocks: b.u8(0xCD),
            s_reserved_gdt_blocks: b.u16(0xCE),
            s_journal_uuid: b.array(0xD0),
            s_journal_inum: b.u32(0xE0),
            s_journal_dev: b.u32(0xE4),
            s_last_orphan: b.u32(0xE8),
            s_hash_seed: b.array(0xEC),
            s_def_hash_version: b.u8(0xFC),
            s_jnl_backup_type: b.u8(0xFD),
            s_desc_size: b.u16(0xFE),
            s_default_mount_opts: b.u32(0x100),
            s_first_meta_bg: b.u32(0x104),
            s_mkfs_time: time(b.u32(0x108), b.u8(0x276)),
            s_jnl_blocks,
            s_min_extra_isize: b.u16(0x15C),
            s_want_extra_isize: b.u16(0x15E),
            s_flags: b.u32(0x160),
            s_raid_stride: b.u16(0x164),
            s_mmp_interval: b.u16(0x166),
            s_mmp_block: b.u64(0x168),
            s_raid_stripe_width: b.u32(0x170),
            s_log_groups_per_flex: b.u8(0x174),
            s_checksum_type: b.u8(0x175),
            s_kbytes_written: b.u64(0x178),
            s_snapshot_inum: b.u32(0x180),
            s_snapshot_id: b.u32(0x184),
            s_snapshot_r_blocks_count: b.u64(0x188),
            s_snapshot_list: b.u32(0x190),
            s_error_count: b.u32(0x194),
            s_first_error_time: time(b.u32(0x198), b.u8(0x278)),
            s_first_error_ino: b.u32(0x19C),
            s_first_error_block: b.u64(0x1A0),
            s_first_error_line: b.u32(0x1C8),
            s_last_error_time: time(b.u32(0x1CC), b.u8(0x279)),
            s_last_error_ino: b.u32(0x1D0),
            s_last_error_line: b.u32(0x1D4),
            s_last_error_block: b.u64(0x1D8),
            s_first_error_func: cstr(b.bytes(0x1A8, 32)),
            s_last_error_func: cstr(b.bytes(0x1E0, 32)),
            s_mount_opts: cstr(b.bytes(0x200, 64)),
            s_usr_quota_inum: b.u32(0x240),
            s_grp_quota_inum: b.u32(0x244),
            s_overhead_clusters: b.u32(0x248),
            s_backup_bgs: [b.u32(0x24C), b.u32(0x250)],
            s_encrypt_algos: b.array(0x254),
            s_encrypt_pw_salt: b.array(0x258),
            s_lpf_ino: b.u32(0x268),
            s_prj_quota_inum: b.u32(0x26C),
            s_checksum_seed: b.u32(0x270),
            s_encoding: b.u16(0x27C),
            s_encoding_flags: b.u16(0x27E),
            s_orphan_file_inum: b.u32(0x280),
            s_checksum,
        };
        sb.check(offset)?;
        Ok(sb)
    }

    /// Geometry checks: everything later code divides by or allocates from is bounded here.
    fn check(&self, offset: u64) -> Result<()> {
        let at = |what: String| Error::corrupt("ext4 superblock", Some(offset), what);
        if self.s_log_block_size > 6 {
            return Err(at(format!(
                "s_log_block_size is {}, at most 6 (64 KiB blocks) is valid",
                self.s_log_block_size
            )));
        }
        let bs = self.block_size();
        if self.features.bigalloc() {
            return Err(Error::unsupported("ext4 superblock", Some(offset), "the bigalloc feature"));
        }
        if self.s_log_cluster_size != self.s_log_block_size {
            return Err(at(format!(
                "s_log_cluster_size {} differs from s_log_block_size {} without bigalloc",
                self.s_log_cluster_size, self.s_log_block_size
            )));
        }
        let expected_first = u32::from(bs == 1024);
        if self.s_first_data_block != expected_first {
            return Err(at(format!(
                "s_first_data_block is {}, expected {expected_first} for {bs}-byte blocks",
                self.s_first_data_block
            )));
        }
        if self.s_blocks_per_group == 0 || self.s_blocks_per_group > 8 * bs as u32 {
            return Err(at(format!(
                "s_blocks_per_group is {}, must be 1..={}",
                self.s_blocks_per_group,
                8 * bs
            )));
        }
        if self.s_clusters_per_group != self.s_blocks_per_group {
            return Err(at(format!(
                "s_clusters_per_group {} differs from s_blocks_per_group {} without bigalloc",
                self.s_clusters_per_group, self.s_blocks_per_group
            )));
        }
        if self.s_inodes_per_group == 0 || self.s_inodes_per_group > 8 * bs as u32 {
            return Err(at(format!(
                "s_inodes_per_group is {}, must be 1..={}",
                self.s_inodes_per_group,
                8 * bs
            )));
        }
        let isz = u32::from(self.s_inode_size);
        if isz < 128 || !isz.is_power_of_two() || isz > bs as u32 {
            return Err(at(format!(
                "s_inode_size is {isz}, must be a power of two from 128 to the block size"
            )));
        }
        if self.s_blocks_count <= u64::from(self.s_first_data_block) {
            return Err(at(format!("s_blocks_count is {}, leaves no data blocks", self.s_blocks_count)));
        }
        if self.s_blocks_count.checked_mul(bs).is_none_or(|b| b > 1 << 60) {
            return Err(at(format!(
                "s_blocks_count {} is beyond any ext4 filesystem (2^60 bytes)",
                self.s_blocks_count
            )));
        }
        let groups = self.group_count();
        let expected_inodes = groups.saturating_mul(u64::from(self.s_inodes_per_group));
        if u64::from(self.s_inodes_count) != expected_inodes {
            return Err(at(format!(
                "s_inodes_count is {}, expected {groups} groups x {} = {expected_inodes}",
                self.s_inodes_count, self.s_inodes_per_group
            )));
        }
        if self.s_free_inodes_count > self.s_inodes_count {
            return Err(at(format!(
                "s_free_inodes_count {} exceeds s_inodes_count {}",
                self.s_free_inodes_count, self.s_inodes_count
            )));
        }
        if self.s_free_blocks_count > self.s_blocks_count {
            return Err(at(format!(
                "s_free_blocks_count {} exceeds s_blocks_count {}",
                self.s_free_blocks_count, self.s_blocks_count
            )));
        }
        let ds = self.desc_size();
        if self.features.is_64bit() && (!(64..=1024).contains(&ds) || !ds.is_power_of_two()) {
            return Err(at(format!(
                "s_desc_size is {}, must be a power of two from 64 to 1024 with 64bit",
                self.s_desc_size
            )));
        }
        if self.s_rev_level > 0 && self.s_first_ino < 11 {
            return Err(at(format!("s_first_ino is {}, must be at least 11", self.s_first_ino)));
        }
        if self.features.meta_bg() && u64::from(self.s_first_meta_bg) > self.gdt_blocks() {
            return Err(at(format!(
                "s_first_meta_bg is {}, beyond the {} descriptor blocks",
                self.s_first_meta_bg,
                self.gdt_blocks()
            )));
        }
        Ok(())
    }

    /// Reads and checks the primary superblock of `r` alone, as blkid does.
    pub fn read(r: &impl ReadAt) -> Result<Self> {
        let raw = r.read_vec(SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, "ext4 superblock")?;
        Self::parse(&raw, SUPERBLOCK_OFFSET)
    }

    /// Block size in bytes: `2 ^ (10 + s_log_block_size)`.
    pub fn block_size(&self) -> u64 {
        1024u64 << self.s_log_block_size.min(6)
    }

    /// Number of block groups.
    pub fn group_count(&self) -> u64 {
        let data = self.s_blocks_count - u64::from(self.s_first_data_block);
        data.div_ceil(u64::from(self.s_blocks_per_group.max(1)))
    }

    /// Group descriptor size: `s_desc_size` with 64bit, else 32.
    pub fn desc_size(&self) -> u64 {
        if self.features.is_64bit() { u64::from(self.s_desc_size) } else { 32 }
    }

    /// Seed of every metadata_csum checksum: `s_checksum_seed` with metadata_csum_seed, else
    /// `crc32c(~0, s_uuid)`.
    pub fn csum_seed(&self) -> u32 {
        if self.features.metadata_csum_seed() { self.s_checksum_seed } else { crc32c_raw(!0, &self.s_uuid) }
    }

    /// Whether group `g` holds a superblock backup (and so a GDT copy).
    pub fn group_has_super(&self, g: u64) -> bool {
        if g == 0 {
            return true;
        }
        if self.features.sparse_super2() {
            return self.s_backup_bgs.iter().any(|&b| u64::from(b) == g);
        }
        if !self.features.sparse_super() || g == 1 {
            return true;
        }
        [3u64, 5, 7].iter().any(|&p| {
            let mut x = g;
            while x.is_multiple_of(p) {
                x /= p;
            }
            x == 1
        })
    }

    /// First block of group `g`.
    pub fn group_first_block(&self, g: u64) -> u64 {
        u64::from(self.s_first_data_block) + g * u64::from(self.s_blocks_per_group)
    }

    /// Number of blocks in group `g` (the last group may be short).
    pub fn blocks_in_group(&self, g: u64) -> u64 {
        let start = self.group_first_block(g);
        (self.s_blocks_count - start.min(self.s_blocks_count)).min(u64::from(self.s_blocks_per_group))
    }

    /// Blocks taken by the group descriptor table.
    pub fn gdt_blocks(&self) -> u64 {
        (self.group_count() * self.desc_size()).div_ceil(self.block_size())
    }

    /// Descriptors per descriptor block.
    pub fn descs_per_block(&self) -> u64 {
        self.block_size() / self.desc_size()
    }

    /// Descriptor blocks kept right after the superblock copies: all of them, or with
    /// meta_bg only the first `s_first_meta_bg`.
    pub fn old_gdt_blocks(&self) -> u64 {
        if self.features.meta_bg() {
            u64::from(self.s_first_meta_bg).min(self.gdt_blocks())
        } else {
            self.gdt_blocks()
        }
    }

    /// Where each descriptor block and its copies live: for descriptor block `i`, a list of
    /// `(group holding the copy, block)`, the primary first. Old-style blocks follow each
    /// superblock copy; a meta_bg block lives in the first, second and last group of its
    /// meta group, after that group's superblock copy if it has one.
    pub fn gdt_locations(&self) -> Vec<Vec<(u64, u64)>> {
        let groups = self.group_count();
        let backups: Vec<u64> = (0..groups).filter(|&g| self.group_has_super(g)).collect();
        (0..self.gdt_blocks())
            .map(|i| {
                if i < self.old_gdt_blocks() {
                    backups.iter().map(|&g| (g, self.group_first_block(g) + 1 + i)).collect()
                } else {
                    let g0 = i * self.descs_per_block();
                    let last = g0 + self.descs_per_block() - 1;
                    [g0, g0 + 1, last]
                        .into_iter()
                        .filter(|&g| g < groups)
                        .fold(Vec::new(), |mut v: Vec<u64>, g| {
                            if !v.contains(&g) {
                                v.push(g);
                            }
                            v
                        })
                        .into_iter()
                        .map(|g| (g, self.group_first_block(g) + u64::from(self.group_has_super(g))))
                        .collect()
                }
            })
            .collect()
    }

    /// Name of the default directory hash, as dumpe2fs prints it.
    pub fn def_hash_name(&self) -> String {
        hash_name(self.s_def_hash_version)
    }
}

/// Names of the bits set in `mask` from `table`; unknown bits as `prefix` + hex value.
fn bit_names(mask: u32, table: &[(u32, &str)], prefix: &str) -> Vec<String> {
    (0..32)
        .map(|b| 1u32 << b)
        .filter(|m| mask & m != 0)
        .map(|m| {
            table.iter().find(|(v, _)| *v == m).map_or(format!("{prefix}{m:#x}"), |(_, n)| (*n).to_string())
        })
        .collect()
}

impl Superblock {
    /// `s_flags` by name, as dumpe2fs prints "Filesystem flags".
    pub fn flag_names(&self) -> Vec<String> {
        let table =
            [(0x1, "signed_directory_hash"), (0x2, "unsigned_directory_hash"), (0x4, "test_filesystem")];
        bit_names(self.s_flags, &table, "FLAG_")
    }

    /// `s_default_mount_opts` by name, as dumpe2fs prints "Default mount options".
    pub fn default_mount_opt_names(&self) -> Vec<String> {
        let m = self.s_default_mount_opts;
        let table = [
            (0x1, "debug"),
            (0x2, "bsdgroups"),
            (0x4, "user_xattr"),
            (0x8, "acl"),
            (0x10, "uid16"),
            (0x100, "nobarrier"),
            (0x200, "block_validity"),
            (0x400, "discard"),
            (0x800, "nodelalloc"),
        ];
        // Bits 5 and 6 together are one two-bit field, the journalling mode, named first.
        let mut out: Vec<String> = match m & 0x60 {
            0x20 => vec!["journal_data".into()],
            0x40 => vec!["journal_data_ordered".into()],
            0x60 => vec!["journal_data_writeback".into()],
            _ => Vec::new(),
        };
        out.extend(bit_names(m & !0x60, &table, "MNTOPT_"));
        out
    }

    /// `s_errors` as dumpe2fs prints "Errors behavior".
    pub fn errors_name(&self) -> String {
        match self.s_errors {
            1 => "Continue".into(),
            2 => "Remount read-only".into(),
            3 => "Panic".into(),
            n => format!("Unknown (continue) ({n})"),
        }
    }

    /// `s_creator_os` as dumpe2fs prints "Filesystem OS type".
    pub fn creator_os_name(&self) -> String {
        match self.s_creator_os {
            0 => "Linux".into(),
            1 => "Hurd".into(),
            2 => "Masix".into(),
            3 => "FreeBSD".into(),
            4 => "Lites".into(),
            n => format!("(unknown os) ({n})"),
        }
    }

    /// `s_state` as dumpe2fs prints "Filesystem state".
    pub fn state_name(&self) -> String {
        let mut s = if self.s_state & 1 != 0 { "clean".to_string() } else { "not clean".to_string() };
        if self.s_state & 2 != 0 {
            s.push_str(" with errors");
        }
        s
    }
}

/// Directory hash algorithm names, as in `s_def_hash_version` and `dx_root_info.hash_version`.
pub fn hash_name(v: u8) -> String {
    match v {
        0 => "legacy".into(),
        1 => "half_md4".into(),
        2 => "tea".into(),
        3 => "legacy_unsigned".into(),
        4 => "half_md4_unsigned".into(),
        5 => "tea_unsigned".into(),
        6 => "siphash".into(),
        n => format!("unknown ({n})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal valid superblock: 1 KiB blocks, one group of 8192 blocks, 128 inodes.
    fn raw() -> Vec<u8> {
        let mut b = vec![0u8; SUPERBLOCK_SIZE];
        let mut put = |off: usize, v: u32, n: usize| b[off..off + n].copy_from_slice(&v.to_le_bytes()[..n]);
        put(0x0, 128, 4);
        put(0x4, 8192, 4);
        put(0x14, 1, 4);
        put(0x20, 8192, 4);
        put(0x24, 8192, 4);
        put(0x28, 128, 4);
        put(0x38, u32::from(EXT4_MAGIC), 2);
        put(0x4C, 1, 4);
        put(0x54, 11, 4);
        put(0x58, 256, 2);
        b
    }

    #[test]
    fn parses_a_minimal_superblock() {
        let sb = Superblock::parse(&raw(), 1024).unwrap();
        assert_eq!((sb.block_size(), sb.group_count(), sb.s_inode_size), (1024, 1, 256));
    }

    #[test]
    fn times_take_their_hi_bytes() {
        let mut b = raw();
        b[0x108..0x10C].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
        b[0x276] = 1;
        assert_eq!(Superblock::parse(&b, 1024).unwrap().s_mkfs_time, 0x1_FFFF_FFFF);
    }

    #[test]
    fn sparse_super_backup_groups() {
        let mut b = raw();
        b[0x64] = 1; // sparse_super
        let sb = Superblock::parse(&b, 1024).unwrap();
        let with: Vec<u64> = (0..60).filter(|&g| sb.group_has_super(g)).collect();
        assert_eq!(with, [0, 1, 3, 5, 7, 9, 25, 27, 49]);
    }

    #[test]
    fn bad_geometry_is_named() {
        for (off, v, field) in [
            (0x18, 7u32, "s_log_block_size"),
            (0x14, 0, "s_first_data_block"),
            (0x28, 0, "s_inodes_per_group"),
            (0x58, 100, "s_inode_size"),
        ] {
            let mut b = raw();
            b[off..off + 4].copy_from_slice(&v.to_le_bytes());
            if off == 0x58 {
                b[0x5A] = 0;
                b[0x5B] = 0;
            }
            let e = Superblock::parse(&b, 1024).unwrap_err().to_string();
            assert!(e.contains(field), "{field}: {e}");
        }
    }

    #[test]
    fn hash_names() {
        let names: Vec<String> = (0..7).map(hash_name).collect();
        assert_eq!(
            names,
            ["legacy", "half_md4", "tea", "legacy_unsigned", "half_md4_unsigned", "tea_unsigned", "siphash"]
        );
    }
}
