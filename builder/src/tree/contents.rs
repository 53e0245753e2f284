//! The seed's `contents`, `configFile`, `additionalPaths` and `onlyNixStore` applied to the tree.
//!
//! `contents` follows the seed's prepareImage loop, entry by entry, in order:
//! - a source containing `*` is a glob ([`super::glob`]): `target` is created (`mkdir -p`)
//!   and every match is copied into it under its own name (`rsync -a MATCH target/`: a
//!   directory onto an existing directory merges, anything else replaces a non-directory).
//!   A glob that matches nothing is an error. Only `*` switches to glob mode, as the seed's
//!   `[[ $source =~ '*' ]]` does; then `?` and `[...]` match too. Without `*` the source is
//!   a literal path (the seed's unquoted `$source` would also expand `?` and `[` there, by
//!   accident of shell quoting; we do not).
//! - otherwise the parents of `target` are created, and a `target` that already exists in
//!   the tree is the seed's error `duplicate entry TARGET -> SOURCE`. The seed checks this
//!   against the earlier entries only (its root was empty then); here the root tree is
//!   ingested first, so a target the root tree already holds is a duplicate too: replacing
//!   or merging into a system file silently is never what a user meant.
//! - a directory source (a symlink to a directory counts, as `[ -d ]` says) becomes `target`
//!   (`rsync -a src/ target`); anything else is copied as `target`, symlinks as links.
//! - rsync's quick check is not copied: when a glob copies a file over an existing file of
//!   the same size and mtime, rsync keeps the old bytes (it assumes they are equal) and only
//!   updates the metadata; here the later file always wins, bytes included.
//! - copies are `rsync -a --no-o --no-g`: modes and mtimes kept, owner `0:0`, no hard links
//!   (rsync without `-H` makes separate files), no xattrs (no `-X`).
//! - `mode` is rsync's `--chmod` ([`super::chmod`]) applied to every copied node except
//!   symlinks; directories created by `mkdir -p` are not copied and keep `0755`.
//! - `user`/`group`: both or neither. The seed runs `chown -R user:group target` in the VM
//!   after everything else is installed, so [`apply_contents_ownership`] is a separate step
//!   the caller runs last; it resolves names against the image's own accounts
//!   ([`super::passwd`]) and, like `chown -R` (`-P`), changes symlinks themselves and never
//!   follows them.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::chmod::ChmodSpec;
use super::dir::{HostCopy, copy_host_dir, copy_host_entry};
use super::ingest::{
    IngestError, IngestOptions, canonicalize, check_data_source, display_path, mkdir_p, normalize_path,
};
use super::passwd::{Db, resolve_id};
use super::{DataSource, FileContent, FsTree, Metadata, Node, NodeId, NodeKind};

/// One `contents` entry as the spec gives it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContentsEntry {
    /// A host path, or a glob when it contains `*`.
    pub source: PathBuf,
    /// An absolute path in the image (a leading `/` is optional).
    pub target: String,
    /// rsync `--chmod` string; `None` or empty leaves modes as the source has them.
    pub mode: Option<String>,
    pub user: Option<String>,
    pub group: Option<String>,
}

impl ContentsEntry {
    fn source_display(&self) -> String {
        self.source.display().to_string()
    }

    /// The parsed `mode`, or an error naming the entry.
    pub fn chmod(&self) -> Result<Option<ChmodSpec>, IngestError> {
        match self.mode.as_deref() {
            None | Some("") => Ok(None),
            Some(m) => ChmodSpec::parse(m).map(Some).ok_or_else(|| IngestError::BadMode {
                target: self.target.clone(),
                from: self.source_display(),
                mode: m.to_string(),
            }),
        }
    }

    /// Checks what can be checked without the tree: the mode string, both-or-neither of
    /// user and group, and a target that stays inside the image.
    pub fn check(&self) -> Result<(), IngestError> {
        self.chmod()?;
        if self.user.is_some() != self.group.is_some() {
            return Err(IngestError::UserWithoutGroup {
                target: self.target.clone(),
                from: self.source_display(),
            });
        }
        normalize_path(self.target.as_bytes(), &self.origin())?;
        Ok(())
    }

    fn origin(&self) -> String {
        format!("contents entry {} -> {}", self.target, self.source_display())
    }
}

/// Copies every `contents` entry into the tree, in order (see the module docs).
pub fn add_contents(
    tree: &mut FsTree,
    entries: &[ContentsEntry],
    opts: &IngestOptions,
) -> Result<(), IngestError> {
    for e in entries {
        e.check()?;
    }
    for e in entries {
        add_entry(tree, e, opts)?;
    }
    canonicalize(tree);
    Ok(())
}

/// [`add_contents`] for one entry, returning the names a glob source's matches got in
/// `target` (in the order matched; `None` for a source without `*`), so that the caller can
/// record what the glob expanded to ([`super::digest::glob_digest`]).
pub fn add_contents_entry(
    tree: &mut FsTree,
    e: &ContentsEntry,
    opts: &IngestOptions,
) -> Result<Option<Vec<Vec<u8>>>, IngestError> {
    e.check()?;
    let matched = add_entry(tree, e, opts)?;
    canonicalize(tree);
    Ok(matched)
}

