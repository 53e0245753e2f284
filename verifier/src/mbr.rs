//! The legacy MBR (UEFI spec 5.2.1): boot code, disk signature, four partition records,
//! the extended-partition chain, protective/hybrid detection and CHS consistency.
//!
//! Layout of LBA 0 (UEFI spec table 5-1):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0x000 | 440 | `boot_code` |
//! | 0x1b8 | 4 | `unique_mbr_disk_signature` |
//! | 0x1bc | 2 | `unknown` |
//! | 0x1be | 16 x 4 | `partition_record` |
//! | 0x1fe | 2 | `signature` (0x55, 0xaa) |

use crate::bytes::{Le, ReadAt};
use crate::error::{Error, Result};
use crate::lints::{Finding, Severity};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub const SECTOR_SIZE: u64 = 512;
pub const BOOT_CODE_LEN: usize = 440;
pub const OFF_DISK_SIGNATURE: usize = 0x1b8;
pub const OFF_UNKNOWN: usize = 0x1bc;
pub const OFF_PARTITION_RECORD: usize = 0x1be;
pub const OFF_SIGNATURE: usize = 0x1fe;
/// `OSType` of the protective MBR's single record (UEFI spec table 5-4).
pub const OS_TYPE_GPT_PROTECTIVE: u8 = 0xee;
/// The most logical partitions followed in an extended chain before giving up; Linux's
/// own limit is far lower in practice, and a loop must end.
pub const MAX_LOGICAL: usize = 256;

/// A cylinder/head/sector address as the three packed bytes of a partition record hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Chs {
    pub cylinder: u16,
    pub head: u8,
    /// 1-based; 0 is invalid (and what an all-zero record holds).
    pub sector: u8,
}

impl Chs {
    /// Unpacks head, sector (bits 0-5) + cylinder high bits (6-7), cylinder low byte.
    pub fn from_bytes(b: [u8; 3]) -> Chs {
        Chs { head: b[0], sector: b[1] & 0x3f, cylinder: (u16::from(b[1] & 0xc0) << 2) | u16::from(b[2]) }
    }

    /// The address a partitioning tool writes for `lba` with `geom`: fdisk and parted both
    /// saturate to cylinder 1023, head `heads-1`, sector `sectors` when the cylinder does
    /// not fit in 10 bits.
    pub fn from_lba(lba: u64, geom: Geometry) -> Chs {
        let spc = u64::from(geom.heads) * u64::from(geom.sectors);
        if spc == 0 {
            return Chs { cylinder: 0, head: 0, sector: 0 };
        }
        let c = lba / spc;
        if c > 1023 {
            return Chs { cylinder: 1023, head: geom.heads.saturating_sub(1), sector: geom.sectors };
        }
        let rem = lba % spc;
        // Both fit: heads <= 255 and sectors <= 63 by construction of `Geometry`.
        Chs {
            cylinder: c as u16,
            head: (rem / u64::from(geom.sectors)) as u8,
            sector: (rem % u64::from(geom.sectors) + 1) as u8,
        }
    }
}

/// The BIOS geometry the CHS fields are checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Geometry {
    pub heads: u8,
    pub sectors: u8,
}

impl Geometry {
    /// What fdisk assumes for an image file: 255 heads, 63 sectors per track.
    pub const DEFAULT: Geometry = Geometry { heads: 255, sectors: 63 };
}

/// One 16-byte partition record (UEFI spec table 5-2), primary or logical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionRecord {
    /// 1-4 for primary records, 5 and up for logical partitions, as Linux numbers them.
    pub number: u32,
    /// Byte offset of the 16-byte record in the image.
    pub offset: u64,
    pub boot_indicator: u8,
    pub starting_chs: Chs,
    pub os_type: u8,
    pub ending_chs: Chs,
    /// Absolute LBA: for a logical partition the record's relative value is already added
    /// to its EBR's LBA.
    pub starting_lba: u64,
    pub size_in_lba: u32,
}

impl PartitionRecord {
    fn parse(b: &[u8], number: u32, offset: u64, base_lba: u64) -> PartitionRecord {
        let le = Le(b);
        PartitionRecord {
            number,
            offset,
            boot_indicator: le.u8(0x0),
            starting_chs: Chs::from_bytes(le.array(0x1)),
            os_type: le.u8(0x4),
            ending_chs: Chs::from_bytes(le.array(0x5)),
            starting_lba: base_lba + u64::from(le.u32(0x8)),
            size_in_lba: le.u32(0xc),
        }
    }

