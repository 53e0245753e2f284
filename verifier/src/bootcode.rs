//! GRUB's BIOS boot chain as it lies on disk, followed and checked: boot.img's
//! `kernel_sector` must name a diskboot.img sector, whose blocklist must name the rest of
//! core.img (starting with lzma_decompress.img), all inside the region GRUB may use.
//!
//! Written from GRUB 2.06's `grub-core/boot/i386/pc/diskboot.S` and `startup_raw.S`:
//! - diskboot.img is one sector; its blocklist starts with the 12 bytes at 0x1f4
//!   (`start` LE64, `len` LE16, `segment` LE16) and continues downwards, 12 bytes per entry,
//!   up to the first entry whose `len` is 0. The first entry's segment is 0x0820.
//! - The sector it loads first is lzma_decompress.img: a far jump (0xea) at byte 0, the LZMA
//!   payload's compressed size (LE32) at 0x08 and its uncompressed size at 0x0c.
//! - The region: sectors 1 up to the first partition on an MBR disk (the "MBR gap"), the
//!   partition of type 21686148-6449-6E6F-744E-656564454649 (bios_grub) on a GPT disk.

use crate::bytes::{ReadAt, Slice};
use crate::disk::{Contents, Disk, Layout};
use crate::expect::TYPE_BIOS_BOOT;
use crate::ext4::{Ext4, FileType};
use crate::mbr::BootCode;
use crate::report::{Finding, Severity};

/// Offset of the first blocklist entry in diskboot.img.
const BLOCKLIST_AT: usize = 0x1f4;
/// The segment diskboot.S loads core.img's second sector to.
const SEGMENT: u16 = 0x0820;
/// Strings of diskboot.S's messages: how its sector is recognised.
const DISKBOOT_STRINGS: &[&[u8]] = &[b"loading\0", b"Geom\0", b"Read\0", b" Error"];

/// Where GRUB may keep core.img on this disk, inclusive sectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedRegion {
    pub first: u64,
    pub last: u64,
    pub what: String,
}

/// What the chain looks like when it holds together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrubChain {
    pub kernel_sector: u64,
    /// Blocklist entries (start sector, sector count), in diskboot's order.
    pub blocks: Vec<(u64, u16)>,
    pub region: EmbedRegion,
    pub compressed_size: u32,
    pub uncompressed_size: u32,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// The region GRUB may use for core.img on `d`, if the table has one.
pub fn embed_region<R: ReadAt + ?Sized>(d: &Disk<'_, R>) -> Option<EmbedRegion> {
    let ss = d.sector_size.max(1);
    match d.layout {
        Layout::Gpt => d
            .partitions
            .iter()
            .find(|p| {
                p.type_guid.as_ref().is_some_and(|g| g.to_string().eq_ignore_ascii_case(TYPE_BIOS_BOOT))
            })
            .filter(|p| p.len >= ss)
            .map(|p| EmbedRegion {
                first: p.start / ss,
                last: (p.start + p.len) / ss - 1,
                what: format!("the bios_grub partition {}", p.number),
            }),
        Layout::Mbr => {
            let first = d.partitions.iter().map(|p| p.start / ss).min().unwrap_or(d.size / ss);
            (first >= 2).then(|| EmbedRegion {
                first: 1,
                last: first - 1,
                what: "the gap before the first partition".into(),
            })
        }
        Layout::None => None,
    }
}

fn finding(severity: Severity, code: &str, message: String, location: &str) -> Finding {
    Finding::new(severity, code, message, Some(location.to_string()))
}

