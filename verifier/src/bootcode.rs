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
use crate::fat::Fat;
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

/// Where GRUB's config may live, by filesystem: in an ext4 root's /boot, and on a FAT
/// partition as legacy+boot's /boot (`/grub`) or GRUB EFI's folder on an ESP (`/EFI/debian`).
/// GRUB's i386-pc modules sit in `i386-pc/` beside it when GRUB BIOS reads it.
const EXT4_CFG_DIRS: &[&str] = &["/boot/grub"];
const FAT_CFG_DIRS: &[&str] = &["/grub", "/boot/grub", "/EFI/debian"];
/// The largest grub.cfg read.
const MAX_GRUB_CFG: u64 = 1 << 20;

/// A file by path from the root directory, following no links; `Ok(None)` when absent.
fn ext4_file<R: ReadAt>(fs: &Ext4<R>, path: &str) -> crate::Result<Option<Vec<u8>>> {
    let mut inode = fs.inode(2)?;
    let names: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    for (i, name) in names.iter().enumerate() {
        let dir = fs.read_dir(&inode)?;
        let Some(e) = dir.entries.iter().find(|e| e.name == name.as_bytes()) else { return Ok(None) };
        inode = fs.inode(e.inode)?;
        let want = if i + 1 == names.len() { FileType::Regular } else { FileType::Directory };
        if inode.file_type() != Some(want) {
            return Ok(None);
        }
    }
    fs.read_inode_data(&inode, MAX_GRUB_CFG).map(Some)
}

/// A file by path on a FAT volume; `Ok(None)` when absent.
fn fat_file<R: ReadAt + ?Sized>(fs: &Fat<'_, R>, path: &str) -> crate::Result<Option<Vec<u8>>> {
    match fs.read_file(path, MAX_GRUB_CFG) {
        Ok(b) => Ok(Some(b)),
        Err(crate::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
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
        named.extend(search_uuid(&words).map(|u| ("search --fs-uuid", u)));
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

/// The UUID of a `search ... --fs-uuid ... UUID` line, as words.
fn search_uuid<'w>(words: &[&'w str]) -> Option<&'w str> {
    if words.first() != Some(&"search") || !words.iter().any(|w| *w == "--fs-uuid" || *w == "-u") {
        return None;
    }
    words.last().copied().filter(|w| !w.starts_with('-'))
}

/// A filesystem's UUID as GRUB names it: the ext4 UUID, or a FAT volume ID as `xxxx-xxxx`.
fn grub_uuid(f: &crate::report::FsInfo) -> Option<String> {
    f.uuid.clone().or_else(|| f.volume_id.map(|v| format!("{:04x}-{:04x}", v >> 16, v & 0xffff)))
}

/// Whether `path` is in `f`'s file tree; FAT names compare without regard to ASCII case, as
/// FAT (and GRUB's fat driver) looks them up.
fn has_file(f: &crate::report::FsInfo, path: &str) -> bool {
    if f.files.find(path).is_some() {
        return true;
    }
    f.fs_type != crate::report::FsType::Ext4
        && (0..f.files.len()).any(|i| f.files.path(i).eq_ignore_ascii_case(path))
}

/// Follows a grub.cfg one step further, as GRUB does at boot: each `search --fs-uuid` selects a
/// filesystem, and the `linux` and `initrd` paths after it must be files on that filesystem.
pub fn grub_cfg_paths(cfg: &str, at: &str, fss: &[crate::report::FsInfo]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut selected: Option<(&str, Option<&crate::report::FsInfo>)> = None;
    for (n, line) in cfg.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().map(unquote).collect();
        if let Some(u) = search_uuid(&words) {
            selected =
                Some((u, fss.iter().find(|f| grub_uuid(f).is_some_and(|g| g.eq_ignore_ascii_case(u)))));
            continue;
        }
        let (Some(&cmd), Some(&path)) = (words.first(), words.get(1)) else { continue };
        if !matches!(cmd, "linux" | "linux16" | "initrd" | "initrd16") {
            continue;
        }
        // An unknown UUID is `grub-cfg-uuid`'s finding; no search means GRUB's own $root.
        let Some((uuid, Some(fs))) = selected else { continue };
        if !has_file(fs, path) {
            let part = fs.partition.map_or("the whole disk".to_string(), |p| format!("partition {p}"));
            out.push(finding(
                Severity::Error,
                "grub-cfg-path",
                format!(
                    "grub.cfg line {} ({cmd}) names `{path}`, which is not on the filesystem {uuid} (`search --fs-uuid`, {part}); paths are relative to that filesystem's root",
                    n + 1
                ),
                at,
            ));
        }
    }
    out
}

