//! core.img assembly: kernel.img's loaded bytes plus the module area, LZMA-compressed behind
//! lzma_decompress.img, with diskboot.img in front (layout in the module doc of `grub_bios`).

use super::{GrubBiosError, GrubFiles};
use std::collections::BTreeMap;

/// Sector size GRUB's i386-pc boot code works in.
pub const SECTOR: usize = 512;
/// `GRUB_KERNEL_I386_PC_LINK_ADDR`: where the decompressed kernel runs.
pub const LINK_ADDR: u64 = 0x9000;
/// Where diskboot.img loads the sectors after itself (segment 0x820).
const DECOMPRESSOR_ADDR: u64 = 0x8200;
/// `GRUB_BOOT_I386_PC_KERNEL_SEG + (512 >> 4)`: the blocklist's load segment.
pub const BLOCKLIST_SEGMENT: u16 = 0x0820;
/// Offset of the first blocklist entry in diskboot.img (512 - 12).
pub const BLOCKLIST_OFFSET: usize = SECTOR - 12;
/// `GRUB_DECOMPRESSOR_I386_PC_COMPRESSED_SIZE` / `_UNCOMPRESSED_SIZE` in lzma_decompress.img.
const COMPRESSED_SIZE_AT: usize = 0x08;
const UNCOMPRESSED_SIZE_AT: usize = 0x0c;
/// `GRUB_KERNEL_I386_PC_NO_REED_SOLOMON_LENGTH`.
const NO_RS_LENGTH_AT: usize = 0x14;
/// `GRUB_MODULE_MAGIC`, "mimg".
pub const MODULE_MAGIC: u32 = 0x676d_696d;
pub const OBJ_TYPE_ELF: u32 = 0;
pub const OBJ_TYPE_CONFIG: u32 = 2;
pub const OBJ_TYPE_PREFIX: u32 = 3;
/// GRUB's fixed LZMA parameters for i386-pc (`compress_kernel_lzma` in util/mkimage.c).
pub const LZMA_LC: u32 = 3;
pub const LZMA_LP: u32 = 0;
pub const LZMA_PB: u32 = 2;
pub const LZMA_DICT: u32 = 1 << 16;

/// The partition map GRUB must read to find the /boot filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartMap {
    Msdos,
    Gpt,
}

/// The filesystem that holds /boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    /// The ext4 root filesystem (GRUB's `ext2` module); /boot is a folder in it.
    Ext4,
    /// A FAT partition mounted at /boot (legacy+boot); GRUB's folder is `/grub` in it.
    Fat,
}

/// What core.img must know to find the rest of GRUB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreConfig {
    pub part_map: PartMap,
    pub fs: FsKind,
    /// The UUID of the /boot filesystem as GRUB prints it (`search.fs_uuid` compares it
    /// case-insensitively): `xxxxxxxx-xxxx-...` for ext4, `XXXX-XXXX` for FAT.
    pub fs_uuid: String,
    /// GRUB's folder on that filesystem, without a device: `/boot/grub` in an ext4 root,
    /// `/grub` on legacy+boot's FAT /boot, `/EFI/debian` on hybrid's ESP (GRUB EFI's folder,
    /// so that both GRUBs read one grub.cfg).
    pub prefix: String,
}

impl CoreConfig {
    /// The config with the usual folder for `fs` (`/boot/grub` or `/grub`).
    pub fn new(part_map: PartMap, fs: FsKind, fs_uuid: impl Into<String>) -> Self {
        let prefix = match fs {
            FsKind::Ext4 => "/boot/grub",
            FsKind::Fat => "/grub",
        };
        CoreConfig { part_map, fs, fs_uuid: fs_uuid.into(), prefix: prefix.to_string() }
    }

    /// GRUB's folder on the /boot filesystem, without a device.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The modules core.img carries itself, before dependencies: the disk driver, the
    /// partition map, the filesystem and `search.fs_uuid`.
    pub fn modules(&self) -> Vec<&'static str> {
        let part = match self.part_map {
            PartMap::Msdos => "part_msdos",
            PartMap::Gpt => "part_gpt",
        };
        let fs = match self.fs {
            FsKind::Ext4 => "ext2",
            FsKind::Fat => "fat",
        };
        vec!["biosdisk", part, fs, "search_fs_uuid"]
    }

    /// The early config, as grub-install writes its load.cfg.
    pub fn early_config(&self) -> String {
        format!("search.fs_uuid {} root\nset prefix=($root){}\n", self.fs_uuid, self.prefix())
    }
}

