//! The uncompressed archive as a position-tracking stream of 512-byte blocks: plain in place,
//! or out of a decompressor with member data copied into a sparse scratch file.

use super::*;

/// Bytes read at once from a decompressor.
pub(super) const COPY_BUFFER: usize = 1 << 20;

/// Where the uncompressed archive's bytes come from.
pub(super) enum Input {
    /// A plain archive, read in place: member data is referenced at its own offset.
    Plain(BufReader<File>),
    /// A decompressor: member data is copied into the scratch file as it streams past, and
    /// nothing else of the archive (headers, padding) is kept.
    Stream(Box<dyn Read>),
}

/// The scratch file of a compressed archive. Member data is copied at 4 KiB-aligned
/// offsets and all-zero 4 KiB blocks are left as holes, so the file takes only the space
/// of the bytes that become data blocks in the image (the writer stores zero blocks as
/// holes too): a gzip bomb of zeros costs nothing, and `limit` (the disk size, when fixed)
/// bounds the rest.
pub(super) struct Scratch {
    pub(super) file: File,
    pub(super) path: PathBuf,
    pub(super) end: u64,
    pub(super) staged: u64,
    pub(super) limit: u64,
}

/// A position-tracking reader over the uncompressed archive.
pub(super) struct Reader {
    pub(super) input: Input,
    /// Position in the uncompressed archive.
    pub(super) pos: u64,
    /// Length of the uncompressed archive; `u64::MAX` (unknown) when streaming.
    pub(super) len: u64,
    pub(super) archive: PathBuf,
    /// The file [`DataSource::Archive`] offsets point into: the archive or the scratch file.
    pub(super) data_path: Arc<PathBuf>,
    pub(super) scratch: Option<Scratch>,
    pub(super) buf: Vec<u8>,
    /// The member being read and the last one read, for messages.
    pub(super) member: Option<String>,
    pub(super) last_member: Option<String>,
}

impl Reader {
    /// Opens `archive`, detecting compression by magic bytes; a compressed one gets a scratch
    /// file in `scratch_dir` (the system's temporary folder when `None`).
    pub(super) fn open(
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
            // libzstd's streaming decoder reads several frames back to back as one stream.
            let z = zstd::stream::read::Decoder::with_buffer(input).map_err(io)?;
            Some(Box::new(z))
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

    pub(super) fn err(&self, offset: u64, what: &str) -> IngestError {
        let member = match (&self.member, &self.last_member) {
            (Some(m), _) => format!("member `{m}`"),
            (None, Some(last)) => format!("the header after member `{last}`"),
            (None, None) => "the first header".to_string(),
        };
        IngestError::Tar { archive: self.archive.clone(), offset, member, what: what.to_string() }
    }

    /// Reads until `buf` is full or the archive ends; returns how much was read.
    pub(super) fn read_full(&mut self, buf: &mut [u8]) -> Result<usize, IngestError> {
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

    pub(super) fn read_block(&mut self) -> Result<Option<[u8; 512]>, IngestError> {
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
    pub(super) fn header(&mut self) -> Result<Option<Header>, IngestError> {
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
    pub(super) fn data(&mut self, size: u64) -> Result<Vec<u8>, IngestError> {
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
    pub(super) fn skip(&mut self, size: u64) -> Result<(), IngestError> {
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
    pub(super) fn member_data(&mut self, start: u64, size: u64) -> Result<u64, IngestError> {
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
    pub(super) fn finish(&mut self) -> Result<(), IngestError> {
        if let Some(sc) = &self.scratch {
            sc.file
                .set_len(sc.end)
                .map_err(|source| IngestError::Scratch { path: sc.path.clone(), source })?;
        }
        Ok(())
    }
}
