//! The block ownership map: for every block, the structure or file that owns it (superblock
//! and backups, group descriptors, reserved GDT blocks, bitmaps, inode tables, the journal,
//! file data, block map blocks, directory blocks, xattr blocks). Two owners of one block are
//! an error.

use super::walk::Entry;
use super::{EXT4_RESIZE_INO, Ext4, FileType};
use crate::bytes::ReadAt;
use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::HashSet;
use std::fmt;

/// Who owns a block. Paths are bytes, as in the walk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Owner {
    /// The superblock copy at the start of a group (group 0: the primary).
    Superblock {
        group: u32,
    },
    /// The group descriptor table copy in a group.
    Gdt {
        group: u32,
    },
    /// Reserved GDT blocks for online resize in a group.
    ReservedGdt {
        group: u32,
    },
    BlockBitmap {
        group: u32,
    },
    InodeBitmap {
        group: u32,
    },
    InodeTable {
        group: u32,
    },
    /// A block of the internal journal.
    Journal,
    /// The resize inode's own map block.
    ResizeInode,
    /// Blocks of another reserved inode (bad blocks, quota, ...).
    ReservedInode {
        ino: u32,
    },
    /// Blocks of an inode on the orphan list (unlinked, still open when last written).
    Orphan {
        ino: u32,
    },
    /// Data of a regular file or a slow symlink.
    FileData {
        ino: u32,
        path: ShownPath,
    },
    /// A directory block (entries or hash index).
    DirBlock {
        ino: u32,
        path: ShownPath,
    },
    /// An extent tree block or indirect block of a file.
    BlockMapBlock {
        ino: u32,
        path: ShownPath,
    },
    /// An extended attribute block (possibly shared; the first path found).
    XattrBlock {
        ino: u32,
        path: ShownPath,
    },
}

/// A file's path as [`super::walk::shown_path`] shows it (bounded), shared by every range
/// the file owns so that a file of many extents holds its path once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownPath(pub std::sync::Arc<str>);

impl fmt::Display for ShownPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ShownPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = |p: &ShownPath| p.to_string();
        match self {
            Owner::Superblock { group: 0 } => write!(f, "superblock"),
            Owner::Superblock { group } => write!(f, "superblock backup in group {group}"),
            Owner::Gdt { group } => write!(f, "group descriptor table in group {group}"),
            Owner::ReservedGdt { group } => write!(f, "reserved GDT blocks in group {group}"),
            Owner::BlockBitmap { group } => write!(f, "block bitmap of group {group}"),
            Owner::InodeBitmap { group } => write!(f, "inode bitmap of group {group}"),
            Owner::InodeTable { group } => write!(f, "inode table of group {group}"),
            Owner::Journal => write!(f, "journal"),
            Owner::ResizeInode => write!(f, "resize inode"),
            Owner::ReservedInode { ino } => write!(f, "reserved inode {ino}"),
            Owner::Orphan { ino } => write!(f, "orphan inode {ino}"),
            Owner::FileData { path, .. } => write!(f, "file {} data", p(path)),
            Owner::DirBlock { path, .. } => write!(f, "directory {} block", p(path)),
            Owner::BlockMapBlock { path, .. } => write!(f, "extent/indirect block of {}", p(path)),
            Owner::XattrBlock { path, .. } => write!(f, "xattr block of {}", p(path)),
        }
    }
}

/// `len` blocks from `start`, owned by `owner`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnedRange {
    pub start: u64,
    pub len: u64,
    pub owner: Owner,
}

/// Every owned block range of a filesystem, sorted and disjoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OwnerMap {
    ranges: Vec<OwnedRange>,
}

impl OwnerMap {
    /// The owner of `block`, if any.
    pub fn owner(&self, block: u64) -> Option<&Owner> {
        let i = self.ranges.partition_point(|r| r.start + r.len <= block);
        self.ranges.get(i).filter(|r| r.start <= block).map(|r| &r.owner)
    }

