//! Shared helpers for the ext4 writer tests: tree building, image writing and the e2fsprogs oracles.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use reprodisk::fs::ext4::{self, Ext4Options, SizeRequest};
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
        self.add(
            parent,
            name,
            NodeKind::File(FileContent { size, source: DataSource::Bytes(Arc::from(data)) }),
            meta(0o644),
        )
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
        .filter(|l| {
            !(l.starts_with("e2fsck ") || l.starts_with("Pass ") || l.contains(" files (") || l.is_empty())
        })
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

/// The whole content of a regular file as the tree describes it.
pub fn expected_bytes(c: &FileContent) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut out = vec![0u8; c.size as usize];
    match &c.source {
        DataSource::Bytes(b) => out.copy_from_slice(&b[..c.size as usize]),
        DataSource::Host { path: p, .. } => {
            std::fs::File::open(p).unwrap().read_exact(&mut out).unwrap();
        }
        DataSource::Archive { path, offset, map } => {
            let mut f = std::fs::File::open(path.as_path()).unwrap();
            match map {
                None => {
                    f.seek(SeekFrom::Start(*offset)).unwrap();
                    f.read_exact(&mut out).unwrap();
                }
                Some(map) => {
                    f.seek(SeekFrom::Start(*offset)).unwrap();
                    for &(lo, len) in map.iter() {
                        f.read_exact(&mut out[lo as usize..(lo + len) as usize]).unwrap();
                    }
                }
            }
        }
    }
    out
}

fn type_bits(k: &NodeKind) -> u16 {
    match k {
        NodeKind::Dir(_) => 0o040000,
        NodeKind::File(_) => 0o100000,
        NodeKind::Symlink(_) => 0o120000,
        NodeKind::CharDevice { .. } => 0o020000,
        NodeKind::BlockDevice { .. } => 0o060000,
        NodeKind::Fifo => 0o010000,
        NodeKind::Socket => 0o140000,
    }
}

/// Every (path, node) of the tree, hard links included, parents before children.
pub fn all_paths(tree: &FsTree) -> Vec<(Vec<u8>, NodeId)> {
    let mut out = Vec::new();
    let mut stack = vec![(Vec::new(), NodeId::ROOT)];
    while let Some((p, id)) = stack.pop() {
        if let NodeKind::Dir(m) = &tree.node(id).kind {
            for (name, &c) in m.iter().rev() {
                let mut cp = p.clone();
                cp.push(b'/');
                cp.extend_from_slice(name);
                stack.push((cp, c));
            }
        }
        out.push((if p.is_empty() { b"/".to_vec() } else { p }, id));
    }
    out
}

/// Reads the image back with the ext4-view crate and compares every path with the tree.
pub fn check_with_ext4_view(tree: &FsTree, img: &Path) {
    let fs = ext4_view::Ext4::load_from_path(img).expect("ext4-view loads the image");
    for (p, id) in all_paths(tree) {
        let node = tree.node(id);
        let path = ext4_view::Path::new(&p);
        let shown = String::from_utf8_lossy(&p);
        let md = fs.symlink_metadata(path).unwrap_or_else(|e| panic!("ext4-view metadata of {shown:?}: {e}"));
        assert_eq!(md.mode(), node.meta.perm & 0o7777, "perm of {shown:?}");
        assert_eq!((md.uid(), md.gid()), (node.meta.uid, node.meta.gid), "owner of {shown:?}");
        match &node.kind {
            NodeKind::File(c) => {
                assert_eq!(md.len(), c.size, "size of {shown:?}");
                if c.size <= 64 << 20 {
                    let got = fs.read(path).unwrap_or_else(|e| panic!("ext4-view read {shown:?}: {e}"));
                    assert!(got == expected_bytes(c), "content of {shown:?} differs");
                }
            }
            NodeKind::Symlink(t) => {
                assert!(md.is_symlink(), "{shown:?} is a symlink");
                let got = fs.read_link(path).unwrap_or_else(|e| panic!("ext4-view read_link {shown:?}: {e}"));
                assert_eq!(got.as_ref(), &t[..], "target of {shown:?}");
            }
            NodeKind::Dir(m) => {
                assert!(md.is_dir());
                let mut names: Vec<Vec<u8>> = fs
                    .read_dir(path)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().as_ref().to_vec())
                    .filter(|n| n != b"." && n != b"..")
                    .collect();
                names.sort();
                let mut want: Vec<Vec<u8>> = m.keys().cloned().collect();
                if id == NodeId::ROOT && !m.contains_key(&b"lost+found"[..]) {
                    want.push(b"lost+found".to_vec());
                    want.sort();
                }
                assert_eq!(names, want, "entries of {shown:?}");
            }
            _ => {}
        }
    }
}

