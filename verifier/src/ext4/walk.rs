//! A walk of the directory tree from the root: every path with its inode's type, mode,
//! owner, times, size, link target, device, extended attributes and data extents, and the
//! link counts checked against the references found.
//!
//! Paths are kept as parent links (each entry holds its name and its directory's index), not
//! as a full path per entry: a chain of 20,000 nested directories then costs 20,000 names,
//! not 200 million path bytes. [`path`], [`shown_path`] and [`find`] rebuild what is needed.

use super::extent::{BlockMap, Extent};
use super::inode::{EXT4_INLINE_DATA_FL, FileType, Inode, Timestamp};
use super::xattr::Xattr;
use super::{EXT4_ROOT_INO, Ext4};
use crate::bytes::ReadAt;
use crate::error::{Error, Result};
use crate::files::Linked;
use crate::shown::shown;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The longest symlink target read (the kernel's PATH_MAX).
const MAX_LINK_TARGET: u64 = 4096;

/// One path of the tree and what its inode says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Index in the walk of the directory that holds this name (the root: 0, itself).
    pub parent: usize,
    /// The name in that directory (empty for the root).
    pub name: Vec<u8>,
    /// One past the last index of this entry's subtree: the walk is in pre-order, so the
    /// entries below a directory at `i` are exactly `i + 1..end`.
    pub end: usize,
    pub ino: u32,
    pub file_type: FileType,
    /// Permission bits (`i_mode & 0o7777`).
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub atime: Timestamp,
    pub ctime: Timestamp,
    pub mtime: Timestamp,
    pub crtime: Option<Timestamp>,
    pub size: u64,
    pub links: u16,
    pub link_target: Option<Vec<u8>>,
    /// `(major, minor)` of a device node.
    pub device: Option<(u32, u32)>,
    pub xattrs: Vec<Xattr>,
    /// Data extents, logical to physical.
    pub extents: Vec<Extent>,
    /// Blocks of the block map itself (extent tree or indirect blocks).
    pub map_blocks: Vec<u64>,
    /// Logical blocks of a hashed directory's index (`dx_root`, `dx_node`).
    pub index_blocks: Vec<u64>,
    /// The external xattr block, if any.
    pub xattr_block: Option<u64>,
}

