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

/// The pax records of one member: its local (`x`) ones, then the current global state.
#[derive(Clone, Copy)]
struct Pax<'a> {
    local: &'a [(Vec<u8>, Vec<u8>)],
    global: &'a BTreeMap<Vec<u8>, Vec<u8>>,
}

impl<'a> Pax<'a> {
    /// A keyword's value: the last local record of it (an empty one removes the keyword),
    /// else the global one.
    fn get(&self, key: &[u8]) -> Option<&'a [u8]> {
        match self.local.iter().rev().find(|(k, _)| k == key) {
            Some((_, v)) if v.is_empty() => None,
            Some((_, v)) => Some(v),
            None => self.global.get(key).map(Vec::as_slice),
        }
    }

    /// The records whose keyword starts with `prefix`, in the order a first-wins reader
    /// needs: local ones from the last, then global ones (found by range, so a large global
    /// state costs nothing per member).
    fn with_prefix(&self, prefix: &'a [u8]) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        let local = self.local.iter().rev().filter(move |(k, _)| k.starts_with(prefix));
        let global = self.global.range(prefix.to_vec()..).take_while(move |(k, _)| k.starts_with(prefix));
        local
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .chain(global.map(|(k, v)| (k.as_slice(), v.as_slice())))
    }
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

/// Bytes read at once from a decompressor.
const COPY_BUFFER: usize = 1 << 20;

/// Where the uncompressed archive's bytes come from.
enum Input {
    /// A plain archive, read in place: member data is referenced at its own offset.
    Plain(BufReader<File>),
    /// A decompressor: member data is copied into the scratch file as it streams past, and
    /// nothing else of the archive (headers, padding) is kept.
    Stream(Box<dyn Read>),
}

/// Several zstd frames back to back, read as one stream.
struct ZstdFrames {
    input: Option<BufReader<File>>,
    frame: Option<ruzstd::decoding::StreamingDecoder<BufReader<File>, ruzstd::decoding::FrameDecoder>>,
}

impl Read for ZstdFrames {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(frame) = &mut self.frame {
                let n = frame.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                self.input = self.frame.take().map(|f| f.into_inner());
            }
            let Some(mut input) = self.input.take() else { return Ok(0) };
            if input.fill_buf()?.is_empty() {
                return Ok(0);
            }
            let frame = ruzstd::decoding::StreamingDecoder::new(input)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
            self.frame = Some(frame);
        }
    }
}

/// The scratch file of a compressed archive. Member data is copied at 4 KiB-aligned
/// offsets and all-zero 4 KiB blocks are left as holes, so the file takes only the space
/// of the bytes that become data blocks in the image (the writer stores zero blocks as
/// holes too): a gzip bomb of zeros costs nothing, and `limit` (the disk size, when fixed)
/// bounds the rest.
struct Scratch {
    file: File,
    path: PathBuf,
    end: u64,
    staged: u64,
    limit: u64,
}

/// A position-tracking reader over the uncompressed archive.
struct Reader {
    input: Input,
    /// Position in the uncompressed archive.
    pos: u64,
    /// Length of the uncompressed archive; `u64::MAX` (unknown) when streaming.
    len: u64,
    archive: PathBuf,
    /// The file [`DataSource::Archive`] offsets point into: the archive or the scratch file.
    data_path: Arc<PathBuf>,
    scratch: Option<Scratch>,
    buf: Vec<u8>,
    /// The member being read and the last one read, for messages.
    member: Option<String>,
    last_member: Option<String>,
}

