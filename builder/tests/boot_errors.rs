//! Bad boot inputs: each is an `error: ...` with exit code 2 and leaves nothing in the
//! output folder: no kernel in the root tree, an initrd that does not exist, a loader file
//! that is in no package root, a kernel too big for the ESP.

mod common;

use std::path::Path;
use std::process::Command;

/// A root tree with /boot/vmlinuz-6.1.0-50-amd64 of `kernel_bytes` bytes (0: no kernel).
fn root(dir: &Path, kernel_bytes: usize) {
    std::fs::create_dir_all(dir.join("root/boot")).unwrap();
    std::fs::create_dir_all(dir.join("root/etc")).unwrap();
    if kernel_bytes > 0 {
        std::fs::write(dir.join("root/boot/vmlinuz-6.1.0-50-amd64"), vec![0x4du8; kernel_bytes]).unwrap();
        std::fs::write(dir.join("root/boot/initrd.img-6.1.0-50-amd64"), b"initrd").unwrap();
    }
}

/// Builds `spec` in `dir` with the package cache at `cache`; returns (exit code, stderr).
fn build(dir: &Path, spec: &str, cache: &Path) -> (i32, String) {
    let spec = common::write(dir, "spec.toml", spec);
    let out = dir.join("out");
    let o = Command::new(common::BIN)
        .args(["build", spec.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .env("CI", "true")
        .env("REPRODISK_CACHE", cache)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "a failed build left {leftovers:?} in {}", out.display());
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn real_cache() -> std::path::PathBuf {
    let c = reprodisk::boot::inputs::cache_dir(|k| std::env::var(k).ok()).expect("a home folder");
    assert!(
        c.join("root/usr/lib/systemd/boot/efi/systemd-bootx64.efi").is_file(),
        "the package cache `{}` lacks systemd-boot: run .ci/fetch-packages",
        c.display()
    );
    c
}

fn expect(code_err: (i32, String), needles: &[&str]) {
    let (code, err) = code_err;
    assert_eq!(code, 2, "{err}");
    assert!(err.lines().any(|l| l.starts_with("error: ")), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected `{n}` in: {err}");
    }
}

const EFI: &str = "partition_table_type = \"efi\"\ndisk_size = 300\n[system]\nroot = \"root\"\n";

#[test]
fn no_kernel_says_where_it_looked() {
    let d = tempfile::tempdir().unwrap();
    root(d.path(), 0);
    expect(
        build(d.path(), EFI, &real_cache()),
        &["no kernel found", "/boot/vmlinuz-*", "/vmlinuz", "system.kernel"],
    );
}

#[test]
fn missing_initrd_names_the_path() {
    let d = tempfile::tempdir().unwrap();
    root(d.path(), 4096);
    let spec = format!("{EFI}initrd = \"/boot/initrd.img-none\"\n");
    expect(
        build(d.path(), &spec, &real_cache()),
        &["system.initrd = \"/boot/initrd.img-none\" does not exist"],
    );
}

#[test]
fn missing_loader_names_the_package() {
    let d = tempfile::tempdir().unwrap();
    root(d.path(), 4096);
    let empty = d.path().join("empty-cache");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(
        !Path::new("/usr/lib/systemd/boot/efi/systemd-bootx64.efi").exists(),
        "this host has systemd-boot-efi installed, so a missing loader cannot be simulated"
    );
    expect(
        build(d.path(), EFI, &empty),
        &["usr/lib/systemd/boot/efi/systemd-bootx64.efi", "systemd-boot-efi", ".ci/fetch-packages"],
    );
}

#[test]
fn kernel_too_big_for_the_esp_says_which_boot_size_fits() {
    let d = tempfile::tempdir().unwrap();
    root(d.path(), 5 << 20);
    // bootSize 9M ends the ESP at 10 MiB: a 2 MiB ESP for a 5 MiB kernel.
    let spec =
        "partition_table_type = \"efi\"\ndisk_size = 300\nboot_size = \"9M\"\n[system]\nroot = \"root\"\n";
    expect(build(d.path(), spec, &real_cache()), &["MiB missing", "set bootSize = \"", "END offset"]);
}
