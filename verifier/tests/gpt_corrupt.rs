//! One-byte flips and crafted damage in every GPT structure give the exact error variant or
//! finding; truncated images and absurd entry counts end in an error without big reads.

#[path = "disk_support.rs"]
mod support;

use reprodisk_verifier::bytes::ReadAt;
use reprodisk_verifier::disk::{self, Layout};
use reprodisk_verifier::gpt::{self, Gpt};
use reprodisk_verifier::{Error, Result};
use std::cell::Cell;
use support::*;

const SS: usize = 512;

/// A 4 MiB image with two partitions, made by sgdisk once per test binary.
fn base() -> Vec<u8> {
    static BASE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let dir = tempdir();
        let img = sparse(dir.path(), "c.img", 4 << 20);
        run(sgdisk().args(["-n", "1:2048:+1M", "-c", "1:one", "-n", "2:0:+1M", "-c", "2:two"]).arg(&img));
        read_bytes(&img)
    })
    .clone()
}

fn last_lba(img: &[u8]) -> usize {
    img.len() / SS - 1
}

fn u64_at(img: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(img[off..off + 8].try_into().expect("8 bytes"))
}

fn restamp_both(img: &mut [u8]) {
    restamp(img, 1);
    let last = last_lba(img);
    restamp(img, last);
}

fn corrupt_err(r: Result<Gpt>) -> (String, Option<u64>, String) {
    match r {
        Err(Error::Corrupt { at, what }) => (at.structure, at.offset, what),
        other => panic!("expected Error::Corrupt, got {other:?}"),
    }
}

fn codes(g: &Gpt) -> Vec<&'static str> {
    g.findings.iter().map(|f| f.code).collect()
}

#[test]
fn the_untouched_base_image_has_no_findings() {
    let img = base();
    let g = gpt::read(&img).expect("reads");
    assert_eq!(codes(&g), Vec::<&str>::new());
}

#[test]
fn primary_header_crc_flip() {
    let mut img = base();
    img[SS + 0x10] ^= 0x01;
    let (s, off, what) = corrupt_err(gpt::read(&img));
    assert_eq!((s.as_str(), off), ("gpt header (primary)", Some(SS as u64 + 0x10)));
    assert!(what.contains("header_crc32"), "{what}");
}

#[test]
fn primary_header_body_flip_breaks_its_crc() {
    let mut img = base();
    img[SS + 0x38] ^= 0x80; // disk_guid
    let (_, off, what) = corrupt_err(gpt::read(&img));
    assert_eq!(off, Some(SS as u64 + 0x10));
    assert!(what.contains("header_crc32"), "{what}");
}

#[test]
fn primary_signature_flip() {
    let mut img = base();
    img[SS] ^= 0x20;
    let (s, _, what) = corrupt_err(gpt::read(&img));
    assert_eq!(s, "gpt header (primary)");
    assert!(what.contains("EFI PART"), "{what}");
    // The protective MBR still asks for a GPT, so opening the disk fails the same way
    // instead of pretending it is an MBR disk.
    assert!(matches!(disk::open(&img), Err(Error::Corrupt { .. })));
}

#[test]
fn primary_array_flip() {
    let mut img = base();
    img[2 * SS + 0x38] ^= 0x01; // partition 1's name
    let (s, off, what) = corrupt_err(gpt::read(&img));
    assert_eq!((s.as_str(), off), ("gpt partition entry array (primary)", Some(2 * SS as u64)));
    assert!(what.contains("partition_entry_array_crc32"), "{what}");
}

#[test]
fn backup_header_flip_is_a_finding() {
    let mut img = base();
    let last = last_lba(&img);
    img[last * SS + 0x38] ^= 0x01;
    let g = gpt::read(&img).expect("the primary is intact");
    assert_eq!(codes(&g), ["gpt.backup.header-crc"]);
    assert!(g.backup.is_none());
}

#[test]
fn backup_signature_flip_is_a_finding() {
    let mut img = base();
    let last = last_lba(&img);
    img[last * SS + 3] ^= 0x01;
    assert_eq!(codes(&gpt::read(&img).expect("reads")), ["gpt.backup.signature"]);
}

#[test]
fn backup_array_flip_is_a_finding() {
    let mut img = base();
    let last = last_lba(&img);
    let arr = u64_at(&img, last * SS + 0x48) as usize;
    img[arr * SS + 0x20] ^= 0x01;
    assert_eq!(codes(&gpt::read(&img).expect("reads")), ["gpt.backup.array-crc"]);
}