    /// All ranges, sorted by start block.
    pub fn ranges(&self) -> &[OwnedRange] {
        &self.ranges
    }

    /// Sets bit `b - start` of `bits` for every owned block `b` in `start..end`.
    pub fn mark_owned(&self, start: u64, end: u64, bits: &mut [u8]) {
        let i = self.ranges.partition_point(|r| r.start + r.len <= start);
        for r in self.ranges[i..].iter().take_while(|r| r.start < end) {
            for b in r.start.max(start)..(r.start + r.len).min(end) {
                let k = b - start;
                if let Some(byte) = bits.get_mut((k / 8) as usize) {
                    *byte |= 1 << (k % 8);
                }
            }
        }
    }

    /// Number of owned blocks in `start..end`.
    pub fn owned_in(&self, start: u64, end: u64) -> u64 {
        let i = self.ranges.partition_point(|r| r.start + r.len <= start);
        self.ranges[i..]
            .iter()
            .take_while(|r| r.start < end)
            .map(|r| (r.start + r.len).min(end) - r.start.max(start))
            .sum()
    }
}

impl<R: ReadAt> Ext4<R> {
    /// Metadata ranges of every group: superblock copies, GDT, reserved GDT, bitmaps and
    /// inode tables.
    pub fn metadata_ranges(&self) -> Vec<OwnedRange> {
        let sb = &self.sb;
        let mut v = Vec::new();
        let itb = sb.inode_table_blocks();
        for copies in self.gdt_locations() {
            for &(g, block) in copies {
                v.push(OwnedRange { start: block, len: 1, owner: Owner::Gdt { group: g as u32 } });
            }
        }
        for (g, gd) in self.groups.iter().enumerate() {
            let group = g as u32;
            if sb.group_has_super(g as u64) {
                let first = sb.group_first_block(g as u64);
                v.push(OwnedRange { start: first, len: 1, owner: Owner::Superblock { group } });
                if sb.s_reserved_gdt_blocks > 0 {
                    let start = first + 1 + sb.old_gdt_blocks();
                    v.push(OwnedRange {
                        start,
                        len: u64::from(sb.s_reserved_gdt_blocks),
                        owner: Owner::ReservedGdt { group },
                    });
                }
            }
            v.push(OwnedRange { start: gd.bg_block_bitmap, len: 1, owner: Owner::BlockBitmap { group } });
            v.push(OwnedRange { start: gd.bg_inode_bitmap, len: 1, owner: Owner::InodeBitmap { group } });
            v.push(OwnedRange { start: gd.bg_inode_table, len: itb, owner: Owner::InodeTable { group } });
        }
        v
    }

