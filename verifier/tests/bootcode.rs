//! The GRUB BIOS chain reader on a disk put together by hand from grub-pc-bin's boot.img and a
//! core.img made by `grub-mkimage` (the reference tool), then broken one byte at a time.

use reprodisk_verifier::bootcode;
use reprodisk_verifier::disk;
use reprodisk_verifier::report::Severity;
use std::path::PathBuf;
use std::process::Command;

fn grub_dir() -> PathBuf {
    let cache = std::env::var_os("REPRODISK_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache"));
        base.join("reprodisk")
    });
    let dir = cache.join("root/usr/lib/grub/i386-pc");
    assert!(dir.join("boot.img").exists(), "{} is missing: run `.ci/fetch-packages`", dir.display());
    dir
}

/// A 2 MiB MBR disk: one Linux partition from sector 2048, GRUB's boot.img in sector 0
/// pointing at sector 1, core.img from grub-mkimage in sectors 1.. with its blocklist at 2.
fn disk() -> Vec<u8> {
    let dir = grub_dir();
    let tmp = tempfile::tempdir().unwrap();
    let core = tmp.path().join("core.img");
    let o = Command::new("grub-mkimage")
        .args([
            "-O",
            "i386-pc",
            "-d",
            dir.to_str().unwrap(),
            "-o",
            core.to_str().unwrap(),
            "-p",
            "/boot/grub",
        ])
        .args(["biosdisk", "part_msdos", "ext2"])
        .output()
        .unwrap_or_else(|e| panic!("grub-mkimage: {e}: install the Debian package grub-common"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let core = std::fs::read(core).unwrap();
    let mut img = vec![0u8; 2 << 20];
    let boot = std::fs::read(dir.join("boot.img")).unwrap();
    img[..0x1b8].copy_from_slice(&boot[..0x1b8]);
    img[0x5c..0x64].copy_from_slice(&1u64.to_le_bytes());
    img[0x1b8..0x1bc].copy_from_slice(&0x1234_5678u32.to_le_bytes());
    let e = 0x1be;
    img[e + 4] = 0x83;
    img[e + 8..e + 12].copy_from_slice(&2048u32.to_le_bytes());
    img[e + 12..e + 16].copy_from_slice(&2048u32.to_le_bytes());
    img[0x1fe] = 0x55;
    img[0x1ff] = 0xaa;
    img[512..512 + core.len()].copy_from_slice(&core);
    img[512 + 0x1f4..512 + 0x1fc].copy_from_slice(&2u64.to_le_bytes());
    img
}

fn errors(img: &Vec<u8>) -> Vec<String> {
    let d = disk::open(img).unwrap();
    bootcode::findings(img, &d)
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| format!("{}: {}", f.code, f.message))
        .collect()
}

#[test]
fn intact_chain_is_followed() {
    let img = disk();
    let d = disk::open(&img).unwrap();
    let chain = bootcode::follow(&img, &d).unwrap().expect("a GRUB chain");
    assert_eq!(chain.kernel_sector, 1);
    assert_eq!(chain.blocks.len(), 1);
    assert_eq!(chain.blocks[0].0, 2);
    assert_eq!((chain.region.first, chain.region.last), (1, 2047));
    assert!(errors(&img).is_empty());
}

#[test]
fn kernel_sector_pointing_elsewhere_is_reported() {
    let mut img = disk();
    img[0x5c] = 3;
    let e = errors(&img);
    assert!(e.len() == 1 && e[0].starts_with("grub-no-diskboot"), "{e:?}");
    img[0x5c] = 0;
    img[0x5d] = 0x10;
    let e = errors(&img);
    assert!(e.len() == 1 && e[0].starts_with("grub-kernel-sector"), "{e:?}");
}

#[test]
fn blocklist_start_off_by_one_is_reported() {
    let mut img = disk();
    img[512 + 0x1f4] = 3;
    let e = errors(&img);
    assert!(e.len() == 1 && e[0].starts_with("grub-blocklist") && e[0].contains("expected 2"), "{e:?}");
}

#[test]
fn blocklist_running_into_the_partition_is_reported() {
    let mut img = disk();
    img[512 + 0x1fd] = 0x08;
    let e = errors(&img);
    assert!(e.len() == 1 && e[0].contains("outside the gap"), "{e:?}");
}

#[test]
fn broken_decompressor_is_reported() {
    let mut img = disk();
    img[1024] = 0;
    let e = errors(&img);
    assert!(e.len() == 1 && e[0].starts_with("grub-no-decompressor"), "{e:?}");
}

#[test]
fn no_grub_no_findings() {
    let mut img = disk();
    img[..0x1b8].fill(0);
    let d = disk::open(&img).unwrap();
    assert!(bootcode::findings(&img, &d).is_empty());
}

const CFG: &str = "search --no-floppy --fs-uuid --set=root f222513b-ded1-49fa-b591-20ce86a2fe7f\n\
    \tlinux '/boot/vmlinuz' 'root=UUID=f222513b-ded1-49fa-b591-20ce86a2fe7f' 'console=ttyS0'\n";

#[test]
fn grub_cfg_uuids_known() {
    let uuids = ["F222513B-DED1-49FA-B591-20CE86A2FE7F".to_string()];
    assert!(bootcode::grub_cfg_findings(CFG, "cfg", &uuids).is_empty());
}

#[test]
fn grub_cfg_uuid_one_digit_off_is_reported() {
    let uuids = ["f222513b-ded1-49fa-b591-20ce86a2fe7f".to_string()];
    let bad = CFG.replacen("root=UUID=f222513b", "root=UUID=f222513c", 1);
    let f = bootcode::grub_cfg_findings(&bad, "cfg", &uuids);
    assert!(
        f.len() == 1 && f[0].code == "grub-cfg-uuid" && f[0].message.contains("line 2 (root=UUID=)"),
        "{f:?}"
    );
    let bad = CFG.replacen("root f222513b", "root f222513c", 1);
    let f = bootcode::grub_cfg_findings(&bad, "cfg", &uuids);
    assert!(f.len() == 1 && f[0].message.contains("line 1 (search --fs-uuid)"), "{f:?}");
}