/// Follows the chain from the MBR's boot code; `Ok(None)` when sector 0 holds no GRUB
/// boot.img, `Err` with error findings when the chain is broken.
pub fn follow<R: ReadAt + ?Sized>(r: &R, d: &Disk<'_, R>) -> Result<Option<GrubChain>, Vec<Finding>> {
    let Some(mbr) = &d.mbr else { return Ok(None) };
    let BootCode::Grub { kernel_sector, .. } = mbr.boot_code else { return Ok(None) };
    let err = |code: &str, msg: String, at: &str| vec![finding(Severity::Error, code, msg, at)];
    let ks_at = "mbr boot.img kernel_sector (0x5c)";
    let Some(region) = embed_region(d) else {
        return Err(err(
            "grub-no-embed-region",
            "GRUB boot.img is in the MBR but the disk has no place for core.img (no MBR gap, no bios_grub partition)".into(),
            ks_at,
        ));
    };
    let inside = |s: u64| s >= region.first && s <= region.last;
    if !inside(kernel_sector) {
        return Err(err(
            "grub-kernel-sector",
            format!(
                "boot.img loads core.img from sector {kernel_sector}, outside {} (sectors {}..={})",
                region.what, region.first, region.last
            ),
            ks_at,
        ));
    }
    let ss = d.sector_size.max(1);
    let read = |lba: u64, what: &str| {
        let mut b = vec![0u8; 512];
        r.read_exact_at(&mut b, lba.saturating_mul(ss)).map(|_| b).map_err(|e| {
            err("grub-core-unreadable", format!("reading {what} at sector {lba}: {e}"), "core.img")
        })
    };
    let diskboot = read(kernel_sector, "diskboot.img")?;
    let is_diskboot = DISKBOOT_STRINGS.iter().all(|s| diskboot.windows(<[u8]>::len(s)).any(|w| w == *s));
    if !is_diskboot {
        return Err(err(
            "grub-no-diskboot",
            format!("sector {kernel_sector}, which boot.img loads, is not GRUB's diskboot.img"),
            ks_at,
        ));
    }
    let bl_at = format!("core.img diskboot.img blocklist (sector {kernel_sector} + 0x1f4)");
    let mut blocks = Vec::new();
    let mut at = BLOCKLIST_AT;
    loop {
        let (start, len) = (le64(&diskboot, at), le16(&diskboot, at + 8));
        if len == 0 {
            break;
        }
        blocks.push((start, len));
        // The entries grow downwards; diskboot's own code ends well before 0x100.
        if at < 0x100 + 12 {
            return Err(err("grub-blocklist", "the blocklist has no terminating entry".into(), &bl_at));
        }
        at -= 12;
    }
    let Some(&(first_start, _)) = blocks.first() else {
        return Err(err(
            "grub-blocklist",
            "the blocklist is empty: diskboot.img loads nothing".into(),
            &bl_at,
        ));
    };
    let seg = le16(&diskboot, BLOCKLIST_AT + 10);
    if seg != SEGMENT {
        return Err(err(
            "grub-blocklist",
            format!("load segment {seg:#06x}, expected {SEGMENT:#06x}"),
            &bl_at,
        ));
    }
    if first_start != kernel_sector + 1 {
        return Err(err(
            "grub-blocklist",
            format!(
                "core.img continues at sector {first_start}, expected {} (right after diskboot.img)",
                kernel_sector + 1
            ),
            &bl_at,
        ));
    }
    let mut total = 0u64;
    for &(start, len) in &blocks {
        let end = start.saturating_add(u64::from(len)) - 1;
        if !inside(start) || !inside(end) {
            return Err(err(
                "grub-blocklist",
                format!(
                    "blocklist sectors {start}..={end} are outside {} (sectors {}..={})",
                    region.what, region.first, region.last
                ),
                &bl_at,
            ));
        }
        total += u64::from(len);
    }
    let dec = read(first_start, "lzma_decompress.img")?;
    let (compressed_size, uncompressed_size) = (le32(&dec, 0x08), le32(&dec, 0x0c));
    if dec[0] != 0xea || compressed_size == 0 || u64::from(compressed_size) > total * 512 {
        return Err(err(
            "grub-no-decompressor",
            format!(
                "sector {first_start} is not lzma_decompress.img with a payload inside the {total} loaded sectors (byte 0 {:#04x}, compressed size {compressed_size})",
                dec[0]
            ),
            &format!("core.img sector {first_start}"),
        ));
    }
    Ok(Some(GrubChain { kernel_sector, blocks, region, compressed_size, uncompressed_size }))
}

/// The verify report's findings for the boot chain: one info line when it holds together,
/// errors when it is broken, nothing without GRUB.
pub fn findings<R: ReadAt + ?Sized>(r: &R, d: &Disk<'_, R>) -> Vec<Finding> {
    match follow(r, d) {
        Ok(None) => Vec::new(),
        Ok(Some(c)) => {
            let sectors: u64 = c.blocks.iter().map(|b| u64::from(b.1)).sum::<u64>() + 1;
            vec![finding(
                Severity::Info,
                "grub-bios-chain",
                format!(
                    "GRUB boot.img -> core.img at sectors {}..={} ({sectors} sectors, LZMA {} -> {} bytes) inside {}",
                    c.kernel_sector,
                    c.kernel_sector + sectors - 1,
                    c.compressed_size,
                    c.uncompressed_size,
                    c.region.what
                ),
                "mbr boot code",
            )]
        }
        Err(f) => f,
    }
}

