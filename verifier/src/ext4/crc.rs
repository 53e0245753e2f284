//! The two checksums ext4 uses: raw crc32c (metadata_csum, jbd2 v2/v3) and crc16 (gdt_csum).
//!
//! ext4 chains crc32c without the usual final inversion: `ext4_chksum(seed, data)` is the
//! raw register after feeding `data` starting from `seed`. The `crc32c` crate inverts on entry
//! and exit, so the raw form is its result with both inversions undone.

/// Raw crc32c register after feeding `data`, starting from `seed` (no final inversion).
pub fn crc32c_raw(seed: u32, data: &[u8]) -> u32 {
    !crc32c::crc32c_append(!seed, data)
}

/// crc16 (polynomial 0x8005, reflected as 0xA001) as used by the gdt_csum feature.
pub fn crc16(mut crc: u16, data: &[u8]) -> u16 {
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xA001 } else { crc >> 1 };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_raw_matches_the_standard_check_value() {
        // The standard check value of crc32c("123456789") is 0xE3069283 with inversions.
        assert_eq!(!crc32c_raw(!0, b"123456789"), 0xE306_9283);
    }

    #[test]
    fn crc16_matches_the_arc_check_value() {
        // CRC-16/ARC("123456789") = 0xBB3D (init 0); ext4 uses the same polynomial.
        assert_eq!(crc16(0, b"123456789"), 0xBB3D);
    }
}
