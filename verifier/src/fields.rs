//! Field tables of the on-disk structures, named as in their specifications, for the diff.
//!
//! Sources: the UEFI specification 2.10 §5.2.1 (legacy MBR) and §5.3 (GPT header and entry),
//! the kernel's `Documentation/filesystems/ext4/super.rst`, `group_descr.rst`, `inodes.rst`
//! and `journal.rst` (with `include/linux/jbd2.h` for the newest journal fields), and Microsoft's
//! FAT specification (fatgen103: boot sector and BPB, FSInfo, directory entry). Offsets are
//! in hex as the specifications print them. These tables only name bytes; readers validate.

use crate::regions::{Field, FieldKind, FieldTable};
use FieldKind::{BeHex, BeUint, Bytes, Guid, Hex, Text, Uint, Utf16, Uuid};

const fn f(offset: u64, len: u64, name: &'static str, kind: FieldKind) -> Field {
    Field { offset, len, name, kind }
}

/// The legacy MBR (UEFI 2.10 table 5-1), partition records inlined by index.
pub static MBR: FieldTable = FieldTable {
    name: "mbr",
    len: 512,
    fields: &[
        f(0x000, 440, "BootCode", Bytes),
        f(0x1B8, 4, "UniqueMBRDiskSignature", Hex),
        f(0x1BC, 2, "Unknown", Hex),
        f(0x1BE, 1, "PartitionRecord[0].BootIndicator", Hex),
        f(0x1BF, 3, "PartitionRecord[0].StartingCHS", Bytes),
        f(0x1C2, 1, "PartitionRecord[0].OSType", Hex),
        f(0x1C3, 3, "PartitionRecord[0].EndingCHS", Bytes),
        f(0x1C6, 4, "PartitionRecord[0].StartingLBA", Uint),
        f(0x1CA, 4, "PartitionRecord[0].SizeInLBA", Uint),
        f(0x1CE, 1, "PartitionRecord[1].BootIndicator", Hex),
        f(0x1CF, 3, "PartitionRecord[1].StartingCHS", Bytes),
        f(0x1D2, 1, "PartitionRecord[1].OSType", Hex),
        f(0x1D3, 3, "PartitionRecord[1].EndingCHS", Bytes),
        f(0x1D6, 4, "PartitionRecord[1].StartingLBA", Uint),
        f(0x1DA, 4, "PartitionRecord[1].SizeInLBA", Uint),
        f(0x1DE, 1, "PartitionRecord[2].BootIndicator", Hex),
        f(0x1DF, 3, "PartitionRecord[2].StartingCHS", Bytes),
        f(0x1E2, 1, "PartitionRecord[2].OSType", Hex),
        f(0x1E3, 3, "PartitionRecord[2].EndingCHS", Bytes),
        f(0x1E6, 4, "PartitionRecord[2].StartingLBA", Uint),
        f(0x1EA, 4, "PartitionRecord[2].SizeInLBA", Uint),
        f(0x1EE, 1, "PartitionRecord[3].BootIndicator", Hex),
        f(0x1EF, 3, "PartitionRecord[3].StartingCHS", Bytes),
        f(0x1F2, 1, "PartitionRecord[3].OSType", Hex),
        f(0x1F3, 3, "PartitionRecord[3].EndingCHS", Bytes),
        f(0x1F6, 4, "PartitionRecord[3].StartingLBA", Uint),
        f(0x1FA, 4, "PartitionRecord[3].SizeInLBA", Uint),
        f(0x1FE, 2, "Signature", Hex),
    ],
};

/// The GPT header (UEFI 2.10 table 5-5), for 512-byte logical blocks.
pub static GPT_HEADER: FieldTable = FieldTable {
    name: "gpt header",
    len: 512,
    fields: &[
        f(0x00, 8, "Signature", Text),
        f(0x08, 4, "Revision", Hex),
        f(0x0C, 4, "HeaderSize", Uint),
        f(0x10, 4, "HeaderCRC32", Hex),
        f(0x14, 4, "Reserved", Hex),
        f(0x18, 8, "MyLBA", Uint),
        f(0x20, 8, "AlternateLBA", Uint),
        f(0x28, 8, "FirstUsableLBA", Uint),
        f(0x30, 8, "LastUsableLBA", Uint),
        f(0x38, 16, "DiskGUID", Guid),
        f(0x48, 8, "PartitionEntryLBA", Uint),
        f(0x50, 4, "NumberOfPartitionEntries", Uint),
        f(0x54, 4, "SizeOfPartitionEntry", Uint),
        f(0x58, 4, "PartitionEntryArrayCRC32", Hex),
        f(0x5C, 420, "Reserved2", Bytes),
    ],
};

