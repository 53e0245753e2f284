//! The files of one filesystem as the `contents` checks need them: a tree kept as parent
//! links in pre-order, so that memory grows with the number of names, not with the sum of
//! the path lengths (a deep chain of directories stays cheap), and the files under a target
//! are one contiguous slice.

/// One file: its name in its directory, its type and permission bits, its owner.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileInfo {
    /// Index of the directory holding it (the root: 0, itself).
    pub parent: usize,
    /// The last path component (empty for the root).
    pub name: String,
    /// One past the last index of its subtree.
    pub end: usize,
    /// `st_mode`: type and permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

const S_IFDIR: u32 = 0o040_000;

/// Every file of a filesystem, root first, in pre-order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileTree {
    nodes: Vec<FileInfo>,
}

impl FileTree {
    /// A tree from nodes already in pre-order with `parent` and `end` filled (the ext4 walk).
    pub fn from_preorder(nodes: Vec<FileInfo>) -> Self {
        FileTree { nodes }
    }

    /// A tree from absolute paths in any order (the FAT walk, tests). Directories missing
    /// from the list are added (mode `040000`, owner 0:0); a repeated path keeps its first.
    pub fn from_paths<'a>(files: impl IntoIterator<Item = (&'a str, u32, u32, u32)>) -> Self {
        let mut list: Vec<(Vec<&str>, u32, u32, u32)> = files
            .into_iter()
            .map(|(p, mode, uid, gid)| (p.split('/').filter(|c| !c.is_empty()).collect(), mode, uid, gid))
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        let mut nodes =
            vec![FileInfo { parent: 0, name: String::new(), end: 0, mode: S_IFDIR | 0o755, uid: 0, gid: 0 }];
        // The open directories from the root down: (index, depth).
        let mut open: Vec<usize> = vec![0];
        let mut last: Vec<&str> = Vec::new();
        for (parts, mode, uid, gid) in list {
            if parts.is_empty() {
                nodes[0].mode = mode;
                nodes[0].uid = uid;
                nodes[0].gid = gid;
                continue;
            }
            if parts == last {
                continue;
            }
            // Keep the common prefix open, close the rest.
            let common = last.iter().zip(&parts).take_while(|(a, b)| a == b).count().min(parts.len() - 1);
            while open.len() > common + 1 {
                let i = open.pop().unwrap_or(0);
                nodes[i].end = nodes.len();
            }
            for (depth, name) in parts.iter().enumerate().skip(common) {
                let leaf = depth + 1 == parts.len();
                let (m, u, g) = if leaf { (mode, uid, gid) } else { (S_IFDIR | 0o755, 0, 0) };
                let parent = open.last().copied().unwrap_or(0);
                open.push(nodes.len());
                nodes.push(FileInfo { parent, name: (*name).to_string(), end: 0, mode: m, uid: u, gid: g });
            }
            last = parts;
        }
        while let Some(i) = open.pop() {
            nodes[i].end = nodes.len();
        }
        FileTree { nodes }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&FileInfo> {
        self.nodes.get(i)
    }

    pub fn get_mut(&mut self, i: usize) -> Option<&mut FileInfo> {
        self.nodes.get_mut(i)
    }

    /// The index of the file at `path` (absolute, `/`-separated).
    pub fn find(&self, path: &str) -> Option<usize> {
        find(self, path.as_bytes())
    }

    /// The file at `i` and everything below it, as `(index, file)`.
    pub fn subtree(&self, i: usize) -> impl Iterator<Item = (usize, &FileInfo)> {
        let end = self.nodes.get(i).map_or(i, |n| n.end.max(i + 1)).min(self.nodes.len());
        self.nodes.get(i..end).unwrap_or(&[]).iter().enumerate().map(move |(k, n)| (i + k, n))
    }

    /// The absolute path of the file at `i`, as a report shows it (bounded at any depth).
    pub fn path(&self, i: usize) -> String {
        shown_path(self, i)
    }
}

