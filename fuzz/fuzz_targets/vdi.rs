//! Fuzz target: the vdi reader of `format::VirtualDisk` (the signature at 0x40 stamped in).
#![no_main]

#[path = "common/virtual_disk.rs"]
mod virtual_disk;

libfuzzer_sys::fuzz_target!(|data: &[u8]| virtual_disk::drive(data, &0xbeda_107fu32.to_le_bytes(), 0x40));
