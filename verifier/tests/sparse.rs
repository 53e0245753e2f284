//! Sparse images: `ReadAt::next_data` reports what the filesystem holds, and `diff` skips the
//! holes of both images without changing a byte of its report.

use reprodisk_verifier::bytes::{ImageFile, ReadAt, Slice};
use reprodisk_verifier::diff::{DiffReport, diff};
use reprodisk_verifier::glue::diff_images;
use reprodisk_verifier::regions::{Label, Region, RegionMap};
use std::cell::Cell;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
/// Written ranges are aligned to this, so that any filesystem block size up to it reports
/// them exactly.
const ALIGN: u64 = 64 * KIB;

/// A sparse file of `len` bytes holding `blocks` (offset, bytes) and holes elsewhere.
fn sparse_file(dir: &Path, name: &str, len: u64, blocks: &[(u64, &[u8])]) -> PathBuf {
    let path = dir.join(name);
    let f = File::create(&path).expect("create a file in a fresh tempdir");
    f.set_len(len).expect("set_len makes a hole");
    for &(at, bytes) in blocks {
        f.write_all_at(bytes, at).expect("write a block");
    }
    // Some filesystems answer SEEK_DATA from allocated extents only, not dirty pages.
    f.sync_all().expect("sync");
    path
}

/// Every range `next_data` reports, walking from 0.
fn data_ranges(r: &dyn ReadAt) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some((s, e)) = r.next_data(pos).expect("next_data on a readable file") {
        assert!(pos <= s && s < e && e <= r.len(), "range {s:#x}..{e:#x} asked at {pos:#x}");
        out.push((s, e));
        pos = e;
    }
    out
}

/// A reader that knows no holes: it takes `next_data`'s default.
struct NoHoles<'a>(&'a ImageFile);

impl ReadAt for NoHoles<'_> {
    fn len(&self) -> u64 {
        self.0.len()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
}

/// A reader that forwards everything and counts the bytes read.
struct Counting<'a> {
    inner: &'a ImageFile,
    read: Cell<u64>,
}

impl ReadAt for Counting<'_> {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.read.set(self.read.get() + <[u8]>::len(buf) as u64);
        self.inner.read_exact_at(buf, offset)
    }
    fn next_data(&self, offset: u64) -> std::io::Result<Option<(u64, u64)>> {
        self.inner.next_data(offset)
    }
}

fn open(path: &Path) -> ImageFile {
    ImageFile::open(path).expect("open a file just written")
}

#[test]
fn next_data_reports_exactly_the_written_ranges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let len = 64 * MIB;
    let one = vec![0xA5u8; ALIGN as usize];
    let two = vec![0x5Au8; 2 * ALIGN as usize];
    let path = sparse_file(
        dir.path(),
        "img",
        len,
        &[(MIB, &one), (MIB + 2 * ALIGN, &two), (40 * MIB, &one), (len - ALIGN, &one)],
    );
    let img = open(&path);
    let expected = [
        (MIB, MIB + ALIGN),
        (MIB + 2 * ALIGN, MIB + 4 * ALIGN),
        (40 * MIB, 40 * MIB + ALIGN),
        (len - ALIGN, len),
    ];
    assert_eq!(
        data_ranges(&img),
        expected,
        "this filesystem ({}) does not report holes with SEEK_DATA/SEEK_HOLE",
        dir.path().display()
    );
    // Asked inside a range, the answer starts where it was asked; in the last hole, or at or
    // past the end, there is no more data.
    assert_eq!(img.next_data(MIB + 100).expect("seek"), Some((MIB + 100, MIB + ALIGN)));
    assert_eq!(img.next_data(MIB + ALIGN).expect("seek"), Some((MIB + 2 * ALIGN, MIB + 4 * ALIGN)));
    assert_eq!(img.next_data(len).expect("seek"), None);
    assert_eq!(img.next_data(u64::MAX).expect("seek"), None);
    // A reference and a slice forward it, the slice in its own offsets and cut at its ends.
    assert_eq!(data_ranges(&&img), expected);
    let part = Slice { inner: &img, start: MIB + ALIGN / 2, len: 39 * MIB };
    assert_eq!(
        data_ranges(&part),
        [(0, ALIGN / 2), (ALIGN + ALIGN / 2, 3 * ALIGN + ALIGN / 2), (39 * MIB - ALIGN / 2, 39 * MIB)]
    );
}

