//! Data sources (host files, dense and sparse archive ranges), files over 4 GiB, two-level
//! htrees and determinism across node insertion orders.

mod ext4_support;

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use ext4_support::*;
use reprodisk::fs::ext4::{self, SizeRequest};
use reprodisk::tree::{DataSource, FileContent, FsTree, Node, NodeId, NodeKind};

#[test]
fn host_and_archive_sources_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    let host = tmp.path().join("host.bin");
    let host_data: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&host, &host_data).unwrap();
    // An "archive": 100 bytes of header, a dense member, then a sparse member's runs.
    let archive = tmp.path().join("a.tar");
    let mut f = std::fs::File::create(&archive).unwrap();
    f.write_all(&[9u8; 100]).unwrap();
    f.write_all(&[5u8; 9000]).unwrap();
    f.write_all(&[6u8; 5000]).unwrap();
    f.write_all(&[7u8; 3]).unwrap();
    drop(f);
    let archive = Arc::new(archive);
    let mut b = TreeBuilder::new();
    let mk = |size, source| NodeKind::File(FileContent { size, source });
    b.add(
        NodeId::ROOT,
        b"host",
        mk(host_data.len() as u64, DataSource::host(host.clone()).unwrap()),
        meta(0o600),
    );
    b.add(
        NodeId::ROOT,
        b"dense",
        mk(9000, DataSource::Archive { path: archive.clone(), offset: 100, map: None }),
        meta(0o644),
    );
    let map: Arc<[(u64, u64)]> = Arc::from(vec![(20_000u64, 5000u64), (100_000, 3)]);
    b.add(
        NodeId::ROOT,
        b"sparse",
        mk(200_000, DataSource::Archive { path: archive.clone(), offset: 9100, map: Some(map) }),
        meta(0o644),
    );
    let img = build(&b.tree, SizeRequest::Auto { extra_bytes: 0 }, tmp.path(), "src");
    assert_fsck_clean(&img);
    check_with_ext4_view(&b.tree, &img);
    check_with_debugfs(&b.tree, &img);
}

#[test]
fn sparse_file_over_4_gib_costs_only_its_data() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("big.tar");
    std::fs::write(&archive, [[1u8; 4096], [2u8; 4096]].concat()).unwrap();
    let size = 5u64 << 30;
    let far = (4u64 << 30) + (512 << 20);
    let map: Arc<[(u64, u64)]> = Arc::from(vec![(0u64, 4096u64), (far, 4096)]);
    let mut b = TreeBuilder::new();
    b.add(
        NodeId::ROOT,
        b"huge",
        NodeKind::File(FileContent {
            size,
            source: DataSource::Archive { path: Arc::new(archive), offset: 0, map: Some(map) },
        }),
        meta(0o644),
    );
    let plan = ext4::plan(&b.tree, &opts(), SizeRequest::Auto { extra_bytes: 0 }).unwrap();
    assert!(
        plan.size_bytes() <= 16 << 20,
        "a 5 GiB file with 8 KiB of data needs {} bytes",
        plan.size_bytes()
    );
    let img = build(&b.tree, SizeRequest::Auto { extra_bytes: 0 }, tmp.path(), "huge");
    assert_fsck_clean(&img);
    let fs = ext4_view::Ext4::load_from_path(&img).unwrap();
    assert_eq!(fs.metadata("/huge").unwrap().len(), size);
    let mut file = fs.open("/huge").unwrap();
    let mut buf = vec![0u8; 8192];
    file.read_exact(&mut buf).unwrap();
    assert!(buf[..4096].iter().all(|&x| x == 1) && buf[4096..].iter().all(|&x| x == 0));
    file.seek(SeekFrom::Start(far - 4096)).unwrap();
    file.read_exact(&mut buf).unwrap();
    assert!(buf[..4096].iter().all(|&x| x == 0) && buf[4096..].iter().all(|&x| x == 2));
    let stat = debugfs(&img, "stat /huge");
    assert!(stat.contains(&format!("Size: {size}")), "{stat}");
    assert!(stat.contains("(0):") && stat.contains(&format!("({}):", far / 4096)), "{stat}");
}