    /// A record with type 0 or size 0 describes no partition (what fdisk and the kernel do).
    pub fn is_empty(&self) -> bool {
        self.os_type == 0 || self.size_in_lba == 0
    }
    pub fn is_bootable(&self) -> bool {
        self.boot_indicator == 0x80
    }
    pub fn is_extended(&self) -> bool {
        matches!(self.os_type, 0x05 | 0x0f | 0x85)
    }
    /// Last LBA (inclusive); meaningless for an empty record.
    pub fn ending_lba(&self) -> u64 {
        (self.starting_lba + u64::from(self.size_in_lba)).saturating_sub(1)
    }
}

/// What the 440 bytes of boot code are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum BootCode {
    /// All zero: no BIOS boot loader.
    Empty,
    /// GRUB's `boot.img` (grub-core/boot/i386/pc/boot.S), with the LBA of the first sector
    /// of `core.img` it loads (`kernel_sector`, LE64 at 0x5c) and `boot_drive` (0x64).
    Grub { kernel_sector: u64, boot_drive: u8 },
    /// Anything else, identified by the SHA-256 of the 440 bytes (lowercase hex).
    Other { sha256: String },
}

/// Classic partition table, protective MBR of a GPT disk, or hybrid MBR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MbrKind {
    Classic,
    /// One record of type 0xEE and nothing else (UEFI spec 5.2.3).
    Protective,
    /// A 0xEE record beside records that describe partitions for legacy systems.
    Hybrid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mbr {
    pub boot_code: BootCode,
    pub unique_mbr_disk_signature: u32,
    pub unknown: u16,
    /// The four primary records, empty ones included.
    pub partition_record: Vec<PartitionRecord>,
    /// Logical partitions from the extended chain, numbered from 5.
    pub logical: Vec<PartitionRecord>,
    pub kind: MbrKind,
    /// The geometry the CHS fields were checked against: taken from the records' ending
    /// CHS as fdisk does, else [`Geometry::DEFAULT`].
    pub geometry: Geometry,
    pub disk_sectors: u64,
    pub findings: Vec<Finding>,
}

impl Mbr {
    /// Non-empty primary records (extended containers included) then logical partitions,
    /// in the order `sfdisk --json` lists them.
    pub fn partitions(&self) -> impl Iterator<Item = &PartitionRecord> {
        self.partition_record.iter().filter(|p| !p.is_empty()).chain(self.logical.iter())
    }

    /// The 0xEE record, if any.
    pub fn protective_record(&self) -> Option<&PartitionRecord> {
        self.partition_record.iter().find(|p| p.os_type == OS_TYPE_GPT_PROTECTIVE && p.size_in_lba != 0)
    }
}

/// True when `sector0` has the 0x55AA signature and four records whose boot indicators are
/// 0x00 or 0x80: libblkid's test for a DOS table. A FAT boot sector also ends in 0x55AA;
/// [`crate::disk`] tells those apart.
pub fn probe(sector0: &[u8]) -> bool {
    let le = Le(sector0);
    sector0.len() >= 512
        && le.u8(OFF_SIGNATURE) == 0x55
        && le.u8(OFF_SIGNATURE + 1) == 0xaa
        && (0..4).all(|i| matches!(le.u8(OFF_PARTITION_RECORD + 16 * i), 0x00 | 0x80))
}

/// Identifies the boot code of an MBR sector.
pub fn identify_boot_code(sector0: &[u8]) -> BootCode {
    let code = Le(sector0).bytes(0, BOOT_CODE_LEN);
    if code.iter().all(|b| *b == 0) {
        return BootCode::Empty;
    }
    let le = Le(code);
    // boot.S: `jmp after_BPB; nop` (EB 63 90: after_BPB is at 0x65), kernel_address 0x8000
    // right after the BPB at 0x5a, and the message strings near the end of the code.
    let grub = code.len() == BOOT_CODE_LEN
        && le.u8(0) == 0xeb
        && le.u8(1) == 0x63
        && le.u8(2) == 0x90
        && le.u16(0x5a) == 0x8000
        && [&b"GRUB \0"[..], b"Geom\0", b"Hard Disk\0", b"Read\0", b" Error\r\n\0"]
            .iter()
            .all(|s| code.windows(<[u8]>::len(s)).any(|w| w == *s));
    if grub {
        return BootCode::Grub { kernel_sector: le.u64(0x5c), boot_drive: le.u8(0x64) };
    }
    let digest = Sha256::digest(code);
    BootCode::Other { sha256: digest.iter().map(|b| format!("{b:02x}")).collect() }
}