fn parse_ls_p(out: &[u8]) -> Vec<(u32, Vec<u8>)> {
    // Lines look like `/ino/mode/uid/gid/name/size/`; names never hold `/` but may hold
    // newlines, so the output is split on `/` and read six fields at a time.
    let start = out.windows(2).position(|w| w == b"\n/").map(|p| p + 1).unwrap_or(0);
    let body = &out[start..];
    let fields: Vec<&[u8]> = body.split(|&b| b == b'/').collect();
    let mut v = Vec::new();
    let mut i = 1;
    while i + 5 < fields.len() {
        let ino: u32 = match std::str::from_utf8(fields[i]).ok().and_then(|s| s.parse().ok()) {
            Some(n) => n,
            None => break,
        };
        // Inode 0 marks an unused entry (debugfs shows the fake dirent of dx_node blocks).
        if ino != 0 {
            v.push((ino, fields[i + 4].to_vec()));
        }
        i += 7; // ino, mode, uid, gid, name, size, then "\n" before the next "/"
    }
    v
}

fn debugfs_bytes(img: &Path, req: &str) -> Vec<u8> {
    let out = Command::new("debugfs")
        .args(["-R", req, img.to_str().unwrap()])
        .output()
        .expect("debugfs runs: install e2fsprogs");
    assert!(out.status.success(), "debugfs -R {req:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn decode_time(field: &str) -> Timestamp {
    let (lo, extra) = field.trim_start_matches("0x").split_once(':').unwrap();
    let lo = u32::from_str_radix(lo, 16).unwrap() as i32 as i64;
    let extra = u32::from_str_radix(extra, 16).unwrap();
    Timestamp { secs: lo + (((extra & 3) as i64) << 32), nanos: extra >> 2 }
}

fn after<'a>(s: &'a str, key: &str) -> &'a str {
    let i = s.find(key).unwrap_or_else(|| panic!("`{key}` not in debugfs output:\n{s}"));
    s[i + key.len()..].split_whitespace().next().unwrap()
}

/// Logical blocks mapped by the EXTENTS list of `debugfs stat`.
fn mapped_blocks(stat: &str) -> Vec<u64> {
    let Some(i) = stat.find("EXTENTS:") else { return Vec::new() };
    let mut v = Vec::new();
    for item in stat[i + 8..].split(|c: char| c == ',' || c.is_whitespace()).filter(|s| s.starts_with('(')) {
        let inner = &item[1..item.find(')').unwrap()];
        if inner.starts_with("ETB") {
            continue;
        }
        let (a, b) = inner.split_once('-').unwrap_or((inner, inner));
        v.extend(a.parse::<u64>().unwrap()..=b.parse::<u64>().unwrap());
    }
    v
}

