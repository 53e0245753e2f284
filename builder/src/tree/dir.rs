//! Ingestion of host directories and files into the tree, never following symlinks, in sorted order.
//!
//! Decisions:
//! - Entries are visited sorted bytewise by name, never in `readdir` order, and every entry is
//!   read with `lstat` (relative to its open folder, so one name is looked up, not the
//!   whole path): symlinks are copied as links. Only the top-level source itself is
//!   followed when it is a symlink to a directory, as `rsync -a src/ dst` does.
//! - Mode bits and mtime come from the host (atime/ctime/crtime become the mtime, see
//!   [`super::ingest`]). Owners of the root tree come from the host too, as `mke2fs -d` and
//!   `cp -a` keep them: they are input data like the bytes (a tree unpacked as root by
//!   debootstrap carries them); `IngestOptions::squash_owners` (spec `owners = "root"`)
//!   makes them 0:0 as genext2fs `-U` does. `contents` and `additionalPaths` copies are
//!   `0:0` (rsync `--no-o --no-g`, NAR) until a `contents` entry says otherwise.
//! - What else is copied depends on who copies, see [`HostCopy`]: the root tree keeps hard
//!   links (same dev+ino, one node) and the xattrs [`keep_xattr`] allows; `contents` copies
//!   as the seed's `rsync -a` does (no `-H`, no `-X`: hard links become separate files, no
//!   xattrs); `additionalPaths` copies as `nix copy` restores a store path.
//! - Non-UTF-8 names are kept as bytes. A name over 255 bytes, an unreadable directory or
//!   file, a directory that is its own ancestor (a bind mount loop, by dev+ino) and exceeding
//!   [`IngestOptions::max_nodes`] are errors naming the host path.
//! - Regular files are not opened at ingestion: their bytes are read once, by the ext4 write
//!   pass ([`DataSource::Host`]), which also hashes them for the manifest (files of 1 MiB or
//!   more are read once more while planning, to find their all-zero blocks). An unreadable file
//!   fails the build there, naming the file; the output is staged, so nothing half-written is
//!   left under a final name.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::ingest::{
    IngestError, IngestOptions, Placed, canonicalize, child_path, display_path, keep_xattr, mkdir_p,
    normalize_path, place, place_link,
};
use super::{DataSource, FileContent, FsTree, Node, NodeId, NodeKind, Timestamp};

/// How a host source is copied: which of its properties survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCopy {
    /// Entries with the same dev+ino become one node.
    pub hard_links: bool,
    /// Copy the xattrs [`keep_xattr`] allows.
    pub xattrs: bool,
    /// Canonicalize as a Nix store path restored by `nix copy` (NAR): files `0444` or `0555`
    /// (by the owner's execute bit), directories `0555`, mtime 1; devices, fifos and sockets
    /// are errors because a NAR cannot hold them.
    pub nar: bool,
    /// Keep the source's uid and gid.
    pub owners: bool,
}

impl HostCopy {
    /// The system root tree: everything a directory can carry except ownership.
    pub const TREE: HostCopy = HostCopy { hard_links: true, xattrs: true, nar: false, owners: true };
    /// The seed's `rsync -a --no-o --no-g` for `contents`.
    pub const RSYNC: HostCopy = HostCopy { hard_links: false, xattrs: false, nar: false, owners: false };
    /// The seed's `nix copy` for `additionalPaths`.
    pub const NIX_COPY: HostCopy = HostCopy { hard_links: false, xattrs: false, nar: true, owners: false };
}

/// Adds the contents of host directory `src` under the image directory `at` (created with
/// [`mkdir_p`] when missing), as [`HostCopy::TREE`]; `src`'s own mode and mtime go to `at`.
pub fn add_dir(tree: &mut FsTree, src: &Path, at: &[u8], opts: &IngestOptions) -> Result<(), IngestError> {
    add_host_dir(tree, src, at, HostCopy::TREE, opts)
}

/// Adds the contents of host directory `src` under image directory `at` copied as `how`
/// (`rsync -a src/ at` semantics: `src` itself becomes `at`).
pub fn add_host_dir(
    tree: &mut FsTree,
    src: &Path,
    at: &[u8],
    how: HostCopy,
    opts: &IngestOptions,
) -> Result<(), IngestError> {
    let comps = normalize_path(at, &format!("`{}`", src.display()))?;
    copy_host_dir(tree, src, &comps, how, opts, &mut Vec::new())?;
    canonicalize(tree);
    Ok(())
}

/// Adds one host path (file, symlink, device or directory with its contents, never followed)
/// as `name` in image directory `parent` (created when missing), copied as `how`.
pub fn add_host_entry(
    tree: &mut FsTree,
    src: &Path,
    parent: &[u8],
    name: &[u8],
    how: HostCopy,
    opts: &IngestOptions,
) -> Result<(), IngestError> {
    let comps = normalize_path(parent, &format!("`{}`", src.display()))?;
    copy_host_entry(tree, src, &comps, name, how, opts, &mut Vec::new())?;
    canonicalize(tree);
    Ok(())
}

