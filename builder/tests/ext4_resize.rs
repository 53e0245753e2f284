//! resize2fs grows filesystems the writer made, offline, and e2fsck stays clean.

mod ext4_support;

use ext4_support::*;
use reprodisk::fs::ext4::SizeRequest;
use reprodisk::tree::NodeId;

fn grow(img: &std::path::Path, factor: u64) {
    let size = std::fs::metadata(img).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(img).unwrap().set_len(size * factor).unwrap();
    let (code, out) = run_tool("resize2fs", &[img.to_str().unwrap()]);
    assert_eq!(code, 0, "resize2fs {factor}x:\n{out}");
    assert!(out.contains("is now"), "{out}");
    assert_fsck_clean(img);
}

#[test]
fn resize2fs_grows_4x_and_100x_offline() {
    let mut b = TreeBuilder::new();
    let d = b.dir(NodeId::ROOT, b"data");
    for i in 0..50u32 {
        b.file(d, format!("f{i}").as_bytes(), vec![i as u8 + 1; 10_000 + i as usize * 1000]);
    }
    let tmp = tempfile::tempdir().unwrap();
    // 512 MiB: 4 groups, 31 reserved GDT blocks; 100x needs 4 GDT blocks, so the growth
    // uses the reserved GDT blocks through the resize inode.
    for factor in [4, 100] {
        let img = build(&b.tree, SizeRequest::Exact(512 << 20), tmp.path(), &format!("g{factor}"));
        assert!(dumpe2fs_h(&img).contains("Reserved GDT blocks:      31"));
        grow(&img, factor);
        check_with_ext4_view(&b.tree, &img);
    }
    // A small automatic-size filesystem grows too.
    let img = build(&b.tree, SizeRequest::Auto { extra_bytes: 0 }, tmp.path(), "auto");
    grow(&img, 100);
    check_with_ext4_view(&b.tree, &img);
}

#[test]
fn large_exact_filesystem_stays_sparse_and_clean() {
    let mut b = TreeBuilder::new();
    b.file(NodeId::ROOT, b"f", b"data".to_vec());
    let tmp = tempfile::tempdir().unwrap();
    // 64 GiB: 512 groups in 32 flex groups, a 256 MiB journal, 63 reserved GDT blocks.
    let img = build(&b.tree, SizeRequest::Exact(64 << 30), tmp.path(), "large");
    assert_fsck_clean(&img);
    check_with_ext4_view(&b.tree, &img);
    use std::os::unix::fs::MetadataExt;
    let allocated = std::fs::metadata(&img).unwrap().blocks() * 512;
    assert!(
        allocated < 64 << 20,
        "a 64 GiB filesystem with one file allocates {allocated} bytes of its image"
    );
    let h = dumpe2fs_h(&img);
    assert!(h.contains("Block count:              16777216"), "{h}");
}
