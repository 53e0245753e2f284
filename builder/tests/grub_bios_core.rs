//! core.img assembled by our code against `grub-mkimage -O i386-pc` (the oracle) with the same
//! modules, early config and prefix: same decompressor fields, same decompressed kernel and
//! module area, same diskboot.img; bytes may differ only in the LZMA stream.

mod common;

use reprodisk::boot::grub_bios::core::{self, CoreConfig, FsKind, LZMA_DICT, PartMap};
use reprodisk::boot::grub_bios::files::DirFiles;
use std::io::Read;

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// The decompressor length is the same file in both, so the payload starts after it.
fn decompress(core: &[u8], decompressor_len: usize) -> Vec<u8> {
    let d = &core[512..];
    let (csize, usize_) = (le32(d, 8) as usize, le32(d, 12) as usize);
    let payload = &d[decompressor_len..decompressor_len + csize];
    let props = (core::LZMA_PB * 5 + core::LZMA_LP) * 9 + core::LZMA_LC;
    let mut r =
        lzma_rust2::LzmaReader::new_with_props(payload, usize_ as u64, props as u8, LZMA_DICT, None).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert_eq!(out.len(), usize_);
    out
}

fn check_against_mkimage(cfg: CoreConfig) {
    let root = common::cache_root_with("usr/lib/grub/i386-pc/kernel.img");
    let dir = root.join("usr/lib/grub/i386-pc");
    let ours = core::assemble(&DirFiles::new(&dir), &cfg).unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let early = common::write(tmp.path(), "early.cfg", &cfg.early_config());
    let out = tmp.path().join("core.img");
    let mut args = vec!["-O", "i386-pc", "-d", dir.to_str().unwrap(), "-o", out.to_str().unwrap()];
    args.extend(["-c", early.to_str().unwrap(), "-p", cfg.prefix()]);
    let mods = cfg.modules();
    args.extend(mods.iter().copied());
    let o = common::tool("grub-mkimage", "grub-common", &args);
    assert!(o.status.success(), "grub-mkimage {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    let theirs = std::fs::read(&out).unwrap();

    let dec_len = std::fs::metadata(dir.join("lzma_decompress.img")).unwrap().len() as usize;
    // diskboot.img: identical, blocklist length included (both count the sectors after it).
    let their_sectors = theirs.len().div_ceil(512) as u64;
    assert_eq!(ours.bytes[..0x1fc], theirs[..0x1fc]);
    assert_eq!(u16::from_le_bytes(ours.bytes[0x1fc..0x1fe].try_into().unwrap()) as u64, ours.sectors() - 1);
    assert_eq!(u16::from_le_bytes(theirs[0x1fc..0x1fe].try_into().unwrap()) as u64, their_sectors - 1);
    // The decompressor: identical apart from the compressed size.
    assert_eq!(ours.bytes[512 + 12..512 + dec_len], theirs[512 + 12..512 + dec_len]);
    assert_eq!(ours.bytes[512..512 + 8], theirs[512..512 + 8]);
    assert_eq!(le32(&ours.bytes[512..], 12), le32(&theirs[512..], 12), "uncompressed size");
    // The plain text: kernel image + module area, byte for byte.
    let (a, b) = (decompress(&ours.bytes, dec_len), decompress(&theirs, dec_len));
    assert!(a == b, "decompressed core differs from grub-mkimage's ({} vs {} bytes)", a.len(), b.len());
    // Our compressor is at least as good within a few percent.
    assert!(
        ours.bytes.len() <= theirs.len() * 105 / 100,
        "ours {} theirs {}",
        ours.bytes.len(),
        theirs.len()
    );
    eprintln!(
        "core.img: ours {} bytes, grub-mkimage {} bytes, modules {:?}",
        ours.bytes.len(),
        theirs.len(),
        ours.modules
    );
}

#[test]
fn msdos_ext4_matches_grub_mkimage() {
    check_against_mkimage(CoreConfig::new(
        PartMap::Msdos,
        FsKind::Ext4,
        "f222513b-ded1-49fa-b591-20ce86a2fe7f",
    ));
}

#[test]
fn gpt_ext4_matches_grub_mkimage() {
    check_against_mkimage(CoreConfig::new(
        PartMap::Gpt,
        FsKind::Ext4,
        "f222513b-ded1-49fa-b591-20ce86a2fe7f",
    ));
}

#[test]
fn msdos_fat_matches_grub_mkimage() {
    check_against_mkimage(CoreConfig::new(PartMap::Msdos, FsKind::Fat, "1234-ABCD"));
}

#[test]
fn assembly_is_deterministic() {
    let root = common::cache_root_with("usr/lib/grub/i386-pc/kernel.img");
    let cfg = CoreConfig::new(PartMap::Gpt, FsKind::Ext4, "x");
    let dir = root.join("usr/lib/grub/i386-pc");
    let a = core::assemble(&DirFiles::new(&dir), &cfg).unwrap();
    let b = core::assemble(&DirFiles::new(&dir), &cfg).unwrap();
    assert_eq!(a.bytes, b.bytes);
}

#[test]
fn missing_module_names_the_package() {
    let root = common::cache_root_with("usr/lib/grub/i386-pc/kernel.img");
    let tmp = tempfile::tempdir().unwrap();
    let src = root.join("usr/lib/grub/i386-pc");
    for f in
        ["moddep.lst", "kernel.img", "diskboot.img", "lzma_decompress.img", "biosdisk.mod", "part_msdos.mod"]
    {
        std::fs::copy(src.join(f), tmp.path().join(f)).unwrap();
    }
    let cfg = CoreConfig::new(PartMap::Msdos, FsKind::Ext4, "x");
    let err = core::assemble(&DirFiles::new(tmp.path()), &cfg).unwrap_err().to_string();
    assert!(
        err.contains("`fshelp.mod`") && err.contains("grub-pc-bin") && err.contains(".ci/fetch-packages"),
        "{err}"
    );
}
