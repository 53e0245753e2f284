//! GRUB 2.06 for BIOS (i386-pc): core.img assembled and boot.img patched by our own code, the
//! way `grub-mkimage -O i386-pc` and `grub-bios-setup` do it, without root and without the
//! host's GRUB tools (they are test oracles only).
//!
//! # The boot chain and where each piece lives
//!
//! ```text
//! BIOS ─► sector 0: boot.img ─(kernel_sector)─► core.img sector 0: diskboot.img
//!          (MBR / protective MBR)                 │ blocklist: the remaining core.img sectors
//!                                                 ▼
//!                              lzma_decompress.img (startup_raw.S), loaded at 0x8200
//!                                                 │ LZMA payload decompressed to 0x9000
//!                                                 ▼
//!                              kernel.img + module area (biosdisk, part_*, ext2|fat,
//!                              search_fs_uuid, early config, prefix)
//!                                                 │ early config finds the /boot filesystem
//!                                                 ▼
//!                              $prefix/i386-pc/normal.mod ─► $prefix/grub.cfg
//! ```
//!
//! All inputs are files of Debian's grub-pc-bin 2.06 (`/usr/lib/grub/i386-pc/`), found
//! through the package root list and recorded in the manifest with their sha256.
//!
//! # boot.img (512 bytes, sector 0)
//!
//! From `grub-core/boot/i386/pc/boot.S` and `include/grub/i386/pc/boot.h`; the rest of the
//! sector is GRUB's code, copied as it is.
//!
//! | offset | size | field | what we write |
//! | --- | --- | --- | --- |
//! | 0x000 | 3 | `jmp` + `nop` over the BPB | boot.img's bytes |
//! | 0x003 | 0x57 | BPB area (`BPB_START`..`BPB_END` = 0x5a) | kept from the sector already on disk (zeros on our tables), as `grub-bios-setup` copies "the possible DOS BPB" |
//! | 0x05c | 8 | `kernel_sector`, LE64 | LBA of core.img's first sector |
//! | 0x064 | 1 | `boot_drive` | 0xff: use the drive the BIOS passes in DL (what `grub-bios-setup` writes) |
//! | 0x066 | 2 | `boot_drive_check` (`jmp 3f`) | 0x90 0x90 on hard disks, as `grub-bios-setup` does without `--allow-floppy` |
//! | 0x1b8 | 0x46 | disk signature, 2 reserved bytes, partition table (`WINDOWS_NT_MAGIC`..`PART_END` = 0x1fe) | kept from the table writer |
//! | 0x1fe | 2 | 0x55 0xaa | kept (boot.img has the same bytes) |
//!
//! # core.img
//!
//! Sector 0 is `diskboot.img` (512 bytes, `diskboot.S`). Its last 12 bytes are the first
//! blocklist entry, `struct grub_pc_bios_boot_blocklist`; entries grow downwards from there and
//! a zero `len` ends the list (diskboot.img has zeros before the first entry):
//!
//! | offset | size | field | what we write |
//! | --- | --- | --- | --- |
//! | 0x1f4 | 8 | `start`, LE64 | LBA of core.img's second sector (`kernel_sector + 1`) |
//! | 0x1fc | 2 | `len`, LE16 | sectors of core.img after the first |
//! | 0x1fe | 2 | `segment`, LE16 | 0x0820 (load at 0x8200), checked, not written |
//!
//! Then `lzma_decompress.img` (`startup_raw.S`, at most 0x9000 - 0x8200 bytes), with these
//! fields patched (`include/grub/offsets.h`, `util/mkimage.c`):
//!
//! | offset | size | field | what we write |
//! | --- | --- | --- | --- |
//! | 0x08 | 4 | `compressed_size` | bytes of the LZMA payload |
//! | 0x0c | 4 | `uncompressed_size` | kernel image + module area |
//! | 0x10 | 4 | `reed_solomon_redundancy` | 0: no Reed-Solomon codes (left as in the file) |
//! | 0x14 | 2 | `no_reed_solomon_length` | left as in the file |
//! | 0x18 | 4 | boot device | left as in the file (0xffffff, drive from DL) |
//!
//! Then the LZMA payload: raw LZMA1 (no `.lzma` header, no end marker; GRUB's decoder knows
//! both sizes) with GRUB's fixed properties lc=3, lp=0, pb=2 and a 64 KiB dictionary, made by
//! `lzma-rust2` (pure Rust, pinned by Cargo.lock, built without its CPU-dependent
//! `optimization` feature so that every machine gets the same bytes). Its plain text is:
//!
//! - the kernel image: the file bytes of kernel.img's one `PT_LOAD` segment (ELF32, i386,
//!   `ET_EXEC`, linked at 0x9000), which is what `grub-mkimage` lays out for i386-pc; its bss
//!   (`p_memsz - p_filesz`) is not stored;
//! - the module area, right after it (`include/grub/kernel.h`): `struct grub_module_info32`
//!   (`magic` = 0x676d696d "mimg", `offset` = 12, `size` = the whole area), then for each module,
//!   dependencies first in `moddep.lst` order, a `struct grub_module_header` (`type` LE32 =
//!   0 `OBJ_TYPE_ELF`, `size` LE32 = 8 + the module size rounded up to 4) and the module's bytes,
//!   zero-padded; then `OBJ_TYPE_CONFIG` (2) with the early config plus a NUL, rounded up to 4;
//!   then `OBJ_TYPE_PREFIX` (3) with the prefix plus a NUL, rounded up to 4.
//!
//! The limits are `grub-mkimage`'s: the whole core.img after diskboot.img must fit below
//! 0x78000 once loaded at 0x9000, and kernel image + modules + bss below 0x68000.
//!
//! The early config is
//! `search.fs_uuid <uuid> root` + `set prefix=($root)/boot/grub` (ext4 root holds /boot) or
//! `set prefix=($root)/grub` (the FAT /boot of legacy+boot); the prefix object holds the same
//! path without the device. This is what `grub-install` puts in its `load.cfg`.
//!
//! # Placement
//!
//! core.img is written, padded to whole sectors, at the start of the embedding region:
//! sectors 1 up to the first partition on MBR layouts (`legacy`, `legacy+boot`: the seed's
//! 1 MiB gap), or the `bios_grub` partition on GPT layouts (`legacy+gpt`, `hybrid`). A core.img
//! that does not fit is an error. No Reed-Solomon redundancy is added, so the sectors after
//! core.img stay holes.
//!
//! # The rest of GRUB
//!
//! `normal.mod` and the modules a grub.cfg needs (with their moddep.lst dependencies) plus the
//! `.lst` files go to `<prefix>/i386-pc/` on the filesystem that holds /boot, as `grub-install`
//! lays it out (without fonts, locales or the other ~250 modules):
//!
//! | layout | /boot filesystem | prefix | core.img modules (before dependencies) |
//! | --- | --- | --- | --- |
//! | `legacy` | ext4 root | `/boot/grub` | biosdisk, part_msdos, ext2, search_fs_uuid |
//! | `legacy+boot` | FAT /boot, partition 1 | `/grub` | biosdisk, part_msdos, fat, search_fs_uuid |
//! | `legacy+gpt` | ext4 root | `/boot/grub` | biosdisk, part_gpt, ext2, search_fs_uuid |
//! | `hybrid` (GRUB EFI) | ESP | `/EFI/debian` (GRUB EFI's grub.cfg) | biosdisk, part_gpt, fat, search_fs_uuid |
//! | `hybrid` (systemd-boot) | ext4 root | `/boot/grub` | biosdisk, part_gpt, ext2, search_fs_uuid |
//!
//! On legacy+boot the kernel and initrd sit at the FAT's root beside `/grub`, so grub.cfg names
//! them `/vmlinuz-<version>` and `/initrd.img-<version>` (paths on that FAT) and searches for
//! the FAT's volume ID as GRUB prints it (`xxxx-xxxx`); `root=` comes from the deterministic
//! IDs as on every layout. Only the FAT is read by GRUB there, so the ext4 feature check below
//! does not apply.
//!
//! # ext4 features
//!
//! GRUB 2.06's ext2 driver refuses a filesystem with an incompat feature outside filetype,
//! extents, flex_bg, meta_bg, 64bit (it ignores recover, mmp and csum_seed): see
//! [`check_ext4_incompat`].

