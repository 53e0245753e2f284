//! The GUID Partition Table (UEFI spec 5.3): primary and backup headers, the partition entry
//! arrays, every CRC, entry ranges, overlaps, alignment and protective-MBR consistency.
//!
//! GPT header (UEFI spec table 5-5), at LBA 1 and at the disk's last LBA:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0x00 | 8 | `signature` ("EFI PART") |
//! | 0x08 | 4 | `revision` (0x00010000) |
//! | 0x0c | 4 | `header_size` (92 up to the block size) |
//! | 0x10 | 4 | `header_crc32` (CRC32 of `header_size` bytes, this field zeroed) |
//! | 0x14 | 4 | `reserved` (zero) |
//! | 0x18 | 8 | `my_lba` |
//! | 0x20 | 8 | `alternate_lba` |
//! | 0x28 | 8 | `first_usable_lba` |
//! | 0x30 | 8 | `last_usable_lba` |
//! | 0x38 | 16 | `disk_guid` |
//! | 0x48 | 8 | `partition_entry_lba` |
//! | 0x50 | 4 | `number_of_partition_entries` |
//! | 0x54 | 4 | `size_of_partition_entry` (128 x 2^n) |
//! | 0x58 | 4 | `partition_entry_array_crc32` |
//!
//! Partition entry (table 5-6): 0x00 `partition_type_guid`, 0x10 `unique_partition_guid`,
//! 0x20 `starting_lba`, 0x28 `ending_lba` (inclusive), 0x30 `attributes`, 0x38
//! `partition_name` (36 UTF-16LE code units).

use crate::bytes::{Le, ReadAt};
use crate::error::{Error, Result};
use crate::guid::Guid;
use crate::lints::{Finding, Severity};
use crate::mbr::{Mbr, MbrKind, OS_TYPE_GPT_PROTECTIVE};
use serde::Serialize;

pub const SIGNATURE: &[u8; 8] = b"EFI PART";
pub const REVISION_1_0: u32 = 0x0001_0000;
pub const MIN_HEADER_SIZE: u32 = 92;
/// The largest partition entry array read (count x size). UEFI asks for at least 16 KiB;
/// tools write 16 KiB. A bigger claim is refused before anything is allocated.
pub const MAX_ARRAY_BYTES: u64 = 4 << 20;
/// Partitions are expected to start on 1 MiB boundaries (what parted, sgdisk and reprodisk
/// do); anything else is reported as info.
pub const ALIGNMENT_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GptHeader {
    pub revision: u32,
    pub header_size: u32,
    pub header_crc32: u32,
    pub reserved: u32,
    pub my_lba: u64,
    pub alternate_lba: u64,
    pub first_usable_lba: u64,
    pub last_usable_lba: u64,
    pub disk_guid: Guid,
    pub partition_entry_lba: u64,
    pub number_of_partition_entries: u32,
    pub size_of_partition_entry: u32,
    pub partition_entry_array_crc32: u32,
}

/// Partition attribute bits (UEFI spec table 5-7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Attributes {
    pub raw: u64,
    /// Bit 0: the platform needs this partition to function.
    pub required_partition: bool,
    /// Bit 1: firmware must not produce an EFI_BLOCK_IO_PROTOCOL for it.
    pub no_block_io_protocol: bool,
    /// Bit 2: legacy BIOS bootable (what parted's `legacy_boot` sets).
    pub legacy_bios_bootable: bool,
    /// Bits 48-63, whose meaning is defined by the partition type.
    pub type_specific: u16,
    /// Bits 3-47, reserved: must be zero.
    pub reserved: u64,
}

