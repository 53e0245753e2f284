//! A walk of the directory tree from the root: every path with its inode's type, mode,
//! owner, times, size, link target, device, extended attributes and data extents, and the
//! link counts checked against the references found.

use super::extent::{BlockMap, Extent};
use super::inode::{FileType, Timestamp};
use super::xattr::Xattr;
use super::{EXT4_ROOT_INO, Ext4};
use crate::bytes::ReadAt;
use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The longest symlink target read (the kernel's PATH_MAX).
const MAX_LINK_TARGET: u64 = 4096;

/// One path of the tree and what its inode says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Absolute path as bytes, `/` for the root.
    pub path: Vec<u8>,
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
        let mut out = Vec::new();
        let mut visited = HashSet::new();
        let mut refs: HashMap<u32, u32> = HashMap::new();
        let mut subdirs: HashMap<u32, u32> = HashMap::new();
        let mut index: HashMap<u32, Vec<u64>> = HashMap::new();
        let mut seen_files: HashMap<u32, Entry> = HashMap::new();
        // (directory inode, its path, its parent's inode)
        let mut stack = vec![(EXT4_ROOT_INO, b"/".to_vec(), EXT4_ROOT_INO)];
        visited.insert(EXT4_ROOT_INO);
        let root = self.entry(EXT4_ROOT_INO, b"/".to_vec())?;
        out.push(root);
        while let Some((dir_ino, dir_path, parent)) = stack.pop() {
            let inode = self.inode(dir_ino)?;
            let dir = self.read_dir(&inode)?;
            if !dir.index_blocks.is_empty() {
                index.insert(dir_ino, dir.index_blocks.clone());
            }
            let name = format!("ext4 directory {}", String::from_utf8_lossy(&dir_path));
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
                            format!(
                                "`{}` names inode {}, expected {want}",
                                String::from_utf8_lossy(dot),
                                e.inode
                            ),
                        ));
                    }
                    *seen = true;
                    continue;
                }
                if e.name.contains(&b'/') {
                    return Err(Error::corrupt(
                        &name,
                        Some(inode.offset),
                        format!("entry {:?} contains a slash", String::from_utf8_lossy(&e.name)),
                    ));
                }
                let mut path = if dir_path == b"/" { Vec::new() } else { dir_path.clone() };
                path.push(b'/');
                path.extend_from_slice(&e.name);
                // With the filetype feature the entry's type must be its inode's.
                let check_type = |kind: Option<FileType>| -> Result<()> {
                    if self.sb.features.filetype() && kind.is_some_and(|k| e.file_type != k.dirent_code()) {
                        return Err(Error::corrupt(
                            &name,
                            Some(inode.offset),
                            format!(
                                "entry {:?} has file_type {}, its inode {} is a {:?}",
                                String::from_utf8_lossy(&e.name),
                                e.file_type,
                                e.inode,
                                kind
                            ),
                        ));
                    }
                    Ok(())
                };
                // A hard-linked inode is read once; later names reuse what was read, so a
                // directory full of links to one large file costs no more than the file.
                let child = match seen_files.get(&e.inode) {
                    Some(known) => Entry { path: path.clone(), ..Clone::clone(known) },
                    None => {
                        // The type is checked before anything else of the inode is read, so
                        // a wrong type is reported as such.
                        check_type(self.inode(e.inode)?.file_type())?;
                        let c = self.entry(e.inode, path.clone())?;
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
                    stack.push((e.inode, path, dir_ino));
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
        for e in &out {
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
                    format!("ext4 inode {} ({})", e.ino, String::from_utf8_lossy(&e.path)),
                    None,
                    format!("i_links_count is {}, the tree holds {expected} links to it", e.links),
                ));
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// The walk's record of one inode under `path`.
    fn entry(&self, ino: u32, path: Vec<u8>) -> Result<Entry> {
        let inode = self.inode(ino)?;
        let Some(file_type) = inode.file_type() else {
            return Err(Error::corrupt(
                format!("ext4 inode {ino} ({})", String::from_utf8_lossy(&path)),
                Some(inode.offset),
                format!("i_mode {:#o} has no valid file type (a free inode in use?)", inode.i_mode),
            ));
        };
        if inode.i_links_count == 0 {
            return Err(Error::corrupt(
                format!("ext4 inode {ino} ({})", String::from_utf8_lossy(&path)),
                Some(inode.offset),
                "i_links_count is 0 but a directory names it",
            ));
        }
        let has_map = matches!(file_type, FileType::Regular | FileType::Directory)
            || (file_type == FileType::Symlink && !inode.is_fast_symlink());
        let map = if has_map { self.block_map(&inode)? } else { BlockMap::default() };
        // i_blocks counts every block the inode holds: data, map blocks and its xattr block.
        let held = map.extents.iter().map(|e| e.len).sum::<u64>()
            + map.meta_blocks.len() as u64
            + u64::from(inode.i_file_acl != 0);
        let want = held * (self.sb.block_size() / 512);
        if inode.sectors(&self.sb) != want {
            return Err(Error::corrupt(
                format!("ext4 inode {ino} ({})", String::from_utf8_lossy(&path)),
                Some(inode.offset),
                format!(
                    "i_blocks says {} sectors, the inode holds {held} blocks ({want} sectors)",
                    inode.sectors(&self.sb)
                ),
            ));
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
            path,
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

/// The walk as a map from inode number to the paths that name it, in path order.
pub fn paths_by_inode(entries: &[Entry]) -> BTreeMap<u32, Vec<Vec<u8>>> {
    let mut m: BTreeMap<u32, Vec<Vec<u8>>> = BTreeMap::new();
    for e in entries {
        m.entry(e.ino).or_default().push(e.path.clone());
    }
    m
}