/// One GPT partition entry (UEFI 2.10 table 5-6), 128 bytes.
pub static GPT_ENTRY: FieldTable = FieldTable {
    name: "gpt entry",
    len: 128,
    fields: &[
        f(0x00, 16, "PartitionTypeGUID", Guid),
        f(0x10, 16, "UniquePartitionGUID", Guid),
        f(0x20, 8, "StartingLBA", Uint),
        f(0x28, 8, "EndingLBA", Uint),
        f(0x30, 8, "Attributes", Hex),
        f(0x38, 72, "PartitionName", Utf16),
    ],
};

/// `struct ext4_super_block` (super.rst), 1024 bytes.
pub static EXT4_SUPERBLOCK: FieldTable = FieldTable {
    name: "ext4 superblock",
    len: 1024,
    fields: &[
        f(0x0, 4, "s_inodes_count", Uint),
        f(0x4, 4, "s_blocks_count_lo", Uint),
        f(0x8, 4, "s_r_blocks_count_lo", Uint),
        f(0xC, 4, "s_free_blocks_count_lo", Uint),
        f(0x10, 4, "s_free_inodes_count", Uint),
        f(0x14, 4, "s_first_data_block", Uint),
        f(0x18, 4, "s_log_block_size", Uint),
        f(0x1C, 4, "s_log_cluster_size", Uint),
        f(0x20, 4, "s_blocks_per_group", Uint),
        f(0x24, 4, "s_clusters_per_group", Uint),
        f(0x28, 4, "s_inodes_per_group", Uint),
        f(0x2C, 4, "s_mtime", Uint),
        f(0x30, 4, "s_wtime", Uint),
        f(0x34, 2, "s_mnt_count", Uint),
        f(0x36, 2, "s_max_mnt_count", Uint),
        f(0x38, 2, "s_magic", Hex),
        f(0x3A, 2, "s_state", Hex),
        f(0x3C, 2, "s_errors", Uint),
        f(0x3E, 2, "s_minor_rev_level", Uint),
        f(0x40, 4, "s_lastcheck", Uint),
        f(0x44, 4, "s_checkinterval", Uint),
        f(0x48, 4, "s_creator_os", Uint),
        f(0x4C, 4, "s_rev_level", Uint),
        f(0x50, 2, "s_def_resuid", Uint),
        f(0x52, 2, "s_def_resgid", Uint),
        f(0x54, 4, "s_first_ino", Uint),
        f(0x58, 2, "s_inode_size", Uint),
        f(0x5A, 2, "s_block_group_nr", Uint),
        f(0x5C, 4, "s_feature_compat", Hex),
        f(0x60, 4, "s_feature_incompat", Hex),
        f(0x64, 4, "s_feature_ro_compat", Hex),
        f(0x68, 16, "s_uuid", Uuid),
        f(0x78, 16, "s_volume_name", Text),
        f(0x88, 64, "s_last_mounted", Text),
        f(0xC8, 4, "s_algorithm_usage_bitmap", Hex),
        f(0xCC, 1, "s_prealloc_blocks", Uint),
        f(0xCD, 1, "s_prealloc_dir_blocks", Uint),
        f(0xCE, 2, "s_reserved_gdt_blocks", Uint),
        f(0xD0, 16, "s_journal_uuid", Uuid),
        f(0xE0, 4, "s_journal_inum", Uint),
        f(0xE4, 4, "s_journal_dev", Uint),
        f(0xE8, 4, "s_last_orphan", Uint),
        f(0xEC, 16, "s_hash_seed", Uuid),
        f(0xFC, 1, "s_def_hash_version", Uint),
        f(0xFD, 1, "s_jnl_backup_type", Uint),
        f(0xFE, 2, "s_desc_size", Uint),
        f(0x100, 4, "s_default_mount_opts", Hex),
        f(0x104, 4, "s_first_meta_bg", Uint),
        f(0x108, 4, "s_mkfs_time", Uint),
        f(0x10C, 68, "s_jnl_blocks", Bytes),
        f(0x150, 4, "s_blocks_count_hi", Uint),
        f(0x154, 4, "s_r_blocks_count_hi", Uint),
        f(0x158, 4, "s_free_blocks_count_hi", Uint),
        f(0x15C, 2, "s_min_extra_isize", Uint),
        f(0x15E, 2, "s_want_extra_isize", Uint),
        f(0x160, 4, "s_flags", Hex),
        f(0x164, 2, "s_raid_stride", Uint),
        f(0x166, 2, "s_mmp_interval", Uint),
        f(0x168, 8, "s_mmp_block", Uint),
        f(0x170, 4, "s_raid_stripe_width", Uint),
        f(0x174, 1, "s_log_groups_per_flex", Uint),
        f(0x175, 1, "s_checksum_type", Uint),
        f(0x176, 2, "s_reserved_pad", Hex),
        f(0x178, 8, "s_kbytes_written", Uint),
        f(0x180, 4, "s_snapshot_inum", Uint),
        f(0x184, 4, "s_snapshot_id", Uint),
        f(0x188, 8, "s_snapshot_r_blocks_count", Uint),
        f(0x190, 4, "s_snapshot_list", Uint),
        f(0x194, 4, "s_error_count", Uint),
        f(0x198, 4, "s_first_error_time", Uint),
        f(0x19C, 4, "s_first_error_ino", Uint),
        f(0x1A0, 8, "s_first_error_block", Uint),
        f(0x1A8, 32, "s_first_error_func", Text),
        f(0x1C8, 4, "s_first_error_line", Uint),
        f(0x1CC, 4, "s_last_error_time", Uint),
        f(0x1D0, 4, "s_last_error_ino", Uint),
        f(0x1D4, 4, "s_last_error_line", Uint),
        f(0x1D8, 8, "s_last_error_block", Uint),
        f(0x1E0, 32, "s_last_error_func", Text),
        f(0x200, 64, "s_mount_opts", Text),
        f(0x240, 4, "s_usr_quota_inum", Uint),
        f(0x244, 4, "s_grp_quota_inum", Uint),
        f(0x248, 4, "s_overhead_blocks", Uint),
        f(0x24C, 8, "s_backup_bgs", Bytes),
        f(0x254, 4, "s_encrypt_algos", Bytes),
        f(0x258, 16, "s_encrypt_pw_salt", Bytes),
        f(0x268, 4, "s_lpf_ino", Uint),
        f(0x26C, 4, "s_prj_quota_inum", Uint),
        f(0x270, 4, "s_checksum_seed", Hex),
        f(0x274, 1, "s_wtime_hi", Uint),
        f(0x275, 1, "s_mtime_hi", Uint),
        f(0x276, 1, "s_mkfs_time_hi", Uint),
        f(0x277, 1, "s_lastcheck_hi", Uint),
        f(0x278, 1, "s_first_error_time_hi", Uint),
        f(0x279, 1, "s_last_error_time_hi", Uint),
        f(0x27A, 2, "s_pad", Bytes),
        f(0x27C, 2, "s_encoding", Uint),
        f(0x27E, 2, "s_encoding_flags", Hex),
        f(0x280, 4, "s_orphan_file_inum", Uint),
        f(0x284, 376, "s_reserved", Bytes),
        f(0x3FC, 4, "s_checksum", Hex),
    ],
};

