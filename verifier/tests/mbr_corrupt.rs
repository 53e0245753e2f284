//! One-byte flips and crafted damage in the MBR and the extended chain give the exact error
//! or finding; loops in the chain end, truncated images fail cleanly.

#[path = "disk_support.rs"]
mod support;

use reprodisk_verifier::Error;
use reprodisk_verifier::disk::{self, Layout};
use reprodisk_verifier::mbr::{self, Mbr};
use support::*;

const REC: usize = mbr::OFF_PARTITION_RECORD;

/// A 16 MiB image made by sfdisk: partition 1 (bootable), an extended partition 2 holding
/// logical partitions 5 and 6. Made once per test binary.
fn base() -> Vec<u8> {
    static BASE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let dir = tempdir();
        let img = sparse(dir.path(), "m.img", 16 << 20);
        run_with_input(
            sfdisk().arg("-q").arg(&img),
            "label: dos\nlabel-id: 0x0badcafe\nstart=2048, size=4096, type=83, bootable\nstart=6144, size=20000, type=5\nstart=8192, size=2048, type=82\nstart=12288, size=4096, type=83\n",
        );
        read_bytes(&img)
    })
    .clone()
}

fn codes(m: &Mbr) -> Vec<&'static str> {
    m.findings.iter().map(|f| f.code).collect()
}

/// Byte offset of the EBR in front of logical partition 5 (the extended partition's start).
const EBR5: usize = 6144 * 512;
/// The EBR of logical partition 6, as sfdisk placed it.
fn ebr6(img: &[u8]) -> usize {
    let rel = u32::from_le_bytes(img[EBR5 + REC + 16 + 8..EBR5 + REC + 16 + 12].try_into().expect("4 bytes"));
    EBR5 + rel as usize * 512
}

#[test]
fn the_untouched_base_image_reads_cleanly() {
    let m = mbr::read(&base()).expect("reads");
    assert_eq!(codes(&m), Vec::<&str>::new());
    assert_eq!(m.partitions().map(|p| p.number).collect::<Vec<_>>(), [1, 2, 5, 6]);
}

