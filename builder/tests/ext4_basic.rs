//! End-to-end tests of the ext4 writer against e2fsck, dumpe2fs, debugfs and ext4-view.

mod ext4_support;

use std::collections::BTreeMap;

use ext4_support::*;
use reprodisk::fs::ext4::{self, Ext4Error, SizeRequest};
use reprodisk::tree::{FsTree, Metadata, NodeId, NodeKind, Timestamp};

/// A tree with one of everything the writer supports.
fn rich_tree() -> FsTree {
    let mut b = TreeBuilder::new();
    let etc = b.dir(NodeId::ROOT, b"etc");
    let host = b.file(etc, b"hostname", b"reprodisk\n".to_vec());
    b.tree.link(NodeId::ROOT, b"hardlink-to-hostname", host, "/").unwrap();
    b.file(NodeId::ROOT, b"empty", Vec::new());
    b.file(NodeId::ROOT, b"big", (0..300_000u32).map(|i| (i % 251) as u8).collect());
    // Sparse: data, 3 zero blocks, data, trailing zeros.
    let mut sparse = vec![0u8; 4096 * 8 + 100];
    sparse[10] = 1;
    sparse[4096 * 4 + 7] = 2;
    b.file(NodeId::ROOT, b"sparse", sparse);
    // Every other block zero: 40 extents, so the extent tree needs a leaf block.
    let mut frag = vec![0u8; 4096 * 80];
    for k in (0..80).step_by(2) {
        frag[k * 4096] = k as u8 + 1;
    }
    b.file(NodeId::ROOT, b"fragmented", frag);
    b.add(NodeId::ROOT, b"fast-link", NodeKind::Symlink(b"etc/hostname".to_vec()), meta(0o777));
    b.add(NodeId::ROOT, b"slow-link", NodeKind::Symlink(b"segment/".repeat(40)), meta(0o777));
    let dev = b.dir(NodeId::ROOT, b"dev");
    b.add(dev, b"null", NodeKind::CharDevice { major: 1, minor: 3 }, meta(0o666));
    b.add(dev, b"sda", NodeKind::BlockDevice { major: 8, minor: 0 }, meta(0o660));
    b.add(dev, b"big-numbers", NodeKind::CharDevice { major: 300, minor: 70000 }, meta(0o600));
    b.add(dev, b"fifo", NodeKind::Fifo, meta(0o644));
    b.add(dev, b"socket", NodeKind::Socket, meta(0o755));
    let mut m = meta(0o4755);
    m.xattrs.insert(
        b"security.capability".to_vec(),
        vec![1, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    );
    m.xattrs.insert(b"user.small".to_vec(), b"v".to_vec());
    m.xattrs.insert(b"user.big".to_vec(), vec![0xAB; 1500]);
    m.xattrs.insert(b"user.empty".to_vec(), Vec::new());
    m.atime = Timestamp { secs: -100_000, nanos: 999_999_999 };
    m.mtime = Timestamp { secs: 5_000_000_000, nanos: 1 };
    let x = b.file(NodeId::ROOT, b"with-xattrs", b"caps".to_vec());
    b.tree.node_mut(x).meta = m;
    let weird = b.dir(NodeId::ROOT, &[0xFF, 0xFE, b'\n', b' ']);
    b.file(weird, &[b'n'; 255], b"long name".to_vec());
    let mut deep = NodeId::ROOT;
    for i in 0..20u8 {
        deep = b.dir(deep, &[b'd', b'0' + i % 10]);
    }
    b.file(deep, b"bottom", b"deep".to_vec());
    let huge = b.dir(NodeId::ROOT, b"huge");
    for i in 0..2000u32 {
        b.file(huge, format!("entry-{i:05}-{}", "z".repeat((i % 40) as usize)).as_bytes(), Vec::new());
    }
    // Names with bytes >= 0x80 in an htree: their hashes depend on the unsigned-hash flag.
    let high = b.dir(NodeId::ROOT, b"high-bytes");
    for i in 0..60u8 {
        let name: Vec<u8> = (0..200u32).map(|k| 0x80 + ((k as u8).wrapping_mul(31) ^ i) % 0x7F).collect();
        b.file(high, &name, vec![i]);
    }
    b.tree
}

fn check_all(tree: &FsTree, img: &std::path::Path) {
    assert_fsck_clean(img);
    check_with_ext4_view(tree, img);
    check_with_debugfs(tree, img);
    check_with_rdump(tree, img);
}

#[test]
fn rich_tree_reads_back_with_every_oracle() {
    let tree = rich_tree();
    let tmp = tempfile::tempdir().unwrap();
    let img = build(&tree, SizeRequest::Auto { extra_bytes: 0 }, tmp.path(), "rich");
    if let Ok(d) = std::env::var("EXT4_KEEP") {
        std::fs::copy(&img, d).unwrap();
    }
    check_all(&tree, &img);
    let h = dumpe2fs_h(&img);
    for f in [
        "has_journal",
        "ext_attr",
        "resize_inode",
        "dir_index",
        "filetype",
        "extent",
        "flex_bg",
        "sparse_super",
        "large_file",
        "huge_file",
        "dir_nlink",
        "extra_isize",
        "metadata_csum",
    ] {
        assert!(h.contains(f), "feature {f} missing:\n{h}");
    }
    // Exactly these features: no incompat feature GRUB 2.06 cannot read.
    assert!(
        h.contains("Filesystem features:      has_journal ext_attr resize_inode dir_index filetype extent flex_bg sparse_super large_file huge_file dir_nlink extra_isize metadata_csum\n"),
        "{h}"
    );
    assert!(h.contains("Filesystem flags:         signed_directory_hash"), "{h}");
    assert!(h.contains("Maximum mount count:      -1") && h.contains("Mount count:              0"), "{h}");
    // dumpe2fs prints "Lifetime writes" only when s_kbytes_written is not zero.
    assert!(!h.contains("Lifetime writes"), "{h}");
    assert!(h.contains("Filesystem volume name:   reprodisk-test"), "{h}");
    assert!(h.contains("Filesystem UUID:          11111111-1111-1111-1111-111111111111"), "{h}");
    assert!(h.contains("Directory Hash Seed:      22222222-2222-2222-2222-222222222222"), "{h}");
    assert!(h.contains("Filesystem created:       Tue Jan  1 00:00:00 1980"), "{h}");
    let htree = debugfs(&img, "htree_dump /huge");
    assert!(htree.contains("Root node dump:"), "{htree}");
}

#[test]
fn exact_size_with_many_groups_and_64bit() {
    let tree = rich_tree();
    let tmp = tempfile::tempdir().unwrap();
    // 40 groups: flex groups 0 and 1, backups in groups 1, 3, 5, 7, 9, 25, 27.
    let img = build(&tree, SizeRequest::Exact((40 * 128) << 20), tmp.path(), "groups");
    check_all(&tree, &img);
    let mut o = opts();
    o.force_64bit = true;
    let plan = ext4::plan(&tree, &o, SizeRequest::Exact(300 << 20)).unwrap();
    let path = tmp.path().join("64.img");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(plan.size_bytes()).unwrap();
    plan.write(&tree, &f, 0, &mut |_| {}).unwrap();
    check_all(&tree, &path);
    assert!(dumpe2fs_h(&path).contains("64bit"));
}

#[test]
fn too_small_says_how_many_mib_are_missing() {
    let mut b = TreeBuilder::new();
    b.file(NodeId::ROOT, b"f", vec![1u8; 8 << 20]);
    let err =
        ext4::plan(&b.tree, &opts(), SizeRequest::Exact(6 << 20)).err().expect("6 MiB cannot hold 8 MiB");
    let Ext4Error::TooSmall { needed_bytes, available_bytes } = err else { panic!("{err}") };
    assert_eq!(available_bytes, 6 << 20);
    let auto = ext4::plan(&b.tree, &opts(), SizeRequest::Auto { extra_bytes: 0 }).unwrap();
    assert_eq!(needed_bytes, auto.size_bytes());
    assert!(
        err.to_string()
            .contains(&format!("{} MiB missing", (needed_bytes - available_bytes).div_ceil(1 << 20))),
        "{err}"
    );
    assert!(ext4::plan(&b.tree, &opts(), SizeRequest::Exact(auto.size_bytes())).is_ok());
}

#[test]
fn auto_size_adds_extra_and_rounds_to_mib() {
    let tree = rich_tree();
    let a = ext4::plan(&tree, &opts(), SizeRequest::Auto { extra_bytes: 0 }).unwrap();
    let b = ext4::plan(&tree, &opts(), SizeRequest::Auto { extra_bytes: 10 << 20 }).unwrap();
    assert_eq!(a.size_bytes() % (1 << 20), 0);
    assert_eq!(b.size_bytes(), a.size_bytes() + (10 << 20));
    // One MiB less than the automatic size does not fit.
    assert!(matches!(
        ext4::plan(&tree, &opts(), SizeRequest::Exact(a.size_bytes() - (1 << 20))),
        Err(Ext4Error::TooSmall { .. })
    ));
}

#[test]
fn building_twice_gives_identical_bytes() {
    let tree = rich_tree();
    assert_same_image(&tree, &tree.clone());
}

#[test]
fn missing_source_names_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("vanishing-source");
    std::fs::write(&src, b"data").unwrap();
    let mut b = TreeBuilder::new();
    let id = b.file(NodeId::ROOT, b"f", vec![1]);
    if let NodeKind::File(c) = &mut b.tree.node_mut(id).kind {
        c.size = 4;
        c.source = reprodisk::tree::DataSource::host(src.clone()).unwrap();
    }
    let plan = ext4::plan(&b.tree, &opts(), SizeRequest::Auto { extra_bytes: 0 }).unwrap();
    // Gone between planning and writing: the write names it.
    std::fs::remove_file(&src).unwrap();
    let f = std::fs::File::create(tmp.path().join("x.img")).unwrap();
    f.set_len(plan.size_bytes()).unwrap();
    let err = plan.write(&b.tree, &f, 0, &mut |_| {}).unwrap_err();
    assert!(matches!(&err, Ext4Error::Read { path, .. } if *path == src), "{err}");
    assert!(err.to_string().contains("vanishing-source"), "{err}");
    // Missing before planning: the plan touches no dense host file (ingestion's lstat said
    // how much space it takes), so the write names it.
    let plan = ext4::plan(&b.tree, &opts(), SizeRequest::Auto { extra_bytes: 0 }).unwrap();
    let err = plan.write(&b.tree, &f, 0, &mut |_| {}).unwrap_err();
    assert!(matches!(&err, Ext4Error::Read { path, .. } if *path == src), "{err}");
    // Shorter than the tree says: the write reports the change.
    std::fs::write(&src, b"da").unwrap();
    let plan = ext4::plan(&b.tree, &opts(), SizeRequest::Auto { extra_bytes: 0 }).unwrap();
    let err = plan.write(&b.tree, &f, 0, &mut |_| {}).unwrap_err();
    assert!(matches!(err, Ext4Error::SourceChanged { expected: 4, actual: 2, .. }), "{err}");
    let _ = (BTreeMap::<u8, u8>::new(), Metadata::new(0, 0, 0, T0));
}

