//! Fuzz target: the MBR reader (partition records, CHS checks, the extended chain) on
//! arbitrary bytes. It must return, never panic, never allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reprodisk_verifier::mbr;

fuzz_target!(|data: &[u8]| {
    let img = data.to_vec();
    let _ = mbr::probe(&img);
    let _ = mbr::identify_boot_code(&img);
    if let Ok(m) = mbr::read(&img) {
        // Every partition listed can be turned into a report.
        let _ = serde_json::to_string(&m);
    }
});
