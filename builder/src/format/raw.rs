//! The sparse raw image file and atomic output.
//!
//! The image is a temporary file in the output folder, sized with `set_len` so that every
//! unwritten byte is a hole. Writers go through [`SparseWriter`], which turns all-zero writes
//! into seeks (holes already read as zero), so an image costs the disk only what it holds.
//! [`Image::commit`] fsyncs and renames it to its final name; dropping an uncommitted image
//! removes the temporary file, so nothing half-written is ever left under the final name.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Output files are world-readable whatever the umask, so two builds give the same mode.
pub const OUTPUT_MODE: u32 = 0o644;

/// A temporary file that becomes `final_path` on [`Image::commit`].
pub struct Image {
    tmp: tempfile::NamedTempFile,
    final_path: PathBuf,
}

impl Image {
    /// Creates an all-hole file of `len` bytes in `final_path`'s folder.
    pub fn create(final_path: &Path, len: u64) -> io::Result<Image> {
        let dir = final_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        // Under the clean-up lock: a signal's clean-up removes the folder while this thread
        // may be writing the rest of the set into it, and a file created (or renamed, see
        // `commit`) during `remove_dir_all` would leave the folder behind.
        let tmp = {
            let _signals = crate::cleanup::hold();
            tempfile::Builder::new().prefix(".reprodisk-").suffix(".tmp").tempfile_in(dir)?
        };
        tmp.as_file().set_len(len)?;
        Ok(Image { tmp, final_path: final_path.to_path_buf() })
    }

    pub fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    pub fn temp_path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// A writer over the image that skips all-zero writes.
    pub fn writer(&mut self) -> SparseWriter<'_> {
        SparseWriter { file: self.tmp.as_file_mut() }
    }

    /// Fsyncs, sets the output mode and renames to the final name.
    pub fn commit(self) -> io::Result<PathBuf> {
        let file = self.tmp.as_file();
        file.set_permissions(std::fs::Permissions::from_mode(OUTPUT_MODE))?;
        file.sync_all()?;
        let _signals = crate::cleanup::hold();
        self.tmp.persist(&self.final_path).map_err(|e| e.error)?;
        Ok(self.final_path)
    }
}

/// Writes `data` to `path` atomically (temp file, fsync, rename) with [`OUTPUT_MODE`].
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut img = Image::create(path, 0)?;
    img.file().write_all(data)?;
    img.commit().map(|_| ())
}

/// Gets a file's data to disk while the build is still writing it, so that the fsync of
/// [`Image::commit`] waits only for the last writes instead of for the whole file (writing
/// 700 MB to this machine's disk takes about as long as building the filesystem in it).
///
/// A thread calls `fdatasync` on the file every [`INTERVAL`](Self::INTERVAL) until
/// [`finish`](Self::finish): each call writes what is dirty at that moment and leaves the
/// pages cached, so the hash that follows still reads from memory; the writers go on
/// writing meanwhile. This changes when bytes reach the disk, never which bytes. The thread
/// shares the file's open file description, so a write-back error it sees is reported to it
/// and not again to the commit's fsync: `finish` returns it, and the build fails with it.
/// Only the output file gets one, never the temporary raw disk of a converted format,
/// which is deleted.
pub struct BackgroundWriteback {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl BackgroundWriteback {
    pub const INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

    pub fn start(file: &File) -> io::Result<BackgroundWriteback> {
        use std::sync::mpsc::RecvTimeoutError;
        let file = file.try_clone()?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new().name("writeback".into()).spawn(move || {
            loop {
                file.sync_data()?;
                match stopped.recv_timeout(Self::INTERVAL) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
                }
            }
        })?;
        Ok(BackgroundWriteback { stop: Some(stop), thread: Some(thread) })
    }

    /// Stops the thread; the first write-back error it met, if any.
    pub fn finish(mut self) -> io::Result<()> {
        self.stop_thread()
    }

    fn stop_thread(&mut self) -> io::Result<()> {
        drop(self.stop.take());
        match self.thread.take().map(|t| t.join()) {
            None => Ok(()),
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the write-back thread panicked")),
        }
    }
}

impl Drop for BackgroundWriteback {
    /// On an error path the build fails anyway; the thread is only stopped.
    fn drop(&mut self) {
        let _ = self.stop_thread();
    }
}

/// `Write + Seek` over a file whose unwritten regions are holes: writes of zeros only move the
/// position. Correct because every region of an image is written at most once.
pub struct SparseWriter<'a> {
    file: &'a mut File,
}

impl Write for SparseWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.iter().all(|&b| b == 0) {
            self.file.seek(SeekFrom::Current(buf.len() as i64))?;
            Ok(buf.len())
        } else {
            self.file.write(buf)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Seek for SparseWriter<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file.seek(pos)
    }
}

impl io::Read for SparseWriter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn zeros_stay_holes_and_commit_renames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.img");
        let mut img = Image::create(&path, 64 << 20).unwrap();
        let mut w = img.writer();
        w.write_all(&vec![0u8; 32 << 20]).unwrap();
        w.write_all(b"data").unwrap();
        assert!(!path.exists(), "nothing under the final name before commit");
        img.commit().unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 64 << 20);
        assert!(meta.blocks() * 512 < 1 << 20, "zeros were written as data: {} blocks", meta.blocks());
        assert_eq!(meta.mode() & 0o777, OUTPUT_MODE);
        let mut f = File::open(&path).unwrap();
        f.seek(SeekFrom::Start(32 << 20)).unwrap();
        let mut b = [0u8; 4];
        f.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"data");
    }

    #[test]
    fn background_writeback_leaves_the_bytes_and_reports_errors() {
        use std::os::unix::fs::FileExt;
        let f = tempfile::tempfile().unwrap();
        let writeback = BackgroundWriteback::start(&f).unwrap();
        for i in 0..64u64 {
            f.write_all_at(&[i as u8 + 1; 65536], i * 65536).unwrap();
        }
        std::thread::sleep(BackgroundWriteback::INTERVAL * 2);
        writeback.finish().unwrap();
        let mut back = vec![0u8; 64 * 65536];
        f.read_exact_at(&mut back, 0).unwrap();
        assert!(back.chunks(65536).enumerate().all(|(i, c)| c.iter().all(|&b| b == i as u8 + 1)));
        // fdatasync fails on a pipe (EINVAL): that error is what `finish` must hand back.
        let (_r, w) = std::io::pipe().unwrap();
        let pipe = File::from(std::os::fd::OwnedFd::from(w));
        let err = BackgroundWriteback::start(&pipe).unwrap().finish().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(22), "{err}");
    }

    #[test]
    fn dropped_image_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.img");
        drop(Image::create(&path, 1 << 20).unwrap());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
