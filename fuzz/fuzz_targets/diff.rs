//! Fuzz target: the whole `reprodisk diff` path on two arbitrary images, as the CLI runs it:
//! each through `format::VirtualDisk`, then `glue::diff_images` (both inspected for their
//! region maps, compared byte by byte and grouped by structure and field) and both
//! renderings. Inputs: a mode byte, four bytes (little-endian) giving where the rest splits, then the
//! bytes of image A followed by those of image B. Mode bits 0..4 zero-pad A, bits 4..8 B,
//! to that many MiB each (so disk images are stored without their empty tails).
#![no_main]

#[path = "common/padded.rs"]
mod padded;

use libfuzzer_sys::fuzz_target;
use padded::Padded;
use reprodisk_verifier::format::VirtualDisk;
use reprodisk_verifier::glue;

fuzz_target!(|data: &[u8]| {
    let [mode, s0, s1, s2, s3, body @ ..] = data else { return };
    let split =
        usize::try_from(u32::from_le_bytes([*s0, *s1, *s2, *s3])).unwrap_or(usize::MAX).min(body.len());
    let (a, b) = body.split_at(split);
    let pad = |bits: u8| u64::from(bits & 15) << 20;
    let (Ok(a), Ok(b)) =
        (VirtualDisk::open(Padded::new(a, pad(*mode))), VirtualDisk::open(Padded::new(b, pad(mode >> 4))))
    else {
        return;
    };
    if let Ok(d) = glue::diff_images(&a, &b) {
        let _ = d.to_json();
        let _ = d.render_text();
        let _ = d.identical();
    }
});
