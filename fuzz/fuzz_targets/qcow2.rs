//! Fuzz target: the qcow2 reader of `format::VirtualDisk` (the magic `QFI\\xfb` at 0 stamped in).
#![no_main]

#[path = "common/virtual_disk.rs"]
mod virtual_disk;

libfuzzer_sys::fuzz_target!(|data: &[u8]| virtual_disk::drive(data, b"QFI\xfb", 0));