impl Reader {
    /// Opens `archive`, detecting compression by magic bytes; a compressed one gets a scratch
    /// file in `scratch_dir` (the system's temporary folder when `None`).
    fn open(
        archive: &Path,
        scratch_dir: Option<&Path>,
        limit: u64,
    ) -> Result<(Reader, TarScratch), IngestError> {
        let io = |source| IngestError::Io { path: archive.to_path_buf(), source };
        let file = File::open(archive).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut input = BufReader::with_capacity(1 << 16, file);
        let magic = input.fill_buf().map_err(io)?.get(..4).map(<[u8]>::to_vec).unwrap_or_default();
        let is_gzip = magic.starts_with(&[0x1f, 0x8b]);
        let is_zstd = magic == [0x28, 0xb5, 0x2f, 0xfd];
        let compressed = is_gzip || is_zstd;
        let stream: Option<Box<dyn Read>> = if is_gzip {
            Some(Box::new(flate2::bufread::MultiGzDecoder::new(input)))
        } else if is_zstd {
            Some(Box::new(ZstdFrames { input: Some(input), frame: None }))
        } else {
            None
        };
        let mut r = Reader {
            input: Input::Stream(Box::new(std::io::empty())),
            pos: 0,
            len: if compressed { u64::MAX } else { len },
            archive: archive.to_path_buf(),
            data_path: Arc::new(PathBuf::new()),
            scratch: None,
            buf: Vec::new(),
            member: None,
            last_member: None,
        };
        let Some(stream) = stream else {
            if magic.starts_with(&[0xfd, b'7', b'z', b'X']) || magic.starts_with(b"BZh") {
                return Err(IngestError::Unsupported {
                    path: archive.to_path_buf(),
                    origin: "tar ingestion",
                    what: "xz and bzip2 compression are not supported; recompress with gzip or zstd",
                });
            }
            // Absolute, so the writer finds it whatever its working directory.
            r.data_path = Arc::new(std::path::absolute(archive).map_err(io)?);
            // Reopened: the first reader went into the (absent) decompressor.
            r.input = Input::Plain(BufReader::with_capacity(1 << 16, File::open(archive).map_err(io)?));
            return Ok((r, TarScratch { path: None, _guard: None }));
        };
        r.input = Input::Stream(stream);
        let mut builder = tempfile::Builder::new();
        builder.prefix(".reprodisk-unpacked-").suffix(".tar-data");
        let (dir, tmp) = match scratch_dir {
            Some(d) => (d.to_path_buf(), builder.tempfile_in(d)),
            None => (std::env::temp_dir(), builder.tempfile()),
        };
        let tmp = tmp.map_err(|source| IngestError::Scratch { path: dir, source })?;
        let (file, temp_path) = tmp.into_parts();
        let guard = crate::cleanup::register(&temp_path);
        r.data_path = Arc::new(temp_path.to_path_buf());
        r.scratch = Some(Scratch { file, path: temp_path.to_path_buf(), end: 0, staged: 0, limit });
        Ok((r, TarScratch { path: Some(temp_path), _guard: Some(guard) }))
    }

    fn err(&self, offset: u64, what: &str) -> IngestError {
        let member = match (&self.member, &self.last_member) {
            (Some(m), _) => format!("member `{m}`"),
            (None, Some(last)) => format!("the header after member `{last}`"),
            (None, None) => "the first header".to_string(),
        };
        IngestError::Tar { archive: self.archive.clone(), offset, member, what: what.to_string() }
    }

    /// Reads until `buf` is full or the archive ends; returns how much was read.
    fn read_full(&mut self, buf: &mut [u8]) -> Result<usize, IngestError> {
        let mut got = 0;
        while got < buf.len() {
            let n = match &mut self.input {
                Input::Plain(f) => f
                    .read(&mut buf[got..])
                    .map_err(|source| IngestError::Io { path: self.archive.clone(), source }),
                Input::Stream(s) => s.read(&mut buf[got..]).map_err(|e| {
                    let what = format!("the compressed stream is corrupt: {e}");
                    self.err(self.pos + got as u64, &what)
                }),
            }?;
            if n == 0 {
                break;
            }
            got += n;
        }
        Ok(got)
    }

