//! crc32c as ext4 uses it (no final inversion) and little-endian field helpers.

/// ext4's `ext4_chksum(seed, data)`: CRC-32C continued from `seed` without the usual
/// pre- and post-inversion.
pub fn crc32c_raw(seed: u32, data: &[u8]) -> u32 {
    !crc32c::crc32c_append(!seed, data)
}

/// The filesystem-wide checksum seed: crc32c of the UUID from ~0.
pub fn fs_seed(uuid: &[u8; 16]) -> u32 {
    crc32c_raw(!0, uuid)
}

/// The per-inode checksum seed used by inodes, extent blocks and directory blocks.
pub fn inode_seed(fs_seed: u32, ino: u32, generation: u32) -> u32 {
    let s = crc32c_raw(fs_seed, &ino.to_le_bytes());
    crc32c_raw(s, &generation.to_le_bytes())
}

pub fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

pub fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

pub fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_crc_matches_standard_crc_with_inversions() {
        // The standard CRC-32C of "123456789" is 0xE3069283; ext4's raw form with seed ~0
        // is its complement.
        assert_eq!(crc32c_raw(!0, b"123456789"), !0xE306_9283);
        assert_eq!(crc32c_raw(crc32c_raw(!0, b"1234"), b"56789"), crc32c_raw(!0, b"123456789"));
    }
}
