//! Corruption tests for the FAT reader: one-byte changes in the BPB, FSInfo, backup boot
//! sector, the FATs and directory entries give the exact error or finding naming the
//! structure; truncation, chain loops and directory loops end in errors; random input and
//! random flips never panic.

mod fat_support;

use fat_support::{run_ok, sparse_image};
use proptest::prelude::*;
use reprodisk_verifier::Error;
use reprodisk_verifier::bytes::ImageFile;
use reprodisk_verifier::fat::{Fat, Finding, Tree};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A small populated image: `fat` bits, `mib` MiB, 512-byte sectors, 1-sector clusters.
fn image(dir: &Path, fat: u8, mib: u64) -> PathBuf {
    let path = sparse_image(dir, "fat.img", mib << 20);
    let img = path.to_str().expect("tempdir paths are UTF-8");
    let f = fat.to_string();
    run_ok("mkfs.fat", &["-F", &f, "-s", "1", "-n", "CORRUPT", "-i", "11223344", img]);
    run_ok("mmd", &["-i", img, "::/sub", "::/sub/deeper"]);
    let src = dir.join("data");
    std::fs::write(&src, [7u8; 1500]).expect("tempdir is writable");
    let s = src.to_str().expect("tempdir paths are UTF-8");
    // Two files of three 512-byte clusters each, one with a long name.
    run_ok("mcopy", &["-i", img, s, "::/sub/A long name.txt"]);
    run_ok("mcopy", &["-i", img, s, "::/sub/deeper/b-three-cluster file"]);
    path
}

fn poke(path: &Path, off: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(path).expect("the image is writable");
    f.write_all_at(bytes, off).expect("the image is writable");
}

fn peek(path: &Path, off: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    std::fs::File::open(path)
        .expect("the image opens")
        .read_exact_at(&mut buf, off)
        .expect("inside the image");
    buf
}

fn open_err(path: &Path) -> Error {
    let f = ImageFile::open(path).expect("the image opens");
    match Fat::open(&f) {
        Ok(_) => panic!("the corrupt image opened without an error"),
        Err(e) => e,
    }
}

/// Opens and walks, returning all findings and the tree.
fn findings(path: &Path) -> (Vec<Finding>, Tree) {
    let f = ImageFile::open(path).expect("the image opens");
    let fat = Fat::open(&f).unwrap_or_else(|e| panic!("open: {e}"));
    let tree = fat.walk().unwrap_or_else(|e| panic!("walk: {e}"));
    let mut all = fat.findings.clone();
    all.extend(tree.findings.iter().cloned());
    (all, tree)
}