/// Reads the MBR at LBA 0 of `r` and follows the extended chain.
///
/// Errors: [`Error::Truncated`] if the image is shorter than one sector,
/// [`Error::Corrupt`] if the 0x55AA signature is missing or a boot indicator is neither
/// 0x00 nor 0x80. Everything else (CHS, ranges, overlaps, a broken chain) is a finding.
pub fn read<R: ReadAt + ?Sized>(r: &R) -> Result<Mbr> {
    let s0 = r.read_vec(0, SECTOR_SIZE as usize, "mbr")?;
    let le = Le(&s0);
    if le.u16(OFF_SIGNATURE) != 0xaa55 {
        return Err(Error::corrupt(
            "mbr",
            Some(OFF_SIGNATURE as u64),
            format!(
                "signature is {:04x}, expected aa55 (bytes 55 aa); this is not an mbr",
                le.u16(OFF_SIGNATURE)
            ),
        ));
    }
    let disk_sectors = r.len() / SECTOR_SIZE;
    let mut partition_record = Vec::with_capacity(4);
    for i in 0..4u32 {
        let off = OFF_PARTITION_RECORD + 16 * i as usize;
        let rec = PartitionRecord::parse(le.bytes(off, 16), i + 1, off as u64, 0);
        if !matches!(rec.boot_indicator, 0x00 | 0x80) {
            return Err(Error::corrupt(
                format!("mbr partition record {}", i + 1),
                Some(off as u64),
                format!("boot_indicator is {:#04x}, expected 0x00 or 0x80", rec.boot_indicator),
            ));
        }
        partition_record.push(rec);
    }
    let mut findings = Vec::new();
    let geometry = table_geometry(&partition_record);
    let protective =
        partition_record.iter().any(|p| p.os_type == OS_TYPE_GPT_PROTECTIVE && p.size_in_lba != 0);
    let others =
        partition_record.iter().filter(|p| !p.is_empty() && p.os_type != OS_TYPE_GPT_PROTECTIVE).count();
    let kind = match (protective, others) {
        (false, _) => MbrKind::Classic,
        (true, 0) => MbrKind::Protective,
        (true, _) => MbrKind::Hybrid,
    };
    let logical = read_extended_chain(r, &partition_record, &mut findings);
    let mut mbr = Mbr {
        boot_code: identify_boot_code(&s0),
        unique_mbr_disk_signature: le.u32(OFF_DISK_SIGNATURE),
        unknown: le.u16(OFF_UNKNOWN),
        partition_record,
        logical,
        kind,
        geometry,
        disk_sectors,
        findings,
    };
    check(&mut mbr);
    mbr.findings =
        crate::lints::cap_per_code(std::mem::take(&mut mbr.findings), crate::lints::MAX_FINDINGS_PER_CODE);
    Ok(mbr)
}

/// fdisk's `get_partition_table_geometry`: if every non-empty record ends on the same head
/// and sector, the table was written for `heads = head + 1`, `sectors = sector`.
fn table_geometry(records: &[PartitionRecord]) -> Geometry {
    let mut seen: Option<(u8, u8)> = None;
    for p in records.iter().filter(|p| !p.is_empty()) {
        let hs = (p.ending_chs.head, p.ending_chs.sector);
        match seen {
            None => seen = Some(hs),
            Some(s) if s != hs => return Geometry::DEFAULT,
            Some(_) => {}
        }
    }
    match seen {
        Some((h, s)) if s != 0 && h != 255 => Geometry { heads: h + 1, sectors: s },
        _ => Geometry::DEFAULT,
    }
}

