//! Ingestion of tar archives (plain, gzip, zstd) into the tree, with data referenced in place.
//!
//! The archive is parsed here, header by header (ustar, GNU and pax), because the writer needs
//! each member's byte offset and sparse map, which general tar readers do not expose.
//!
//! Decisions:
//! - Compression is detected by magic bytes, never by extension: gzip (`1f 8b`, several
//!   members allowed), zstd (`28 b5 2f fd`, several frames allowed), else plain tar. Plain
//!   archives are referenced in place ([`DataSource::Archive`]). A compressed archive is
//!   parsed while it streams out of the decompressor, and only its regular members' data is
//!   copied into a scratch file ([`TarScratch`], kept alive until the image is written),
//!   sparsely: zero 4 KiB blocks stay holes, so the scratch takes no more space than the
//!   data blocks the image will hold, and a fixed disk size bounds it (`max_staged_bytes`).
//!   The scratch is registered for removal on signals; the build puts it in its stage.
//! - pax headers: local (`x`) records apply to the next member (the last record of a
//!   keyword wins, an empty value removes it); global (`g`) records update one current
//!   global state that later members read (the latest value wins, as GNU tar applies them;
//!   bsdtar ignores global headers). Nothing is copied per member, so ingestion stays linear
//!   in the archive size, deep paths included.
//! - Device numbers beyond 4095:1048575 (what ext4 and Linux's `dev_t` hold) are errors.
//! - Errors name the member (or the member before a broken header) and its byte offset in
//!   the uncompressed archive; a failing write of the scratch file is reported as such
//!   (ENOSPC included), never as a malformed archive.
//! - Ownership is the numeric uid/gid (pax `uid`/`gid` over the header fields); `uname` and
//!   `gname` are ignored. GNU tar, mmdebstrap and `docker export` always write the ids, and
//!   resolving names would need the image's own `/etc/passwd`, which may be in the archive
//!   itself. Empty id fields read as 0.
//! - Times: the mtime (pax `mtime` with nanoseconds over the header field); atime and ctime
//!   are ignored and the timestamp policy applies, see [`super::ingest`].
//! - Xattrs: pax `SCHILY.xattr.NAME` (raw value; GNU tar's `%25`/`%3D` escapes in the name
//!   undone) and `LIBARCHIVE.xattr.NAME` (URL-encoded name, base64 value), filtered by
//!   [`keep_xattr`] as for directories.
//! - Paths: leading `/` and `./` are stripped, `.` and `..` resolved lexically; a `..` that
//!   leaves the root is an error. Missing parent directories are created `0755 0:0`
//!   SOURCE_DATE_EPOCH. A member under a non-directory (for example under a symlink) is an
//!   error: links are never followed.
//! - Duplicate members: a later member replaces an earlier non-directory and a later directory
//!   updates an earlier directory's metadata, as GNU tar extraction does. (mmdebstrap and
//!   `docker export` archives have no duplicates.) A non-directory over a directory is an
//!   error.
//! - Hard links (`1`) name a member that came earlier and become the same node. Sparse
//!   members (GNU `S`, pax 0.0, 0.1 and 1.0) keep their map; a map that covers the whole file
//!   in one run is stored as dense. A sparse member's name: see `member_name` (GNU tar and
//!   libarchive each cut a different one of `path` and `GNU.sparse.name` to 100 bytes).
//! - Volume labels are skipped; GNU dumpdirs read as directories; multi-volume members and
//!   unknown member types are errors.

mod header;
mod member;
mod reader;

use header::*;
use member::*;
use reader::*;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ingest::{
    IngestError, IngestOptions, canonicalize, display_path, keep_xattr, mkdir_p, normalize_path, place,
    place_link,
};
use super::{DataSource, FileContent, FsTree, Metadata, Node, NodeKind, Timestamp};

/// Keeps the scratch file of a decompressed archive alive; drop it only after the image is
/// written. Holds nothing for a plain archive.
#[derive(Debug)]
pub struct TarScratch {
    pub path: Option<tempfile::TempPath>,
    /// Removes the scratch file on a signal ([`crate::cleanup`]).
    _guard: Option<crate::cleanup::Guard>,
}

/// Adds every member of the tar archive `archive` under image directory `at` (created when
/// missing). A member `./` sets `at`'s own metadata. A compressed archive is unpacked into
/// the system's temporary directory; see [`add_tar_with_scratch`] to choose another.
pub fn add_tar(
    tree: &mut FsTree,
    archive: &Path,
    at: &[u8],
    opts: &IngestOptions,
) -> Result<TarScratch, IngestError> {
    add_tar_with_scratch(tree, archive, at, opts, None)
}

