//! The root filesystem of a build: the spec's sources merged into one tree, then planned and written as ext4.
//!
//! Order of ingestion follows the seed: the system root (a directory or a tar archive), then
//! `contents` in spec order (the seed's preVM rsync loop), then `additionalPaths` (the seed's
//! `nix copy`: each host path lands at the same absolute path, as a store path would), then
//! `/etc/nixos` and `configFile` (the seed's VM step), then ownership of `contents` targets
//! (the seed's final `chown -R`, resolved against the image's own /etc/passwd and
//! /etc/group). With `onlyNixStore` the tree's /nix/store (additional paths included) becomes
//! the filesystem root and nothing else is added.
//!
//! Sizing: for `diskSize = "auto"` the ext4 planner computes the smallest filesystem holding
//! the tree ([`minimal_bytes`]); the layout then places a partition of at least that size plus
//! `additionalSpace`, and the filesystem is planned again to fill the partition exactly, from
//! the same census of the tree ([`minimal_census`], [`plan_exact_from`]): every directory is
//! built and every file looked at once for both plans.

use crate::fs::ext4::{self, Ext4Error, Ext4Options, Ext4Plan, SizeRequest, TreeCensus};
use crate::ids::{Guid, IdSource, RandomError};
use crate::spec::{DiskSize, Owners, Spec, Timestamps};
use crate::tree::contents::{self, ContentsEntry};
use crate::tree::digest::{Deferred, FileHashes};
use crate::tree::ingest::{IngestError, IngestOptions, TimestampPolicy};
use crate::tree::tar::TarScratch;
use crate::tree::{FsTree, NodeKind, Timestamp, digest, dir, tar};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The merged source tree, with the scratch files its data lives in (a decompressed tar):
/// keep it alive until the image is written.
pub struct RootTree {
    pub tree: FsTree,
    /// The digest of every file or folder source as ingested, by resolved host path, taken
    /// when the source was added and resolved by [`RootTree::digests`].
    deferred: BTreeMap<PathBuf, Deferred>,
    _scratch: Vec<TarScratch>,
}

impl RootTree {
    /// The digest of every file or folder source as ingested, by resolved host path: the
    /// sha256 of a file's bytes as they go into the image, the `tree-v1` digest
    /// ([`crate::tree::digest`]) of a folder or symlink, the `glob-v1` digest of a glob.
    /// File hashes come from `known` (what
    /// the write pass read); a file missing there is read now.
    pub fn digests(&self, known: &FileHashes) -> Result<BTreeMap<PathBuf, String>, RootFsError> {
        let mut out = BTreeMap::new();
        for (path, d) in &self.deferred {
            let sha = d.resolve(known).map_err(|source| IngestError::Io { path: path.clone(), source })?;
            out.insert(path.clone(), sha);
        }
        Ok(out)
    }
}

/// The digest of what ingestion put at image path `at` (see [`RootTree::digests`]).
fn digest_at(tree: &FsTree, at: &[u8], source: &Path) -> Result<Option<Deferred>, RootFsError> {
    let Some(id) = tree.lookup(at) else { return Ok(None) };
    let io = |source_err| IngestError::Io { path: source.to_path_buf(), source: source_err };
    Ok(Some(match &tree.node(id).kind {
        NodeKind::File(c) => Deferred::File(c.clone()),
        _ => digest::deferred_tree_digest(tree, id).map_err(io)?,
    }))
}

/// The `glob-v1` digest of the entries a glob put into image folder `at` under `names`.
fn glob_digest_at(
    tree: &FsTree,
    at: &[u8],
    names: &[Vec<u8>],
    source: &Path,
) -> Result<Option<Deferred>, RootFsError> {
    let Some(dir) = tree.lookup(at) else { return Ok(None) };
    let io = |source_err| IngestError::Io { path: source.to_path_buf(), source: source_err };
    Ok(Some(digest::deferred_glob_digest(tree, dir, names).map_err(io)?))
}

#[derive(Debug, thiserror::Error)]
pub enum RootFsError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Ext4(#[from] Ext4Error),
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error("`{path}` is neither a directory nor a file: system.root must be a directory or a tar archive")]
    BadRoot { path: String },
}

fn ingest_options(spec: &Spec) -> IngestOptions {
    let mut opts = IngestOptions::new(spec.source_date_epoch.value);
    opts.timestamps = match spec.timestamps {
        Timestamps::Clamp => TimestampPolicy::Clamp,
        Timestamps::SourceDateEpoch => TimestampPolicy::SourceDateEpoch,
        Timestamps::Keep => TimestampPolicy::Keep,
    };
    // The non-zero data a compressed archive stages becomes data blocks of the image, so a
    // fixed disk bounds it; with "auto" the disk grows to hold it, and so does the stage.
    opts.squash_owners = spec.owners == Owners::Root;
    if let DiskSize::Mib(mib) = spec.disk_size {
        opts.max_staged_bytes = mib.saturating_mul(1 << 20);
    }
    opts
}