    fn read_block(&mut self) -> Result<Option<[u8; 512]>, IngestError> {
        let mut b = [0u8; 512];
        let got = self.read_full(&mut b)?;
        if got == 0 {
            return Ok(None);
        }
        if got < 512 {
            return Err(self.err(self.pos, "archive ends inside a 512-byte block"));
        }
        self.pos += 512;
        Ok(Some(b))
    }

    /// The next header, or `None` at the end-of-archive marker (a zero block) or at EOF.
    fn header(&mut self) -> Result<Option<Header>, IngestError> {
        let start = self.pos;
        let Some(b) = self.read_block()? else { return Ok(None) };
        if b.iter().all(|&x| x == 0) {
            return Ok(None);
        }
        let h = Header(b);
        let stored = h.num(148, 8).ok_or_else(|| self.err(start, "bad checksum field"))?;
        let unsigned: i64 =
            b.iter().enumerate().map(|(i, &x)| if (148..156).contains(&i) { 32 } else { i64::from(x) }).sum();
        let signed: i64 = b
            .iter()
            .enumerate()
            .map(|(i, &x)| if (148..156).contains(&i) { 32 } else { i64::from(x as i8) })
            .sum();
        if stored != unsigned && stored != signed {
            return Err(self.err(
                start,
                &format!("header checksum is {stored}, computed {unsigned}; not a tar archive or corrupt"),
            ));
        }
        Ok(Some(h))
    }

    /// Reads `size` bytes of member data (a metadata member) and the padding after them.
    fn data(&mut self, size: u64) -> Result<Vec<u8>, IngestError> {
        let start = self.pos;
        if size > 64 << 20 || start.saturating_add(size) > self.len {
            return Err(
                self.err(start, &format!("metadata member of {size} bytes is too large or truncated"))
            );
        }
        let mut v = vec![0u8; size as usize];
        if self.read_full(&mut v)? < v.len() {
            return Err(self.err(start, "truncated metadata member"));
        }
        self.pos += size;
        self.skip(0)?;
        Ok(v)
    }

    /// Skips `size` bytes and the padding to the next 512-byte boundary.
    fn skip(&mut self, size: u64) -> Result<(), IngestError> {
        let target = self.pos.checked_add(size).and_then(|end| end.div_ceil(512).checked_mul(512));
        let Some(target) = target.filter(|&t| t <= self.len) else {
            return Err(self.err(self.pos, "member data runs past the end of the archive"));
        };
        let delta = target - self.pos;
        if matches!(self.input, Input::Plain(_)) {
            let delta = i64::try_from(delta).map_err(|_| self.err(self.pos, "member too large"))?;
            if let Input::Plain(f) = &mut self.input {
                f.seek_relative(delta)
                    .map_err(|source| IngestError::Io { path: self.archive.clone(), source })?;
            }
        } else {
            let mut left = delta;
            let mut buf = std::mem::take(&mut self.buf);
            buf.resize(COPY_BUFFER, 0);
            while left > 0 {
                let want = left.min(buf.len() as u64) as usize;
                if self.read_full(&mut buf[..want])? < want {
                    return Err(self.err(self.pos, "member data runs past the end of the archive"));
                }
                left -= want as u64;
            }
            self.buf = buf;
        }
        self.pos = target;
        Ok(())
    }