#[test]
fn directory_needing_two_htree_levels() {
    let mut b = TreeBuilder::new();
    let d = b.dir(NodeId::ROOT, b"many");
    let target = b.file(NodeId::ROOT, b"target", b"x".to_vec());
    // 12000 names of ~200 bytes fill more leaves than the dx_root can index (507).
    for i in 0..12_000u32 {
        let name = format!("{i:06}-{}", "n".repeat(193));
        b.tree.link(d, name.as_bytes(), target, "/many").unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();
    let img = build(&b.tree, SizeRequest::Auto { extra_bytes: 0 }, tmp.path(), "levels");
    assert_fsck_clean(&img);
    let dump = debugfs(&img, "htree_dump /many");
    assert!(dump.contains("Indirect levels: 1"), "{}", &dump[..dump.len().min(2000)]);
    check_with_ext4_view(&b.tree, &img);
    check_with_debugfs(&b.tree, &img);
}

/// The same tree with its nodes added in reverse order (so every NodeId differs).
fn reversed(t: &FsTree) -> FsTree {
    let n = t.nodes.len();
    let map = |id: NodeId| if id == NodeId::ROOT { id } else { NodeId((n - id.0 as usize) as u32) };
    let mut nodes: Vec<Option<Node>> = vec![None; n];
    for (i, node) in t.nodes.iter().enumerate() {
        let kind = match &node.kind {
            NodeKind::Dir(m) => {
                NodeKind::Dir(m.iter().map(|(k, v)| (k.clone(), map(*v))).collect::<BTreeMap<_, _>>())
            }
            k => k.clone(),
        };
        nodes[map(NodeId(i as u32)).0 as usize] = Some(Node { kind, meta: node.meta.clone() });
    }
    // Every slot is filled: `map` is a permutation of 0..n.
    FsTree { nodes: nodes.into_iter().map(|n| n.expect("permutation")).collect() }
}

#[test]
fn node_insertion_order_does_not_change_the_image() {
    let mut b = TreeBuilder::new();
    for d in [&b"zeta"[..], b"alpha", b"mid"] {
        let id = b.dir(NodeId::ROOT, d);
        for f in [&b"3"[..], b"1", b"2"] {
            b.file(id, f, [d, f].concat());
        }
    }
    let r = reversed(&b.tree);
    assert_ne!(r.nodes[1], b.tree.nodes[1]);
    assert_same_image(&b.tree, &r);
}

#[test]
fn file_spanning_block_groups_with_content_defined_holes() {
    let tmp = tempfile::tempdir().unwrap();
    // 150 MiB, one non-zero 4 KiB block every 64 KiB, read as a dense archive member: the
    // plan scans it (it is over 1 MiB) and reserves only its 2400 data blocks, across the
    // backup superblock of group 1, under a two-level extent tree.
    let host = tmp.path().join("spanning.bin");
    let size = 150u64 << 20;
    sparse_host_file(
        &host,
        size,
        (0..size / (64 << 10)).map(|k| (k * (64 << 10), vec![(k % 250) as u8 + 1; 4096])),
    );
    let mut b = TreeBuilder::new();
    let source = DataSource::Archive { path: Arc::new(host), offset: 0, map: None };
    b.add(NodeId::ROOT, b"spanning", NodeKind::File(FileContent { size, source }), meta(0o644));
    b.file(NodeId::ROOT, b"after", b"written after the big file".to_vec());
    let img = build(&b.tree, SizeRequest::Exact(1 << 30), tmp.path(), "span");
    assert_fsck_clean(&img);
    check_with_debugfs(&b.tree, &img);
    let fs = ext4_view::Ext4::load_from_path(&img).unwrap();
    let mut file = fs.open("/spanning").unwrap();
    let mut buf = vec![0u8; 64 << 10];
    for k in [0u64, 1000, 2000, 2399] {
        file.seek(SeekFrom::Start(k * (64 << 10))).unwrap();
        file.read_exact(&mut buf).unwrap();
        assert!(
            buf[..4096].iter().all(|&x| x == (k % 250) as u8 + 1) && buf[4096..].iter().all(|&x| x == 0),
            "chunk {k}"
        );
    }
    let h = dumpe2fs_h(&img);
    let free: u64 = h.lines().find(|l| l.starts_with("Free blocks:")).unwrap()[12..].trim().parse().unwrap();
    assert!(free > 262_144 - 20_000, "holes must stay free: {free} free blocks\n{h}");
}

#[test]
fn writes_at_an_offset_inside_a_larger_image() {
    let mut b = TreeBuilder::new();
    b.file(NodeId::ROOT, b"f", vec![7u8; 10_000]);
    let plan = ext4::plan(&b.tree, &opts(), SizeRequest::Auto { extra_bytes: 0 }).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("disk.img");
    let offset = 1u64 << 20;
    let f = std::fs::File::create(&disk).unwrap();
    f.set_len(offset + plan.size_bytes() + (1 << 20)).unwrap();
    let mut last = 0;
    plan.write(&b.tree, &f, offset, &mut |done| last = done).unwrap();
    assert_eq!(last, plan.data_bytes());
    drop(f);
    let bytes = std::fs::read(&disk).unwrap();
    let (before, rest) = bytes.split_at(offset as usize);
    let (fs, after) = rest.split_at(plan.size_bytes() as usize);
    assert!(
        before.iter().all(|&x| x == 0) && after.iter().all(|&x| x == 0),
        "nothing written outside the partition"
    );
    let part = tmp.path().join("part.img");
    std::fs::write(&part, fs).unwrap();
    assert_fsck_clean(&part);
    check_with_ext4_view(&b.tree, &part);
}

#[test]
fn sparse_host_file_is_planned_by_its_data() {
    let tmp = tempfile::tempdir().unwrap();
    let host = tmp.path().join("sparse-host.bin");
    let size = 5u64 << 30;
    sparse_host_file(&host, size, [(0, b"head".to_vec()), (size - 4, b"tail".to_vec())]);
    let mut b = TreeBuilder::new();
    b.add(
        NodeId::ROOT,
        b"vm.img",
        NodeKind::File(FileContent { size, source: DataSource::host(host).unwrap() }),
        meta(0o600),
    );
    let plan = ext4::plan(&b.tree, &opts(), SizeRequest::Auto { extra_bytes: 0 }).unwrap();
    assert!(
        plan.size_bytes() <= 16 << 20,
        "a 5 GiB sparse file with 8 bytes needs {} bytes",
        plan.size_bytes()
    );
    let img = build(&b.tree, SizeRequest::Auto { extra_bytes: 0 }, tmp.path(), "sparse-host");
    assert_fsck_clean(&img);
    let stat = debugfs(&img, "stat /vm.img");
    assert!(
        stat.contains(&format!("Size: {size}")) && stat.contains(&format!("({}):", (size - 1) / 4096)),
        "{stat}"
    );
    let fs = ext4_view::Ext4::load_from_path(&img).unwrap();
    let mut file = fs.open("/vm.img").unwrap();
    let mut buf = [0u8; 4];
    file.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"head");
    file.seek(SeekFrom::Start(size - 4)).unwrap();
    file.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"tail");
}