fn add_entry(
    tree: &mut FsTree,
    e: &ContentsEntry,
    opts: &IngestOptions,
) -> Result<Option<Vec<Vec<u8>>>, IngestError> {
    let origin = e.origin();
    let comps = normalize_path(e.target.as_bytes(), &origin)?;
    let mut touched = Vec::new();
    let mut matched = None;
    if e.source.as_os_str().as_bytes().contains(&b'*') {
        mkdir_p(tree, &comps, &origin, opts)?;
        let matches = super::glob::expand(&e.source);
        if matches.is_empty() {
            return Err(IngestError::GlobNoMatch { target: e.target.clone(), from: e.source_display() });
        }
        for m in matches {
            let Some(name) = m.file_name().map(|n| n.as_bytes().to_vec()) else {
                return Err(IngestError::Unsupported {
                    path: m,
                    origin: "contents",
                    what: "a glob must end in a file name, not `..`",
                });
            };
            copy_host_entry(tree, &m, &comps, &name, HostCopy::RSYNC, opts, &mut touched)?;
            matched.get_or_insert_with(Vec::new).push(name);
        }
    } else {
        let duplicate = || IngestError::DuplicateEntry { target: e.target.clone(), from: e.source_display() };
        let Some((name, parent)) = comps.split_last() else { return Err(duplicate()) };
        mkdir_p(tree, parent, &origin, opts)?;
        if tree.lookup(display_path(&comps).as_bytes()).is_some() {
            return Err(duplicate());
        }
        // A symlink is copied as a link; anything else must be a file or a folder.
        let is_link = fs::symlink_metadata(&e.source).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link || fs::metadata(&e.source).is_ok() {
            check_data_source(&e.source, "contents source")?;
        }
        if fs::metadata(&e.source).is_ok_and(|m| m.is_dir()) {
            copy_host_dir(tree, &e.source, &comps, HostCopy::RSYNC, opts, &mut touched)?;
        } else {
            copy_host_entry(tree, &e.source, parent, name, HostCopy::RSYNC, opts, &mut touched)?;
            if !is_link && let Some(id) = tree.lookup(display_path(&comps).as_bytes()) {
                read_once(tree, id, &e.source)?;
            }
        }
    }
    if let Some(spec) = e.chmod()? {
        touched.sort();
        touched.dedup();
        for id in touched {
            let node = tree.node_mut(id);
            let is_dir = match node.kind {
                NodeKind::Symlink(_) => continue,
                NodeKind::Dir(_) => true,
                _ => false,
            };
            node.meta.perm = spec.apply(node.meta.perm, is_dir);
        }
    }
    Ok(matched)
}

/// Files up to this size named directly as sources are read into memory at ingestion.
const READ_ONCE_MAX: u64 = 16 << 20;