#[test]
fn backup_array_that_differs_with_valid_crcs() {
    let mut img = base();
    let last = last_lba(&img);
    let arr = u64_at(&img, last * SS + 0x48) as usize;
    img[arr * SS + 0x38] ^= 0x01;
    restamp(&mut img, last);
    let g = gpt::read(&img).expect("reads");
    assert_eq!(codes(&g), ["gpt.backup.field-mismatch", "gpt.backup.array-differs"]);
    assert!(g.findings[0].message.starts_with("partition_entry_array_crc32"), "{}", g.findings[0].message);
}

#[test]
fn overlapping_entries() {
    let mut img = base();
    // Partition 2 starts inside partition 1 (lba 2048-4095), in both arrays.
    for arr in [2, u64_at(&img, last_lba(&img) * SS + 0x48) as usize] {
        img[arr * SS + 128 + 0x20..arr * SS + 128 + 0x28].copy_from_slice(&3000u64.to_le_bytes());
    }
    restamp_both(&mut img);
    let g = gpt::read(&img).expect("reads");
    assert_eq!(codes(&g), ["gpt.entry.unaligned", "gpt.entry.overlap"]);
    assert_eq!(g.findings[1].location.structure, "gpt entry 2");
}

#[test]
fn entry_outside_the_usable_range_and_reversed() {
    let mut img = base();
    let backup_arr = u64_at(&img, last_lba(&img) * SS + 0x48) as usize;
    let last_usable = u64_at(&img, SS + 0x30);
    for arr in [2, backup_arr] {
        let e = arr * SS + 128;
        img[e + 0x28..e + 0x30].copy_from_slice(&(last_usable + 5).to_le_bytes());
        let e = arr * SS;
        img[e + 0x20..e + 0x28].copy_from_slice(&4096u64.to_le_bytes());
        img[e + 0x28..e + 0x30].copy_from_slice(&2048u64.to_le_bytes());
    }
    restamp_both(&mut img);
    let g = gpt::read(&img).expect("reads");
    assert_eq!(codes(&g), ["gpt.entry.reversed", "gpt.entry.out-of-range"]);
    assert_eq!(g.findings[1].location.structure, "gpt entry 2");
}

#[test]
fn header_fields_that_make_the_header_unreadable() {
    let cases: [(usize, &[u8], &str); 5] = [
        (0x18, &5u64.to_le_bytes(), "my_lba"),
        (0x54, &100u32.to_le_bytes(), "size_of_partition_entry"),
        (0x54, &384u32.to_le_bytes(), "size_of_partition_entry"),
        (0x0c, &0u32.to_le_bytes(), "header_size"),
        (0x0c, &600u32.to_le_bytes(), "header_size"),
    ];
    for (off, bytes, field) in cases {
        let mut img = base();
        img[SS + off..SS + off + bytes.len()].copy_from_slice(bytes);
        if field != "header_size" {
            restamp(&mut img, 1);
        }
        let (_, at, what) = corrupt_err(gpt::read(&img));
        assert!(what.starts_with(field), "{field}: {what}");
        assert_eq!(at, Some((SS + off) as u64), "{field}");
    }
}

#[test]
fn revision_2_is_unsupported() {
    let mut img = base();
    img[SS + 0x0a..SS + 0x0c].copy_from_slice(&2u16.to_le_bytes());
    restamp(&mut img, 1);
    assert!(matches!(gpt::read(&img), Err(Error::Unsupported { .. })));
}

/// A reader of a huge, mostly zero image that remembers the largest read asked of it.
struct Huge {
    head: Vec<u8>,
    len: u64,
    largest: Cell<usize>,
}

impl ReadAt for Huge {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.largest.set(self.largest.get().max(buf.len()));
        buf.fill(0);
        if let Some(src) = self.head.get(offset as usize..) {
            let n = src.len().min(buf.len());
            buf[..n].copy_from_slice(&src[..n]);
        }
        Ok(())
    }
}