/// [`add_tar`] unpacking a compressed archive into `scratch_dir` (for example next to the
/// output image, when the temporary directory is a small tmpfs).
pub fn add_tar_with_scratch(
    tree: &mut FsTree,
    archive: &Path,
    at: &[u8],
    opts: &IngestOptions,
    scratch_dir: Option<&Path>,
) -> Result<TarScratch, IngestError> {
    let (mut r, scratch) = Reader::open(archive, scratch_dir, opts.max_staged_bytes)?;
    let data_path = r.data_path.clone();
    let origin = format!("tar archive `{}`", archive.display());
    let at = normalize_path(at, &origin)?;
    mkdir_p(tree, &at, &origin, opts)?;
    // One current global state: a later `g` record replaces an earlier one of the same
    // keyword, and an empty value removes it (POSIX pax, as GNU tar and bsdtar read it).
    let mut global: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut local: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    loop {
        let start = r.pos;
        if let Some(m) = r.member.take() {
            r.last_member = Some(m);
        }
        let Some(h) = r.header()? else { break };
        // A pax `size` describes the member the records belong to, never another
        // extension header in between.
        let is_extension = matches!(h.typeflag(), b'L' | b'K' | b'x' | b'g' | b'V');
        let size = match (Pax { local: &local, global: &global }).get(b"size").filter(|_| !is_extension) {
            Some(v) => parse_decimal(v).ok_or_else(|| r.err(start, "bad pax `size`"))?,
            None => h.num(124, 12).ok_or_else(|| r.err(start, "bad size field"))?,
        };
        let size = u64::try_from(size).map_err(|_| r.err(start, "negative size"))?;
        match h.typeflag() {
            b'L' => {
                long_name = Some(trim_nul(&r.data(size)?).to_vec());
                continue;
            }
            b'K' => {
                long_link = Some(trim_nul(&r.data(size)?).to_vec());
                continue;
            }
            b'x' => {
                local = parse_pax(&r.data(size)?).ok_or_else(|| r.err(start, "malformed pax header"))?;
                continue;
            }
            b'g' => {
                let records =
                    parse_pax(&r.data(size)?).ok_or_else(|| r.err(start, "malformed pax global header"))?;
                for (k, v) in records {
                    if v.is_empty() {
                        global.remove(&k);
                    } else {
                        global.insert(k, v);
                    }
                }
                continue;
            }
            b'V' => {
                r.skip(size)?;
                continue;
            }
            _ => {}
        }
        // Local pax records override global ones; neither is copied per member.
        let local_records = std::mem::take(&mut local);
        let pax = Pax { local: &local_records, global: &global };
        let path = member_name(pax.get(b"GNU.sparse.name"), pax.get(b"path"))
            .map(<[u8]>::to_vec)
            .or(long_name.take())
            .unwrap_or_else(|| h.path());
        r.member = Some(String::from_utf8_lossy(&path).into_owned());
        let link = pax
            .get(b"linkpath")
            .map(<[u8]>::to_vec)
            .or(long_link.take())
            .unwrap_or_else(|| h.field(157, 100).to_vec());
        let member = Member { start, h: &h, pax, size };
        let meta = member.meta(&r, opts)?;
        let kind = match h.typeflag() {
            b'0' | 0 | b'7'
                if pax.get(b"GNU.sparse.major").is_some()
                    || pax.get(b"GNU.sparse.map").is_some()
                    || pax.get(b"GNU.sparse.offset").is_some() =>
            {
                let (real, map, stored) = member.pax_sparse(&mut r)?;
                let offset = r.member_data(start, stored)?;
                Some(NodeKind::File(archive_content(&data_path, real, offset, map)))
            }
            b'0' | 0 | b'7' => {
                let offset = r.member_data(start, size)?;
                Some(NodeKind::File(archive_content(&data_path, size, offset, None)))
            }
            b'S' => {
                let (real, map) = member.gnu_sparse(&mut r)?;
                let offset = r.member_data(start, size)?;
                Some(NodeKind::File(archive_content(&data_path, real, offset, map)))
            }
            b'1' => {
                r.skip(size)?;
                None
            }
            b'2' => Some(NodeKind::Symlink(link.clone())),
            b'3' | b'4' => {
                let major = h
                    .num(329, 8)
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| r.err(start, "bad devmajor"))?;
                let minor = h
                    .num(337, 8)
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| r.err(start, "bad devminor"))?;
                if major > MAX_MAJOR || minor > MAX_MINOR {
                    return Err(r.err(
                        start,
                        &format!(
                            "device number {major}:{minor} does not fit ext4's device encoding (major at most {MAX_MAJOR}, minor at most {MAX_MINOR}, as Linux's dev_t); remove the device or renumber it"
                        ),
                    ));
                }
                Some(if h.typeflag() == b'3' {
                    NodeKind::CharDevice { major, minor }
                } else {
                    NodeKind::BlockDevice { major, minor }
                })
            }
            b'5' | b'D' => {
                r.skip(size)?;
                Some(NodeKind::Dir(BTreeMap::new()))
            }
            b'6' => Some(NodeKind::Fifo),
            other => {
                return Err(r.err(
                    start,
                    &format!("unsupported member type `{}`", char::from(other).escape_default()),
                ));
            }
        };
        let mut comps = at.clone();
        comps.extend(normalize_path(&path, &origin)?);
        let display = display_path(&comps);
        let Some((name, parent_comps)) = comps.split_last() else {
            // The member is the root itself (`./`): only a directory may set its metadata.
            match kind {
                Some(NodeKind::Dir(_)) => tree.node_mut(super::NodeId::ROOT).meta = meta,
                _ => return Err(IngestError::TypeClash { path: display, origin, kind: "non-directory" }),
            }
            continue;
        };
        let parent = mkdir_p(tree, parent_comps, &origin, opts)?;
        let parent_display = display_path(parent_comps);
        match kind {
            Some(kind) => {
                place(tree, parent, &parent_display, name, Node { kind, meta }, &origin, opts)?;
            }
            None => {
                let mut target = at.clone();
                target.extend(normalize_path(&link, &origin)?);
                let hard_link_err = || IngestError::HardLinkTarget {
                    archive: archive.to_path_buf(),
                    member: display.clone(),
                    target: String::from_utf8_lossy(&link).into_owned(),
                };
                let id = tree.lookup(&target.join(&b'/')).ok_or_else(hard_link_err)?;
                if matches!(tree.node(id).kind, NodeKind::Dir(_)) {
                    return Err(hard_link_err());
                }
                place_link(tree, parent, &parent_display, name, id, &origin)?;
            }
        }
    }
    r.finish()?;
    canonicalize(tree);
    Ok(scratch)
}