    /// Consumes `size` bytes of a regular member's data (and the padding) and returns their
    /// offset in [`Reader::data_path`]: in place for a plain archive, copied into the
    /// scratch file for a compressed one.
    fn member_data(&mut self, start: u64, size: u64) -> Result<u64, IngestError> {
        if matches!(self.input, Input::Plain(_)) {
            if self.pos.checked_add(size).is_none_or(|end| end > self.len) {
                return Err(self.err(start, "member data runs past the end of the archive"));
            }
            let offset = self.pos;
            self.skip(size)?;
            return Ok(offset);
        }
        const BLOCK: usize = 4096;
        let offset = self.scratch.as_ref().map_or(0, |s| s.end.div_ceil(BLOCK as u64) * BLOCK as u64);
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(COPY_BUFFER, 0);
        let mut done = 0u64;
        while done < size {
            let want = (size - done).min(buf.len() as u64) as usize;
            if self.read_full(&mut buf[..want])? < want {
                return Err(self.err(start, "member data runs past the end of the archive"));
            }
            let Some(sc) = self.scratch.as_mut() else {
                return Err(self.err(start, "internal: a compressed archive without a scratch file"));
            };
            let zero = |r: std::ops::Range<usize>| buf[r].iter().all(|&b| b == 0);
            let mut i = 0;
            while i < want {
                let mut j = (i + BLOCK).min(want);
                if zero(i..j) {
                    i = j;
                    continue;
                }
                while j < want && !zero(j..(j + BLOCK).min(want)) {
                    j = (j + BLOCK).min(want);
                }
                sc.staged += (j - i) as u64;
                if sc.staged > sc.limit {
                    return Err(IngestError::TooMuchData { archive: self.archive.clone(), limit: sc.limit });
                }
                use std::os::unix::fs::FileExt;
                sc.file
                    .write_all_at(&buf[i..j], offset + done + i as u64)
                    .map_err(|source| IngestError::Scratch { path: sc.path.clone(), source })?;
                i = j;
            }
            done += want as u64;
            self.pos += want as u64;
        }
        self.buf = buf;
        if let Some(sc) = self.scratch.as_mut() {
            sc.end = offset + size;
        }
        self.skip(0)?;
        Ok(offset)
    }

    /// Gives the scratch file its full length, so its trailing holes read as zeros.
    fn finish(&mut self) -> Result<(), IngestError> {
        if let Some(sc) = &self.scratch {
            sc.file
                .set_len(sc.end)
                .map_err(|source| IngestError::Scratch { path: sc.path.clone(), source })?;
        }
        Ok(())
    }
}

/// One 512-byte header block.
struct Header([u8; 512]);

impl Header {
    fn field(&self, off: usize, len: usize) -> &[u8] {
        trim_nul(&self.0[off..off + len])
    }

    fn typeflag(&self) -> u8 {
        self.0[156]
    }

    fn is_ustar(&self) -> bool {
        &self.0[257..263] == b"ustar\0"
    }

    /// name, with the ustar prefix when the header is POSIX ustar (GNU headers use that area
    /// for other fields).
    fn path(&self) -> Vec<u8> {
        let name = self.field(0, 100);
        let prefix = self.field(345, 155);
        if self.is_ustar() && !prefix.is_empty() {
            let mut p = prefix.to_vec();
            p.push(b'/');
            p.extend_from_slice(name);
            p
        } else {
            name.to_vec()
        }
    }

    /// A numeric field: octal text, or GNU base-256 when the top bit of the first byte is set.
    fn num(&self, off: usize, len: usize) -> Option<i64> {
        parse_number(&self.0[off..off + len])
    }
}

fn parse_number(f: &[u8]) -> Option<i64> {
    if f.first().is_some_and(|&b| b & 0x80 != 0) {
        let negative = f[0] & 0x40 != 0;
        let mut v: i128 = if negative { -1 } else { 0 };
        for (i, &b) in f.iter().enumerate() {
            let b = if i == 0 { if negative { b | 0x80 } else { b & 0x7f } } else { b };
            v = (v << 8) | i128::from(b);
            if v.unsigned_abs() > u128::from(u64::MAX) {
                return None;
            }
        }
        return i64::try_from(v).ok();
    }
    let text: Vec<u8> =
        f.iter().copied().skip_while(|&b| b == b' ' || b == 0).take_while(|&b| b != b' ' && b != 0).collect();
    if text.is_empty() {
        return Some(0);
    }
    let mut v: i64 = 0;
    for b in text {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        v = v.checked_mul(8)?.checked_add(i64::from(b - b'0'))?;
    }
    Some(v)
}

fn trim_nul(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
    &b[..end]
}

fn parse_decimal(v: &[u8]) -> Option<i64> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

