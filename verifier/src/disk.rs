//! The image-level frame: finds the partition table (GPT, MBR or none), lists partitions
//! as byte ranges the filesystem readers open, sniffs what each holds, and reports it all.

use crate::bytes::{Le, ReadAt, Slice};
use crate::error::Result;
use crate::gpt::{self, Gpt};
use crate::guid::Guid;
use crate::lints::{Finding, Severity};
use crate::mbr::{self, Mbr, OS_TYPE_GPT_PROTECTIVE};
use serde::Serialize;

/// Which partition table the image has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// GPT, with its protective or hybrid MBR in [`Disk::mbr`].
    Gpt,
    /// A classic MBR (DOS) table.
    Mbr,
    /// No MBR and no GPT: a bare filesystem, or a table this verifier does not read
    /// (BSD, Sun, SGI, Atari, DASD).
    None,
}

/// What a cheap look at a partition's first sectors finds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Contents {
    /// ext2/3/4: `s_magic` 0xEF53 at byte 1024 + 0x38. `version` is blkid's name for it,
    /// from the feature flags.
    Ext { version: &'static str },
    /// A FAT boot sector with a plausible BPB; `version` from the cluster count.
    Fat { version: &'static str },
    /// An extended partition (a container of logical partitions).
    Extended,
    /// Nothing recognised.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// The number tools show: GPT index, MBR 1-4 and 5+ for logical partitions, 0 for the
    /// whole image of a [`Layout::None`] disk.
    pub number: u32,
    /// Byte offset in the image.
    pub start: u64,
    /// Length in bytes, clamped to the end of the image (the table readers report a
    /// partition that runs past it).
    pub len: u64,
    /// GPT partition name.
    pub name: Option<String>,
    pub type_guid: Option<Guid>,
    pub type_name: Option<&'static str>,
    pub unique_guid: Option<Guid>,
    /// MBR `os_type`.
    pub mbr_type: Option<u8>,
    /// MBR boot flag (0x80), or the GPT legacy-BIOS-bootable attribute.
    pub bootable: bool,
    pub contents: Contents,
}

/// An opened image: its table and partitions, and the reader they slice.
pub struct Disk<'a, R: ReadAt + ?Sized> {
    reader: &'a R,
    pub layout: Layout,
    pub size: u64,
    pub sector_size: u64,
    pub mbr: Option<Mbr>,
    pub gpt: Option<Gpt>,
    pub partitions: Vec<Partition>,
    /// Findings of the table readers and the protective-MBR check.
    pub findings: Vec<Finding>,
}

/// The serializable report of a disk's partition table.
#[derive(Debug, Serialize)]
pub struct DiskReport<'d> {
    pub layout: Layout,
    pub size: u64,
    pub sector_size: u64,
    /// blkid's `PTTYPE`: "gpt", "dos", or none.
    pub pttype: Option<&'static str>,
    /// blkid's `PTUUID`: the disk GUID in lowercase, or the MBR signature as 8 hex digits.
    pub ptuuid: Option<String>,
    pub disk_guid: Option<Guid>,
    pub mbr_signature: Option<u32>,
    pub mbr: Option<&'d Mbr>,
    pub gpt: Option<&'d Gpt>,
    pub partitions: &'d [Partition],
    pub findings: &'d [Finding],
}

