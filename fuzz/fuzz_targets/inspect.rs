//! Fuzz target: the whole-image entry points on arbitrary bytes: `glue::verify` (which runs
//! `glue::inspect`, so every reader through the disk frame, then the lints and the checks),
//! both report renderings, and `glue::diff_images`. The first input byte is a mode, the rest
//! the image: bits 2..8 zero-pad the image to that many MiB (so a disk image can be stored
//! without its empty tail); bit 0 also diffs the image against a copy with one byte flipped,
//! the byte at the position the first four image bytes give.
#![no_main]

#[path = "common/padded.rs"]
mod padded;

use libfuzzer_sys::fuzz_target;
use padded::Padded;
use reprodisk_verifier::bytes::ReadAt;
use reprodisk_verifier::glue;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let len = u64::from(mode >> 2) << 20;
    let img = Padded::new(rest, len);
    let report = glue::verify(&img, None, None, Some(0));
    let _ = report.to_json();
    let _ = report.render_text();
    // The diff compares every byte of both images: only on small ones, to keep runs fast.
    if mode & 1 == 1 && !rest.is_empty() && img.len() <= 4 << 20 {
        let pos = rest.get(..4).map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap_or_default()));
        let mut flipped = rest.to_vec();
        let at = pos as usize % flipped.len();
        flipped[at] ^= 0x5a;
        let other = Padded::new(&flipped, len);
        if let Ok(d) = glue::diff_images(&img, &other) {
            let _ = d.to_json();
            let _ = d.render_text();
        }
    }
});