#[test]
fn a_file_that_ends_in_a_hole_has_no_data_after_its_last_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = open(&sparse_file(dir.path(), "img", 8 * MIB, &[(0, &[1u8; ALIGN as usize])]));
    assert_eq!(data_ranges(&img), [(0, ALIGN)]);
    assert_eq!(img.next_data(ALIGN).expect("seek"), None);
    let empty = open(&sparse_file(dir.path(), "empty", 8 * MIB, &[]));
    assert_eq!(data_ranges(&empty), []);
    let zero_len = open(&sparse_file(dir.path(), "zero", 0, &[]));
    assert_eq!(data_ranges(&zero_len), []);
}

#[test]
fn readers_without_hole_information_call_everything_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = open(&sparse_file(dir.path(), "img", 4 * MIB, &[(MIB, &[7u8; ALIGN as usize])]));
    let plain = NoHoles(&img);
    assert_eq!(data_ranges(&plain), [(0, 4 * MIB)]);
    assert_eq!(plain.next_data(3 * MIB).expect("default"), Some((3 * MIB, 4 * MIB)));
    assert_eq!(plain.next_data(4 * MIB).expect("default"), None);
    let bytes = vec![0u8; 1000];
    assert_eq!(data_ranges(&bytes), [(0, 1000)]);
    assert_eq!(data_ranges(&bytes.as_slice()), [(0, 1000)]);
    // A slice that runs past the end of its reader calls the missing part data, so that a
    // caller reads it (and fails) instead of taking it for zeros.
    let short = Slice { inner: &img, start: 3 * MIB, len: 2 * MIB };
    assert_eq!(data_ranges(&short), [(MIB, 2 * MIB)]);
}

#[test]
fn a_one_byte_change_in_two_sparse_4_gib_images_is_found_without_reading_the_holes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let len = 4 * GIB;
    let shared = vec![0x33u8; ALIGN as usize];
    let changed_at = 3 * GIB + 12_345;
    let a = sparse_file(dir.path(), "a", len, &[(0, &shared), (2 * GIB, &shared)]);
    // In B the byte lies in a block of its own; in A it is in a hole.
    let b = sparse_file(dir.path(), "b", len, &[(0, &shared), (2 * GIB, &shared), (changed_at, &[0xEE])]);
    let (fa, fb) = (open(&a), open(&b));
    let (ca, cb) = (Counting { inner: &fa, read: Cell::new(0) }, Counting { inner: &fb, read: Cell::new(0) });
    let mut map = RegionMap::builder();
    map.add(Region::new(3 * GIB, 64 * KIB, Label::new(Some(2), "file").with_detail("/changed data")));
    let map = map.build();
    let r = diff(&ca, &cb, &map, &map).expect("diff two readable files");
    assert_eq!((r.differing_bytes, r.differing_ranges), (1, 1), "{}", r.render_text());
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.groups[0].name, "partition 2 file /changed data");
    assert_eq!(r.groups[0].first_offset, changed_at);
    // Without a region, the range itself is named.
    let r = diff(&fa, &fb, &RegionMap::empty(), &RegionMap::empty()).expect("diff");
    let shown: Vec<_> = r.unexplained.shown.iter().map(|u| (u.start, u.end, u.b_hex.as_str())).collect();
    assert_eq!(shown, [(changed_at, changed_at + 1, "ee")]);
    // The data blocks (and B's one changed block) were read, the 4 GiB of holes were not.
    let read = ca.read.get() + cb.read.get();
    assert!(read <= 8 * MIB, "read {read} bytes of two 4 GiB images with 192 KiB of data");
}

#[test]
fn a_change_inside_data_of_both_sides_and_a_longer_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let block = vec![0x44u8; ALIGN as usize];
    let mut other = block.clone();
    other[100] = 0x45;
    let a = open(&sparse_file(dir.path(), "a", 4 * GIB, &[(GIB, &block)]));
    let b = open(&sparse_file(dir.path(), "b", 4 * GIB + MIB, &[(GIB, &other)]));
    let r = diff(&a, &b, &RegionMap::empty(), &RegionMap::empty()).expect("diff");
    assert_eq!(r.differing_bytes, 1);
    assert_eq!(r.unexplained.shown[0].start, GIB + 100);
    assert_eq!(r.groups[0].name, "image length");
    // A non-zero byte in the longer image's tail differs from the zeros the shorter one
    // reads as there.
    let c = open(&sparse_file(dir.path(), "c", 4 * GIB + MIB, &[(GIB, &block), (4 * GIB + ALIGN, &[9])]));
    let r = diff(&c, &a, &RegionMap::empty(), &RegionMap::empty()).expect("diff");
    assert_eq!(r.differing_bytes, 1);
    assert_eq!(r.unexplained.shown[0].start, 4 * GIB + ALIGN);
}