/// GRUB's module dependencies, from moddep.lst (`name: dep dep ...` per line).
#[derive(Debug, Clone, Default)]
pub struct ModDeps {
    deps: BTreeMap<String, Vec<String>>,
}

impl ModDeps {
    pub fn parse(text: &str) -> Result<Self, GrubBiosError> {
        let mut deps = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let Some((name, rest)) = line.split_once(':') else {
                return Err(GrubBiosError::Malformed {
                    name: "moddep.lst".into(),
                    what: format!("line {} has no `:`: {line:?}", n + 1),
                });
            };
            deps.insert(name.trim().to_string(), rest.split_whitespace().map(String::from).collect());
        }
        Ok(ModDeps { deps })
    }

    /// `wanted` with all dependencies, each dependency before the modules that need it and
    /// every module once, in the order `grub-mkimage` loads them.
    pub fn resolve(&self, wanted: &[&str]) -> Result<Vec<String>, GrubBiosError> {
        let mut out = Vec::new();
        for w in wanted {
            self.visit(w, "the module list", &mut out, &mut Vec::new())?;
        }
        Ok(out)
    }

    fn visit(
        &self,
        name: &str,
        needed_by: &str,
        out: &mut Vec<String>,
        stack: &mut Vec<String>,
    ) -> Result<(), GrubBiosError> {
        if out.iter().any(|m| m == name) || stack.iter().any(|m| m == name) {
            return Ok(());
        }
        let deps = self.deps.get(name).ok_or_else(|| GrubBiosError::UnknownModule {
            module: name.to_string(),
            needed_by: needed_by.to_string(),
        })?;
        stack.push(name.to_string());
        for d in deps {
            self.visit(d, name, out, stack)?;
        }
        stack.pop();
        out.push(name.to_string());
        Ok(())
    }
}

/// kernel.img's loaded bytes (its one `PT_LOAD` segment's file bytes) and its bss size.
#[derive(Debug, Clone)]
pub struct KernelImage {
    pub bytes: Vec<u8>,
    pub bss: u64,
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads kernel.img: ELF32 little-endian, i386, `ET_EXEC`, one `PT_LOAD` segment at 0x9000.
pub fn load_kernel(elf: &[u8]) -> Result<KernelImage, GrubBiosError> {
    let bad = |what: String| GrubBiosError::Malformed { name: "kernel.img".into(), what };
    if elf.get(0..4) != Some(b"\x7fELF") || elf.get(4) != Some(&1) || elf.get(5) != Some(&1) {
        return Err(bad("not a little-endian ELF32 file".into()));
    }
    let short = || bad("truncated ELF header".into());
    let (e_type, e_machine) = (le16(elf, 16).ok_or_else(short)?, le16(elf, 18).ok_or_else(short)?);
    if e_type != 2 || e_machine != 3 {
        return Err(bad(format!("e_type {e_type} e_machine {e_machine}, expected 2 (EXEC) and 3 (i386)")));
    }
    let phoff = le32(elf, 28).ok_or_else(short)? as usize;
    let phentsize = le16(elf, 42).ok_or_else(short)? as usize;
    let phnum = le16(elf, 44).ok_or_else(short)? as usize;
    let mut load = None;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let field =
            |k: usize| le32(elf, ph + 4 * k).ok_or_else(|| bad(format!("program header {i} truncated")));
        if field(0)? != 1 {
            continue;
        }
        if load.is_some() {
            return Err(bad("more than one PT_LOAD segment".into()));
        }
        let (offset, vaddr, filesz, memsz) = (field(1)?, field(2)?, field(4)?, field(5)?);
        if u64::from(vaddr) != LINK_ADDR {
            return Err(bad(format!("PT_LOAD at {vaddr:#x}, expected {LINK_ADDR:#x}")));
        }
        let bytes = elf
            .get(offset as usize..offset as usize + filesz as usize)
            .ok_or_else(|| bad("PT_LOAD segment past the end of the file".into()))?;
        load = Some(KernelImage { bytes: bytes.to_vec(), bss: u64::from(memsz.saturating_sub(filesz)) });
    }
    load.ok_or_else(|| bad("no PT_LOAD segment".into()))
}

fn align4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

