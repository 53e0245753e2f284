//! The ext4 reader on damaged images: one-byte flips in each structure give the exact
//! error naming it, truncated images and huge counts fail cleanly, directory and extent
//! loops end in an error, and random flips never panic.

mod ext4_util;

use ext4_util::*;
use proptest::prelude::*;
use reprodisk_verifier::Error;
use reprodisk_verifier::ext4::crc::crc32c_raw;
use reprodisk_verifier::ext4::{Entry, Ext4, FileType};
use std::path::Path;
use std::sync::OnceLock;

/// A small populated image: a directory of two blocks, a file with an extent index block,
/// an xattr block, a subdirectory.
fn build(args: &[&str]) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("dir/nested")).unwrap();
    std::fs::write(src.join("dir/nested/file"), b"nested\n").unwrap();
    std::fs::write(src.join("hello"), b"hello\n").unwrap();
    for i in 0..40 {
        std::fs::write(src.join(format!("dir/a-long-file-name-to-fill-blocks-{i:03}")), b"x").unwrap();
    }
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::create(src.join("frag")).unwrap();
    for i in 0..12u64 {
        f.write_all_at(&[b'f'; 1024], i * 2048).unwrap();
    }
    std::fs::write(src.join("xbig"), b"x").unwrap();
    run_ok("setfattr", &["-n", "user.big", "-v", &"v".repeat(600), src.join("xbig").to_str().unwrap()]);
    let mut a = vec!["-b", "1024", "-N", "128"];
    a.extend_from_slice(args);
    let img = mkfs(tmp.path(), "fs.img", 2, &a, Some(&src));
    std::fs::read(img).unwrap()
}

fn ext4_image() -> &'static Vec<u8> {
    static IMG: OnceLock<Vec<u8>> = OnceLock::new();
    IMG.get_or_init(|| build(&["-t", "ext4"]))
}

fn ext4_nocsum_image() -> &'static Vec<u8> {
    static IMG: OnceLock<Vec<u8>> = OnceLock::new();
    IMG.get_or_init(|| build(&["-t", "ext4", "-O", "^metadata_csum"]))
}

/// The checksum-free image with its directories indexed by `e2fsck -D`.
fn htree_image() -> &'static Vec<u8> {
    static IMG: OnceLock<Vec<u8>> = OnceLock::new();
    IMG.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("h.img");
        std::fs::write(&p, ext4_nocsum_image()).unwrap();
        let (out, code) = run("e2fsck", &["-fyD", p.to_str().unwrap()]);
        assert!(code <= 1, "e2fsck -fyD failed: {out}");
        std::fs::read(&p).unwrap()
    })
}

fn ext2_image() -> &'static Vec<u8> {
    static IMG: OnceLock<Vec<u8>> = OnceLock::new();
    IMG.get_or_init(|| build(&["-t", "ext2"]))
}

/// Everything the reader does with an image: open, walk, ownership, bitmaps, every file.
fn full_read(img: &[u8]) -> Result<Vec<Entry>, Error> {
    let fs = Ext4::open(img)?;
    let checked = fs.check()?;
    for e in &checked.entries {
        if e.file_type == FileType::Regular {
            fs.read_file(e.ino, 1 << 24)?;
        }
    }
    Ok(checked.entries)
}

/// Asserts a Corrupt error whose structure contains `structure` and message contains `what`.
fn expect_corrupt(r: Result<Vec<Entry>, Error>, structure: &str, what: &str) {
    match r {
        Err(Error::Corrupt { at, what: w }) => {
            assert!(
                at.structure.contains(structure),
                "error names `{}`, expected `{structure}` ({w})",
                at.structure
            );
            assert!(w.contains(what), "error says `{w}`, expected `{what}` ({})", at.structure);
        }
        other => panic!("expected a corrupt {structure} ({what}), got {other:?}"),
    }
}

fn entry<'a>(entries: &'a [Entry], path: &str) -> &'a Entry {
    let i = reprodisk_verifier::ext4::walk::find(entries, path.as_bytes()).unwrap();
    &entries[i]
}

/// Byte offset of inode `ino` in `img`.
fn inode_offset(img: &[u8], ino: u32) -> usize {
    let fs = Ext4::open(img).unwrap();
    fs.inode(ino).unwrap().offset as usize
}

fn flip(img: &[u8], at: usize) -> Vec<u8> {
    let mut v = img.to_vec();
    v[at] ^= 0x01;
    v
}