/// Opens an image: GPT if a protective or hybrid MBR asks for one, or a GPT header is at
/// LBA 1 and no classic MBR table with partitions is in front of it; else MBR if sector 0
/// is a DOS table and not a FAT boot sector; else no table.
///
/// Errors: whatever [`gpt::read`] or [`mbr::read`] fail with on the primary structures.
pub fn open<R: ReadAt + ?Sized>(reader: &R) -> Result<Disk<'_, R>> {
    let size = reader.len();
    let sector0 = if size >= 512 { reader.read_vec(0, 512, "mbr")? } else { Vec::new() };
    let is_mbr = mbr::probe(&sector0) && sniff_fat(&sector0).is_none();
    let mbr = if is_mbr { Some(mbr::read(reader)?) } else { None };
    let wants_gpt = mbr.as_ref().is_some_and(|m| m.protective_record().is_some());
    let mut disk = Disk {
        reader,
        layout: Layout::None,
        size,
        sector_size: 512,
        mbr: None,
        gpt: None,
        partitions: Vec::new(),
        findings: Vec::new(),
    };
    // A classic table with partitions wins over a GPT header left behind at LBA 1: libblkid
    // and libfdisk only read a GPT behind a protective (or hybrid) MBR.
    let gpt_header = gpt::probe(reader).is_some();
    let classic = mbr.as_ref().is_some_and(|m| !wants_gpt && m.partitions().next().is_some());
    if gpt_header && classic {
        disk.findings.push(Finding::new(
            Severity::Warning,
            "disk.stale-gpt",
            "gpt header (primary)",
            Some(512),
            "a gpt header is at lba 1 but the mbr is a classic table without a 0xee record; \
             the mbr is used, as blkid and fdisk do; wipe the stale gpt (sgdisk --zap)",
        ));
    }
    if (gpt_header && !classic) || wants_gpt {
        let g = gpt::read(reader)?;
        disk.findings.extend(mbr.iter().flat_map(|m| m.findings.iter().cloned()));
        disk.findings.extend(g.findings.iter().cloned());
        disk.findings.extend(gpt::check_protective_mbr(&g, mbr.as_ref()));
        disk.layout = Layout::Gpt;
        disk.sector_size = g.sector_size;
        for e in &g.entries {
            let start = e.starting_lba.saturating_mul(g.sector_size);
            let len = e.sectors().saturating_mul(g.sector_size);
            disk.push(Partition {
                number: e.index,
                start,
                len,
                name: Some(e.partition_name.clone()),
                type_guid: Some(e.partition_type_guid),
                type_name: e.type_name,
                unique_guid: Some(e.unique_partition_guid),
                mbr_type: None,
                bootable: e.attributes.legacy_bios_bootable,
                contents: Contents::Unknown,
            });
        }
        disk.gpt = Some(g);
        disk.mbr = mbr;
    } else if let Some(m) = mbr {
        disk.layout = Layout::Mbr;
        disk.findings.extend(m.findings.iter().cloned());
        for p in m.partitions().filter(|p| p.os_type != OS_TYPE_GPT_PROTECTIVE) {
            disk.push(Partition {
                number: p.number,
                start: p.starting_lba * mbr::SECTOR_SIZE,
                len: u64::from(p.size_in_lba) * mbr::SECTOR_SIZE,
                name: None,
                type_guid: None,
                type_name: None,
                unique_guid: None,
                mbr_type: Some(p.os_type),
                bootable: p.is_bootable(),
                contents: if p.is_extended() { Contents::Extended } else { Contents::Unknown },
            });
        }
        disk.mbr = Some(m);
    } else {
        disk.push(Partition {
            number: 0,
            start: 0,
            len: size,
            name: None,
            type_guid: None,
            type_name: None,
            unique_guid: None,
            mbr_type: None,
            bootable: false,
            contents: Contents::Unknown,
        });
    }
    Ok(disk)
}

impl<'a, R: ReadAt + ?Sized> Disk<'a, R> {
    fn push(&mut self, mut p: Partition) {
        p.start = p.start.min(self.size);
        p.len = p.len.min(self.size - p.start);
        if p.contents == Contents::Unknown {
            p.contents = sniff(&self.slice(&p));
        }
        self.partitions.push(p);
    }

