//! The jbd2 journal superblock (big-endian, magic 0xC03B3998) at the start of the journal
//! inode: geometry, sequence, whether the journal is clean, features and v2/v3 checksum.

use super::Ext4;
use super::crc::crc32c_raw;
use crate::bytes::ReadAt;
use crate::error::{Error, Result};
use serde::Serialize;

/// `h_magic` of every jbd2 block.
pub const JBD2_MAGIC_NUMBER: u32 = 0xC03B_3998;
/// `h_blocktype` of a version 1 superblock.
pub const JBD2_SUPERBLOCK_V1: u32 = 3;
/// `h_blocktype` of a version 2 superblock.
pub const JBD2_SUPERBLOCK_V2: u32 = 4;

/// The decoded journal superblock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournalSuperblock {
    pub h_blocktype: u32,
    pub h_sequence: u32,
    pub s_blocksize: u32,
    pub s_maxlen: u32,
    pub s_first: u32,
    pub s_sequence: u32,
    /// First block of the log; 0 means the journal is clean (nothing to replay).
    pub s_start: u32,
    pub s_errno: i32,
    pub s_feature_compat: u32,
    pub s_feature_incompat: u32,
    pub s_feature_ro_compat: u32,
    pub s_uuid: [u8; 16],
    pub s_nr_users: u32,
    pub s_max_transaction: u32,
    pub s_max_trans_data: u32,
    pub s_checksum_type: u8,
    pub s_num_fc_blks: u32,
    pub s_checksum: u32,
}

fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes(crate::bytes::Le(b).array(off))
}

impl JournalSuperblock {
    /// Decodes and checks the superblock from the first journal block.
    pub fn parse(raw: &[u8], offset: u64) -> Result<Self> {
        let name = "jbd2 journal superblock";
        crate::bytes::need(raw, 1024, name, Some(offset))?;
        let magic = be32(raw, 0);
        if magic != JBD2_MAGIC_NUMBER {
            return Err(Error::corrupt(
                name,
                Some(offset),
                format!("h_magic is {magic:#010x}, expected {JBD2_MAGIC_NUMBER:#010x}"),
            ));
        }
        let j = JournalSuperblock {
            h_blocktype: be32(raw, 0x4),
            h_sequence: be32(raw, 0x8),
            s_blocksize: be32(raw, 0xC),
            s_maxlen: be32(raw, 0x10),
            s_first: be32(raw, 0x14),
            s_sequence: be32(raw, 0x18),
            s_start: be32(raw, 0x1C),
            s_errno: be32(raw, 0x20) as i32,
            s_feature_compat: be32(raw, 0x24),
            s_feature_incompat: be32(raw, 0x28),
            s_feature_ro_compat: be32(raw, 0x2C),
            s_uuid: crate::bytes::Le(raw).array(0x30),
            s_nr_users: be32(raw, 0x40),
            s_max_transaction: be32(raw, 0x48),
            s_max_trans_data: be32(raw, 0x4C),
            s_checksum_type: raw[0x50],
            s_num_fc_blks: be32(raw, 0x54),
            s_checksum: be32(raw, 0xFC),
        };
        if j.h_blocktype != JBD2_SUPERBLOCK_V1 && j.h_blocktype != JBD2_SUPERBLOCK_V2 {
            return Err(Error::corrupt(
                name,
                Some(offset),
                format!("h_blocktype is {}, expected 3 or 4 (superblock v1/v2)", j.h_blocktype),
            ));
        }
        if j.has_csum_v2v3() {
            let mut copy = raw[..1024].to_vec();
            copy[0xFC..0x100].fill(0);
            let computed = crc32c_raw(!0, &copy);
            if computed != j.s_checksum {
                return Err(Error::corrupt(
                    name,
                    Some(offset),
                    format!("s_checksum mismatch: stored {:#010x}, computed {computed:#010x}", j.s_checksum),
                ));
            }
        }
        Ok(j)
    }

    /// Whether the v2 or v3 checksum feature is on.
    pub fn has_csum_v2v3(&self) -> bool {
        self.h_blocktype == JBD2_SUPERBLOCK_V2 && self.s_feature_incompat & 0x18 != 0
    }