#[test]
fn pristine_images_read_cleanly() {
    for img in [ext4_image(), ext4_nocsum_image(), ext2_image(), htree_image()] {
        let entries = full_read(img).unwrap();
        assert!(!entry(&entries, "/frag").map_blocks.is_empty(), "12 extents need a map block");
        assert!(entry(&entries, "/xbig").xattr_block.is_some());
    }
}

#[test]
fn superblock_flip_is_a_checksum_mismatch() {
    expect_corrupt(full_read(&flip(ext4_image(), 1024 + 0x10)), "ext4 superblock", "s_checksum mismatch");
    // Without checksums the same flip (s_free_inodes_count) disagrees with the bitmaps.
    expect_corrupt(
        full_read(&flip(ext4_nocsum_image(), 1024 + 0x10)),
        "ext4 superblock",
        "s_free_inodes_count",
    );
    // The magic.
    expect_corrupt(full_read(&flip(ext2_image(), 1024 + 0x38)), "ext4 superblock", "s_magic");
}

#[test]
fn group_descriptor_flip_is_a_checksum_mismatch() {
    // 1 KiB blocks: the descriptor table is block 2; flip bg_free_inodes_count of group 0.
    expect_corrupt(
        full_read(&flip(ext4_image(), 2048 + 0xE)),
        "ext4 group descriptor 0",
        "bg_checksum mismatch",
    );
    // Without metadata_csum or uninit_bg descriptors carry no checksum; the count is
    // then checked against the bitmap.
    expect_corrupt(
        full_read(&flip(ext4_nocsum_image(), 2048 + 0xE)),
        "ext4 group descriptor 0",
        "bg_free_inodes_count",
    );
    expect_corrupt(
        full_read(&flip(ext2_image(), 2048 + 0xE)),
        "ext4 group descriptor 0",
        "bg_free_inodes_count",
    );
}

#[test]
fn itable_unused_below_a_used_inode_is_named() {
    // A consistent descriptor (checksum recomputed) that claims nearly the whole inode
    // table was never used, while the tree uses inodes 11 and up.
    let img = ext4_image();
    let fs = Ext4::open(&img[..]).unwrap();
    let mut bad = img.clone();
    let d = 2048;
    let unused = (fs.sb.s_inodes_per_group - 2) as u16;
    bad[d + 0x1C..d + 0x1E].copy_from_slice(&unused.to_le_bytes());
    let ds = fs.sb.desc_size() as usize;
    let c = reprodisk_verifier::ext4::group::checksum(&fs.sb, 0, &bad[d..d + ds]).unwrap();
    bad[d + 0x1E..d + 0x20].copy_from_slice(&c.to_le_bytes());
    expect_corrupt(full_read(&bad), "ext4 group descriptor 0", "bg_itable_unused");
}

#[test]
fn bitmap_flip_is_a_checksum_mismatch() {
    let img = ext4_image();
    let fs = Ext4::open(&img[..]).unwrap();
    let bb = (fs.groups[0].bg_block_bitmap * 1024) as usize;
    let ib = (fs.groups[0].bg_inode_bitmap * 1024) as usize;
    expect_corrupt(full_read(&flip(img, bb + 100)), "block bitmap of group 0", "checksum mismatch");
    expect_corrupt(full_read(&flip(img, ib + 10)), "inode bitmap of group 0", "checksum mismatch");
    // Without checksums a flipped bit is a block owned but free, or used but unowned.
    let img = ext2_image();
    let fs = Ext4::open(&img[..]).unwrap();
    let bb = (fs.groups[0].bg_block_bitmap * 1024) as usize;
    expect_corrupt(
        full_read(&flip(img, bb)),
        "block bitmap of group 0",
        "marked free but belongs to superblock",
    );
}

#[test]
fn inode_flip_is_a_checksum_mismatch() {
    let img = ext4_image();
    let hello = entry(&full_read(img).unwrap(), "/hello").ino;
    let off = inode_offset(img, hello);
    expect_corrupt(full_read(&flip(img, off + 0x4)), &format!("ext4 inode {hello}"), "i_checksum mismatch");
    // Without checksums, a flipped i_mode type bit disagrees with the directory entry.
    let img = ext2_image();
    let hello = entry(&full_read(img).unwrap(), "/hello").ino;
    let mut bad = img.clone();
    bad[inode_offset(img, hello) + 1] ^= 0x40; // regular (0x8000) becomes 0xC000 (socket)
    expect_corrupt(full_read(&bad), "ext4 directory /", "file_type 1");
}

