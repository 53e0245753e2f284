//! End-to-end tests of the ext4 writer against e2fsck, dumpe2fs and debugfs.

mod ext4_support;

use ext4_support::*;
use reprodisk::ext4::SizeRequest;
use reprodisk::tree::{NodeId, NodeKind};

#[test]
fn small_tree_is_fsck_clean_and_has_the_features() {
    let mut b = TreeBuilder::new();
    let etc = b.dir(NodeId::ROOT, b"etc");
    b.file(etc, b"hostname", b"reprodisk\n".to_vec());
    b.file(NodeId::ROOT, b"empty", Vec::new());
    b.file(NodeId::ROOT, b"big", (0..300_000u32).map(|i| (i % 251) as u8).collect());
    b.add(NodeId::ROOT, b"link", NodeKind::Symlink(b"etc/hostname".to_vec()), meta(0o777));
    let tmp = tempfile::tempdir().unwrap();
    let img = build(&b.tree, SizeRequest::Auto { extra_bytes: 0 }, tmp.path(), "small");
    if let Ok(d) = std::env::var("EXT4_KEEP") { std::fs::copy(&img, d).unwrap(); }
    assert_fsck_clean(&img);
    let h = dumpe2fs_h(&img);
    for f in ["has_journal", "ext_attr", "resize_inode", "dir_index", "filetype", "extent", "flex_bg", "sparse_super", "large_file", "huge_file", "dir_nlink", "extra_isize", "metadata_csum"] {
        assert!(h.contains(f), "feature {f} missing:\n{h}");
    }
    let cat = debugfs(&img, "cat /etc/hostname");
    assert!(cat.contains("reprodisk"), "{cat}");
}
