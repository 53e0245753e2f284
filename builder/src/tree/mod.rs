//! The in-memory file tree that every filesystem writer consumes: names, metadata and where each file's bytes live.
//!
//! Sources (directories, tar archives, `contents` entries, `configFile`) are merged into one
//! [`FsTree`] before any filesystem is planned. The tree holds metadata only; file data stays
//! in its source and is streamed by the writer, so memory does not grow with data size.
//!
//! Determinism contract (the writers rely on it):
//! - Directory entries are kept in a `BTreeMap<Vec<u8>, NodeId>`, i.e. sorted bytewise, whatever
//!   order the host's `readdir` or the archive used.
//! - Names are raw bytes (non-UTF-8 names survive); a name is never empty, never `.` or `..`,
//!   never contains `/` or NUL, and is at most 255 bytes. [`FsTree::link`] enforces this.
//! - Times in the tree are already final: ingestion applies the spec's timestamp policy
//!   (SOURCE_DATE_EPOCH replace/clamp/keep) so writers copy them as they are.
//! - Hard links are several directory entries naming the same [`NodeId`]; the link count of a
//!   node is derived ([`FsTree::link_counts`]), never stored.

pub mod chmod;
pub mod contents;
pub mod digest;
pub mod dir;
pub mod glob;
pub mod ingest;
pub mod passwd;
pub mod tar;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Index of a node in [`FsTree::nodes`]. The root directory is always `NodeId(0)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

impl NodeId {
    pub const ROOT: NodeId = NodeId(0);
}

/// A point in time with nanoseconds, as ext4 and tar (pax) can store it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Seconds since the Unix epoch (may be negative for pre-1970 archives).
    pub secs: i64,
    /// Nanoseconds, always below 1_000_000_000.
    pub nanos: u32,
}

impl Timestamp {
    pub const fn from_secs(secs: i64) -> Self {
        Timestamp { secs, nanos: 0 }
    }
}

/// Ownership, permissions, times and extended attributes of one inode.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Metadata {
    /// Permission bits including setuid, setgid and sticky (`0o7777` mask); the file type
    /// comes from [`NodeKind`], never from these bits.
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    /// Creation time (ext4 `i_crtime`).
    pub crtime: Timestamp,
    /// Extended attributes by full name (`user.foo`, `security.capability`, ...), sorted.
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Metadata {
    /// Metadata with every time set to `t`, no xattrs.
    pub fn new(perm: u16, uid: u32, gid: u32, t: Timestamp) -> Self {
        Metadata { perm, uid, gid, atime: t, mtime: t, ctime: t, crtime: t, xattrs: BTreeMap::new() }
    }
}

/// Where a regular file's bytes come from. The writer reads them only when it writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DataSource {
    /// A file on the host, read from offset 0. `allocated` is the space the host gave it
    /// when it was ingested (`st_blocks` x 512, from ingestion's own `lstat`): less than its
    /// size means it may hold host holes, which the ext4 planner then asks `SEEK_DATA` for so
    /// as not to read them. It only saves reads: holes are decided by the bytes either way.
    Host { path: PathBuf, allocated: u64 },
    /// A byte range of an uncompressed file (a plain tar, or a compressed tar unpacked to a
    /// temporary file by ingestion), starting at `offset`. For GNU/pax sparse members the
    /// `map` lists (logical offset, length) runs stored back to back from `offset`; `None`
    /// means the member is dense (`size` bytes at `offset`).
    Archive { path: Arc<PathBuf>, offset: u64, map: Option<Arc<[(u64, u64)]>> },
    /// Bytes held in memory (small generated files such as `configFile` copies).
    Bytes(Arc<[u8]>),
}

impl DataSource {
    /// A host file as ingestion records it: its path and the space `lstat` says it takes.
    pub fn host(path: PathBuf) -> std::io::Result<Self> {
        use std::os::unix::fs::MetadataExt;
        let allocated = std::fs::symlink_metadata(&path)?.blocks().saturating_mul(512);
        Ok(DataSource::Host { path, allocated })
    }
}

/// A regular file's content: its size and its source. Holes are content-defined: the writer
/// stores every block-aligned all-zero block as a hole (as `mke2fs -d` does), and where the
/// plan puts the other blocks depends on the bytes only, never on how sparse the host's copy
/// or the archive member happened to be (`fs/ext4/source.rs` has the rule).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileContent {
    pub size: u64,
    pub source: DataSource,
}

/// What a node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// Entries sorted bytewise by name.
    Dir(BTreeMap<Vec<u8>, NodeId>),
    File(FileContent),
    /// The link target as raw bytes, never followed.
    Symlink(Vec<u8>),
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
    Socket,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    pub meta: Metadata,
}

/// Errors from building or editing a tree.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    #[error("invalid file name {name:?} under `{parent}`: {why}")]
    BadName { parent: String, name: String, why: &'static str },
    #[error("`{0}` is not a directory")]
    NotADirectory(String),
    #[error("`{0}` already exists")]
    Exists(String),
    #[error("too many files: the tree may hold at most {max} nodes")]
    TooManyNodes { max: u64 },
}

/// A whole file tree: an arena of nodes whose node 0 is the root directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsTree {
    pub nodes: Vec<Node>,
}

impl FsTree {
    /// A tree holding only an empty root directory with the given metadata.
    pub fn new(root_meta: Metadata) -> Self {
        FsTree { nodes: vec![Node { kind: NodeKind::Dir(BTreeMap::new()), meta: root_meta }] }
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0 as usize]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id.0 as usize]
    }

    /// Adds a node that is not yet linked anywhere and returns its id.
    pub fn add(&mut self, node: Node) -> Result<NodeId, TreeError> {
        let id =
            u32::try_from(self.nodes.len()).map_err(|_| TreeError::TooManyNodes { max: u32::MAX as u64 })?;
        self.nodes.push(node);
        Ok(NodeId(id))
    }

    /// Checks that `name` is a valid single path component.
    pub fn check_name(parent: &str, name: &[u8]) -> Result<(), TreeError> {
        let why = if name.is_empty() {
            Some("empty name")
        } else if name == b"." || name == b".." {
            Some("`.` and `..` are reserved")
        } else if name.contains(&b'/') || name.contains(&0) {
            Some("names cannot contain `/` or NUL")
        } else if name.len() > 255 {
            Some("names are limited to 255 bytes")
        } else {
            None
        };
        match why {
            Some(why) => Err(TreeError::BadName {
                parent: parent.to_string(),
                name: String::from_utf8_lossy(name).into_owned(),
                why,
            }),
            None => Ok(()),
        }
    }

    /// Links `child` into directory `dir` under `name`. Fails if the name is invalid, `dir` is
    /// not a directory or the name is taken; `parent_path` is only used in messages.
    pub fn link(
        &mut self,
        dir: NodeId,
        name: &[u8],
        child: NodeId,
        parent_path: &str,
    ) -> Result<(), TreeError> {
        Self::check_name(parent_path, name)?;
        match &mut self.node_mut(dir).kind {
            NodeKind::Dir(entries) => {
                if entries.contains_key(name) {
                    return Err(TreeError::Exists(join_display(parent_path, name)));
                }
                entries.insert(name.to_vec(), child);
                Ok(())
            }
            _ => Err(TreeError::NotADirectory(parent_path.to_string())),
        }
    }

    /// Looks up a `/`-separated path (bytes, leading `/` optional) from the root.
    pub fn lookup(&self, path: &[u8]) -> Option<NodeId> {
        let mut cur = NodeId::ROOT;
        for comp in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            match &self.node(cur).kind {
                NodeKind::Dir(entries) => cur = *entries.get(comp)?,
                _ => return None,
            }
        }
        Some(cur)
    }

    /// Number of directory entries naming each node (the root counts as named once), plus for
    /// directories the `.` entry and one `..` per subdirectory, as ext4 counts `i_links_count`.
    pub fn link_counts(&self) -> Vec<u32> {
        let mut counts = vec![0u32; self.nodes.len()];
        counts[0] = 1;
        for node in &self.nodes {
            if let NodeKind::Dir(entries) = &node.kind {
                for &child in entries.values() {
                    counts[child.0 as usize] += 1;
                }
            }
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if let NodeKind::Dir(entries) = &node.kind {
                counts[i] += 1; // "."
                let subdirs =
                    entries.values().filter(|c| matches!(self.node(**c).kind, NodeKind::Dir(_))).count()
                        as u32;
                counts[i] += subdirs; // each child's ".."
            }
        }
        counts
    }

    /// Node ids in a deterministic depth-first pre-order (root first, entries by name), each
    /// node once even when hard-linked several times. Writers number inodes in this order.
    pub fn preorder(&self) -> Vec<NodeId> {
        let mut seen = vec![false; self.nodes.len()];
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack = vec![NodeId::ROOT];
        while let Some(id) = stack.pop() {
            if std::mem::replace(&mut seen[id.0 as usize], true) {
                continue;
            }
            out.push(id);
            if let NodeKind::Dir(entries) = &self.node(id).kind {
                stack.extend(entries.values().rev().copied());
            }
        }
        out
    }
}

fn join_display(parent: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if parent.ends_with('/') { format!("{parent}{name}") } else { format!("{parent}/{name}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> Node {
        Node { kind: NodeKind::Dir(BTreeMap::new()), meta: Metadata::new(0o755, 0, 0, Timestamp::default()) }
    }

    #[test]
    fn link_counts_follow_ext4_rules() {
        let mut t = FsTree::new(dir().meta);
        let a = t.add(dir()).unwrap();
        t.link(NodeId::ROOT, b"a", a, "/").unwrap();
        let f = t.add(Node { kind: NodeKind::Symlink(b"x".to_vec()), meta: dir().meta }).unwrap();
        t.link(a, b"l1", f, "/a").unwrap();
        t.link(NodeId::ROOT, b"l2", f, "/").unwrap();
        // root: named once + "." + ".." of /a; /a: one entry + "."; the link: two names.
        assert_eq!(t.link_counts(), vec![3, 2, 2]);
        assert_eq!(t.preorder(), vec![NodeId(0), NodeId(1), NodeId(2)]);
        assert_eq!(t.lookup(b"/a/l1"), Some(f));
        assert_eq!(t.lookup(b"a/missing"), None);
    }

    #[test]
    fn bad_names_are_rejected() {
        let mut t = FsTree::new(dir().meta);
        let a = t.add(dir()).unwrap();
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\0b", &[b'x'; 256]] {
            assert!(matches!(t.link(NodeId::ROOT, bad, a, "/"), Err(TreeError::BadName { .. })), "{bad:?}");
        }
        t.link(NodeId::ROOT, &[b'x'; 255], a, "/").unwrap();
        assert_eq!(
            t.link(NodeId::ROOT, &[b'x'; 255], a, "/"),
            Err(TreeError::Exists(format!("/{}", "x".repeat(255))))
        );
    }
}
