//! GRUB for BIOS through `reprodisk build`: what lands in the image, byte-identical rebuilds,
//! the manifest's record, and bad GRUB inputs refused with exit 2 and nothing left behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A root with a fake kernel and initrd in /boot: GRUB's files do not care what they are.
fn spec(dir: &Path, layout: &str) -> PathBuf {
    let boot = dir.join("root/boot");
    std::fs::create_dir_all(&boot).unwrap();
    std::fs::write(boot.join("vmlinuz-6.1.0-test"), b"kernel").unwrap();
    std::fs::write(boot.join("initrd.img-6.1.0-test"), b"initrd").unwrap();
    common::write(
        dir,
        "spec.toml",
        &format!(
            "partitionTableType = \"{layout}\"\ndiskSize = 64\nbootSize = \"16M\"\n[system]\nroot = \"root\"\nkernel_params = [\"console=ttyS0\"]\n"
        ),
    )
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
    for layout in ["legacy", "legacy+gpt", "hybrid"] {
        let tmp = tempfile::tempdir().unwrap();
        let s = spec(tmp.path(), layout);
        let a = common::build(&s, &tmp.path().join("a"));
        let b = common::build(&s, &tmp.path().join("b"));
        assert_eq!(common::sha256(&a), common::sha256(&b), "{layout}: two builds differ");

        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(tmp.path().join("a/manifest.json")).unwrap()).unwrap();
        let g = &m["grub_bios"];
        let first = if layout == "legacy" {
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
        // The verifier follows the chain; e2fsck is happy; debugfs sees GRUB's files.
        let o = common::reprodisk(&["verify", a.to_str().unwrap(), "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let f = v["findings"].as_array().unwrap();
        assert!(f.iter().any(|f| f["code"] == "grub-bios-chain"), "{layout}: {f:?}");
        assert!(!f.iter().any(|f| f["severity"] == "error"), "{layout}: {f:?}");
        let sf = common::sfdisk_json(&a);
        let parts = sf["partitiontable"]["partitions"].as_array().unwrap();
        let root = parts.last().unwrap();
        let (start, size) = (root["start"].as_u64().unwrap() * 512, root["size"].as_u64().unwrap() * 512);
        let fs = tmp.path().join("root.ext4");
        let o = common::tool(
            "dd",
            "coreutils",
            &[
                &format!("if={}", a.display()),
                &format!("of={}", fs.display()),
                "bs=1M",
                &format!("skip={}", start >> 20),
                &format!("count={}", size >> 20),
                "status=none",
            ],
        );
        assert!(o.status.success());
        let o =
            common::tool("debugfs", "e2fsprogs", &["-R", "cat /boot/grub/grub.cfg", fs.to_str().unwrap()]);
        let cfg = String::from_utf8_lossy(&o.stdout);
        assert!(
            cfg.contains("search --no-floppy --fs-uuid --set=root f222513b-ded1-49fa-b591-20ce86a2fe7f"),
            "{cfg}"
        );
        assert!(cfg.contains("linux '/boot/vmlinuz-6.1.0-test' 'root=UUID=f222513b-ded1-49fa-b591-20ce86a2fe7f' 'console=ttyS0'"), "{cfg}");
        let o =
            common::tool("debugfs", "e2fsprogs", &["-R", "ls -l /boot/grub/i386-pc", fs.to_str().unwrap()]);
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
