//! MBR reader against the reference tools: partitions, boot flags and disk signature as
//! `sfdisk --json` and `blkid -p` report them, CHS as fdisk's expert listing shows it, boot code against GRUB's own boot.img and sha256sum.

#[path = "disk_support.rs"]
mod support;

use reprodisk_verifier::disk::{self, Contents, Layout};
use reprodisk_verifier::gpt;
use reprodisk_verifier::mbr::{self, BootCode, Chs, Mbr, MbrKind};
use std::path::Path;
use support::*;

fn parse_chs(s: &str) -> Chs {
    let v: Vec<u32> = s.split('/').map(|x| x.parse().expect("fdisk prints numbers")).collect();
    Chs { cylinder: v[0] as u16, head: v[1] as u8, sector: v[2] as u8 }
}

/// Checks the MBR read from `img` against sfdisk, fdisk and blkid; returns it.
fn check_against_tools(img: &Path) -> Mbr {
    let r = image(img);
    let m = mbr::read(&r).unwrap_or_else(|e| panic!("{}: {e}", img.display()));
    let parts: Vec<_> = m.partitions().collect();

    let j = sfdisk_json(img);
    assert_eq!(j["label"], "dos");
    assert_eq!(j["id"], format!("0x{:08x}", m.unique_mbr_disk_signature));
    let sp = j["partitions"].as_array().expect("partitions");
    assert_eq!(sp.len(), parts.len(), "{j:#}");
    for (s, p) in sp.iter().zip(&parts) {
        let node = s["node"].as_str().expect("node");
        assert!(node.ends_with(&format!("img{}", p.number)), "{node} vs partition {}", p.number);
        assert_eq!(s["start"], p.starting_lba, "start of {node}");
        assert_eq!(s["size"], p.size_in_lba, "size of {node}");
        assert_eq!(s["type"], format!("{:x}", p.os_type), "type of {node}");
        assert_eq!(s["bootable"].as_bool().unwrap_or(false), p.is_bootable(), "boot flag of {node}");
    }

    // fdisk's expert listing shows the raw CHS fields and the boot indicator byte.
    let x = run_with_input(tool("fdisk", "fdisk").arg(img), "x\np\nq\n");
    let rows: Vec<&str> = x
        .lines()
        .skip_while(|l| !l.starts_with("Device"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(rows.len(), parts.len(), "{x}");
    for (row, p) in rows.iter().zip(&parts) {
        let chs: Vec<&str> = row
            .split_whitespace()
            .filter(|t| t.matches('/').count() == 2 && t.chars().all(|c| c.is_ascii_digit() || c == '/'))
            .collect();
        assert_eq!(parse_chs(chs[0]), p.starting_chs, "start chs: {row}");
        assert_eq!(parse_chs(chs[1]), p.ending_chs, "end chs: {row}");
        assert_eq!(row.split_whitespace().nth(1) == Some("*"), p.is_bootable(), "{row}");
    }
    // Tables written by the tools are consistent: no CHS, range or overlap findings.
    assert!(m.findings.is_empty(), "{:#?}", m.findings);

    let b = blkid_probe(img, &[]);
    let d = disk::open(&r).expect("opens");
    let rep = d.report();
    assert_eq!(b.get("PTTYPE").map(String::as_str), rep.pttype);
    assert_eq!(b.get("PTUUID"), rep.ptuuid.as_ref());
    m
}

#[test]
fn sfdisk_table_with_extended_chain_and_boot_flag() {
    let dir = tempdir();
    let img = sparse(dir.path(), "m.img", 64 << 20);
    run_with_input(
        sfdisk().arg("-q").arg(&img),
        "label: dos\nlabel-id: 0x12345678\n\
         start=2048, size=4096, type=83, bootable\n\
         start=6144, size=60000, type=5\n\
         start=8192, size=2048, type=82\n\
         start=12288, size=4096, type=c\n\
         start=20480, size=30000, type=83\n\
         start=67584, size=2048, type=ef\n",
    );
    let m = check_against_tools(&img);
    assert_eq!(m.unique_mbr_disk_signature, 0x1234_5678);
    assert_eq!(m.kind, MbrKind::Classic);
    assert_eq!(m.boot_code, BootCode::Empty);
    assert_eq!(m.logical.iter().map(|p| p.number).collect::<Vec<_>>(), [5, 6, 7]);
    let r = image(&img);
    let d = disk::open(&r).expect("opens");
    assert_eq!(d.layout, Layout::Mbr);
    assert_eq!(d.partition(2).map(|p| &p.contents), Some(&Contents::Extended));
    assert_eq!(d.partition(6).map(|p| p.start), Some(12288 * 512));
}

#[test]
fn seed_legacy_layouts_made_by_parted() {
    let dir = tempdir();
    for (name, script) in [
        ("legacy", "mklabel msdos mkpart primary ext4 1MiB 100%"),
        (
            "legacy+boot",
            "mklabel msdos mkpart primary fat32 1MiB 257MiB set 1 boot on mkpart primary ext4 257MiB 100%",
        ),
    ] {
        let img = sparse(dir.path(), &format!("{name}.img"), 300 << 20);
        run(parted().arg("--script").arg(&img).arg("--").args(script.split(' ')));
        let m = check_against_tools(&img);
        assert_eq!(m.partitions().next().map(|p| p.is_bootable()), Some(name == "legacy+boot"));
    }
}

#[test]
fn chs_saturates_past_cylinder_1023_as_fdisk_writes_it() {
    let dir = tempdir();
    // 10 GiB sparse: past 1024 x 255 x 63 sectors, so the second partition's CHS saturates.
    let img = sparse(dir.path(), "big.img", 10 << 30);
    run_with_input(
        sfdisk().arg("-q").arg(&img),
        "label: dos\nstart=2048, size=4096, type=83\nstart=18000000, type=83\n",
    );
    let m = check_against_tools(&img);
    assert_eq!(m.partition_record[1].starting_chs, Chs { cylinder: 1023, head: 254, sector: 63 });
}

#[test]
fn protective_and_hybrid_mbrs_from_sgdisk() {
    let dir = tempdir();
    let img = sparse(dir.path(), "g.img", 16 << 20);
    run(sgdisk().args(["-n", "1:2048:+2M", "-t", "1:EF00", "-n", "2:0:+4M", "-t", "2:8300"]).arg(&img));
    let r = image(&img);
    let m = mbr::read(&r).expect("protective mbr");
    assert_eq!(m.kind, MbrKind::Protective);
    let pr = m.protective_record().expect("0xee record");
    assert_eq!((pr.starting_lba, u64::from(pr.size_in_lba)), (1, (16 << 20) / 512 - 1));
    assert!(m.findings.is_empty(), "{:#?}", m.findings);

    // Turn it hybrid: partition 2 also described by an MBR record, as `sgdisk -h` does.
    run(sgdisk().args(["-h", "2"]).arg(&img));
    let r = image(&img);
    let m = mbr::read(&r).expect("hybrid mbr");
    assert_eq!(m.kind, MbrKind::Hybrid);
    let g = gpt::read(&r).expect("gpt");
    assert!(gpt::check_protective_mbr(&g, Some(&m)).is_empty());
    let legacy: Vec<_> = m.partitions().filter(|p| p.os_type != mbr::OS_TYPE_GPT_PROTECTIVE).collect();
    assert_eq!(legacy.len(), 1);
    assert_eq!(legacy[0].starting_lba, g.entries[1].starting_lba);
    assert_eq!(u64::from(legacy[0].size_in_lba), g.entries[1].sectors());
    let d = disk::open(&r).expect("opens");
    assert_eq!(d.layout, Layout::Gpt);
    assert_eq!(d.partitions.len(), 2);
}

#[test]
fn grub_boot_img_is_identified_with_its_core_sector() {
    let boot_img = Path::new("/usr/lib/grub/i386-pc/boot.img");
    assert!(
        boot_img.is_file(),
        "{} is missing: install the Debian package `grub-pc-bin`",
        boot_img.display()
    );
    let boot = read_bytes(boot_img);
    let dir = tempdir();
    let img = sparse(dir.path(), "grub.img", 8 << 20);
    run(parted()
        .arg("--script")
        .arg(&img)
        .args(["--", "mklabel", "msdos", "mkpart", "primary", "ext4", "1MiB", "100%"]));
    // What grub-bios-setup does to sector 0: boot.img's first 440 bytes, kernel_sector = the
    // LBA of core.img (here the sector after the MBR), boot_drive 0xff.
    let mut bytes = read_bytes(&img);
    bytes[..440].copy_from_slice(&boot[..440]);
    bytes[0x5c..0x64].copy_from_slice(&1u64.to_le_bytes());
    std::fs::write(&img, &bytes).expect("writable");
    let m = check_against_tools(&img);
    assert_eq!(m.boot_code, BootCode::Grub { kernel_sector: 1, boot_drive: 0xff });

    // Any other code is named by its sha256, as sha256sum computes it.
    let mut other = bytes.clone();
    other[..440].iter_mut().enumerate().for_each(|(i, b)| *b = (i * 7 + 3) as u8);
    std::fs::write(dir.path().join("code.bin"), &other[..440]).expect("writable");
    let sum = run(tool("sha256sum", "coreutils").arg(dir.path().join("code.bin")));
    let want = sum.split_whitespace().next().expect("a digest").to_string();
    assert_eq!(mbr::identify_boot_code(&other[..512]), BootCode::Other { sha256: want });
}
