//! The FAT corruptions issue #12 names, each crafted from an mkfs.vfat + mcopy image: `verify`
//! reports the exact error (what, where, expected and found), and `fsck.fat -n` rejects the
//! same bytes, so the finding is the oracle's verdict and not a guess.

mod fat_support;

use fat_support::{run, run_ok, sparse_image};
use reprodisk_verifier::bytes::ImageFile;
use reprodisk_verifier::fat::Fat;
use reprodisk_verifier::glue;
use reprodisk_verifier::report::{Finding, Severity};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A FAT16 image of 16 MiB with 2 KiB clusters holding `/hello` (6 bytes) and `/sub/big`
/// (40,000 bytes, 20 clusters).
fn image(dir: &Path) -> PathBuf {
    let path = sparse_image(dir, "fat.img", 16 << 20);
    let img = path.to_str().expect("tempdir paths are UTF-8");
    run_ok("mkfs.vfat", &["-F", "16", "-i", "12345678", img]);
    std::fs::create_dir_all(dir.join("sub")).expect("tempdir is writable");
    std::fs::write(dir.join("hello"), b"hello\n").expect("tempdir is writable");
    std::fs::write(dir.join("sub/big"), vec![7u8; 40_000]).expect("tempdir is writable");
    for f in ["hello", "sub"] {
        run_ok("mcopy", &["-s", "-i", img, dir.join(f).to_str().expect("UTF-8"), "::"]);
    }
    path
}

fn poke(path: &Path, off: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(path).expect("the image is writable");
    f.write_all_at(bytes, off).expect("the image is writable");
}

/// The image offset of `path`'s short directory entry and its cluster chain.
fn entry(img: &Path, path: &str) -> (u64, Vec<u32>) {
    let f = ImageFile::open(img).expect("the image opens");
    let fat = Fat::open(&f).expect("the fresh image opens");
    let tree = fat.walk().expect("the fresh image walks");
    let n = tree.nodes.iter().find(|n| n.path == path).unwrap_or_else(|| panic!("{path} in the image"));
    (n.offset, n.clusters.clone())
}

/// The error findings of `verify`.
fn errors(img: &Path) -> Vec<Finding> {
    let f = ImageFile::open(img).expect("the image opens");
    let r = glue::verify(&f, None, None, None);
    r.findings.into_iter().filter(|f| f.severity == Severity::Error).collect()
}

/// Asserts exactly one error contains every piece of `needles` (message and location).
fn assert_error(img: &Path, needles: &[&str]) {
    let all = errors(img);
    let hits: Vec<&Finding> = all
        .iter()
        .filter(|f| {
            let text = format!("{} {}", f.message, f.location.as_deref().unwrap_or(""));
            needles.iter().all(|n| text.contains(n))
        })
        .collect();
    assert_eq!(hits.len(), 1, "one error with {needles:?} among {all:#?}");
}

/// Asserts fsck.fat -n rejects the image (exit status 1) and returns what it printed.
fn fsck_rejects(img: &Path) -> String {
    let out = run("fsck.fat", &["-n", img.to_str().expect("UTF-8")]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "fsck.fat -n accepts the image: {text}");
    text
}

#[test]
fn the_fresh_image_is_clean_for_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = image(dir.path());
    assert_eq!(errors(&img), vec![]);
    assert!(run("fsck.fat", &["-n", img.to_str().expect("UTF-8")]).status.success());
}

#[test]
fn a_file_size_larger_than_its_chain_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = image(dir.path());
    let (off, chain) = entry(&img, "/hello");
    assert_eq!(chain.len(), 1);
    poke(&img, off + 0x1C, &100_000u32.to_le_bytes());
    assert!(fsck_rejects(&img).contains("File size is 100000 bytes"));
    assert_error(&img, &["/hello DIR_FileSize 100000 needs 49 clusters, its chain has 1", "fat directory /"]);
}

#[test]
fn cross_linked_chains_are_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = image(dir.path());
    let (off, _) = entry(&img, "/hello");
    let (_, big) = entry(&img, "/sub/big");
    // /hello now starts at the last cluster of /sub/big (which ends there, so both chains
    // are intact and share one cluster).
    let shared = *big.last().expect("a chain");
    poke(&img, off + 0x1A, &(shared as u16).to_le_bytes());
    assert!(fsck_rejects(&img).contains("share clusters"));
    assert_error(&img, &[&format!("cluster {shared} is cross-linked: it belongs to /hello and /sub/big")]);
}

#[test]
fn fat_copies_that_differ_are_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = image(dir.path());
    let f = ImageFile::open(&img).expect("the image opens");
    let fat = Fat::open(&f).expect("the fresh image opens");
    let g = &fat.geometry;
    // A free cluster near the end, marked end-of-chain in the second FAT only.
    let cluster = g.max_cluster() - 1;
    let at = g.fat_copy_offset(1) + u64::from(cluster) * 2;
    drop(fat);
    poke(&img, at, &[0xFF, 0xFF]);
    assert!(fsck_rejects(&img).contains("FATs differ"));
    assert_error(
        &img,
        &[&format!("differs from fat 0, first at entry {cluster}"), &format!("fat 1 at byte {at:#x}")],
    );
}