/// [`add_host_dir`] without canonicalizing; pushes every node it made or updated to `touched`.
pub(crate) fn copy_host_dir(
    tree: &mut FsTree,
    src: &Path,
    at: &[Vec<u8>],
    how: HostCopy,
    opts: &IngestOptions,
    touched: &mut Vec<NodeId>,
) -> Result<NodeId, IngestError> {
    let src = &absolute(src)?;
    let origin = format!("`{}`", src.display());
    let md = fs::metadata(src).map_err(|source| IngestError::Io { path: src.to_path_buf(), source })?;
    if !md.is_dir() {
        return Err(IngestError::Io {
            path: src.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        });
    }
    super::ingest::check_source_tree(src, "source folder")?;
    let dir = mkdir_p(tree, at, &origin, opts)?;
    let mut w = Walker::new(tree, opts, how, origin, touched);
    w.top = src.to_path_buf();
    let meta = w.node_from(src, &md)?.meta;
    w.tree.node_mut(dir).meta = meta;
    w.touched.push(dir);
    w.fill_dir(dir, &display_path(at), src, &md)?;
    Ok(dir)
}

/// [`add_host_entry`] without canonicalizing; pushes every node it made or updated to `touched`.
pub(crate) fn copy_host_entry(
    tree: &mut FsTree,
    src: &Path,
    parent: &[Vec<u8>],
    name: &[u8],
    how: HostCopy,
    opts: &IngestOptions,
    touched: &mut Vec<NodeId>,
) -> Result<(), IngestError> {
    let src = &absolute(src)?;
    let origin = format!("`{}`", src.display());
    let md =
        fs::symlink_metadata(src).map_err(|source| IngestError::Io { path: src.to_path_buf(), source })?;
    if md.is_dir() {
        super::ingest::check_source_tree(src, "source folder")?;
    }
    let dir = mkdir_p(tree, parent, &origin, opts)?;
    let mut w = Walker::new(tree, opts, how, origin, touched);
    w.top = src.to_path_buf();
    w.add_entry(dir, &display_path(parent), name, src, &md)
}

/// `src` made absolute (without resolving links), so that [`DataSource::Host`] paths do not
/// depend on the working directory the writer later runs in.
fn absolute(src: &Path) -> Result<PathBuf, IngestError> {
    std::path::absolute(src).map_err(|source| IngestError::Io { path: src.to_path_buf(), source })
}

/// Walks one host source.
struct Walker<'a> {
    tree: &'a mut FsTree,
    /// Every node made or updated, for `contents`' `mode`.
    touched: &'a mut Vec<NodeId>,
    opts: &'a IngestOptions,
    how: HostCopy,
    origin: String,
    /// Nodes already made for a (dev, ino), for hard links.
    inodes: HashMap<(u64, u64), NodeId>,
    /// (dev, ino) and path of every directory on the current path, for loop detection.
    ancestors: Vec<((u64, u64), PathBuf)>,
    /// The source being walked and the file data seen so far (allocated bytes, at most the
    /// apparent size), checked against [`IngestOptions::max_staged_bytes`].
    top: PathBuf,
    data_bytes: u64,
}

impl<'a> Walker<'a> {
    fn new(
        tree: &'a mut FsTree,
        opts: &'a IngestOptions,
        how: HostCopy,
        origin: String,
        touched: &'a mut Vec<NodeId>,
    ) -> Self {
        Walker {
            tree,
            touched,
            opts,
            how,
            origin,
            inodes: HashMap::new(),
            ancestors: Vec::new(),
            top: PathBuf::new(),
            data_bytes: 0,
        }
    }

    /// The node (without directory entries) for a host path whose lstat is `md`.
    fn node_from(&self, path: &Path, md: &fs::Metadata) -> Result<Node, IngestError> {
        let ft = md.file_type();
        let unsupported =
            |what| IngestError::Unsupported { path: path.to_path_buf(), origin: "nix copy", what };
        let (major, minor) = split_rdev(md.rdev());
        let kind = if ft.is_dir() {
            NodeKind::Dir(BTreeMap::new())
        } else if ft.is_file() {
            NodeKind::File(FileContent {
                size: md.len(),
                source: DataSource::Host {
                    path: path.to_path_buf(),
                    allocated: md.blocks().saturating_mul(512),
                },
            })
        } else if ft.is_symlink() {
            let target =
                fs::read_link(path).map_err(|source| IngestError::Io { path: path.to_path_buf(), source })?;
            NodeKind::Symlink(target.as_os_str().as_bytes().to_vec())
        } else if self.how.nar {
            return Err(unsupported("a Nix store path holds only files, directories and symlinks"));
        } else if ft.is_char_device() {
            NodeKind::CharDevice { major, minor }
        } else if ft.is_block_device() {
            NodeKind::BlockDevice { major, minor }
        } else if ft.is_fifo() {
            NodeKind::Fifo
        } else {
            NodeKind::Socket
        };
        let (perm, mtime) = if self.how.nar {
            let perm = match &kind {
                NodeKind::Dir(_) => 0o555,
                NodeKind::Symlink(_) => 0o777,
                _ if md.mode() & 0o100 != 0 => 0o555,
                _ => 0o444,
            };
            (perm, Timestamp::from_secs(1))
        } else {
            let nanos = u32::try_from(md.mtime_nsec()).unwrap_or(0).min(999_999_999);
            ((md.mode() & 0o7777) as u16, Timestamp { secs: md.mtime(), nanos })
        };
        // Owners are input data of a root tree, like its bytes (unless squashed); `contents`
        // (rsync --no-o --no-g) and `additionalPaths` (a NAR has no owners) give 0:0.
        let (uid, gid) =
            if self.how.owners && !self.opts.squash_owners { (md.uid(), md.gid()) } else { (0, 0) };
        let mut meta = self.opts.meta(perm, uid, gid, mtime);
        if self.how.xattrs {
            meta.xattrs = host_xattrs(path)?;
        }
        Ok(Node { kind, meta })
    }

