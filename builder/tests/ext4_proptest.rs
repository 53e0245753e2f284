//! Property test: random trees written by the ext4 writer pass e2fsck and read back exactly.

mod ext4_support;

use std::collections::BTreeMap;
use std::sync::Arc;

use ext4_support::*;
use proptest::prelude::*;
use reprodisk::fs::ext4::SizeRequest;
use reprodisk::tree::{DataSource, FileContent, FsTree, Metadata, Node, NodeId, NodeKind, Timestamp};

#[derive(Debug, Clone)]
enum Kind {
    Dir,
    /// Bit k set: block k holds data; then a tail of `tail` bytes after the blocks.
    File {
        blocks: u16,
        nblocks: u8,
        tail: u16,
        fill: u8,
    },
    Symlink(Vec<u8>),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
    Socket,
    HardLink(usize),
    /// A directory with this many generated entries (htree when large).
    BigDir(u16),
}

#[derive(Debug, Clone)]
struct Op {
    /// `None`: the most recent directory (gives deep nesting).
    parent: Option<usize>,
    name: Vec<u8>,
    kind: Kind,
    meta: Metadata,
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    let byte = (1u8..=255).prop_filter("no slash", |b| *b != b'/');
    prop_oneof![prop::collection::vec(byte.clone(), 1..=4), prop::collection::vec(byte, 1..=255)]
        .prop_filter("not . or ..", |n| n != b"." && n != b"..")
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    // ext4 stores [-2^31, 2^34 - 2^31), but e2fsck calls times past 2310 (epoch bits 3
    // with the sign bit set) "likely pre-1970", so the generated range stops there.
    (-(1i64 << 31)..3 * (1i64 << 32) - (1i64 << 31), 0u32..1_000_000_000)
        .prop_map(|(secs, nanos)| Timestamp { secs, nanos })
}

fn metadata() -> impl Strategy<Value = Metadata> {
    let xattr = (
        "[a-z0-9]{1,20}",
        prop_oneof![prop::collection::vec(any::<u8>(), 0..40), prop::collection::vec(any::<u8>(), 300..900)],
    );
    (
        0u16..0o10000,
        any::<u32>(),
        any::<u32>(),
        [timestamp(), timestamp(), timestamp(), timestamp()],
        prop::collection::vec(xattr, 0..4),
    )
        .prop_map(|(perm, uid, gid, [atime, mtime, ctime, crtime], xs)| Metadata {
            perm,
            uid,
            gid,
            atime,
            mtime,
            ctime,
            crtime,
            xattrs: xs
                .into_iter()
                .map(|(k, v)| (format!("user.{k}").into_bytes(), v))
                .collect::<BTreeMap<_, _>>(),
        })
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        3 => Just(Kind::Dir),
        6 => (any::<u16>(), 0u8..14, 0u16..4096, 1u8..=255).prop_map(|(blocks, nblocks, tail, fill)| Kind::File { blocks, nblocks, tail, fill }),
        2 => prop::collection::vec(1u8..=255, 1..=255).prop_map(Kind::Symlink),
        1 => (0u32..4096, 0u32..(1 << 20)).prop_map(|(a, b)| Kind::Char(a, b)),
        1 => (0u32..300, 0u32..300).prop_map(|(a, b)| Kind::Block(a, b)),
        1 => Just(Kind::Fifo),
        1 => Just(Kind::Socket),
        2 => any::<usize>().prop_map(Kind::HardLink),
        1 => (0u16..1200).prop_map(Kind::BigDir),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    (prop::option::weighted(0.7, any::<usize>()), name(), kind(), metadata())
        .prop_map(|(parent, name, kind, meta)| Op { parent, name, kind, meta })
}

fn file_bytes(blocks: u16, nblocks: u8, tail: u16, fill: u8) -> Vec<u8> {
    let mut v = vec![0u8; nblocks as usize * 4096 + tail as usize];
    for k in 0..nblocks as usize {
        if blocks & (1 << k) != 0 {
            for (i, b) in v[k * 4096..(k + 1) * 4096].iter_mut().enumerate() {
                *b = fill.wrapping_add((i % 7) as u8);
            }
        }
    }
    let n = v.len();
    for b in &mut v[n - tail as usize..] {
        *b = fill;
    }
    v
}

fn build_tree(root_meta: Metadata, ops: Vec<Op>) -> FsTree {
    let mut t = FsTree::new(root_meta);
    let mut dirs = vec![NodeId::ROOT];
    let mut others: Vec<NodeId> = Vec::new();
    for op in ops {
        let parent = match op.parent {
            None => *dirs.last().unwrap(),
            Some(i) => dirs[i % dirs.len()],
        };
        if matches!(&t.node(parent).kind, NodeKind::Dir(m) if m.contains_key(&op.name)) {
            continue;
        }
        let node_kind = match op.kind {
            Kind::Dir | Kind::BigDir(_) => NodeKind::Dir(BTreeMap::new()),
            Kind::File { blocks, nblocks, tail, fill } => {
                let data = file_bytes(blocks, nblocks, tail, fill);
                NodeKind::File(FileContent {
                    size: data.len() as u64,
                    source: DataSource::Bytes(Arc::from(data)),
                })
            }
            Kind::Symlink(ref target) => NodeKind::Symlink(target.clone()),
            Kind::Char(major, minor) => NodeKind::CharDevice { major, minor },
            Kind::Block(major, minor) => NodeKind::BlockDevice { major, minor },
            Kind::Fifo => NodeKind::Fifo,
            Kind::Socket => NodeKind::Socket,
            Kind::HardLink(i) => {
                if others.is_empty() {
                    continue;
                }
                t.link(parent, &op.name, others[i % others.len()], "/").unwrap();
                continue;
            }
        };
        let id = t.add(Node { kind: node_kind, meta: op.meta.clone() }).unwrap();
        t.link(parent, &op.name, id, "/").unwrap();
        match op.kind {
            Kind::Dir => dirs.push(id),
            Kind::BigDir(n) => {
                for k in 0..n {
                    let name = format!("{k:05}-{}", "long-entry-name-".repeat((k % 12) as usize));
                    let f = t.add(Node { kind: NodeKind::Fifo, meta: op.meta.clone() }).unwrap();
                    t.link(id, name.as_bytes(), f, "/").unwrap();
                }
            }
            _ => others.push(id),
        }
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn random_trees_are_fsck_clean_and_read_back(
        root in metadata(),
        ops in prop::collection::vec(op(), 0..40),
        // Extra space up to 600 MiB gives filesystems of several groups (backups, flex groups).
        extra_bytes in prop_oneof![3 => Just(0u64), 1 => 0u64..(600 << 20)],
    ) {
        let tree = build_tree(root, ops);
        let tmp = tempfile::tempdir().unwrap();
        let img = build(&tree, SizeRequest::Auto { extra_bytes }, tmp.path(), "prop");
        assert_fsck_clean(&img);
        check_with_ext4_view(&tree, &img);
        check_with_debugfs(&tree, &img);
        check_with_rdump(&tree, &img);
    }
}