/// Reads a small file source now, once, so that the image holds exactly the bytes the
/// manifest hashes, whatever its `stat` says (`/proc/self/status` reports 0 bytes and holds
/// more; a file can change between two reads).
fn read_once(tree: &mut FsTree, id: NodeId, src: &Path) -> Result<(), IngestError> {
    let node = tree.node_mut(id);
    let NodeKind::File(c) = &mut node.kind else { return Ok(()) };
    if c.size > READ_ONCE_MAX {
        return Ok(());
    }
    let io = |source| IngestError::Io { path: src.to_path_buf(), source };
    let mut bytes = Vec::new();
    use std::io::Read;
    fs::File::open(src).map_err(io)?.take(READ_ONCE_MAX + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > READ_ONCE_MAX {
        // Grew past the limit while read (or `stat` understated it): stream it when written.
        return Ok(());
    }
    *c = FileContent { size: bytes.len() as u64, source: DataSource::Bytes(bytes.into()) };
    Ok(())
}

/// `chown -R user:group target` for every entry that sets them, resolved against the
/// image's own `/etc/passwd` and `/etc/group`. Run it after everything else is in the tree,
/// as the seed does.
pub fn apply_contents_ownership(tree: &mut FsTree, entries: &[ContentsEntry]) -> Result<(), IngestError> {
    for e in entries {
        e.check()?;
        let (Some(user), Some(group)) = (&e.user, &e.group) else { continue };
        let uid = resolve_id(tree, Db::Passwd, user, &e.target)?;
        let gid = resolve_id(tree, Db::Group, group, &e.target)?;
        let comps = normalize_path(e.target.as_bytes(), &e.origin())?;
        let path = display_path(&comps);
        let top = tree
            .lookup(path.as_bytes())
            .ok_or(IngestError::NotInImage { path, why: "a contents target to chown is missing" })?;
        let mut seen = vec![false; tree.nodes.len()];
        let mut stack = vec![top];
        while let Some(id) = stack.pop() {
            if std::mem::replace(&mut seen[id.0 as usize], true) {
                continue;
            }
            let node = tree.node_mut(id);
            node.meta.uid = uid;
            node.meta.gid = gid;
            if let NodeKind::Dir(entries) = &node.kind {
                stack.extend(entries.values().copied());
            }
        }
    }
    Ok(())
}

/// The seed's VM step `mkdir -p /etc/nixos` and, with a `configFile`, `cp FILE
/// /etc/nixos/configuration.nix` (as root, umask 022, without `-p`): a new file gets the
/// source's permission bits without setuid/setgid/sticky, masked by `022`, owner `0:0`, and
/// SOURCE_DATE_EPOCH (cp's "now"); an existing file keeps its metadata and takes the new
/// content with mtime SOURCE_DATE_EPOCH. The source is followed if it is a symlink.
pub fn add_config_file(
    tree: &mut FsTree,
    config: Option<&Path>,
    opts: &IngestOptions,
) -> Result<(), IngestError> {
    let origin = "configFile".to_string();
    let dir = mkdir_p(tree, &[b"etc".to_vec(), b"nixos".to_vec()], &origin, opts)?;
    let Some(src) = config else { return Ok(()) };
    let io = |source| IngestError::Io { path: src.to_path_buf(), source };
    // Checked before opening: opening a fifo would block.
    let md = check_data_source(src, "configFile")?;
    if !md.is_file() {
        return Err(IngestError::Unsupported {
            path: src.to_path_buf(),
            origin: "configFile",
            what: "it is not a regular file",
        });
    }
    // Read once: the image holds exactly the bytes the manifest hashes.
    let bytes = fs::read(src).map_err(io)?;
    let content = FileContent { size: bytes.len() as u64, source: DataSource::Bytes(bytes.into()) };
    let name = b"configuration.nix";
    let existing = super::ingest::entries(tree, dir).and_then(|e| e.get(&name[..]).copied());
    if let Some(id) = existing {
        let node = tree.node_mut(id);
        match node.kind {
            NodeKind::File(_) => {
                node.kind = NodeKind::File(content);
                node.meta.mtime = opts.epoch();
                node.meta.ctime = opts.epoch();
                return Ok(());
            }
            NodeKind::Dir(_) => {
                return Err(IngestError::TypeClash {
                    path: "/etc/nixos/configuration.nix".to_string(),
                    origin,
                    kind: "regular file",
                });
            }
            _ => {}
        }
    }
    use std::os::unix::fs::PermissionsExt;
    let perm = (md.permissions().mode() & 0o777 & !0o022) as u16;
    let node = Node { kind: NodeKind::File(content), meta: Metadata::new(perm, 0, 0, opts.epoch()) };
    super::ingest::place(tree, dir, "/etc/nixos", name, node, &origin, opts)?;
    canonicalize(tree);
    Ok(())
}

/// The seed's `nix copy --to ROOT PATHS`: each absolute host path is copied to the same
/// path in the image as a Nix store path is restored (see [`HostCopy::NIX_COPY`]); a path the
/// image already has is skipped, as `nix copy` skips valid paths.
pub fn add_additional_paths(
    tree: &mut FsTree,
    paths: &[PathBuf],
    opts: &IngestOptions,
) -> Result<(), IngestError> {
    for p in paths {
        if !p.is_absolute() {
            return Err(IngestError::Unsupported {
                path: p.clone(),
                origin: "additionalPaths",
                what: "paths must be absolute",
            });
        }
        let comps = normalize_path(p.as_os_str().as_bytes(), "additionalPaths")?;
        let Some((name, parent)) = comps.split_last() else {
            return Err(IngestError::Unsupported {
                path: p.clone(),
                origin: "additionalPaths",
                what: "`/` cannot be copied",
            });
        };
        if tree.lookup(display_path(&comps).as_bytes()).is_some() {
            continue;
        }
        if !fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) {
            check_data_source(p, "additionalPaths entry")?;
        }
        copy_host_entry(tree, p, parent, name, HostCopy::NIX_COPY, opts, &mut Vec::new())?;
    }
    canonicalize(tree);
    Ok(())
}

/// The seed's `onlyNixStore`: the image holds what `ROOT/nix/store/*` expands to (names
/// starting with `.`, such as `.links`, are not matched by the seed's glob and are left out),
/// under a root directory `0755 0:0` at SOURCE_DATE_EPOCH.
pub fn only_nix_store(tree: &FsTree, opts: &IngestOptions) -> Result<FsTree, IngestError> {
    let Some(NodeKind::Dir(entries)) = tree.lookup(b"/nix/store").map(|id| &tree.node(id).kind) else {
        return Err(IngestError::NotInImage {
            path: "/nix/store".to_string(),
            why: "onlyNixStore needs a /nix/store directory",
        });
    };
    let mut out = tree.clone();
    let kept =
        entries.iter().filter(|(name, _)| !name.starts_with(b".")).map(|(n, id)| (n.clone(), *id)).collect();
    let root = out.node_mut(NodeId::ROOT);
    root.kind = NodeKind::Dir(kept);
    root.meta = opts.created_dir_meta();
    canonicalize(&mut out);
    Ok(out)
}