/// The largest device numbers ext4 can store (its "new" encoding in `i_block[1]`: 12 bits
/// of major, 20 of minor), which is also all that Linux's `dev_t` holds.
pub const MAX_MAJOR: u32 = 0xfff;
pub const MAX_MINOR: u32 = 0xf_ffff;

/// A regular file's content at `offset` of the data file.
fn archive_content(
    data: &Arc<PathBuf>,
    size: u64,
    offset: u64,
    map: Option<Arc<[(u64, u64)]>>,
) -> FileContent {
    FileContent { size, source: DataSource::Archive { path: data.clone(), offset, map } }
}

/// A sparse member's real name. GNU tar writes it to `GNU.sparse.name` and a stand-in
/// (`DIR/GNUSparseFile.PID/NAME`, sometimes cut to the 100-byte ustar name field) to
/// `path`; libarchive writes the real name to `path` and, for names it cannot convert to
/// UTF-8, a copy cut to 100 bytes to `GNU.sparse.name`. So: a `path` with a
/// `GNUSparseFile.` component is a stand-in; otherwise a `path` longer than 100 bytes is
/// libarchive's real name; otherwise `GNU.sparse.name` is right (for libarchive the two are
/// then equal).
fn member_name<'a>(sparse_name: Option<&'a [u8]>, path: Option<&'a [u8]>) -> Option<&'a [u8]> {
    let stand_in = |p: &[u8]| p.split(|&b| b == b'/').any(|c| c.starts_with(b"GNUSparseFile."));
    match (sparse_name, path) {
        (Some(_), Some(p)) if p.len() > 100 && !stand_in(p) => Some(p),
        (Some(s), _) => Some(s),
        (None, p) => p,
    }
}

/// Reads a member's bytes back from its [`DataSource::Archive`] (holes as zeros); for tests
/// and for small files such as `/etc/passwd`.
pub fn read_archive_range(
    path: &Path,
    offset: u64,
    size: u64,
    map: Option<&[(u64, u64)]>,
) -> std::io::Result<Vec<u8>> {
    let mut f = File::open(path)?;
    let size_usize =
        usize::try_from(size).map_err(|_| std::io::Error::other("member too large to read into memory"))?;
    let mut out = vec![0u8; size_usize];
    f.seek(SeekFrom::Start(offset))?;
    match map {
        None => f.read_exact(&mut out)?,
        Some(runs) => {
            for &(off, len) in runs {
                let (off, len) = (off as usize, len as usize);
                f.read_exact(
                    out.get_mut(off..off + len)
                        .ok_or_else(|| std::io::Error::other("sparse run past the file size"))?,
                )?;
            }
        }
    }
    Ok(out)
}
