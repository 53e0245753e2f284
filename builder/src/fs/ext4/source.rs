//! A regular file's bytes as the ext4 writer sees them: reading any source (host file, archive range, sparse archive member, bytes in memory) by logical offset, and finding which blocks hold data.
//!
//! **Holes are decided by content.** A block of a file is a hole when all its bytes are zero,
//! however the source stores it: a host file written densely, the same bytes written sparsely
//! (or on a filesystem that compresses, so that it reports fewer allocated bytes), a dense tar
//! member and a sparse one give the same image. The host's `SEEK_DATA`/`SEEK_HOLE` and a tar's
//! sparse map only say where zeros certainly are, so that they need not be read.
//!
//! **Where holes are decided.** A file of at least [`SCAN_BYTES`] is scanned by the census
//! ([`Scanner::data_runs`]): it is read once there (host holes and sparse-map holes
//! skipped) and the plan reserves its data blocks only, so a 10 GiB sparse file with little
//! data costs little space. A smaller file is planned at its full size, without being read; the write pass still
//! turns its all-zero blocks into holes and leaves their blocks free. Both rules depend on the
//! size and the bytes alone. Scanning small files too would read every file twice; below
//! 1 MiB a file wastes less than 1 MiB of free space at worst, and only if it holds zeros.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{BLOCK_SIZE, Ext4Error};
use crate::tree::{DataSource, FileContent};

/// Files at least this large are scanned for all-zero blocks while planning (1 MiB).
pub(super) const SCAN_BYTES: u64 = 1 << 20;

/// Bytes read per step of the scan (1 MiB).
const SCAN_CHUNK: usize = 1 << 20;

/// The census's scanner: one read buffer and one [`Folders`] for every file it scans.
#[derive(Default)]
pub(super) struct Scanner {
    buf: Vec<u8>,
    folders: Folders,
}

impl Scanner {
    /// The logical block runs (first block, count) of `f` that the plan reserves, in order:
    /// all its blocks when it is smaller than [`SCAN_BYTES`], else exactly the blocks holding
    /// a non-zero byte (see the module doc).
    pub(super) fn data_runs(&mut self, f: &FileContent) -> Result<Vec<(u64, u64)>, Ext4Error> {
        let nblocks = f.size.div_ceil(BLOCK_SIZE);
        if f.size < SCAN_BYTES {
            return Ok(if nblocks == 0 { Vec::new() } else { vec![(0, nblocks)] });
        }
        let src = Source::open(&f.source, f.size, &mut self.folders)?;
        if self.buf.is_empty() {
            self.buf = vec![0u8; SCAN_CHUNK];
        }
        scan(&src, &mut self.buf)
    }
}

/// The blocks of `src` holding a non-zero byte, read `buf.len()` bytes at a time.
fn scan(src: &Source<'_>, buf: &mut [u8]) -> Result<Vec<(u64, u64)>, Ext4Error> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for (first, end) in src.regions()? {
        let mut b = first;
        while b < end {
            let n = (end - b).min(buf.len() as u64 / BLOCK_SIZE);
            let chunk = &mut buf[..(n * BLOCK_SIZE) as usize];
            src.read(b * BLOCK_SIZE, chunk)?;
            for (i, blk) in chunk.chunks(BLOCK_SIZE as usize).enumerate() {
                if super::is_zero(blk) {
                    continue;
                }
                let l = b + i as u64;
                match runs.last_mut() {
                    Some((s, len)) if *s + *len == l => *len += 1,
                    _ => runs.push((l, 1)),
                }
            }
            b += n;
        }
    }
    Ok(runs)
}

/// The folder of the last host file opened, kept open (`O_PATH`, so a folder without read
/// permission works as it does for a path open) so that the next file of the same folder is
/// opened relative to it with `openat`: the kernel then looks up one name, not every component
/// of the path. Files come in inode order, so the files of a folder come together.
#[derive(Default)]
pub(super) struct Folders {
    last: Option<(PathBuf, OwnedFd)>,
}

impl Folders {
    /// Opens `path` for reading, following a final symlink as `File::open` does.
    pub(super) fn open(&mut self, path: &Path) -> std::io::Result<File> {
        use rustix::fs::{Mode, OFlags, open, openat};
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else { return File::open(path) };
        if parent.as_os_str().is_empty() {
            return File::open(path);
        }
        if self.last.as_ref().is_none_or(|(p, _)| p != parent) {
            self.last = None;
            let fd = open(parent, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
            self.last = Some((parent.to_path_buf(), fd));
        }
        let (_, folder) = self.last.as_ref().expect("set just above");
        Ok(File::from(openat(folder, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?))
    }
}

/// Reads a regular file's logical bytes from its source, zeros for holes and past the end.
pub(super) struct Source<'a> {
    src: &'a DataSource,
    file: Option<File>,
    size: u64,
    /// For sparse archive members: (logical offset, length, offset of the bytes in the archive).
    map: Vec<(u64, u64, u64)>,
}

impl<'a> Source<'a> {
    /// Opens the file; a host file through `folders` (see [`Folders`]).
    pub(super) fn open(src: &'a DataSource, size: u64, folders: &mut Folders) -> Result<Self, Ext4Error> {
        let (file, map) = match src {
            DataSource::Host { path: p, .. } => {
                (Some(folders.open(p).map_err(|e| read_err(p, e))?), Vec::new())
            }
            DataSource::Archive { path, offset, map } => {
                let f = File::open(path.as_path()).map_err(|e| read_err(path, e))?;
                let mut m = Vec::new();
                if let Some(map) = map {
                    let mut at = *offset;
                    for &(lo, len) in map.iter() {
                        m.push((lo, len, at));
                        at += len;
                    }
                }
                (Some(f), m)
            }
            DataSource::Bytes(_) => (None, Vec::new()),
        };
        Ok(Source { src, file, size, map })
    }