/// pax records `LEN KEY=VALUE\n`, in order (the sparse 0.0 format repeats keys).
fn parse_pax(data: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() && rest[0] != 0 {
        let sp = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..sp]).ok()?.parse().ok()?;
        if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return None;
        }
        let rec = &rest[sp + 1..len - 1];
        let eq = rec.iter().position(|&b| b == b'=')?;
        out.push((rec[..eq].to_vec(), rec[eq + 1..].to_vec()));
        rest = &rest[len..];
    }
    Some(out)
}

/// A pax time `SECS[.FRACTION]`, possibly negative.
fn parse_pax_time(v: &[u8]) -> Option<Timestamp> {
    let s = std::str::from_utf8(v).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let secs: i64 = int.parse().ok()?;
    let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    let nanos: u32 = digits.parse().ok()?;
    Some(match (neg, nanos) {
        (false, _) => Timestamp { secs, nanos },
        (true, 0) => Timestamp { secs: -secs, nanos: 0 },
        (true, n) => Timestamp { secs: -secs - 1, nanos: 1_000_000_000 - n },
    })
}

/// The member being read: its header, its pax records and its stored size.
struct Member<'a> {
    start: u64,
    h: &'a Header,
    pax: Pax<'a>,
    size: u64,
}

impl Member<'_> {
    fn meta(&self, r: &Reader, opts: &IngestOptions) -> Result<Metadata, IngestError> {
        let id = |key: &[u8], off| match self.pax.get(key) {
            Some(v) => parse_decimal(v),
            None => self.h.num(off, 8),
        };
        let uid = id(b"uid", 108)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| r.err(self.start, "bad uid"))?;
        let gid = id(b"gid", 116)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| r.err(self.start, "bad gid"))?;
        let mode = self.h.num(100, 8).ok_or_else(|| r.err(self.start, "bad mode field"))?;
        let mtime = match self.pax.get(b"mtime") {
            Some(v) => parse_pax_time(v).ok_or_else(|| r.err(self.start, "bad pax `mtime`"))?,
            None => {
                Timestamp::from_secs(self.h.num(136, 12).ok_or_else(|| r.err(self.start, "bad mtime field"))?)
            }
        };
        let mut meta = opts.meta((mode & 0o7777) as u16, uid, gid, mtime);
        let records =
            self.pax.with_prefix(b"SCHILY.xattr.").chain(self.pax.with_prefix(b"LIBARCHIVE.xattr."));
        for (k, v) in records {
            let xattr = if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
                Some((schily_decode(name), v.to_vec()))
            } else if let Some(name) = k.strip_prefix(b"LIBARCHIVE.xattr.") {
                let bad = || r.err(self.start, "bad LIBARCHIVE.xattr record");
                Some((url_decode(name).ok_or_else(bad)?, base64_decode(v).ok_or_else(bad)?))
            } else {
                None
            };
            if let Some((name, value)) = xattr {
                // The first record wins: the last local one, else the global one.
                if keep_xattr(&name) {
                    meta.xattrs.entry(name).or_insert(value);
                }
            }
        }
        Ok(meta)
    }

    /// A GNU `S` member: the map is in the header and its extension blocks, data follows.
    fn gnu_sparse(&self, r: &mut Reader) -> Result<(u64, SparseMap), IngestError> {
        let mut runs = Vec::new();
        let push = |runs: &mut Vec<(u64, u64)>, block: &[u8]| -> Option<()> {
            if block.iter().all(|&b| b == 0) {
                return Some(());
            }
            let off = u64::try_from(parse_number(&block[..12])?).ok()?;
            let len = u64::try_from(parse_number(&block[12..24])?).ok()?;
            runs.push((off, len));
            Some(())
        };
        let bad = |r: &Reader| r.err(self.start, "bad GNU sparse map");
        for i in 0..4 {
            push(&mut runs, &self.h.0[386 + 24 * i..410 + 24 * i]).ok_or_else(|| bad(r))?;
        }
        let mut extended = self.h.0[482] != 0;
        while extended {
            let b = r.read_block()?.ok_or_else(|| bad(r))?;
            for i in 0..21 {
                push(&mut runs, &b[24 * i..24 * i + 24]).ok_or_else(|| bad(r))?;
            }
            extended = b[504] != 0;
        }
        let real = self.h.num(483, 12).and_then(|v| u64::try_from(v).ok()).ok_or_else(|| bad(r))?;
        sparse_map(r, self.start, runs, real, self.size)
    }

    /// A pax sparse member (0.0, 0.1 or 1.0). Returns the real size, the map and how many
    /// data bytes follow (after the in-data map of format 1.0).
    fn pax_sparse(&self, r: &mut Reader) -> Result<(u64, SparseMap, u64), IngestError> {
        let bad = |r: &Reader, what: &str| r.err(self.start, &format!("bad pax sparse member: {what}"));
        let num = |v: &[u8]| parse_decimal(v).and_then(|v| u64::try_from(v).ok());
        let real_key = if self.pax.get(b"GNU.sparse.realsize").is_some() {
            &b"GNU.sparse.realsize"[..]
        } else {
            b"GNU.sparse.size"
        };
        let real = self.pax.get(real_key).and_then(num).ok_or_else(|| bad(r, "no real size"))?;
        if self.pax.get(b"GNU.sparse.major") == Some(b"1") {
            // Format 1.0: a decimal map (count, then offset/length pairs, one per line) fills
            // whole blocks at the start of the data.
            let map_start = r.pos;
            let mut numbers = Vec::new();
            let mut line = Vec::new();
            let mut count = None;
            let mut consumed = 0u64;
            while count.is_none_or(|c: u64| (numbers.len() as u64) < 2 * c) {
                let block = r.read_block()?.ok_or_else(|| bad(r, "truncated map"))?;
                consumed += 512;
                for &b in &block {
                    if count.is_some_and(|c| (numbers.len() as u64) >= 2 * c) {
                        break;
                    }
                    if b == b'\n' {
                        let v = num(&line).ok_or_else(|| bad(r, "map number"))?;
                        line.clear();
                        match count {
                            // Each pair takes at least four bytes of the member.
                            None if v.saturating_mul(4) > self.size => return Err(bad(r, "map too long")),
                            None => count = Some(v),
                            Some(_) => numbers.push(v),
                        }
                    } else {
                        line.push(b);
                    }
                }
            }
            let runs = numbers.chunks(2).map(|p| (p[0], p[1])).collect();
            let stored = self.size.checked_sub(consumed).ok_or_else(|| bad(r, "map larger than member"))?;
            debug_assert_eq!(r.pos, map_start + consumed);
            let (real, map) = sparse_map(r, self.start, runs, real, stored)?;
            return Ok((real, map, stored));
        }
        let runs = if let Some(map) = self.pax.get(b"GNU.sparse.map") {
            let v: Vec<u64> =
                map.split(|&b| b == b',').map(num).collect::<Option<_>>().ok_or_else(|| bad(r, "map"))?;
            if !v.len().is_multiple_of(2) {
                return Err(bad(r, "odd map"));
            }
            v.chunks(2).map(|p| (p[0], p[1])).collect()
        } else {
            let offs = self.pax.local.iter().filter(|(k, _)| k == b"GNU.sparse.offset").map(|(_, v)| num(v));
            let lens =
                self.pax.local.iter().filter(|(k, _)| k == b"GNU.sparse.numbytes").map(|(_, v)| num(v));
            offs.zip(lens)
                .map(|(o, l)| Some((o?, l?)))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad(r, "map"))?
        };
        let (real, map) = sparse_map(r, self.start, runs, real, self.size)?;
        Ok((real, map, self.size))
    }
}

