//! The diff on hand-made images and region maps.

use super::*;
use crate::fields::{EXT4_SUPERBLOCK, FAT_DIR_ENTRY_CLUSTER_BYTES, GPT_ENTRY, MBR};
use crate::regions::FieldKind;
use crate::regions::Region;

const SB: u64 = 0x10_0000 + 1024;

/// A 3 MiB "disk": an MBR, partition 2 from 1 MiB with an ext4 superblock, a file's data,
/// and a FAT directory whose entries may be permuted.
fn map() -> RegionMap {
    let mut m = RegionMap::builder();
    m.add(Region::structure(0, None, &MBR));
    m.add(Region::new(0x10_0000, 0x10_0000, Label::new(Some(2), "ext4 filesystem")));
    m.add(Region::structure(SB, Some(2), &EXT4_SUPERBLOCK));
    m.add(Region::new(
        0x18_0000,
        4096,
        Label::new(Some(2), "file").with_detail("/EFI/BOOT/BOOTX64.EFI data"),
    ));
    m.add(
        Region::new(0x19_0000, 128, Label::new(Some(1), "FAT directory").with_detail("/loader/entries"))
            .with_layout(Layout::Entries { size: 32, ignore: &FAT_DIR_ENTRY_CLUSTER_BYTES }),
    );
    m.add(Region::new(0x1A_0000, 256, Label::new(None, "gpt entry array")).with_layout(Layout::Records {
        table: &GPT_ENTRY,
        stride: 128,
        first: 1,
        what: "entry",
    }));
    m.build()
}

fn image() -> Vec<u8> {
    let mut v = vec![0u8; 3 << 20];
    v[0x1FE] = 0x55;
    v[0x1FF] = 0xAA;
    for (i, e) in v[0x19_0000..0x19_0080].chunks_mut(32).enumerate() {
        e.fill(b'A' + i as u8);
    }
    v
}

fn run(a: &[u8], b: &[u8]) -> DiffReport {
    let m = map();
    diff(&a.to_vec(), &b.to_vec(), &m, &m).expect("in-memory images cannot fail to read")
}

#[test]
fn identical_images() {
    let a = image();
    let r = run(&a, &a);
    assert!(r.identical());
    assert_eq!(r.exit_code(), 0);
    assert!(r.groups.is_empty());
}

#[test]
fn exactly_the_changed_field_is_named_with_both_values() {
    let a = image();
    let mut b = a.clone();
    let at = (SB + 0x30) as usize;
    b[at..at + 4].copy_from_slice(&1_732_550_400u32.to_le_bytes());
    let r = run(&a, &b);
    assert_eq!(r.exit_code(), 1);
    assert_eq!(r.groups.len(), 1, "{}", r.render_text());
    let g = &r.groups[0];
    assert_eq!(g.name, "partition 2 ext4 superblock s_wtime");
    assert_eq!((g.a.as_deref(), g.b.as_deref()), (Some("0"), Some("1732550400")));
    assert_eq!(g.ranges, 1);
    assert!(r.unexplained.shown.is_empty());
}

#[test]
fn a_field_changed_in_separate_bytes_counts_once() {
    let a = image();
    let mut b = a.clone();
    b[(SB + 0x178) as usize] = 1;
    b[(SB + 0x17A) as usize] = 1;
    let r = run(&a, &b);
    assert_eq!(r.differing_ranges, 2);
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.groups[0].name, "partition 2 ext4 superblock s_kbytes_written");
    assert_eq!(r.groups[0].ranges, 1);
    assert_eq!(r.groups[0].bytes, 2);
    assert_eq!(r.groups[0].b.as_deref(), Some("65537"));
}

#[test]
fn file_data_records_and_entry_order() {
    let a = image();
    let mut b = a.clone();
    b[0x18_0010] ^= 0xff;
    b[0x18_0020] ^= 0xff;
    // Swap the first two directory entries: same entries, another order.
    let (e0, e1) = (0x19_0000usize, 0x19_0020usize);
    let tmp: Vec<u8> = b[e0..e0 + 32].to_vec();
    b.copy_within(e1..e1 + 32, e0);
    b[e1..e1 + 32].copy_from_slice(&tmp);
    // GPT entry 2's StartingLBA.
    b[0x1A_0000 + 128 + 0x20] = 0x22;
    let r = run(&a, &b);
    let names: Vec<&str> = r.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "partition 2 file /EFI/BOOT/BOOTX64.EFI data",
            "partition 1 FAT directory /loader/entries entry order",
            "gpt entry array entry 2 StartingLBA"
        ]
    );
    assert_eq!(r.groups[0].ranges, 2);
    assert_eq!(r.groups[2].b.as_deref(), Some("34"));
}

