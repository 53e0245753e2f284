//! Helpers shared by the tree ingestion tests: running reference tools and comparing trees by content.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use reprodisk::tree::tar::read_archive_range;
use reprodisk::tree::{DataSource, FileContent, FsTree, NodeKind};

/// Runs a shell command line; a missing tool or a failure fails the test with its output.
pub fn sh(script: &str) -> String {
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .output()
        .expect("bash is part of the base system");
    assert!(
        out.status.success(),
        "command failed ({}): {script}\nstdout: {}\nstderr: {}\n(if a tool is missing: apt-get install tar rsync attr zstd gzip)",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The bytes a file node stands for, read from wherever its source points.
pub fn content(c: &FileContent) -> Vec<u8> {
    let bytes = match &c.source {
        DataSource::Host { path: p, .. } => std::fs::read(p).expect("host source readable"),
        DataSource::Archive { path, offset, map } => {
            read_archive_range(path, *offset, c.size, map.as_deref()).expect("archive range readable")
        }
        DataSource::Bytes(b) => b.to_vec(),
    };
    assert_eq!(bytes.len() as u64, c.size, "size of {:?}", c.source);
    bytes
}

/// The tree with every data source replaced by its bytes, so trees from different kinds of
/// sources compare by content.
pub fn by_content(tree: &FsTree) -> FsTree {
    let mut t = tree.clone();
    for node in &mut t.nodes {
        if let NodeKind::File(c) = &mut node.kind {
            c.source = DataSource::Bytes(Arc::from(content(c)));
        }
    }
    t
}

/// Sets every time under `dir` (links included) to `secs`.
pub fn touch_all(dir: &Path, secs: i64) {
    sh(&format!("find '{}' -exec touch -h -d @{secs} {{}} +", dir.display()));
}

/// A `security.capability` value (vfs_cap_data revision 2, effective) granting CAP_NET_RAW,
/// what `setcap cap_net_raw+ep` writes.
pub const CAP_NET_RAW: [u8; 20] = [1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// Fills `dir` with one of everything a root tree holds: nested dirs, special permission bits,
/// a hard link, a symlink, sparse files (one with 30 data runs, more than GNU tar's header
/// and first extension block hold), a FIFO, devices, an xattr, a non-UTF-8 name and a
/// long path; every time is `secs`.
pub fn make_sample(dir: &Path, secs: i64) {
    let long = "n".repeat(200);
    sh(&format!(
        r#"cd '{d}'
        mkdir -p a/b/{long} sticky
        chmod 0750 a; chmod 1777 sticky
        printf hello > a/file; chmod 0644 a/file
        printf '#!/bin/sh\n' > a/exec; chmod 0755 a/exec
        printf s > suid; chmod 4755 suid
        ln a/file a/hard
        ln -s a/file link
        : > empty; chmod 0600 empty
        printf x > sparse; printf y | dd of=sparse bs=1 seek=600000 conv=notrunc status=none; truncate -s 1048576 sparse
        for i in $(seq 0 29); do printf "run$i" | dd of=holes bs=1 seek=$((i * 65536 + 7)) conv=notrunc status=none; done
        mkfifo fifo
        mknod chardev c 1 3; mknod blockdev b 7 0
        printf deep > a/b/{long}/deep
        printf z | dd of=a/b/{long}/$'sparse-\xff-with-a-long-path' bs=1 seek=300000 conv=notrunc status=none
        printf odd > $'\xff\xfename'
        "#,
        d = dir.display()
    ));
    xattr::set(dir.join("a/file"), "user.test", b"value").expect("user xattrs on the test filesystem");
    xattr::set(dir.join("a/exec"), "security.capability", &CAP_NET_RAW)
        .expect("root may set file capabilities");
    touch_all(dir, secs);
}

/// One line per path (`path kind perm uid:gid mtime extra`), for readable failures.
pub fn listing(tree: &FsTree) -> Vec<String> {
    fn walk(t: &FsTree, id: reprodisk::tree::NodeId, path: String, out: &mut Vec<String>) {
        let n = t.node(id);
        let extra = match &n.kind {
            NodeKind::Dir(_) => "dir".to_string(),
            NodeKind::File(c) => format!(
                "file {:?}",
                String::from_utf8_lossy(&content(c)).chars().take(40).collect::<String>()
            ),
            other => format!("{other:?}"),
        };
        out.push(format!(
            "{path} {extra} {:o} {}:{} {}.{:09} {:?} #{}",
            n.meta.perm, n.meta.uid, n.meta.gid, n.meta.mtime.secs, n.meta.mtime.nanos, n.meta.xattrs, id.0
        ));
        if let NodeKind::Dir(e) = &n.kind {
            for (name, &child) in e {
                walk(
                    t,
                    child,
                    format!("{}/{}", path.trim_end_matches('/'), String::from_utf8_lossy(name)),
                    out,
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(tree, reprodisk::tree::NodeId::ROOT, "/".to_string(), &mut out);
    out
}

/// Asserts two trees are equal by content, showing a per-path listing when they differ.
pub fn assert_same_tree(a: &FsTree, b: &FsTree, what: &str) {
    let (la, lb) = (listing(a), listing(b));
    assert_eq!(la, lb, "{what}: listings differ");
    assert_eq!(by_content(a), by_content(b), "{what}: trees differ beyond the listing");
}
