//! Names what a byte of the filesystem is: the structure that owns it and, inside the
//! fixed-layout structures (superblock, group descriptor, inode), the field. This is what a
//! structural diff needs to say "inode 14 /etc/hostname i_mtime" instead of an offset.

use super::Ext4;
use super::owner::{Owner, OwnerMap};
use crate::bytes::ReadAt;
use serde::Serialize;
use std::collections::BTreeMap;

/// `(offset, size, name)` of every superblock field.
const SUPERBLOCK_FIELDS: &[(usize, usize, &str)] = &[
    (0x0, 4, "s_inodes_count"),
    (0x4, 4, "s_blocks_count_lo"),
    (0x8, 4, "s_r_blocks_count_lo"),
    (0xC, 4, "s_free_blocks_count_lo"),
    (0x10, 4, "s_free_inodes_count"),
    (0x14, 4, "s_first_data_block"),
    (0x18, 4, "s_log_block_size"),
    (0x1C, 4, "s_log_cluster_size"),
    (0x20, 4, "s_blocks_per_group"),
    (0x24, 4, "s_clusters_per_group"),
    (0x28, 4, "s_inodes_per_group"),
    (0x2C, 4, "s_mtime"),
    (0x30, 4, "s_wtime"),
    (0x34, 2, "s_mnt_count"),
    (0x36, 2, "s_max_mnt_count"),
    (0x38, 2, "s_magic"),
    (0x3A, 2, "s_state"),
    (0x3C, 2, "s_errors"),
    (0x3E, 2, "s_minor_rev_level"),
    (0x40, 4, "s_lastcheck"),
    (0x44, 4, "s_checkinterval"),
    (0x48, 4, "s_creator_os"),
    (0x4C, 4, "s_rev_level"),
    (0x50, 2, "s_def_resuid"),
    (0x52, 2, "s_def_resgid"),
    (0x54, 4, "s_first_ino"),
    (0x58, 2, "s_inode_size"),
    (0x5A, 2, "s_block_group_nr"),
    (0x5C, 4, "s_feature_compat"),
    (0x60, 4, "s_feature_incompat"),
    (0x64, 4, "s_feature_ro_compat"),
    (0x68, 16, "s_uuid"),
    (0x78, 16, "s_volume_name"),
    (0x88, 64, "s_last_mounted"),
    (0xC8, 4, "s_algorithm_usage_bitmap"),
    (0xCC, 1, "s_prealloc_blocks"),
    (0xCD, 1, "s_prealloc_dir_blocks"),
    (0xCE, 2, "s_reserved_gdt_blocks"),
    (0xD0, 16, "s_journal_uuid"),
    (0xE0, 4, "s_journal_inum"),
    (0xE4, 4, "s_journal_dev"),
    (0xE8, 4, "s_last_orphan"),
    (0xEC, 16, "s_hash_seed"),
    (0xFC, 1, "s_def_hash_version"),
    (0xFD, 1, "s_jnl_backup_type"),
    (0xFE, 2, "s_desc_size"),
    (0x100, 4, "s_default_mount_opts"),
    (0x104, 4, "s_first_meta_bg"),
    (0x108, 4, "s_mkfs_time"),
    (0x10C, 68, "s_jnl_blocks"),
    (0x150, 4, "s_blocks_count_hi"),
    (0x154, 4, "s_r_blocks_count_hi"),
    (0x158, 4, "s_free_blocks_count_hi"),
    (0x15C, 2, "s_min_extra_isize"),
    (0x15E, 2, "s_want_extra_isize"),
    (0x160, 4, "s_flags"),
    (0x164, 2, "s_raid_stride"),
    (0x166, 2, "s_mmp_interval"),
    (0x168, 8, "s_mmp_block"),
    (0x170, 4, "s_raid_stripe_width"),
    (0x174, 1, "s_log_groups_per_flex"),
    (0x175, 1, "s_checksum_type"),
    (0x176, 2, "s_reserved_pad"),
    (0x178, 8, "s_kbytes_written"),
    (0x180, 4, "s_snapshot_inum"),
    (0x184, 4, "s_snapshot_id"),
    (0x188, 8, "s_snapshot_r_blocks_count"),
    (0x190, 4, "s_snapshot_list"),
    (0x194, 4, "s_error_count"),
    (0x198, 4, "s_first_error_time"),
    (0x19C, 4, "s_first_error_ino"),
    (0x1A0, 8, "s_first_error_block"),
    (0x1A8, 32, "s_first_error_func"),
    (0x1C8, 4, "s_first_error_line"),
    (0x1CC, 4, "s_last_error_time"),
    (0x1D0, 4, "s_last_error_ino"),
    (0x1D4, 4, "s_last_error_line"),
    (0x1D8, 8, "s_last_error_block"),
    (0x1E0, 32, "s_last_error_func"),
    (0x200, 64, "s_mount_opts"),
    (0x240, 4, "s_usr_quota_inum"),
    (0x244, 4, "s_grp_quota_inum"),
    (0x248, 4, "s_overhead_clusters"),
    (0x24C, 8, "s_backup_bgs"),
    (0x254, 4, "s_encrypt_algos"),
    (0x258, 16, "s_encrypt_pw_salt"),
    (0x268, 4, "s_lpf_ino"),
    (0x26C, 4, "s_prj_quota_inum"),
    (0x270, 4, "s_checksum_seed"),
    (0x274, 1, "s_wtime_hi"),
    (0x275, 1, "s_mtime_hi"),
    (0x276, 1, "s_mkfs_time_hi"),
    (0x277, 1, "s_lastcheck_hi"),
    (0x278, 1, "s_first_error_time_hi"),
    (0x279, 1, "s_last_error_time_hi"),
    (0x27A, 2, "s_pad"),
    (0x27C, 2, "s_encoding"),
    (0x27E, 2, "s_encoding_flags"),
    (0x280, 4, "s_orphan_file_inum"),
    (0x284, 376, "s_reserved"),
    (0x3FC, 4, "s_checksum"),
];