#[test]
fn entries_with_their_own_regions_inside_a_reordered_directory_are_an_order_change() {
    let a = image();
    let mut m = RegionMap::builder();
    m.add(
        Region::new(0x19_0000, 128, Label::new(Some(1), "FAT directory").with_detail("/loader/entries"))
            .with_layout(Layout::Entries { size: 32, ignore: &FAT_DIR_ENTRY_CLUSTER_BYTES }),
    );
    for i in 0..4u64 {
        m.add(Region::structure(0x19_0000 + 32 * i, Some(1), &crate::fields::FAT_DIR_ENTRY).with_label(
            Label::new(Some(1), "FAT directory entry").with_detail(format!("/loader/entries/{i}")),
        ));
    }
    let m = m.build();
    let mut b = a.clone();
    b.copy_within(0x19_0020..0x19_0040, 0x19_0000);
    b[0x19_0020..0x19_0040].copy_from_slice(&a[0x19_0000..0x19_0020]);
    let r = diff(&a, &b, &m, &m).expect("in-memory");
    let names: Vec<&str> = r.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["partition 1 FAT directory /loader/entries entry order"]);
    // A real change in one entry names the entry and its field.
    let mut c = a.clone();
    c[0x19_0020 + 0x1C] = 9;
    let r = diff(&a, &c, &m, &m).expect("in-memory");
    assert_eq!(r.groups[0].name, "partition 1 FAT directory entry /loader/entries/1 DIR_FileSize");
    assert_eq!(
        (r.groups[0].a.as_deref(), r.groups[0].b.as_deref()),
        (Some("1111638594"), Some("1111638537"))
    );
}

#[test]
fn a_reorder_that_moved_first_clusters_is_still_a_reorder() {
    let a = image();
    let mut b = a.clone();
    b.copy_within(0x19_0020..0x19_0040, 0x19_0000);
    b[0x19_0020..0x19_0040].copy_from_slice(&a[0x19_0000..0x19_0020]);
    // The files were written in the other order: each entry's first cluster changed too.
    b[0x19_0000 + 0x1A] = 7;
    b[0x19_0020 + 0x14] = 9;
    let r = run(&a, &b);
    assert_eq!(r.groups.len(), 1, "{}", r.render_text());
    assert_eq!(r.groups[0].name, "partition 1 FAT directory /loader/entries entry order");
}

#[test]
fn changed_entries_are_not_called_a_reorder() {
    let a = image();
    let mut b = a.clone();
    b[0x19_0005] = b'Z';
    let r = run(&a, &b);
    assert_eq!(r.groups[0].name, "partition 1 FAT directory /loader/entries entries");
}

#[test]
fn unexplained_bytes_are_hexdumped_and_nearby_runs_merge() {
    let a = image();
    let mut b = a.clone();
    b[0x2F_0000] = 0xAB;
    b[0x2F_0004] = 0xCD;
    b[0x2F_1000] = 0xEF;
    let r = run(&a, &b);
    assert!(r.groups.is_empty());
    assert_eq!(r.unexplained.ranges, 2);
    assert_eq!(r.unexplained.bytes, 3);
    let first = &r.unexplained.shown[0];
    assert_eq!((first.start, first.end, first.differing_bytes), (0x2F_0000, 0x2F_0005, 2));
    assert_eq!(first.a_hex, "00 00 00 00 00");
    assert_eq!(first.b_hex, "ab 00 00 00 cd");
}

#[test]
fn different_lengths_compare_the_tail_against_zeros() {
    let a = image();
    let mut b = a.clone();
    b.extend_from_slice(&[0u8; 4096]);
    let r = run(&a, &b);
    assert!(!r.identical());
    assert_eq!(r.differing_bytes, 0);
    assert_eq!(r.groups[0].name, "image length");
    assert_eq!((r.groups[0].a.as_deref(), r.groups[0].b.as_deref()), (Some("3145728"), Some("3149824")));
    let n = b.len();
    b[n - 1] = 7;
    let r = run(&a, &b);
    assert_eq!(r.unexplained.bytes, 1);
    assert_eq!(r.unexplained.shown[0].start, n as u64 - 1);
    // And the other way round.
    let r = run(&b, &a);
    assert_eq!(r.len_a, n as u64);
    assert_eq!(r.unexplained.bytes, 1);
}

#[test]
fn runs_across_chunk_boundaries_are_one_range() {
    let a = vec![0u8; 3 * CHUNK];
    let mut b = a.clone();
    b[CHUNK - 2..CHUNK + 3].fill(1);
    b[2 * CHUNK - 1] = 1;
    b[2 * CHUNK] = 1;
    let r = diff(&a, &b, &RegionMap::empty(), &RegionMap::empty()).expect("in-memory");
    assert_eq!(r.differing_ranges, 2);
    assert_eq!(r.differing_bytes, 7);
    let spans: Vec<_> = r.unexplained.shown.iter().map(|u| (u.start, u.end)).collect();
    assert_eq!(spans, [(CHUNK as u64 - 2, CHUNK as u64 + 3), (2 * CHUNK as u64 - 1, 2 * CHUNK as u64 + 1)]);
}

#[test]
fn labels_that_differ_between_the_images_are_both_named() {
    let a = vec![0u8; 8192];
    let mut b = a.clone();
    b[100] = 1;
    let mut ma = RegionMap::builder();
    ma.add(Region::new(0, 4096, Label::new(Some(1), "file").with_detail("/a data")));
    let mut mb = RegionMap::builder();
    mb.add(Region::new(0, 4096, Label::new(Some(1), "file").with_detail("/b data")));
    let r = diff(&a, &b, &ma.build(), &mb.build()).expect("in-memory");
    assert_eq!(r.groups[0].name, "partition 1 file /a data");
    assert_eq!(r.groups[0].label_b.as_deref(), Some("partition 1 file /b data"));
}