/// What `fsck.fat -n` (the oracle) prints about the image.
fn fsck_says(path: &Path) -> String {
    let out = fat_support::run("fsck.fat", &["-n", path.to_str().expect("tempdir paths are UTF-8")]);
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn walk_err(path: &Path) -> Error {
    let f = ImageFile::open(path).expect("the image opens");
    let fat = Fat::open(&f).unwrap_or_else(|e| panic!("open: {e}"));
    match fat.walk() {
        Ok(_) => panic!("the corrupt tree walked without an error"),
        Err(e) => e,
    }
}

fn tree_of(path: &Path) -> Tree {
    let (f, t) = findings(path);
    assert_eq!(f, vec![], "the fresh image is clean");
    t
}

/// Asserts `e` is `Corrupt` at `structure` and offset `off`, its text containing `field`.
fn assert_corrupt(e: &Error, structure: &str, off: u64, field: &str) {
    match e {
        Error::Corrupt { at, what } => {
            assert_eq!((at.structure.as_str(), at.offset), (structure, Some(off)), "{e}");
            assert!(what.contains(field), "{e} should name {field}");
        }
        e => panic!("expected a corrupt error, got {e}"),
    }
}

fn assert_one_finding(f: &[Finding], structure: &str, needle: &str) {
    let hits: Vec<_> = f.iter().filter(|f| f.structure == structure && f.what.contains(needle)).collect();
    assert_eq!(hits.len(), 1, "one finding at {structure:?} with {needle:?} in {f:#?}");
}

#[test]
fn bpb_fields_give_errors_naming_the_field() {
    let dir = tempfile::tempdir().expect("a tempdir");
    let path = image(dir.path(), 16, 8);
    let cases: &[(u64, &[u8], &str)] = &[
        (0x00, &[0x00], "BS_jmpBoot"),
        (0x0B, &[0x01, 0x03], "BPB_BytsPerSec"),
        (0x0D, &[3], "BPB_SecPerClus"),
        (0x0E, &[0, 0], "BPB_RsvdSecCnt"),
        (0x10, &[0], "BPB_NumFATs"),
        (0x11, &[0, 0], "BPB_RootEntCnt"),
        (0x15, &[0x12], "BPB_Media"),
        (0x16, &[1, 0], "BPB_FATSz16"),
        (0x13, &[0, 0], "BPB_TotSec16"),
        (0x1FE, &[0x55, 0xAB], "signature"),
    ];
    for &(off, bytes, field) in cases {
        let saved = peek(&path, off, bytes.len());
        poke(&path, off, bytes);
        assert_corrupt(&open_err(&path), "fat boot sector", off, field);
        poke(&path, off, &saved);
    }
    tree_of(&path);
}

#[test]
fn a_volume_inside_a_disk_image_reports_image_offsets() {
    use reprodisk_verifier::bytes::Slice;
    let dir = tempfile::tempdir().expect("a tempdir");
    let path = image(dir.path(), 12, 1);
    let vol = std::fs::read(&path).expect("the image reads");
    let base = 1u64 << 20;
    let mut disk = vec![0u8; base as usize];
    disk.extend_from_slice(&vol);
    // BS_FilSysType "FAT16" on a FAT12 volume: a finding at its image offset.
    disk[base as usize + 0x36..base as usize + 0x3E].copy_from_slice(b"FAT16   ");
    let part = Slice { inner: &disk[..], start: base, len: vol.len() as u64 };
    let fat = Fat::open_at(&part, base).expect("opens");
    assert_eq!(
        fat.findings,
        vec![Finding::warning(
            "fat boot sector",
            Some(base + 0x36),
            "BS_FilSysType says \"FAT16   \", the cluster count makes it FAT12"
        )]
    );
    let tree = fat.walk().expect("walks");
    let sub = tree.nodes.iter().find(|n| n.path == "/sub").expect("/sub");
    assert_eq!(&disk[sub.offset as usize..sub.offset as usize + 11], b"SUB        ");
    // An error inside the partition names the image offset too.
    disk[base as usize + 0x10] = 0;
    let part = Slice { inner: &disk[..], start: base, len: vol.len() as u64 };
    match Fat::open_at(&part, base) {
        Err(Error::Corrupt { at, .. }) => assert_eq!(at.offset, Some(base + 0x10)),
        other => panic!("expected BPB_NumFATs to be corrupt, got {:?}", other.err()),
    }
}

#[test]
fn huge_counts_are_errors_before_any_allocation() {
    let dir = tempfile::tempdir().expect("a tempdir");
    let path = image(dir.path(), 16, 8);
    // BPB_TotSec16 = 0 and BPB_TotSec32 = 4G sectors: too many clusters for the FAT.
    poke(&path, 0x13, &[0, 0]);
    poke(&path, 0x20, &[0xFF, 0xFF, 0xFF, 0xFF]);
    let e = open_err(&path);
    assert!(matches!(&e, Error::Corrupt { at, .. } if at.structure == "fat boot sector"), "{e}");
}

#[test]
fn fat32_fsinfo_and_backup_boot_sector_flips_are_findings() {
    let dir = tempfile::tempdir().expect("a tempdir");
    let path = image(dir.path(), 32, 34);
    tree_of(&path);
    // FSInfo lives in sector 1, the backup boot sector in sector 6.
    let fsinfo = peek(&path, 512, 512);
    poke(&path, 512 + 0x1E8, &[0x00]);
    let (f, _) = findings(&path);
    assert_one_finding(&f, "fat32 fsinfo sector", "FSI_Free_Count");
    assert!(fsck_says(&path).contains("Free cluster summary wrong"), "fsck.fat agrees");
    poke(&path, 512 + 3, &[0x42]);
    let (f, _) = findings(&path);
    assert_one_finding(&f, "fat32 fsinfo sector", "FSI_LeadSig");
    poke(&path, 6 * 512 + 0x43, &[0x99]);
    let (f, _) = findings(&path);
    assert_one_finding(&f, "fat32 backup boot sector", "BS_VolID");
    poke(&path, 6 * 512 + 0x43, &peek(&path, 0x43, 1));
    poke(&path, 512, &fsinfo);
    // Mirroring disabled (BPB_ExtFlags bit 7) with FAT 1 active: FAT 0 may differ freely, the
    // reader uses FAT 1, and only the backup boot sector's stale BPB_ExtFlags is reported.
    poke(&path, 0x28, &[0x81, 0x00]);
    let f = ImageFile::open(&path).expect("the image opens");
    let rsvd = u64::from(u16::from_le_bytes(peek(&path, 0x0E, 2).try_into().expect("two bytes")));
    poke(&path, rsvd * 512 + 4 * 3, &[0x00, 0x00, 0x00, 0x00]);
    let (fs, t) = findings(&path);
    assert_eq!(fs.len(), 1, "{fs:#?}");
    assert_one_finding(&fs, "fat32 backup boot sector", "BPB_ExtFlags");
    assert!(t.nodes.iter().any(|n| n.path == "/sub/deeper/b-three-cluster file" && n.clusters.len() == 3));
    drop(f);
    // BPB_RootClus outside the volume is an error.
    poke(&path, 0x2C, &[0xFF, 0xFF, 0xFF, 0x0F]);
    assert_corrupt(&open_err(&path), "fat boot sector", 0x2C, "BPB_RootClus");
}

#[test]
fn fat_copy_and_reserved_entry_flips_are_findings() {
    let dir = tempfile::tempdir().expect("a tempdir");
    let path = image(dir.path(), 16, 8);
    let f = ImageFile::open(&path).expect("the image opens");
    let fat = Fat::open(&f).expect("a clean image opens");
    let g = fat.geometry.clone();
    drop(fat);
    // Entry 40 of FAT 1 only.
    poke(&path, g.fat_copy_offset(1) + 80, &[0x34]);
    let (fs, _) = findings(&path);
    assert_one_finding(&fs, "fat 1", "first at entry 40");
    assert!(fsck_says(&path).contains("FATs differ"), "fsck.fat agrees");
    // FAT[0] in both copies: a media byte other than BPB_Media.
    poke(&path, g.fat_copy_offset(0), &[0xF0]);
    poke(&path, g.fat_copy_offset(1), &[0xF0]);
    let (fs, _) = findings(&path);
    assert_one_finding(&fs, "fat 0 entry 0", "BPB_Media");
}

#[test]
fn directory_entry_flips_are_findings_naming_the_directory() {
    let dir = tempfile::tempdir().expect("a tempdir");
    let path = image(dir.path(), 12, 2);
    let tree = tree_of(&path);
    let node = |p: &str| tree.nodes.iter().find(|n| n.path == p).unwrap_or_else(|| panic!("{p}")).clone();
    let long = node("/sub/A long name.txt");
    // LDIR_Chksum of the LFN entry right before the short entry.
    let chk_off = long.offset - 32 + 0x0D;
    let saved = peek(&path, chk_off, 1);
    poke(&path, chk_off, &[saved[0] ^ 1]);
    let (fs, t) = findings(&path);
    assert_one_finding(&fs, "fat directory /sub", "LDIR_Chksum");
    assert!(fsck_says(&path).contains("Checksum in long filename part wrong"), "fsck.fat agrees");
    assert!(
        t.nodes.iter().any(|n| n.path == format!("/sub/{}", long.short_name)),
        "falls back to the short name"
    );
    poke(&path, chk_off, &saved);

    // DIR_FileSize larger than the chain.
    poke(&path, long.offset + 0x1C, &[0x00, 0x40]);
    let (fs, _) = findings(&path);
    assert_one_finding(&fs, "fat directory /sub", "DIR_FileSize 16384 needs 32 clusters, its chain has 3");
    assert!(
        fsck_says(&path).contains("File size is 16384 bytes, cluster chain length is 1536 bytes"),
        "fsck.fat agrees"
    );
    poke(&path, long.offset + 0x1C, &1500u32.to_le_bytes()[..2]);

    // A file pointing into another file's chain: cross-linked and lost clusters.
    let other = node("/sub/deeper/b-three-cluster file");
    poke(&path, long.offset + 0x1A, &(other.clusters[1] as u16).to_le_bytes());
    let (fs, t) = findings(&path);
    assert!(fs.iter().any(|f| f.structure == "fat" && f.what.contains("cross-linked")), "{fs:#?}");
    assert_eq!(t.lost_clusters, long.clusters, "the orphaned chain is lost");
    let says = fsck_says(&path);
    assert!(
        says.contains("share clusters") && says.contains("Reclaimed 3 unused clusters"),
        "fsck.fat agrees: {says}"
    );
    poke(&path, long.offset + 0x1A, &(long.clusters[0] as u16).to_le_bytes());

    // A second short entry with the same name in the free slot after it.
    let raw = peek(&path, long.offset, 32);
    poke(&path, long.offset + 32, &raw);
    let (fs, _) = findings(&path);
    assert_one_finding(&fs, "fat directory /sub", "appears twice");
    assert!(fsck_says(&path).contains("Duplicate directory entry"), "fsck.fat agrees");
    poke(&path, long.offset + 32, &[0u8; 32]);

    // An invalid modification date (fsck.fat does not check dates).
    poke(&path, long.offset + 0x18, &[0x00, 0x00]);
    let (fs, _) = findings(&path);
    assert_one_finding(&fs, "fat directory /sub", "DIR_WrtDate");
}

#[test]
fn cluster_chain_loops_end_in_an_error() {
    let dir = tempfile::tempdir().expect("a tempdir");
    let path = image(dir.path(), 16, 8);
    let tree = tree_of(&path);
    let n = tree.nodes.iter().find(|n| n.clusters.len() == 3).expect("a three-cluster file");
    let f = ImageFile::open(&path).expect("the image opens");
    let g = Fat::open(&f).expect("a clean image opens").geometry;
    // The last cluster points back at the first, in both FATs.
    for copy in 0..2 {
        poke(
            &path,
            g.fat_copy_offset(copy) + u64::from(n.clusters[2]) * 2,
            &(n.clusters[0] as u16).to_le_bytes(),
        );
    }
    let e = walk_err(&path);
    assert!(
        matches!(&e, Error::Corrupt { at, what } if at.structure.starts_with("fat cluster chain of ") && what.contains("loops")),
        "{e}"
    );
    let r = Fat::open(&f).expect("opens").read_file(&n.path, 1 << 20);
    assert!(matches!(&r, Err(Error::Corrupt { what, .. }) if what.contains("loops")), "{r:?}");
}

#[test]
fn a_directory_pointing_to_its_ancestor_ends_in_an_error() {
    let dir = tempfile::tempdir().expect("a tempdir");
    let path = image(dir.path(), 32, 34);
    let tree = tree_of(&path);
    let sub = tree.nodes.iter().find(|n| n.path == "/sub").expect("/sub");
    let deeper = tree.nodes.iter().find(|n| n.path == "/sub/deeper").expect("/sub/deeper");
    let c = sub.clusters[0];
    poke(&path, deeper.offset + 0x14, &((c >> 16) as u16).to_le_bytes());
    poke(&path, deeper.offset + 0x1A, &(c as u16).to_le_bytes());
    let e = walk_err(&path);
    match &e {
        Error::Corrupt { at, what } => {
            assert_eq!(at.structure, "fat directory /sub");
            assert_eq!(at.offset, Some(deeper.offset));
            assert!(what.contains("directory loop"), "{e}");
        }
        e => panic!("expected a directory loop error, got {e}"),
    }
}

#[test]
fn truncated_images_are_truncation_errors() {
    let dir = tempfile::tempdir().expect("a tempdir");
    let path = image(dir.path(), 16, 8);
    let f = ImageFile::open(&path).expect("the image opens");
    let g = Fat::open(&f).expect("a clean image opens").geometry;
    let file = std::fs::OpenOptions::new().write(true).open(&path).expect("writable");
    // Cut inside the data area: opening reports it, reading a file past the end fails.
    file.set_len(g.data_offset + 1024).expect("truncate");
    let f = ImageFile::open(&path).expect("the image opens");
    let fat = Fat::open(&f).expect("the metadata is all there");
    assert!(fat.findings.iter().any(|x| x.structure == "fat volume" && x.what.contains("image ends")));
    // The two directory clusters are still there, the file data is not: the walk (metadata
    // only) succeeds, reading the file fails naming it.
    fat.walk().expect("the directories lie before the cut");
    let r = fat.read_file("/sub/A long name.txt", 1 << 20);
    assert!(
        matches!(&r, Err(Error::Truncated { at, .. }) if at.structure.starts_with("fat file /sub/A long name.txt")),
        "{r:?}"
    );
    // Cut inside FAT 1: opening must fail naming it.
    file.set_len(g.fat_copy_offset(1) + 100).expect("truncate");
    let e = open_err(&path);
    assert!(matches!(&e, Error::Truncated { at, .. } if at.structure == "fat 1"), "{e}");
    // Cut before the end of the boot sector.
    file.set_len(300).expect("truncate");
    let e = open_err(&path);
    assert!(matches!(&e, Error::Truncated { at, .. } if at.structure == "fat boot sector"), "{e}");
}

/// A tiny FAT12 image built once per process for the fuzz-like properties.
fn small_image() -> &'static [u8] {
    static IMG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    IMG.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a tempdir");
        let path = image(dir.path(), 12, 1);
        std::fs::read(path).expect("the image reads")
    })
}