/// `struct ext4_group_desc` (group_descr.rst), 64 bytes with the 64bit feature; a 32-byte
/// descriptor is the first half (use a 32-byte stride and the `_hi` fields drop out).
pub static EXT4_GROUP_DESC: FieldTable = FieldTable {
    name: "ext4 group descriptor",
    len: 64,
    fields: &[
        f(0x0, 4, "bg_block_bitmap_lo", Uint),
        f(0x4, 4, "bg_inode_bitmap_lo", Uint),
        f(0x8, 4, "bg_inode_table_lo", Uint),
        f(0xC, 2, "bg_free_blocks_count_lo", Uint),
        f(0xE, 2, "bg_free_inodes_count_lo", Uint),
        f(0x10, 2, "bg_used_dirs_count_lo", Uint),
        f(0x12, 2, "bg_flags", Hex),
        f(0x14, 4, "bg_exclude_bitmap_lo", Uint),
        f(0x18, 2, "bg_block_bitmap_csum_lo", Hex),
        f(0x1A, 2, "bg_inode_bitmap_csum_lo", Hex),
        f(0x1C, 2, "bg_itable_unused_lo", Uint),
        f(0x1E, 2, "bg_checksum", Hex),
        f(0x20, 4, "bg_block_bitmap_hi", Uint),
        f(0x24, 4, "bg_inode_bitmap_hi", Uint),
        f(0x28, 4, "bg_inode_table_hi", Uint),
        f(0x2C, 2, "bg_free_blocks_count_hi", Uint),
        f(0x2E, 2, "bg_free_inodes_count_hi", Uint),
        f(0x30, 2, "bg_used_dirs_count_hi", Uint),
        f(0x32, 2, "bg_itable_unused_hi", Uint),
        f(0x34, 4, "bg_exclude_bitmap_hi", Uint),
        f(0x38, 2, "bg_block_bitmap_csum_hi", Hex),
        f(0x3A, 2, "bg_inode_bitmap_csum_hi", Hex),
        f(0x3C, 4, "bg_reserved", Hex),
    ],
};

