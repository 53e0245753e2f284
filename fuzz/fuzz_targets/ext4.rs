//! Fuzz target: the ext4 reader on arbitrary bytes: open, walk, every file read with a small
//! cap, extended attributes, the ownership map, the bitmaps and backups, the summary and the
//! byte locator. The first input byte is a mode: bit 0 zero-pads the image to the size its
//! superblock claims (at most 16 MiB), so seeds can be stored without their zero tail; bit 1
//! restamps the superblock's metadata_csum checksum so mutations reach what lies behind it.
#![no_main]

#[path = "common/padded.rs"]
mod padded;

use libfuzzer_sys::fuzz_target;
use padded::Padded;
use reprodisk_verifier::bytes::ReadAt;
use reprodisk_verifier::ext4::{Ext4, crc::crc32c_raw, paths_by_inode};

/// The largest image a padded input grows to.
const MAX_PADDED: u64 = 16 << 20;
/// The largest file read back.
const FILE_CAP: u64 = 64 << 10;

/// The image length `s_blocks_count_lo` blocks of the superblock's block size take, when it is
/// at most [`MAX_PADDED`].
fn claimed_len(img: &[u8]) -> Option<u64> {
    let sb = img.get(1024..2048)?;
    let blocks = u64::from(u32::from_le_bytes(sb[4..8].try_into().ok()?));
    let log = u32::from_le_bytes(sb[0x18..0x1c].try_into().ok()?);
    let want = blocks.saturating_mul(1024u64.checked_shl(log.min(6))?);
    (want <= MAX_PADDED).then_some(want)
}

/// Recomputes the superblock checksum at 0x3FC (crc32c of the first 0x3FC bytes).
fn restamp(img: &mut [u8]) {
    let Some(sb) = img.get_mut(1024..2048) else { return };
    let crc = crc32c_raw(!0, &sb[..0x3FC]);
    sb[0x3FC..].copy_from_slice(&crc.to_le_bytes());
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut bytes = rest.to_vec();
    if mode & 2 == 2 {
        restamp(&mut bytes);
    }
    let len = if mode & 1 == 1 { claimed_len(&bytes).unwrap_or(0) } else { 0 };
    let img = Padded::new(&bytes, len);
    let Ok(fs) = Ext4::open(&img) else { return };
    let _ = serde_json::to_string(&fs.summary(None));
    let _ = fs.check_backups();
    let Ok(entries) = fs.walk() else { return };
    for e in &entries {
        let _ = fs.read_file(e.ino, FILE_CAP);
        if let Ok(inode) = fs.inode(e.ino) {
            let _ = fs.xattrs(&inode);
        }
    }
    let _ = serde_json::to_string(&fs.summary(Some(&entries)));
    let Ok(owners) = fs.owner_map(&entries) else { return };
    let _ = fs.check_bitmaps(&owners, &entries);
    let paths = paths_by_inode(&entries);
    let len = img.len();
    for off in [0, 1024, 1100, 2048, 4096, len / 3, len / 2, len.saturating_sub(1)] {
        let _ = fs.describe_byte(&owners, &paths, off);
    }
    for b in 0..fs.sb.s_blocks_count.min(64) {
        let _ = fs.describe_byte(&owners, &paths, b * fs.sb.block_size() + 3);
    }
});