#[test]
fn i_blocks_and_link_count_disagreements_are_named() {
    let img = ext2_image();
    let entries = full_read(img).unwrap();
    let hello = entry(&entries, "/hello").ino;
    let off = inode_offset(img, hello);
    expect_corrupt(full_read(&flip(img, off + 0x1C)), &format!("ext4 inode {hello}"), "i_blocks says");
    expect_corrupt(full_read(&flip(img, off + 0x1A)), &format!("ext4 inode {hello}"), "i_links_count");
    // /dir spans two blocks; an i_size of one block leaves the second mapped past it.
    let dir = entry(&entries, "/dir").clone();
    assert!(dir.size >= 2048, "/dir has {} bytes", dir.size);
    let mut bad = img.clone();
    let d = inode_offset(img, dir.ino);
    bad[d + 4..d + 8].copy_from_slice(&1024u32.to_le_bytes());
    expect_corrupt(full_read(&bad), "ext4 directory inode", "past i_size");
}

#[test]
fn extent_header_flip_names_the_extent_block() {
    for img in [ext4_image(), ext4_nocsum_image()] {
        let frag = entry(&full_read(img).unwrap(), "/frag").clone();
        let block = frag.map_blocks[0];
        expect_corrupt(
            full_read(&flip(img, (block * 1024) as usize)),
            &format!("extent block {block}"),
            "eh_magic",
        );
    }
    // A flip inside an extent entry is caught by the extent block checksum.
    let img = ext4_image();
    let frag = entry(&full_read(img).unwrap(), "/frag").clone();
    let block = frag.map_blocks[0];
    expect_corrupt(
        full_read(&flip(img, (block * 1024) as usize + 12 + 8)),
        &format!("extent block {block}"),
        "et_checksum mismatch",
    );
}

#[test]
fn dir_block_flip_is_a_checksum_mismatch() {
    let img = ext4_image();
    let dir = entry(&full_read(img).unwrap(), "/dir").clone();
    let block = dir.extents[0].physical;
    expect_corrupt(
        full_read(&flip(img, (block * 1024) as usize + 30)),
        "ext4 directory inode",
        "det_checksum mismatch",
    );
    // Without checksums a broken rec_len is named.
    let img = ext2_image();
    let dir = entry(&full_read(img).unwrap(), "/dir").clone();
    let block = dir.extents[0].physical as usize * 1024;
    let mut bad = img.clone();
    bad[block + 4] ^= 0x02; // rec_len of `.` becomes 14
    expect_corrupt(full_read(&bad), "ext4 directory inode", "rec_len");
}

#[test]
fn htree_hash_out_of_range_is_named() {
    let img = htree_image();
    let dir = entry(&full_read(img).unwrap(), "/dir").clone();
    assert!(!dir.index_blocks.is_empty(), "e2fsck -D indexed /dir");
    let root = (dir.extents[0].physical * 1024) as usize;
    let mut bad = img.clone();
    // The last dx_root entry's hash: raise it above every name of its block.
    let count = u16::from_le_bytes([img[root + 0x22], img[root + 0x23]]) as usize;
    assert!(count >= 2, "/dir's index has {count} entries");
    let last = root + 0x20 + 8 * (count - 1);
    bad[last..last + 4].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    expect_corrupt(full_read(&bad), "ext4 directory inode", "outside the index range");
    // A dx_root_info with a wrong info_length.
    let mut bad = img.clone();
    bad[root + 0x1D] = 9;
    expect_corrupt(full_read(&bad), "dx_root", "info_length 9");
}

#[test]
fn xattr_block_flip_is_a_checksum_mismatch() {
    let img = ext4_image();
    let x = entry(&full_read(img).unwrap(), "/xbig").xattr_block.unwrap();
    expect_corrupt(full_read(&flip(img, (x * 1024) as usize + 0x40)), "xattr block", "h_checksum mismatch");
}