pub mod core;
pub mod files;
pub mod install;
pub mod runtime;
pub mod setup;

pub use core::{CoreConfig, CoreImage, FsKind, PartMap};
pub use files::GrubFiles;

/// The Debian package that ships GRUB's i386-pc files.
pub const PACKAGE: &str = "grub-pc-bin";
/// Where the package puts them, relative to a package root.
pub const DIR: &str = "usr/lib/grub/i386-pc";

/// Errors of the GRUB BIOS boot code.
#[derive(Debug, thiserror::Error)]
pub enum GrubBiosError {
    #[error(
        "GRUB file `{name}` not found in {searched}: it ships in the Debian package {PACKAGE} ({DIR}); fetch it with `.ci/fetch-packages` or set `package_root`"
    )]
    Missing { name: String, searched: String },
    #[error(
        "GRUB file `{name}` is missing from `{}`, the first package root with GRUB's i386-pc folder: every GRUB file must come from the same {PACKAGE} (modules of another GRUB build do not load), so it is not looked up elsewhere; extract {PACKAGE} 2.06 there completely (`dpkg -x`), or fetch it into the cache with `.ci/fetch-packages` and drop that root", dir.display()
    )]
    MissingInRoot { name: String, dir: std::path::PathBuf },
    #[error("reading GRUB file `{path}`: {error}")]
    Io { path: std::path::PathBuf, error: std::io::Error },
    #[error("GRUB file `{name}` is not what {PACKAGE} 2.06 ships: {what}")]
    Malformed { name: String, what: String },
    #[error("GRUB module `{module}` (needed by `{needed_by}`) is not in moddep.lst of {PACKAGE}")]
    UnknownModule { module: String, needed_by: String },
    #[error("compressing core.img: {0}")]
    Compress(String),
    #[error(
        "core.img is too big: {what} {actual:#x}, GRUB allows at most {limit:#x} (the largest module is {largest}); use the modules of {PACKAGE} 2.06 as Debian ships them (`.ci/fetch-packages`), or check the files under `package_root`"
    )]
    TooBig { what: &'static str, actual: u64, limit: u64, largest: String },
    #[error(
        "core.img needs {needed} sectors but {region} has only {available} (sectors {first}..={last}); make the region larger or use fewer modules"
    )]
    NoRoom { needed: u64, region: String, available: u64, first: u64, last: u64 },
    #[error("layout {layout} has no place for GRUB's core.img: {why}")]
    NoRegion { layout: &'static str, why: &'static str },
    #[error(
        "GRUB 2.06 cannot read the ext4 filesystem holding /boot: its incompat features {features} are outside what GRUB's ext2 driver accepts (filetype, extents, flex_bg, meta_bg, 64bit; recover, mmp, csum_seed ignored); drop those features or put /boot on a FAT partition (legacy+boot)"
    )]
    Ext4Features { features: String },
}