/// One grub.cfg found on a partition.
struct FoundCfg {
    at: String,
    text: String,
    /// `i386-pc/normal.mod` is beside it: GRUB BIOS can run its menu from this folder.
    bios_modules: bool,
}

/// Reads every grub.cfg of the disk's ext4 and FAT partitions (see [`EXT4_CFG_DIRS`] and
/// [`FAT_CFG_DIRS`]), with the unreadable ones as findings.
fn find_cfgs(
    r: &dyn ReadAt,
    d: &Disk<'_, dyn ReadAt + '_>,
    fss: &[crate::report::FsInfo],
) -> (Vec<FoundCfg>, Vec<Finding>) {
    let (mut found, mut errors) = (Vec::new(), Vec::new());
    for p in &d.partitions {
        let (kind, dirs) = match p.contents {
            Contents::Ext { .. } => ("ext4", EXT4_CFG_DIRS),
            Contents::Fat { .. } => ("fat", FAT_CFG_DIRS),
            _ => continue,
        };
        let fs_info = fss.iter().find(|f| f.partition == (p.number != 0).then_some(p.number));
        for dir in dirs {
            let path = format!("{dir}/grub.cfg");
            let at = if p.number == 0 {
                format!("{kind} {path}")
            } else {
                format!("partition {} {kind} {path}", p.number)
            };
            let slice = Slice { inner: r, start: p.start, len: p.len };
            let read = match p.contents {
                Contents::Ext { .. } => match Ext4::open(slice) {
                    Ok(fs) => ext4_file(&fs, &path),
                    Err(_) => break,
                },
                _ => match Fat::open_at(&slice, p.start) {
                    Ok(fs) => fat_file(&fs, &path),
                    Err(_) => break,
                },
            };
            match read {
                Ok(Some(bytes)) => {
                    let normal = format!("{dir}/i386-pc/normal.mod");
                    found.push(FoundCfg {
                        at,
                        text: String::from_utf8_lossy(&bytes).into_owned(),
                        bios_modules: fs_info.is_some_and(|f| has_file(f, &normal)),
                    });
                }
                Ok(None) => {}
                Err(e) => errors.push(finding(
                    Severity::Error,
                    "grub-cfg-unreadable",
                    format!("reading grub.cfg: {e}"),
                    &at,
                )),
            }
        }
    }
    (found, errors)
}