/// `(offset, size, name)` of every group descriptor field (64-byte layout).
const GROUP_DESC_FIELDS: &[(usize, usize, &str)] = &[
    (0x0, 4, "bg_block_bitmap_lo"),
    (0x4, 4, "bg_inode_bitmap_lo"),
    (0x8, 4, "bg_inode_table_lo"),
    (0xC, 2, "bg_free_blocks_count_lo"),
    (0xE, 2, "bg_free_inodes_count_lo"),
    (0x10, 2, "bg_used_dirs_count_lo"),
    (0x12, 2, "bg_flags"),
    (0x14, 4, "bg_exclude_bitmap_lo"),
    (0x18, 2, "bg_block_bitmap_csum_lo"),
    (0x1A, 2, "bg_inode_bitmap_csum_lo"),
    (0x1C, 2, "bg_itable_unused_lo"),
    (0x1E, 2, "bg_checksum"),
    (0x20, 4, "bg_block_bitmap_hi"),
    (0x24, 4, "bg_inode_bitmap_hi"),
    (0x28, 4, "bg_inode_table_hi"),
    (0x2C, 2, "bg_free_blocks_count_hi"),
    (0x2E, 2, "bg_free_inodes_count_hi"),
    (0x30, 2, "bg_used_dirs_count_hi"),
    (0x32, 2, "bg_itable_unused_hi"),
    (0x34, 4, "bg_exclude_bitmap_hi"),
    (0x38, 2, "bg_block_bitmap_csum_hi"),
    (0x3A, 2, "bg_inode_bitmap_csum_hi"),
    (0x3C, 4, "bg_reserved"),
];

/// `(offset, size, name)` of every inode field up to the in-inode xattr area.
const INODE_FIELDS: &[(usize, usize, &str)] = &[
    (0x0, 2, "i_mode"),
    (0x2, 2, "i_uid"),
    (0x4, 4, "i_size_lo"),
    (0x8, 4, "i_atime"),
    (0xC, 4, "i_ctime"),
    (0x10, 4, "i_mtime"),
    (0x14, 4, "i_dtime"),
    (0x18, 2, "i_gid"),
    (0x1A, 2, "i_links_count"),
    (0x1C, 4, "i_blocks_lo"),
    (0x20, 4, "i_flags"),
    (0x24, 4, "l_i_version"),
    (0x28, 60, "i_block"),
    (0x64, 4, "i_generation"),
    (0x68, 4, "i_file_acl_lo"),
    (0x6C, 4, "i_size_high"),
    (0x70, 4, "i_obso_faddr"),
    (0x74, 2, "l_i_blocks_high"),
    (0x76, 2, "l_i_file_acl_high"),
    (0x78, 2, "l_i_uid_high"),
    (0x7A, 2, "l_i_gid_high"),
    (0x7C, 2, "l_i_checksum_lo"),
    (0x7E, 2, "l_i_reserved"),
    (0x80, 2, "i_extra_isize"),
    (0x82, 2, "i_checksum_hi"),
    (0x84, 4, "i_ctime_extra"),
    (0x88, 4, "i_mtime_extra"),
    (0x8C, 4, "i_atime_extra"),
    (0x90, 4, "i_crtime"),
    (0x94, 4, "i_crtime_extra"),
    (0x98, 4, "i_version_hi"),
    (0x9C, 4, "i_projid"),
];