/// A tree kept as parent links in pre-order (the ext4 walk, a [`FileTree`]): index 0 is the
/// root, and the subtree of `i` is `i + 1..end(i)`.
pub trait Linked {
    fn count(&self) -> usize;
    fn parent(&self, i: usize) -> usize;
    fn name(&self, i: usize) -> &[u8];
    fn end(&self, i: usize) -> usize;
}

impl Linked for FileTree {
    fn count(&self) -> usize {
        self.nodes.len()
    }
    fn parent(&self, i: usize) -> usize {
        self.nodes[i].parent
    }
    fn name(&self, i: usize) -> &[u8] {
        self.nodes[i].name.as_bytes()
    }
    fn end(&self, i: usize) -> usize {
        self.nodes[i].end
    }
}

/// The index at `path` (absolute, `/`-separated), walking down from the root: the children
/// of `at` are `at + 1` and each next sibling's `end`.
pub fn find(t: &(impl Linked + ?Sized), path: &[u8]) -> Option<usize> {
    if t.count() == 0 {
        return None;
    }
    let mut at = 0;
    for part in path.split(|&b| b == b'/').filter(|p| !p.is_empty()) {
        let end = t.end(at).min(t.count());
        let mut c = at + 1;
        at = loop {
            if c >= end {
                return None;
            }
            if t.name(c) == part {
                break c;
            }
            c = t.end(c).max(c + 1);
        };
    }
    Some(at)
}

/// The path of `i` as a report shows it (see [`crate::shown`]), rebuilt from its tail only:
/// bounded time and size at any depth.
pub fn shown_path(t: &(impl Linked + ?Sized), i: usize) -> String {
    let mut tail: Vec<&[u8]> = Vec::new();
    let mut bytes = 0;
    let mut at = i;
    while at != 0 && at < t.count() && bytes <= crate::shown::MAX_SHOWN {
        bytes += t.name(at).len() + 1;
        tail.push(t.name(at));
        at = t.parent(at);
    }
    if tail.is_empty() {
        return "/".to_string();
    }
    let mut out = Vec::new();
    for n in tail.iter().rev() {
        out.push(b'/');
        out.extend_from_slice(n);
    }
    let s = crate::shown::shown(&out);
    // Not at the root yet: mark the cut, unless `shown` already did.
    if at != 0 && !s.starts_with('…') { format!("…{s}") } else { s }
}

/// The full path of `i`, `/` for the root. Costs the entry's depth.
pub fn full_path(t: &(impl Linked + ?Sized), i: usize) -> Vec<u8> {
    let mut names = Vec::new();
    let mut at = i;
    while at != 0 && at < t.count() {
        names.push(t.name(at));
        at = t.parent(at);
    }
    if names.is_empty() {
        return b"/".to_vec();
    }
    let mut out = Vec::new();
    for n in names.iter().rev() {
        out.push(b'/');
        out.extend_from_slice(n);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_and_subtrees_are_slices() {
        let t = FileTree::from_paths([
            ("/etc/motd", 0o100_644, 0, 0),
            ("/", 0o040_700, 0, 0),
            ("/etc", 0o040_755, 0, 0),
            ("/etc-x", 0o100_600, 1, 1),
            ("/usr/share/doc", 0o040_755, 0, 0),
        ]);
        let motd = t.find("/etc/motd").expect("motd");
        assert_eq!(t.path(motd), "/etc/motd");
        assert_eq!(t.get(0).map(|n| n.mode), Some(0o040_700));
        let etc = t.find("etc").expect("etc");
        let under: Vec<String> = t.subtree(etc).map(|(i, _)| t.path(i)).collect();
        assert_eq!(under, ["/etc", "/etc/motd"]);
        assert_eq!(t.find("/usr/share").map(|i| t.path(i)), Some("/usr/share".to_string()));
        assert_eq!(t.find("/nope"), None);
        assert_eq!(t.subtree(0).count(), t.len());
    }
}