/// The jbd2 journal superblock (journal.rst, `journal_superblock_t`), big-endian, 1024 bytes.
pub static JBD2_SUPERBLOCK: FieldTable = FieldTable {
    name: "ext4 journal superblock",
    len: 1024,
    fields: &[
        f(0x0, 4, "h_magic", BeHex),
        f(0x4, 4, "h_blocktype", BeUint),
        f(0x8, 4, "h_sequence", BeUint),
        f(0xC, 4, "s_blocksize", BeUint),
        f(0x10, 4, "s_maxlen", BeUint),
        f(0x14, 4, "s_first", BeUint),
        f(0x18, 4, "s_sequence", BeUint),
        f(0x1C, 4, "s_start", BeUint),
        f(0x20, 4, "s_errno", BeUint),
        f(0x24, 4, "s_feature_compat", BeHex),
        f(0x28, 4, "s_feature_incompat", BeHex),
        f(0x2C, 4, "s_feature_ro_compat", BeHex),
        f(0x30, 16, "s_uuid", Uuid),
        f(0x40, 4, "s_nr_users", BeUint),
        f(0x44, 4, "s_dynsuper", BeUint),
        f(0x48, 4, "s_max_transaction", BeUint),
        f(0x4C, 4, "s_max_trans_data", BeUint),
        f(0x50, 1, "s_checksum_type", Uint),
        f(0x51, 3, "s_padding2", Bytes),
        f(0x54, 4, "s_num_fc_blks", BeUint),
        f(0x58, 4, "s_head", BeUint),
        f(0x5C, 160, "s_padding", Bytes),
        f(0xFC, 4, "s_checksum", BeHex),
        f(0x100, 768, "s_users", Bytes),
    ],
};

/// `struct ext4_inode` (inodes.rst), the Linux variant of `osd1`/`osd2`, 160 bytes; the rest
/// of a 256-byte inode record holds in-inode extended attributes.
pub static EXT4_INODE: FieldTable = FieldTable {
    name: "ext4 inode",
    len: 0xA0,
    fields: &[
        f(0x0, 2, "i_mode", Hex),
        f(0x2, 2, "i_uid", Uint),
        f(0x4, 4, "i_size_lo", Uint),
        f(0x8, 4, "i_atime", Uint),
        f(0xC, 4, "i_ctime", Uint),
        f(0x10, 4, "i_mtime", Uint),
        f(0x14, 4, "i_dtime", Uint),
        f(0x18, 2, "i_gid", Uint),
        f(0x1A, 2, "i_links_count", Uint),
        f(0x1C, 4, "i_blocks_lo", Uint),
        f(0x20, 4, "i_flags", Hex),
        f(0x24, 4, "l_i_version", Uint),
        f(0x28, 60, "i_block", Bytes),
        f(0x64, 4, "i_generation", Uint),
        f(0x68, 4, "i_file_acl_lo", Uint),
        f(0x6C, 4, "i_size_high", Uint),
        f(0x70, 4, "i_obso_faddr", Uint),
        f(0x74, 2, "l_i_blocks_high", Uint),
        f(0x76, 2, "l_i_file_acl_high", Uint),
        f(0x78, 2, "l_i_uid_high", Uint),
        f(0x7A, 2, "l_i_gid_high", Uint),
        f(0x7C, 2, "l_i_checksum_lo", Hex),
        f(0x7E, 2, "l_i_reserved", Hex),
        f(0x80, 2, "i_extra_isize", Uint),
        f(0x82, 2, "i_checksum_hi", Hex),
        f(0x84, 4, "i_ctime_extra", Hex),
        f(0x88, 4, "i_mtime_extra", Hex),
        f(0x8C, 4, "i_atime_extra", Hex),
        f(0x90, 4, "i_crtime", Uint),
        f(0x94, 4, "i_crtime_extra", Hex),
        f(0x98, 4, "i_version_hi", Uint),
        f(0x9C, 4, "i_projid", Uint),
    ],
};