impl<R: ReadAt> Ext4<R> {
    /// Walks the whole tree from the root. Entries come sorted by path. A directory reached
    /// twice, a type that disagrees with its directory entry, a `..` that names the wrong
    /// parent or a link count that disagrees with the references ends in an error.
    pub fn walk(&self) -> Result<Vec<Entry>> {
        // Entries in the order found; `parent` indexes this vector until `preorder` below.
        let mut out = Vec::new();
        let mut visited = HashSet::new();
        let mut refs: HashMap<u32, u32> = HashMap::new();
        let mut subdirs: HashMap<u32, u32> = HashMap::new();
        let mut index: HashMap<u32, Vec<u64>> = HashMap::new();
        let mut seen_files: HashMap<u32, Entry> = HashMap::new();
        // (directory inode, its index in `out`, its parent's inode)
        let mut stack = vec![(EXT4_ROOT_INO, 0usize, EXT4_ROOT_INO)];
        visited.insert(EXT4_ROOT_INO);
        let root = self.entry(EXT4_ROOT_INO, 0, Vec::new(), &out)?;
        out.push(root);
        while let Some((dir_ino, dir_idx, parent)) = stack.pop() {
            let inode = self.inode(dir_ino)?;
            let dir = self.read_dir(&inode)?;
            if !dir.index_blocks.is_empty() {
                index.insert(dir_ino, dir.index_blocks.clone());
            }
            let name = format!("ext4 directory {}", shown_path(&out, dir_idx));
            let mut seen_dot = false;
            let mut seen_dotdot = false;
            for e in dir.entries {
                // `.` must name the directory itself, `..` its parent.
                let dots = [(&b"."[..], dir_ino, &mut seen_dot), (&b".."[..], parent, &mut seen_dotdot)];
                if let Some((dot, want, seen)) = dots.into_iter().find(|(d, _, _)| e.name == *d) {
                    if e.inode != want {
                        return Err(Error::corrupt(
                            &name,
                            Some(inode.offset),
                            format!("`{}` names inode {}, expected {want}", shown(dot), e.inode),
                        ));
                    }
                    *seen = true;
                    continue;
                }
                if e.name.contains(&b'/') {
                    return Err(Error::corrupt(
                        &name,
                        Some(inode.offset),
                        format!("entry `{}` contains a slash", shown(&e.name)),
                    ));
                }
                // With the filetype feature the entry's type must be its inode's.
                let check_type = |kind: Option<FileType>| -> Result<()> {
                    if self.sb.features.filetype() && kind.is_some_and(|k| e.file_type != k.dirent_code()) {
                        return Err(Error::corrupt(
                            &name,
                            Some(inode.offset),
                            format!(
                                "entry `{}` has file_type {}, its inode {} is a {}",
                                shown(&e.name),
                                e.file_type,
                                e.inode,
                                kind.map_or("file of no known type", FileType::as_str)
                            ),
                        ));
                    }
                    Ok(())
                };
                // A hard-linked inode is read once; later names reuse what was read, so a
                // directory full of links to one large file costs no more than the file.
                let child = match seen_files.get(&e.inode) {
                    Some(known) => Entry { parent: dir_idx, name: e.name.clone(), ..Clone::clone(known) },
                    None => {
                        // The type is checked before anything else of the inode is read, so
                        // a wrong type is reported as such.
                        check_type(self.inode(e.inode)?.file_type())?;
                        let c = self.entry(e.inode, dir_idx, e.name.clone(), &out)?;
                        if c.file_type != FileType::Directory {
                            seen_files.insert(e.inode, c.clone());
                        }
                        c
                    }
                };
                check_type(Some(child.file_type))?;
                *refs.entry(e.inode).or_default() += 1;
                if child.file_type == FileType::Directory {
                    if !visited.insert(e.inode) {
                        return Err(Error::corrupt(
                            &name,
                            Some(inode.offset),
                            format!(
                                "directory inode {} is reached twice: the tree has a loop or a hard-linked directory",
                                e.inode
                            ),
                        ));
                    }
                    *subdirs.entry(dir_ino).or_default() += 1;
                    stack.push((e.inode, out.len(), dir_ino));
                }
                out.push(child);
            }
            if !seen_dot || !seen_dotdot {
                return Err(Error::corrupt(&name, Some(inode.offset), "`.` or `..` is missing"));
            }
        }
        for e in out.iter_mut() {
            if let Some(blocks) = index.get(&e.ino) {
                e.index_blocks = blocks.clone();
            }
        }
        let out = preorder(out);
        for (i, e) in out.iter().enumerate() {
            let expected = if e.file_type == FileType::Directory {
                2 + subdirs.get(&e.ino).copied().unwrap_or(0)
            } else {
                refs.get(&e.ino).copied().unwrap_or(0)
            };
            // With dir_nlink a directory past 65000 links keeps a count of 1.
            let ok = u32::from(e.links) == expected
                || (e.file_type == FileType::Directory && e.links == 1 && expected >= 65000);
            if !ok {
                return Err(Error::corrupt(
                    format!("ext4 inode {} ({})", e.ino, shown_path(&out, i)),
                    None,
                    format!(
                        "i_links_count is {}, the tree holds {} to it",
                        e.links,
                        crate::report::count(expected as usize, "link", "links")
                    ),
                ));
            }
        }
        // Every xattr block's h_refcount counts the inodes that point at it: those of the
        // tree and the reserved ones outside it.
        let mut users: BTreeMap<u64, HashSet<u32>> = BTreeMap::new();
        for e in &out {
            if let Some(b) = e.xattr_block {
                users.entry(b).or_default().insert(e.ino);
            }
        }
        for ino in self.special_inodes() {
            let inode = self.inode(ino)?;
            if inode.i_file_acl != 0 {
                users.entry(inode.i_file_acl).or_default().insert(ino);
            }
        }
        for (block, inodes) in &users {
            self.check_xattr_refcount(*block, inodes.len() as u64)?;
        }
        Ok(out)
    }

