//! The disk frame against the reference tools: layout detection, partition byte ranges,
//! and the filesystem sniffer agreeing with `blkid -p` on what mkfs.ext4/mke2fs/mkfs.vfat
//! made; the JSON report of a seed layout as a snapshot.

#[path = "disk_support.rs"]
mod support;

use reprodisk_verifier::bytes::ReadAt;
use reprodisk_verifier::disk::{self, Contents, Layout};
use reprodisk_verifier::gpt;
use std::path::Path;
use support::*;

/// blkid's view of the filesystem at `offset`, in the verifier's terms.
fn blkid_contents(img: &Path, offset: u64) -> Contents {
    let b = blkid_probe(img, &["-O", &offset.to_string()]);
    match b.get("TYPE").map(String::as_str) {
        Some(t @ ("ext2" | "ext3" | "ext4")) => Contents::Ext { version: leak(t) },
        Some("vfat") => Contents::Fat { version: leak(b.get("VERSION").expect("vfat has a VERSION")) },
        _ => Contents::Unknown,
    }
}

fn leak(s: &str) -> &'static str {
    match s {
        "ext2" => "ext2",
        "ext3" => "ext3",
        "ext4" => "ext4",
        "FAT12" => "FAT12",
        "FAT16" => "FAT16",
        "FAT32" => "FAT32",
        other => panic!("unexpected blkid value {other}"),
    }
}

#[test]
fn bare_filesystems_are_layout_none_and_sniffed_like_blkid() {
    let dir = tempdir();
    let cases: [(&str, &[&str], u64); 6] = [
        ("ext2", &["-t", "ext2"], 8),
        ("ext3", &["-t", "ext3"], 8),
        ("ext4", &["-t", "ext4"], 8),
        ("fat12", &["-F", "12"], 4),
        ("fat16", &["-F", "16"], 20),
        ("fat32", &["-F", "32"], 40),
    ];
    for (name, args, mib) in cases {
        let img = sparse(dir.path(), &format!("{name}.img"), mib << 20);
        if name.starts_with("ext") {
            run(tool("mke2fs", "e2fsprogs").args(["-q", "-F"]).args(args).arg(&img));
        } else {
            run(tool("mkfs.vfat", "dosfstools").args(args).arg(&img));
        }
        let r = image(&img);
        let d = disk::open(&r).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(d.layout, Layout::None, "{name}");
        assert_eq!(d.report().pttype, None);
        assert!(!blkid_probe(&img, &[]).contains_key("PTTYPE"));
        let p = &d.partitions[0];
        assert_eq!((p.number, p.start, p.len), (0, 0, r.len()));
        assert_eq!(p.contents, blkid_contents(&img, 0), "{name}");
        assert_ne!(p.contents, Contents::Unknown, "{name}");
    }
}

#[test]
fn partitions_are_byte_ranges_holding_what_blkid_sees() {
    let dir = tempdir();
    let img = sparse(dir.path(), "p.img", 48 << 20);
    run(sgdisk().args(["-n", "1:2048:+8M", "-t", "1:EF00", "-n", "2:0:+36M", "-n", "3:0:0"]).arg(&img));
    // As the seed does it: mkfs straight into the partition's byte range.
    run(tool("mkfs.vfat", "dosfstools").arg("--offset=2048").arg(&img).arg("8192"));
    let p2 = 2048 + 8 * 2048;
    run(tool("mke2fs", "e2fsprogs")
        .args(["-q", "-F", "-t", "ext4", "-E"])
        .arg(format!("offset={}", p2 * 512))
        .arg(&img)
        .arg("36864K"));
    let r = image(&img);
    let d = disk::open(&r).expect("opens");
    assert_eq!(d.layout, Layout::Gpt);
    let j = sfdisk_json(&img);
    for (p, s) in d.partitions.iter().zip(j["partitions"].as_array().expect("partitions")) {
        assert_eq!(s["start"].as_u64().map(|x| x * 512), Some(p.start));
        assert_eq!(s["size"].as_u64().map(|x| x * 512), Some(p.len));
        assert_eq!(p.contents, blkid_contents(&img, p.start), "partition {}", p.number);
        // The slice reads the partition's own bytes.
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];
        d.slice(p).read_exact_at(&mut a, 1024).expect("inside the partition");
        r.read_exact_at(&mut b, p.start + 1024).expect("inside the image");
        assert_eq!(a, b);
        assert!(d.slice(p).read_exact_at(&mut a, p.len - 8).is_err(), "reads stop at the partition's end");
    }
    assert_eq!(
        d.partitions.iter().map(|p| p.contents.clone()).collect::<Vec<_>>(),
        [Contents::Fat { version: "FAT12" }, Contents::Ext { version: "ext4" }, Contents::Unknown]
    );
}

