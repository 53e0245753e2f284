//! The jbd2 journal: its size policy and its (empty, clean) superblock.

pub const JBD2_MAGIC: u32 = 0xC03B_3998;
/// `h_blocktype` of a version 2 journal superblock.
pub const JBD2_SUPERBLOCK_V2: u32 = 4;
pub const JBD2_MIN_JOURNAL_BLOCKS: u64 = 1024;

/// Journal blocks for a filesystem of `blocks` blocks, as e2fsprogs's
/// `ext2fs_default_journal_size`, except that filesystems below 2048 blocks (where mke2fs
/// makes no journal) still get the minimum of 1024 blocks.
pub fn default_journal_blocks(blocks: u64) -> u64 {
    match blocks {
        0..32768 => JBD2_MIN_JOURNAL_BLOCKS,
        32768..262144 => 4096,
        262144..524288 => 8192,
        524288..4194304 => 16384,
        4194304..8388608 => 32768,
        8388608..16777216 => 65536,
        16777216..33554432 => 131072,
        _ => 262144,
    }
}

/// The journal superblock (block 0 of the journal) as mke2fs writes it for an internal
/// journal: big-endian, empty (`s_start = 0`), sequence 1, one user, the filesystem UUID.
/// mke2fs 1.47 sets no journal checksum feature on a new filesystem, and neither do we.
pub fn superblock(journal_blocks: u32, uuid: &[u8; 16], block_size: u32) -> Vec<u8> {
    let mut b = vec![0u8; block_size as usize];
    let be = |b: &mut [u8], off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_be_bytes());
    be(&mut b, 0x0, JBD2_MAGIC);
    be(&mut b, 0x4, JBD2_SUPERBLOCK_V2);
    be(&mut b, 0x8, 0); // h_sequence
    be(&mut b, 0xC, block_size);
    be(&mut b, 0x10, journal_blocks); // s_maxlen
    be(&mut b, 0x14, 1); // s_first
    be(&mut b, 0x18, 1); // s_sequence
    be(&mut b, 0x1C, 0); // s_start: clean
    b[0x30..0x40].copy_from_slice(uuid);
    be(&mut b, 0x40, 1); // s_nr_users
    b
}