#[test]
fn journal_superblock_flip_is_a_checksum_mismatch() {
    let img = ext4_image();
    let fs = Ext4::open(&img[..]).unwrap();
    let j = fs.inode(8).unwrap();
    let first = fs.block_map(&j).unwrap().extents[0].physical as usize * 1024;
    // mke2fs writes journals without a v2/v3 checksum; a flip of s_blocksize is caught.
    expect_corrupt(full_read(&flip(img, first + 0xE)), "jbd2 journal superblock", "s_blocksize");
    expect_corrupt(full_read(&flip(img, first)), "jbd2 journal superblock", "h_magic");
}

#[test]
fn backup_superblock_and_descriptor_flips_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let img = std::fs::read(mkfs(tmp.path(), "g.img", 20, &["-t", "ext4", "-b", "1024"], None)).unwrap();
    let fs = Ext4::open(&img[..]).unwrap();
    assert!(fs.check().unwrap().backups >= 1);
    // Group 1 starts at block 8193: its superblock copy, then its descriptor table copy.
    let sb1 = 8193 * 1024;
    expect_corrupt(
        full_read(&flip(&img, sb1 + 0x28)),
        "ext4 superblock backup in group 1",
        "s_checksum mismatch",
    );
    expect_corrupt(
        full_read(&flip(&img, sb1 + 1024 + 64 + 0x8)),
        "ext4 group descriptor 1 backup in group 1",
        "bg_checksum mismatch",
    );
}

#[test]
fn filesystem_inside_a_partition_reads_through_a_slice() {
    // The image placed 1 MiB into a larger disk; errors name disk offsets after rebase.
    use reprodisk_verifier::bytes::Slice;
    use reprodisk_verifier::ext4::rebase;
    let img = ext4_image();
    let base = 1 << 20;
    let mut disk = vec![0u8; base];
    disk.extend_from_slice(img);
    disk.extend_from_slice(&[0u8; 4096]);
    let part = Slice { inner: &disk[..], start: base as u64, len: img.len() as u64 };
    let fs = Ext4::open(part).unwrap();
    assert_eq!(fs.check().unwrap().entries, full_read(img).unwrap());
    disk[base + 1024 + 0x10] ^= 1;
    let part = Slice { inner: &disk[..], start: base as u64, len: img.len() as u64 };
    match Ext4::open(part).map_err(|e| rebase(e, base as u64)) {
        Err(Error::Corrupt { at, .. }) => assert_eq!(at.offset, Some(base as u64 + 1024)),
        other => panic!("expected a corrupt superblock, got {:?}", other.err()),
    }
}

#[test]
fn truncated_images_fail_with_truncated() {
    let img = ext4_image();
    for len in [0, 1000, 1500, 4096, img.len() / 2, img.len() - 1] {
        match Ext4::open(&img[..len]) {
            Err(Error::Truncated { .. }) => {}
            other => panic!("a {len}-byte prefix: expected Truncated, got {:?}", other.err()),
        }
    }
}

/// Sets a superblock field and recomputes the superblock checksum.
fn set_sb_u32(img: &[u8], off: usize, v: u32) -> Vec<u8> {
    let mut b = img.to_vec();
    b[1024 + off..1024 + off + 4].copy_from_slice(&v.to_le_bytes());
    let c = crc32c_raw(!0, &b[1024..1024 + 0x3FC]);
    b[1024 + 0x3FC..1024 + 0x400].copy_from_slice(&c.to_le_bytes());
    b
}

#[test]
fn huge_counts_fail_before_allocating() {
    let img = ext4_image();
    // s_blocks_count_lo / _hi: a filesystem far larger than the image.
    // (The inode count no longer matches the group count, which is checked first.)
    expect_corrupt(
        Ext4::open(&set_sb_u32(img, 0x4, u32::MAX)[..]).map(|_| vec![]),
        "ext4 superblock",
        "s_inodes_count",
    );
    assert!(matches!(Ext4::open(&set_sb_u32(img, 0x150, u32::MAX)[..]), Err(Error::Corrupt { .. })));
    // s_inodes_per_group beyond one bitmap block, s_log_block_size absurd, s_inodes_count.
    expect_corrupt(
        Ext4::open(&set_sb_u32(img, 0x28, u32::MAX)[..]).map(|_| vec![]),
        "ext4 superblock",
        "s_inodes_per_group",
    );
    expect_corrupt(
        Ext4::open(&set_sb_u32(img, 0x18, 40)[..]).map(|_| vec![]),
        "ext4 superblock",
        "s_log_block_size",
    );
    expect_corrupt(
        Ext4::open(&set_sb_u32(img, 0x0, u32::MAX)[..]).map(|_| vec![]),
        "ext4 superblock",
        "s_inodes_count",
    );
    expect_corrupt(
        Ext4::open(&set_sb_u32(img, 0x20, 0)[..]).map(|_| vec![]),
        "ext4 superblock",
        "s_blocks_per_group",
    );
    // A huge i_size is refused by the size cap, not allocated.
    let fs = Ext4::open(&img[..]).unwrap();
    let hello = entry(&full_read(img).unwrap(), "/hello").ino;
    assert!(fs.read_file(hello, 3).is_err());
}