#[test]
fn report_of_the_seed_efi_layout() {
    let dir = tempdir();
    let img = seed_gpt_layout(dir.path(), "efi", 64, 33, "F222513B-DED1-49FA-B591-20CE86A2FE7F");
    // parted and sgdisk leave the protective MBR's signature zero; the test pins it anyway so
    // the snapshot cannot depend on a tool version.
    let mut bytes = read_bytes(&img);
    bytes[0x1b8..0x1bc].fill(0);
    let d = disk::open(&bytes).expect("opens");
    let v = serde_json::to_value(d.report()).expect("the report serializes");
    let b = blkid_probe(&img, &[]);
    assert_eq!(v["pttype"], "gpt");
    assert_eq!(v["ptuuid"].as_str(), b.get("PTUUID").map(String::as_str));
    assert_eq!(v["partitions"][1]["unique_guid"], "F222513B-DED1-49FA-B591-20CE86A2FE7F");
    assert_eq!(v["partitions"][0]["type_name"], "EFI system partition");
    insta::assert_json_snapshot!("seed_efi_report", v);
}

#[test]
fn a_classic_mbr_in_front_of_a_stale_gpt_is_read_as_blkid_does() {
    let dir = tempdir();
    let img = sparse(dir.path(), "s.img", 16 << 20);
    run(sgdisk().args(["-n", "1:2048:+4M"]).arg(&img));
    // Write a dos table over sector 0 only, keeping the GPT headers behind it.
    run_with_input(
        sfdisk().args(["-q", "--wipe", "never", "--label", "dos"]).arg(&img),
        "start=2048, size=8192, type=83\n",
    );
    let r = image(&img);
    assert!(gpt::probe(&r).is_some(), "the stale gpt header is still there");
    let d = disk::open(&r).expect("opens");
    let b = blkid_probe(&img, &[]);
    assert_eq!(b.get("PTTYPE").map(String::as_str), Some("dos"));
    assert_eq!(d.layout, Layout::Mbr);
    assert_eq!(d.report().ptuuid.as_ref(), b.get("PTUUID"));
    assert_eq!(d.findings.iter().map(|f| f.code).collect::<Vec<_>>(), ["disk.stale-gpt"]);
}

#[test]
fn huge_sparse_disks_open_quickly_and_cap_the_protective_record() {
    let dir = tempdir();
    // 3 TiB: past what a protective record's 32-bit size can hold.
    let img = sparse(dir.path(), "huge.img", 3 << 40);
    run(sgdisk().args(["-n", "1:2048:+1G", "-n", "2:0:0"]).arg(&img));
    let r = image(&img);
    let t = std::time::Instant::now();
    let d = disk::open(&r).expect("opens");
    let elapsed = t.elapsed();
    // Only metadata is read: a few KiB, whatever the size.
    assert!(elapsed < std::time::Duration::from_secs(2), "open took {elapsed:?}");
    assert_eq!(d.layout, Layout::Gpt);
    let m = d.mbr.as_ref().expect("protective mbr");
    assert_eq!(m.protective_record().map(|p| p.size_in_lba), Some(u32::MAX));
    assert!(d.findings.is_empty(), "{:#?}", d.findings);
    let j = sfdisk_json(&img);
    assert_eq!(j["lastlba"], d.gpt.as_ref().expect("gpt").primary.last_usable_lba);
    let last = &j["partitions"][1];
    assert_eq!(last["start"].as_u64().map(|s| s * 512), Some(d.partitions[1].start));
    assert_eq!(last["size"].as_u64().map(|s| s * 512), Some(d.partitions[1].len));
}