#[test]
fn build_folder_and_source_paths_do_not_change_the_image() {
    let tmp = tempfile::tempdir().unwrap();
    let tree_in = |folder: &str| {
        let dir = tmp.path().join(folder);
        std::fs::create_dir(&dir).unwrap();
        let mut b = TreeBuilder::new();
        for (name, data) in [("a", &b"alpha"[..]), ("b", &[0u8; 9000][..]), ("c", &b"gamma"[..])] {
            let p = dir.join(name);
            std::fs::write(&p, data).unwrap();
            let size = data.len() as u64;
            b.add(
                NodeId::ROOT,
                name.as_bytes(),
                NodeKind::File(FileContent { size, source: DataSource::host(p).unwrap() }),
                meta(0o644),
            );
        }
        b.tree
    };
    assert_same_image(&tree_in("first-folder"), &tree_in("second-folder"));
}

#[test]
fn a_hole_that_deepens_the_extent_tree_still_fits() {
    // 1360 planned extents fill the four leaves an inode can index; a zero block inside the
    // last run splits it into a 1361st extent, which needs a fifth leaf and an index block:
    // two blocks, while the hole frees one. The writer takes the other from unplanned space.
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("runs.tar");
    let mut stored = Vec::new();
    let mut map = Vec::new();
    for k in 0..1359u64 {
        map.push((k * 2 * 4096, 4096u64));
        stored.extend_from_slice(&[(k % 200) as u8 + 1; 4096]);
    }
    map.push((1359 * 2 * 4096, 3 * 4096));
    stored.extend_from_slice(&[9u8; 4096]);
    stored.extend_from_slice(&[0u8; 4096]);
    stored.extend_from_slice(&[9u8; 4096]);
    std::fs::write(&archive, &stored).unwrap();
    let size = 1359 * 2 * 4096 + 3 * 4096;
    let mut b = TreeBuilder::new();
    let source = DataSource::Archive { path: Arc::new(archive), offset: 0, map: Some(Arc::from(map)) };
    b.add(NodeId::ROOT, b"runs", NodeKind::File(FileContent { size, source }), meta(0o644));
    let img = build(&b.tree, SizeRequest::Auto { extra_bytes: 0 }, tmp.path(), "deepen");
    assert_fsck_clean(&img);
    check_with_ext4_view(&b.tree, &img);
    check_with_debugfs(&b.tree, &img);
}

