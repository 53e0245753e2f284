//! What lands on the ESP, read back with mtools from a built image: systemd-boot's and GRUB
//! EFI's files byte-identical to the package cache, the kernel and initrd identical to the root
//! tree's, the config texts naming the right IDs; `installBootLoader = false` writes an empty,
//! fsck-clean ESP.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn cache_root() -> PathBuf {
    let c =
        reprodisk::boot::inputs::cache_dir(|k| std::env::var(k).ok()).expect("a home folder").join("root");
    assert!(c.join("usr/lib/systemd/boot/efi/systemd-bootx64.efi").is_file(), "run .ci/fetch-packages first");
    c
}

/// Builds an efi image whose root has a small kernel and initrd; returns (image, ESP as a file).
fn build(dir: &Path, extra: &str) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir.join("root/boot")).unwrap();
    std::fs::write(dir.join("root/boot/vmlinuz-6.1.0-50-amd64"), vec![0x4du8; 300_000]).unwrap();
    std::fs::write(dir.join("root/boot/initrd.img-6.1.0-50-amd64"), vec![0x1fu8; 100_000]).unwrap();
    let spec = format!(
        "partition_table_type = \"efi\"\ndisk_size = 80\nboot_size = \"40M\"\n{extra}\n[system]\nroot = \"root\"\nkernel_params = [\"console=ttyS0\"]\n"
    );
    let spec = common::write(dir, "spec.toml", &spec);
    let img = common::build(&spec, &dir.join("out"));
    // The ESP: 8 MiB to 41 MiB.
    let esp = dir.join("esp.img");
    let data = std::fs::read(&img).unwrap();
    std::fs::write(&esp, &data[8 << 20..41 << 20]).unwrap();
    let o = common::tool("fsck.fat", "dosfstools", &["-n", esp.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    (img, esp)
}

fn mread(esp: &Path, path: &str) -> Vec<u8> {
    let o = Command::new("mtype")
        .args(["-i", esp.to_str().unwrap(), &format!("::{path}")])
        .env("MTOOLS_SKIP_CHECK", "1")
        .output();
    let o = o.unwrap_or_else(|e| panic!("mtype (Debian package mtools): {e}"));
    assert!(o.status.success(), "mtype {path}: {}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

#[test]
fn systemd_boot_files() {
    let d = tempfile::tempdir().unwrap();
    let (_, esp) = build(d.path(), "");
    let loader = std::fs::read(cache_root().join("usr/lib/systemd/boot/efi/systemd-bootx64.efi")).unwrap();
    assert_eq!(mread(&esp, "/EFI/systemd/systemd-bootx64.efi"), loader);
    assert_eq!(mread(&esp, "/EFI/BOOT/BOOTX64.EFI"), loader);
    assert_eq!(mread(&esp, "/vmlinuz-6.1.0-50-amd64"), vec![0x4du8; 300_000]);
    assert_eq!(mread(&esp, "/initrd.img-6.1.0-50-amd64"), vec![0x1fu8; 100_000]);
    assert_eq!(
        String::from_utf8(mread(&esp, "/loader/loader.conf")).unwrap(),
        "timeout 1\ndefault reprodisk.conf\neditor no\nconsole-mode keep\n"
    );
    let entry = String::from_utf8(mread(&esp, "/loader/entries/reprodisk.conf")).unwrap();
    assert!(
        entry.contains("linux /vmlinuz-6.1.0-50-amd64\n")
            && entry.contains("initrd /initrd.img-6.1.0-50-amd64\n"),
        "{entry}"
    );
    assert!(
        entry.contains("options root=UUID=f222513b-ded1-49fa-b591-20ce86a2fe7f console=ttyS0\n"),
        "{entry}"
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path().join("out/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["boot"]["inputs"][0]["package"], "systemd-boot-efi");
    assert_eq!(
        m["boot"]["inputs"][0]["sha256"],
        common::sha256(&cache_root().join("usr/lib/systemd/boot/efi/systemd-bootx64.efi"))
    );
    assert_eq!(m["boot"]["esp"]["loader_path"], "\\EFI\\systemd\\systemd-bootx64.efi");
    assert_eq!(m["not_written"], serde_json::json!([]));
}

#[test]
fn grub_efi_files() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("root/boot")).unwrap();
    std::fs::write(d.path().join("root/boot/vmlinuz-6.1.0-50-amd64"), vec![0x4du8; 300_000]).unwrap();
    let spec = common::write(
        d.path(),
        "spec.toml",
        "partition_table_type = \"efi\"\ndisk_size = 80\nboot_size = \"40M\"\n[system]\nroot = \"root\"\nbootloader = \"grub\"\n",
    );
    let img = common::build(&spec, &d.path().join("out"));
    let data = std::fs::read(&img).unwrap();
    let esp = d.path().join("esp.img");
    std::fs::write(&esp, &data[8 << 20..41 << 20]).unwrap();
    let grub = std::fs::read(cache_root().join("usr/lib/grub/x86_64-efi/monolithic/grubx64.efi")).unwrap();
    assert_eq!(mread(&esp, "/EFI/BOOT/BOOTX64.EFI"), grub);
    let cfg = String::from_utf8(mread(&esp, "/EFI/debian/grub.cfg")).unwrap();
    let o = common::tool("blkid", "util-linux", &["-p", "-s", "UUID", "-o", "value", esp.to_str().unwrap()]);
    let uuid = String::from_utf8_lossy(&o.stdout).trim().to_ascii_lowercase();
    assert!(cfg.contains(&format!("search --no-floppy --fs-uuid --set=root {uuid}\n")), "{uuid}: {cfg}");
    assert!(cfg.contains("linux '/vmlinuz-6.1.0-50-amd64' 'root=UUID="), "{cfg}");
    assert!(!cfg.contains("initrd"), "no initrd in the root, none in the config: {cfg}");
}

#[test]
fn no_boot_loader_still_writes_the_esp() {
    let d = tempfile::tempdir().unwrap();
    let (_, esp) = build(d.path(), "install_boot_loader = false");
    let bytes = std::fs::read(&esp).unwrap();
    let fat = reprodisk_verifier::fat::Fat::open(&bytes).unwrap();
    assert!(fat.walk().unwrap().nodes.is_empty(), "the ESP is empty");
    let o = common::tool("blkid", "util-linux", &["-p", "-s", "LABEL", "-o", "value", esp.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "ESP");
}
