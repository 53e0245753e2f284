//! Boot loaders and firmware state: what goes onto the FAT boot partitions (kernel, initrd, loader files, configs), where their inputs come from, and the EFI variables that name the loader.
//!
//! - [`inputs`]: the package root list boot-loader binaries are found in, with sha256s.
//! - [`kernel`]: the kernel, initrd and command line of the `system` table.
//! - [`grub_cfg`]: the grub.cfg text shared by GRUB EFI and GRUB BIOS.
//! - [`systemd_boot`], [`grub_efi`]: the files each UEFI loader puts on the ESP.
//! - [`grub_bios`]: GRUB for BIOS: core.img, boot.img, the MBR gap or bios_grub partition.
//! - [`esp`]: the plan of every FAT partition of a build (which files, which loader) and
//!   the facts about the ESP that EFI variables need.
//! - [`efivars`]: `efi-vars.fd`, an OVMF variable store holding the image's boot entry.

pub mod efivars;
pub mod esp;
pub mod grub_bios;
pub mod grub_cfg;
pub mod grub_efi;
pub mod inputs;
pub mod kernel;
pub mod systemd_boot;