#[test]
fn signature_flip() {
    let mut img = base();
    img[0x1fe] ^= 0x01;
    match mbr::read(&img) {
        Err(Error::Corrupt { at, what }) => {
            assert_eq!((at.structure.as_str(), at.offset), ("mbr", Some(0x1fe)));
            assert!(what.contains("aa55"), "{what}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Without 55 aa there is no table at all.
    assert_eq!(disk::open(&img).expect("opens").layout, Layout::None);
}

#[test]
fn boot_indicator_flip() {
    let mut img = base();
    img[REC] ^= 0x01; // 0x80 -> 0x81
    match mbr::read(&img) {
        Err(Error::Corrupt { at, what }) => {
            assert_eq!((at.structure.as_str(), at.offset), ("mbr partition record 1", Some(REC as u64)));
            assert!(what.contains("boot_indicator is 0x81"), "{what}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn chs_flip_is_a_finding() {
    let mut img = base();
    img[REC + 1] ^= 0x01; // starting head
    let m = mbr::read(&img).expect("reads");
    assert_eq!(codes(&m), ["mbr.chs.mismatch"]);
    assert_eq!(m.findings[0].location.structure, "mbr partition 1");
    assert!(m.findings[0].message.starts_with("starting chs"), "{}", m.findings[0].message);
}

#[test]
fn overlap_and_out_of_range() {
    let mut img = base();
    // Partition 1 grows into the extended area's logical partition 5; CHS left as they
    // were, so only the size's own findings and the CHS of the new end show.
    img[REC + 0xc..REC + 0x10].copy_from_slice(&7000u32.to_le_bytes());
    let m = mbr::read(&img).expect("reads");
    assert_eq!(codes(&m), ["mbr.chs.mismatch", "mbr.partition.overlap"]);
    assert_eq!(m.findings[1].location.structure, "mbr partition 5");

    let mut img = base();
    img[REC + 16 + 0xc..REC + 16 + 0x10].copy_from_slice(&40000u32.to_le_bytes());
    let m = mbr::read(&img).expect("reads");
    assert_eq!(codes(&m), ["mbr.partition.out-of-range", "mbr.chs.mismatch"]);
}

#[test]
fn ebr_pointing_to_itself_ends_the_chain() {
    let mut img = base();
    // Logical 6's link record points back at logical 5's EBR (relative LBA 0).
    let e6 = ebr6(&img);
    let link5 = img[EBR5 + REC + 16..EBR5 + REC + 32].to_vec();
    img[e6 + REC + 16..e6 + REC + 32].copy_from_slice(&link5);
    img[e6 + REC + 16 + 8..e6 + REC + 16 + 12].copy_from_slice(&0u32.to_le_bytes());
    let m = mbr::read(&img).expect("reads");
    assert_eq!(codes(&m), ["mbr.extended.loop"]);
    assert_eq!(m.logical.len(), 2);
}

#[test]
fn ebr_signature_flip_ends_the_chain() {
    let mut img = base();
    let e6 = ebr6(&img);
    img[e6 + 0x1ff] ^= 0xff;
    let m = mbr::read(&img).expect("reads");
    assert_eq!(codes(&m), ["mbr.extended.signature"]);
    assert_eq!(m.logical.len(), 1);
}

#[test]
fn extended_chain_past_the_end_of_the_image() {
    let mut img = base();
    img[EBR5 + REC + 16 + 8..EBR5 + REC + 16 + 12].copy_from_slice(&1_000_000u32.to_le_bytes());
    let m = mbr::read(&img).expect("reads");
    assert_eq!(codes(&m), ["mbr.extended.unreadable"]);
}

#[test]
fn truncated_images() {
    let img = base();
    assert!(matches!(mbr::read(&img[..300].to_vec()), Err(Error::Truncated { .. })));
    assert_eq!(disk::open(&img[..300].to_vec()).expect("opens").layout, Layout::None);
    // The table is whole but the partitions are cut off.
    let short = img[..4096 * 512].to_vec();
    let m = mbr::read(&short).expect("reads");
    assert!(codes(&m).contains(&"mbr.partition.out-of-range"), "{:?}", codes(&m));
    let d = disk::open(&short).expect("opens");
    assert!(d.partitions.iter().all(|p| p.start + p.len <= short.len() as u64));
}

#[test]
fn protective_record_not_covering_the_disk() {
    let dir = tempdir();
    let img = sparse(dir.path(), "p.img", 8 << 20);
    run(sgdisk().args(["-n", "1:2048:+1M"]).arg(&img));
    let mut b = read_bytes(&img);
    b[REC + 0xc..REC + 0x10].copy_from_slice(&1000u32.to_le_bytes());
    let m = mbr::read(&b).expect("reads");
    assert_eq!(codes(&m), ["mbr.protective.range", "mbr.chs.mismatch"]);
}

/// The overlaps-table finding on `img`, and `verify` reporting it as an error.
fn overlaps_table(img: &[u8], number: u32) -> String {
    let m = mbr::read(img).expect("reads");
    let f = m
        .findings
        .iter()
        .find(|f| f.code == "mbr.partition.overlaps-table")
        .unwrap_or_else(|| panic!("no overlaps-table finding: {:?}", codes(&m)));
    assert_eq!(f.location.structure, format!("mbr partition {number}"));
    let rep = reprodisk_verifier::glue::verify(&img, None, None, None);
    let errors: Vec<_> = rep
        .findings
        .iter()
        .filter(|f| f.severity == reprodisk_verifier::report::Severity::Error)
        .map(|f| f.message.clone())
        .collect();
    assert!(errors.iter().any(|m| m.contains("overlaps the partition table")), "{errors:?}");
    f.message.clone()
}

#[test]
fn a_partition_starting_at_lba_0_overlaps_the_mbr() {
    let mut img = base();
    img[REC + 8..REC + 12].copy_from_slice(&0u32.to_le_bytes());
    let what = overlaps_table(&img, 1);
    assert!(what.contains("starts at lba 0, on or before the MBR"), "{what}");
}

#[test]
fn a_logical_partition_starting_on_its_ebr_overlaps_it() {
    let mut img = base();
    // Logical 5's start is relative to its EBR: 0 puts it on the EBR itself.
    img[EBR5 + REC + 8..EBR5 + REC + 12].copy_from_slice(&0u32.to_le_bytes());
    let what = overlaps_table(&img, 5);
    assert!(what.contains("on or before its EBR at lba 6144"), "{what}");
}
