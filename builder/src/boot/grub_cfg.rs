//! The one grub.cfg text that GRUB EFI and GRUB BIOS read: find the kernel's filesystem by UUID, serial and console terminals, one entry.
//!
//! The config does not depend on the firmware side: `search --fs-uuid` finds the filesystem
//! holding the kernel (the ESP's FAT volume ID as GRUB prints it, `abcd-1234`, or an ext4
//! UUID) on whatever disk GRUB sees, so a hybrid image's BIOS and UEFI GRUB can share it.
//! GRUB's own FAT driver formats the volume ID in lower-case hex; `search` compares UUIDs
//! without regard to case, but we write GRUB's form to keep the text predictable.

/// What the menu entry boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrubEntry {
    /// Menu title.
    pub title: String,
    /// UUID of the filesystem holding `linux` and `initrd` (see [`fat_uuid`]).
    pub fs_uuid: String,
    /// Absolute path of the kernel inside that filesystem.
    pub linux: String,
    pub initrd: Option<String>,
    /// The kernel command line.
    pub cmdline: String,
}

/// Menu timeout in seconds: short, so unattended boots (CI, boot tests) do not wait.
pub const TIMEOUT_SECS: u32 = 1;

/// A FAT volume ID as GRUB and blkid name it: `XXXX-XXXX`, here in GRUB's lower case.
pub fn fat_uuid(volume_id: u32) -> String {
    format!("{:04x}-{:04x}", volume_id >> 16, volume_id & 0xffff)
}

/// Quotes a word for grub.cfg: single quotes, with `'` written as `'\''` as in sh.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The whole grub.cfg for one entry.
pub fn render(e: &GrubEntry) -> String {
    let mut s = String::new();
    s.push_str("# Written by reprodisk: one entry, serial and console terminals.\n");
    s.push_str(&format!("set timeout={TIMEOUT_SECS}\n"));
    s.push_str("set default=0\n");
    s.push_str("serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1\n");
    s.push_str("terminal_input serial console\n");
    s.push_str("terminal_output serial console\n");
    s.push_str(&format!("menuentry {} {{\n", quote(&e.title)));
    s.push_str("\tinsmod part_gpt\n\tinsmod part_msdos\n\tinsmod fat\n\tinsmod ext2\n");
    s.push_str(&format!("\tsearch --no-floppy --fs-uuid --set=root {}\n", e.fs_uuid));
    // The command line is passed as GRUB words; each parameter quoted keeps `$` and `;` literal.
    let params: Vec<String> = e.cmdline.split_whitespace().map(quote).collect();
    s.push_str(&format!("\tlinux {} {}\n", quote(&e.linux), params.join(" ")));
    if let Some(i) = &e.initrd {
        s.push_str(&format!("\tinitrd {}\n", quote(i)));
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_entry() {
        let e = GrubEntry {
            title: "Debian's kernel".into(),
            fs_uuid: fat_uuid(0x49f6_82e7),
            linux: "/vmlinuz-6.1.0-50-amd64".into(),
            initrd: Some("/initrd.img-6.1.0-50-amd64".into()),
            cmdline: "root=UUID=f222513b-ded1-49fa-b591-20ce86a2fe7f console=ttyS0".into(),
        };
        insta::assert_snapshot!(render(&e), @r"
        # Written by reprodisk: one entry, serial and console terminals.
        set timeout=1
        set default=0
        serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1
        terminal_input serial console
        terminal_output serial console
        menuentry 'Debian'\''s kernel' {
        	insmod part_gpt
        	insmod part_msdos
        	insmod fat
        	insmod ext2
        	search --no-floppy --fs-uuid --set=root 49f6-82e7
        	linux '/vmlinuz-6.1.0-50-amd64' 'root=UUID=f222513b-ded1-49fa-b591-20ce86a2fe7f' 'console=ttyS0'
        	initrd '/initrd.img-6.1.0-50-amd64'
        }
        ");
    }
}