#[test]
fn absurd_entry_counts_fail_without_big_reads() {
    for count in [u32::MAX, (gpt::MAX_ARRAY_BYTES / 128) as u32 + 1] {
        let mut head = base()[..34 * SS].to_vec();
        head[SS + 0x50..SS + 0x54].copy_from_slice(&count.to_le_bytes());
        restamp(&mut head, 1);
        let r = Huge { head, len: 1 << 40, largest: Cell::new(0) };
        let e = gpt::read(&r).expect_err("too many entries");
        assert!(matches!(&e, Error::Unsupported { .. }), "{e}");
        assert!(e.to_string().contains(&count.to_string()), "{e}");
        assert!(r.largest.get() <= 4096, "read {} bytes at once", r.largest.get());
    }
}

#[test]
fn an_array_past_the_end_of_the_image_is_truncated() {
    let mut img = base();
    let near_end = last_lba(&img) as u64 - 3;
    img[SS + 0x48..SS + 0x50].copy_from_slice(&near_end.to_le_bytes());
    restamp(&mut img, 1);
    assert!(matches!(gpt::read(&img), Err(Error::Truncated { .. })));
}

#[test]
fn truncated_images() {
    let img = base();
    // Shorter than the primary header.
    assert!(matches!(gpt::read(&img[..700].to_vec()), Err(Error::Truncated { .. })));
    // The primary array cut short.
    assert!(matches!(gpt::read(&img[..10 * SS].to_vec()), Err(Error::Truncated { .. })));
    // The primary whole, the backup gone: readable, with findings.
    let short = img[..64 * SS].to_vec();
    let g = gpt::read(&short).expect("the primary is whole");
    assert_eq!(
        codes(&g),
        [
            "gpt.header.alternate-lba",
            "gpt.header.usable-range",
            "gpt.entry.past-end",
            "gpt.entry.past-end",
            "gpt.backup.missing"
        ]
    );
    let d = disk::open(&short).expect("opens");
    assert_eq!(d.layout, Layout::Gpt);
    assert!(d.partitions.iter().all(|p| p.start + p.len <= short.len() as u64));
}

#[test]
fn a_gpt_without_protective_mbr_is_a_finding() {
    let mut img = base();
    img[..SS].fill(0);
    let d = disk::open(&img).expect("opens");
    assert_eq!(d.layout, Layout::Gpt);
    assert_eq!(d.findings.iter().map(|f| f.code).collect::<Vec<_>>(), ["gpt.pmbr.missing"]);
}

#[test]
fn the_largest_array_of_identical_entries_reports_in_bounded_time_and_memory() {
    let dir = tempdir();
    let img = sparse(dir.path(), "big.img", 24 << 20);
    run(sgdisk().args(["-n", "1:10240:+1M"]).arg(&img));
    let mut b = read_bytes(&img);
    // Grow both arrays to 32768 entries of 128 bytes, the largest the reader accepts
    // (4 MiB, 8192 sectors; sgdisk itself takes half a minute to write one), every entry
    // a copy of partition 1.
    let last = last_lba(&b);
    let (n, arr_lbas) = (32768u32, 8192usize);
    let backup_arr = last - arr_lbas;
    for (h, arr) in [(1, 2), (last, backup_arr)] {
        let o = h * SS;
        b[o + 0x28..o + 0x30].copy_from_slice(&(2 + arr_lbas as u64).to_le_bytes());
        b[o + 0x30..o + 0x38].copy_from_slice(&(backup_arr as u64 - 1).to_le_bytes());
        b[o + 0x48..o + 0x50].copy_from_slice(&(arr as u64).to_le_bytes());
        b[o + 0x50..o + 0x54].copy_from_slice(&n.to_le_bytes());
    }
    let entry = b[2 * SS..2 * SS + 128].to_vec();
    for arr in [2, backup_arr] {
        for i in 0..n as usize {
            b[arr * SS + i * 128..arr * SS + (i + 1) * 128].copy_from_slice(&entry);
        }
    }
    restamp_both(&mut b);
    let t = std::time::Instant::now();
    let g = gpt::read(&b).expect("reads");
    assert!(t.elapsed() < std::time::Duration::from_secs(5), "took {:?}", t.elapsed());
    assert_eq!(g.entries.len(), 32768);
    let count = |c: &str| g.findings.iter().filter(|f| f.code == c).count();
    // 32767 of each, capped: 64 kept and one summary.
    assert_eq!(count("gpt.entry.overlap"), 65);
    assert_eq!(count("gpt.entry.duplicate-guid"), 65);
    let summary = g.findings.iter().rfind(|f| f.code == "gpt.entry.overlap").expect("a summary");
    assert_eq!(summary.message, "32703 more findings of this kind were left out");
}