/// Where GRUB's config lives on an ext4 filesystem holding /boot.
const GRUB_CFG_PATH: &[&[u8]] = &[b"boot", b"grub", b"grub.cfg"];
/// The largest grub.cfg read.
const MAX_GRUB_CFG: u64 = 1 << 20;

/// A file by path from the root directory, following no links; `Ok(None)` when absent.
fn ext4_file<R: ReadAt>(fs: &Ext4<R>, path: &[&[u8]]) -> crate::Result<Option<Vec<u8>>> {
    let mut inode = fs.inode(2)?;
    for (i, name) in path.iter().enumerate() {
        let dir = fs.read_dir(&inode)?;
        let Some(e) = dir.entries.iter().find(|e| e.name == *name) else { return Ok(None) };
        inode = fs.inode(e.inode)?;
        let want = if i + 1 == path.len() { FileType::Regular } else { FileType::Directory };
        if inode.file_type() != Some(want) {
            return Ok(None);
        }
    }
    fs.read_inode_data(&inode, MAX_GRUB_CFG).map(Some)
}

/// Strips one level of GRUB/sh quoting from a word.
fn unquote(w: &str) -> &str {
    w.trim_matches(|c| c == '\'' || c == '"')
}

/// Checks the UUIDs a grub.cfg names (`search ... --fs-uuid ... UUID`, `root=UUID=...`) against
/// the filesystems of the disk.
pub fn grub_cfg_findings(cfg: &str, at: &str, uuids: &[String]) -> Vec<Finding> {
    let known = |u: &str| uuids.iter().any(|k| k.eq_ignore_ascii_case(u));
    let mut out = Vec::new();
    for (n, line) in cfg.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().map(unquote).collect();
        let mut named = Vec::new();
        if words.first() == Some(&"search") && words.iter().any(|w| *w == "--fs-uuid" || *w == "-u") {
            named.extend(words.last().filter(|w| !w.starts_with('-')).map(|w| ("search --fs-uuid", *w)));
        }
        named.extend(words.iter().filter_map(|w| w.strip_prefix("root=UUID=")).map(|u| ("root=UUID=", u)));
        for (what, uuid) in named {
            if !known(uuid) {
                out.push(finding(
                    Severity::Error,
                    "grub-cfg-uuid",
                    format!(
                        "grub.cfg line {} ({what}) names UUID {uuid}, but no filesystem on the disk has it (found: {})",
                        n + 1,
                        uuids.join(", ")
                    ),
                    at,
                ));
            }
        }
    }
    out
}

/// Reads `/boot/grub/grub.cfg` of every ext4 partition and checks the UUIDs it names against
/// `uuids`, the filesystem UUIDs the report found.
pub fn grub_cfg_section(r: &dyn ReadAt, d: &Disk<'_, dyn ReadAt + '_>, uuids: &[String]) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in &d.partitions {
        if !matches!(p.contents, Contents::Ext { .. }) {
            continue;
        }
        let at = if p.number == 0 {
            "ext4 /boot/grub/grub.cfg".to_string()
        } else {
            format!("partition {} ext4 /boot/grub/grub.cfg", p.number)
        };
        let Ok(fs) = Ext4::open(Slice { inner: r, start: p.start, len: p.len }) else { continue };
        match ext4_file(&fs, GRUB_CFG_PATH) {
            Ok(Some(bytes)) => out.extend(grub_cfg_findings(&String::from_utf8_lossy(&bytes), &at, uuids)),
            Ok(None) => {}
            Err(e) => out.push(finding(
                Severity::Error,
                "grub-cfg-unreadable",
                format!("reading grub.cfg: {e}"),
                &at,
            )),
        }
    }
    out
}

/// The verify hook (`glue::IMAGE_SECTIONS`): the BIOS chain, and grub.cfg's UUIDs against
/// the filesystems the partition sections found.
pub fn section<'a>(
    r: &'a dyn ReadAt,
    d: &Disk<'a, dyn ReadAt + 'a>,
    report: &mut crate::report::VerifyReport,
    _map: &mut crate::regions::RegionMapBuilder,
) {
    report.findings.extend(findings(r, d));
    let uuids: Vec<String> = report.filesystems.iter().filter_map(|f| f.uuid.clone()).collect();
    report.findings.extend(grub_cfg_section(r, d, &uuids));
}
