//! Property tests over random valid specs (layout x disk size x bootSize): partitions are
//! aligned as the seed's parted aligns them, do not overlap, lie in the usable area, the GPT
//! CRCs check out (computed here with an independent bitwise CRC-32), and the same spec gives
//! the same bytes.

use proptest::prelude::*;
use reprodisk::format::raw::Image;
use reprodisk::layout::{self, Layout, Plan, Role, TableKind};
use reprodisk::ptable;
use reprodisk::spec::Spec;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const MIB_SECTORS: u64 = 2048;

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), bit by bit.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn read_at(f: &mut std::fs::File, offset: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.read_exact(&mut v).unwrap();
    v
}

/// Checks one GPT header (and its array) at `lba`; returns its array for comparison.
fn check_gpt_header(f: &mut std::fs::File, lba: u64, total: u64, plan: &Plan) -> Vec<u8> {
    let h = read_at(f, lba * 512, 512);
    assert_eq!(&h[0..8], b"EFI PART");
    assert_eq!(le32(&h, 0x0c), 92, "header size");
    let mut copy = h[..92].to_vec();
    copy[0x10..0x14].fill(0);
    assert_eq!(crc32(&copy), le32(&h, 0x10), "header CRC at LBA {lba}");
    assert_eq!(le64(&h, 0x18), lba, "my LBA");
    assert_eq!(le64(&h, 0x20), if lba == 1 { total - 1 } else { 1 }, "alternate LBA");
    assert_eq!(le64(&h, 0x28), 34, "first usable");
    assert_eq!(le64(&h, 0x30), total - 34, "last usable");
    assert_eq!(&h[0x38..0x48], &plan.disk_guid.unwrap().to_gpt_bytes());
    let array_lba = le64(&h, 0x48);
    assert_eq!(array_lba, if lba == 1 { 2 } else { total - 33 });
    assert_eq!((le32(&h, 0x50), le32(&h, 0x54)), (128, 128), "128 entries of 128 bytes");
    let array = read_at(f, array_lba * 512, 128 * 128);
    assert_eq!(crc32(&array), le32(&h, 0x58), "array CRC at LBA {lba}");
    for p in &plan.partitions {
        let e = &array[(p.number as usize - 1) * 128..p.number as usize * 128];
        let g = p.gpt.as_ref().unwrap();
        assert_eq!(&e[0..16], &g.type_guid.to_gpt_bytes());
        assert_eq!(&e[16..32], &g.partition_guid.to_gpt_bytes());
        assert_eq!((le64(e, 32), le64(e, 40), le64(e, 48)), (p.start_lba, p.end_lba, g.attributes));
    }
    array
}

fn write_image(dir: &Path, name: &str, plan: &Plan) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut img = Image::create(&path, plan.disk_bytes).unwrap();
    ptable::write_tables(plan, &mut img.writer()).unwrap();
    img.commit().unwrap()
}

fn check(plan: &Plan) {
    let total = plan.total_sectors();
    let (lo, hi) = match plan.table {
        TableKind::Gpt => (34, total - 34),
        TableKind::Mbr => (1, total - 1),
        TableKind::None => {
            assert!(plan.partitions.is_empty());
            assert_eq!((plan.root_offset, plan.root_bytes), (0, plan.disk_bytes));
            return;
        }
    };
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for p in &plan.partitions {
        assert!(
            lo <= p.start_lba && p.start_lba <= p.end_lba && p.end_lba <= hi,
            "partition {} {}..={} outside {lo}..={hi}",
            p.number,
            p.start_lba,
            p.end_lba
        );
        let hybrid_bios = plan.layout == Layout::Hybrid && p.role == Role::BiosBoot;
        if hybrid_bios {
            // The seed's `mkpart no-fs 0 1024KiB`, as parted places it.
            assert_eq!((p.start_lba, p.end_lba), (34, 2048));
        } else {
            assert_eq!(p.start_lba % MIB_SECTORS, 0, "partition {} start", p.number);
            let last = p.role == Role::Root;
            let end_ok = (p.end_lba + 1) % MIB_SECTORS == 0 || (last && p.end_lba == hi);
            assert!(end_ok, "partition {} end {}", p.number, p.end_lba);
        }
        ranges.push((p.start_lba, p.end_lba));
    }
    ranges.sort();
    for w in ranges.windows(2) {
        assert!(w[0].1 < w[1].0, "overlap {:?}", w);
    }
    let root = plan.root().unwrap();
    assert_eq!(Some(root.number), plan.root_partition);
    assert_eq!((plan.root_offset, plan.root_bytes), (root.start_lba * 512, root.sectors() * 512));
}