/// Runs a reference tool, failing with the package to install when it is missing.
fn tool(name: &str, package: &str, args: &[&str]) {
    let out = Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name} ({e}): install the {package} package"));
    assert!(out.status.success(), "{name} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_relabelled_sparse_ext4_diffs_as_if_every_byte_were_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = sparse_file(dir.path(), "a", 128 * MIB, &[]);
    let b = dir.path().join("b");
    let (pa, pb) = (a.to_str().expect("tempdir paths are UTF-8"), b.to_str().expect("UTF-8"));
    // Groups of 16 MiB make 8 of them, so superblock backups lie between holes.
    tool("mkfs.ext4", "e2fsprogs", &["-q", "-F", "-b", "4096", "-g", "4096", "-O", "^has_journal", pa]);
    tool("cp", "coreutils", &["--sparse=always", pa, pb]);
    tool("tune2fs", "e2fsprogs", &["-L", "other", pb]);
    let (fa, fb) = (open(&a), open(&b));
    let (ca, cb) = (Counting { inner: &fa, read: Cell::new(0) }, Counting { inner: &fb, read: Cell::new(0) });
    let sparse = diff_images(&ca, &cb).expect("diff two readable images");
    let dense = diff_images(&NoHoles(&fa), &NoHoles(&fb)).expect("diff two readable images");
    assert_eq!(sparse, dense);
    // tune2fs stamps s_wtime with the current second, which equals mkfs's only when both ran
    // within the same second: that field may or may not differ, the others always do.
    let groups: Vec<_> = sparse.groups.iter().filter(|g| !g.name.ends_with(" s_wtime")).collect();
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names[..2], ["ext4 superblock s_volume_name", "ext4 superblock s_checksum"], "{names:?}");
    assert!(names.contains(&"ext4 superblock (backup in group 1) s_volume_name"), "{names:?}");
    assert_eq!((groups[0].a.as_deref(), groups[0].b.as_deref()), (Some("\"\""), Some("\"other\"")));
    let read = ca.read.get() + cb.read.get();
    assert!(read < 64 * MIB, "the sparse diff read {read} bytes of two 128 MiB images");
}

fn borrow(w: &[(u64, Vec<u8>)]) -> Vec<(u64, &[u8])> {
    w.iter().map(|(at, v)| (*at, v.as_slice())).collect()
}

/// The same report whether the holes are skipped or read.
fn same_report_both_ways(a: &ImageFile, b: &ImageFile, map_a: &RegionMap, map_b: &RegionMap) -> DiffReport {
    let sparse = diff(a, b, map_a, map_b).expect("diff with holes");
    let dense = diff(&NoHoles(a), &NoHoles(b), map_a, map_b).expect("diff without holes");
    assert_eq!(sparse, dense);
    sparse
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Data and holes placed anywhere (on block boundaries or not, across 1 MiB chunks, in
    /// one image and not the other, past the shorter image's end): the report is the one a
    /// diff that reads every byte gives.
    #[test]
    fn skipping_holes_never_changes_the_report(
        blocks_a in proptest::collection::vec((0u64..3 * MIB, 1usize..70_000, 0u8..3), 0..6),
        blocks_b in proptest::collection::vec((0u64..3 * MIB, 1usize..70_000, 0u8..3), 0..6),
        copy in proptest::collection::vec(proptest::bool::ANY, 6),
        len_a in MIB..3 * MIB,
        len_b in MIB..3 * MIB,
        region in (0u64..3 * MIB, 1u64..200_000),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let fill = |&(at, n, byte): &(u64, usize, u8)| (at, vec![byte; n]);
        let wa: Vec<(u64, Vec<u8>)> = blocks_a.iter().map(fill).collect();
        // B holds some of A's blocks too (so that equal data is compared), and its own.
        let mut wb: Vec<(u64, Vec<u8>)> =
            wa.iter().zip(&copy).filter(|(_, c)| **c).map(|(w, _)| w.clone()).collect();
        wb.extend(blocks_b.iter().map(fill));
        let a = open(&sparse_file(dir.path(), "a", len_a, &borrow(&wa)));
        let b = open(&sparse_file(dir.path(), "b", len_b, &borrow(&wb)));
        let mut m = RegionMap::builder();
        m.add(Region::new(region.0, region.1, Label::new(Some(1), "file").with_detail("/x data")));
        let m = m.build();
        let r = same_report_both_ways(&a, &b, &m, &m);
        let read = |name: &str| std::fs::read(dir.path().join(name)).expect("read back a file just written");
        proptest::prop_assert_eq!(r.identical(), read("a") == read("b"));
    }
}
