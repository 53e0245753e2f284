//! Little-endian field access and bounded reads shared by every reader.
//!
//! All on-disk integers of MBR, GPT, ext4 and FAT are little-endian. Reading through these
//! helpers means a short buffer is an error, never a panic.

use crate::error::{Error, Location, Result};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

/// A byte slice with checked little-endian accessors. Out-of-range reads return 0-filled
/// values only through the `try_` variants' errors, never by panicking.
#[derive(Clone, Copy)]
pub struct Le<'a>(pub &'a [u8]);

impl<'a> Le<'a> {
    pub fn u8(&self, off: usize) -> u8 {
        self.0.get(off).copied().unwrap_or(0)
    }
    pub fn u16(&self, off: usize) -> u16 {
        u16::from_le_bytes(self.array(off))
    }
    pub fn u32(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.array(off))
    }
    pub fn u64(&self, off: usize) -> u64 {
        u64::from_le_bytes(self.array(off))
    }
    /// `N` bytes at `off`; bytes past the end read as zero. Callers check lengths first with
    /// [`need`], so this fallback is never what a reader reports.
    pub fn array<const N: usize>(&self, off: usize) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(src) = off.checked_add(N).and_then(|end| self.0.get(off..end)) {
            out.copy_from_slice(src);
        }
        out
    }
    pub fn bytes(&self, off: usize, len: usize) -> &'a [u8] {
        off.checked_add(len).and_then(|end| self.0.get(off..end)).unwrap_or(&[])
    }
}

/// Fails with [`Error::Truncated`] unless `buf` holds at least `len` bytes.
pub fn need(buf: &[u8], len: usize, structure: &str, offset: Option<u64>) -> Result<()> {
    if buf.len() < len {
        return Err(Error::Truncated {
            at: Location { structure: structure.to_string(), offset },
            needed: len as u64,
            available: buf.len() as u64,
        });
    }
    Ok(())
}

/// Random-access reads from an image file with a known length. Every read is bounds-checked
/// against the length, so a corrupt pointer gives [`Error::Truncated`], not a short read.
pub trait ReadAt {
    fn len(&self) -> u64;
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first range `[start, end)` at or after `offset` that may hold data, with
    /// `offset <= start < end <= len()`, or `None` when every byte from `offset` to the end
    /// reads as zero. Bytes outside the ranges reported are holes and read as zeros, so a
    /// caller may skip them without reading. Calling again at `end` gives the next range.
    ///
    /// Calling a hole data is always allowed (it only costs a read); calling data a hole
    /// never is. The default knows no holes: everything from `offset` to the end is data.
    fn next_data(&self, offset: u64) -> std::io::Result<Option<(u64, u64)>> {
        Ok((offset < self.len()).then(|| (offset, self.len())))
    }

    /// Reads `len` bytes at `offset`, naming `structure` if the image is too short.
    fn read_vec(&self, offset: u64, len: usize, structure: &str) -> Result<Vec<u8>> {
        let end = offset.checked_add(len as u64);
        if end.is_none_or(|e| e > self.len()) {
            return Err(Error::Truncated {
                at: Location { structure: structure.to_string(), offset: Some(offset) },
                needed: offset.saturating_add(len as u64),
                available: self.len(),
            });
        }
        let mut buf = vec![0u8; len];
        self.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }
}

impl ReadAt for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| std::io::ErrorKind::UnexpectedEof)?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

impl ReadAt for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.as_slice().read_exact_at(buf, offset)
    }
}

/// A file opened for reading, with its length taken once at open time.
pub struct ImageFile {
    file: File,
    len: u64,
}

impl ImageFile {
    /// Opens a regular file or a block device. Anything else (a directory, a FIFO, a socket,
    /// a character device) is refused with `InvalidInput` before it is opened, so that a FIFO
    /// cannot block the open or the reads.
    pub fn open(path: &std::path::Path) -> std::io::Result<Self> {
        use std::os::unix::fs::FileTypeExt;
        let kind = std::fs::metadata(path)?.file_type();
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_char_device() {
            "a character device"
        } else {
            ""
        };
        if !what.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{what}, not a disk image: give a regular file or a block device"),
            ));
        }
        let mut file = File::open(path)?;
        // A block device's metadata says 0 bytes; its end says how large it is.
        let len = if kind.is_block_device() {
            std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0))?
        } else {
            file.metadata()?.len()
        };
        Ok(ImageFile { file, len })
    }
}