    /// The orphan list: inodes unlinked while open, chained from `s_last_orphan` through
    /// their `i_dtime`. A loop or an inode number out of range is an error.
    pub fn orphan_inodes(&self) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        let mut next = self.sb.s_last_orphan;
        while next != 0 {
            if out.contains(&next) || out.len() as u64 >= u64::from(self.sb.s_inodes_count) {
                return Err(Error::corrupt(
                    "ext4 orphan list",
                    Some(super::superblock::SUPERBLOCK_OFFSET + 0xE8),
                    format!("inode {next} is reached twice: the list has a loop"),
                ));
            }
            out.push(next);
            next = self.inode(next)?.i_dtime;
        }
        Ok(out)
    }

    /// Inodes outside the tree that may hold blocks: the reserved ones below `s_first_ino`
    /// (except the root) and the quota and orphan file inodes the superblock names.
    pub fn special_inodes(&self) -> Vec<u32> {
        let sb = &self.sb;
        let mut v: Vec<u32> =
            (1..sb.s_first_ino.min(sb.s_inodes_count + 1)).filter(|&i| i != super::EXT4_ROOT_INO).collect();
        for i in [
            sb.s_usr_quota_inum,
            sb.s_grp_quota_inum,
            sb.s_prj_quota_inum,
            sb.s_orphan_file_inum,
            sb.s_journal_inum,
        ] {
            if i != 0 && i <= sb.s_inodes_count && !v.contains(&i) {
                v.push(i);
            }
        }
        v
    }

    /// Builds the ownership map from the metadata, the reserved inodes and a walk.
    pub fn owner_map(&self, entries: &[Entry]) -> Result<OwnerMap> {
        let mut v = self.metadata_ranges();
        let reserved_gdt: Vec<(u64, u64)> = v
            .iter()
            .filter(|r| matches!(r.owner, Owner::ReservedGdt { .. }))
            .map(|r| (r.start, r.start + r.len))
            .collect();
        let orphans = self.orphan_inodes()?;
        for ino in self.special_inodes().into_iter().chain(orphans.iter().copied()) {
            let inode = self.inode(ino)?;
            if inode.i_mode == 0 && inode.i_blocks == 0 {
                continue;
            }
            let map = self.block_map(&inode)?;
            let owner = if orphans.contains(&ino) {
                Owner::Orphan { ino }
            } else if ino == self.sb.s_journal_inum {
                Owner::Journal
            } else if ino == EXT4_RESIZE_INO {
                Owner::ResizeInode
            } else {
                Owner::ReservedInode { ino }
            };
            // e2fsck counts a reserved inode's blocks as it does a file's.
            self.check_i_blocks(&inode, &map, &owner.to_string())?;
            let blocks = map
                .extents
                .iter()
                .map(|e| (e.physical, e.len))
                .chain(map.meta_blocks.iter().map(|&b| (b, 1)));
            for (start, len) in blocks {
                // The resize inode maps the reserved GDT blocks, which are listed already.
                if ino == EXT4_RESIZE_INO && reserved_gdt.iter().any(|&(s, e)| start >= s && start + len <= e)
                {
                    continue;
                }
                v.push(OwnedRange { start, len, owner: owner.clone() });
            }
            if inode.i_file_acl != 0 {
                v.push(OwnedRange { start: inode.i_file_acl, len: 1, owner: owner.clone() });
            }
        }
        let mut seen_ino = HashSet::new();
        let mut seen_xattr = HashSet::new();
        for (i, e) in entries.iter().enumerate() {
            if !seen_ino.insert(e.ino) {
                continue;
            }
            let path = ShownPath(super::walk::shown_path(entries, i).into());
            let data = |ino, path: ShownPath| {
                if e.file_type == FileType::Directory {
                    Owner::DirBlock { ino, path }
                } else {
                    Owner::FileData { ino, path }
                }
            };
            for x in &e.extents {
                v.push(OwnedRange { start: x.physical, len: x.len, owner: data(e.ino, path.clone()) });
            }
            for &b in &e.map_blocks {
                v.push(OwnedRange {
                    start: b,
                    len: 1,
                    owner: Owner::BlockMapBlock { ino: e.ino, path: path.clone() },
                });
            }
            if let Some(b) = e.xattr_block
                && seen_xattr.insert(b)
            {
                v.push(OwnedRange {
                    start: b,
                    len: 1,
                    owner: Owner::XattrBlock { ino: e.ino, path: path.clone() },
                });
            }
        }
        v.retain(|r| r.len > 0);
        v.sort_by_key(|r| r.start);
        for w in v.windows(2) {
            if w[0].start + w[0].len > w[1].start {
                return Err(Error::corrupt(
                    "ext4 block ownership",
                    Some(w[1].start * self.sb.block_size()),
                    format!("block {} is claimed by {} and by {}", w[1].start, w[0].owner, w[1].owner),
                ));
            }
        }
        if let Some(last) = v.last()
            && last.start + last.len > self.sb.s_blocks_count
        {
            return Err(Error::corrupt(
                "ext4 block ownership",
                None,
                format!("{} ends past the filesystem's {} blocks", last.owner, self.sb.s_blocks_count),
            ));
        }
        Ok(OwnerMap { ranges: v })
    }
}
