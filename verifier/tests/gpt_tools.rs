//! GPT reader against the reference tools: every value read equals what `sgdisk -p`,
//! `sgdisk -i N`, `sfdisk --json` and `blkid -p` report for images those tools made.

#[path = "disk_support.rs"]
mod support;

use reprodisk_verifier::disk::{self, Layout};
use reprodisk_verifier::gpt::{self, Attributes, Gpt};
use reprodisk_verifier::guid::{Guid, KNOWN_TYPES};
use reprodisk_verifier::lints::Severity;
use std::path::Path;
use support::*;

/// sfdisk's `attrs` string for an attribute word (util-linux gpt.c: names of bits 0-2,
/// then `GUID:` and the set bits 48-63 comma-separated).
fn sfdisk_attrs(a: &Attributes) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for (set, name) in [
        (a.required_partition, "RequiredPartition"),
        (a.no_block_io_protocol, "NoBlockIOProtocol"),
        (a.legacy_bios_bootable, "LegacyBIOSBootable"),
    ] {
        if set {
            parts.push(name.into());
        }
    }
    let bits: Vec<String> = (48..64).filter(|b| a.raw >> b & 1 == 1).map(|b| b.to_string()).collect();
    if !bits.is_empty() {
        parts.push(format!("GUID:{}", bits.join(",")));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Checks every field the verifier reads against sgdisk, sfdisk and blkid.
fn check_against_tools(img: &Path) -> Gpt {
    let r = image(img);
    let g = gpt::read(&r).unwrap_or_else(|e| panic!("{}: {e}", img.display()));
    let h = &g.primary;

    // sgdisk -p
    let p = run(sgdisk().arg("-p").arg(img));
    let disk_line = p.lines().next().expect("sgdisk -p prints a first line");
    let sectors: u64 = disk_line
        .split(": ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .expect("sector count");
    assert_eq!(g.disk_lbas, sectors, "disk size in sectors");
    assert_eq!(field(&p, "Sector size (logical):"), format!("{} bytes", g.sector_size));
    assert_eq!(Guid::parse(field(&p, "Disk identifier (GUID):")), Ok(h.disk_guid));
    assert_eq!(
        field(&p, "Partition table holds up to"),
        format!("{} entries", h.number_of_partition_entries)
    );
    let array_sectors = (u64::from(h.number_of_partition_entries) * u64::from(h.size_of_partition_entry))
        .div_ceil(g.sector_size);
    assert_eq!(
        field(&p, "Main partition table begins at sector"),
        format!("{} and ends at sector {}", h.partition_entry_lba, h.partition_entry_lba + array_sectors - 1)
    );
    assert_eq!(
        field(&p, "First usable sector is"),
        format!("{}, last usable sector is {}", h.first_usable_lba, h.last_usable_lba)
    );
    let rows: Vec<&str> =
        p.lines().skip_while(|l| !l.starts_with("Number")).skip(1).filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(rows.len(), g.entries.len(), "partition count\n{p}");
    for (row, e) in rows.iter().zip(&g.entries) {
        let t: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(t[0], e.index.to_string(), "{row}");
        assert_eq!(t[1], e.starting_lba.to_string(), "{row}");
        assert_eq!(t[2], e.ending_lba.to_string(), "{row}");
    }

    // sgdisk -i N, per partition
    for e in &g.entries {
        let i = run(sgdisk().arg(format!("--info={}", e.index)).arg(img));
        let code = field(&i, "Partition GUID code:");
        let (guid, name) = code.split_once(' ').expect("guid and name");
        assert_eq!(Guid::parse(guid), Ok(e.partition_type_guid));
        if let Some(n) = e.type_name {
            assert_eq!(name, format!("({n})"), "type name of partition {}", e.index);
        }
        assert_eq!(Guid::parse(field(&i, "Partition unique GUID:")), Ok(e.unique_partition_guid));
        assert!(field(&i, "First sector:").starts_with(&format!("{} ", e.starting_lba)));
        assert!(field(&i, "Last sector:").starts_with(&format!("{} ", e.ending_lba)));
        assert!(field(&i, "Partition size:").starts_with(&format!("{} sectors", e.sectors())));
        assert_eq!(field(&i, "Attribute flags:"), format!("{:016X}", e.attributes.raw));
        assert_eq!(field(&i, "Partition name:"), format!("'{}'", e.partition_name));
    }

    // sfdisk --json
    let j = sfdisk_json(img);
    assert_eq!(j["label"], "gpt");
    assert_eq!(j["id"].as_str().map(Guid::parse), Some(Ok(h.disk_guid)));
    assert_eq!(j["firstlba"], h.first_usable_lba);
    assert_eq!(j["lastlba"], h.last_usable_lba);
    assert_eq!(j["sectorsize"], g.sector_size);
    let parts = j["partitions"].as_array().expect("partitions array");
    assert_eq!(parts.len(), g.entries.len());
    for (sp, e) in parts.iter().zip(&g.entries) {
        let node = sp["node"].as_str().expect("node");
        assert!(node.ends_with(&e.index.to_string()), "{node} vs {}", e.index);
        assert_eq!(sp["start"], e.starting_lba);
        assert_eq!(sp["size"], e.sectors());
        assert_eq!(sp["type"].as_str().map(Guid::parse), Some(Ok(e.partition_type_guid)));
        assert_eq!(sp["uuid"].as_str().map(Guid::parse), Some(Ok(e.unique_partition_guid)));
        assert_eq!(sp["name"].as_str().unwrap_or(""), e.partition_name);
        assert_eq!(
            sp["attrs"].as_str().map(String::from),
            sfdisk_attrs(&e.attributes),
            "attrs of {}",
            e.index
        );
    }

    // blkid -p
    let b = blkid_probe(img, &[]);
    let d = disk::open(&r).expect("the disk opens");
    let rep = d.report();
    assert_eq!(d.layout, Layout::Gpt);
    assert_eq!(b.get("PTTYPE").map(String::as_str), rep.pttype);
    assert_eq!(b.get("PTUUID"), rep.ptuuid.as_ref());

    // sgdisk's own verification agrees that nothing is wrong, and so do we.
    let v = run(sgdisk().arg("-v").arg(img));
    assert!(v.contains("No problems found"), "{v}");
    let errors: Vec<_> = d.findings.iter().filter(|f| f.severity == Severity::Error).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let backup = g.backup.as_ref().expect("the backup header was read");
    assert_eq!(backup.my_lba, h.alternate_lba);
    assert_eq!(backup.alternate_lba, 1);
    assert_eq!(backup.disk_guid, h.disk_guid);
    g
}

#[test]
fn sgdisk_made_table_with_attributes_and_names() {
    let dir = tempdir();
    let img = sparse(dir.path(), "a.img", 8 << 20);
    run(sgdisk()
        .args(["-n", "1:2048:+1M", "-t", "1:EF00", "-c", "1:ESP"])
        .args([
            "-n",
            "2:0:+2M",
            "-t",
            "2:8300",
            "-c",
            "2:root fs",
            "-A",
            "2:set:2",
            "-A",
            "2:set:60",
            "-A",
            "2:set:0",
        ])
        .args(["-n", "3:34:2047", "-t", "3:EF02", "-c", "3:grub bios boot \u{e9}\u{4e2d}"])
        .args(["-n", "4:0:+1M", "-t", "4:8304", "-A", "4:set:1", "-A", "4:set:63"])
        .arg(&img));
    let g = check_against_tools(&img);
    assert_eq!(g.entries.len(), 4);
    let e2 = &g.entries[1];
    assert!(
        e2.attributes.required_partition
            && e2.attributes.legacy_bios_bootable
            && !e2.attributes.no_block_io_protocol
    );
    assert_eq!(e2.attributes.type_specific, 1 << (60 - 48));
    assert_eq!(g.entries[2].partition_name, "grub bios boot \u{e9}\u{4e2d}");
    // Partition 3 sits below 1 MiB, so it is reported as unaligned, as info only.
    let unaligned: Vec<_> = g
        .findings
        .iter()
        .filter(|f| f.code == "gpt.entry.unaligned")
        .map(|f| f.location.structure.as_str())
        .collect();
    assert_eq!(unaligned, ["gpt entry 3"]);
}

#[test]
fn seed_layouts_made_by_parted_and_sgdisk() {
    let dir = tempdir();
    let root = "F222513B-DED1-49FA-B591-20CE86A2FE7F";
    for layout in ["legacy+gpt", "efi", "efixbootldr", "hybrid"] {
        let img = seed_gpt_layout(dir.path(), layout, 160, 129, root);
        let g = check_against_tools(&img);
        // The seed's malformed --disk-guid: sgdisk writes this GUID, and so the documented one.
        assert_eq!(g.primary.disk_guid.to_string(), "97FD5997-F390-0B4A-A3F8-D106C1723AEA", "{layout}");
        assert_eq!(g.primary.disk_guid, reprodisk_verifier::ids::DISK_GUID);
    }
}

#[test]
fn known_type_names_match_sgdisk() {
    let dir = tempdir();
    let img = sparse(dir.path(), "types.img", (KNOWN_TYPES.len() as u64 + 2) << 20);
    let mut cmd = sgdisk();
    for (i, k) in KNOWN_TYPES.iter().enumerate() {
        let n = i + 1;
        cmd.args(["-n", &format!("{n}:0:+1M"), "-t", &format!("{n}:{}", k.guid)]);
    }
    run(cmd.arg(&img));
    let g = check_against_tools(&img);
    assert_eq!(g.entries.len(), KNOWN_TYPES.len());
    for (e, k) in g.entries.iter().zip(KNOWN_TYPES) {
        assert_eq!(e.type_name, Some(k.name));
    }
}

#[test]
fn corpus_style_4096_sector_header_is_detected() {
    // sgdisk cannot write a 4Kn table into a file, so move a 512-byte table: a GPT at byte
    // 4096 with sizes in 4096-byte sectors, written with our own CRCs.
    let mut img = vec![0u8; 64 * 4096];
    let lbas = (img.len() / 4096) as u64;
    let mut entry = [0u8; 128];
    entry[..16].copy_from_slice(&reprodisk_verifier::guid::LINUX_DATA.to_disk());
    entry[16..32].copy_from_slice(&reprodisk_verifier::ids::SEED_PARTITION_1.to_disk());
    entry[0x20..0x28].copy_from_slice(&8u64.to_le_bytes());
    entry[0x28..0x30].copy_from_slice(&(lbas - 10).to_le_bytes());
    let mut array = vec![0u8; 128 * 128];
    array[..128].copy_from_slice(&entry);
    let array_crc = crc32fast::hash(&array);
    let put_header = |img: &mut Vec<u8>, my: u64, alt: u64, arr: u64| {
        let mut h = [0u8; 92];
        h[..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[0x18..0x20].copy_from_slice(&my.to_le_bytes());
        h[0x20..0x28].copy_from_slice(&alt.to_le_bytes());
        h[0x28..0x30].copy_from_slice(&6u64.to_le_bytes());
        h[0x30..0x38].copy_from_slice(&(lbas - 7).to_le_bytes());
        h[0x38..0x48].copy_from_slice(&reprodisk_verifier::ids::DISK_GUID.to_disk());
        h[0x48..0x50].copy_from_slice(&arr.to_le_bytes());
        h[0x50..0x54].copy_from_slice(&128u32.to_le_bytes());
        h[0x54..0x58].copy_from_slice(&128u32.to_le_bytes());
        h[0x58..0x5c].copy_from_slice(&array_crc.to_le_bytes());
        let crc = crc32fast::hash(&h);
        h[0x10..0x14].copy_from_slice(&crc.to_le_bytes());
        let off = (my * 4096) as usize;
        img[off..off + 92].copy_from_slice(&h);
        let a = (arr * 4096) as usize;
        img[a..a + array.len()].copy_from_slice(&array);
    };
    put_header(&mut img, 1, lbas - 1, 2);
    put_header(&mut img, lbas - 1, 1, lbas - 5);
    let g = gpt::read(&img).expect("a 4Kn gpt reads");
    assert_eq!(g.sector_size, 4096);
    assert!(g.findings.iter().any(|f| f.code == "gpt.sector-size"), "{:#?}", g.findings);
    assert_eq!(g.entries.len(), 1);
    assert_eq!(g.entries[0].starting_lba, 8);
    assert!(g.backup.is_some(), "{:#?}", g.findings);
    let errors: Vec<_> = g.findings.iter().filter(|f| f.severity == Severity::Error).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The partition's byte range uses 4096-byte sectors.
    img[510] = 0x55;
    img[511] = 0xaa;
    let d = disk::open(&img).expect("opens");
    assert_eq!(d.sector_size, 4096);
    assert_eq!(d.partitions[0].start, 8 * 4096);
}
