//! FAT12/16/32 reader written from Microsoft's FAT specification (fatgen103): boot sector and
//! BPB, FSInfo, the FATs, directory entries with long names, and a walk of the file tree.
//!
//! [`Fat::open`] reads and checks the metadata every other call depends on; problems that do
//! not stop reading (FAT copies that differ, stale FSInfo hints, a backup boot sector that
//! differs) become [`Finding`]s. [`Fat::walk`] lists every file and directory in on-disk order
//! and adds findings about long names, `.`/`..`, sizes, cross-linked and lost clusters.
//! Everything that makes reading impossible is an [`Error`] naming the structure and offset.

pub mod boot;
pub mod dir;
pub mod dirent;
pub mod fsinfo;
pub mod locate;
pub mod section;
pub mod summary;
pub mod table;
pub mod time;

pub use boot::{BootSector, FatType, Geometry};
pub use dir::{Node, RootLabel, Tree};
pub use dirent::{LfnEntry, ShortEntry, Slot};
pub use fsinfo::FsInfo;
pub use locate::Region;
pub use summary::Summary;
pub use table::{Cluster, FatTable};
pub use time::FatTime;

use crate::bytes::ReadAt;
use crate::error::{Error, Location, Result};
use serde::Serialize;
use std::fmt;

/// How bad a [`Finding`] is. `Error` is what fsck.fat (dosfstools) would repair or reject,
/// so a volume with one is corrupt; `Warning` is a deviation from the spec that FAT readers
/// accept (mkfs.fat writes some of them itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
}

/// A deviation from the spec that does not stop reading, located like an [`Error`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub level: Level,
    /// The structure, e.g. `"fat boot sector"`, `"fat directory /EFI/BOOT"`.
    pub structure: String,
    /// Byte offset in the image, when known.
    pub offset: Option<u64>,
    /// What is wrong, naming the field and the expected and found values.
    pub what: String,
}

impl Finding {
    /// A corruption: the volume is inconsistent and fsck.fat would change it.
    pub fn error(structure: impl Into<String>, offset: Option<u64>, what: impl Into<String>) -> Self {
        Finding { level: Level::Error, structure: structure.into(), offset, what: what.into() }
    }
    /// A deviation FAT readers accept.
    pub fn warning(structure: impl Into<String>, offset: Option<u64>, what: impl Into<String>) -> Self {
        Finding { level: Level::Warning, structure: structure.into(), offset, what: what.into() }
    }
    pub fn is_error(&self) -> bool {
        self.level == Level::Error
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = Location { structure: self.structure.clone(), offset: self.offset };
        write!(f, "{at}: {}", self.what)
    }
}

/// A corrupt-structure error at a volume-relative offset (rebased by [`Fat`] on return).
pub(crate) fn fat_err(structure: &str, offset: u64, what: impl Into<String>) -> Error {
    Error::corrupt(structure, Some(offset), what)
}

/// Moves an error's offset from volume-relative to image-relative.
fn rebase(e: Error, base: u64) -> Error {
    let shift = |at: Location| Location { offset: at.offset.map(|o| o.saturating_add(base)), ..at };
    match e {
        Error::Corrupt { at, what } => Error::Corrupt { at: shift(at), what },
        Error::Unsupported { at, what } => Error::Unsupported { at: shift(at), what },
        Error::Truncated { at, needed, available } => Error::Truncated { at: shift(at), needed, available },
        e => e,
    }
}

/// An opened FAT volume: the checked boot sector, the active FAT decoded, and the findings
/// gathered while opening.
pub struct Fat<'r, R: ReadAt + ?Sized> {
    reader: &'r R,
    /// Image offset of the volume start, added to every reported offset.
    base: u64,
    pub boot: BootSector,
    pub geometry: Geometry,
    /// The FAT32 backup boot sector, when `BPB_BkBootSec` names one and it parses.
    pub backup_boot: Option<BootSector>,
    /// The FAT32 FSInfo sector, when present with valid signatures.
    pub fsinfo: Option<FsInfo>,
    /// The active FAT (copy 0 unless FAT32 mirroring is disabled).
    pub table: FatTable,
    /// Findings from opening, offsets image-relative.
    pub findings: Vec<Finding>,
}

impl<'r, R: ReadAt + ?Sized> Fat<'r, R> {
    /// Opens a volume that starts at offset 0 of `reader`.
    pub fn open(reader: &'r R) -> Result<Self> {
        Self::open_at(reader, 0)
    }

    /// Opens a volume; `base` is its offset in the whole image (e.g. a partition start when
    /// `reader` is a [`crate::bytes::Slice`]), used only in error and finding locations.
    pub fn open_at(reader: &'r R, base: u64) -> Result<Self> {
        Self::open_inner(reader, base).map_err(|e| rebase(e, base))
    }