    /// Adds host path `host` (lstat `md`) as `name` in `dir`, recursing into directories.
    fn add_entry(
        &mut self,
        dir: NodeId,
        dir_path: &str,
        name: &[u8],
        host: &Path,
        md: &fs::Metadata,
    ) -> Result<(), IngestError> {
        let key = (md.dev(), md.ino());
        if self.how.hard_links
            && !md.is_dir()
            && md.nlink() > 1
            && let Some(&id) = self.inodes.get(&key)
        {
            return place_link(self.tree, dir, dir_path, name, id, &self.origin);
        }
        if md.is_file() {
            self.data_bytes = self.data_bytes.saturating_add(md.len().min(md.blocks().saturating_mul(512)));
            if self.data_bytes > self.opts.max_staged_bytes {
                return Err(IngestError::SourceTooLarge {
                    path: self.top.clone(),
                    origin: "source".to_string(),
                    limit: self.opts.max_staged_bytes,
                });
            }
        }
        let node = self.node_from(host, md)?;
        let placed = place(self.tree, dir, dir_path, name, node, &self.origin, self.opts)?;
        let id = match placed {
            Placed::New(id) | Placed::Merged(id) => id,
        };
        self.touched.push(id);
        if md.is_dir() {
            self.fill_dir(id, &child_path(dir_path, name), host, md)?;
        } else if self.how.hard_links && md.nlink() > 1 {
            self.inodes.insert(key, id);
        }
        Ok(())
    }

    /// Adds the entries of host directory `host` (lstat `md`) into tree directory `dir`.
    fn fill_dir(
        &mut self,
        dir: NodeId,
        dir_path: &str,
        host: &Path,
        md: &fs::Metadata,
    ) -> Result<(), IngestError> {
        let key = (md.dev(), md.ino());
        if let Some((_, ancestor)) = self.ancestors.iter().find(|(k, _)| *k == key) {
            return Err(IngestError::SourceLoop { path: host.to_path_buf(), ancestor: ancestor.clone() });
        }
        let io = |source| IngestError::Io { path: host.to_path_buf(), source };
        // Each entry is lstat'ed relative to the open folder (`DirEntry::metadata` does not
        // follow symlinks), so the kernel looks up one name instead of the whole path; the
        // folder is closed before descending, so open folders do not grow with the depth.
        let mut entries: Vec<(std::ffi::OsString, fs::Metadata)> = Vec::new();
        for e in fs::read_dir(host).map_err(io)? {
            let e = e.map_err(io)?;
            let md = e.metadata().map_err(|source| IngestError::Io { path: e.path(), source })?;
            entries.push((e.file_name(), md));
        }
        entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        self.ancestors.push((key, host.to_path_buf()));
        for (name, md) in entries {
            let path = host.join(&name);
            self.add_entry(dir, dir_path, name.as_bytes(), &path, &md)?;
        }
        self.ancestors.pop();
        Ok(())
    }
}

/// Linux's `dev_t` split into (major, minor), as glibc's `gnu_dev_major`/`gnu_dev_minor`.
pub fn split_rdev(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    // Both expressions keep at most 32 significant bits.
    (major as u32, minor as u32)
}

/// The xattrs of a host path that ingestion keeps, without following a symlink. A filesystem
/// without xattr support has none.
fn host_xattrs(path: &Path) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, IngestError> {
    let io = |source| IngestError::Io { path: path.to_path_buf(), source };
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(95) => return Ok(BTreeMap::new()), // EOPNOTSUPP
        Err(e) => return Err(io(e)),
    };
    let mut out = BTreeMap::new();
    for name in names {
        let name_bytes = name.as_bytes().to_vec();
        if !keep_xattr(&name_bytes) {
            continue;
        }
        // A name listed a moment ago may vanish; only then is the value absent.
        if let Some(value) = xattr::get(path, &name).map_err(io)? {
            out.insert(name_bytes, value);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rdev_splits_like_glibc() {
        // makedev(8, 1) and makedev(259, 65536) in glibc's encoding.
        assert_eq!(split_rdev(0x801), (8, 1));
        let (ma, mi) = (259u64, 65536u64);
        let dev = ((ma & 0xfff) << 8) | ((ma & !0xfff) << 32) | (mi & 0xff) | ((mi & !0xff) << 12);
        assert_eq!(split_rdev(dev), (259, 65536));
    }
}
