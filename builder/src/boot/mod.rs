//! Boot loaders: what goes onto the FAT boot partitions (kernel, initrd, loader files, configs) and where their inputs come from.
//!
//! - [`inputs`]: the package root list boot-loader binaries are found in, with sha256s.
//! - [`kernel`]: the kernel, initrd and command line of the `system` table.
//! - [`grub_cfg`]: the grub.cfg text shared by GRUB EFI and GRUB BIOS.
//! - [`systemd_boot`], [`grub_efi`]: the files each UEFI loader puts on the ESP.
//! - [`esp`]: the plan of every FAT partition of a build (which files, which loader) and
//!   the facts about the ESP that EFI variables need.

pub mod esp;
pub mod grub_cfg;
pub mod grub_efi;
pub mod inputs;
pub mod kernel;
pub mod systemd_boot;