/// A sparse member's map: `None` when one run covers the whole file.
type SparseMap = Option<Arc<[(u64, u64)]>>;

/// Checks a sparse map (sorted, inside the file, stored bytes adding up); returns the real
/// size and the map.
fn sparse_map(
    r: &Reader,
    start: u64,
    runs: Vec<(u64, u64)>,
    real: u64,
    stored: u64,
) -> Result<(u64, SparseMap), IngestError> {
    let runs: Vec<(u64, u64)> = runs.into_iter().filter(|&(_, l)| l > 0).collect();
    let mut end = 0u64;
    let mut total = 0u64;
    for &(off, len) in &runs {
        let run_end = off.checked_add(len).filter(|&e| off >= end && e <= real);
        end = run_end
            .ok_or_else(|| r.err(start, "sparse map runs overlap, are unsorted or pass the file size"))?;
        total = total.saturating_add(len);
    }
    if total != stored || r.pos.saturating_add(stored) > r.len {
        return Err(r.err(start, &format!("sparse map holds {total} bytes but the member stores {stored}")));
    }
    let map = if runs == [(0, real)] { None } else { Some(Arc::from(runs)) };
    Ok((real, map))
}

/// GNU tar escapes `%` and `=` in xattr names as `%25` and `%3D` (a pax keyword cannot hold
/// `=`); other escapes are left as they are, as GNU tar does.
fn schily_decode(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        match name.get(i..i + 3) {
            Some(b"%25") => out.push(b'%'),
            Some(b"%3D") => out.push(b'='),
            _ => {
                out.push(name[i]);
                i += 1;
                continue;
            }
        }
        i += 3;
    }
    out
}

