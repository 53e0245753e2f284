//! The FAT12/16/32 writer for the ESP, XBOOTLDR and legacy+boot's /boot: plans the whole filesystem, then writes it straight into the partition's byte range.
//!
//! # On-disk design
//!
//! Sizes are what `mkfs.vfat` 4.2 makes for a partition of the same size ([`geometry`]: FAT
//! type, cluster size, reserved sectors, FAT length, root entries, sectors per track and
//! heads), with hidden sectors = the partition's first LBA, as mkfs.vfat writes when run on
//! the partition's device. Then, in order (sector offsets from the partition start):
//!
//! | sectors | content |
//! | --- | --- |
//! | 0 | boot sector: `EB 3C 90` (`EB 58 90` on FAT32), OEM name `MSWIN4.1`, the BPB, drive 0x80, extended signature 0x29, volume ID, label, `FAT12   `/`FAT16   `/`FAT32   `, a boot stub (`int 18h`, then halt), `55 AA` |
//! | 1 (FAT32) | FSInfo: `RRaA`, `rrAa`, the exact free cluster count, the first free cluster, `55 AA` |
//! | 6, 7 (FAT32) | copies of the boot sector and FSInfo |
//! | reserved.. | FAT 1, then FAT 2 (identical): entry 0 = media 0xF8 with all other bits set, entry 1 = end of chain, then the chains |
//! | then (FAT12/16) | the fixed root directory |
//! | data | cluster 2 onwards |
//!
//! Allocation is contiguous and in a fixed order: on FAT32 the root directory first (cluster
//! 2, as mkfs.vfat places it), then every directory and file in depth-first pre-order of the
//! tree, entries sorted by name bytes; each directory's clusters before its children's. A
//! file's chain is its clusters in increasing order, ended by 0xFF8 / 0xFFF8 / 0x0FFFFFF8.
//! Empty files have first cluster 0. Directories get the clusters their entries need
//! (at least one); the unused rest of a cluster is zero (end-of-directory).
//!
//! Directory entries: the volume label entry first in the root (attribute 0x08, as
//! mkfs.vfat writes it), `.` and `..` first in every other directory (`..` of a top-level
//! directory names cluster 0), then one entry per name in order: LFN slots when the name is
//! not already an upper-case 8.3 name, then the short entry ([`name`]). Attributes are
//! 0x10 for directories and 0x20 (archive) for files. Every time (creation, write, access)
//! is SOURCE_DATE_EPOCH in UTC ([`time`]). Nothing depends on the host: no clock, no
//! readdir order, no random value (the volume ID comes from `ids.rs`).
//!
//! Files larger than the partition can hold are a [`FatError::TooSmall`] saying how many
//! MiB are missing; the caller (the boot planner) turns it into a `bootSize` hint.
//!
//! Writing goes through `Write + Seek` (the image's sparse writer): every region is written
//! once, all-zero ranges stay holes, nothing goes through a temporary file.

pub mod geometry;
pub mod name;
pub mod time;
mod writer;

pub use geometry::{FatType, Geometry, mkfs_geometry};
pub use writer::FatPlan;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum FatError {
    #[error("a partition of {bytes} bytes is too small for a FAT filesystem (mkfs.vfat needs about 1 MiB)")]
    PartitionTooSmall { bytes: u64 },
    #[error("a partition of {bytes} bytes is too large for FAT32 with 512-byte sectors (2 TiB at most)")]
    PartitionTooLarge { bytes: u64 },
    #[error(
        "the files for the {label} FAT filesystem need {needed} bytes but its {available}-byte partition holds {free} bytes of files: {missing_mib} MiB missing"
    )]
    TooSmall { label: String, needed: u64, available: u64, free: u64, missing_mib: u64 },
    #[error("the root directory of the {label} FAT filesystem holds {slots} entries, more than its {max}")]
    RootFull { label: String, slots: u64, max: u64 },
    #[error("invalid FAT file name {name:?}: {why}")]
    BadName { name: String, why: &'static str },
    #[error("FAT path `{path}`: {why}")]
    BadPath { path: String, why: &'static str },
    #[error("invalid FAT label {label:?}: {why}")]
    BadLabel { label: String, why: &'static str },
    #[error("`{path}` changed while the image was written: it had {expected} bytes when planned")]
    SourceChanged { path: PathBuf, expected: u64 },
    #[error("reading `{path}`: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("writing the FAT filesystem at image offset {offset}: {error}")]
    Write { offset: u64, error: std::io::Error },
}

/// Where a file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileData {
    /// A host file, streamed when written; `size` is checked again then.
    Host {
        path: PathBuf,
        size: u64,
    },
    Bytes(Arc<[u8]>),
}

impl FileData {
    pub fn len(&self) -> u64 {
        match self {
            FileData::Host { size, .. } => *size,
            FileData::Bytes(b) => b.len() as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lower-case hex sha256 of the bytes.
    pub fn sha256(&self) -> std::io::Result<String> {
        match self {
            FileData::Host { path, .. } => crate::manifest::sha256_file(path),
            FileData::Bytes(b) => crate::manifest::sha256_reader(&b[..], |_| {}),
        }
    }

    /// A reader over the bytes.
    pub fn open(&self) -> Result<Box<dyn Read + '_>, FatError> {
        Ok(match self {
            FileData::Host { path, .. } => Box::new(
                std::fs::File::open(path).map_err(|error| FatError::Read { path: path.clone(), error })?,
            ),
            FileData::Bytes(b) => Box::new(&b[..]),
        })
    }
}

impl From<&str> for FileData {
    fn from(s: &str) -> Self {
        FileData::Bytes(Arc::from(s.as_bytes()))
    }
}

/// A node of the tree to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FatNode {
    Dir(BTreeMap<String, FatNode>),
    File(FileData),
}

/// The files of one FAT filesystem. Names are case-preserving and, as on FAT, unique
/// without regard to case.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FatTree {
    pub root: BTreeMap<String, FatNode>,
}