fn push_object(area: &mut Vec<u8>, kind: u32, body: &[u8]) {
    let padded = align4(body.len());
    area.extend_from_slice(&kind.to_le_bytes());
    // Object sizes are bounded by the 0x68000 limit checked by the caller; a u32 holds them.
    area.extend_from_slice(&((padded + 8) as u32).to_le_bytes());
    area.extend_from_slice(body);
    area.resize(area.len() + padded - body.len(), 0);
}

/// The module area: `grub_module_info32`, the modules, the early config and the prefix.
pub fn module_area(modules: &[(String, Vec<u8>)], config: &str, prefix: &str) -> Vec<u8> {
    let mut area = vec![0u8; 12];
    for (_, bytes) in modules {
        push_object(&mut area, OBJ_TYPE_ELF, bytes);
    }
    let mut cfg = config.as_bytes().to_vec();
    cfg.push(0);
    push_object(&mut area, OBJ_TYPE_CONFIG, &cfg);
    let mut pfx = prefix.as_bytes().to_vec();
    pfx.push(0);
    push_object(&mut area, OBJ_TYPE_PREFIX, &pfx);
    let size = area.len() as u32;
    area[0..4].copy_from_slice(&MODULE_MAGIC.to_le_bytes());
    area[4..8].copy_from_slice(&12u32.to_le_bytes());
    area[8..12].copy_from_slice(&size.to_le_bytes());
    area
}

/// Raw LZMA1 with GRUB's properties, no header and no end marker.
pub fn compress(plain: &[u8]) -> Result<Vec<u8>, GrubBiosError> {
    use lzma_rust2::{EncodeMode, LzmaOptions, LzmaWriter, MfType};
    use std::io::Write;
    let opts = LzmaOptions::new(LZMA_DICT, LZMA_LC, LZMA_LP, LZMA_PB, EncodeMode::Normal, 64, MfType::Bt4, 0);
    let err = |e: std::io::Error| GrubBiosError::Compress(e.to_string());
    let mut w = LzmaWriter::new_no_header(Vec::new(), &opts, false).map_err(err)?;
    w.write_all(plain).map_err(err)?;
    w.finish().map_err(err)
}

/// An assembled core.img, before placement: its blocklist still says "after sector 0" and is
/// patched by `setup` once the region is known.
#[derive(Debug, Clone)]
pub struct CoreImage {
    /// diskboot.img + lzma_decompress.img + payload, zero-padded to whole sectors.
    pub bytes: Vec<u8>,
    /// The modules inside, in load order.
    pub modules: Vec<String>,
    /// Bytes of the decompressed kernel image + module area.
    pub uncompressed: usize,
    /// Bytes of the LZMA payload.
    pub compressed: usize,
    /// GRUB files read, by name, in order.
    pub inputs: Vec<String>,
}

impl CoreImage {
    pub fn sectors(&self) -> u64 {
        (self.bytes.len() / SECTOR) as u64
    }
}