    /// The walk's record of one inode named `name` in the directory at `parent` of `found`.
    fn entry(&self, ino: u32, parent: usize, name: Vec<u8>, found: &[Entry]) -> Result<Entry> {
        let inode = self.inode(ino)?;
        let path = || {
            let dir = if found.is_empty() { String::new() } else { shown_path(found, parent) };
            let sep = if dir.ends_with('/') || name.is_empty() { "" } else { "/" };
            let p = format!("{dir}{sep}{}", shown(&name));
            if p.is_empty() { "/".to_string() } else { p }
        };
        let Some(file_type) = inode.file_type() else {
            return Err(Error::corrupt(
                format!("ext4 inode {ino} ({})", path()),
                Some(inode.offset),
                format!("i_mode {:#o} has no valid file type (a free inode in use?)", inode.i_mode),
            ));
        };
        if inode.i_links_count == 0 {
            return Err(Error::corrupt(
                format!("ext4 inode {ino} ({})", path()),
                Some(inode.offset),
                "i_links_count is 0 but a directory names it",
            ));
        }
        // e2fsck judges this flag on every inode past the reserved ones, whatever its type.
        if inode.i_flags & EXT4_INLINE_DATA_FL != 0
            && !self.sb.features.inline_data()
            && ino >= self.sb.s_first_ino
        {
            return Err(Error::corrupt(
                format!("ext4 inode {ino} ({})", path()),
                Some(inode.offset + 0x20),
                format!(
                    "i_flags {:#010x} has EXT4_INLINE_DATA_FL but the filesystem lacks the inline_data feature",
                    inode.i_flags
                ),
            ));
        }
        let has_map = matches!(file_type, FileType::Regular | FileType::Directory)
            || (file_type == FileType::Symlink && !inode.is_fast_symlink());
        let map = if has_map { self.block_map(&inode)? } else { BlockMap::default() };
        self.check_i_blocks(&inode, &map, &path())?;
        if file_type == FileType::Regular {
            self.check_file_size(&inode, &map, &path())?;
        }
        let link_target = if file_type == FileType::Symlink {
            if inode.i_size > MAX_LINK_TARGET {
                return Err(Error::corrupt(
                    format!("ext4 inode {ino}"),
                    Some(inode.offset),
                    format!("symlink target of {} bytes exceeds {MAX_LINK_TARGET}", inode.i_size),
                ));
            }
            Some(self.read_inode_data(&inode, MAX_LINK_TARGET)?)
        } else {
            None
        };
        Ok(Entry {
            parent,
            name,
            end: 0,
            ino,
            file_type,
            mode: inode.permissions(),
            uid: inode.i_uid,
            gid: inode.i_gid,
            atime: inode.i_atime,
            ctime: inode.i_ctime,
            mtime: inode.i_mtime,
            crtime: inode.i_crtime,
            size: inode.i_size,
            links: inode.i_links_count,
            link_target,
            device: inode.device(),
            xattrs: self.xattrs(&inode)?,
            extents: map.extents,
            map_blocks: map.meta_blocks,
            index_blocks: Vec::new(),
            xattr_block: (inode.i_file_acl != 0).then_some(inode.i_file_acl),
        })
    }
}

impl<R: ReadAt> Ext4<R> {
    /// Fails unless `i_blocks` counts every block the inode holds: data, map blocks and its
    /// xattr block. `path` names the inode in the error.
    pub(crate) fn check_i_blocks(&self, inode: &Inode, map: &BlockMap, path: &str) -> Result<()> {
        let held = map.extents.iter().map(|e| e.len).sum::<u64>()
            + map.meta_blocks.len() as u64
            + u64::from(inode.i_file_acl != 0);
        let want = held * (self.sb.block_size() / 512);
        if inode.sectors(&self.sb) != want {
            return Err(Error::corrupt(
                format!("ext4 inode {} ({path})", inode.ino),
                Some(inode.offset),
                format!(
                    "i_blocks says {} sectors, the inode holds {} ({want} sectors)",
                    inode.sectors(&self.sb),
                    crate::report::count(usize::try_from(held).unwrap_or(usize::MAX), "block", "blocks")
                ),
            ));
        }
        Ok(())
    }