/// GRUB 2.06's `EXT2_DRIVER_SUPPORTED_INCOMPAT` (`grub-core/fs/ext2.c`): filetype, extents,
/// 64bit, flex_bg, meta_bg.
pub const EXT4_INCOMPAT_SUPPORTED: u32 = 0x0002 | 0x0040 | 0x0080 | 0x0200 | 0x0010;
/// `EXT2_DRIVER_IGNORED_INCOMPAT`: recover, mmp, csum_seed.
pub const EXT4_INCOMPAT_IGNORED: u32 = 0x0004 | 0x0100 | 0x2000;

/// Names of the ext4 incompat bits, for error messages.
const EXT4_INCOMPAT_NAMES: &[(u32, &str)] = &[
    (0x0001, "compression"),
    (0x0002, "filetype"),
    (0x0004, "recover"),
    (0x0008, "journal_dev"),
    (0x0010, "meta_bg"),
    (0x0040, "extents"),
    (0x0080, "64bit"),
    (0x0100, "mmp"),
    (0x0200, "flex_bg"),
    (0x0400, "ea_inode"),
    (0x1000, "dirdata"),
    (0x2000, "metadata_csum_seed"),
    (0x4000, "large_dir"),
    (0x8000, "inline_data"),
    (0x10000, "encrypt"),
    (0x20000, "casefold"),
];

/// Checks that GRUB 2.06 can read an ext4 filesystem with these `s_feature_incompat` bits.
pub fn check_ext4_incompat(incompat: u32) -> Result<(), GrubBiosError> {
    let bad = incompat & !(EXT4_INCOMPAT_SUPPORTED | EXT4_INCOMPAT_IGNORED);
    if bad == 0 {
        return Ok(());
    }
    let mut names = Vec::new();
    for bit in 0..32 {
        let b = 1u32 << bit;
        if bad & b != 0 {
            let name = EXT4_INCOMPAT_NAMES.iter().find(|(v, _)| *v == b).map(|(_, n)| n.to_string());
            names.push(name.unwrap_or_else(|| format!("{b:#x}")));
        }
    }
    Err(GrubBiosError::Ext4Features { features: names.join(", ") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext4_features_grub_reads() {
        // What our ext4 writer sets (filetype, extents, flex_bg, 64bit) plus the ignored ones.
        check_ext4_incompat(0x0002 | 0x0040 | 0x0200 | 0x0080 | 0x0004 | 0x2000).unwrap();
    }

    #[test]
    fn ext4_inline_data_refused() {
        let err = check_ext4_incompat(0x0002 | 0x8000 | 0x20000).unwrap_err().to_string();
        assert!(err.contains("inline_data, casefold"), "{err}");
    }
}
