//! The census of a tree: every inode's number and content (directories built to know their size, files' block runs, xattrs split), before any geometry is chosen.

use super::csum::{fs_seed, inode_seed};
use super::dir::{self, Entry};
use super::extent;
use super::xattr::{self, Attr};
use super::{BLOCK_SIZE, Ext4Error, Ext4Options};
use crate::tree::{FsTree, NodeId, NodeKind};

/// What one inode holds, known before any block is placed.
#[derive(Debug, Clone)]
pub enum Content {
    /// A directory of `blocks` blocks; `indexed` when it is an htree.
    Dir {
        blocks: u64,
        indexed: bool,
    },
    /// A regular file and the logical block runs the plan reserves for it
    /// ([`super::source::Scanner::data_runs`]).
    File {
        runs: Vec<(u64, u64)>,
    },
    FastSymlink,
    SlowSymlink,
    Special,
}

/// One inode of the tree in inode-number order.
#[derive(Debug, Clone)]
pub struct Item {
    pub ino: u32,
    /// `None` for the lost+found that the writer adds itself.
    pub node: Option<NodeId>,
    pub content: Content,
    pub ibody_attrs: Vec<Attr>,
    pub block_attrs: Vec<Attr>,
}

/// The geometry-independent facts about the tree.
pub struct Census {
    pub items: Vec<Item>,
    /// Inode number of every node (0 for nodes not reachable from the root).
    pub ino_of: Vec<u32>,
    /// Parent inode of every directory node.
    pub parent_ino: Vec<u32>,
    /// The node used as lost+found, if the tree has one.
    pub tree_lost_found: Option<NodeId>,
    pub total_blocks: u64,
    pub max_ino: u32,
}

pub const ROOT_INO: u32 = 2;
/// ext4's `EXT4_LINK_MAX` for non-directories.
const MAX_FILE_LINKS: u32 = 65000;
pub const LOST_FOUND_INO: u32 = 11;
pub const LOST_FOUND_BLOCKS: usize = 4;

/// A readable path for messages.
pub fn node_path(tree: &FsTree, target: NodeId) -> String {
    fn walk(tree: &FsTree, cur: NodeId, target: NodeId, path: &mut Vec<u8>) -> bool {
        if cur == target {
            return true;
        }
        if let NodeKind::Dir(entries) = &tree.node(cur).kind {
            for (name, &child) in entries {
                let len = path.len();
                path.push(b'/');
                path.extend_from_slice(name);
                if (matches!(tree.node(child).kind, NodeKind::Dir(_)) || child == target)
                    && walk(tree, child, target, path)
                {
                    return true;
                }
                path.truncate(len);
            }
        }
        false
    }
    let mut p = Vec::new();
    walk(tree, NodeId::ROOT, target, &mut p);
    if p.is_empty() { "/".to_string() } else { String::from_utf8_lossy(&p).into_owned() }
}

pub fn file_type(kind: &NodeKind) -> u8 {
    match kind {
        NodeKind::Dir(_) => dir::FT_DIR,
        NodeKind::File(_) => dir::FT_REG,
        NodeKind::Symlink(_) => dir::FT_SYMLINK,
        NodeKind::CharDevice { .. } => dir::FT_CHR,
        NodeKind::BlockDevice { .. } => dir::FT_BLK,
        NodeKind::Fifo => dir::FT_FIFO,
        NodeKind::Socket => dir::FT_SOCK,
    }
}

/// The entries of directory `node` (with lost+found added to the root when synthesized).
pub fn dir_entries<'a>(tree: &'a FsTree, census: &Census, node: Option<NodeId>) -> Vec<Entry<'a>> {
    let Some(node) = node else { return Vec::new() };
    let NodeKind::Dir(map) = &tree.node(node).kind else { return Vec::new() };
    let mut v: Vec<Entry<'a>> = map
        .iter()
        .map(|(name, &child)| Entry {
            name,
            ino: census.ino_of[child.0 as usize],
            file_type: file_type(&tree.node(child).kind),
        })
        .collect();
    if node == NodeId::ROOT && census.tree_lost_found.is_none() {
        let pos = v.partition_point(|e| e.name < &b"lost+found"[..]);
        v.insert(pos, Entry { name: b"lost+found", ino: LOST_FOUND_INO, file_type: dir::FT_DIR });
    }
    v
}