/// Reads the image back with debugfs: directory listings by inode, `stat` of every inode,
/// `dump` of every file and `ea_get` of every xattr.
pub fn check_with_debugfs(tree: &FsTree, img: &Path) {
    let tmp = tempfile::tempdir().unwrap();
    let mut ino_of: BTreeMap<NodeId, u32> = BTreeMap::new();
    ino_of.insert(NodeId::ROOT, 2);
    let mut level = vec![NodeId::ROOT];
    while !level.is_empty() {
        let cmds: String = level.iter().map(|id| format!("ls -p <{}>\n", ino_of[id])).collect();
        let cmdfile = tmp.path().join("ls.cmds");
        std::fs::write(&cmdfile, &cmds).unwrap();
        let o = Command::new("debugfs")
            .args(["-f", cmdfile.to_str().unwrap(), img.to_str().unwrap()])
            .output()
            .unwrap();
        let text = o.stdout;
        // Split per command on the echoed "debugfs: ls -p <N>" lines.
        let mut next = Vec::new();
        for id in &level {
            let marker = format!("debugfs: ls -p <{}>\n", ino_of[id]);
            let pos =
                text.windows(marker.len()).position(|w| w == marker.as_bytes()).expect("ls output present");
            let rest = &text[pos + marker.len()..];
            let end = rest.windows(10).position(|w| w == b"\ndebugfs: ").map(|e| e + 1).unwrap_or(rest.len());
            let mut listing = b"\n".to_vec();
            listing.extend_from_slice(&rest[..end]);
            let got: BTreeMap<Vec<u8>, u32> = parse_ls_p(&listing)
                .into_iter()
                .filter(|(_, n)| n != b"." && n != b"..")
                .map(|(i, n)| (n, i))
                .collect();
            let NodeKind::Dir(m) = &tree.node(*id).kind else { unreachable!() };
            let mut want: Vec<&Vec<u8>> = m.keys().collect();
            let lf = b"lost+found".to_vec();
            if *id == NodeId::ROOT && !m.contains_key(&lf) {
                want.push(&lf);
                want.sort();
            }
            assert_eq!(got.keys().collect::<Vec<_>>(), want, "debugfs ls -p <{}>", ino_of[id]);
            for (name, &child) in m {
                let ino = got[name];
                if let Some(&prev) = ino_of.get(&child) {
                    assert_eq!(prev, ino, "hard links to one node share an inode");
                } else {
                    assert!(
                        !ino_of.values().any(|&v| v == ino),
                        "distinct nodes have distinct inodes ({ino})"
                    );
                    ino_of.insert(child, ino);
                    if matches!(tree.node(child).kind, NodeKind::Dir(_)) {
                        next.push(child);
                    }
                }
            }
        }
        level = next;
    }
    // One debugfs run for every stat, dump and ea_get.
    let mut cmds = String::new();
    for (id, ino) in &ino_of {
        cmds.push_str(&format!("stat <{ino}>\n"));
        if let NodeKind::File(_) = tree.node(*id).kind {
            cmds.push_str(&format!("dump <{ino}> {}/f{ino}\n", tmp.path().display()));
        }
        for (k, name) in tree.node(*id).meta.xattrs.keys().enumerate() {
            cmds.push_str(&format!(
                "ea_get -f {}/x{ino}.{k} <{ino}> {}\n",
                tmp.path().display(),
                String::from_utf8(name.clone()).unwrap()
            ));
        }
    }
    let cmdfile = tmp.path().join("all.cmds");
    std::fs::write(&cmdfile, &cmds).unwrap();
    let o = Command::new("debugfs")
        .args(["-f", cmdfile.to_str().unwrap(), img.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let links = tree.link_counts();
    for (id, ino) in &ino_of {
        let node = tree.node(*id);
        let marker = format!("debugfs: stat <{ino}>\n");
        let start = text.find(&marker).unwrap() + marker.len();
        let stat = &text[start..start + text[start..].find("debugfs: ").unwrap_or(text.len() - start)];
        let mode = u16::from_str_radix(after(stat, "Mode:"), 8).unwrap();
        assert_eq!(mode, node.meta.perm & 0o7777, "mode of <{ino}>");
        // debugfs prints ids with %d, so ids above 2^31 show as negative numbers.
        assert_eq!(after(stat, "User:").parse::<i64>().unwrap() as u32, node.meta.uid, "uid of <{ino}>");
        assert_eq!(after(stat, "Group:").parse::<i64>().unwrap() as u32, node.meta.gid, "gid of <{ino}>");
        let mut want_links = links[id.0 as usize];
        if let (true, NodeKind::Dir(m)) = (*id == NodeId::ROOT, &node.kind) {
            want_links += !m.contains_key(&b"lost+found"[..]) as u32;
        }
        let want_links = if want_links > 65000 { 1 } else { want_links };
        assert_eq!(after(stat, "Links:").parse::<u32>().unwrap(), want_links, "links of <{ino}>");
        for (key, t) in [
            (" ctime:", node.meta.ctime),
            (" atime:", node.meta.atime),
            (" mtime:", node.meta.mtime),
            ("crtime:", node.meta.crtime),
        ] {
            assert_eq!(decode_time(after(stat, key)), t, "{key} of <{ino}>");
        }
        match &node.kind {
            NodeKind::File(c) => {
                assert_eq!(after(stat, "Size:").parse::<u64>().unwrap(), c.size);
                let data = expected_bytes(c);
                let got = std::fs::read(tmp.path().join(format!("f{ino}"))).unwrap();
                assert!(got == data, "debugfs dump of <{ino}> differs");
                let want_mapped: Vec<u64> = data
                    .chunks(4096)
                    .enumerate()
                    .filter(|(_, b)| b.iter().any(|&x| x != 0))
                    .map(|(i, _)| i as u64)
                    .collect();
                assert_eq!(mapped_blocks(stat), want_mapped, "mapped blocks (holes) of <{ino}>");
            }
            NodeKind::CharDevice { major, minor } | NodeKind::BlockDevice { major, minor } => {
                let mm = after(stat, "Device major/minor number:");
                let (a, b) = mm.split_once(':').unwrap();
                assert_eq!(
                    (a.parse::<u32>().unwrap(), b.parse::<u32>().unwrap()),
                    (*major, *minor),
                    "device of <{ino}>"
                );
            }
            _ => {}
        }
        let ty = type_bits(&node.kind);
        let want_type = match ty {
            0o040000 => "directory",
            0o100000 => "regular",
            0o120000 => "symlink",
            0o020000 => "character special",
            0o060000 => "block special",
            0o010000 => "FIFO",
            _ => "socket",
        };
        assert!(stat.contains(&format!("Type: {want_type}")), "type of <{ino}>:\n{stat}");
        for (k, (_, value)) in node.meta.xattrs.iter().enumerate() {
            let got = std::fs::read(tmp.path().join(format!("x{ino}.{k}"))).unwrap_or_default();
            assert_eq!(&got, value, "xattr {k} of <{ino}>");
        }
    }
}

/// Dumps the image with `debugfs -R "rdump / DIR"` and compares the host copy with the tree:
/// file bytes, symlink targets, directory entries, owner and permission bits, and the low
/// 32 bits of mtime (rdump sets times from `i_mtime` alone and does not restore setuid,
/// setgid or sticky bits, so those are compared as rdump can show them). rdump skips devices, FIFOs and
/// sockets, which `check_with_debugfs` covers.
pub fn check_with_rdump(tree: &FsTree, img: &Path) {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("root");
    std::fs::create_dir(&out).unwrap();
    let text = debugfs(img, &format!("rdump / {}", out.display()));
    assert!(!text.contains("rdump:"), "debugfs rdump reported an error:\n{text}");
    for (p, id) in all_paths(tree) {
        let node = tree.node(id);
        let host = out.join(std::ffi::OsStr::from_bytes(&p[1..]));
        let shown = String::from_utf8_lossy(&p);
        let kind_dumped = matches!(node.kind, NodeKind::File(_) | NodeKind::Dir(_) | NodeKind::Symlink(_));
        let md = match std::fs::symlink_metadata(&host) {
            Ok(md) => md,
            Err(_) if !kind_dumped => continue,
            Err(e) => panic!("rdump lost {shown:?}: {e}"),
        };
        match &node.kind {
            NodeKind::File(c) => {
                assert!(std::fs::read(&host).unwrap() == expected_bytes(c), "rdump content of {shown:?}");
            }
            NodeKind::Symlink(t) => {
                assert_eq!(
                    std::fs::read_link(&host).unwrap().as_os_str().as_bytes(),
                    &t[..],
                    "rdump link {shown:?}"
                );
                continue; // rdump leaves symlinks owned by the dumping user
            }
            NodeKind::Dir(m) => {
                let mut names: Vec<Vec<u8>> = std::fs::read_dir(&host)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().as_bytes().to_vec())
                    .collect();
                names.sort();
                let mut want: Vec<Vec<u8>> = m.keys().cloned().collect();
                if id == NodeId::ROOT && !m.contains_key(&b"lost+found"[..]) {
                    want.push(b"lost+found".to_vec());
                    want.sort();
                }
                // Devices, FIFOs and sockets are not dumped.
                want.retain(|n| {
                    m.get(n).is_none_or(|c| {
                        matches!(
                            tree.node(*c).kind,
                            NodeKind::File(_) | NodeKind::Dir(_) | NodeKind::Symlink(_)
                        )
                    })
                });
                assert_eq!(names, want, "rdump entries of {shown:?}");
            }
            _ => {}
        }
        // rdump does not restore setuid, setgid and sticky bits; `check_with_debugfs` checks them.
        assert_eq!(md.mode() as u16 & 0o777, node.meta.perm & 0o777, "rdump mode of {shown:?}");
        assert_eq!((md.uid(), md.gid()), (node.meta.uid, node.meta.gid), "rdump owner of {shown:?}");
        if !matches!(node.kind, NodeKind::Dir(_)) {
            assert_eq!(md.mtime(), node.meta.mtime.secs as u32 as i64, "rdump mtime of {shown:?}");
        }
    }
}

/// Builds both trees with the automatic size and asserts the images are byte-identical.
pub fn assert_same_image(a: &FsTree, b: &FsTree) {
    let tmp = tempfile::tempdir().unwrap();
    let x = build(a, SizeRequest::Auto { extra_bytes: 1 << 20 }, tmp.path(), "first");
    let y = build(b, SizeRequest::Auto { extra_bytes: 1 << 20 }, tmp.path(), "second");
    assert!(std::fs::read(&x).unwrap() == std::fs::read(&y).unwrap(), "the two images differ");
}

/// A host file of `size` bytes that holds `chunks` (offset, bytes) and holes elsewhere.
pub fn sparse_host_file(path: &Path, size: u64, chunks: impl IntoIterator<Item = (u64, Vec<u8>)>) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    for (at, data) in chunks {
        f.write_all_at(&data, at).unwrap();
    }
}