#[test]
fn lost_found_from_the_tree_is_used_and_must_be_a_directory() {
    let mut b = TreeBuilder::new();
    let lf = b.dir(NodeId::ROOT, b"lost+found");
    b.file(lf, b"kept", b"orphan".to_vec());
    let tmp = tempfile::tempdir().unwrap();
    let img = build(&b.tree, SizeRequest::Auto { extra_bytes: 0 }, tmp.path(), "lf");
    check_all(&b.tree, &img);
    assert!(debugfs(&img, "stat <11>").contains("Size: 16384"));

    let mut b = TreeBuilder::new();
    b.file(NodeId::ROOT, b"lost+found", Vec::new());
    let err = ext4::plan(&b.tree, &opts(), SizeRequest::Auto { extra_bytes: 0 })
        .err()
        .expect("a file named lost+found is refused");
    assert!(matches!(err, Ext4Error::LostFoundNotADirectory), "{err}");
}

#[test]
fn more_inodes_than_a_fixed_size_holds_is_an_error() {
    let mut b = TreeBuilder::new();
    let d = b.dir(NodeId::ROOT, b"d");
    for i in 0..40_000u32 {
        b.add(d, format!("{i}").as_bytes(), NodeKind::Fifo, meta(0o644));
    }
    let err =
        ext4::plan(&b.tree, &opts(), SizeRequest::Exact(64 << 20)).err().expect("40000 inodes in one group");
    assert!(matches!(err, Ext4Error::TooManyInodes { needed: 40_012, max: 32768, .. }), "{err}");
    // The automatic size makes room for them.
    let tmp = tempfile::tempdir().unwrap();
    let img = build(&b.tree, SizeRequest::Auto { extra_bytes: 0 }, tmp.path(), "inodes");
    assert_fsck_clean(&img);
}

