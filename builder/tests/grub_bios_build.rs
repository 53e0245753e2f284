//! GRUB for BIOS through `reprodisk build`: what lands in the image, byte-identical rebuilds,
//! the manifest's record, and bad GRUB inputs refused with exit 2 and nothing left behind
//! (a core.img GRUB cannot load, a package root lacking a module; and why no spec can ask
//! for an ext4 root GRUB 2.06 cannot read).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A root with a fake kernel and initrd in /boot: GRUB's files do not care what they are.
fn spec(dir: &Path, layout: &str) -> PathBuf {
    spec_with(dir, layout, "")
}

/// [`spec`] with `extra` top-level keys.
fn spec_with(dir: &Path, layout: &str, extra: &str) -> PathBuf {
    let boot = dir.join("root/boot");
    std::fs::create_dir_all(&boot).unwrap();
    std::fs::write(boot.join("vmlinuz-6.1.0-test"), b"kernel").unwrap();
    std::fs::write(boot.join("initrd.img-6.1.0-test"), b"initrd").unwrap();
    common::write(
        dir,
        "spec.toml",
        &format!(
            "partitionTableType = \"{layout}\"\ndiskSize = 64\nbootSize = \"16M\"\n{extra}[system]\nroot = \"root\"\nkernel_params = [\"console=ttyS0\"]\n"
        ),
    )
}

/// Partition `index` of `image` (the last when `None`, as sfdisk lists them) copied to `to`;
/// returns `to` as a string for the tools.
fn partition_file(image: &Path, index: Option<usize>, to: &Path) -> String {
    let sf = common::sfdisk_json(image);
    let parts = sf["partitiontable"]["partitions"].as_array().unwrap();
    let p = index.map_or_else(|| parts.last(), |i| parts.get(i)).unwrap();
    let o = common::tool(
        "dd",
        "coreutils",
        &[
            &format!("if={}", image.display()),
            &format!("of={}", to.display()),
            "bs=512",
            &format!("skip={}", p["start"].as_u64().unwrap()),
            &format!("count={}", p["size"].as_u64().unwrap()),
            "status=none",
        ],
    );
    assert!(o.status.success(), "dd: {}", String::from_utf8_lossy(&o.stderr));
    to.to_str().unwrap().to_string()
}

fn build_with_cache(spec: &Path, out: &Path, cache: Option<&Path>) -> std::process::Output {
    let mut c = Command::new(common::BIN);
    c.args(["build", spec.to_str().unwrap(), "--out", out.to_str().unwrap(), "--json"]).env("CI", "true");
    if let Some(cache) = cache {
        c.env("REPRODISK_CACHE", cache);
    }
    c.output().unwrap()
}