    fn open_inner(reader: &'r R, base: u64) -> Result<Self> {
        let mut findings = Vec::new();
        let sector0 = reader.read_vec(0, 512, "fat boot sector")?;
        let boot = BootSector::parse(&sector0)?;
        let geometry = boot.geometry(&mut findings)?;
        let bps = u64::from(geometry.bytes_per_sector);
        if reader.len() < geometry.volume_bytes() {
            findings.push(Finding::error(
                "fat volume",
                Some(reader.len()),
                format!(
                    "the image ends at byte {}, before the last sector the boot sector describes (volume size {} bytes)",
                    reader.len(),
                    geometry.volume_bytes()
                ),
            ));
        }

        let mut backup_boot = None;
        let mut fsinfo = None;
        if geometry.fat_type == FatType::Fat32 {
            let bk = boot.bpb_bk_boot_sec;
            if bk != 0 && bk != 0xFFFF {
                let off = u64::from(bk) * bps;
                let structure = "fat32 backup boot sector";
                match reader.read_vec(off, 512, structure).and_then(|b| BootSector::parse(&b)) {
                    Ok(b) => {
                        let diff = boot.differing_fields(&b);
                        if !diff.is_empty() {
                            findings.push(Finding::warning(
                                structure,
                                Some(off),
                                format!("differs from the primary boot sector in {}", diff.join(", ")),
                            ));
                        }
                        backup_boot = Some(b);
                    }
                    Err(e) => findings.push(Finding::warning(structure, Some(off), e.to_string())),
                }
            }
            let fi = boot.bpb_fs_info;
            if fi != 0 && fi != 0xFFFF {
                let off = u64::from(fi) * bps;
                match reader.read_vec(off, 512, fsinfo::STRUCT).and_then(|b| FsInfo::parse(&b, off)) {
                    Ok(f) => fsinfo = Some(f),
                    Err(e) => findings.push(Finding::error(fsinfo::STRUCT, Some(off), e.to_string())),
                }
            }
        }

        let count = geometry.cluster_count + 2;
        let nbytes = table::fat_bytes(geometry.fat_type, count);
        let mirroring_off = geometry.fat_type == FatType::Fat32 && boot.bpb_ext_flags & 0x80 != 0;
        let active = if mirroring_off { (boot.bpb_ext_flags & 0x0F) as u8 } else { 0 };
        let active_off = geometry.fat_copy_offset(active);
        let raw = reader.read_vec(active_off, nbytes, &format!("fat {active}"))?;
        if !mirroring_off {
            for i in 1..boot.bpb_num_fats {
                let off = geometry.fat_copy_offset(i);
                let copy = reader.read_vec(off, nbytes, &format!("fat {i}"))?;
                if let Some(pos) = raw.iter().zip(&copy).position(|(a, b)| a != b) {
                    let entry = pos as u64 * 8 / u64::from(geometry.fat_type.bits());
                    findings.push(Finding::error(
                        format!("fat {i}"),
                        Some(off + pos as u64),
                        format!("differs from fat 0, first at entry {entry} (byte {pos:#x} of the fat)"),
                    ));
                }
            }
        }
        let table = FatTable::decode(geometry.fat_type, &raw, count);
        drop(raw);
        table.check_reserved(boot.bpb_media, active_off, &mut findings);
        if let Some(fi) = &fsinfo {
            fi.check(
                u64::from(boot.bpb_fs_info) * bps,
                table.free_count(),
                geometry.max_cluster(),
                &mut findings,
            );
        }
        for f in &mut findings {
            f.offset = f.offset.map(|o| o.saturating_add(base));
        }
        Ok(Fat { reader, base, boot, geometry, backup_boot, fsinfo, table, findings })
    }

    /// The reader the volume is read from.
    pub fn reader(&self) -> &'r R {
        self.reader
    }

    /// Image offset of the volume start.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Walks the whole tree. See [`Tree`].
    pub fn walk(&self) -> Result<Tree> {
        dir::walk(self).map_err(|e| rebase(e, self.base))
    }

    /// The root directory's volume label entry, reading only the root directory.
    pub fn root_label(&self) -> Result<Option<dir::RootLabel>> {
        dir::root_label(self).map_err(|e| rebase(e, self.base))
    }

    /// Reads the file at `path` (components separated by `/`, matched against long names,
    /// then short names, ignoring ASCII case as FAT does). Fails when the file is larger
    /// than `cap` bytes, so a corrupt size cannot make this allocate without bound.
    pub fn read_file(&self, path: &str, cap: u64) -> Result<Vec<u8>> {
        dir::read_file(self, path, cap).map_err(|e| rebase(e, self.base))
    }

    /// A serializable summary of the volume for reports; `tree` adds counts and times.
    pub fn summary(&self, tree: Option<&Tree>) -> Summary {
        Summary::new(self, tree)
    }
}
