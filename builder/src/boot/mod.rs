//! Boot loaders and firmware state: what makes an image boot.
//!
//! [`efivars`] writes `efi-vars.fd`, an OVMF variable store holding the image's boot entry.

pub mod efivars;
