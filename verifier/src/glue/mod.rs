//! Glue from the readers (partition tables, ext4, FAT) to the verify report and to the diff's
//! region maps: one pass over an image fills both.
//!
//! Each reader has one section function beside it (`ext4/section.rs`, `fat/section.rs`; the
//! partition table's is `glue/table.rs`), so a change in a reader's API touches one place.
//! Reader errors never stop the pass: they become findings, and the map keeps whatever was
//! labelled before, so that even a corrupt image can still be diffed structure by structure.
//!
//! **Adding a reader** takes a few lines here: a filesystem goes into [`part_section`] (one
//! match arm: partition contents to its `section`), anything that reads the image as a whole
//! beside the partition table (boot code, a firmware variable store) into [`IMAGE_SECTIONS`].
//! A section adds one report entry and the regions it labels; it never fails.

use crate::bytes::ReadAt;
use crate::diff::{self, DiffReport};
use crate::disk::{self, Contents, Disk};
use crate::expect::Expectations;
use crate::guid::Guid;
use crate::ids;
use crate::regions::{RegionMap, RegionMapBuilder};
use crate::report::{DerivedIds, Finding, FsType, Severity, VerifyReport};
use table::from_table_finding;

/// What one pass over an image finds: the report (before checks) and the region map.
pub struct Inspection {
    pub report: VerifyReport,
    pub map: RegionMap,
}

/// Reads every structure of an image; never fails (reader errors become findings).
pub fn inspect(r: &dyn ReadAt, path: Option<&str>) -> Inspection {
    let mut report = VerifyReport::default();
    report.image.path = path.map(str::to_string);
    report.image.size = r.len();
    let mut map = RegionMap::builder();
    match disk::open(r) {
        Ok(d) => {
            table::table_section(&d, &mut report, &mut map);
            for p in &d.partitions {
                let part = Part {
                    image: r,
                    number: (p.number != 0).then_some(p.number),
                    start: p.start,
                    len: p.len,
                };
                if let Some(section) = part_section(&p.contents) {
                    section(&part, &mut report, &mut map);
                }
            }
            for section in IMAGE_SECTIONS {
                section(r, &d, &mut report, &mut map);
            }
            unrecognised(r, &d, &mut report);
        }
        Err(e) => report.findings.push(read_error("partition table", &e)),
    }
    Inspection { report, map: map.build() }
}

/// What a partition section is handed: the whole image and where its partition lies
/// (`number: None` for a filesystem that is the whole image).
pub struct Part<'a> {
    pub image: &'a dyn ReadAt,
    pub number: Option<u32>,
    pub start: u64,
    pub len: u64,
}

/// A reader's section for one partition: adds to the report, labels regions, never fails.
pub type PartSection = fn(&Part<'_>, &mut VerifyReport, &mut RegionMapBuilder);

/// A reader's section for the image as a whole, after the partition table and partitions.
pub type ImageSection =
    for<'a> fn(&'a dyn ReadAt, &Disk<'a, dyn ReadAt + 'a>, &mut VerifyReport, &mut RegionMapBuilder);

/// The hook for whole-image readers: one line per reader.
const IMAGE_SECTIONS: &[ImageSection] = &[crate::bootcode::section];

/// The hook for filesystems: which section reads a partition of these contents.
fn part_section(contents: &Contents) -> Option<PartSection> {
    match contents {
        Contents::Ext { .. } => Some(crate::ext4::section::section),
        Contents::Fat { .. } => Some(crate::fat::section::section),
        Contents::Extended | Contents::Unknown => None,
    }
}

/// What the partition's type promises, if it names a filesystem we read.
fn claimed_filesystem(p: &crate::disk::Partition) -> Option<&'static str> {
    use crate::expect::{TYPE_ESP, TYPE_LINUX_DATA, TYPE_XBOOTLDR};
    const MS_BASIC_DATA: &str = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7";
    if let Some(t) = &p.type_guid {
        let t = t.to_string().to_uppercase();
        return match t.as_str() {
            TYPE_ESP => Some("vfat (ESP)"),
            TYPE_XBOOTLDR | MS_BASIC_DATA => Some("vfat"),
            TYPE_LINUX_DATA => Some("ext4"),
            _ => None,
        };
    }
    match p.mbr_type? {
        0x83 => Some("ext4"),
        0x01 | 0x04 | 0x06 | 0x0b | 0x0c | 0x0e => Some("vfat"),
        0xef => Some("vfat (ESP)"),
        _ => None,
    }
}

/// Whether the first `n` bytes at `start` are zeros (or cannot be read).
fn zeros(r: &dyn ReadAt, start: u64, len: u64) -> bool {
    let mut buf = vec![0u8; len.min(64 << 10) as usize];
    r.read_exact_at(&mut buf, start).is_ok() && buf.iter().all(|&b| b == 0)
}

/// Errors for what holds nothing we read: an image with no table and no filesystem, and a
/// partition whose type names a filesystem it does not hold.
fn unrecognised(r: &dyn ReadAt, d: &Disk<'_, dyn ReadAt + '_>, rep: &mut VerifyReport) {
    if d.layout == disk::Layout::None && rep.filesystems.is_empty() {
        if let Some(f) = crate::fat::section::broken_boot_sector(r) {
            return rep.findings.push(f);
        }
        let what = if r.is_empty() {
            "the image is empty".to_string()
        } else if zeros(r, 0, r.len()) {
            "the image starts with zeros".to_string()
        } else {
            format!(
                "{} no partition table and no ext4 or FAT filesystem",
                crate::report::count(
                    usize::try_from(r.len()).unwrap_or(usize::MAX),
                    "byte holds",
                    "bytes hold"
                )
            )
        };
        rep.findings.push(Finding::new(
            Severity::Error,
            "nothing-recognised",
            format!("{what}: nothing to verify"),
            Some("image".to_string()),
        ));
        return;
    }
    if d.partitions.is_empty() {
        rep.findings.extend(crate::fat::section::broken_boot_sector(r));
    }
    for p in &d.partitions {
        let Some(kind) = claimed_filesystem(p).filter(|_| p.contents == Contents::Unknown) else { continue };
        let held = if zeros(r, p.start, p.len) { "is all zeros" } else { "holds no filesystem we recognise" };
        rep.findings.push(Finding::new(
            Severity::Error,
            "fs-unrecognised",
            format!("its type says {kind}, but it {held}"),
            Some(format!("partition {}", p.number)),
        ));
    }
}