fn read_extended_chain<R: ReadAt + ?Sized>(
    r: &R,
    primary: &[PartitionRecord],
    findings: &mut Vec<Finding>,
) -> Vec<PartitionRecord> {
    let mut logical = Vec::new();
    let mut extended = primary.iter().filter(|p| !p.is_empty() && p.is_extended());
    let Some(ext) = extended.next() else {
        return logical;
    };
    if let Some(second) = extended.next() {
        findings.push(Finding::new(
            Severity::Error,
            "mbr.extended.multiple",
            format!("mbr partition record {}", second.number),
            Some(second.offset),
            "more than one extended partition; only the first one's chain is read",
        ));
    }
    let mut ebr_lba = ext.starting_lba;
    let mut visited = std::collections::BTreeSet::new();
    loop {
        let structure = format!("ebr of logical partition {}", 5 + logical.len());
        if !visited.insert(ebr_lba) {
            findings.push(Finding::new(
                Severity::Error,
                "mbr.extended.loop",
                structure,
                Some(ebr_lba * SECTOR_SIZE),
                format!("the extended chain comes back to lba {ebr_lba}; it was cut there"),
            ));
            break;
        }
        if logical.len() >= MAX_LOGICAL {
            findings.push(Finding::new(
                Severity::Error,
                "mbr.extended.too-many",
                structure,
                Some(ebr_lba * SECTOR_SIZE),
                format!("more than {MAX_LOGICAL} logical partitions; the chain was cut there"),
            ));
            break;
        }
        let off = ebr_lba * SECTOR_SIZE;
        let sector = match r.read_vec(off, SECTOR_SIZE as usize, &structure) {
            Ok(s) => s,
            Err(e) => {
                findings.push(Finding::new(
                    Severity::Error,
                    "mbr.extended.unreadable",
                    structure,
                    Some(off),
                    e.to_string(),
                ));
                break;
            }
        };
        let le = Le(&sector);
        if le.u16(OFF_SIGNATURE) != 0xaa55 {
            findings.push(Finding::new(
                Severity::Error,
                "mbr.extended.signature",
                structure,
                Some(off + OFF_SIGNATURE as u64),
                format!("ebr signature is {:04x}, expected aa55; the chain ends here", le.u16(OFF_SIGNATURE)),
            ));
            break;
        }
        let number = 5 + logical.len() as u32;
        let rec_off = off + OFF_PARTITION_RECORD as u64;
        let this = PartitionRecord::parse(le.bytes(OFF_PARTITION_RECORD, 16), number, rec_off, ebr_lba);
        let link = PartitionRecord::parse(
            le.bytes(OFF_PARTITION_RECORD + 16, 16),
            0,
            rec_off + 16,
            ext.starting_lba,
        );
        if !this.is_empty() {
            logical.push(this);
        }
        if link.is_empty() || !link.is_extended() {
            break;
        }
        ebr_lba = link.starting_lba;
    }
    logical
}