#[test]
fn bios_layouts_get_grub_and_rebuild_identically() {
    common::cache_root_with("usr/lib/grub/i386-pc/boot.img");
    for layout in ["legacy", "legacy+boot", "legacy+gpt", "hybrid"] {
        let tmp = tempfile::tempdir().unwrap();
        let s = spec(tmp.path(), layout);
        let a = common::build(&s, &tmp.path().join("a"));
        let b = common::build(&s, &tmp.path().join("b"));
        assert_eq!(common::sha256(&a), common::sha256(&b), "{layout}: two builds differ");

        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(tmp.path().join("a/manifest.json")).unwrap()).unwrap();
        let g = &m["grub_bios"];
        let first = if layout.starts_with("legacy") && layout != "legacy+gpt" {
            1
        } else if layout == "hybrid" {
            34
        } else {
            2048
        };
        assert_eq!(g["kernel_sector"], first, "{layout}: {g}");
        assert!(g["modules"].as_array().unwrap().iter().any(|m| m == "search_fs_uuid"));
        let inputs = g["inputs"].as_array().unwrap();
        for name in ["boot.img", "diskboot.img", "lzma_decompress.img", "kernel.img", "normal.mod"] {
            let i = inputs.iter().find(|i| i["path"].as_str().unwrap().ends_with(name)).expect(name);
            assert_eq!(i["package"], "grub-pc-bin");
            assert_eq!(i["sha256"].as_str().unwrap().len(), 64);
        }

        if layout == "hybrid" {
            // GRUB BIOS shares GRUB EFI's folder and grub.cfg on the ESP.
            assert_eq!(g["grub_dir"], "/EFI/debian");
            assert!(g["modules"].as_array().unwrap().iter().any(|m| m == "fat"), "{g}");
            let esp = m["boot"]["fat"][0]["files"].as_array().unwrap();
            for f in ["/EFI/debian/i386-pc/normal.mod", "/EFI/debian/grub.cfg"] {
                assert!(esp.iter().any(|e| e["path"] == f), "{f} not on the ESP: {esp:?}");
            }
            continue;
        }
        // The verifier follows the chain to the menu; e2fsck or fsck.fat is happy; debugfs or
        // mtools see GRUB's files.
        let o = common::reprodisk(&["verify", a.to_str().unwrap(), "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let f = v["findings"].as_array().unwrap();
        assert!(f.iter().any(|f| f["code"] == "grub-bios-chain"), "{layout}: {f:?}");
        assert!(f.iter().any(|f| f["code"] == "grub-bios-config"), "{layout}: {f:?}");
        assert!(!f.iter().any(|f| f["severity"] == "error"), "{layout}: {f:?}");
        if layout == "legacy+boot" {
            check_fat_boot(tmp.path(), &a, &m);
            continue;
        }
        let fs = partition_file(&a, None, &tmp.path().join("root.ext4"));
        let o = common::tool("debugfs", "e2fsprogs", &["-R", "cat /boot/grub/grub.cfg", &fs]);
        let cfg = String::from_utf8_lossy(&o.stdout);
        assert!(
            cfg.contains("search --no-floppy --fs-uuid --set=root f222513b-ded1-49fa-b591-20ce86a2fe7f"),
            "{cfg}"
        );
        assert!(cfg.contains("linux '/boot/vmlinuz-6.1.0-test' 'root=UUID=f222513b-ded1-49fa-b591-20ce86a2fe7f' 'console=ttyS0'"), "{cfg}");
        let o = common::tool("debugfs", "e2fsprogs", &["-R", "ls -l /boot/grub/i386-pc", &fs]);
        let ls = String::from_utf8_lossy(&o.stdout);
        for f in ["normal.mod", "linux.mod", "command.lst", "fs.lst"] {
            assert!(ls.contains(f), "{layout}: {f} missing in {ls}");
        }
    }
}

#[test]
fn missing_grub_module_is_refused_naming_the_package() {
    let real = common::cache_root_with("usr/lib/grub/i386-pc/boot.img").join("usr/lib/grub/i386-pc");
    let tmp = tempfile::tempdir().unwrap();
    let grub = tmp.path().join("cache/root/usr/lib/grub/i386-pc");
    std::fs::create_dir_all(&grub).unwrap();
    for e in std::fs::read_dir(&real).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, grub.join(p.file_name().unwrap())).unwrap();
    }
    // A module that no package root has (the host's / is searched too).
    let deps = std::fs::read_to_string(grub.join("moddep.lst")).unwrap();
    let deps = deps.replace("\nnormal: ", "\nreprodisk_absent:\nnormal: reprodisk_absent ");
    std::fs::write(grub.join("moddep.lst"), deps).unwrap();
    let s = spec(tmp.path(), "legacy");
    let out = tmp.path().join("out");
    let o = build_with_cache(&s, &out, Some(&tmp.path().join("cache")));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`reprodisk_absent.mod`")
            && err.contains("grub-pc-bin")
            && err.contains(".ci/fetch-packages"),
        "{err}"
    );
    assert!(!out.join("nixos.img").exists(), "a half-written image was left under the final name");
}