/// Checks every grub.cfg of the disk: the UUIDs it names against `fss` (the filesystems the
/// report found), its kernel and initrd paths on the filesystem it selects, and, when the MBR
/// holds GRUB's boot code (`bios`), that some grub.cfg has GRUB's i386-pc modules beside it.
pub fn grub_cfg_section(
    r: &dyn ReadAt,
    d: &Disk<'_, dyn ReadAt + '_>,
    fss: &[crate::report::FsInfo],
    bios: bool,
) -> Vec<Finding> {
    let uuids: Vec<String> = fss.iter().filter_map(grub_uuid).collect();
    let (found, mut out) = find_cfgs(r, d, fss);
    for c in &found {
        out.extend(grub_cfg_findings(&c.text, &c.at, &uuids));
        out.extend(grub_cfg_paths(&c.text, &c.at, fss));
    }
    if bios && out.is_empty() {
        match found.iter().find(|c| c.bios_modules) {
            Some(c) => out.push(finding(
                Severity::Info,
                "grub-bios-config",
                format!(
                    "GRUB BIOS menu: {} with i386-pc/normal.mod beside it; its UUIDs and kernel paths resolve",
                    c.at
                ),
                &c.at,
            )),
            None => out.push(finding(
                Severity::Error,
                "grub-bios-no-config",
                format!(
                    "GRUB's boot code is in the MBR but no filesystem has a grub.cfg with i386-pc/normal.mod beside it (looked in {} on ext4, {} on FAT; found: {})",
                    EXT4_CFG_DIRS.join(", "),
                    FAT_CFG_DIRS.join(", "),
                    if found.is_empty() { "no grub.cfg".to_string() } else { found.iter().map(|c| c.at.as_str()).collect::<Vec<_>>().join(", ") }
                ),
                "mbr boot code",
            )),
        }
    }
    out
}

/// The verify hook (`glue::IMAGE_SECTIONS`): the BIOS chain, then every grub.cfg against the
/// filesystems the partition sections found.
pub fn section<'a>(
    r: &'a dyn ReadAt,
    d: &Disk<'a, dyn ReadAt + 'a>,
    report: &mut crate::report::VerifyReport,
    _map: &mut crate::regions::RegionMapBuilder,
) {
    let chain = findings(r, d);
    let bios = chain.iter().any(|f| f.code == "grub-bios-chain");
    report.findings.extend(chain);
    let cfg = grub_cfg_section(r, d, &report.filesystems, bios);
    report.findings.extend(cfg);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::FileTree;
    use crate::report::{FsInfo, FsType};

    fn fat_boot() -> FsInfo {
        let mut f = FsInfo::new(Some(1), FsType::Fat16);
        f.volume_id = Some(0x49f6_82e7);
        f.files = FileTree::from_paths([
            ("/VMLINUZ-6.1", 0o100_644, 0, 0),
            ("/initrd.img-6.1", 0o100_644, 0, 0),
            ("/grub/i386-pc/normal.mod", 0o100_644, 0, 0),
        ]);
        f
    }

    const CFG: &str = "menuentry 'x' {\n\tsearch --no-floppy --fs-uuid --set=root 49F6-82E7\n\tlinux '/vmlinuz-6.1' 'root=UUID=u'\n\tinitrd '/initrd.img-6.1'\n}\n";

    #[test]
    fn kernel_paths_resolve_on_the_searched_fat_ignoring_case() {
        assert_eq!(grub_cfg_paths(CFG, "cfg", &[fat_boot()]), Vec::new());
        assert!(has_file(&fat_boot(), "/grub/i386-pc/normal.mod"));
        assert_eq!(grub_uuid(&fat_boot()).as_deref(), Some("49f6-82e7"));
    }

    #[test]
    fn a_kernel_missing_from_the_searched_filesystem_is_named() {
        let cfg = CFG.replace("/initrd.img-6.1", "/boot/initrd.img-6.1");
        let f = grub_cfg_paths(&cfg, "cfg", &[fat_boot()]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].code, "grub-cfg-path");
        assert!(f[0].message.contains("line 4 (initrd) names `/boot/initrd.img-6.1`"), "{}", f[0].message);
        assert!(f[0].message.contains("partition 1"), "{}", f[0].message);
    }

    #[test]
    fn an_unknown_search_uuid_is_left_to_the_uuid_check() {
        let cfg = CFG.replace("49F6-82E7", "0000-0000");
        assert_eq!(grub_cfg_paths(&cfg, "cfg", &[fat_boot()]), Vec::new());
        let f = grub_cfg_findings(&cfg, "cfg", &["49f6-82e7".into(), "u".into()]);
        assert_eq!(f.iter().map(|f| f.code.as_str()).collect::<Vec<_>>(), ["grub-cfg-uuid"]);
    }
}
