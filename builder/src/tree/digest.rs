//! The canonical digest of a subtree as ingested, so the manifest names a folder input by its content.
//!
//! `tree-v1` digest: SHA-256 over the ASCII line `reprodisk-tree-v1\n`, then one record per
//! node in [`FsTree::preorder`] order below the subtree's top (names sorted bytewise, a
//! hard-linked node listed at each of its names). A record is the fields below, each
//! followed by a NUL byte, then a newline:
//! - the path relative to the top (`.` for the top, then `./a/b`; raw name bytes),
//! - the type (`dir`, `file`, `symlink`, `char`, `block`, `fifo`, `socket`),
//! - the permission bits in octal, uid, gid, and the mtime as `SECS.NANOS` (after the
//!   timestamp policy: the tree as it goes into the image; atime, ctime and crtime are the
//!   mtime by construction),
//! - every xattr as `NAME=HEXVALUE`, sorted by name, joined by `,`,
//! - for files the size and the sha256 of the bytes; for symlinks the target in hex; for
//!   devices `MAJOR:MINOR`; nothing for the others.
//!
//! The host folder's own path appears nowhere, so moving the source does not change the
//! digest; any change of a name, byte, mode, owner, time or xattr does.
//!
//! `glob-v1` digest, for a `contents` source with a `*`: SHA-256 over the ASCII line
//! `reprodisk-glob-v1\n`, then, for each name the glob matched (sorted bytewise, each name
//! once), the `tree-v1` records of the node the copy left at `target/NAME`, with paths
//! `./NAME`, `./NAME/b`, ... (the records of a folder match cover its whole subtree). So it
//! names what the expansion put into the image: a new match, a changed byte, mode or time
//! of a matched entry changes it, and the folder the glob was expanded in does not. The
//! host owner of a matched entry is not in it, because a `contents` copy is `rsync
//! --no-o --no-g` and never carries it into the image (the entry's `user`/`group` are in
//! the spec, whose sha256 the manifest records).

use std::io::Read;

use sha2::{Digest, Sha256};

use super::{DataSource, FileContent, FsTree, NodeId, NodeKind};

/// The `tree-v1` digest of the subtree at `top`, as lower-case hex.
pub fn tree_digest(tree: &FsTree, top: NodeId) -> std::io::Result<String> {
    let mut h = Sha256::new();
    h.update(b"reprodisk-tree-v1\n");
    records(&mut h, tree, top, b".".to_vec())?;
    Ok(crate::manifest::hex(&h.finalize()))
}

/// The `glob-v1` digest of the entries named `names` (the glob's matches) in the image
/// folder `dir`, as lower-case hex. A name the folder does not hold (the copy of a later
/// match replaced it by nothing, which cannot happen today) is recorded by name alone.
pub fn glob_digest(tree: &FsTree, dir: NodeId, names: &[Vec<u8>]) -> std::io::Result<String> {
    let mut h = Sha256::new();
    h.update(b"reprodisk-glob-v1\n");
    let mut names: Vec<&Vec<u8>> = names.iter().collect();
    names.sort();
    names.dedup();
    let entries = match &tree.node(dir).kind {
        NodeKind::Dir(entries) => Some(entries),
        _ => None,
    };
    for name in names {
        let mut path = b"./".to_vec();
        path.extend_from_slice(name);
        match entries.and_then(|e| e.get(name.as_slice())) {
            Some(&id) => records(&mut h, tree, id, path)?,
            None => {
                h.update(&path);
                h.update(b"\0missing\0\n");
            }
        }
    }
    Ok(crate::manifest::hex(&h.finalize()))
}

/// Feeds the `tree-v1` records of the subtree at `top`, whose path is `top_path`, to `h`.
fn records(h: &mut Sha256, tree: &FsTree, top: NodeId, top_path: Vec<u8>) -> std::io::Result<()> {
    let mut stack: Vec<(NodeId, Vec<u8>)> = vec![(top, top_path)];
    while let Some((id, path)) = stack.pop() {
        let node = tree.node(id);
        let m = &node.meta;
        let mut field = |b: &[u8]| {
            h.update(b);
            h.update([0u8]);
        };
        field(&path);
        let (kind, extra) = match &node.kind {
            NodeKind::Dir(_) => ("dir", String::new()),
            NodeKind::File(c) => ("file", format!("{} {}", c.size, content_sha256(c)?)),
            NodeKind::Symlink(t) => ("symlink", crate::manifest::hex(t)),
            NodeKind::CharDevice { major, minor } => ("char", format!("{major}:{minor}")),
            NodeKind::BlockDevice { major, minor } => ("block", format!("{major}:{minor}")),
            NodeKind::Fifo => ("fifo", String::new()),
            NodeKind::Socket => ("socket", String::new()),
        };
        field(kind.as_bytes());
        field(format!("{:o}", m.perm).as_bytes());
        field(m.uid.to_string().as_bytes());
        field(m.gid.to_string().as_bytes());
        field(format!("{}.{:09}", m.mtime.secs, m.mtime.nanos).as_bytes());
        let xattrs: Vec<String> = m
            .xattrs
            .iter()
            .map(|(k, v)| format!("{}={}", String::from_utf8_lossy(k), crate::manifest::hex(v)))
            .collect();
        field(xattrs.join(",").as_bytes());
        field(extra.as_bytes());
        h.update(b"\n");
        if let NodeKind::Dir(entries) = &node.kind {
            for (name, &child) in entries.iter().rev() {
                let mut p = path.clone();
                p.push(b'/');
                p.extend_from_slice(name);
                stack.push((child, p));
            }
        }
    }
    Ok(())
}

/// The sha256 of a file's bytes, read from its source (holes of a sparse map as zeros).
pub fn content_sha256(c: &FileContent) -> std::io::Result<String> {
    match &c.source {
        DataSource::Bytes(b) => crate::manifest::sha256_reader(&b[..], |_| {}),
        DataSource::Host(p) => crate::manifest::sha256_reader(std::fs::File::open(p)?.take(c.size), |_| {}),
        DataSource::Archive { path, offset, map: None } => {
            let mut f = std::fs::File::open(path.as_path())?;
            std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(*offset))?;
            crate::manifest::sha256_reader(f.take(c.size), |_| {})
        }
        DataSource::Archive { path, offset, map: Some(map) } => {
            let bytes = super::tar::read_archive_range(path, *offset, c.size, Some(map))?;
            crate::manifest::sha256_reader(&bytes[..], |_| {})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{Metadata, Node, Timestamp};

    fn tree(uid: u32, byte: u8) -> FsTree {
        let mut t = FsTree::new(Metadata::new(0o755, 0, 0, Timestamp::from_secs(0)));
        let f = t
            .add(Node {
                kind: NodeKind::File(FileContent { size: 1, source: DataSource::Bytes(vec![byte].into()) }),
                meta: Metadata::new(0o644, uid, 0, Timestamp::from_secs(5)),
            })
            .unwrap();
        t.link(NodeId::ROOT, b"f", f, "/").unwrap();
        t
    }

    #[test]
    fn digest_follows_content_and_owners() {
        let d = tree_digest(&tree(0, b'a'), NodeId::ROOT).unwrap();
        assert_eq!(d, tree_digest(&tree(0, b'a'), NodeId::ROOT).unwrap());
        assert_ne!(d, tree_digest(&tree(1, b'a'), NodeId::ROOT).unwrap());
        assert_ne!(d, tree_digest(&tree(0, b'b'), NodeId::ROOT).unwrap());
    }
}