    /// Fails when a regular file's `i_size` disagrees with its block map as e2fsck's pass 1
    /// judges it: an initialised block that starts past `i_size`, or a size past what the
    /// map can address (2^32 blocks for extents; 12 direct blocks plus single, double and
    /// triple indirect ones for a block map). A size past the last extent is a hole, not
    /// an error, as long as the map could reach it.
    fn check_file_size(&self, inode: &Inode, map: &BlockMap, path: &str) -> Result<()> {
        let bs = self.sb.block_size();
        let size = inode.i_size;
        let name = || format!("ext4 inode {} ({path})", inode.ino);
        let last_init =
            map.extents.iter().filter(|e| !e.unwritten && e.len > 0).map(|e| e.logical + e.len - 1).max();
        // A verity file keeps its Merkle tree in blocks past i_size, on purpose.
        if let Some(last) = last_init
            && size < last.saturating_mul(bs)
            && inode.i_flags & super::inode::EXT4_VERITY_FL == 0
        {
            return Err(Error::corrupt(
                name(),
                Some(inode.offset),
                format!(
                    "i_size is {size} but logical block {last} is mapped: data lies past the end of the file"
                ),
            ));
        }
        let max = if inode.has_extents() {
            (1u64 << 32).saturating_mul(bs) - 1
        } else {
            let per = bs / 4;
            (12 + per + per * per + per * per * per).saturating_mul(bs)
        };
        if size > max {
            return Err(Error::corrupt(
                name(),
                Some(inode.offset),
                format!("i_size is {size}, past the largest size its block map can address ({max} bytes)"),
            ));
        }
        Ok(())
    }
}

/// The walk as a map from inode number to the paths that name it, in walk order, each as
/// [`shown_path`] shows it (bounded, for labels).
pub fn paths_by_inode(entries: &[Entry]) -> BTreeMap<u32, Vec<Vec<u8>>> {
    let mut m: BTreeMap<u32, Vec<Vec<u8>>> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        m.entry(e.ino).or_default().push(shown_path(entries, i).into_bytes());
    }
    m
}

/// Puts the walk in pre-order, siblings sorted by name, and fills `end`: then the subtree of
/// the entry at `i` is `i + 1..end`. `parent` indexes the input before, the output after.
fn preorder(found: Vec<Entry>) -> Vec<Entry> {
    let n = found.len();
    // Children of each entry, contiguous after sorting by (parent, name): `range[p]`.
    let mut kids: Vec<usize> = (1..n).collect();
    kids.sort_by(|&a, &b| (found[a].parent, &found[a].name).cmp(&(found[b].parent, &found[b].name)));
    let mut range = vec![(0usize, 0usize); n];
    for (k, &c) in kids.iter().enumerate() {
        let r = &mut range[found[c].parent];
        if r.0 == r.1 {
            *r = (k, k + 1);
        } else {
            r.1 = k + 1;
        }
    }
    let mut slots: Vec<Option<Entry>> = found.into_iter().map(Some).collect();
    let mut out: Vec<Entry> = Vec::with_capacity(n);
    // Open(old index, new index of its parent), or Close(new index) once its subtree is out.
    enum Step {
        Open(usize, usize),
        Close(usize),
    }
    let mut stack = vec![Step::Open(0, 0)];
    while let Some(step) = stack.pop() {
        match step {
            Step::Close(me) => {
                let len = out.len();
                out[me].end = len;
            }
            Step::Open(old, new_parent) => {
                // Each index is a child of exactly one parent, so each is taken once.
                let Some(mut e) = slots[old].take() else { continue };
                let me = out.len();
                e.parent = new_parent;
                out.push(e);
                stack.push(Step::Close(me));
                let (lo, hi) = range[old];
                stack.extend(kids[lo..hi].iter().rev().map(|&c| Step::Open(c, me)));
            }
        }
    }
    out
}

impl Linked for [Entry] {
    fn count(&self) -> usize {
        self.len()
    }
    fn parent(&self, i: usize) -> usize {
        self[i].parent
    }
    fn name(&self, i: usize) -> &[u8] {
        &self[i].name
    }
    fn end(&self, i: usize) -> usize {
        self[i].end
    }
}

/// The full path of the entry at `i`, `/` for the root. Costs the entry's depth.
pub fn path(entries: &[Entry], i: usize) -> Vec<u8> {
    crate::files::full_path(entries, i)
}

/// The entry's path as a report shows it, bounded at any depth.
pub fn shown_path(entries: &[Entry], i: usize) -> String {
    crate::files::shown_path(entries, i)
}

/// The index of the entry at `path` (absolute, `/`-separated), if the walk holds it.
pub fn find(entries: &[Entry], path: &[u8]) -> Option<usize> {
    crate::files::find(entries, path)
}