pub(super) fn census(tree: &FsTree, opts: &Ext4Options) -> Result<Census, Ext4Error> {
    let n = tree.nodes.len();
    let order = tree.preorder();
    let tree_lost_found = match &tree.node(NodeId::ROOT).kind {
        NodeKind::Dir(m) => m.get(&b"lost+found"[..]).copied(),
        _ => None,
    };
    if tree_lost_found.is_some_and(|lf| !matches!(tree.node(lf).kind, NodeKind::Dir(_))) {
        return Err(Ext4Error::LostFoundNotADirectory);
    }
    let links = tree.link_counts();
    // Number of directory entries naming each node.
    let mut named = vec![0u32; n];
    for node in &tree.nodes {
        if let NodeKind::Dir(m) = &node.kind {
            for c in m.values() {
                named[c.0 as usize] += 1;
            }
        }
    }
    for &id in &order {
        if matches!(tree.node(id).kind, NodeKind::Dir(_)) && named[id.0 as usize] > 1 {
            return Err(Ext4Error::DirectoryHardLink { path: node_path(tree, id) });
        }
        if matches!(&tree.node(id).kind, NodeKind::Symlink(t) if t.is_empty()) {
            return Err(Ext4Error::EmptySymlink { path: node_path(tree, id) });
        }
        if !matches!(tree.node(id).kind, NodeKind::Dir(_)) && links[id.0 as usize] > MAX_FILE_LINKS {
            return Err(Ext4Error::TooManyLinks { path: node_path(tree, id), links: links[id.0 as usize] });
        }
    }
    let mut ino_of = vec![0u32; n];
    ino_of[0] = ROOT_INO;
    let mut inode_order: Vec<Option<NodeId>> = vec![Some(NodeId::ROOT)];
    inode_order.push(tree_lost_found);
    if let Some(lf) = tree_lost_found {
        ino_of[lf.0 as usize] = LOST_FOUND_INO;
    }
    let mut next = LOST_FOUND_INO + 1;
    for &id in &order[1..] {
        if Some(id) == tree_lost_found {
            continue;
        }
        ino_of[id.0 as usize] = next;
        inode_order.push(Some(id));
        next = next.checked_add(1).ok_or(Ext4Error::TooManyInodes {
            needed: n as u64 + 11,
            max: u32::MAX as u64,
            size_bytes: 0,
        })?;
    }
    let max_ino = next - 1;
    let mut parent_ino = vec![0u32; n];
    parent_ino[0] = ROOT_INO;
    for &id in &order {
        if let NodeKind::Dir(m) = &tree.node(id).kind {
            for &c in m.values() {
                if matches!(tree.node(c).kind, NodeKind::Dir(_)) && parent_ino[c.0 as usize] == 0 {
                    parent_ino[c.0 as usize] = ino_of[id.0 as usize];
                }
            }
        }
    }
    let mut c = Census {
        items: Vec::with_capacity(inode_order.len()),
        ino_of,
        parent_ino,
        tree_lost_found,
        total_blocks: 0,
        max_ino,
    };
    let seed = fs_seed(&opts.uuid);
    let mut scanner = super::source::Scanner::default();
    let mut items = Vec::with_capacity(inode_order.len());
    for (k, node) in inode_order.into_iter().enumerate() {
        let ino = if k == 0 {
            ROOT_INO
        } else if k == 1 {
            LOST_FOUND_INO
        } else {
            LOST_FOUND_INO + k as u32 - 1
        };
        let (content, attrs) = match node {
            None => (Content::Dir { blocks: LOST_FOUND_BLOCKS as u64, indexed: false }, Vec::new()),
            Some(id) => {
                let nd = tree.node(id);
                let content = match &nd.kind {
                    NodeKind::Dir(_) => {
                        let entries = dir_entries(tree, &c, Some(id));
                        let min = if ino == LOST_FOUND_INO { LOST_FOUND_BLOCKS } else { 1 };
                        let d = dir::build(
                            ino,
                            c.parent_ino[id.0 as usize],
                            &entries,
                            &opts.hash_seed,
                            min,
                            inode_seed(seed, ino, 0),
                        )
                        .map_err(|()| Ext4Error::DirectoryTooLarge { path: node_path(tree, id) })?;
                        Content::Dir { blocks: d.blocks.len() as u64, indexed: d.indexed }
                    }
                    NodeKind::File(f) => Content::File { runs: scanner.data_runs(f)? },
                    NodeKind::Symlink(t) if t.len() < 60 => Content::FastSymlink,
                    NodeKind::Symlink(t) if t.len() < BLOCK_SIZE as usize => Content::SlowSymlink,
                    NodeKind::Symlink(t) => {
                        return Err(Ext4Error::SymlinkTooLong { path: node_path(tree, id), len: t.len() });
                    }
                    _ => Content::Special,
                };
                (content, xattr::attrs(&nd.meta.xattrs))
            }
        };
        let split = xattr::split(attrs).map_err(|needed| Ext4Error::XattrsTooLarge {
            path: node.map(|id| node_path(tree, id)).unwrap_or_default(),
            needed,
        })?;
        c.total_blocks += match &content {
            Content::Dir { blocks, .. } => *blocks,
            Content::File { runs } => {
                let b: u64 = runs.iter().map(|r| r.1).sum();
                b + extent::tree_blocks(runs.len() + (b / extent::MAX_EXTENT_LEN) as usize) as u64
            }
            Content::SlowSymlink => 1,
            _ => 0,
        } + !split.block.is_empty() as u64;
        items.push(Item { ino, node, content, ibody_attrs: split.ibody, block_attrs: split.block });
    }
    c.items = items;
    Ok(c)
}