/// Holes are decided by the bytes alone: the same two files stored densely on the host,
/// sparsely on the host, as dense archive members and as sparse members (map listing only the
/// data) give byte-identical images. One file is big enough to be scanned by the plan, one is
/// not (planned at full size, its zero blocks freed while writing, 74 extents in a leaf block
/// taken from those holes).
#[test]
fn holes_depend_on_the_bytes_not_on_how_the_source_stores_them() {
    const B: u64 = 4096;
    let big_size = (3 << 20) + 100;
    let big: Vec<(u64, Vec<u8>)> =
        vec![(0, vec![b'x'; B as usize]), (600 * B, vec![b'y'; 10]), (700 * B + 5, vec![b'z'; 3])];
    let small_size = 600_000u64;
    let small: Vec<(u64, Vec<u8>)> = (0..small_size.div_ceil(B))
        .step_by(2)
        .map(|k| (k * B, vec![k as u8 + 1; (small_size - k * B).min(B) as usize]))
        .collect();
    let dense = |size: u64, chunks: &[(u64, Vec<u8>)]| {
        let mut v = vec![0u8; size as usize];
        for (at, d) in chunks {
            v[*at as usize..*at as usize + d.len()].copy_from_slice(d);
        }
        v
    };
    let tmp = tempfile::tempdir().unwrap();
    let files = [(b"big".as_slice(), big_size, &big), (b"small".as_slice(), small_size, &small)];
    let mut trees = Vec::new();
    for how in ["host dense", "host sparse", "archive dense", "archive sparse"] {
        let mut b = TreeBuilder::new();
        for (name, size, chunks) in files {
            let path = tmp.path().join(format!("{how}-{}", String::from_utf8_lossy(name)));
            let source = match how {
                "host dense" => {
                    std::fs::write(&path, dense(size, chunks)).unwrap();
                    DataSource::host(path).unwrap()
                }
                "host sparse" => {
                    sparse_host_file(&path, size, chunks.iter().cloned());
                    let source = DataSource::host(path).unwrap();
                    assert!(matches!(source, DataSource::Host { allocated, .. } if allocated < size));
                    source
                }
                "archive dense" => {
                    std::fs::write(&path, [vec![1u8; 512], dense(size, chunks)].concat()).unwrap();
                    DataSource::Archive { path: Arc::new(path), offset: 512, map: None }
                }
                _ => {
                    let stored: Vec<u8> = chunks.iter().flat_map(|(_, d)| d.clone()).collect();
                    std::fs::write(&path, [vec![1u8; 512], stored].concat()).unwrap();
                    let map: Arc<[(u64, u64)]> = chunks.iter().map(|(at, d)| (*at, d.len() as u64)).collect();
                    DataSource::Archive { path: Arc::new(path), offset: 512, map: Some(map) }
                }
            };
            b.add(NodeId::ROOT, name, NodeKind::File(FileContent { size, source }), meta(0o644));
        }
        trees.push((how, b.tree));
    }
    let img = build(&trees[0].1, SizeRequest::Auto { extra_bytes: 0 }, tmp.path(), "dense");
    assert_fsck_clean(&img);
    check_with_debugfs(&trees[0].1, &img);
    let stat = debugfs(&img, "stat /big");
    assert!(stat.contains("Blockcount: 24\n"), "three data blocks only:\n{stat}");
    let first = std::fs::read(&img).unwrap();
    for (how, tree) in &trees[1..] {
        let other = build(tree, SizeRequest::Auto { extra_bytes: 0 }, tmp.path(), how);
        assert!(std::fs::read(&other).unwrap() == first, "{how} gives another image than host dense");
    }
}