fn field(table: &[(usize, usize, &'static str)], off: usize) -> Option<&'static str> {
    table.iter().find(|(o, l, _)| off >= *o && off < o + l).map(|(_, _, n)| *n)
}

/// What one byte of the filesystem is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ByteInfo {
    /// The owning structure or file, `None` for free space.
    pub owner: Option<Owner>,
    /// A readable name: `superblock`, `group descriptor 3`, `inode 14 /etc/hostname`.
    pub structure: String,
    /// The field, for superblocks, group descriptors and inodes.
    pub field: Option<&'static str>,
}

impl<R: ReadAt> Ext4<R> {
    /// Names the byte at `offset` (from the start of the filesystem). `paths` maps inode
    /// numbers to a path (e.g. from [`super::walk::paths_by_inode`]) for inode table bytes.
    pub fn describe_byte(
        &self,
        owners: &OwnerMap,
        paths: &BTreeMap<u32, Vec<Vec<u8>>>,
        offset: u64,
    ) -> ByteInfo {
        let bs = self.sb.block_size();
        let block = offset / bs;
        let in_block = (offset % bs) as usize;
        let owner = owners.owner(block).cloned();
        let named = |structure: String, field: Option<&'static str>| ByteInfo {
            owner: owner.clone(),
            structure,
            field,
        };
        match &owner {
            Some(Owner::Superblock { group }) => {
                // The primary sits at byte 1024; with 1 KiB blocks it fills block 1,
                // otherwise bytes 1024..2048 of block 0. Backups start their block.
                let sb_start = if *group == 0 && bs > 1024 { 1024 } else { 0 };
                let name = if *group == 0 {
                    "superblock".to_string()
                } else {
                    format!("superblock backup in group {group}")
                };
                if in_block >= sb_start && in_block < sb_start + 1024 {
                    named(name, field(SUPERBLOCK_FIELDS, in_block - sb_start))
                } else if *group == 0 && in_block < sb_start {
                    named("boot area before the superblock".into(), None)
                } else {
                    named(format!("{name} padding"), None)
                }
            }
            Some(Owner::Gdt { group }) => {
                let ds = self.sb.desc_size();
                let locations = self.gdt_locations();
                let i = locations.iter().position(|c| c.iter().any(|&(_, b)| b == block));
                let index = i.map(|i| i as u64 * self.sb.descs_per_block() + in_block as u64 / ds);
                // The first copy of each descriptor block is the primary.
                let primary = i.is_some_and(|i| locations[i][0].1 == block);
                let copy = if primary { String::new() } else { format!(" backup in group {group}") };
                match index {
                    Some(index) if index < self.sb.group_count() => named(
                        format!("group descriptor {index}{copy}"),
                        field(GROUP_DESC_FIELDS, in_block % ds as usize),
                    ),
                    _ => named(format!("group descriptor table{copy} padding"), None),
                }
            }
            Some(Owner::InodeTable { group }) => {
                let gd = &self.groups[*group as usize];
                let rel = (block - gd.bg_inode_table) * bs + in_block as u64;
                let isz = u64::from(self.sb.s_inode_size);
                let ino = u64::from(*group) * u64::from(self.sb.s_inodes_per_group) + rel / isz + 1;
                let path = paths
                    .get(&(ino as u32))
                    .and_then(|p| p.first())
                    .map(|p| format!(" {}", String::from_utf8_lossy(p)))
                    .unwrap_or_default();
                let within = (rel % isz) as usize;
                let f = field(INODE_FIELDS, within).or(if within >= 128 {
                    Some("in-inode xattrs")
                } else {
                    None
                });
                named(format!("inode {ino}{path}"), f)
            }
            Some(o) => named(o.to_string(), None),
            None if block < u64::from(self.sb.s_first_data_block) => named("boot block".into(), None),
            None => named("free space".into(), None),
        }
    }
}
