//! The data of the HTML report's disk map: the partitions to scale, and inside each
//! filesystem its metadata, journal and file-data regions, read with the verifier's own region
//! labelling ([`reprodisk_verifier::glue::inspect`]), so the map shows what the verifier
//! understands of the image, not what the builder meant to write.

use reprodisk_verifier::glue;
use reprodisk_verifier::regions::Label;
use serde::Serialize;
use std::path::Path;

/// What a byte range of the disk holds, coarsely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// MBR, GPT headers and entry arrays.
    Table,
    /// Filesystem metadata: superblocks, group descriptors, bitmaps, inode tables,
    /// directories, FAT tables, extent and xattr blocks.
    Metadata,
    Journal,
    /// File contents.
    Data,
}

impl Kind {
    pub fn of(label: &Label) -> Option<Kind> {
        let s = label.structure.as_str();
        if s == "partition data" {
            None
        } else if s == "file" {
            Some(Kind::Data)
        } else if s.contains("journal") {
            Some(Kind::Journal)
        } else if s.starts_with("mbr") || s.starts_with("gpt") {
            Some(Kind::Table)
        } else {
            Some(Kind::Metadata)
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Table => "partition table",
            Kind::Metadata => "filesystem metadata",
            Kind::Journal => "journal",
            Kind::Data => "file data",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Span {
    pub start: u64,
    pub len: u64,
    pub kind: Kind,
}

#[derive(Debug, Clone, Serialize)]
pub struct MapPartition {
    /// 0 for a disk without a partition table (the whole disk is one filesystem).
    pub number: u32,
    pub start: u64,
    pub len: u64,
    /// The filesystem (or partition type) the verifier found.
    pub what: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DiskMap {
    pub size: u64,
    pub partitions: Vec<MapPartition>,
    /// Sorted, disjoint, adjacent spans of one kind merged.
    pub spans: Vec<Span>,
    /// Why the map is empty or partial.
    pub note: Option<String>,
}

impl DiskMap {
    /// Reads `image` with the verifier (through the CLI's image-opening entry point) and maps it.
    pub fn of(image: &Path) -> DiskMap {
        let r = match crate::cli::open_image(image) {
            Ok(r) => r,
            Err(e) => return DiskMap { note: Some(format!("{e:#}")), ..DiskMap::default() },
        };
        let ins = match crate::audit::compare::contain_panic("reading the image for the disk map", || {
            glue::inspect(&r, None)
        }) {
            Ok(ins) => ins,
            Err(e) => return DiskMap { note: Some(format!("{e:#}")), ..DiskMap::default() },
        };
        let mut map = DiskMap { size: reprodisk_verifier::bytes::ReadAt::len(&r), ..DiskMap::default() };
        for p in &ins.report.table.partitions {
            let fs = ins.report.filesystems.iter().find(|f| f.partition == Some(p.number));
            let what = match fs {
                Some(f) => format!("{:?} \"{}\"", f.fs_type, f.label.trim_end_matches(['\0', ' '])),
                None if !p.type_name.is_empty() => p.type_name.clone(),
                None => "no filesystem".into(),
            };
            map.partitions.push(MapPartition {
                number: p.number,
                start: p.start_lba * 512,
                len: p.sectors * 512,
                what,
            });
        }
        if map.partitions.is_empty()
            && let Some(f) = ins.report.filesystems.first()
        {
            map.partitions.push(MapPartition {
                number: 0,
                start: 0,
                len: map.size,
                what: format!(
                    "{:?} \"{}\" (no partition table)",
                    f.fs_type,
                    f.label.trim_end_matches(['\0', ' '])
                ),
            });
        }
        for seg in ins.map.segments() {
            let Some(kind) = Kind::of(&ins.map.region_of(seg).label) else { continue };
            match map.spans.last_mut() {
                Some(last) if last.kind == kind && last.start + last.len == seg.start => {
                    last.len += seg.end - seg.start
                }
                _ => map.spans.push(Span { start: seg.start, len: seg.end - seg.start, kind }),
            }
        }
        map
    }
}