/// A disk with one partition at 1 MiB: MBR of `mbr_type`, or GPT with type code `gpt_type`.
fn disk(dir: &Path, mbr_type: Option<&str>, gpt_type: Option<&str>) -> PathBuf {
    let path = sparse_image(dir, "disk.img", 24 << 20);
    let s = path.to_str().expect("UTF-8");
    if let Some(t) = mbr_type {
        let script = dir.join("script");
        std::fs::write(&script, format!("label: dos\n2048,,{t}\n")).expect("tempdir is writable");
        let out = std::process::Command::new("sfdisk")
            .arg(s)
            .stdin(std::fs::File::open(&script).expect("script"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run sfdisk ({e}): install fdisk"));
        assert!(out.status.success(), "sfdisk: {}", String::from_utf8_lossy(&out.stderr));
    }
    if let Some(t) = gpt_type {
        run_gdisk(&["-n", "1:2048:0", "-t", &format!("1:{t}"), s]);
    }
    path
}

fn run_gdisk(args: &[&str]) {
    let out = std::process::Command::new("sgdisk")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run sgdisk ({e}): install gdisk"));
    assert!(out.status.success(), "sgdisk {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The first 16 MiB of the partition, for fsck.fat.
fn extract(disk: &Path, dir: &Path) -> PathBuf {
    let bytes = std::fs::read(disk).expect("the disk reads");
    let p = dir.join("part.img");
    std::fs::write(&p, &bytes[1 << 20..17 << 20]).expect("tempdir is writable");
    p
}

/// The partition types that promise a FAT filesystem: MBR 0x0c, 0x0e, 0xef, GPT ESP and
/// Microsoft basic data.
const FAT_TYPES: &[(Option<&str>, Option<&str>)] =
    &[(Some("c"), None), (Some("e"), None), (Some("ef"), None), (None, Some("ef00")), (None, Some("0700"))];

#[test]
fn a_fat_partition_whose_bpb_is_garbage_is_an_error_naming_it() {
    for &(mbr, gpt) in FAT_TYPES {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = disk(dir.path(), mbr, gpt);
        // 16 MiB (16384 KiB blocks), inside the partition whatever the table.
        run_ok(
            "mkfs.vfat",
            &["-F", "16", "--offset=2048", "-i", "12345678", img.to_str().expect("UTF-8"), "16384"],
        );
        assert!(errors(&img).is_empty(), "{mbr:?} {gpt:?}: the fresh disk is clean: {:#?}", errors(&img));
        // BPB_BytsPerSec .. BPB_TotSec32 overwritten with bytes no formatter writes.
        let garbage: Vec<u8> = (0..0x19u8).map(|i| i.wrapping_mul(73).wrapping_add(0x35)).collect();
        poke(&img, (1 << 20) + 0x0B, &garbage);
        fsck_rejects(&extract(&img, dir.path()));
        let all = errors(&img);
        assert!(
            all.iter().any(|f| f.location.as_deref().is_some_and(|l| l.starts_with("partition 1"))),
            "{mbr:?} {gpt:?}: an error naming partition 1 in {all:#?}"
        );
    }
}

#[test]
fn a_partition_typed_fat_holding_no_fat_is_an_error() {
    for &(mbr, gpt) in FAT_TYPES {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = disk(dir.path(), mbr, gpt);
        fsck_rejects(&extract(&img, dir.path()));
        let all = errors(&img);
        let hit = all.iter().find(|f| f.location.as_deref() == Some("partition 1"));
        let hit = hit.unwrap_or_else(|| panic!("{mbr:?} {gpt:?}: an error at partition 1 in {all:#?}"));
        assert_eq!(hit.code, "fs-unrecognised", "{hit:?}");
        assert!(hit.message.ends_with("but it is all zeros"), "{hit:?}");
    }
}

#[test]
fn a_bare_fat_image_whose_bpb_is_garbage_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = image(dir.path());
    let garbage: Vec<u8> = (0..0x19u8).map(|i| i.wrapping_mul(73).wrapping_add(0x35)).collect();
    poke(&img, 0x0B, &garbage);
    fsck_rejects(&img);
    assert!(!errors(&img).is_empty(), "the garbage BPB passes");
}

/// Bytes written at an image offset.
type Poke = (u64, Vec<u8>);

/// The other classes the differential test found, one crafted image each: where to poke,
/// what, and the text of the error.
#[test]
fn the_other_classes_fsck_fat_rejects_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fresh = image(dir.path());
    let (hello, _) = entry(&fresh, "/hello");
    let f = ImageFile::open(&fresh).expect("the image opens");
    let fat = Fat::open(&f).expect("the fresh image opens");
    let g = fat.geometry.clone();
    drop(fat);
    let free = g.max_cluster() - 1;
    let eoc = [0xFF, 0xFF];
    let cases: Vec<(&str, Vec<Poke>, String)> = vec![
        ("dirty flag", vec![(0x25, vec![0x01])], "BS_Reserved1 has bit 0 set".into()),
        (
            "entry after the end mark",
            vec![(g.root_dir_offset + 6 * 32, b"X".to_vec())],
            "entry 6 is not free (DIR_Name[0] 0x58) but follows the end-of-directory mark at entry 2".into(),
        ),
        ("no 8.3 name", vec![(hello + 0x0C, vec![0x20])], "/HELLO DIR_NTRes 0x20 has bit 0x20 set".into()),
        (
            "lost cluster",
            vec![
                (g.fat_copy_offset(0) + u64::from(free) * 2, eoc.to_vec()),
                (g.fat_copy_offset(1) + u64::from(free) * 2, eoc.to_vec()),
            ],
            format!("1 lost clusters: allocated but owned by no file or directory (first: {free})"),
        ),
        (
            "unusable short name",
            vec![(hello + 2, b"?".to_vec())],
            "byte 0x3f is not allowed in a short name".into(),
        ),
    ];
    for (what, pokes, needle) in cases {
        let img = dir.path().join("case.img");
        std::fs::copy(&fresh, &img).expect("tempdir is writable");
        for (off, bytes) in &pokes {
            poke(&img, *off, bytes);
        }
        fsck_rejects(&img);
        let all = errors(&img);
        assert!(
            all.iter().any(|f| f.message.contains(&needle)),
            "{what}: an error with {needle:?} in {all:#?}"
        );
    }
}
