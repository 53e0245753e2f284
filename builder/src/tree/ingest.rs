//! What every ingestion path shares: options, the timestamp policy, errors, and placing nodes into the tree.
//!
//! Decisions that hold for every source (directories, tar archives, `contents`):
//! - Only a source's mtime is taken. atime, ctime and crtime record host events (a read, a
//!   copy, an unpack), not content, so each is set to the final mtime. This keeps the tree a
//!   function of the sources' contents and mtimes.
//! - The timestamp policy is applied here, once, so the tree's times are final
//!   (ARCHITECTURE.md, "Time").
//! - Directories that ingestion has to create (missing parents, `mkdir -p` targets) are
//!   `0755`, owned `0:0`, timed SOURCE_DATE_EPOCH.
//! - Placing a node where a name already exists: a directory onto a directory merges (the
//!   incoming directory's metadata wins, as tar extraction and rsync do); anything else onto a
//!   non-directory replaces the name; a non-directory onto a directory is an error, because
//!   silently dropping a whole subtree is never what a user meant.
//! - Public ingestion functions end with [`canonicalize`]: nodes are renumbered in
//!   [`FsTree::preorder`] order and unreachable nodes are dropped, so two ingestions of the same
//!   content compare equal with `==` whatever order their sources listed entries in.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{FsTree, Metadata, Node, NodeId, NodeKind, Timestamp, TreeError};

/// How source file times become image file times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampPolicy {
    /// Times later than SOURCE_DATE_EPOCH become SOURCE_DATE_EPOCH; older ones are kept
    /// (as `tar --clamp-mtime` does).
    #[default]
    Clamp,
    /// Every time becomes SOURCE_DATE_EPOCH.
    SourceDateEpoch,
    /// Times are kept as the sources have them.
    Keep,
}

/// Options every ingestion function takes; the lead maps the spec onto them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestOptions {
    pub source_date_epoch: i64,
    pub timestamps: TimestampPolicy,
    /// Most nodes the tree may hold (the writer's inode budget); exceeding it is an error
    /// naming the path being added.
    pub max_nodes: u32,
    /// Most bytes of non-zero file data a compressed archive may stage in its scratch file
    /// (the disk size when it is fixed).
    pub max_staged_bytes: u64,
    /// Give every node of a folder `system.root` the owner 0:0 instead of the source's.
    pub squash_owners: bool,
}

impl IngestOptions {
    /// Options with the default policy (clamp) and no node limit but the tree's own.
    pub fn new(source_date_epoch: i64) -> Self {
        IngestOptions {
            source_date_epoch,
            timestamps: TimestampPolicy::Clamp,
            max_nodes: u32::MAX,
            max_staged_bytes: u64::MAX,
            squash_owners: false,
        }
    }

    /// SOURCE_DATE_EPOCH as a timestamp.
    pub fn epoch(&self) -> Timestamp {
        Timestamp::from_secs(self.source_date_epoch)
    }

    /// The final time for a source time `t` under the policy.
    pub fn time(&self, t: Timestamp) -> Timestamp {
        let sde = self.epoch();
        match self.timestamps {
            TimestampPolicy::Keep => t,
            TimestampPolicy::SourceDateEpoch => sde,
            TimestampPolicy::Clamp => t.min(sde),
        }
    }

    /// Metadata for a node from a source: every time is the final form of the source mtime.
    pub fn meta(&self, perm: u16, uid: u32, gid: u32, mtime: Timestamp) -> Metadata {
        Metadata::new(perm & 0o7777, uid, gid, self.time(mtime))
    }

    /// Metadata of a directory ingestion had to create: `0755`, `0:0`, SOURCE_DATE_EPOCH.
    pub fn created_dir_meta(&self) -> Metadata {
        Metadata::new(0o755, 0, 0, self.epoch())
    }
}