impl FatTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// The folder at `components`, created with its parents.
    fn dir_mut(
        &mut self,
        path: &str,
        components: &[&str],
    ) -> Result<&mut BTreeMap<String, FatNode>, FatError> {
        let mut cur = &mut self.root;
        for c in components {
            name::check_long(c)?;
            let key = match cur.keys().find(|k| k.eq_ignore_ascii_case(c)) {
                Some(k) if k != c => {
                    return Err(FatError::BadPath {
                        path: path.into(),
                        why: "differs only in case from an existing name",
                    });
                }
                Some(k) => k.clone(),
                None => {
                    cur.insert(c.to_string(), FatNode::Dir(BTreeMap::new()));
                    c.to_string()
                }
            };
            cur = match cur.get_mut(&key) {
                Some(FatNode::Dir(d)) => d,
                _ => return Err(FatError::BadPath { path: path.into(), why: "a parent is a file" }),
            };
        }
        Ok(cur)
    }

    fn split(path: &str) -> Vec<&str> {
        path.split('/').filter(|c| !c.is_empty()).collect()
    }

    /// Adds an empty folder (and its parents).
    pub fn add_dir(&mut self, path: &str) -> Result<(), FatError> {
        self.dir_mut(path, &Self::split(path)).map(|_| ())
    }

    /// Adds a file at `path` (`/EFI/BOOT/BOOTX64.EFI`), creating its folders.
    pub fn add_file(&mut self, path: &str, data: FileData) -> Result<(), FatError> {
        let comps = Self::split(path);
        let Some((last, parents)) = comps.split_last() else {
            return Err(FatError::BadPath { path: path.into(), why: "a file needs a name" });
        };
        name::check_long(last)?;
        let dir = self.dir_mut(path, parents)?;
        if dir.keys().any(|k| k.eq_ignore_ascii_case(last)) {
            return Err(FatError::BadPath {
                path: path.into(),
                why: "already exists (FAT names ignore case)",
            });
        }
        dir.insert(last.to_string(), FatNode::File(data));
        Ok(())
    }

    /// Every file with its path, in the fixed order.
    pub fn files(&self) -> Vec<(String, &FileData)> {
        fn walk<'a>(d: &'a BTreeMap<String, FatNode>, prefix: &str, out: &mut Vec<(String, &'a FileData)>) {
            for (n, node) in d {
                let p = format!("{prefix}/{n}");
                match node {
                    FatNode::Dir(sub) => walk(sub, &p, out),
                    FatNode::File(f) => out.push((p, f)),
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root, "", &mut out);
        out
    }
}

/// The filesystem's identity and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatOptions {
    /// Up to 11 characters, upper-case letters, digits, space and `!#$%&'()-@^_`{}~`.
    pub label: String,
    pub volume_id: u32,
    /// The partition's first LBA.
    pub hidden_sectors: u32,
    /// SOURCE_DATE_EPOCH.
    pub time: i64,
}

impl FatOptions {
    /// The 11-byte label, space padded.
    pub fn label_bytes(&self) -> Result<[u8; 11], FatError> {
        let bad = |why| FatError::BadLabel { label: self.label.clone(), why };
        if self.label.is_empty() || self.label.len() > 11 {
            return Err(bad("a FAT label has 1 to 11 characters"));
        }
        if self.label.starts_with(' ') {
            return Err(bad("a FAT label cannot start with a space"));
        }
        if !self.label.bytes().all(|c| {
            c == b' ' || c.is_ascii_uppercase() || c.is_ascii_digit() || b"!#$%&'()-@^_`{}~".contains(&c)
        }) {
            return Err(bad("use upper-case letters, digits, spaces and !#$%&'()-@^_`{}~ only"));
        }
        let mut out = [b' '; 11];
        out[..self.label.len()].copy_from_slice(self.label.as_bytes());
        Ok(out)
    }
}

/// Plans `tree` for a partition of `bytes`.
pub fn plan(tree: &FatTree, bytes: u64, opts: &FatOptions) -> Result<FatPlan, FatError> {
    writer::plan(tree, bytes, opts)
}

/// The smallest whole-MiB partition that holds `tree` (for error hints), searched up to `limit_mib`.
pub fn min_mib(tree: &FatTree, opts: &FatOptions, limit_mib: u64) -> Option<u64> {
    (1..=limit_mib).find(|m| plan(tree, m << 20, opts).is_ok())
}
