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
//!
//! Read once: a build does not read files to hash them. Ingestion takes a [`Deferred`]
//! digest (the records with a placeholder for each file's sha256), the ext4 write pass hashes
//! every file as it reads it ([`FileHashes`]), and [`Deferred::resolve`] completes the digest
//! from those. Only a file the image does not hold (replaced by a later source) is read here.

use std::io::Read;

use sha2::{Digest, Sha256};

use super::{DataSource, FileContent, FsTree, NodeId, NodeKind};

/// The sha256 of every regular file's bytes by content, as the ext4 write pass read them.
pub type FileHashes = std::collections::HashMap<FileContent, [u8; 32]>;

/// Where the bytes of a digest go: a running SHA-256, or a [`Recipe`] completed later.
trait Sink {
    fn bytes(&mut self, b: &[u8]);
    /// The lower-case hex sha256 of `c`'s bytes.
    fn file(&mut self, c: &FileContent) -> std::io::Result<()>;
}

impl Sink for Sha256 {
    fn bytes(&mut self, b: &[u8]) {
        self.update(b);
    }

    fn file(&mut self, c: &FileContent) -> std::io::Result<()> {
        self.update(content_sha256(c)?.as_bytes());
        Ok(())
    }
}

/// A digest's bytes with a placeholder for each file's sha256.
#[derive(Debug, Clone, Default)]
pub struct Recipe {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Bytes(Vec<u8>),
    File(FileContent),
}

impl Sink for Recipe {
    fn bytes(&mut self, b: &[u8]) {
        match self.parts.last_mut() {
            Some(Part::Bytes(v)) => v.extend_from_slice(b),
            _ => self.parts.push(Part::Bytes(b.to_vec())),
        }
    }

    fn file(&mut self, c: &FileContent) -> std::io::Result<()> {
        match &c.source {
            // Already in memory: hashing it now reads nothing.
            DataSource::Bytes(_) => self.bytes(content_sha256(c)?.as_bytes()),
            _ => self.parts.push(Part::File(c.clone())),
        }
        Ok(())
    }
}

/// A digest taken at ingestion whose file hashes come from the write pass.
#[derive(Debug, Clone)]
pub enum Deferred {
    /// The sha256 of one file's bytes.
    File(FileContent),
    /// A `tree-v1` digest.
    Tree(Recipe),
}

impl Deferred {
    /// The digest, as lower-case hex, with file hashes from `known` (a file missing there is
    /// read and hashed).
    pub fn resolve(&self, known: &FileHashes) -> std::io::Result<String> {
        let file = |c: &FileContent| match known.get(c) {
            Some(sha) => Ok(crate::manifest::hex(sha)),
            None => content_sha256(c),
        };
        match self {
            Deferred::File(c) => file(c),
            Deferred::Tree(r) => {
                let mut h = Sha256::new();
                for p in &r.parts {
                    match p {
                        Part::Bytes(b) => h.update(b),
                        Part::File(c) => h.update(file(c)?.as_bytes()),
                    }
                }
                Ok(crate::manifest::hex(&h.finalize()))
            }
        }
    }
}

/// The `tree-v1` digest of the subtree at `top`, as lower-case hex.
pub fn tree_digest(tree: &FsTree, top: NodeId) -> std::io::Result<String> {
    let mut h = Sha256::new();
    h.bytes(b"reprodisk-tree-v1\n");
    records(&mut h, tree, top, b".".to_vec())?;
    Ok(crate::manifest::hex(&h.finalize()))
}

/// [`tree_digest`] of the subtree at `top` as it is now, to be resolved once the files'
/// hashes are known.
pub fn deferred_tree_digest(tree: &FsTree, top: NodeId) -> std::io::Result<Deferred> {
    let mut r = Recipe::default();
    r.bytes(b"reprodisk-tree-v1\n");
    records(&mut r, tree, top, b".".to_vec())?;
    Ok(Deferred::Tree(r))
}

/// The `glob-v1` digest of the entries named `names` (the glob's matches) in the image
/// folder `dir`, as lower-case hex. A name the folder does not hold (the copy of a later
/// match replaced it by nothing, which cannot happen today) is recorded by name alone.
pub fn glob_digest(tree: &FsTree, dir: NodeId, names: &[Vec<u8>]) -> std::io::Result<String> {
    let mut h = Sha256::new();
    glob_records(&mut h, tree, dir, names)?;
    Ok(crate::manifest::hex(&h.finalize()))
}

/// [`glob_digest`] as it is now, to be resolved once the files' hashes are known.
pub fn deferred_glob_digest(tree: &FsTree, dir: NodeId, names: &[Vec<u8>]) -> std::io::Result<Deferred> {
    let mut r = Recipe::default();
    glob_records(&mut r, tree, dir, names)?;
    Ok(Deferred::Tree(r))
}

fn glob_records(h: &mut dyn Sink, tree: &FsTree, dir: NodeId, names: &[Vec<u8>]) -> std::io::Result<()> {
    h.bytes(b"reprodisk-glob-v1\n");
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
            Some(&id) => records(h, tree, id, path)?,
            None => {
                h.bytes(&path);
                h.bytes(b"\0missing\0\n");
            }
        }
    }
    Ok(())
}

/// Feeds the `tree-v1` records of the subtree at `top`, whose path is `top_path`, to `h`.
fn records(h: &mut dyn Sink, tree: &FsTree, top: NodeId, top_path: Vec<u8>) -> std::io::Result<()> {
    let mut stack: Vec<(NodeId, Vec<u8>)> = vec![(top, top_path)];
    while let Some((id, path)) = stack.pop() {
        let node = tree.node(id);
        let m = &node.meta;
        let mut field = |b: &[u8]| {
            h.bytes(b);
            h.bytes(&[0u8]);
        };
        field(&path);
        let (kind, extra) = match &node.kind {
            NodeKind::Dir(_) => ("dir", String::new()),
            // The size, a space, then the sha256 (written below).
            NodeKind::File(c) => ("file", format!("{} ", c.size)),
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
        h.bytes(extra.as_bytes());
        if let NodeKind::File(c) = &node.kind {
            h.file(c)?;
        }
        h.bytes(&[0u8]);
        h.bytes(b"\n");
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
        DataSource::Host { path: p, .. } => {
            crate::manifest::sha256_reader(std::fs::File::open(p)?.take(c.size), |_| {})
        }
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

    #[test]
    fn deferred_digest_is_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"host bytes").unwrap();
        let mut t = tree(0, b'a');
        let c = FileContent { size: 10, source: DataSource::Host { path: p, allocated: 4096 } };
        let f = t
            .add(Node {
                kind: NodeKind::File(c.clone()),
                meta: Metadata::new(0o600, 0, 0, Timestamp::from_secs(9)),
            })
            .unwrap();
        t.link(NodeId::ROOT, b"g", f, "/").unwrap();
        let want = tree_digest(&t, NodeId::ROOT).unwrap();
        let deferred = deferred_tree_digest(&t, NodeId::ROOT).unwrap();
        assert_eq!(deferred.resolve(&FileHashes::new()).unwrap(), want, "missing hashes are read");
        let sha: [u8; 32] = Sha256::digest(b"host bytes").into();
        std::fs::write(dir.path().join("f"), b"changed!!!").unwrap();
        let known = FileHashes::from([(c, sha)]);
        assert_eq!(deferred.resolve(&known).unwrap(), want, "known hashes are not read again");
    }
}