/// Errors from ingesting sources into a tree. Each names the path it is about; the CLI maps
/// every one of them to exit status 2.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot read `{}`: {source}; check that it exists and is readable", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot add `{path}` to the image: {source}")]
    Tree { path: String, source: TreeError },
    #[error("`{path}` from {origin} escapes the image root through `..`; use a path inside the image")]
    EscapesRoot { path: String, origin: String },
    #[error("source loop: directory `{}` is the same directory as its ancestor `{}` (a bind mount?)", path.display(), ancestor.display())]
    SourceLoop { path: PathBuf, ancestor: PathBuf },
    #[error(
        "too many files: adding `{path}` exceeds the limit of {max} nodes; enlarge the inode budget or trim the sources"
    )]
    TooManyFiles { path: String, max: u32 },
    #[error("`{path}` is a directory in the image but {origin} has a {kind} there; remove one of them")]
    TypeClash { path: String, origin: String, kind: &'static str },
    #[error("`{path}` in {origin} passes through `{blocker}`, which is not a directory in the image")]
    NotADirectory { path: String, origin: String, blocker: String },
    #[error("malformed tar archive `{}`, {member} at byte {offset}: {what}", archive.display())]
    Tar { archive: PathBuf, offset: u64, member: String, what: String },
    #[error("cannot write the unpacked data of a compressed archive to `{}`: {source}; free space there or build into another folder", path.display())]
    Scratch { path: PathBuf, source: std::io::Error },
    #[error(
        "tar archive `{}` holds more than {limit} bytes of file data that are not zeros, more than the whole disk; enlarge diskSize or trim the archive",
        archive.display()
    )]
    TooMuchData { archive: PathBuf, limit: u64 },
    #[error("tar archive `{}`: hard link `{member}` points to `{target}`, which no earlier member created", archive.display())]
    HardLinkTarget { archive: PathBuf, member: String, target: String },
    #[error("duplicate entry {target} -> {from}")]
    DuplicateEntry { target: String, from: String },
    #[error("contents entry {target} -> {from}: the pattern matched no file")]
    GlobNoMatch { target: String, from: String },
    #[error(
        "contents entry {target} -> {from}: invalid mode `{mode}` (expected octal like `0644` or rsync --chmod syntax like `u+rwX,go=rX` or `D755,F644`)"
    )]
    BadMode { target: String, from: String, mode: String },
    #[error("contents entry {target} -> {from}: set both `user` and `group` or neither")]
    UserWithoutGroup { target: String, from: String },
    #[error(
        "contents entry {target}: {kind} `{name}` is not in the image's `{file}`; add it there or use a numeric id"
    )]
    UnknownOwner { target: String, kind: &'static str, name: String, file: &'static str },
    #[error("`{path}` is not in the image: {why}")]
    NotInImage { path: String, why: &'static str },
    #[error("`{}` cannot be copied by {origin}: {what}", path.display())]
    Unsupported { path: PathBuf, origin: &'static str, what: &'static str },
    #[error(
        "{origin} `{}` is a {kind}, not a file or folder: its bytes are not data to copy (a fifo would block, a device never ends); name a regular file",
        path.display()
    )]
    SpecialSource { path: PathBuf, origin: String, kind: &'static str },
    #[error(
        "{origin} `{}` reaches the host's `{}`, a kernel interface, not files to copy; name a prepared folder instead",
        path.display(), host.display()
    )]
    HostInterface { path: PathBuf, origin: String, host: PathBuf },
    #[error(
        "{origin} `{}` holds more than {limit} bytes of file data, more than the whole disk; enlarge diskSize or trim the source",
        path.display()
    )]
    SourceTooLarge { path: PathBuf, origin: String, limit: u64 },
}