fn layouts() -> impl Strategy<Value = Layout> {
    prop::sample::select(Layout::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_specs_give_sound_tables(layout in layouts(), disk_mib in 1u64..1500, boot_mib in 1u64..400, extra_bytes in 0u64..(1 << 20)) {
        let boot = format!("{}", (boot_mib << 20) - extra_bytes.min((boot_mib << 20) - 1));
        let v = serde_json::json!({"partitionTableType": layout.name(), "diskSize": disk_mib, "bootSize": boot});
        let spec = Spec::from_value(v, Path::new("."), None).unwrap();
        // Too-small combinations are refused with an error; they are tested elsewhere.
        let plan = layout::plan(&spec, None);
        prop_assume!(plan.is_ok());
        let plan = plan.unwrap();
        prop_assert_eq!(plan.disk_bytes, disk_mib << 20);
        check(&plan);

        let dir = tempfile::tempdir().unwrap();
        let a = write_image(dir.path(), "a.img", &plan);
        let b = write_image(dir.path(), "b.img", &plan);
        let mut fa = std::fs::File::open(&a).unwrap();
        let total = plan.total_sectors();
        if plan.table == TableKind::Gpt {
            let primary = check_gpt_header(&mut fa, 1, total, &plan);
            let backup = check_gpt_header(&mut fa, total - 1, total, &plan);
            prop_assert_eq!(primary, backup);
            let mbr = read_at(&mut fa, 446, 66);
            prop_assert_eq!(mbr[4], 0xee, "protective MBR type");
            prop_assert_eq!(le32(&mbr, 8), 1);
            prop_assert_eq!(u64::from(le32(&mbr, 12)), (total - 1).min(u64::from(u32::MAX)));
        }
        if plan.table == TableKind::Mbr {
            let mbr = read_at(&mut fa, 440, 72);
            prop_assert_eq!(le32(&mbr, 0), plan.mbr_disk_signature.unwrap());
            prop_assert_eq!(&mbr[70..72], &[0x55, 0xaa]);
            for p in &plan.partitions {
                let e = &mbr[6 + 16 * (p.number as usize - 1)..][..16];
                let m = p.mbr.as_ref().unwrap();
                prop_assert_eq!(e[0], if m.bootable { 0x80 } else { 0 });
                prop_assert_eq!(e[4], m.system_id);
                prop_assert_eq!((u64::from(le32(e, 8)), u64::from(le32(e, 12))), (p.start_lba, p.sectors()));
            }
        }
        // Same spec, same bytes: the table regions are equal, and the rest of both files is
        // holes (a few KiB allocated), which read as zeros.
        let mut fb = std::fs::File::open(&b).unwrap();
        let tail = plan.disk_bytes.saturating_sub(64 << 10);
        let head_len = (64usize << 10).min(plan.disk_bytes as usize);
        prop_assert_eq!(read_at(&mut fa, 0, head_len), read_at(&mut fb, 0, head_len));
        prop_assert_eq!(read_at(&mut fa, tail, (plan.disk_bytes - tail) as usize), read_at(&mut fb, tail, (plan.disk_bytes - tail) as usize));
        for f in [&a, &b] {
            let m = std::fs::metadata(f).unwrap();
            prop_assert_eq!(m.len(), plan.disk_bytes);
            prop_assert!(m.blocks() * 512 <= 256 << 10, "{} bytes allocated", m.blocks() * 512);
        }
    }
}
