//! Property: any generated tree ingests to the same FsTree from its directory and from GNU tar and bsdtar archives of it.

mod tree_support;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use proptest::prelude::*;
use reprodisk::tree::dir::add_dir;
use reprodisk::tree::ingest::{IngestOptions, TimestampPolicy};
use reprodisk::tree::tar::add_tar;
use reprodisk::tree::{FsTree, Metadata, Timestamp};
use tree_support::sh;

#[derive(Debug, Clone)]
enum Entry {
    /// Mode, data runs (offset in 4 KiB blocks, bytes; the size is the end of the last run
    /// plus a tail of holes) and `user.*` xattrs with any value bytes.
    File(u32, Vec<(u16, Vec<u8>)>, u16, BTreeMap<String, Vec<u8>>),
    Dir(u32, BTreeMap<Vec<u8>, Entry>),
    Symlink(Vec<u8>),
    Fifo,
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    // Any byte but `/` and NUL, short or up to the 255-byte limit.
    let byte = prop_oneof![b'a'..=b'z', 0x20u8..=0x7e, 0x80u8..=0xff].prop_filter("no slash", |b| *b != b'/');
    prop_oneof![
        4 => proptest::collection::vec(byte.clone(), 1..12),
        1 => proptest::collection::vec(byte, 200..=255),
    ]
    .prop_filter("not . or ..", |n| n != b"." && n != b"..")
}

fn mode() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0o644), Just(0o755), Just(0o600), Just(0o4755), Just(0o2750), Just(0o1777), 0u32..0o7777]
}

fn entry() -> impl Strategy<Value = Entry> {
    let leaf = prop_oneof![
        4 => (
            mode(),
            proptest::collection::vec((0u16..64, proptest::collection::vec(any::<u8>(), 0..300)), 0..4),
            0u16..3000,
            proptest::collection::btree_map("user\\.[a-z=%]{1,12}", proptest::collection::vec(any::<u8>(), 0..40), 0..3),
        )
            .prop_map(|(m, runs, tail, xattrs)| Entry::File(m, runs, tail, xattrs)),
        1 => proptest::collection::vec(any::<u8>().prop_filter("no NUL", |b| *b != 0), 1..60).prop_map(Entry::Symlink),
        1 => Just(Entry::Fifo),
    ];
    leaf.prop_recursive(3, 40, 8, |inner| {
        (mode().prop_map(|m| m | 0o700), proptest::collection::btree_map(name(), inner, 0..8))
            .prop_map(|(m, children)| Entry::Dir(m, children))
    })
}

fn create(path: &Path, e: &Entry, dirs: &mut Vec<(std::path::PathBuf, u32)>) {
    match e {
        Entry::File(m, runs, tail, xattrs) => {
            let f = std::fs::File::create(path).unwrap();
            let mut end = 0u64;
            for (block, data) in runs {
                use std::os::unix::fs::FileExt;
                let off = u64::from(*block) * 4096;
                f.write_all_at(data, off).unwrap();
                end = end.max(off + data.len() as u64);
            }
            f.set_len(end + u64::from(*tail)).unwrap();
            for (k, v) in xattrs {
                xattr::set(path, k, v).unwrap();
            }
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(*m)).unwrap();
        }
        Entry::Dir(m, children) => {
            std::fs::create_dir(path).unwrap();
            for (n, c) in children {
                create(&path.join(OsStr::from_bytes(n)), c, dirs);
            }
            // Modes last, so a read-only directory can still be filled.
            dirs.push((path.to_path_buf(), *m));
        }
        Entry::Symlink(t) => std::os::unix::fs::symlink(OsStr::from_bytes(t), path).unwrap(),
        Entry::Fifo => {
            let status =
                std::process::Command::new("mkfifo").args(["-m", "0640"]).arg(path).status().unwrap();
            assert!(status.success(), "mkfifo {}", path.display());
        }
    }
}

fn empty() -> FsTree {
    FsTree::new(Metadata::new(0o755, 0, 0, Timestamp::from_secs(0)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn dir_and_archives_agree(children in proptest::collection::btree_map(name(), entry(), 0..10), links in proptest::collection::vec(any::<proptest::sample::Index>(), 0..3)) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let mut dirs = Vec::new();
        create(&root, &Entry::Dir(0o755, children), &mut dirs);
        // Hard links: second names for some regular files, in the root directory.
        let files: Vec<_> = walk(&root).into_iter().filter(|p| std::fs::symlink_metadata(p).unwrap().is_file()).collect();
        if !files.is_empty() {
            for (i, ix) in links.iter().enumerate() {
                let _ = std::fs::hard_link(ix.get(&files), root.join(format!("hardlink{i}")));
            }
        }
        for (d, m) in dirs.iter().rev() {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(*m)).unwrap();
        }
        tree_support::touch_all(&root, 1_500_000_000);
        let mut opts = IngestOptions::new(1_600_000_000);
        opts.timestamps = TimestampPolicy::Clamp;
        let mut from_dir = empty();
        add_dir(&mut from_dir, &root, b"/", &opts).unwrap();
        for (tool, name) in [
            ("tar --format=posix --xattrs --sparse --numeric-owner --owner=0 --group=0", "gnu.tar"),
            ("tar --format=gnu --sparse --numeric-owner --owner=0 --group=0", "gnu-old.tar"),
            ("bsdtar --format=pax --xattrs --numeric-owner --uid 0 --gid 0", "bsd.tar"),
        ] {
            let archive = tmp.path().join(name);
            sh(&format!("{tool} -C '{}' -cf '{}' .", root.display(), archive.display()));
            let mut from_tar = empty();
            add_tar(&mut from_tar, &archive, b"/", &opts).unwrap();
            let mut want = from_dir.clone();
            if name == "gnu-old.tar" {
                // The old GNU format has no place for xattrs.
                want.nodes.iter_mut().for_each(|n| n.meta.xattrs.clear());
            }
            tree_support::assert_same_tree(&from_tar, &want, tool);
        }
    }
}

fn walk(p: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        let mut names: Vec<_> = rd.map(|e| e.unwrap().path()).collect();
        names.sort();
        for n in names {
            if std::fs::symlink_metadata(&n).unwrap().is_dir() {
                out.extend(walk(&n));
            }
            out.push(n);
        }
    }
    out
}