#[test]
fn directory_loop_is_an_error() {
    // Without checksums the edit needs no fix-up: /dir/nested's entry in /dir is pointed
    // at /dir itself, so /dir is reachable twice.
    let img = ext4_nocsum_image();
    let entries = full_read(img).unwrap();
    let dir = entry(&entries, "/dir").clone();
    let nested = entry(&entries, "/dir/nested").ino;
    let mut bad = img.clone();
    let mut patched = false;
    for ext in &dir.extents {
        let start = (ext.physical * 1024) as usize;
        let end = start + (ext.len * 1024) as usize;
        let mut pos = start;
        while pos + 8 <= end {
            let ino = u32::from_le_bytes(bad[pos..pos + 4].try_into().unwrap());
            let rec = u16::from_le_bytes(bad[pos + 4..pos + 6].try_into().unwrap()) as usize;
            let nlen = bad[pos + 6] as usize;
            if ino == nested && &bad[pos + 8..pos + 8 + nlen] == b"nested" {
                bad[pos..pos + 4].copy_from_slice(&dir.ino.to_le_bytes());
                patched = true;
            }
            if rec == 0 {
                break;
            }
            pos += rec;
        }
    }
    assert!(patched, "the `nested` entry was not found in /dir");
    expect_corrupt(full_read(&bad), "ext4 directory /dir", "reached twice");
}

#[test]
fn extent_loop_is_an_error() {
    // The root of /frag is turned into a depth-2 index and its leaf into a depth-1 index
    // pointing at itself: the walk must stop at the revisit.
    let img = ext4_nocsum_image();
    let frag = entry(&full_read(img).unwrap(), "/frag").clone();
    let leaf = frag.map_blocks[0];
    let mut bad = img.clone();
    let root = inode_offset(img, frag.ino) + 0x28;
    bad[root + 6..root + 8].copy_from_slice(&2u16.to_le_bytes());
    let l = (leaf * 1024) as usize;
    bad[l + 6..l + 8].copy_from_slice(&1u16.to_le_bytes());
    bad[l + 12 + 4..l + 12 + 8].copy_from_slice(&(leaf as u32).to_le_bytes());
    bad[l + 12 + 8..l + 12 + 10].copy_from_slice(&0u16.to_le_bytes());
    expect_corrupt(full_read(&bad), "extent block", "loop");
}