#[test]
fn more_than_65000_links_to_a_file_is_an_error() {
    let mut b = TreeBuilder::new();
    let f = b.file(NodeId::ROOT, b"f", Vec::new());
    let d = b.dir(NodeId::ROOT, b"d");
    for i in 0..65000u32 {
        b.tree.link(d, format!("{i}").as_bytes(), f, "/d").unwrap();
    }
    let err = ext4::plan(&b.tree, &opts(), SizeRequest::Auto { extra_bytes: 0 }).err().expect("65001 links");
    assert!(matches!(err, Ext4Error::TooManyLinks { links: 65001, .. }), "{err}");
}

#[test]
fn hard_linked_directories_and_empty_symlinks_are_refused() {
    let mut b = TreeBuilder::new();
    let d = b.dir(NodeId::ROOT, b"d");
    b.tree.link(NodeId::ROOT, b"again", d, "/").unwrap();
    let err =
        ext4::plan(&b.tree, &opts(), SizeRequest::Auto { extra_bytes: 0 }).err().expect("hard-linked dir");
    assert!(
        matches!(&err, Ext4Error::DirectoryHardLink { path } if path == "/again" || path == "/d"),
        "{err}"
    );

    let mut b = TreeBuilder::new();
    b.add(NodeId::ROOT, b"l", NodeKind::Symlink(Vec::new()), meta(0o777));
    let err =
        ext4::plan(&b.tree, &opts(), SizeRequest::Auto { extra_bytes: 0 }).err().expect("empty symlink");
    assert!(matches!(&err, Ext4Error::EmptySymlink { path } if path == "/l"), "{err}");
}

#[test]
fn e2fsck_notices_a_flipped_byte_so_the_checksums_are_checked() {
    let tree = rich_tree();
    let tmp = tempfile::tempdir().unwrap();
    let img = build(&tree, SizeRequest::Auto { extra_bytes: 0 }, tmp.path(), "flip");
    assert_fsck_clean(&img);
    // A byte of the entry names in /etc's first directory block.
    let out = debugfs(&img, "bmap /etc 0");
    let block: u64 = out.split_whitespace().find_map(|w| w.parse().ok()).expect("bmap prints a block number");
    let mut bytes = std::fs::read(&img).unwrap();
    bytes[(block * 4096 + 30) as usize] ^= 0x20;
    std::fs::write(&img, &bytes).unwrap();
    let (code, out) = run_tool("e2fsck", &["-fn", img.to_str().unwrap()]);
    assert_ne!(code, 0, "{out}");
    assert!(out.to_lowercase().contains("checksum"), "{out}");
}
