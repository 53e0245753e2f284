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
//! `additionalSpace`, and the filesystem is planned again to fill the partition exactly.

use crate::fs::ext4::{self, Ext4Error, Ext4Options, Ext4Plan, SizeRequest};
use crate::ids::{Guid, IdSource, RandomError};
use crate::spec::{Spec, Timestamps};
use crate::tree::contents::{self, ContentsEntry};
use crate::tree::ingest::{IngestError, IngestOptions, TimestampPolicy};
use crate::tree::tar::TarScratch;
use crate::tree::{FsTree, Timestamp, dir, tar};

/// The merged source tree, with the scratch files its data lives in (a decompressed tar):
/// keep it alive until the image is written.
pub struct RootTree {
    pub tree: FsTree,
    _scratch: Vec<TarScratch>,
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
    opts
}

/// Reads every source of `spec` into one tree.
/// A compressed root archive is unpacked into `scratch_dir` (the system's temporary folder
/// when `None`).
pub fn ingest(spec: &Spec, scratch_dir: Option<&std::path::Path>) -> Result<RootTree, RootFsError> {
    let opts = ingest_options(spec);
    let mut tree = FsTree::new(opts.created_dir_meta());
    let mut scratch = Vec::new();
    if let Some(system) = &spec.system {
        let root = &system.root.resolved;
        let meta =
            std::fs::metadata(root).map_err(|source| IngestError::Io { path: root.clone(), source })?;
        if meta.is_dir() {
            dir::add_dir(&mut tree, root, b"/", &opts)?;
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
    contents::add_contents(&mut tree, &entries, &opts)?;
    let additional: Vec<std::path::PathBuf> = spec.additional_paths.iter().map(Into::into).collect();
    contents::add_additional_paths(&mut tree, &additional, &opts)?;
    if spec.only_nix_store {
        tree = contents::only_nix_store(&tree, &opts)?;
        return Ok(RootTree { tree, _scratch: scratch });
    }
    contents::add_config_file(&mut tree, spec.config_file.as_ref().map(|p| p.resolved.as_path()), &opts)?;
    contents::apply_contents_ownership(&mut tree, &entries)?;
    Ok(RootTree { tree, _scratch: scratch })
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