/// A populated FAT32 image (34 MiB) and the offset of its data area, built once.
fn fat32_image() -> &'static (Vec<u8>, u64) {
    static IMG: std::sync::OnceLock<(Vec<u8>, u64)> = std::sync::OnceLock::new();
    IMG.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a tempdir");
        let path = image(dir.path(), 32, 34);
        let bytes = std::fs::read(path).expect("the image reads");
        let data = Fat::open(&bytes[..]).expect("a clean image opens").geometry.data_offset;
        (bytes, data)
    })
}

/// A base image with some bytes replaced, read without copying the base.
struct Overlay<'a> {
    base: &'a [u8],
    flips: std::collections::BTreeMap<u64, u8>,
}

impl reprodisk_verifier::bytes::ReadAt for Overlay<'_> {
    fn len(&self) -> u64 {
        self.base.len() as u64
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.base.read_exact_at(buf, offset)?;
        for (&at, &v) in self.flips.range(offset..offset + buf.len() as u64) {
            buf[(at - offset) as usize] = v;
        }
        Ok(())
    }
}

/// Everything a caller can do with a volume, none of which may panic.
fn exercise<R: reprodisk_verifier::bytes::ReadAt + ?Sized>(img: &R) {
    if let Ok(fat) = Fat::open(img) {
        let _ = fat.root_label();
        if let Ok(tree) = fat.walk() {
            let _ = fat.summary(Some(&tree));
            let step = (img.len() / 64).max(1);
            for off in (0..img.len() + 1).step_by(step as usize) {
                let _ = fat.locate(&tree, off);
            }
            for n in tree.nodes.iter().take(8) {
                let _ = fat.read_file(&n.path, 1 << 16);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..8192), sig in any::<bool>()) {
        if sig && bytes.len() >= 512 {
            bytes[510] = 0x55;
            bytes[511] = 0xAA;
            bytes[0] = 0xEB;
            bytes[2] = 0x90;
        }
        exercise(&bytes[..]);
    }

    #[test]
    fn random_flips_of_a_real_image_never_panic(
        flips in proptest::collection::vec((0usize..40_000, any::<u8>()), 1..16)
    ) {
        let mut img = small_image().to_vec();
        for (off, v) in flips {
            if let Some(b) = img.get_mut(off) {
                *b = v;
            }
        }
        exercise(&img[..]);
    }

    #[test]
    fn random_flips_of_fat32_metadata_never_panic(
        meta in proptest::collection::vec((0u64..20_000, any::<u8>()), 0..12),
        dirs in proptest::collection::vec((0u64..8192, any::<u8>()), 0..12),
    ) {
        let (base, data) = fat32_image();
        let mut flips: std::collections::BTreeMap<u64, u8> = meta.into_iter().collect();
        flips.extend(dirs.into_iter().map(|(o, v)| (data + o, v)));
        exercise(&Overlay { base, flips });
    }
}