    /// The reader the disk was opened on.
    pub fn reader(&self) -> &'a R {
        self.reader
    }

    /// A reader over one partition's bytes, for the filesystem readers.
    pub fn slice(&self, p: &Partition) -> Slice<'a, R> {
        Slice { inner: self.reader, start: p.start, len: p.len }
    }

    /// The partition with tool number `number`.
    pub fn partition(&self, number: u32) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.number == number)
    }

    pub fn report(&self) -> DiskReport<'_> {
        let disk_guid = self.gpt.as_ref().map(|g| g.primary.disk_guid);
        let mbr_signature = self.mbr.as_ref().map(|m| m.unique_mbr_disk_signature);
        let (pttype, ptuuid) = match self.layout {
            Layout::Gpt => (Some("gpt"), disk_guid.map(|g| g.to_string().to_lowercase())),
            Layout::Mbr => (Some("dos"), mbr_signature.filter(|s| *s != 0).map(|s| format!("{s:08x}"))),
            Layout::None => (None, None),
        };
        DiskReport {
            layout: self.layout,
            size: self.size,
            sector_size: self.sector_size,
            pttype,
            ptuuid,
            disk_guid,
            mbr_signature,
            mbr: self.mbr.as_ref(),
            gpt: self.gpt.as_ref(),
            partitions: &self.partitions,
            findings: &self.findings,
        }
    }
}

/// Looks at the first 2 KiB of `r` for an ext2/3/4 superblock or a FAT boot sector.
pub fn sniff<R: ReadAt + ?Sized>(r: &R) -> Contents {
    let n = r.len().min(2048) as usize;
    let Ok(head) = r.read_vec(0, n, "partition start") else {
        return Contents::Unknown;
    };
    if let Some(version) = sniff_ext(&head) {
        return Contents::Ext { version };
    }
    if let Some(version) = sniff_fat(&head) {
        return Contents::Fat { version };
    }
    Contents::Unknown
}

/// ext2/3/4 by `s_magic`, told apart as blkid does: features ext3 lacks make ext4, a
/// journal makes ext3.
fn sniff_ext(head: &[u8]) -> Option<&'static str> {
    let sb = Le(head.get(1024..)?);
    if head.len() < 2048 || sb.u16(0x38) != 0xef53 {
        return None;
    }
    let compat = sb.u32(0x5c);
    let incompat = sb.u32(0x60);
    let ro_compat = sb.u32(0x64);
    // ext3 knows FILETYPE, RECOVER, META_BG (incompat) and SPARSE_SUPER, LARGE_FILE,
    // BTREE_DIR (ro_compat); anything else needs ext4.
    if incompat & !0x16 != 0 || ro_compat & !0x7 != 0 {
        Some("ext4")
    } else if compat & 0x4 != 0 {
        Some("ext3")
    } else {
        Some("ext2")
    }
}

/// A FAT boot sector: jump instruction, power-of-two sector and cluster sizes, reserved
/// sectors, at least one FAT, 0x55AA; FAT12/16/32 by cluster count (Microsoft's FAT spec).
fn sniff_fat(head: &[u8]) -> Option<&'static str> {
    if head.len() < 512 {
        return None;
    }
    let b = Le(head);
    let jump_ok = (b.u8(0) == 0xeb && b.u8(2) == 0x90) || b.u8(0) == 0xe9;
    let bps = u64::from(b.u16(0x0b));
    let spc = u64::from(b.u8(0x0d));
    let rsvd = u64::from(b.u16(0x0e));
    let nfats = u64::from(b.u8(0x10));
    let root_ents = u64::from(b.u16(0x11));
    let fatsz = if b.u16(0x16) != 0 { u64::from(b.u16(0x16)) } else { u64::from(b.u32(0x24)) };
    let totsec = if b.u16(0x13) != 0 { u64::from(b.u16(0x13)) } else { u64::from(b.u32(0x20)) };
    if !jump_ok
        || !matches!(bps, 512 | 1024 | 2048 | 4096)
        || !spc.is_power_of_two()
        || rsvd == 0
        || nfats == 0
        || fatsz == 0
        || b.u16(0x1fe) != 0xaa55
    {
        return None;
    }
    let root_dir_sectors = (root_ents * 32).div_ceil(bps);
    let meta = rsvd + nfats * fatsz + root_dir_sectors;
    let clusters = totsec.checked_sub(meta)? / spc;
    Some(if clusters < 4085 {
        "FAT12"
    } else if clusters < 65525 {
        "FAT16"
    } else {
        "FAT32"
    })
}
