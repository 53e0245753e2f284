//! Fuzz target: the FAT12/16/32 reader on arbitrary bytes: open, walk, every file read by path
//! with a small cap, the root label, the summary, and the byte locator over the boot sector,
//! the FATs, every directory entry and every file's first cluster. The first input byte is a
//! mode: bit 0 zero-pads the image to the volume size its BPB claims (at most 64 MiB), so a
//! FAT16 or FAT32 seed can be stored without its empty data area.
#![no_main]

#[path = "common/padded.rs"]
mod padded;

use libfuzzer_sys::fuzz_target;
use padded::Padded;
use reprodisk_verifier::bytes::ReadAt;
use reprodisk_verifier::fat::Fat;

/// The largest volume a padded input grows to.
const MAX_PADDED: u64 = 64 << 20;

/// The largest file read back.
const FILE_CAP: u64 = 64 << 10;

/// `BPB_TotSec16` (or `BPB_TotSec32` when it is 0) times `BPB_BytsPerSec`, when at most
/// [`MAX_PADDED`].
fn claimed_len(img: &[u8]) -> Option<u64> {
    let bps = u64::from(u16::from_le_bytes(img.get(0x0B..0x0D)?.try_into().ok()?));
    let tot16 = u64::from(u16::from_le_bytes(img.get(0x13..0x15)?.try_into().ok()?));
    let tot32 = u64::from(u32::from_le_bytes(img.get(0x20..0x24)?.try_into().ok()?));
    let want = bps.saturating_mul(if tot16 == 0 { tot32 } else { tot16 });
    (want <= MAX_PADDED).then_some(want)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let len = if mode & 1 == 1 { claimed_len(rest).unwrap_or(0) } else { 0 };
    let img = Padded::new(rest, len);
    let Ok(fat) = Fat::open(&img) else { return };
    let _ = serde_json::to_string(&fat.summary(None));
    let _ = fat.root_label();
    let Ok(tree) = fat.walk() else { return };
    let _ = serde_json::to_string(&fat.summary(Some(&tree)));
    let g = &fat.geometry;
    let len = img.len() as u64;
    for off in [0, 11, 36, 510, g.fat_offset, len / 2, len.saturating_sub(1), len, u64::MAX] {
        let _ = fat.locate(&tree, off);
    }
    for n in &tree.nodes {
        if !n.is_dir() {
            let _ = fat.read_file(&n.path, FILE_CAP);
        }
        let _ = fat.locate(&tree, n.offset);
        if let Some(&c) = n.clusters.first() {
            let _ = fat.locate(&tree, g.cluster_offset(c));
        }
    }
    let _ = fat.read_file("/no/such/file", FILE_CAP);
});