fn check(mbr: &mut Mbr) {
    let mut f = Vec::new();
    let disk = mbr.disk_sectors;
    let all: Vec<&PartitionRecord> = mbr.partitions().collect();
    for p in &all {
        let structure = format!("mbr partition {}", p.number);
        if p.os_type == OS_TYPE_GPT_PROTECTIVE {
            // UEFI spec table 5-4: StartingLBA 1, SizeInLBA the disk size minus one, or
            // 0xFFFFFFFF if that does not fit.
            let want = disk.saturating_sub(1).min(0xffff_ffff);
            if p.starting_lba != 1 || (mbr.kind == MbrKind::Protective && u64::from(p.size_in_lba) != want) {
                f.push(Finding::new(
                    Severity::Warning,
                    "mbr.protective.range",
                    structure.clone(),
                    Some(p.offset),
                    format!(
                        "protective record covers lba {}+{}, the uefi spec asks for 1+{want}",
                        p.starting_lba, p.size_in_lba
                    ),
                ));
            }
        }
        // A partition's first sector must come after the table sector that describes it
        // (the MBR for primaries, the EBR for logicals): one that starts on or before it
        // holds the table itself, and anything written into the partition destroys it.
        // (sfdisk 2.38's --verify does not check this; the table is broken all the same.)
        let table_lba = p.offset / 512;
        if p.os_type != OS_TYPE_GPT_PROTECTIVE && p.starting_lba <= table_lba {
            let table =
                if table_lba == 0 { "the MBR".to_string() } else { format!("its EBR at lba {table_lba}") };
            f.push(Finding::new(
                Severity::Error,
                "mbr.partition.overlaps-table",
                structure.clone(),
                Some(p.offset),
                format!(
                    "partition starts at lba {}, on or before {table}: it overlaps the partition table; start it past lba {table_lba}",
                    p.starting_lba
                ),
            ));
        }
        if p.ending_lba() >= disk {
            f.push(Finding::new(
                Severity::Error,
                "mbr.partition.out-of-range",
                structure.clone(),
                Some(p.offset),
                format!("partition ends at lba {}, the disk has {disk} sectors", p.ending_lba()),
            ));
        }
        // fdisk checks CHS only where it can hold the address; the protective record's
        // all-ones ending and 1023/254/63 saturation are what tools write past that.
        let mut chs_ok = |which: &str, got: Chs, lba: u64| {
            let want = Chs::from_lba(lba, mbr.geometry);
            let all_ones = got == Chs { cylinder: 1023, head: 255, sector: 63 };
            // A table's geometry is guessed from its own ending CHS, as fdisk does; that
            // guess fails when a partition ends mid-track, so fdisk's default geometry
            // (what sgdisk writes with) is accepted as well.
            let default_ok = got == Chs::from_lba(lba, Geometry::DEFAULT);
            if got != want && !default_ok && !(p.os_type == OS_TYPE_GPT_PROTECTIVE && all_ones) {
                f.push(Finding::new(
                    Severity::Warning,
                    "mbr.chs.mismatch",
                    structure.clone(),
                    Some(p.offset),
                    format!(
                        "{which} chs is {}/{}/{}, lba {lba} with {} heads and {} sectors gives {}/{}/{}",
                        got.cylinder,
                        got.head,
                        got.sector,
                        mbr.geometry.heads,
                        mbr.geometry.sectors,
                        want.cylinder,
                        want.head,
                        want.sector
                    ),
                ));
            }
        };
        chs_ok("starting", p.starting_chs, p.starting_lba);
        chs_ok("ending", p.ending_chs, p.ending_lba());
    }
    // Overlaps among data partitions: an extended container holds its logicals, and a
    // hybrid's 0xEE record overlaps the legacy views of GPT partitions by design.
    let data: Vec<&&PartitionRecord> =
        all.iter().filter(|p| !p.is_extended() && p.os_type != OS_TYPE_GPT_PROTECTIVE).collect();
    for (i, a) in data.iter().enumerate() {
        for b in &data[i + 1..] {
            if a.starting_lba <= b.ending_lba() && b.starting_lba <= a.ending_lba() {
                f.push(Finding::new(
                    Severity::Error,
                    "mbr.partition.overlap",
                    format!("mbr partition {}", b.number),
                    Some(b.offset),
                    format!(
                        "partition {} (lba {}-{}) overlaps partition {} (lba {}-{})",
                        b.number,
                        b.starting_lba,
                        b.ending_lba(),
                        a.number,
                        a.starting_lba,
                        a.ending_lba()
                    ),
                ));
            }
        }
    }
    mbr.findings.extend(f);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chs_packing() {
        // Cylinder 1023 = 0x3ff: high bits 0b11 in bits 6-7 of the sector byte.
        assert_eq!(Chs::from_bytes([0xfe, 0xff, 0xff]), Chs { cylinder: 1023, head: 254, sector: 63 });
        assert_eq!(Chs::from_bytes([0x00, 0x02, 0x00]), Chs { cylinder: 0, head: 0, sector: 2 });
    }

    #[test]
    fn chs_from_lba_saturates_like_fdisk() {
        let g = Geometry::DEFAULT;
        assert_eq!(Chs::from_lba(2048, g), Chs { cylinder: 0, head: 32, sector: 33 });
        assert_eq!(Chs::from_lba(1024 * 255 * 63, g), Chs { cylinder: 1023, head: 254, sector: 63 });
        assert_eq!(Chs::from_lba(1024 * 255 * 63 - 1, g), Chs { cylinder: 1023, head: 254, sector: 63 });
    }

    #[test]
    fn probe_needs_signature_and_sane_boot_indicators() {
        let mut s = vec![0u8; 512];
        assert!(!probe(&s));
        s[510] = 0x55;
        s[511] = 0xaa;
        assert!(probe(&s));
        s[OFF_PARTITION_RECORD + 16] = 0x81;
        assert!(!probe(&s));
    }
}
