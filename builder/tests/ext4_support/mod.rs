//! Shared helpers for the ext4 writer tests: tree building, image writing and the e2fsprogs oracles.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use reprodisk::ext4::{self, Ext4Options, SizeRequest};
use reprodisk::tree::{DataSource, FileContent, FsTree, Metadata, Node, NodeId, NodeKind, Timestamp};

pub const T0: Timestamp = Timestamp { secs: 1_700_000_000, nanos: 123_456_789 };

pub fn opts() -> Ext4Options {
    let mut o = Ext4Options::new([0x11; 16], [0x22; 16], Timestamp::from_secs(315_532_800));
    o.label = b"reprodisk-test".to_vec();
    o
}

pub fn meta(perm: u16) -> Metadata {
    Metadata::new(perm, 1000, 100, T0)
}

/// Builds trees by path for tests.
pub struct TreeBuilder {
    pub tree: FsTree,
}

impl TreeBuilder {
    pub fn new() -> Self {
        TreeBuilder { tree: FsTree::new(meta(0o755)) }
    }

    pub fn add(&mut self, parent: NodeId, name: &[u8], kind: NodeKind, m: Metadata) -> NodeId {
        let id = self.tree.add(Node { kind, meta: m }).unwrap();
        self.tree.link(parent, name, id, "/").unwrap();
        id
    }

    pub fn dir(&mut self, parent: NodeId, name: &[u8]) -> NodeId {
        self.add(parent, name, NodeKind::Dir(BTreeMap::new()), meta(0o755))
    }

    pub fn file(&mut self, parent: NodeId, name: &[u8], data: Vec<u8>) -> NodeId {
        let size = data.len() as u64;
        self.add(parent, name, NodeKind::File(FileContent { size, source: DataSource::Bytes(Arc::from(data)) }), meta(0o644))
    }
}

/// Plans and writes `tree` into `dir/name.img`, returning the path.
pub fn build(tree: &FsTree, size: SizeRequest, dir: &Path, name: &str) -> PathBuf {
    let plan = ext4::plan(tree, &opts(), size).expect("plan");
    let path = dir.join(format!("{name}.img"));
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(plan.size_bytes()).unwrap();
    plan.write(tree, &f, 0, &mut |_| {}).expect("write");
    path
}

fn run(cmd: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{cmd}` ({e}): install the e2fsprogs package"));
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), s)
}

/// `e2fsck -fn`: exit 0 and nothing but the banner, the pass lines and the summary.
pub fn assert_fsck_clean(img: &Path) {
    let (code, out) = run("e2fsck", &["-fn", img.to_str().unwrap()]);
    let noise: Vec<&str> = out
        .lines()
        .filter(|l| !(l.starts_with("e2fsck ") || l.starts_with("Pass ") || l.contains(" files (") || l.is_empty()))
        .collect();
    assert!(code == 0 && noise.is_empty(), "e2fsck -fn {} exited {code}:\n{out}", img.display());
}

pub fn debugfs(img: &Path, req: &str) -> String {
    let (code, out) = run("debugfs", &["-R", req, img.to_str().unwrap()]);
    assert_eq!(code, 0, "debugfs -R {req:?} failed:\n{out}");
    out
}

pub fn dumpe2fs_h(img: &Path) -> String {
    let (code, out) = run("dumpe2fs", &["-h", img.to_str().unwrap()]);
    assert_eq!(code, 0, "dumpe2fs failed:\n{out}");
    out
}

pub fn run_tool(cmd: &str, args: &[&str]) -> (i32, String) {
    run(cmd, args)
}