/// `reprodisk verify`: inspect, then check against the spec (if any) and lint.
/// `env_epoch` is the caller's SOURCE_DATE_EPOCH environment variable, parsed.
pub fn verify(
    r: &dyn ReadAt,
    path: Option<&str>,
    expect: Option<&Expectations>,
    env_epoch: Option<i64>,
) -> VerifyReport {
    let mut report = inspect(r, path).report;
    if expect.is_none() {
        // Without a spec, the table readers' own ID lints (which infer the layout) are the
        // only check of the GPT GUIDs; with one, `VerifyReport::check` compares them exactly.
        if let Ok(d) = disk::open(r) {
            let lints = crate::lints::lint_ids(&d, None);
            report.findings.extend(
                lints.iter().filter(|f| f.code != "mbr.signature.not-derived").map(from_table_finding),
            );
        }
    }
    if let Some(e) = expect {
        report.findings.extend(contents::findings(r, e));
    }
    let derived = derived_ids(&report, expect);
    report.check(expect, env_epoch, &derived);
    report
}

/// [`verify`], then the parts a build manifest lists as `not_written` (entries naming
/// `partition N:`) are reported as such: an info, not a missing or unrecognised filesystem.
pub fn verify_built(
    r: &dyn ReadAt,
    path: Option<&str>,
    expect: Option<&Expectations>,
    env_epoch: Option<i64>,
    not_written: &[String],
) -> VerifyReport {
    let mut report = verify(r, path, expect, env_epoch);
    for f in &mut report.findings {
        let Some(loc) =
            f.location.as_deref().filter(|_| matches!(f.code.as_str(), "fs-missing" | "fs-unrecognised"))
        else {
            continue;
        };
        if let Some(n) = not_written.iter().find(|n| n.contains(&format!("{loc}:"))) {
            *f = Finding::new(Severity::Info, "not-written", n.clone(), Some(loc.to_string()));
        }
    }
    report
        .findings
        .sort_by(|a, b| (a.severity, &a.code, &a.location).cmp(&(b.severity, &b.code, &b.location)));
    report.findings.dedup();
    report
}

/// `reprodisk diff`: both images inspected for their maps, then compared.
pub fn diff_images(a: &dyn ReadAt, b: &dyn ReadAt) -> crate::Result<DiffReport> {
    let map_a = inspect(a, None).map;
    let map_b = inspect(b, None).map;
    diff::diff(a, b, &map_a, &map_b)
}

/// The IDs ARCHITECTURE.md derives, from the spec's anchors or, without one, from the anchors
/// the image carries (the root partition's GUID, the ext4 UUID).
fn derived_ids(report: &VerifyReport, expect: Option<&Expectations>) -> DerivedIds {
    let spec_root = expect.and_then(|e| Guid::parse(&e.root_gpuid).ok());
    let root_part = expect.and_then(|e| e.layout.root_partition());
    let image_root = report
        .table
        .partitions
        .iter()
        .find(|p| Some(p.number) == root_part)
        .or(report.table.partitions.last())
        .and_then(|p| p.guid.as_deref())
        .and_then(|g| Guid::parse(g).ok());
    let ext4_uuid = report
        .filesystems
        .iter()
        .find(|f| f.fs_type == FsType::Ext4)
        .and_then(|f| f.uuid.as_deref())
        .and_then(|u| Guid::parse(u).ok());
    let anchor = spec_root.or(image_root).or(ext4_uuid);
    let mut d = DerivedIds { mbr_signature: anchor.map(ids::mbr_disk_signature), ..Default::default() };
    let spec_fsuid = expect.and_then(|e| e.root_fsuid.as_deref()).and_then(|u| Guid::parse(u).ok());
    for fs in &report.filesystems {
        match fs.fs_type {
            FsType::Ext4 => {
                let own = fs.uuid.as_deref().and_then(|u| Guid::parse(u).ok());
                let is_root = fs.partition == root_part;
                if let Some(fsuid) = if is_root { spec_fsuid.or(own) } else { own } {
                    let seed = ids::ext4_hash_seed(fsuid);
                    d.ext4_hash_seed.insert(fs.partition, crate::ext4::summary::uuid_string(&seed));
                }
            }
            _ => {
                if let (Some(n), Some(a)) = (fs.partition, anchor) {
                    d.fat_volume_ids.insert(n, ids::fat_volume_id(n, a));
                }
            }
        }
    }
    d
}

pub(crate) fn read_error(what: &str, e: &crate::Error) -> Finding {
    Finding::new(Severity::Error, "read-error", format!("{e}"), Some(what.to_string()))
}

pub(crate) fn from_fat_finding(f: &crate::fat::Finding) -> Finding {
    let at = crate::error::Location { structure: f.structure.clone(), offset: f.offset };
    let severity = if f.is_error() { Severity::Error } else { Severity::Warning };
    Finding::new(severity, "fat-structure", f.what.clone(), Some(at.to_string()))
}

mod contents;
mod table;
#[cfg(test)]
mod tests;
