//! Reads the sparse raw disk unit by unit (cluster or block), skipping holes and zero units.
//!
//! Holes are found with `SEEK_DATA`/`SEEK_HOLE` and never read: a unit that lies in a hole is
//! skipped without a read, and the hole parts of a unit that holds some data are filled with
//! zeros in memory. Which units are returned depends only on the bytes (a unit is returned iff
//! it holds a non-zero byte), not on where the filesystem reports holes: a filesystem without
//! hole support just costs more reads. The caller owns the buffer, so a conversion reads the
//! whole disk through a few buffers it recycles, never one allocation per unit.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The raw disk a format is converted from.
pub struct RawDisk<'a> {
    file: &'a File,
    len: u64,
}

impl<'a> RawDisk<'a> {
    pub fn new(file: &'a File, len: u64) -> Self {
        RawDisk { file, len }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The units of `unit` bytes that hold a non-zero byte, in disk order (see
    /// [`Units::next_into`]).
    pub fn nonzero_units(&self, unit: u64) -> Units<'_> {
        Units { disk: self, unit, next: 0, known: None }
    }

    /// Calls `f(index, bytes)` for every unit that holds a non-zero byte, in disk order,
    /// while a second thread reads the next few units ahead, so reading the raw disk and
    /// writing the output overlap on two cores. Memory: `READ_AHEAD + 2` recycled buffers.
    pub fn each_nonzero_unit(
        &self,
        unit: u64,
        mut f: impl FnMut(u64, &[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        use std::sync::mpsc;
        const READ_AHEAD: usize = 4;
        let (full_tx, full_rx) = mpsc::sync_channel::<io::Result<(u64, Vec<u8>)>>(READ_AHEAD);
        let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
        for _ in 0..READ_AHEAD + 2 {
            // The receiver is alive until the reader below starts: this cannot fail.
            let _ = free_tx.send(Vec::new());
        }
        std::thread::scope(|s| {
            let reader = s.spawn(move || {
                let mut units = self.nonzero_units(unit);
                while let Ok(mut buf) = free_rx.recv() {
                    let next = match units.next_into(&mut buf) {
                        Ok(Some(index)) => Ok((index, buf)),
                        Ok(None) => return,
                        Err(e) => Err(e),
                    };
                    let stop = next.is_err();
                    if full_tx.send(next).is_err() || stop {
                        return;
                    }
                }
            });
            let result = (|| {
                for next in &full_rx {
                    let (index, buf) = next?;
                    f(index, &buf)?;
                    // The reader may have finished: then the buffer is not needed.
                    let _ = free_tx.send(buf);
                }
                Ok(())
            })();
            // Closing both channels stops the reader wherever it is.
            drop(full_rx);
            drop(free_tx);
            match reader.join() {
                // The reader ended the channel by panicking, not at the end of the disk.
                Err(_) => Err(io::Error::other(
                    "the raw disk reader thread panicked; this is a bug in reprodisk, please report it",
                )),
                Ok(()) => result,
            }
        })
    }

    /// The first range at or after `offset` that may hold data, or `None`.
    pub(crate) fn next_data(&self, offset: u64) -> io::Result<Option<(u64, u64)>> {
        use rustix::fs::{SeekFrom, seek};
        use rustix::io::Errno;
        if offset >= self.len {
            return Ok(None);
        }
        let start = match seek(self.file, SeekFrom::Data(offset)) {
            Ok(s) => s,
            Err(Errno::NXIO) => return Ok(None),
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => return Ok(Some((offset, self.len))),
            Err(e) => return Err(e.into()),
        };
        if start >= self.len {
            return Ok(None);
        }
        let end = match seek(self.file, SeekFrom::Hole(start)) {
            Ok(e) => e.min(self.len),
            Err(Errno::NXIO | Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => self.len,
            Err(e) => return Err(e.into()),
        };
        Ok(Some((start.max(offset), end.max(start + 1))))
    }
}

/// What the last `SEEK_DATA`/`SEEK_HOLE` pair said: no data in `from..start`, maybe data in
/// `start..end`; `start == u64::MAX` when there is no data after `from`.
#[derive(Clone, Copy)]
struct Known {
    from: u64,
    start: u64,
    end: u64,
}

/// Cursor of [`RawDisk::nonzero_units`].
pub struct Units<'a> {
    disk: &'a RawDisk<'a>,
    unit: u64,
    /// The next unit index to look at.
    next: u64,
    known: Option<Known>,
}

impl Units<'_> {
    /// The data range at or after `pos` (`start == u64::MAX`: none), asking the filesystem
    /// only when `pos` is past what it said last.
    fn data_at(&mut self, pos: u64) -> io::Result<Known> {
        if let Some(k) = self.known
            && k.from <= pos
            && pos < k.end
        {
            return Ok(k);
        }
        let k = match self.disk.next_data(pos)? {
            Some((start, end)) => Known { from: pos, start, end },
            None => Known { from: pos, start: u64::MAX, end: u64::MAX },
        };
        self.known = Some(k);
        Ok(k)
    }

    /// Reads the next unit that holds a non-zero byte into `buf` (resized to the unit; the
    /// last unit is zero-padded) and returns its index, or `None` past the last one.
    pub fn next_into(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<u64>> {
        let unit = self.unit;
        let len = self.disk.len;
        buf.resize(unit as usize, 0);
        loop {
            let start = self.next * unit;
            if start >= len {
                return Ok(None);
            }
            let k = self.data_at(start)?;
            if k.start == u64::MAX {
                self.next = len.div_ceil(unit);
                return Ok(None);
            }
            if k.start >= start + unit {
                // The whole unit is a hole: jump to the unit where data starts.
                self.next = k.start / unit;
                continue;
            }
            let index = self.next;
            self.next += 1;
            let end = (start + unit).min(len);
            let mut pos = start;
            let mut nonzero = false;
            while pos < end {
                let k = self.data_at(pos)?;
                let from = k.start.clamp(pos, end);
                let to = k.end.clamp(from, end);
                buf[(pos - start) as usize..(from - start) as usize].fill(0);
                let piece = &mut buf[(from - start) as usize..(to - start) as usize];
                self.disk.file.read_exact_at(piece, from)?;
                nonzero = nonzero || !is_zero(piece);
                if to == end {
                    pos = end;
                    break;
                }
                pos = to;
            }
            buf[(pos - start) as usize..].fill(0);
            if nonzero {
                return Ok(Some(index));
            }
        }
    }
}

/// Whether every byte of `buf` is zero (word at a time; the compiler vectorises it).
pub fn is_zero(buf: &[u8]) -> bool {
    let (words, tail) = buf.as_chunks::<16>();
    words.iter().all(|w| u128::from_ne_bytes(*w) == 0) && tail.iter().all(|&b| b == 0)
}

/// Writes `data` at `offset` of `file`, leaving its all-zero 4 KiB pieces unwritten. Correct
/// only where `file` was never written (a hole, or past its end, which the caller extends
/// later): those pieces already read as zeros. A mostly empty block then costs the writes of
/// its data only, and the output keeps the raw disk's holes.
pub fn write_nonzero_at(file: &File, data: &[u8], offset: u64) -> io::Result<()> {
    const PIECE: usize = 4096;
    let mut run: Option<usize> = None;
    for (i, piece) in data.chunks(PIECE).enumerate() {
        let at = i * PIECE;
        if is_zero(piece) {
            if let Some(s) = run.take() {
                file.write_all_at(&data[s..at], offset + s as u64)?;
            }
        } else if run.is_none() {
            run = Some(at);
        }
    }
    if let Some(s) = run {
        file.write_all_at(&data[s..], offset + s as u64)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indices(disk: &RawDisk<'_>, unit: u64) -> Vec<(u64, Vec<u8>)> {
        let mut units = disk.nonzero_units(unit);
        let mut buf = vec![0xaa; 17];
        let mut got = Vec::new();
        while let Some(i) = units.next_into(&mut buf).unwrap() {
            got.push((i, buf.clone()));
        }
        got
    }

    #[test]
    fn returns_only_nonzero_units_in_order() {
        let f = tempfile::tempfile().unwrap();
        f.set_len(10 << 20).unwrap();
        f.write_all_at(b"a", 3 << 20).unwrap();
        f.write_all_at(&[0u8; 4096], 5 << 20).unwrap(); // data, but all zero
        f.write_all_at(b"b", (10 << 20) - 1).unwrap();
        let disk = RawDisk::new(&f, 10 << 20);
        let got: Vec<u64> = indices(&disk, 1 << 20).into_iter().map(|u| u.0).collect();
        assert_eq!(got, vec![3, 9]);
        let odd: Vec<u64> = indices(&disk, 3 << 20).into_iter().map(|u| u.0).collect();
        assert_eq!(odd, vec![1, 3], "the last partial unit is read and padded");
    }

    #[test]
    fn units_hold_the_disk_bytes_with_holes_as_zeros() {
        // Data ranges that start and end inside units, a unit spanning two ranges, a reused
        // buffer full of stale bytes: every unit must equal the disk's bytes.
        let f = tempfile::tempfile().unwrap();
        let len = (3 << 20) + 12345;
        f.set_len(len).unwrap();
        let pieces: [(u64, usize); 4] =
            [(70_000, 9000), (1 << 20, 3), ((1 << 20) + 300_000, 200_000), (len - 5, 5)];
        let mut disk_bytes = vec![0u8; len as usize];
        for (n, (at, size)) in pieces.iter().enumerate() {
            let data: Vec<u8> = (0..*size).map(|i| (i % 251) as u8 | 1).map(|b| b ^ n as u8).collect();
            f.write_all_at(&data, *at).unwrap();
            disk_bytes[*at as usize..*at as usize + size].copy_from_slice(&data);
        }
        let disk = RawDisk::new(&f, len);
        for unit in [4096u64, 65536, 1 << 20, 2 << 20] {
            let got = indices(&disk, unit);
            let expect: Vec<u64> = (0..len.div_ceil(unit))
                .filter(|i| {
                    let s = (i * unit) as usize;
                    !is_zero(&disk_bytes[s..(s + unit as usize).min(len as usize)])
                })
                .collect();
            assert_eq!(got.iter().map(|u| u.0).collect::<Vec<_>>(), expect, "unit {unit}");
            for (i, bytes) in got {
                let s = (i * unit) as usize;
                let e = (s + unit as usize).min(len as usize);
                assert_eq!(&bytes[..e - s], &disk_bytes[s..e], "unit {unit} #{i}");
                assert!(is_zero(&bytes[e - s..]), "unit {unit} #{i} padding");
            }
        }
    }

    #[test]
    fn each_nonzero_unit_sees_what_the_cursor_sees_and_stops_on_error() {
        let f = tempfile::tempfile().unwrap();
        let len = 40 << 16;
        f.set_len(len).unwrap();
        for i in [0u64, 3, 4, 17, 39] {
            f.write_all_at(&[i as u8 + 1; 300], i << 16).unwrap();
        }
        let disk = RawDisk::new(&f, len);
        let mut seen = Vec::new();
        disk.each_nonzero_unit(1 << 16, |i, b| {
            seen.push((i, b.to_vec()));
            Ok(())
        })
        .unwrap();
        assert!(seen == indices(&disk, 1 << 16));
        let mut calls = 0;
        let err = disk
            .each_nonzero_unit(1 << 16, |i, _| {
                calls += 1;
                if i == 4 { Err(io::Error::other("stop")) } else { Ok(()) }
            })
            .unwrap_err();
        assert_eq!((err.to_string().as_str(), calls), ("stop", 3));
    }

    #[test]
    fn write_nonzero_at_leaves_zero_pieces_as_holes() {
        use std::os::unix::fs::MetadataExt;
        let f = tempfile::tempfile().unwrap();
        let mut data = vec![0u8; 4 << 20];
        data[10] = 1;
        data[(3 << 20) + 7] = 2;
        write_nonzero_at(&f, &data, 512).unwrap();
        f.set_len(512 + data.len() as u64).unwrap();
        let mut back = vec![0xffu8; data.len()];
        f.read_exact_at(&mut back, 512).unwrap();
        assert_eq!(back, data);
        assert!(f.metadata().unwrap().blocks() * 512 <= 64 << 10, "zeros were written");
    }
}
