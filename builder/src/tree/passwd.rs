//! User and group names resolved against the image's own `/etc/passwd` and `/etc/group`, read from the tree being built.
//!
//! Decisions:
//! - The files are read from the tree (whatever source put them there), never from the
//!   host: host accounts are host state. Symlinks inside the image are followed within the
//!   image (absolute targets from the image root, at most 40 hops).
//! - A name is looked up first; a name that is not found but is all digits (optionally with
//!   a leading `+`) is taken as a numeric id, as `chown` does. Anything else is an error
//!   naming the `contents` entry and the file searched.

use super::ingest::IngestError;
use super::tar::read_archive_range;
use super::{DataSource, FsTree, NodeId, NodeKind};

/// Largest account database read into memory.
const MAX_DB: u64 = 16 << 20;

/// Follows a path inside the image, resolving symlinks within the image.
pub fn resolve(tree: &FsTree, path: &[u8]) -> Option<NodeId> {
    let mut hops = 0;
    let mut pending: Vec<Vec<u8>> = path.split(|&b| b == b'/').rev().map(<[u8]>::to_vec).collect();
    let mut stack: Vec<NodeId> = vec![NodeId::ROOT];
    while let Some(comp) = pending.pop() {
        let cur = *stack.last()?;
        match comp.as_slice() {
            b"" | b"." => continue,
            b".." => {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            _ => {}
        }
        let NodeKind::Dir(entries) = &tree.node(cur).kind else { return None };
        let next = *entries.get(&comp)?;
        match &tree.node(next).kind {
            NodeKind::Symlink(target) => {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                if target.first() == Some(&b'/') {
                    stack.truncate(1);
                }
                pending.extend(target.split(|&b| b == b'/').rev().map(<[u8]>::to_vec));
            }
            _ => stack.push(next),
        }
    }
    stack.last().copied()
}

/// The bytes of a regular file in the image (symlinks followed within the image), or `None`
/// when there is no such file.
pub fn read_image_file(tree: &FsTree, path: &str) -> Result<Option<Vec<u8>>, IngestError> {
    let Some(id) = resolve(tree, path.as_bytes()) else { return Ok(None) };
    let NodeKind::File(c) = &tree.node(id).kind else { return Ok(None) };
    let too_big = || IngestError::NotInImage {
        path: path.to_string(),
        why: "the account database is larger than 16 MiB",
    };
    if c.size > MAX_DB {
        return Err(too_big());
    }
    let (src, bytes) = match &c.source {
        DataSource::Host { path: p, .. } => (p.clone(), std::fs::read(p)),
        DataSource::Archive { path: p, offset, map } => {
            (p.to_path_buf(), read_archive_range(p, *offset, c.size, map.as_deref()))
        }
        DataSource::Bytes(b) => return Ok(Some(b.to_vec())),
    };
    bytes.map(Some).map_err(|source| IngestError::Io { path: src, source })
}

/// Which account database to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Passwd,
    Group,
}

impl Db {
    pub fn file(self) -> &'static str {
        match self {
            Db::Passwd => "/etc/passwd",
            Db::Group => "/etc/group",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Db::Passwd => "user",
            Db::Group => "group",
        }
    }
}

/// The id of `name` in `text` (colon-separated lines: name, password, id, ...).
pub fn lookup_in(text: &[u8], name: &str) -> Option<u32> {
    text.split(|&b| b == b'\n').find_map(|line| {
        let mut fields = line.split(|&b| b == b':');
        if fields.next()? != name.as_bytes() {
            return None;
        }
        std::str::from_utf8(fields.nth(1)?).ok()?.trim().parse().ok()
    })
}

/// Resolves a user (`Db::Passwd`) or group (`Db::Group`) name or number against the image's
/// own database; `target` names the `contents` entry in messages.
pub fn resolve_id(tree: &FsTree, db: Db, name: &str, target: &str) -> Result<u32, IngestError> {
    if let Some(id) = read_image_file(tree, db.file())?.and_then(|text| lookup_in(&text, name)) {
        return Ok(id);
    }
    // Every system has root: with no passwd or group file in the image (a plain contents
    // image), `root` is 0 as chown resolves it on any host.
    if name == "root" && read_image_file(tree, db.file())?.is_none() {
        return Ok(0);
    }
    let digits = name.strip_prefix('+').unwrap_or(name);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(id) = digits.parse::<u32>()
    {
        return Ok(id);
    }
    Err(IngestError::UnknownOwner {
        target: target.to_string(),
        kind: db.kind(),
        name: name.to_string(),
        file: db.file(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::tree::{FileContent, Metadata, Node, Timestamp};

    fn tree_with(files: &[(&str, &[u8])], links: &[(&str, &str)]) -> FsTree {
        let m = Metadata::new(0o755, 0, 0, Timestamp::default());
        let mut t = FsTree::new(m.clone());
        let etc = t.add(Node { kind: NodeKind::Dir(Default::default()), meta: m.clone() }).unwrap();
        t.link(NodeId::ROOT, b"etc", etc, "/").unwrap();
        for (name, data) in files {
            let c = FileContent { size: data.len() as u64, source: DataSource::Bytes(Arc::from(*data)) };
            let id = t.add(Node { kind: NodeKind::File(c), meta: m.clone() }).unwrap();
            t.link(etc, name.as_bytes(), id, "/etc").unwrap();
        }
        for (name, target) in links {
            let id =
                t.add(Node { kind: NodeKind::Symlink(target.as_bytes().to_vec()), meta: m.clone() }).unwrap();
            t.link(etc, name.as_bytes(), id, "/etc").unwrap();
        }
        t
    }

    #[test]
    fn names_then_numbers_then_errors() {
        let t = tree_with(
            &[("passwd.real", b"root:x:0:0::/root:/bin/sh\nalice:x:1000:100::/home/alice:/bin/sh\n42:x:7:7::/:/bin/false\n"), ("group", b"root:x:0:\nusers:x:100:alice\n")],
            &[("passwd", "../etc/./passwd.real")],
        );
        assert_eq!(resolve_id(&t, Db::Passwd, "alice", "/x").unwrap(), 1000);
        assert_eq!(resolve_id(&t, Db::Passwd, "42", "/x").unwrap(), 7, "a name wins over a number");
        assert_eq!(resolve_id(&t, Db::Passwd, "1234", "/x").unwrap(), 1234);
        assert_eq!(resolve_id(&t, Db::Passwd, "+0", "/x").unwrap(), 0);
        assert_eq!(resolve_id(&t, Db::Group, "users", "/x").unwrap(), 100);
        let e = resolve_id(&t, Db::Group, "alice", "/srv").unwrap_err();
        assert_eq!(
            e.to_string(),
            "contents entry /srv: group `alice` is not in the image's `/etc/group`; add it there or use a numeric id"
        );
    }

    #[test]
    fn symlink_loops_do_not_hang() {
        let t = tree_with(&[], &[("passwd", "/etc/passwd")]);
        assert!(matches!(resolve_id(&t, Db::Passwd, "alice", "/x"), Err(IngestError::UnknownOwner { .. })));
        // No readable passwd file: root is 0 as on every system.
        assert_eq!(resolve_id(&t, Db::Passwd, "root", "/x").unwrap(), 0);
    }
}
