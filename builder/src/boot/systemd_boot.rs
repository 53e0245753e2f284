//! systemd-boot on the ESP: the loader binary, the removable-media fallback, loader.conf and one Boot Loader Specification entry.
//!
//! Files (paths on the FAT filesystems; the Boot Loader Specification, type #1 entries):
//! - ESP `/EFI/systemd/systemd-bootx64.efi` and `/EFI/BOOT/BOOTX64.EFI`: the same bytes,
//!   Debian's systemd-boot-efi `systemd-bootx64.efi` (firmware without a boot entry starts
//!   the fallback path).
//! - ESP `/loader/loader.conf`: a 1 s menu, the default entry, no editor, the firmware's
//!   console mode kept (OVMF mirrors it to the serial port).
//! - `/loader/entries/reprodisk.conf` beside the kernel and initrd: on the ESP, or on
//!   XBOOTLDR for `efixbootldr` (systemd-boot reads entries from both).

use super::inputs::UsedInput;
use crate::fs::fat::FileData;

pub const LOADER_PATH: &str = "/EFI/systemd/systemd-bootx64.efi";
pub const FALLBACK_PATH: &str = "/EFI/BOOT/BOOTX64.EFI";
pub const ENTRY_ID: &str = "reprodisk";

/// What an entry boots, with paths on the entry's own partition.
pub struct Entry<'a> {
    pub title: &'a str,
    pub version: Option<&'a str>,
    pub linux: &'a str,
    pub initrd: Option<&'a str>,
    pub options: &'a str,
}

pub fn loader_conf() -> String {
    format!("timeout 1\ndefault {ENTRY_ID}.conf\neditor no\nconsole-mode keep\n")
}

pub fn entry_path() -> String {
    format!("/loader/entries/{ENTRY_ID}.conf")
}

pub fn entry_conf(e: &Entry) -> String {
    let mut s = format!("title {}\n", e.title);
    if let Some(v) = e.version {
        s.push_str(&format!("version {v}\n"));
    }
    s.push_str(&format!("linux {}\n", e.linux));
    if let Some(i) = e.initrd {
        s.push_str(&format!("initrd {i}\n"));
    }
    s.push_str(&format!("options {}\n", e.options));
    s
}

/// The ESP's loader files: (path, data).
pub fn esp_files(loader: &UsedInput) -> Vec<(String, FileData)> {
    let bin = FileData::Host { path: loader.host_path(), size: loader.bytes };
    vec![
        (LOADER_PATH.to_string(), bin.clone()),
        (FALLBACK_PATH.to_string(), bin),
        ("/loader/loader.conf".to_string(), FileData::from(loader_conf().as_str())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_text() {
        let e = Entry {
            title: "Debian GNU/Linux 12 (bookworm)",
            version: Some("6.1.0-50-amd64"),
            linux: "/vmlinuz-6.1.0-50-amd64",
            initrd: Some("/initrd.img-6.1.0-50-amd64"),
            options: "root=UUID=f222513b-ded1-49fa-b591-20ce86a2fe7f console=ttyS0",
        };
        insta::assert_snapshot!(entry_conf(&e), @r"
        title Debian GNU/Linux 12 (bookworm)
        version 6.1.0-50-amd64
        linux /vmlinuz-6.1.0-50-amd64
        initrd /initrd.img-6.1.0-50-amd64
        options root=UUID=f222513b-ded1-49fa-b591-20ce86a2fe7f console=ttyS0
        ");
        assert_eq!(loader_conf(), "timeout 1\ndefault reprodisk.conf\neditor no\nconsole-mode keep\n");
    }
}