    fn path(&self) -> &Path {
        match self.src {
            DataSource::Host { path: p, .. } => p,
            DataSource::Archive { path, .. } => path.as_path(),
            DataSource::Bytes(_) => Path::new("<generated file>"),
        }
    }

    /// Reads `len` bytes of the stored stream at `at`; a short read means the source changed.
    fn read_exact(&self, at: u64, buf: &mut [u8], logical_end: u64) -> Result<(), Ext4Error> {
        // `file` is Some for every source but Bytes, which never gets here.
        let f = self.file.as_ref().expect("file sources have an open file");
        let mut done = 0;
        while done < buf.len() {
            match f.read_at(&mut buf[done..], at + done as u64) {
                Ok(0) => {
                    return Err(Ext4Error::SourceChanged {
                        path: self.path().to_path_buf(),
                        expected: self.size,
                        actual: logical_end - (buf.len() - done) as u64,
                    });
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_err(self.path(), e)),
            }
        }
        Ok(())
    }

    /// Fills `buf` with the file's bytes from logical offset `at` (zeros past the end and in
    /// the holes of a sparse map).
    pub(super) fn read(&self, at: u64, buf: &mut [u8]) -> Result<(), Ext4Error> {
        let end = (at + buf.len() as u64).min(self.size);
        let n = end.saturating_sub(at) as usize;
        match self.src {
            DataSource::Bytes(b) => {
                let s = at.min(b.len() as u64) as usize;
                let e = end.min(b.len() as u64).max(s as u64) as usize;
                buf[..e - s].copy_from_slice(&b[s..e]);
                buf[e - s..].fill(0);
            }
            DataSource::Host { .. } if n > 0 => self.read_exact(at, &mut buf[..n], end)?,
            DataSource::Archive { offset, map: None, .. } if n > 0 => {
                self.read_exact(offset + at, &mut buf[..n], end)?
            }
            DataSource::Host { .. } | DataSource::Archive { map: None, .. } => {}
            DataSource::Archive { map: Some(_), .. } => {
                buf.fill(0);
                for &(lo, len, stored) in &self.map {
                    let s = lo.max(at);
                    let e = (lo + len).min(end);
                    if s < e {
                        let dst = &mut buf[(s - at) as usize..(e - at) as usize];
                        self.read_exact(stored + (s - lo), dst, e)?;
                    }
                }
                return Ok(());
            }
        }
        buf[n..].fill(0);
        Ok(())
    }

    /// Block ranges (first, end) of the logical file that may hold non-zero bytes, sorted and
    /// disjoint: what the host reports as data for a host file it stores sparsely, the blocks
    /// a sparse map touches, else every block. Outside them the file reads as zeros.
    fn regions(&self) -> Result<Vec<(u64, u64)>, Ext4Error> {
        let nblocks = self.size.div_ceil(BLOCK_SIZE);
        let mut bytes: Vec<(u64, u64)> = Vec::new();
        match self.src {
            DataSource::Host { allocated, .. } if *allocated < self.size => {
                let file = self.file.as_ref().expect("host sources have an open file");
                let disk = crate::format::scan::RawDisk::new(file, self.size);
                let mut at = 0;
                while let Some((s, e)) = disk.next_data(at).map_err(|e| read_err(self.path(), e))? {
                    bytes.push((s, e));
                    at = e;
                }
            }
            DataSource::Archive { map: Some(_), .. } => {
                bytes.extend(self.map.iter().map(|&(lo, len, _)| (lo, lo.saturating_add(len))));
                bytes.sort_unstable();
            }
            _ => return Ok(if nblocks == 0 { Vec::new() } else { vec![(0, nblocks)] }),
        }
        let mut blocks: Vec<(u64, u64)> = Vec::new();
        for (s, e) in bytes {
            let e = e.min(self.size);
            if s >= e {
                continue;
            }
            let (first, end) = (s / BLOCK_SIZE, e.div_ceil(BLOCK_SIZE));
            match blocks.last_mut() {
                Some((_, last_end)) if *last_end >= first => *last_end = (*last_end).max(end),
                _ => blocks.push((first, end)),
            }
        }
        Ok(blocks)
    }
}

fn read_err(p: &Path, source: std::io::Error) -> Ext4Error {
    Ext4Error::Read { path: p.to_path_buf(), source }
}