/// Builds core.img for `cfg` from GRUB's files.
pub fn assemble(files: &dyn GrubFiles, cfg: &CoreConfig) -> Result<CoreImage, GrubBiosError> {
    let mut inputs = Vec::new();
    let mut read = |name: &str| {
        inputs.push(name.to_string());
        files.read(name)
    };
    let deps = ModDeps::parse(&String::from_utf8_lossy(&read("moddep.lst")?))?;
    let kernel = load_kernel(&read("kernel.img")?)?;
    let diskboot = read("diskboot.img")?;
    let mut decompressor = read("lzma_decompress.img")?;
    let names = deps.resolve(&cfg.modules())?;
    let mut modules = Vec::new();
    for name in &names {
        let bytes = read(&format!("{name}.mod"))?;
        modules.push((name.clone(), bytes));
    }

    check_diskboot(&diskboot)?;
    let decompressor_limit = LINK_ADDR - DECOMPRESSOR_ADDR;
    if decompressor.len() < 0x20 || decompressor.len() as u64 > decompressor_limit {
        return Err(GrubBiosError::Malformed {
            name: "lzma_decompress.img".into(),
            what: format!("{} bytes, expected 32 to {decompressor_limit}", decompressor.len()),
        });
    }
    if le16(&decompressor, NO_RS_LENGTH_AT) == Some(0xffff) {
        return Err(GrubBiosError::Malformed {
            name: "lzma_decompress.img".into(),
            what: "no_reed_solomon_length is 0xffff (an older core.img layout)".into(),
        });
    }

    let mut plain = kernel.bytes.clone();
    plain.extend_from_slice(&module_area(&modules, &cfg.early_config(), cfg.prefix()));
    let largest = modules
        .iter()
        .max_by_key(|(_, b)| b.len())
        .map(|(n, b)| format!("`{n}.mod`, {} bytes", b.len()))
        .unwrap_or_else(|| "none".into());
    let loaded = plain.len() as u64 + kernel.bss + LINK_ADDR;
    if loaded > 0x68000 {
        return Err(GrubBiosError::TooBig {
            what: "kernel + modules + bss, loaded at 0x9000, end at",
            actual: loaded,
            limit: 0x68000,
            largest,
        });
    }
    let payload = compress(&plain)?;
    decompressor[COMPRESSED_SIZE_AT..COMPRESSED_SIZE_AT + 4]
        .copy_from_slice(&(payload.len() as u32).to_le_bytes());
    decompressor[UNCOMPRESSED_SIZE_AT..UNCOMPRESSED_SIZE_AT + 4]
        .copy_from_slice(&(plain.len() as u32).to_le_bytes());

    let body = decompressor.len() + payload.len();
    if LINK_ADDR + body as u64 > 0x78000 {
        return Err(GrubBiosError::TooBig {
            what: "core.img after diskboot.img, loaded at 0x9000, ends at",
            actual: LINK_ADDR + body as u64,
            limit: 0x78000,
            largest,
        });
    }
    let mut bytes = diskboot;
    bytes.extend_from_slice(&decompressor);
    bytes.extend_from_slice(&payload);
    bytes.resize(bytes.len().div_ceil(SECTOR) * SECTOR, 0);
    // As grub-mkimage does: the first entry's length is the sectors after diskboot.img; its
    // start is filled in by setup.
    let len = (bytes.len() / SECTOR - 1) as u16;
    bytes[BLOCKLIST_OFFSET + 8..BLOCKLIST_OFFSET + 10].copy_from_slice(&len.to_le_bytes());
    Ok(CoreImage { bytes, modules: names, uncompressed: plain.len(), compressed: payload.len(), inputs })
}

fn check_diskboot(diskboot: &[u8]) -> Result<(), GrubBiosError> {
    let bad = |what: String| GrubBiosError::Malformed { name: "diskboot.img".into(), what };
    if diskboot.len() != SECTOR {
        return Err(bad(format!("{} bytes, expected {SECTOR}", diskboot.len())));
    }
    let seg = le16(diskboot, BLOCKLIST_OFFSET + 10);
    if seg != Some(BLOCKLIST_SEGMENT) {
        return Err(bad(format!("blocklist segment {seg:?}, expected {BLOCKLIST_SEGMENT:#x}")));
    }
    if diskboot[BLOCKLIST_OFFSET - 12..BLOCKLIST_OFFSET].iter().any(|&b| b != 0) {
        return Err(bad("the blocklist entry before the first is not a terminator".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_puts_dependencies_first() {
        let d = ModDeps::parse("ext2: fshelp\nfshelp:\nbiosdisk:\nsearch_fs_uuid:\npart_msdos:\n").unwrap();
        let got = d.resolve(&["biosdisk", "part_msdos", "ext2", "search_fs_uuid"]).unwrap();
        assert_eq!(got, ["biosdisk", "part_msdos", "fshelp", "ext2", "search_fs_uuid"]);
    }

    #[test]
    fn resolve_names_missing_module() {
        let d = ModDeps::parse("ext2: fshelp\n").unwrap();
        let err = d.resolve(&["ext2"]).unwrap_err().to_string();
        assert!(err.contains("`fshelp` (needed by `ext2`)") && err.contains("grub-pc-bin"), "{err}");
    }

    #[test]
    fn module_area_layout() {
        let area = module_area(&[("a".into(), vec![1, 2, 3])], "x\n", "/p");
        assert_eq!(le32(&area, 0), Some(MODULE_MAGIC));
        assert_eq!(le32(&area, 8), Some(area.len() as u32));
        assert_eq!((le32(&area, 12), le32(&area, 16)), (Some(OBJ_TYPE_ELF), Some(12)));
        assert_eq!(&area[20..24], &[1, 2, 3, 0]);
        assert_eq!((le32(&area, 24), le32(&area, 28)), (Some(OBJ_TYPE_CONFIG), Some(12)));
        assert_eq!(&area[32..36], b"x\n\0\0");
        assert_eq!((le32(&area, 36), le32(&area, 40)), (Some(OBJ_TYPE_PREFIX), Some(12)));
        assert_eq!(&area[44..48], b"/p\0\0");
        assert_eq!(area.len(), 48);
    }
}