/// The FAT boot sector fields every FAT type shares (offsets 0x00 to 0x23), followed by the
/// type-specific ones given to the macro.
macro_rules! bpb {
    ($($tail:expr),* $(,)?) => {
        [
            f(0x00, 3, "BS_jmpBoot", Bytes),
            f(0x03, 8, "BS_OEMName", Text),
            f(0x0B, 2, "BPB_BytsPerSec", Uint),
            f(0x0D, 1, "BPB_SecPerClus", Uint),
            f(0x0E, 2, "BPB_RsvdSecCnt", Uint),
            f(0x10, 1, "BPB_NumFATs", Uint),
            f(0x11, 2, "BPB_RootEntCnt", Uint),
            f(0x13, 2, "BPB_TotSec16", Uint),
            f(0x15, 1, "BPB_Media", Hex),
            f(0x16, 2, "BPB_FATSz16", Uint),
            f(0x18, 2, "BPB_SecPerTrk", Uint),
            f(0x1A, 2, "BPB_NumHeads", Uint),
            f(0x1C, 4, "BPB_HiddSec", Uint),
            f(0x20, 4, "BPB_TotSec32", Uint),
            $($tail),*
        ]
    };
}

/// The FAT12/16 boot sector and BPB (fatgen103, "Boot Sector and BPB").
pub static FAT16_BOOT_SECTOR: FieldTable = FieldTable {
    name: "fat boot sector",
    len: 512,
    fields: &bpb![
        f(0x24, 1, "BS_DrvNum", Hex),
        f(0x25, 1, "BS_Reserved1", Hex),
        f(0x26, 1, "BS_BootSig", Hex),
        f(0x27, 4, "BS_VolID", Hex),
        f(0x2B, 11, "BS_VolLab", Text),
        f(0x36, 8, "BS_FilSysType", Text),
        f(0x3E, 448, "BootCode", Bytes),
        f(0x1FE, 2, "Signature_word", Hex),
    ],
};

/// The FAT32 boot sector and BPB (fatgen103, "FAT32 Structure Starting at Offset 36").
pub static FAT32_BOOT_SECTOR: FieldTable = FieldTable {
    name: "fat boot sector",
    len: 512,
    fields: &bpb![
        f(0x24, 4, "BPB_FATSz32", Uint),
        f(0x28, 2, "BPB_ExtFlags", Hex),
        f(0x2A, 2, "BPB_FSVer", Hex),
        f(0x2C, 4, "BPB_RootClus", Uint),
        f(0x30, 2, "BPB_FSInfo", Uint),
        f(0x32, 2, "BPB_BkBootSec", Uint),
        f(0x34, 12, "BPB_Reserved", Bytes),
        f(0x40, 1, "BS_DrvNum", Hex),
        f(0x41, 1, "BS_Reserved1", Hex),
        f(0x42, 1, "BS_BootSig", Hex),
        f(0x43, 4, "BS_VolID", Hex),
        f(0x47, 11, "BS_VolLab", Text),
        f(0x52, 8, "BS_FilSysType", Text),
        f(0x5A, 420, "BootCode", Bytes),
        f(0x1FE, 2, "Signature_word", Hex),
    ],
};

/// The FAT32 FSInfo sector (fatgen103, "FAT32 FSInfo Sector Structure").
pub static FAT32_FSINFO: FieldTable = FieldTable {
    name: "fat fsinfo",
    len: 512,
    fields: &[
        f(0x000, 4, "FSI_LeadSig", Hex),
        f(0x004, 480, "FSI_Reserved1", Bytes),
        f(0x1E4, 4, "FSI_StrucSig", Hex),
        f(0x1E8, 4, "FSI_Free_Count", Uint),
        f(0x1EC, 4, "FSI_Nxt_Free", Uint),
        f(0x1F0, 12, "FSI_Reserved2", Bytes),
        f(0x1FC, 4, "FSI_TrailSig", Hex),
    ],
};