/// Reads every source of `spec` into one tree.
/// A compressed root archive is unpacked into `scratch_dir` (the system's temporary folder
/// when `None`).
pub fn ingest(spec: &Spec, scratch_dir: Option<&std::path::Path>) -> Result<RootTree, RootFsError> {
    let opts = ingest_options(spec);
    let mut tree = FsTree::new(opts.created_dir_meta());
    let mut scratch = Vec::new();
    let mut digests = BTreeMap::new();
    if let Some(system) = &spec.system {
        let root = &system.root.resolved;
        let meta = crate::tree::ingest::check_data_source(root, "system.root")?;
        if meta.is_dir() {
            dir::add_dir(&mut tree, root, b"/", &opts)?;
            if let Some(d) = digest_at(&tree, b"/", root)? {
                digests.insert(root.clone(), d);
            }
        } else if meta.is_file() {
            scratch.push(tar::add_tar_with_scratch(&mut tree, root, b"/", &opts, scratch_dir)?);
        } else {
            return Err(RootFsError::BadRoot { path: system.root.written.clone() });
        }
    }
    let entries: Vec<ContentsEntry> = spec
        .contents
        .iter()
        .map(|c| ContentsEntry {
            source: c.source.resolved.clone(),
            target: c.target.clone(),
            mode: c.mode.clone(),
            user: c.user.clone(),
            group: c.group.clone(),
        })
        .collect();
    for e in &entries {
        e.check()?;
    }
    for e in &entries {
        let d = match contents::add_contents_entry(&mut tree, e, &opts)? {
            Some(names) => glob_digest_at(&tree, e.target.as_bytes(), &names, &e.source)?,
            None => digest_at(&tree, e.target.as_bytes(), &e.source)?,
        };
        if let Some(d) = d {
            digests.insert(e.source.clone(), d);
        }
    }
    let additional: Vec<PathBuf> = spec.additional_paths.iter().map(Into::into).collect();
    contents::add_additional_paths(&mut tree, &additional, &opts)?;
    for p in &additional {
        if let Some(d) = digest_at(&tree, p.as_os_str().as_encoded_bytes(), p)? {
            digests.insert(p.clone(), d);
        }
    }
    if spec.only_nix_store {
        tree = contents::only_nix_store(&tree, &opts)?;
        return Ok(RootTree { tree, deferred: digests, _scratch: scratch });
    }
    let config = spec.config_file.as_ref().map(|p| p.resolved.as_path());
    contents::add_config_file(&mut tree, config, &opts)?;
    if let Some(c) = config
        && let Some(d) = digest_at(&tree, b"/etc/nixos/configuration.nix", c)?
    {
        digests.insert(c.to_path_buf(), d);
    }
    contents::apply_contents_ownership(&mut tree, &entries)?;
    Ok(RootTree { tree, deferred: digests, _scratch: scratch })
}

/// The ext4 options of the root filesystem: label, UUID (`uuid` from the layout plan), the
/// derived hash seed and SOURCE_DATE_EPOCH.
pub fn ext4_options(spec: &Spec, uuid: Option<Guid>) -> Result<Ext4Options, RootFsError> {
    let ids = IdSource::from_deterministic(spec.deterministic);
    // The seed's assertion guarantees a rootFSUID in deterministic mode; without one (only
    // possible with deterministic = false) the UUID is random like every other ID.
    let uuid = match uuid {
        Some(u) => u,
        None => IdSource::Random.guid(spec.root_gpuid)?,
    };
    let mut opts = Ext4Options::new(
        uuid.0,
        ids.ext4_hash_seed(uuid)?,
        Timestamp::from_secs(spec.source_date_epoch.value),
    );
    opts.label = spec.label.as_bytes().to_vec();
    Ok(opts)
}

/// The smallest filesystem that holds `tree` (what `diskSize = "auto"` builds on).
pub fn minimal_bytes(tree: &FsTree, opts: &Ext4Options) -> Result<u64, RootFsError> {
    Ok(ext4::plan(tree, opts, SizeRequest::Auto { extra_bytes: 0 })?.size_bytes())
}

/// The filesystem that fills a partition of `bytes`.
pub fn plan_exact(tree: &FsTree, opts: &Ext4Options, bytes: u64) -> Result<Ext4Plan, RootFsError> {
    Ok(ext4::plan(tree, opts, SizeRequest::Exact(bytes))?)
}

/// [`minimal_bytes`], keeping the census so that [`plan_exact_from`] does not take it again.
pub fn minimal_census(tree: &FsTree, opts: &Ext4Options) -> Result<(u64, TreeCensus), RootFsError> {
    let census = TreeCensus::of(tree, opts)?;
    Ok((census.minimal_bytes()?, census))
}

/// [`plan_exact`] with a census from [`minimal_census`] when it was taken of this tree (the
/// caller's word: unchanged since) with these options; otherwise a new census.
pub fn plan_exact_from(
    census: Option<TreeCensus>,
    tree: &FsTree,
    opts: &Ext4Options,
    bytes: u64,
) -> Result<Ext4Plan, RootFsError> {
    match census {
        Some(c) if c.fits(opts, tree.nodes.len()) => Ok(ext4::plan_with(c, opts, SizeRequest::Exact(bytes))?),
        _ => plan_exact(tree, opts, bytes),
    }
}