impl ReadAt for ImageFile {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.read_exact_at(buf, offset)
    }

    /// Asks the filesystem with `SEEK_DATA` and `SEEK_HOLE`. A filesystem that cannot answer
    /// gets the default (all data). Moving the file position is harmless: every read is
    /// positioned (`pread`).
    #[cfg(target_os = "linux")]
    fn next_data(&self, offset: u64) -> std::io::Result<Option<(u64, u64)>> {
        use rustix::fs::{SeekFrom, seek};
        use rustix::io::Errno;
        if offset >= self.len {
            return Ok(None);
        }
        let all_data = Ok(Some((offset, self.len)));
        let start = match seek(&self.file, SeekFrom::Data(offset)) {
            Ok(start) => start,
            // No data at or after `offset`: the rest is one hole up to the end of the file,
            // unless the file shrank since it was opened, and reads there would fail.
            Err(Errno::NXIO) => {
                return if self.file.metadata()?.len() >= self.len { Ok(None) } else { all_data };
            }
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP | Errno::SPIPE) => return all_data,
            Err(e) => return Err(e.into()),
        };
        if start >= self.len {
            // The file grew since it was opened; what lies past `len` is not part of the image.
            return Ok(None);
        }
        let end = match seek(&self.file, SeekFrom::Hole(start)) {
            Ok(end) => end.min(self.len),
            // The file shrank under us, or the filesystem answers SEEK_DATA but not
            // SEEK_HOLE: claim data up to the end, which is always allowed.
            Err(Errno::NXIO | Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP | Errno::SPIPE) => self.len,
            Err(e) => return Err(e.into()),
        };
        // `start < self.len`, so an answer at or before `start` (impossible from a sane
        // filesystem) still makes a non-empty range.
        Ok(Some((start.max(offset), end.max(start + 1))))
    }
}

/// A window onto part of another reader, e.g. one partition of a disk image. Offsets are
/// relative to the window; reads past its end fail.
pub struct Slice<'a, R: ReadAt + ?Sized> {
    pub inner: &'a R,
    pub start: u64,
    pub len: u64,
}

impl<R: ReadAt + ?Sized> ReadAt for Slice<'_, R> {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        if offset.checked_add(buf.len() as u64).is_none_or(|e| e > self.len) {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.inner.read_exact_at(buf, self.start + offset)
    }

    fn next_data(&self, offset: u64) -> std::io::Result<Option<(u64, u64)>> {
        if offset >= self.len {
            return Ok(None);
        }
        let end = self.start.saturating_add(self.len);
        let inner_len = self.inner.len();
        let from = self.start.saturating_add(offset);
        let found = if from < inner_len { self.inner.next_data(from)? } else { None };
        Ok(match found {
            Some((s, e)) if s < end => Some((s.max(from) - self.start, e.min(end) - self.start)),
            // Past the inner reader's end nothing is a hole: reads there fail, and a caller
            // that skipped them would read zeros that are not there.
            _ if inner_len < end => Some((inner_len.max(from) - self.start, self.len)),
            _ => None,
        })
    }
}

#[allow(dead_code)]
fn _assert_object_safe(_: &dyn ReadAt) {}

/// Reads a whole small file (used by tests and the CLI for tiny images).
pub fn read_all(mut f: impl Read + Seek) -> std::io::Result<Vec<u8>> {
    let mut v = Vec::new();
    f.seek(SeekFrom::Start(0))?;
    f.read_to_end(&mut v)?;
    Ok(v)
}

/// A reference reads like what it points to, so a reader can borrow an image it does not own.
impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }
    fn next_data(&self, offset: u64) -> std::io::Result<Option<(u64, u64)>> {
        (**self).next_data(offset)
    }
}
