//! Fuzz target: the whole disk frame (table detection, partition slices, filesystem
//! sniffing, report, ID lints) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reprodisk_verifier::{disk, lints};

fuzz_target!(|data: &[u8]| {
    let img = data.to_vec();
    if let Ok(d) = disk::open(&img) {
        let _ = serde_json::to_string(&d.report());
        let _ = lints::lint_ids(&d, None);
        for p in &d.partitions {
            assert!(p.start + p.len <= img.len() as u64, "a partition slice leaves the image");
        }
    }
});
