//! The seed-command comparison: runs make-disk-image's own parted and sgdisk lines on a scratch
//! file, builds the same spec with reprodisk, and compares both tables as `sfdisk --json`
//! reads them. The one deliberate difference: on legacy+gpt the seed leaves partition 2 at
//! 970C694F-... (it sets rootGPUID on a partition 3 that does not exist), we give it rootGPUID.
//! MBR disk signatures differ too: parted draws a random one, ours is derived.

mod common;

use std::path::Path;
use std::process::Command;

const ROOT: &str = "F222513B-DED1-49FA-B591-20CE86A2FE7F";
const P2: &str = "970C694F-AFD0-4B99-B750-CDB7A329AB6F";

/// The seed's `partitionDiskScript` and deterministic sgdisk line for `layout`.
fn seed_script(layout: &str, boot_mib: u64) -> String {
    let b = format!("{boot_mib}MiB");
    let sg = format!(
        "sgdisk --disk-guid=97FD5997-D90B-4AA3-8D16-C1723AEA73C --partition-guid=1:1C06F03B-704E-4657-B9CD-681A087A2FDC --partition-guid=2:{} {} \"$img\"",
        if layout == "efi" { ROOT } else { P2 },
        if layout == "efi" { String::new() } else { format!("--partition-guid=3:{ROOT}") },
    );
    match layout {
        "legacy" => "parted --script \"$img\" -- mklabel msdos mkpart primary ext4 1MiB 100% print".into(),
        "legacy+boot" => format!(
            "parted --script \"$img\" -- mklabel msdos mkpart primary fat32 1MiB {b} set 1 boot on mkpart primary ext4 {b} 100% print"
        ),
        "legacy+gpt" => format!(
            "parted --script \"$img\" -- mklabel gpt mkpart no-fs 1MiB 2MiB set 1 bios_grub on mkpart primary ext4 2MiB 100% align-check optimal 2 print\n{sg}"
        ),
        "efi" => format!(
            "parted --script \"$img\" -- mklabel gpt mkpart ESP fat32 8MiB {b} set 1 boot on align-check optimal 1 mkpart primary ext4 {b} 100% align-check optimal 2 print\n{sg}"
        ),
        "efixbootldr" => format!(
            "parted --script \"$img\" -- mklabel gpt mkpart ESP fat32 8MiB 100MiB set 1 boot on align-check optimal 1 mkpart BOOT fat32 100MiB {b} set 2 bls_boot on align-check optimal 2 mkpart ROOT ext4 {b} 100% align-check optimal 3 print\n{sg}"
        ),
        "hybrid" => format!(
            "parted --script \"$img\" -- mklabel gpt mkpart ESP fat32 8MiB {b} set 1 boot on align-check optimal 1 mkpart no-fs 0 1024KiB set 2 bios_grub on mkpart primary ext4 {b} 100% align-check optimal 3 print\n{sg}"
        ),
        _ => unreachable!("only partitioned layouts are compared"),
    }
}