/// legacy+boot's FAT /boot as fsck.fat and mtools see it: clean, labelled BOOT with the volume
/// ID grub.cfg searches for, the kernel and initrd at its root, GRUB's folder in /grub.
fn check_fat_boot(tmp: &Path, image: &Path, m: &serde_json::Value) {
    let g = &m["grub_bios"];
    assert_eq!(g["grub_dir"], "/grub", "{g}");
    let modules = g["modules"].as_array().unwrap();
    for want in ["part_msdos", "fat", "biosdisk", "search_fs_uuid"] {
        assert!(modules.iter().any(|m| m == want), "{want} not in core.img: {g}");
    }
    assert!(g["early_config"].as_str().unwrap().contains("set prefix=($root)/grub\n"), "{g}");
    // The kernel and initrd are inputs with their sha256, and the manifest lists them on the FAT.
    let k = &m["boot"]["kernel"];
    assert_eq!(k["name"], "vmlinuz-6.1.0-test", "{k}");
    assert_eq!(k["sha256"].as_str().unwrap().len(), 64);
    let fat = &m["boot"]["fat"][0];
    assert_eq!(fat["label"], "BOOT");
    let files = fat["files"].as_array().unwrap();
    for f in ["/vmlinuz-6.1.0-test", "/initrd.img-6.1.0-test", "/grub/grub.cfg", "/grub/i386-pc/normal.mod"] {
        assert!(files.iter().any(|e| e["path"] == f), "{f} not on the FAT /boot: {files:?}");
    }

    let sf = common::sfdisk_json(image);
    let p1 = &sf["partitiontable"]["partitions"][0];
    assert_eq!((p1["start"].as_u64(), p1["bootable"].as_bool()), (Some(2048), Some(true)), "{p1}");
    let fs = &partition_file(image, Some(0), &tmp.join("boot.fat"));
    let o = common::tool("fsck.fat", "dosfstools", &["-n", fs]);
    assert!(o.status.success(), "fsck.fat: {}", String::from_utf8_lossy(&o.stdout));
    let o = common::tool("minfo", "mtools", &["-i", fs, "::"]);
    let info = String::from_utf8_lossy(&o.stdout);
    let serial =
        info.lines().find_map(|l| l.strip_prefix("serial number: ")).expect("minfo prints the serial");
    let uuid = format!("{}-{}", &serial[..4], &serial[4..]).to_ascii_lowercase();
    assert_eq!(fat["volume_id"].as_str().unwrap().to_ascii_lowercase(), uuid);
    let o = common::tool("mtype", "mtools", &["-i", fs, "::/grub/grub.cfg"]);
    let cfg = String::from_utf8_lossy(&o.stdout);
    assert!(cfg.contains(&format!("search --no-floppy --fs-uuid --set=root {uuid}\n")), "{cfg}");
    assert!(
        cfg.contains(
            "linux '/vmlinuz-6.1.0-test' 'root=UUID=f222513b-ded1-49fa-b591-20ce86a2fe7f' 'console=ttyS0'"
        ),
        "{cfg}"
    );
    assert!(cfg.contains("initrd '/initrd.img-6.1.0-test'"), "{cfg}");
    let o = common::tool("mtype", "mtools", &["-i", fs, "::/vmlinuz-6.1.0-test"]);
    assert_eq!(o.stdout, b"kernel");
    let o = common::tool("mdir", "mtools", &["-i", fs, "-b", "::/grub/i386-pc"]);
    let ls = String::from_utf8_lossy(&o.stdout);
    for f in ["normal.mod", "linux.mod", "fat.mod", "command.lst"] {
        assert!(ls.contains(f), "{f} missing in {ls}");
    }

    // One byte of boot.img's kernel_sector (LE64 at 0x5c) broken: verify names it.
    let broken = tmp.join("broken.img");
    let o = common::tool(
        "cp",
        "coreutils",
        &["--sparse=always", image.to_str().unwrap(), broken.to_str().unwrap()],
    );
    assert!(o.status.success());
    let mut bytes = std::fs::read(&broken).unwrap();
    assert_eq!(bytes[0x5c], 1, "kernel_sector of the legacy+boot image");
    bytes[0x5c] = 3;
    std::fs::write(&broken, bytes).unwrap();
    let o = common::reprodisk(&["verify", broken.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let errors: Vec<_> =
        v["findings"].as_array().unwrap().iter().filter(|f| f["severity"] == "error").collect();
    assert!(errors.iter().any(|f| f["code"] == "grub-no-diskboot"), "{errors:?}");
}

/// GRUB's real i386-pc folder copied into `dir/pkgs` (a package root for `package_root`),
/// without the files in `drop` and with `replace`'s bytes instead of the real ones.
fn grub_package_root(dir: &Path, drop: &[&str], replace: &[(&str, Vec<u8>)]) -> PathBuf {
    let real = common::cache_root_with("usr/lib/grub/i386-pc/boot.img").join("usr/lib/grub/i386-pc");
    let root = dir.join("pkgs");
    let grub = root.join("usr/lib/grub/i386-pc");
    std::fs::create_dir_all(&grub).unwrap();
    for e in std::fs::read_dir(&real).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if drop.contains(&name.as_str()) {
            continue;
        }
        match replace.iter().find(|(n, _)| *n == name) {
            Some((_, bytes)) => std::fs::write(grub.join(&name), bytes).unwrap(),
            None => {
                std::fs::copy(&p, grub.join(&name)).unwrap();
            }
        }
    }
    root
}

/// Builds `spec`; asserts exit 2, an `error: ` line with every needle, and an output folder
/// with nothing under a final name (no image, no manifest).
fn refused(spec: &Path, out: &Path, needles: &[&str]) {
    let o = build_with_cache(spec, out, None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.lines().any(|l| l.starts_with("error: ")), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected `{n}` in: {err}");
    }
    for name in ["nixos.img", "manifest.json", "nix-support"] {
        assert!(!out.join(name).exists(), "a failed build left `{name}` in {}", out.display());
    }
}

/// A package root lacking part_msdos.mod, which core.img needs on MBR layouts: refused, naming
/// the module, the folder and the package, although the cache and the host have the module
/// (GRUB's files never mix two roots).
#[test]
fn package_root_lacking_a_module_is_refused() {
    for layout in ["legacy", "legacy+boot"] {
        let tmp = tempfile::tempdir().unwrap();
        let root = grub_package_root(tmp.path(), &["part_msdos.mod"], &[]);
        let s = spec_with(tmp.path(), layout, "package_root = \"pkgs\"\n");
        refused(
            &s,
            &tmp.path().join("out"),
            &["`part_msdos.mod`", &root.join("usr/lib/grub/i386-pc").display().to_string(), "grub-pc-bin"],
        );
    }
}

/// A core.img that does not fit. No spec can make the embedding region too small: every BIOS
/// layout fixes it (the 1 MiB MBR gap of legacy and legacy+boot, 2048 sectors of bios_grub on
/// legacy+gpt, sectors 34-2047 on hybrid), and GRUB 2.06 itself caps core.img at 0x78000 -
/// 0x9000 bytes (888 sectors) once loaded, so `setup::place_core`'s "needs N sectors but the
/// region has M" is reached only in its unit test. The nearest real path is a package root
/// whose modules make core.img larger than GRUB can load: refused before anything is written,
/// naming the module.
#[test]
fn core_img_too_big_for_grub_is_refused() {
    // 600 KiB that LZMA cannot shrink (xorshift bytes), in place of fat.mod.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..600 << 10)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    grub_package_root(tmp.path(), &[], &[("fat.mod", noise)]);
    let s = spec_with(tmp.path(), "legacy+boot", "package_root = \"pkgs\"\n");
    refused(
        &s,
        &tmp.path().join("out"),
        &["core.img is too big", "`fat.mod`, 614400 bytes", "grub-pc-bin 2.06"],
    );
}

/// An ext4 root GRUB 2.06 cannot read. No spec can ask for one: the spec has no ext4 feature
/// keys, and our writer sets only filetype, extents, flex_bg and (past 2^32 blocks) 64bit,
/// all in GRUB's set; `grub_bios::check_ext4_incompat`, which the build runs on the planned
/// superblock before writing, refuses anything else (its unit tests). What a CLI test can
/// hold: the root filesystem of every layout where GRUB reads ext4 carries only features
/// GRUB reads, as dumpe2fs (the oracle) sees them.
#[test]
fn root_ext4_has_only_features_grub_reads() {
    // GRUB 2.06's EXT2_DRIVER_SUPPORTED_INCOMPAT and EXT2_DRIVER_IGNORED_INCOMPAT, by dumpe2fs name,
    // and the compat and ro_compat features GRUB does not check.
    let incompat_ok =
        ["filetype", "extent", "flex_bg", "meta_bg", "64bit", "needs_recovery", "mmp", "metadata_csum_seed"];
    let other = [
        "has_journal",
        "ext_attr",
        "resize_inode",
        "dir_index",
        "sparse_super",
        "large_file",
        "huge_file",
        "dir_nlink",
        "extra_isize",
        "metadata_csum",
        "sparse_super2",
        "orphan_file",
        "orphan_present",
    ];
    for layout in ["legacy", "legacy+gpt"] {
        let tmp = tempfile::tempdir().unwrap();
        let s = spec(tmp.path(), layout);
        let img = common::build(&s, &tmp.path().join("out"));
        let fs = partition_file(&img, None, &tmp.path().join("root.ext4"));
        let o = common::tool("dumpe2fs", "e2fsprogs", &["-h", &fs]);
        let text = String::from_utf8_lossy(&o.stdout);
        let features = text
            .lines()
            .find_map(|l| l.strip_prefix("Filesystem features:"))
            .expect("dumpe2fs lists features");
        for f in features.split_whitespace() {
            assert!(
                incompat_ok.contains(&f) || other.contains(&f),
                "{layout}: GRUB 2.06 cannot read feature `{f}` ({features})"
            );
        }
    }
}
