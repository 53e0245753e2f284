//! Fuzz target: the vpc (VHD) reader of `format::VirtualDisk` (the cookie `conectix` at 0 stamped in).
#![no_main]

#[path = "common/virtual_disk.rs"]
mod virtual_disk;

libfuzzer_sys::fuzz_target!(|data: &[u8]| virtual_disk::drive(data, b"conectix", 0));