fn url_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = std::str::from_utf8(s.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in s.iter().filter(|&&c| c != b'=' && !c.is_ascii_whitespace()) {
        acc = (acc << 6) | u32::from(val(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_octal_and_base256() {
        assert_eq!(parse_number(b"0000644\0"), Some(0o644));
        assert_eq!(parse_number(b"  755 \0\0"), Some(0o755));
        assert_eq!(parse_number(b"\0\0\0\0"), Some(0));
        assert_eq!(parse_number(b"0009\0"), None);
        assert_eq!(parse_number(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00]), Some(256));
        assert_eq!(parse_number(&[0xff; 12]), Some(-1));
    }

    #[test]
    fn pax_times_with_fractions_and_signs() {
        assert_eq!(
            parse_pax_time(b"1700000000.5"),
            Some(Timestamp { secs: 1_700_000_000, nanos: 500_000_000 })
        );
        assert_eq!(parse_pax_time(b"12"), Some(Timestamp::from_secs(12)));
        assert_eq!(parse_pax_time(b"-1.25"), Some(Timestamp { secs: -2, nanos: 750_000_000 }));
        assert_eq!(parse_pax_time(b"1.1234567891"), Some(Timestamp { secs: 1, nanos: 123_456_789 }));
        assert_eq!(parse_pax_time(b"x"), None);
    }

    #[test]
    fn pax_records_and_libarchive_encodings() {
        let recs = parse_pax(b"20 path=a/b/c/d/e/f\n11 uid=123\n").unwrap();
        let global = BTreeMap::from([(b"uid".to_vec(), b"7".to_vec()), (b"gid".to_vec(), b"8".to_vec())]);
        let pax = Pax { local: &recs, global: &global };
        assert_eq!(pax.get(b"path"), Some(&b"a/b/c/d/e/f"[..]));
        assert_eq!(pax.get(b"uid"), Some(&b"123"[..]));
        assert_eq!(pax.get(b"gid"), Some(&b"8"[..]));
        assert!(parse_pax(b"99 path=x\n").is_none());
        assert_eq!(url_decode(b"user.a%3Db").unwrap(), b"user.a=b");
        assert_eq!(schily_decode(b"user.%25%3D%41%"), b"user.%=%41%");
        assert_eq!(base64_decode(b"aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode(b"AQID").unwrap(), [1, 2, 3]);
    }
}