/// Checks a source the user named, before anything opens it: it must exist and, followed
/// if it is a symlink, be a regular file or a folder (or a symlink, for `contents`, which
/// copies links as links). FIFOs, devices and sockets are refused: opening a FIFO blocks and
/// a device such as `/dev/zero` never ends. Returns the followed metadata.
pub fn check_data_source(path: &std::path::Path, origin: &str) -> Result<std::fs::Metadata, IngestError> {
    use std::os::unix::fs::FileTypeExt;
    let md =
        std::fs::metadata(path).map_err(|source| IngestError::Io { path: path.to_path_buf(), source })?;
    let ft = md.file_type();
    let kind = if ft.is_fifo() {
        "fifo"
    } else if ft.is_char_device() {
        "character device"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_socket() {
        "socket"
    } else {
        return Ok(md);
    };
    Err(IngestError::SpecialSource { path: path.to_path_buf(), origin: origin.to_string(), kind })
}

/// Host folders that are kernel interfaces, never data: a source tree may not reach them.
const HOST_INTERFACES: [&str; 3] = ["/proc", "/sys", "/dev"];

/// Refuses a source folder that is, or contains, or lies inside `/proc`, `/sys` or `/dev`
/// once symlinks are resolved (a `contents` source that is a symlink to `/` is followed, as
/// rsync follows it, and would otherwise walk the whole host).
pub fn check_source_tree(path: &std::path::Path, origin: &str) -> Result<(), IngestError> {
    let real =
        std::fs::canonicalize(path).map_err(|source| IngestError::Io { path: path.to_path_buf(), source })?;
    for host in HOST_INTERFACES {
        let host = std::path::Path::new(host);
        if host.starts_with(&real) || real.starts_with(host) {
            return Err(IngestError::HostInterface {
                path: path.to_path_buf(),
                origin: origin.to_string(),
                host: host.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// Splits a `/`-separated image path into components, dropping empty and `.` components
/// and resolving `..` lexically. A `..` that would leave the root is an error.
pub fn normalize_path(path: &[u8], origin: &str) -> Result<Vec<Vec<u8>>, IngestError> {
    let mut comps: Vec<Vec<u8>> = Vec::new();
    for comp in path.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if comps.pop().is_none() {
                    return Err(IngestError::EscapesRoot {
                        path: String::from_utf8_lossy(path).into_owned(),
                        origin: origin.to_string(),
                    });
                }
            }
            c => comps.push(c.to_vec()),
        }
    }
    Ok(comps)
}

/// The display form (`/a/b`) of a list of components.
pub fn display_path(comps: &[Vec<u8>]) -> String {
    if comps.is_empty() {
        return "/".to_string();
    }
    let mut s = String::new();
    for c in comps {
        s.push('/');
        s.push_str(&String::from_utf8_lossy(c));
    }
    s
}

/// `parent` + `/` + `name` for messages.
pub(crate) fn child_path(parent: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if parent.ends_with('/') { format!("{parent}{name}") } else { format!("{parent}/{name}") }
}

/// The entries of a directory node, or `None` for other kinds.
pub(crate) fn entries(tree: &FsTree, dir: NodeId) -> Option<&BTreeMap<Vec<u8>, NodeId>> {
    match &tree.node(dir).kind {
        NodeKind::Dir(e) => Some(e),
        _ => None,
    }
}

/// Adds an unlinked node, enforcing the node budget.
pub(crate) fn add_node(
    tree: &mut FsTree,
    node: Node,
    path: &str,
    opts: &IngestOptions,
) -> Result<NodeId, IngestError> {
    add_node_lazy(tree, node, || path.to_string(), opts)
}

/// [`add_node`] building the path for messages only on error, so that deep paths cost
/// linear time.
fn add_node_lazy(
    tree: &mut FsTree,
    node: Node,
    path: impl Fn() -> String,
    opts: &IngestOptions,
) -> Result<NodeId, IngestError> {
    if tree.nodes.len() as u64 >= u64::from(opts.max_nodes) {
        return Err(IngestError::TooManyFiles { path: path(), max: opts.max_nodes });
    }
    tree.add(node).map_err(|source| IngestError::Tree { path: path(), source })
}

/// Walks `comps` from the root, creating missing directories (`mkdir -p`). Every existing
/// component must be a directory (symlinks are never followed). Linear in the number of
/// components: display paths are built only for errors.
pub fn mkdir_p(
    tree: &mut FsTree,
    comps: &[Vec<u8>],
    origin: &str,
    opts: &IngestOptions,
) -> Result<NodeId, IngestError> {
    let mut cur = NodeId::ROOT;
    for (i, comp) in comps.iter().enumerate() {
        let Some(map) = entries(tree, cur) else {
            return Err(IngestError::NotADirectory {
                path: display_path(comps),
                origin: origin.to_string(),
                blocker: display_path(&comps[..i]),
            });
        };
        cur = match map.get(comp) {
            Some(&id) => id,
            None => {
                let id = add_node_lazy(
                    tree,
                    Node { kind: NodeKind::Dir(BTreeMap::new()), meta: opts.created_dir_meta() },
                    || display_path(&comps[..=i]),
                    opts,
                )?;
                if tree.link(cur, comp, id, "").is_err() {
                    // Again, for the message with the real parent path.
                    link(tree, cur, comp, id, &display_path(&comps[..i]))?;
                }
                id
            }
        };
    }
    if entries(tree, cur).is_none() {
        return Err(IngestError::NotADirectory {
            path: display_path(comps),
            origin: origin.to_string(),
            blocker: display_path(comps),
        });
    }
    Ok(cur)
}

/// [`FsTree::link`] with the error carrying the full path.
pub(crate) fn link(
    tree: &mut FsTree,
    dir: NodeId,
    name: &[u8],
    child: NodeId,
    dir_path: &str,
) -> Result<(), IngestError> {
    tree.link(dir, name, child, dir_path)
        .map_err(|source| IngestError::Tree { path: child_path(dir_path, name), source })
}

/// What [`place`] found at the name.
pub(crate) enum Placed {
    /// The name was free or held a non-directory: `node` is now linked there.
    New(NodeId),
    /// The name held a directory and the incoming node is a directory: the existing one was
    /// kept with the incoming metadata; its entries stay.
    Merged(NodeId),
}

/// Links `node` as `name` in directory `dir`, following the module's merge/replace rules.
pub(crate) fn place(
    tree: &mut FsTree,
    dir: NodeId,
    dir_path: &str,
    name: &[u8],
    node: Node,
    origin: &str,
    opts: &IngestOptions,
) -> Result<Placed, IngestError> {
    let path = child_path(dir_path, name);
    FsTree::check_name(dir_path, name).map_err(|source| IngestError::Tree { path: path.clone(), source })?;
    let existing = entries(tree, dir).and_then(|e| e.get(name).copied());
    if let Some(old) = existing {
        let old_is_dir = matches!(tree.node(old).kind, NodeKind::Dir(_));
        let new_is_dir = matches!(node.kind, NodeKind::Dir(_));
        if old_is_dir && new_is_dir {
            tree.node_mut(old).meta = node.meta;
            return Ok(Placed::Merged(old));
        }
        if old_is_dir {
            return Err(IngestError::TypeClash {
                path,
                origin: origin.to_string(),
                kind: kind_name(&node.kind),
            });
        }
        let id = add_node(tree, node, &path, opts)?;
        if let NodeKind::Dir(e) = &mut tree.node_mut(dir).kind {
            e.insert(name.to_vec(), id);
        }
        return Ok(Placed::New(id));
    }
    let id = add_node(tree, node, &path, opts)?;
    link(tree, dir, name, id, dir_path)?;
    Ok(Placed::New(id))
}

/// Links an existing node (a hard link) as `name` in `dir`, replacing a non-directory there.
pub(crate) fn place_link(
    tree: &mut FsTree,
    dir: NodeId,
    dir_path: &str,
    name: &[u8],
    target: NodeId,
    origin: &str,
) -> Result<(), IngestError> {
    let path = child_path(dir_path, name);
    FsTree::check_name(dir_path, name).map_err(|source| IngestError::Tree { path: path.clone(), source })?;
    if let Some(old) = entries(tree, dir).and_then(|e| e.get(name).copied())
        && matches!(tree.node(old).kind, NodeKind::Dir(_))
    {
        return Err(IngestError::TypeClash {
            path,
            origin: origin.to_string(),
            kind: kind_name(&tree.node(target).kind),
        });
    }
    match &mut tree.node_mut(dir).kind {
        NodeKind::Dir(e) => {
            e.insert(name.to_vec(), target);
            Ok(())
        }
        _ => Err(IngestError::Tree { path, source: TreeError::NotADirectory(dir_path.to_string()) }),
    }
}

/// A short name of a node kind for messages.
pub(crate) fn kind_name(kind: &NodeKind) -> &'static str {
    match kind {
        NodeKind::Dir(_) => "directory",
        NodeKind::File(_) => "regular file",
        NodeKind::Symlink(_) => "symbolic link",
        NodeKind::CharDevice { .. } => "character device",
        NodeKind::BlockDevice { .. } => "block device",
        NodeKind::Fifo => "fifo",
        NodeKind::Socket => "socket",
    }
}

/// Renumbers the nodes in [`FsTree::preorder`] order and drops unreachable ones, so that the
/// arena (and `==`) depends on the tree's content only, not on the order it was built in.
pub fn canonicalize(tree: &mut FsTree) {
    let order = tree.preorder();
    let mut new_id = vec![u32::MAX; tree.nodes.len()];
    for (i, id) in order.iter().enumerate() {
        // The preorder never holds more ids than the arena, whose length fits in u32.
        new_id[id.0 as usize] = i as u32;
    }
    let mut old: Vec<Option<Node>> = std::mem::take(&mut tree.nodes).into_iter().map(Some).collect();
    let mut nodes = Vec::with_capacity(order.len());
    for id in order {
        // Each id appears once in the preorder, so every slot is taken exactly once.
        let mut node = old[id.0 as usize].take().expect("preorder lists each node once");
        if let NodeKind::Dir(e) = &mut node.kind {
            for child in e.values_mut() {
                *child = NodeId(new_id[child.0 as usize]);
            }
        }
        nodes.push(node);
    }
    tree.nodes = nodes;
}

/// Xattrs ingestion keeps: `user.*` and `security.capability`. Everything else is host policy
/// (`security.selinux`), kernel-managed, or needs a writer encoding we do not promise
/// (`system.posix_acl_*`, `trusted.*`).
pub fn keep_xattr(name: &[u8]) -> bool {
    name.starts_with(b"user.") || name == b"security.capability"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_clamps_replaces_or_keeps() {
        let mut o = IngestOptions::new(1000);
        let late = Timestamp { secs: 2000, nanos: 5 };
        let early = Timestamp { secs: 10, nanos: 7 };
        assert_eq!((o.time(late), o.time(early)), (Timestamp::from_secs(1000), early));
        o.timestamps = TimestampPolicy::SourceDateEpoch;
        assert_eq!((o.time(late), o.time(early)), (Timestamp::from_secs(1000), Timestamp::from_secs(1000)));
        o.timestamps = TimestampPolicy::Keep;
        assert_eq!((o.time(late), o.time(early)), (late, early));
        // A time one nanosecond past the epoch is still clamped.
        o.timestamps = TimestampPolicy::Clamp;
        assert_eq!(o.time(Timestamp { secs: 1000, nanos: 1 }), Timestamp::from_secs(1000));
    }

    #[test]
    fn paths_normalize_and_refuse_to_escape() {
        assert_eq!(normalize_path(b"/./a//b/../c/", "t").unwrap(), vec![b"a".to_vec(), b"c".to_vec()]);
        assert!(normalize_path(b"", "t").unwrap().is_empty());
        for bad in [&b".."[..], b"/../etc", b"a/../../b"] {
            assert!(matches!(normalize_path(bad, "t"), Err(IngestError::EscapesRoot { .. })), "{bad:?}");
        }
    }

    #[test]
    fn canonicalize_drops_orphans_and_orders_ids() {
        let o = IngestOptions::new(0);
        let mut t = FsTree::new(o.created_dir_meta());
        let orphan = t.add(Node { kind: NodeKind::Fifo, meta: o.created_dir_meta() }).unwrap();
        let b = mkdir_p(&mut t, &[b"b".to_vec()], "t", &o).unwrap();
        let a = mkdir_p(&mut t, &[b"a".to_vec()], "t", &o).unwrap();
        assert_eq!((orphan, b, a), (NodeId(1), NodeId(2), NodeId(3)));
        canonicalize(&mut t);
        assert_eq!(t.nodes.len(), 3);
        assert_eq!(t.lookup(b"/a"), Some(NodeId(1)));
        assert_eq!(t.lookup(b"/b"), Some(NodeId(2)));
    }

    #[test]
    fn node_budget_is_enforced_with_the_path() {
        let mut o = IngestOptions::new(0);
        o.max_nodes = 2;
        let mut t = FsTree::new(o.created_dir_meta());
        let err = mkdir_p(&mut t, &[b"a".to_vec(), b"b".to_vec()], "t", &o).unwrap_err();
        assert!(matches!(&err, IngestError::TooManyFiles { path, max: 2 } if path == "/a/b"), "{err}");
    }
}