    /// Whether nothing waits to be replayed.
    pub fn is_clean(&self) -> bool {
        self.s_start == 0
    }

    /// Feature names as dumpe2fs prints them.
    pub fn feature_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.h_blocktype != JBD2_SUPERBLOCK_V2 {
            return out;
        }
        let compat: &[(u32, &str)] = &[(0x1, "journal_checksum")];
        let incompat: &[(u32, &str)] = &[
            (0x1, "journal_incompat_revoke"),
            (0x2, "journal_64bit"),
            (0x4, "journal_async_commit"),
            (0x8, "journal_checksum_v2"),
            (0x10, "journal_checksum_v3"),
            (0x20, "journal_fast_commit"),
        ];
        for (mask, table, letter) in [
            (self.s_feature_compat, compat, 'C'),
            (self.s_feature_incompat, incompat, 'I'),
            (self.s_feature_ro_compat, &[][..], 'R'),
        ] {
            super::features::names(mask, table, letter, &mut out);
        }
        out
    }

    /// Checksum type name (`crc32c` for v2/v3).
    pub fn checksum_type_name(&self) -> &'static str {
        match self.s_checksum_type {
            1 => "crc32",
            2 => "md5",
            3 => "sha1",
            4 => "crc32c",
            _ => "unknown",
        }
    }
}

impl<R: ReadAt> Ext4<R> {
    /// Reads the internal journal's superblock: `None` without has_journal or with an
    /// external journal device.
    pub(super) fn read_journal_superblock(&self) -> Result<Option<JournalSuperblock>> {
        if !self.sb.features.has_journal() || self.sb.s_journal_inum == 0 {
            return Ok(None);
        }
        let inode = self.inode(self.sb.s_journal_inum)?;
        let iname = format!("ext4 journal inode {}", inode.ino);
        // s_jnl_blocks keeps a copy of the journal inode's i_block and size (backup type 1).
        if self.sb.s_jnl_backup_type == 1 {
            let b = crate::bytes::Le(&inode.i_block);
            let mut want: Vec<u32> = (0..15).map(|i| b.u32(4 * i)).collect();
            want.push((inode.i_size >> 32) as u32);
            want.push(inode.i_size as u32);
            if want[..] != self.sb.s_jnl_blocks[..] {
                return Err(Error::corrupt(
                    "ext4 superblock",
                    Some(super::superblock::SUPERBLOCK_OFFSET),
                    format!(
                        "s_jnl_blocks does not copy the i_block and i_size of journal inode {}",
                        inode.ino
                    ),
                ));
            }
        }
        let map = self.block_map(&inode)?;
        let Some(first) = map.extents.iter().find(|e| e.logical == 0) else {
            return Err(Error::corrupt(&iname, Some(inode.offset), "logical block 0 is not mapped"));
        };
        let raw = self.read_block(first.physical, "jbd2 journal superblock")?;
        let j = JournalSuperblock::parse(&raw, first.physical * self.sb.block_size())?;
        if u64::from(j.s_blocksize) != self.sb.block_size() {
            return Err(Error::corrupt(
                "jbd2 journal superblock",
                Some(first.physical * self.sb.block_size()),
                format!(
                    "s_blocksize is {}, the filesystem's block size is {}",
                    j.s_blocksize,
                    self.sb.block_size()
                ),
            ));
        }
        // An internal journal serves this filesystem alone; e2fsck refuses more users
        // ("External journal has multiple filesystem users").
        if j.s_nr_users > 1 {
            return Err(Error::corrupt(
                "jbd2 journal superblock",
                Some(first.physical * self.sb.block_size() + 0x40),
                format!("s_nr_users is {}: an internal journal has one user", j.s_nr_users),
            ));
        }
        let inode_blocks = inode.i_size / self.sb.block_size();
        if j.s_maxlen == 0
            || u64::from(j.s_maxlen) > inode_blocks
            || j.s_first == 0
            || j.s_first >= j.s_maxlen
        {
            return Err(Error::corrupt(
                "jbd2 journal superblock",
                Some(first.physical * self.sb.block_size()),
                format!(
                    "s_maxlen {} and s_first {} do not fit the journal inode's {inode_blocks} blocks",
                    j.s_maxlen, j.s_first
                ),
            ));
        }
        Ok(Some(j))
    }
}