/// Byte ranges of metadata worth flipping: superblock, descriptors, bitmaps, the used part
/// of the inode table, directory, extent and xattr blocks.
fn interesting(img: &[u8]) -> Vec<(usize, usize)> {
    let fs = Ext4::open(img).unwrap();
    let entries = full_read(img).unwrap();
    let mut v = vec![(1024, 2048), (2048, 3072)];
    for g in &fs.groups {
        v.push((g.bg_block_bitmap as usize * 1024, 1024));
        v.push((g.bg_inode_bitmap as usize * 1024, 1024));
        v.push((g.bg_inode_table as usize * 1024, 24 * 256));
    }
    for e in &entries {
        for &b in &e.map_blocks {
            v.push((b as usize * 1024, 1024));
        }
        if let Some(b) = e.xattr_block {
            v.push((b as usize * 1024, 1024));
        }
        if e.file_type == FileType::Directory {
            for x in &e.extents {
                v.push((x.physical as usize * 1024, x.len as usize * 1024));
            }
        }
    }
    v.into_iter().map(|(s, l)| (s, s + l)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_flips_never_panic(
        which in 0usize..4,
        flips in proptest::collection::vec((any::<usize>(), any::<usize>(), 1u8..=255), 1..8),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let img = [ext4_image(), ext4_nocsum_image(), ext2_image(), htree_image()][which];
        let ranges = interesting(img);
        let mut bad = img.clone();
        for (r, off, x) in flips {
            let (s, e) = ranges[r % ranges.len()];
            let at = (s + off % (e - s)).min(bad.len() - 1);
            bad[at] ^= x;
        }
        // Sometimes also cut the image short somewhere.
        if let Some(c) = cut {
            bad.truncate(c % bad.len());
        }
        // Any result is fine; a panic or a hang is not.
        let _ = full_read(&bad);
    }
}

#[test]
fn checked_paths_come_from_mke2fs() {
    // Sanity of the fixture itself: e2fsck agrees the pristine images are clean.
    for (name, img) in [("ext4", ext4_image()), ("ext4-nocsum", ext4_nocsum_image()), ("ext2", ext2_image())]
    {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("x.img");
        std::fs::write(&p, img).unwrap();
        let (out, code) = run("e2fsck", &["-fn", p.to_str().unwrap()]);
        assert_eq!(code, 0, "{name}: {out}");
        let _ = Path::new(&p);
    }
}

/// Applies debugfs write commands, in one debugfs session, to a copy of `img`.
fn debugfs_edit(img: &[u8], cmds: &[String]) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("e.img");
    let f = tmp.path().join("cmds");
    std::fs::write(&p, img).unwrap();
    std::fs::write(&f, cmds.join("\n") + "\n").unwrap();
    run_ok("debugfs", &["-w", "-f", f.to_str().unwrap(), p.to_str().unwrap()]);
    std::fs::read(&p).unwrap()
}

#[test]
fn journal_v3_checksum_is_verified() {
    // debugfs opens the journal with checksums (v3) and closes it: a clean v3 journal.
    let img = debugfs_edit(ext4_image(), &["jo -c".into(), "jc".into()]);
    let fs = Ext4::open(&img[..]).unwrap();
    let j = fs.journal.as_ref().unwrap();
    assert!(j.has_csum_v2v3(), "{:?}", j.feature_names());
    assert_eq!(j.checksum_type_name(), "crc32c");
    full_read(&img).unwrap();
    let first = fs.block_map(&fs.inode(8).unwrap()).unwrap().extents[0].physical as usize * 1024;
    expect_corrupt(full_read(&flip(&img, first + 0x1B)), "jbd2 journal superblock", "s_checksum mismatch");
}

#[test]
fn orphan_list_inodes_own_their_blocks() {
    let img = ext4_image();
    let entries = full_read(img).unwrap();
    let hello = entry(&entries, "/hello").clone();
    // What the kernel leaves after unlinking an open file: no name, no links, on the list.
    let orphaned = debugfs_edit(
        img,
        &[
            "unlink /hello".into(),
            format!("sif <{}> links_count 0", hello.ino),
            format!("ssv last_orphan {}", hello.ino),
        ],
    );
    let fs = Ext4::open(&orphaned[..]).unwrap();
    assert_eq!(fs.orphan_inodes().unwrap(), [hello.ino]);
    let checked = fs.check().unwrap();
    assert!(checked.entries.iter().all(|e| e.ino != hello.ino));
    let block = hello.extents[0].physical;
    assert_eq!(
        checked.owners.owner(block),
        Some(&reprodisk_verifier::ext4::Owner::Orphan { ino: hello.ino })
    );
    // An orphan whose i_dtime points back at itself is a loop, not a hang.
    let looped = debugfs_edit(&orphaned, &[format!("sif <{}> dtime {}", hello.ino, hello.ino)]);
    expect_corrupt(Ext4::open(&looped[..]).unwrap().check().map(|c| c.entries), "ext4 orphan list", "loop");
}

#[test]
fn wrong_dot_dot_is_named() {
    // In /dir/nested's first block, `.` takes 12 bytes and `..` follows: point it at the root.
    let img = ext2_image();
    let entries = full_read(img).unwrap();
    let nested = entry(&entries, "/dir/nested").clone();
    let parent = entry(&entries, "/dir").ino;
    let b = nested.extents[0].physical as usize * 1024;
    assert_eq!(u32::from_le_bytes(img[b + 12..b + 16].try_into().unwrap()), parent);
    let mut bad = img.clone();
    bad[b + 12..b + 16].copy_from_slice(&2u32.to_le_bytes());
    expect_corrupt(
        full_read(&bad),
        "ext4 directory /dir/nested",
        &format!("`..` names inode 2, expected {parent}"),
    );
}