/// A FAT short directory entry (fatgen103, "FAT 32 Byte Directory Entry Structure").
pub static FAT_DIR_ENTRY: FieldTable = FieldTable {
    name: "fat directory entry",
    len: 32,
    fields: &[
        f(0x00, 11, "DIR_Name", Text),
        f(0x0B, 1, "DIR_Attr", Hex),
        f(0x0C, 1, "DIR_NTRes", Hex),
        f(0x0D, 1, "DIR_CrtTimeTenth", Uint),
        f(0x0E, 2, "DIR_CrtTime", Hex),
        f(0x10, 2, "DIR_CrtDate", Hex),
        f(0x12, 2, "DIR_LstAccDate", Hex),
        f(0x14, 2, "DIR_FstClusHI", Uint),
        f(0x16, 2, "DIR_WrtTime", Hex),
        f(0x18, 2, "DIR_WrtDate", Hex),
        f(0x1A, 2, "DIR_FstClusLO", Uint),
        f(0x1C, 4, "DIR_FileSize", Uint),
    ],
};

/// The bytes of a FAT directory entry that point into the data area (`DIR_FstClusHI`,
/// `DIR_FstClusLO`): two writers that copy the same files in another order give them other
/// clusters, so a reorder check leaves them out.
pub static FAT_DIR_ENTRY_CLUSTER_BYTES: [(u64, u64); 2] = [(0x14, 2), (0x1A, 2)];

/// Every table, for the consistency test and for callers that list them.
pub static ALL: [&FieldTable; 11] = [
    &MBR,
    &GPT_HEADER,
    &GPT_ENTRY,
    &EXT4_SUPERBLOCK,
    &EXT4_GROUP_DESC,
    &JBD2_SUPERBLOCK,
    &EXT4_INODE,
    &FAT16_BOOT_SECTOR,
    &FAT32_BOOT_SECTOR,
    &FAT32_FSINFO,
    &FAT_DIR_ENTRY,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// A table with a gap, an overlap or a field past its end would misname bytes: every
    /// table tiles its structure exactly, field after field.
    #[test]
    fn every_table_tiles_its_structure() {
        for t in ALL {
            let mut at = 0;
            for fld in t.fields {
                assert_eq!(
                    fld.offset, at,
                    "{}: {} starts at {:#x}, expected {at:#x}",
                    t.name, fld.name, fld.offset
                );
                assert!(fld.len > 0, "{}: {} is empty", t.name, fld.name);
                at = fld.offset + fld.len;
            }
            assert_eq!(at, t.len, "{}: fields end at {at:#x}, the structure at {:#x}", t.name, t.len);
        }
    }

    #[test]
    fn integer_fields_have_integer_widths() {
        for t in ALL {
            for fld in t.fields {
                if matches!(fld.kind, Uint | Hex | BeUint | BeHex) {
                    assert!([1, 2, 4, 8].contains(&fld.len), "{}: {} is {} bytes", t.name, fld.name, fld.len);
                }
                if matches!(fld.kind, Guid | Uuid) {
                    assert_eq!(fld.len, 16, "{}: {}", t.name, fld.name);
                }
            }
        }
    }

    #[test]
    fn spot_checks_against_the_specifications() {
        let at = |t: &FieldTable, off| t.field_at(off).map(|f| f.name);
        assert_eq!(at(&EXT4_SUPERBLOCK, 0x38), Some("s_magic"));
        assert_eq!(at(&EXT4_SUPERBLOCK, 0x178), Some("s_kbytes_written"));
        assert_eq!(at(&EXT4_SUPERBLOCK, 0x3FF), Some("s_checksum"));
        assert_eq!(at(&EXT4_INODE, 0x90), Some("i_crtime"));
        assert_eq!(at(&GPT_HEADER, 0x38), Some("DiskGUID"));
        assert_eq!(at(&MBR, 0x1B8), Some("UniqueMBRDiskSignature"));
        assert_eq!(at(&FAT32_BOOT_SECTOR, 0x43), Some("BS_VolID"));
        assert_eq!(at(&FAT16_BOOT_SECTOR, 0x27), Some("BS_VolID"));
        assert_eq!(at(&FAT32_FSINFO, 0x1E8), Some("FSI_Free_Count"));
        assert_eq!(at(&EXT4_SUPERBLOCK, 0x400), None);
        assert_eq!(at(&EXT4_GROUP_DESC, 0x1E), Some("bg_checksum"));
        assert_eq!(at(&JBD2_SUPERBLOCK, 0x1C), Some("s_start"));
        assert_eq!(at(&JBD2_SUPERBLOCK, 0xFC), Some("s_checksum"));
    }
}
