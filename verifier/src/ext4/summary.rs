//! A serializable summary of a filesystem for reports: IDs, features, counts, times by
//! class and the journal's state.

use super::walk::Entry;
use super::{Ext4, Timestamp};
use crate::bytes::ReadAt;
use serde::Serialize;
use std::collections::BTreeSet;

/// Formats 16 bytes as a lowercase hyphenated UUID, as dumpe2fs and blkid print them.
pub fn uuid_string(u: &[u8; 16]) -> String {
    let h: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..].concat()
    )
}

/// The superblock's times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuperblockTimes {
    pub s_mkfs_time: i64,
    pub s_wtime: i64,
    pub s_mtime: i64,
    pub s_lastcheck: i64,
    pub s_first_error_time: i64,
    pub s_last_error_time: i64,
}

/// Distinct values of one class of file time, with the earliest and latest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeClass {
    pub min: Option<Timestamp>,
    pub max: Option<Timestamp>,
    /// Number of distinct values.
    pub distinct: usize,
}

impl TimeClass {
    fn of(times: impl Iterator<Item = Timestamp>) -> Self {
        let set: BTreeSet<Timestamp> = times.collect();
        TimeClass { min: set.first().copied(), max: set.last().copied(), distinct: set.len() }
    }
}

/// File times by class, over every inode of the walk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileTimes {
    pub atime: TimeClass,
    pub mtime: TimeClass,
    pub ctime: TimeClass,
    pub crtime: TimeClass,
}

/// The journal's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournalSummary {
    pub inode: u32,
    /// The jbd2 superblock's `s_uuid` (mke2fs copies the filesystem UUID into it).
    pub uuid: String,
    pub blocks: u32,
    pub sequence: u32,
    pub start: u32,
    pub clean: bool,
    pub features: Vec<String>,
    pub checksum_type: Option<String>,
}

/// Everything a report needs about one ext4 filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub uuid: String,
    pub volume_name: String,
    pub features: Vec<String>,
    pub block_size: u64,
    pub blocks_count: u64,
    pub free_blocks_count: u64,
    pub reserved_blocks_count: u64,
    pub inodes_count: u32,
    pub free_inodes_count: u32,
    pub inode_size: u16,
    pub group_count: u64,
    pub hash_seed: String,
    pub default_hash: String,
    pub checksum_seed: u32,
    pub state: u16,
    pub mount_count: u16,
    pub max_mount_count: i16,
    pub kbytes_written: u64,
    /// `s_last_mounted`, the directory the filesystem was last mounted on.
    pub last_mounted: String,
    /// `s_error_count`: errors the kernel recorded.
    pub error_count: u32,
    pub superblock_times: SuperblockTimes,
    pub file_times: Option<FileTimes>,
    pub journal: Option<JournalSummary>,
}

impl<R: ReadAt> Ext4<R> {
    /// The summary; file times are included when a walk is given.
    pub fn summary(&self, entries: Option<&[Entry]>) -> Summary {
        let sb = &self.sb;
        Summary {
            uuid: uuid_string(&sb.s_uuid),
            volume_name: String::from_utf8_lossy(&sb.s_volume_name).into_owned(),
            features: sb.features.names(),
            block_size: sb.block_size(),
            blocks_count: sb.s_blocks_count,
            free_blocks_count: sb.s_free_blocks_count,
            reserved_blocks_count: sb.s_r_blocks_count,
            inodes_count: sb.s_inodes_count,
            free_inodes_count: sb.s_free_inodes_count,
            inode_size: sb.s_inode_size,
            group_count: sb.group_count(),
            hash_seed: uuid_string(&sb.s_hash_seed),
            default_hash: sb.def_hash_name(),
            checksum_seed: sb.csum_seed(),
            state: sb.s_state,
            mount_count: sb.s_mnt_count,
            max_mount_count: sb.s_max_mnt_count,
            kbytes_written: sb.s_kbytes_written,
            last_mounted: String::from_utf8_lossy(&sb.s_last_mounted).into_owned(),
            error_count: sb.s_error_count,
            superblock_times: SuperblockTimes {
                s_mkfs_time: sb.s_mkfs_time,
                s_wtime: sb.s_wtime,
                s_mtime: sb.s_mtime,
                s_lastcheck: sb.s_lastcheck,
                s_first_error_time: sb.s_first_error_time,
                s_last_error_time: sb.s_last_error_time,
            },
            file_times: entries.map(|es| FileTimes {
                atime: TimeClass::of(es.iter().map(|e| e.atime)),
                mtime: TimeClass::of(es.iter().map(|e| e.mtime)),
                ctime: TimeClass::of(es.iter().map(|e| e.ctime)),
                crtime: TimeClass::of(es.iter().filter_map(|e| e.crtime)),
            }),
            journal: self.journal.as_ref().map(|j| JournalSummary {
                inode: sb.s_journal_inum,
                uuid: uuid_string(&j.s_uuid),
                blocks: j.s_maxlen,
                sequence: j.s_sequence,
                start: j.s_start,
                clean: j.is_clean(),
                features: j.feature_names(),
                checksum_type: j.has_csum_v2v3().then(|| j.checksum_type_name().to_string()),
            }),
        }
    }
}