impl Attributes {
    pub fn from_raw(raw: u64) -> Attributes {
        Attributes {
            raw,
            required_partition: raw & 1 != 0,
            no_block_io_protocol: raw & 2 != 0,
            legacy_bios_bootable: raw & 4 != 0,
            type_specific: (raw >> 48) as u16,
            reserved: raw & 0x0000_ffff_ffff_fff8,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GptEntry {
    /// 1-based index in the array (the partition number tools show).
    pub index: u32,
    /// Byte offset of the entry in the image (primary array).
    pub offset: u64,
    pub partition_type_guid: Guid,
    /// sgdisk's name for the type, when the verifier knows it.
    pub type_name: Option<&'static str>,
    pub unique_partition_guid: Guid,
    pub starting_lba: u64,
    /// Inclusive.
    pub ending_lba: u64,
    pub attributes: Attributes,
    pub partition_name: String,
}

impl GptEntry {
    /// Number of sectors, 0 for a reversed range.
    pub fn sectors(&self) -> u64 {
        self.ending_lba.saturating_add(1).saturating_sub(self.starting_lba)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gpt {
    /// 512, or 4096 when the header was found at byte 4096.
    pub sector_size: u64,
    /// Image length in sectors.
    pub disk_lbas: u64,
    pub primary: GptHeader,
    /// The backup header, when it could be read and checked.
    pub backup: Option<GptHeader>,
    /// Used entries (non-nil type GUID), in array order.
    pub entries: Vec<GptEntry>,
    pub findings: Vec<Finding>,
}

impl Gpt {
    /// Byte offset of the primary header.
    pub fn primary_offset(&self) -> u64 {
        self.sector_size
    }
}

/// A header problem, with the stable code its finding gets when it is in the backup.
struct HeaderFault {
    code: &'static str,
    error: Error,
}

fn fault(code: &'static str, error: Error) -> HeaderFault {
    HeaderFault { code, error }
}

/// The sector size (512 or 4096) for which a GPT header signature is at LBA 1, if any.
pub fn probe<R: ReadAt + ?Sized>(r: &R) -> Option<u64> {
    [512u64, 4096].into_iter().find(|&ss| {
        r.len() >= 2 * ss && r.read_vec(ss, 8, "gpt header (primary)").is_ok_and(|s| s == SIGNATURE)
    })
}

/// Reads and checks the whole GPT of `r`.
///
/// Errors (the primary structures must be sound to read anything): the signature is
/// missing, the primary header's CRC, size, `my_lba` or entry geometry is wrong, or the
/// primary entry array's CRC does not match ([`Error::Corrupt`]); the array lies past the
/// end of the image ([`Error::Truncated`]); the array is larger than [`MAX_ARRAY_BYTES`] or
/// the revision is not 1.x ([`Error::Unsupported`]). Everything about the backup, ranges,
/// overlaps and alignment is a finding.
pub fn read<R: ReadAt + ?Sized>(r: &R) -> Result<Gpt> {
    if r.len() < 1024 {
        return Err(Error::Truncated {
            at: crate::error::Location { structure: "gpt header (primary)".into(), offset: Some(512) },
            needed: 1024,
            available: r.len(),
        });
    }
    let Some(ss) = probe(r) else {
        return Err(Error::corrupt(
            "gpt header (primary)",
            Some(512),
            "signature \"EFI PART\" not found at lba 1 (sector size 512 or 4096); this disk has no gpt",
        ));
    };
    read_with_sector_size(r, ss)
}

/// [`read`] with a known sector size.
pub fn read_with_sector_size<R: ReadAt + ?Sized>(r: &R, ss: u64) -> Result<Gpt> {
    let disk_lbas = r.len() / ss;
    let mut findings = Vec::new();
    if ss != 512 {
        findings.push(Finding::new(
            Severity::Info,
            "gpt.sector-size",
            "gpt header (primary)",
            Some(ss),
            format!("the gpt header is at byte {ss}: the disk uses {ss}-byte sectors"),
        ));
    }
    let primary = read_header(r, ss, 1, "primary").map_err(|f| f.error)?;
    let array = read_array(r, ss, &primary, "primary").map_err(|f| f.error)?;
    let entries = parse_entries(&array, &primary, ss, &mut findings);
    check_header_ranges(&primary, disk_lbas, ss, &mut findings);
    check_entries(&entries, &primary, ss, disk_lbas, &mut findings);
    let backup = check_backup(r, ss, disk_lbas, &primary, &array, &mut findings);
    let findings = crate::lints::cap_per_code(findings, crate::lints::MAX_FINDINGS_PER_CODE);
    Ok(Gpt { sector_size: ss, disk_lbas, primary, backup, entries, findings })
}

fn read_header<R: ReadAt + ?Sized>(r: &R, ss: u64, lba: u64, which: &str) -> Result<GptHeader, HeaderFault> {
    let structure = format!("gpt header ({which})");
    let off = lba.checked_mul(ss).ok_or_else(|| {
        fault("lba", Error::corrupt(structure.clone(), None, format!("lba {lba} is past any possible disk")))
    })?;
    let buf = r.read_vec(off, ss as usize, &structure).map_err(|e| fault("missing", e))?;
    let le = Le(&buf);
    if le.bytes(0, 8) != SIGNATURE {
        return Err(fault(
            "signature",
            Error::corrupt(
                structure,
                Some(off),
                format!("signature is {:02x?}, expected \"EFI PART\"", le.bytes(0, 8)),
            ),
        ));
    }
    let header_size = le.u32(0x0c);
    if header_size < MIN_HEADER_SIZE || u64::from(header_size) > ss {
        return Err(fault(
            "header-size",
            Error::corrupt(
                structure,
                Some(off + 0x0c),
                format!(
                    "header_size is {header_size}, expected {MIN_HEADER_SIZE} up to the sector size {ss}"
                ),
            ),
        ));
    }
    let header_crc32 = le.u32(0x10);
    let mut h = crc32fast::Hasher::new();
    h.update(&buf[..0x10]);
    h.update(&[0; 4]);
    h.update(&buf[0x14..header_size as usize]);
    let computed = h.finalize();
    if computed != header_crc32 {
        return Err(fault(
            "header-crc",
            Error::corrupt(
                structure,
                Some(off + 0x10),
                format!("header_crc32 is {header_crc32:08x}, the header's crc32 is {computed:08x}"),
            ),
        ));
    }
    let revision = le.u32(0x08);
    if revision >> 16 != 1 {
        return Err(fault(
            "revision",
            Error::unsupported(
                structure,
                Some(off + 0x08),
                format!("revision {revision:#010x}; only gpt 1.x is read"),
            ),
        ));
    }
    let hdr = GptHeader {
        revision,
        header_size,
        header_crc32,
        reserved: le.u32(0x14),
        my_lba: le.u64(0x18),
        alternate_lba: le.u64(0x20),
        first_usable_lba: le.u64(0x28),
        last_usable_lba: le.u64(0x30),
        disk_guid: Guid::from_disk(le.array(0x38)),
        partition_entry_lba: le.u64(0x48),
        number_of_partition_entries: le.u32(0x50),
        size_of_partition_entry: le.u32(0x54),
        partition_entry_array_crc32: le.u32(0x58),
    };
    if hdr.my_lba != lba {
        return Err(fault(
            "my-lba",
            Error::corrupt(
                structure,
                Some(off + 0x18),
                format!("my_lba is {}, the header is at lba {lba}", hdr.my_lba),
            ),
        ));
    }
    let sz = hdr.size_of_partition_entry;
    if sz < 128 || !(sz / 128).is_power_of_two() || !sz.is_multiple_of(128) {
        return Err(fault(
            "entry-size",
            Error::corrupt(
                structure,
                Some(off + 0x54),
                format!("size_of_partition_entry is {sz}, expected 128 x 2^n"),
            ),
        ));
    }
    let array_bytes = u64::from(hdr.number_of_partition_entries) * u64::from(sz);
    if array_bytes > MAX_ARRAY_BYTES {
        return Err(fault(
            "array-size",
            Error::unsupported(
                structure,
                Some(off + 0x50),
                format!(
                    "{} entries of {sz} bytes make a {array_bytes}-byte array; the verifier reads at most {MAX_ARRAY_BYTES}",
                    hdr.number_of_partition_entries
                ),
            ),
        ));
    }
    Ok(hdr)
}

fn read_array<R: ReadAt + ?Sized>(
    r: &R,
    ss: u64,
    hdr: &GptHeader,
    which: &str,
) -> Result<Vec<u8>, HeaderFault> {
    let structure = format!("gpt partition entry array ({which})");
    // Bounded by MAX_ARRAY_BYTES in read_header, so the usize conversion cannot truncate.
    let len = (u64::from(hdr.number_of_partition_entries) * u64::from(hdr.size_of_partition_entry)) as usize;
    let off = hdr.partition_entry_lba.checked_mul(ss).ok_or_else(|| {
        fault(
            "array-lba",
            Error::corrupt(structure.clone(), None, "partition_entry_lba is past any possible disk"),
        )
    })?;
    let array = r.read_vec(off, len, &structure).map_err(|e| fault("array-missing", e))?;
    let crc = crc32fast::hash(&array);
    if crc != hdr.partition_entry_array_crc32 {
        return Err(fault(
            "array-crc",
            Error::corrupt(
                structure,
                Some(off),
                format!(
                    "partition_entry_array_crc32 in the header is {:08x}, the array's crc32 is {crc:08x}",
                    hdr.partition_entry_array_crc32
                ),
            ),
        ));
    }
    Ok(array)
}

fn parse_entries(array: &[u8], hdr: &GptHeader, ss: u64, findings: &mut Vec<Finding>) -> Vec<GptEntry> {
    let size = hdr.size_of_partition_entry as usize;
    let base = hdr.partition_entry_lba * ss;
    let mut out = Vec::new();
    for (i, raw) in array.chunks_exact(size).enumerate() {
        let le = Le(raw);
        let type_guid = Guid::from_disk(le.array(0x00));
        if type_guid.is_nil() {
            continue;
        }
        let index = i as u32 + 1;
        let offset = base + (i * size) as u64;
        let units: Vec<u16> = (0..36).map(|k| le.u16(0x38 + 2 * k)).take_while(|u| *u != 0).collect();
        let partition_name = String::from_utf16(&units).unwrap_or_else(|_| {
            findings.push(Finding::new(
                Severity::Error,
                "gpt.entry.name-utf16",
                format!("gpt entry {index}"),
                Some(offset + 0x38),
                "partition_name is not valid utf-16le; shown with replacement characters",
            ));
            String::from_utf16_lossy(&units)
        });
        let attributes = Attributes::from_raw(le.u64(0x30));
        if attributes.reserved != 0 {
            findings.push(Finding::new(
                Severity::Warning,
                "gpt.entry.attributes-reserved",
                format!("gpt entry {index}"),
                Some(offset + 0x30),
                format!(
                    "attributes {:#018x} set reserved bits 3-47 ({:#x})",
                    attributes.raw, attributes.reserved
                ),
            ));
        }
        out.push(GptEntry {
            index,
            offset,
            partition_type_guid: type_guid,
            type_name: type_guid.type_name(),
            unique_partition_guid: Guid::from_disk(le.array(0x10)),
            starting_lba: le.u64(0x20),
            ending_lba: le.u64(0x28),
            attributes,
            partition_name,
        });
    }
    out
}

fn check_header_ranges(h: &GptHeader, disk_lbas: u64, ss: u64, f: &mut Vec<Finding>) {
    let at = Some(ss);
    let s = "gpt header (primary)";
    if h.revision != REVISION_1_0 {
        f.push(Finding::new(
            Severity::Info,
            "gpt.header.revision",
            s,
            at,
            format!("revision {:#010x}, tools write 0x00010000", h.revision),
        ));
    }
    if h.reserved != 0 {
        f.push(Finding::new(
            Severity::Warning,
            "gpt.header.reserved",
            s,
            at,
            format!("reserved is {:#x}, must be zero", h.reserved),
        ));
    }
    if h.alternate_lba != disk_lbas.saturating_sub(1) {
        f.push(Finding::new(
            Severity::Warning,
            "gpt.header.alternate-lba",
            s,
            at,
            format!(
                "alternate_lba is {}, the last lba of the image is {}; the backup is not at the end (image resized?)",
                h.alternate_lba,
                disk_lbas.saturating_sub(1)
            ),
        ));
    }
    let array_lbas =
        (u64::from(h.number_of_partition_entries) * u64::from(h.size_of_partition_entry)).div_ceil(ss);
    let array_end = h.partition_entry_lba.saturating_add(array_lbas);
    if h.first_usable_lba > h.last_usable_lba
        || h.last_usable_lba >= h.alternate_lba.min(disk_lbas)
        || h.first_usable_lba < array_end
        || h.partition_entry_lba < 2
    {
        f.push(Finding::new(
            Severity::Error,
            "gpt.header.usable-range",
            s,
            at,
            format!(
                "usable lbas {}-{} with the entry array at lba {}-{} and the backup at lba {}: the usable range must lie between the primary array and the backup",
                h.first_usable_lba,
                h.last_usable_lba,
                h.partition_entry_lba,
                array_end.saturating_sub(1),
                h.alternate_lba
            ),
        ));
    }
}

fn check_entries(entries: &[GptEntry], h: &GptHeader, ss: u64, disk_lbas: u64, f: &mut Vec<Finding>) {
    let align = (ALIGNMENT_BYTES / ss).max(1);
    for e in entries {
        let s = format!("gpt entry {}", e.index);
        if e.starting_lba > e.ending_lba {
            f.push(Finding::new(
                Severity::Error,
                "gpt.entry.reversed",
                s.clone(),
                Some(e.offset + 0x20),
                format!("starting_lba {} is after ending_lba {}", e.starting_lba, e.ending_lba),
            ));
        }
        if e.starting_lba < h.first_usable_lba || e.ending_lba > h.last_usable_lba {
            f.push(Finding::new(
                Severity::Error,
                "gpt.entry.out-of-range",
                s.clone(),
                Some(e.offset + 0x20),
                format!(
                    "partition {} spans lba {}-{}, outside the usable lbas {}-{}",
                    e.index, e.starting_lba, e.ending_lba, h.first_usable_lba, h.last_usable_lba
                ),
            ));
        }
        if e.ending_lba >= disk_lbas {
            f.push(Finding::new(
                Severity::Error,
                "gpt.entry.past-end",
                s.clone(),
                Some(e.offset + 0x28),
                format!(
                    "partition {} ends at lba {}, the image has {disk_lbas} sectors (truncated image?)",
                    e.index, e.ending_lba
                ),
            ));
        }
        if !e.starting_lba.is_multiple_of(align) {
            f.push(Finding::new(
                Severity::Info,
                "gpt.entry.unaligned",
                s.clone(),
                Some(e.offset + 0x20),
                format!("partition {} starts at lba {}, not on a 1 MiB boundary", e.index, e.starting_lba),
            ));
        }
        if e.unique_partition_guid.is_nil() {
            f.push(Finding::new(
                Severity::Error,
                "gpt.entry.nil-guid",
                s.clone(),
                Some(e.offset + 0x10),
                "unique_partition_guid is all zero",
            ));
        }
    }
    // Sweep in start order against the entry reaching furthest so far: every overlapping
    // entry is reported once, in O(n log n), however many entries the array holds.
    let mut by_start: Vec<&GptEntry> = entries.iter().filter(|e| e.starting_lba <= e.ending_lba).collect();
    by_start.sort_by_key(|e| (e.starting_lba, e.index));
    let mut furthest: Option<&GptEntry> = None;
    for b in by_start {
        if let Some(a) = furthest
            && b.starting_lba <= a.ending_lba
        {
            f.push(Finding::new(
                Severity::Error,
                "gpt.entry.overlap",
                format!("gpt entry {}", b.index),
                Some(b.offset + 0x20),
                format!(
                    "partition {} (lba {}-{}) overlaps partition {} (lba {}-{})",
                    b.index, b.starting_lba, b.ending_lba, a.index, a.starting_lba, a.ending_lba
                ),
            ));
        }
        if furthest.is_none_or(|a| b.ending_lba > a.ending_lba) {
            furthest = Some(b);
        }
    }
    let mut by_guid: Vec<&GptEntry> = entries.iter().filter(|e| !e.unique_partition_guid.is_nil()).collect();
    by_guid.sort_by_key(|e| (e.unique_partition_guid, e.index));
    for pair in by_guid.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a.unique_partition_guid == b.unique_partition_guid {
            f.push(Finding::new(
                Severity::Error,
                "gpt.entry.duplicate-guid",
                format!("gpt entry {}", b.index),
                Some(b.offset + 0x10),
                format!(
                    "partitions {} and {} share unique_partition_guid {}",
                    a.index, b.index, a.unique_partition_guid
                ),
            ));
        }
    }
}

fn check_backup<R: ReadAt + ?Sized>(
    r: &R,
    ss: u64,
    disk_lbas: u64,
    p: &GptHeader,
    primary_array: &[u8],
    f: &mut Vec<Finding>,
) -> Option<GptHeader> {
    let s = "gpt header (backup)";
    let at = p.alternate_lba.checked_mul(ss);
    if p.alternate_lba >= disk_lbas || p.alternate_lba <= 1 {
        f.push(Finding::new(
            Severity::Error,
            "gpt.backup.missing",
            s,
            at,
            format!(
                "the primary header puts the backup at lba {}, the image has lbas 0-{}",
                p.alternate_lba,
                disk_lbas.saturating_sub(1)
            ),
        ));
        return None;
    }
    let b = match read_header(r, ss, p.alternate_lba, "backup") {
        Ok(b) => b,
        Err(e) => {
            f.push(backup_finding(e));
            return None;
        }
    };
    let mut mismatch = |field: &str, pv: String, bv: String| {
        f.push(Finding::new(
            Severity::Error,
            "gpt.backup.field-mismatch",
            s,
            at,
            format!("{field} is {bv} in the backup header, {pv} in the primary"),
        ));
    };
    if b.alternate_lba != 1 {
        mismatch("alternate_lba", "1 (expected)".into(), b.alternate_lba.to_string());
    }
    macro_rules! same {
        ($($field:ident),*) => {$(
            if p.$field != b.$field {
                mismatch(stringify!($field), format!("{}", p.$field), format!("{}", b.$field));
            }
        )*};
    }
    same!(
        revision,
        first_usable_lba,
        last_usable_lba,
        disk_guid,
        number_of_partition_entries,
        size_of_partition_entry,
        partition_entry_array_crc32
    );
    match read_array(r, ss, &b, "backup") {
        Err(e) => f.push(backup_finding(e)),
        Ok(arr) if arr != primary_array => f.push(Finding::new(
            Severity::Error,
            "gpt.backup.array-differs",
            "gpt partition entry array (backup)",
            b.partition_entry_lba.checked_mul(ss),
            "the backup partition entry array differs from the primary one",
        )),
        Ok(_) => {}
    }
    if b.partition_entry_lba <= b.last_usable_lba || b.partition_entry_lba >= b.my_lba {
        f.push(Finding::new(
            Severity::Error,
            "gpt.backup.array-location",
            s,
            at,
            format!(
                "the backup array is at lba {}, it must lie after the last usable lba {} and before the backup header at lba {}",
                b.partition_entry_lba, b.last_usable_lba, b.my_lba
            ),
        ));
    }
    Some(b)
}

fn backup_finding(e: HeaderFault) -> Finding {
    let code = match e.code {
        "signature" => "gpt.backup.signature",
        "header-crc" => "gpt.backup.header-crc",
        "array-crc" => "gpt.backup.array-crc",
        "missing" | "array-missing" => "gpt.backup.truncated",
        _ => "gpt.backup.header-invalid",
    };
    let (structure, offset) = match &e.error {
        Error::Corrupt { at, .. } | Error::Unsupported { at, .. } | Error::Truncated { at, .. } => {
            (at.structure.clone(), at.offset)
        }
        Error::Io(_) => ("gpt header (backup)".to_string(), None),
    };
    Finding::new(Severity::Error, code, structure, offset, e.error.to_string())
}

/// Checks the MBR in front of a GPT (UEFI spec 5.2.3): a protective record of type 0xEE
/// must be there; in a hybrid MBR every other record must describe the same sectors as a
/// GPT partition.
pub fn check_protective_mbr(gpt: &Gpt, mbr: Option<&Mbr>) -> Vec<Finding> {
    let mut f = Vec::new();
    let Some(mbr) = mbr else {
        f.push(Finding::new(
            Severity::Error,
            "gpt.pmbr.missing",
            "mbr",
            Some(0x1fe),
            "a gpt disk needs a protective mbr at lba 0; there is no valid mbr (no 55 aa signature)",
        ));
        return f;
    };
    if mbr.kind == MbrKind::Classic {
        f.push(Finding::new(
            Severity::Error,
            "gpt.pmbr.no-protective-record",
            "mbr",
            Some(0x1be),
            format!("the mbr has no partition record of type {OS_TYPE_GPT_PROTECTIVE:#04x}; legacy tools would see free space"),
        ));
    }
    if mbr.kind == MbrKind::Hybrid {
        let scale = gpt.sector_size / 512;
        for p in mbr.partitions().filter(|p| p.os_type != OS_TYPE_GPT_PROTECTIVE && !p.is_extended()) {
            let matched = gpt.entries.iter().any(|e| {
                e.starting_lba.checked_mul(scale) == Some(p.starting_lba)
                    && e.ending_lba.checked_add(1).and_then(|x| x.checked_mul(scale))
                        == Some(p.starting_lba + u64::from(p.size_in_lba))
            });
            if !matched {
                f.push(Finding::new(
                    Severity::Error,
                    "gpt.hybrid.mismatch",
                    format!("mbr partition {}", p.number),
                    Some(p.offset),
                    format!(
                        "hybrid mbr record {} (lba {}+{}) matches no gpt partition",
                        p.number, p.starting_lba, p.size_in_lba
                    ),
                ));
            }
        }
    }
    f
}
