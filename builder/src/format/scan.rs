//! Reads the sparse raw disk unit by unit (cluster or block), skipping holes and zero units.
//!
//! Holes are found with `SEEK_DATA`/`SEEK_HOLE` and never read. Which units are returned
//! depends only on the bytes (a unit is returned iff it holds a non-zero byte), not on where
//! the filesystem reports holes: a filesystem without hole support just costs more reads.

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

    /// The units of `unit` bytes that hold a non-zero byte, in disk order, as
    /// `(index, bytes)`; the last unit is zero-padded to `unit` bytes.
    pub fn nonzero_units(&self, unit: u64) -> NonZeroUnits<'_> {
        NonZeroUnits { disk: self, unit, next: 0, range_end: 0 }
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

    /// Reads unit `index` (zero-padded past the end of the disk).
    fn read_unit(&self, index: u64, unit: u64) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; unit as usize];
        let start = index * unit;
        let avail = (self.len - start).min(unit) as usize;
        self.file.read_exact_at(&mut buf[..avail], start)?;
        Ok(buf)
    }
}

/// Iterator of [`RawDisk::nonzero_units`].
pub struct NonZeroUnits<'a> {
    disk: &'a RawDisk<'a>,
    unit: u64,
    /// The next unit index to look at.
    next: u64,
    /// Units before this index lie in a data range already found.
    range_end: u64,
}

impl Iterator for NonZeroUnits<'_> {
    type Item = io::Result<(u64, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.next >= self.range_end {
                match self.disk.next_data(self.next * self.unit) {
                    Ok(None) => return None,
                    Ok(Some((start, end))) => {
                        self.next = self.next.max(start / self.unit);
                        self.range_end = end.div_ceil(self.unit);
                    }
                    Err(e) => return Some(Err(e)),
                }
            }
            let index = self.next;
            self.next += 1;
            match self.disk.read_unit(index, self.unit) {
                Ok(buf) if is_zero(&buf) => continue,
                Ok(buf) => return Some(Ok((index, buf))),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Whether every byte of `buf` is zero (word at a time; the compiler vectorises it).
pub fn is_zero(buf: &[u8]) -> bool {
    let (words, tail) = buf.as_chunks::<16>();
    words.iter().all(|w| u128::from_ne_bytes(*w) == 0) && tail.iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_only_nonzero_units_in_order() {
        let f = tempfile::tempfile().unwrap();
        f.set_len(10 << 20).unwrap();
        f.write_all_at(b"a", 3 << 20).unwrap();
        f.write_all_at(&[0u8; 4096], 5 << 20).unwrap(); // data, but all zero
        f.write_all_at(b"b", (10 << 20) - 1).unwrap();
        let disk = RawDisk::new(&f, 10 << 20);
        let got: Vec<u64> = disk.nonzero_units(1 << 20).map(|r| r.unwrap().0).collect();
        assert_eq!(got, vec![3, 9]);
        let odd: Vec<u64> = disk.nonzero_units(3 << 20).map(|r| r.unwrap().0).collect();
        assert_eq!(odd, vec![1, 3], "the last partial unit is read and padded");
    }
}
