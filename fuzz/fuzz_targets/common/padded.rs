//! A fuzz input read as an image that continues with zeros up to a larger length, so that a
//! seed can be stored without its zero tail (a filesystem's free space, a FAT32 data area)
//! and mutations stay cheap: nothing is allocated for the tail.

use reprodisk_verifier::bytes::ReadAt;

/// `data` followed by zeros up to `len` bytes (never shorter than `data`).
pub struct Padded<'a> {
    data: &'a [u8],
    len: u64,
}

impl<'a> Padded<'a> {
    /// `data` extended with zeros to `len` bytes, or `data` alone when it is longer.
    pub fn new(data: &'a [u8], len: u64) -> Self {
        Padded { data, len: len.max(data.len() as u64) }
    }
}

impl ReadAt for Padded<'_> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let end = offset.checked_add(buf.len() as u64).filter(|&e| e <= self.len);
        if end.is_none() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        // offset < len fits in usize once it is at most the data length; past it, all zeros.
        let from = usize::try_from(offset).unwrap_or(usize::MAX).min(self.data.len());
        let have = &self.data[from..];
        let n = have.len().min(buf.len());
        buf[..n].copy_from_slice(&have[..n]);
        buf[n..].fill(0);
        Ok(())
    }
}
