//! ext4 damage that e2fsck rejects and the verifier must report as an error: each case is
//! made from a clean mkfs.ext4 image by one targeted change (through `debugfs -w` where a
//! checksum must stay right), and each asserts both that `e2fsck -fn` rejects the image and
//! that `verify` reports an error saying what is wrong. The classes come from the
//! differential test's misses (`tests/differential.rs`).

mod ext4_util;

use ext4_util::*;
use reprodisk_verifier::ext4::Ext4;
use reprodisk_verifier::glue;
use reprodisk_verifier::report::Severity;
use std::path::Path;

/// A populated image (1 KiB or 4 KiB blocks): a file, a directory, a file with an xattr
/// block. `extra` goes to mke2fs.
fn image(dir: &Path, bs: &str, extra: &[&str]) -> std::path::PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("hello"), b"hello\n").unwrap();
    std::fs::write(src.join("sub/x"), b"x").unwrap();
    std::fs::write(src.join("xbig"), b"x").unwrap();
    run_ok("setfattr", &["-n", "user.big", "-v", &"v".repeat(600), src.join("xbig").to_str().unwrap()]);
    let mut a = vec!["-t", "ext4", "-b", bs, "-N", "64", "-E", "root_owner=0:0"];
    a.extend_from_slice(extra);
    mkfs(dir, &format!("fs-{bs}.img"), 8, &a, Some(&src))
}

/// A clean image from [`image`] in a fresh tempdir, with its bytes (to open it with).
fn made(bs: &str, extra: &[&str]) -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
    let tmp = tempfile::tempdir().unwrap();
    let img = image(tmp.path(), bs, extra);
    let bytes = std::fs::read(&img).unwrap();
    (tmp, img, bytes)
}

fn e2fsck_rejects(img: &Path) -> String {
    let (out, code) = run("e2fsck", &["-fn", img.to_str().unwrap()]);
    assert_ne!(code, 0, "e2fsck -fn accepts the damaged image:\n{out}");
    out
}

/// The error messages `verify` reports for the image at `img`.
fn verify_errors(img: &Path) -> Vec<String> {
    let bytes = std::fs::read(img).unwrap();
    glue::verify(&bytes, None, None, None)
        .findings
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| format!("{}: {}", f.location.unwrap_or_default(), f.message))
        .collect()
}

/// Asserts e2fsck rejects `img` with `e2fsck_says` and verify reports an error containing
/// `we_say`.
fn both_reject(img: &Path, e2fsck_says: &str, we_say: &str) {
    let theirs = e2fsck_rejects(img);
    assert!(theirs.contains(e2fsck_says), "e2fsck says:\n{theirs}");
    let ours = verify_errors(img);
    assert!(ours.iter().any(|m| m.contains(we_say)), "verify errors {ours:#?}, expected `{we_say}`");
}

fn debugfs_w(img: &Path, cmd: &str) {
    run_ok("debugfs", &["-w", "-R", cmd, img.to_str().unwrap()]);
}

fn patch(img: &Path, at: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(img).unwrap();
    f.write_all_at(bytes, at).unwrap();
}

#[test]
fn clean_images_have_no_errors() {
    for bs in ["1024", "4096"] {
        for extra in [&[][..], &["-O", "^metadata_csum"][..], &["-O", "^has_journal,^resize_inode"][..]] {
            let tmp = tempfile::tempdir().unwrap();
            let img = image(tmp.path(), bs, extra);
            run_ok("e2fsck", &["-fn", img.to_str().unwrap()]);
            assert_eq!(verify_errors(&img), Vec::<String>::new(), "{bs} {extra:?}");
        }
    }
}

#[test]
fn i_size_far_beyond_the_extents_is_an_error() {
    for bs in ["1024", "4096"] {
        let tmp = tempfile::tempdir().unwrap();
        let img = image(tmp.path(), bs, &[]);
        // 2^50 bytes: past the 2^32 blocks an extent tree can address on either block size.
        debugfs_w(&img, "sif /hello size 0x4000000000000");
        both_reject(&img, "i_size is", "past the largest size its block map can address");
    }
}

#[test]
fn mapped_blocks_past_i_size_are_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let img = image(tmp.path(), "1024", &[]);
    let src = tmp.path().join("four");
    std::fs::write(&src, vec![b'4'; 4096]).unwrap();
    debugfs_w(&img, &format!("write {} four", src.display()));
    debugfs_w(&img, "sif /four size 100");
    both_reject(&img, "i_size is 100", "data lies past the end of the file");
}

#[test]
fn inline_data_flag_without_the_feature_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let img = image(tmp.path(), "4096", &[]);
    // EXT4_EXTENTS_FL | EXT4_INLINE_DATA_FL.
    debugfs_w(&img, "sif /hello flags 0x10080000");
    both_reject(&img, "INLINE_DATA_FL", "lacks the inline_data feature");
}

#[test]
fn xattr_block_with_refcount_zero_is_an_error() {
    // Without metadata_csum the block carries no checksum, so h_refcount is the one change.
    let (_tmp, img, bytes) = made("1024", &["-O", "^metadata_csum"]);
    let fs = Ext4::open(&bytes[..]).unwrap();
    let entries = fs.walk().unwrap();
    let i = reprodisk_verifier::ext4::walk::find(&entries, b"/xbig").unwrap();
    let block = entries[i].xattr_block.expect("a 600-byte value needs an xattr block");
    patch(&img, block * 1024 + 4, &0u32.to_le_bytes());
    both_reject(&img, "reference count 0", "h_refcount is 0, but 1 inode names it");
}

#[test]
fn bitmap_padding_not_set_is_an_error() {
    for bs in [1024u64, 4096] {
        let (_tmp, img, bytes) = made(&bs.to_string(), &[]);
        let fs = Ext4::open(&bytes[..]).unwrap();
        // 64 inodes use 8 bytes of the inode bitmap; the checksum covers only those.
        let ib = fs.groups[0].bg_inode_bitmap * bs;
        patch(&img, ib + bs - 1, &[0x7F]);
        both_reject(&img, "Padding at end of inode bitmap is not set", "padding past the group's 64 inodes");
    }
}

#[test]
fn a_block_in_a_reserved_gdt_block_is_an_i_blocks_error() {
    let (_tmp, img, bytes) = made("1024", &[]);
    let fs = Ext4::open(&bytes[..]).unwrap();
    assert!(fs.sb.s_reserved_gdt_blocks > 0);
    // The first reserved GDT block follows the superblock (block 1) and the descriptors;
    // one group has no backups, so the resize inode's entries there are all zero.
    let first = 2 + fs.sb.old_gdt_blocks();
    patch(&img, first * 1024 + 40, &(first as u32).to_le_bytes());
    both_reject(&img, "Inode 7, i_blocks is", "ext4 inode 7 (resize inode)");
}

#[test]
fn an_internal_journal_with_two_users_is_an_error() {
    let (_tmp, img, bytes) = made("1024", &[]);
    let fs = Ext4::open(&bytes[..]).unwrap();
    let journal = fs.inode(fs.sb.s_journal_inum).unwrap();
    let first = fs.block_map(&journal).unwrap().extents[0].physical * 1024;
    // An internal journal's superblock naming two users.
    patch(&img, first + 0x40, &2u32.to_be_bytes());
    both_reject(&img, "multiple filesystem users", "s_nr_users is 2");
}
