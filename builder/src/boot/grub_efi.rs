//! GRUB EFI on the ESP: Debian's prebuilt monolithic `grubx64.efi` as the removable-media loader, and grub.cfg where that image looks for it.
//!
//! Debian's monolithic image (grub-efi-amd64-bin 2.06) carries the prefix `/EFI/debian`
//! (no device, so the device it was loaded from) and an embedded config that sources
//! `$prefix/x86_64-efi/grub.cfg`, else `$prefix/grub.cfg`, else `$cmdpath/grub.cfg`
//! (read with `strings` from the image; the boot tests prove the path). We put the config
//! at `/EFI/debian/grub.cfg` on the ESP and the loader at `/EFI/BOOT/BOOTX64.EFI`.

use super::inputs::UsedInput;
use crate::fs::fat::FileData;

pub const LOADER_PATH: &str = "/EFI/BOOT/BOOTX64.EFI";
pub const CFG_PATH: &str = "/EFI/debian/grub.cfg";

/// The ESP's GRUB files: (path, data).
pub fn esp_files(loader: &UsedInput, grub_cfg: &str) -> Vec<(String, FileData)> {
    vec![
        (LOADER_PATH.to_string(), FileData::Host { path: loader.host_path(), size: loader.bytes }),
        (CFG_PATH.to_string(), FileData::from(grub_cfg)),
    ]
}