fn run_seed(dir: &Path, layout: &str, disk_mib: u64, boot_mib: u64) -> serde_json::Value {
    common::tool("parted", "parted", &["--version"]);
    common::tool("sgdisk", "gdisk", &["--version"]);
    let img = dir.join("seed.img");
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(disk_mib << 20).unwrap();
    drop(f);
    let script = format!("set -e\n{}\n", seed_script(layout, boot_mib));
    let o = Command::new("sh").arg("-c").arg(&script).env("img", &img).output().unwrap();
    assert!(
        o.status.success(),
        "seed script failed for {layout}:\n{script}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    common::sfdisk_json(&img)
}

/// The fields both tables must agree on.
fn table_view(v: &serde_json::Value) -> serde_json::Value {
    let t = &v["partitiontable"];
    let parts: Vec<serde_json::Value> = t["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| serde_json::json!({"start": p["start"], "size": p["size"], "type": p["type"], "uuid": p["uuid"], "name": p["name"], "bootable": p["bootable"]}))
        .collect();
    let id = if t["label"] == "gpt" { t["id"].clone() } else { serde_json::Value::Null };
    serde_json::json!({"label": t["label"], "id": id, "firstlba": t["firstlba"], "lastlba": t["lastlba"], "partitions": parts})
}

fn compare(layout: &str, disk_mib: u64, boot_size: &str, boot_mib: u64) {
    let dir = tempfile::tempdir().unwrap();
    let seed = table_view(&run_seed(dir.path(), layout, disk_mib, boot_mib));
    let spec = common::write(
        dir.path(),
        "spec.json",
        &format!(
            r#"{{"partitionTableType": "{layout}", "diskSize": {disk_mib}, "bootSize": "{boot_size}", "installBootLoader": false}}"#
        ),
    );
    let image = common::build(&spec, &dir.path().join("out"));
    let ours_full = common::sfdisk_json(&image);
    let mut ours = table_view(&ours_full);
    if layout == "legacy+gpt" {
        assert_eq!(ours["partitions"][1]["uuid"], ROOT, "the root partition carries rootGPUID");
        assert_eq!(seed["partitions"][1]["uuid"], P2, "the seed leaves 970C694F on its root partition");
        ours["partitions"][1]["uuid"] = serde_json::Value::String(P2.into());
    }
    if layout.starts_with("legacy") && layout != "legacy+gpt" {
        assert_eq!(ours_full["partitiontable"]["id"], "0xa0f285fb", "derived MBR disk signature");
    }
    assert_eq!(ours, seed, "{layout}, {disk_mib} MiB, bootSize {boot_size}");
}

#[test]
fn legacy() {
    // The root filesystem needs about 5 MiB (1024 journal blocks plus metadata), so the
    // smallest disks here leave it room; under ~205 MiB parted gives unaligned GPT ends.
    for mib in [20, 150, 300] {
        compare("legacy", mib, "256M", 257);
    }
}

#[test]
fn legacy_boot() {
    compare("legacy+boot", 300, "256M", 257);
    compare("legacy+boot", 40, "16M", 17);
}

#[test]
fn legacy_gpt() {
    for mib in [10, 24, 150, 300, 1000] {
        compare("legacy+gpt", mib, "256M", 257);
    }
}

#[test]
fn efi() {
    compare("efi", 300, "256M", 257);
    compare("efi", 1000, "256M", 257);
    compare("efi", 60, "9M", 10);
    compare("efi", 120, "32M", 33);
}

#[test]
fn efixbootldr() {
    compare("efixbootldr", 300, "256M", 257);
    compare("efixbootldr", 200, "120M", 121);
}

#[test]
fn hybrid() {
    compare("hybrid", 300, "256M", 257);
    compare("hybrid", 17, "8M", 9);
    compare("hybrid", 700, "512M", 513);
}

/// sgdisk -v and fdisk -l read our images without complaint, and fdisk agrees on the table type.
#[test]
fn reference_readers_accept_our_images() {
    for layout in ["legacy", "legacy+boot", "legacy+gpt", "efi", "efixbootldr", "hybrid"] {
        let dir = tempfile::tempdir().unwrap();
        let spec = common::write(
            dir.path(),
            "spec.json",
            &format!(r#"{{"partitionTableType": "{layout}", "diskSize": 300}}"#),
        );
        let image = common::build(&spec, &dir.path().join("out"));
        let img = image.to_str().unwrap();
        // sfdisk reads back exactly what `plan --json` promised.
        let plan = common::reprodisk(&["plan", spec.to_str().unwrap(), "--json"]);
        let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
        let table = common::sfdisk_json(&image);
        let read = table["partitiontable"]["partitions"].as_array().unwrap();
        let planned = plan["plan"]["partitions"].as_array().unwrap();
        assert_eq!(read.len(), planned.len(), "{layout}");
        for (r, p) in read.iter().zip(planned) {
            assert_eq!(r["start"], p["start_lba"], "{layout}");
            assert_eq!(
                r["size"].as_u64().unwrap(),
                p["end_lba"].as_u64().unwrap() - p["start_lba"].as_u64().unwrap() + 1,
                "{layout}"
            );
            if p["gpt"].is_object() {
                assert_eq!(r["type"], p["gpt"]["type_guid"], "{layout}");
                assert_eq!(r["uuid"], p["gpt"]["partition_guid"], "{layout}");
                assert_eq!(r["name"], p["gpt"]["name"], "{layout}");
            } else {
                assert_eq!(
                    r["type"].as_str().unwrap(),
                    format!("{:x}", p["mbr"]["system_id"].as_u64().unwrap()),
                    "{layout}"
                );
                assert_eq!(
                    r["bootable"].as_bool().unwrap_or(false),
                    p["mbr"]["bootable"].as_bool().unwrap(),
                    "{layout}"
                );
            }
        }
        let v = common::tool("sgdisk", "gdisk", &["-v", img]);
        let out = String::from_utf8_lossy(&v.stdout);
        if layout.starts_with("legacy") && layout != "legacy+gpt" {
            // sgdisk converts MBR disks in memory and reports no GPT problems either.
            assert!(v.status.success(), "{layout}: {out}");
        } else {
            assert!(
                v.status.success() && out.contains("No problems found"),
                "{layout}: sgdisk -v says:\n{out}"
            );
        }
        let f = common::tool("fdisk", "fdisk", &["-l", img]);
        let out = String::from_utf8_lossy(&f.stdout);
        let err = String::from_utf8_lossy(&f.stderr);
        assert!(f.status.success() && err.trim().is_empty(), "{layout}: fdisk -l: {err}");
        let label = if layout.starts_with("legacy") && layout != "legacy+gpt" {
            "Disklabel type: dos"
        } else {
            "Disklabel type: gpt"
        };
        assert!(out.contains(label), "{layout}: {out}");
    }
}
