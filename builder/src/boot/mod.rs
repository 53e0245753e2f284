//! Boot loaders written into the image by our own code: GRUB for BIOS ([`grub_bios`]).

pub mod grub_bios;