#[test]
fn many_groups_are_summarised_by_class() {
    let table_at = 0x1B_0000u64;
    let mut m = RegionMap::builder();
    m.add(Region::new(table_at, 256 * 100, Label::new(Some(2), "ext4 inode table")).with_layout(
        Layout::Records { table: &crate::fields::EXT4_INODE, stride: 256, first: 1, what: "inode" },
    ));
    let m = m.build();
    let a = image();
    let mut b = a.clone();
    for i in 0..100 {
        b[table_at as usize + 256 * i + 0x10] = 1; // i_mtime
        b[table_at as usize + 256 * i + 0x08] = 2; // i_atime
    }
    let r = diff(&a, &b, &m, &m).expect("in-memory");
    assert_eq!(r.groups.len(), 200);
    let classes: Vec<(&str, u64)> = r.classes.iter().map(|c| (c.name.as_str(), c.groups)).collect();
    assert_eq!(
        classes,
        [("partition 2 ext4 inode table i_atime", 100), ("partition 2 ext4 inode table i_mtime", 100)]
    );
    assert_eq!(r.groups[1].name, "partition 2 ext4 inode table inode 1 i_mtime");
    let text = r.render_text();
    assert!(
        text.contains("by class:\n  partition 2 ext4 inode table i_atime: 100 bytes in 100 places\n"),
        "{text}"
    );
    assert!(text.contains("first 64 of 200 groups:"), "{text}");
    assert_eq!(text.lines().count(), 2 + 3 + 1 + 64);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Every differing byte is counted once: in a group or as unexplained, whatever the
    /// maps (nested, overlapping, with fields, differing between A and B) and the changes.
    #[test]
    fn every_differing_byte_is_counted_once(
        flips in proptest::collection::vec((0usize..4096, 1u8..=255), 0..40),
        spans in proptest::collection::vec((0u64..4096, 1u64..1200, 0u8..4, proptest::bool::ANY), 0..10),
        extra in 0usize..300,
    ) {
        let a: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut b = a.clone();
        for (at, x) in flips {
            b[at] ^= x;
        }
        b.extend(std::iter::repeat_n(1u8, extra));
        let (mut ma, mut mb) = (RegionMap::builder(), RegionMap::builder());
        for (i, (start, len, kind, in_a)) in spans.into_iter().enumerate() {
            let r = Region::new(start, len, Label::new(Some(1), format!("r{i}")));
            let r = match kind {
                0 => r,
                1 => r.with_layout(Layout::Fields(&EXT4_SUPERBLOCK)),
                2 => r.with_layout(Layout::Records { table: &GPT_ENTRY, stride: 96, first: 0, what: "e" }),
                _ => r.with_layout(Layout::Entries { size: 32, ignore: &FAT_DIR_ENTRY_CLUSTER_BYTES }),
            };
            if in_a { ma.add(r) } else { mb.add(r) };
        }
        let r = diff(&a, &b, &ma.build(), &mb.build()).expect("in-memory");
        let explained: u64 = r.groups.iter().filter(|g| g.name != "image length").map(|g| g.bytes).sum();
        proptest::prop_assert_eq!(explained + r.unexplained.bytes, r.differing_bytes, "{}", r.render_text());
        proptest::prop_assert_eq!(r.identical(), a == b);
    }
}

#[test]
fn values_decode_by_kind() {
    let guid = [0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b];
    assert_eq!(format_value(FieldKind::Guid, &guid), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    assert_eq!(format_value(FieldKind::Uuid, &guid), "28732ac1-1ff8-d211-ba4b-00a0c93ec93b");
    assert_eq!(format_value(FieldKind::Hex, &[0x53, 0xef]), "0xef53");
    assert_eq!(format_value(FieldKind::BeHex, &[0xc0, 0x3b, 0x39, 0x98]), "0xc03b3998");
    assert_eq!(format_value(FieldKind::BeUint, &[0, 0, 1, 0]), "256");
    assert_eq!(format_value(FieldKind::Text, b"nixos\0\0\0"), "\"nixos\"");
    assert_eq!(format_value(FieldKind::Utf16, &[b'E', 0, b'S', 0, b'P', 0, 0, 0]), "\"ESP\"");
}

#[test]
fn human_and_json_renderings() {
    let a = image();
    let mut b = a.clone();
    let at = (SB + 0x30) as usize;
    b[at..at + 4].copy_from_slice(&1_732_550_400u32.to_le_bytes());
    b[0x1B8] = 0x5A;
    b[0x18_0000..0x18_0100].fill(0x11);
    b[0x2F_0000] = 0xAB;
    b.extend_from_slice(&[0u8; 512]);
    let r = run(&a, &b);
    insta::assert_snapshot!("diff_text", r.render_text());
    insta::assert_snapshot!("diff_json", r.to_json());
}
