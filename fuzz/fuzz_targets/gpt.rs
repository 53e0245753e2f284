//! Fuzz target: the GPT reader. The first input byte chooses whether the primary header's
//! and array's CRCs are recomputed first, so that mutations reach the checks behind them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reprodisk_verifier::gpt;

/// Recomputes the entry array CRC and the header CRC of the header at byte 512.
fn restamp(img: &mut [u8]) {
    let Some(hdr) = img.get(512..604) else { return };
    let arr = u64::from_le_bytes(hdr[0x48..0x50].try_into().unwrap_or_default());
    let n = u32::from_le_bytes(hdr[0x50..0x54].try_into().unwrap_or_default()) as usize;
    let sz = u32::from_le_bytes(hdr[0x54..0x58].try_into().unwrap_or_default()) as usize;
    let span = usize::try_from(arr)
        .ok()
        .and_then(|a| a.checked_mul(512))
        .and_then(|s| Some(s..s.checked_add(n.checked_mul(sz)?)?));
    if let Some(a) = span.and_then(|r| img.get(r)) {
        let crc = crc32fast::hash(a);
        img[512 + 0x58..512 + 0x5c].copy_from_slice(&crc.to_le_bytes());
    }
    let size = u32::from_le_bytes(img[512 + 0x0c..512 + 0x10].try_into().unwrap_or_default()) as usize;
    let size = size.clamp(92, 512).min(img.len() - 512);
    img[512 + 0x10..512 + 0x14].fill(0);
    let crc = crc32fast::hash(&img[512..512 + size]);
    img[512 + 0x10..512 + 0x14].copy_from_slice(&crc.to_le_bytes());
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut img = rest.to_vec();
    if mode & 1 == 1 {
        restamp(&mut img);
    }
    if let Ok(g) = gpt::read(&img) {
        let _ = serde_json::to_string(&g);
        let _ = gpt::check_protective_mbr(&g, None);
    }
});
