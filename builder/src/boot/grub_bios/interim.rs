//! Interim kernel lookup and grub.cfg text for GRUB BIOS, until `boot::kernel` and
//! `boot::grub_cfg` land from the uefi branch; then this file goes and its callers use those.
//! Kept deliberately small: the kernel and initrd must be in the root tree.

use crate::spec::System;
use crate::tree::{FsTree, NodeKind};

/// The kernel and initrd paths in the root tree: `system.kernel`/`system.initrd`, else the
/// last `/boot/vmlinuz-<v>` by name and `/boot/initrd.img-<v>` when it exists.
pub fn find_kernel(system: &System, tree: &FsTree) -> Result<(String, Option<String>), String> {
    let in_tree =
        |p: &str| tree.lookup(p.as_bytes()).is_some_and(|id| matches!(tree.node(id).kind, NodeKind::File(_)));
    if let Some(k) = &system.kernel {
        if !in_tree(k) {
            return Err(format!("system.kernel `{k}` is not a regular file in the root tree"));
        }
        let initrd = system.initrd.clone();
        if let Some(i) = &initrd
            && !in_tree(i)
        {
            return Err(format!("system.initrd `{i}` is not a regular file in the root tree"));
        }
        return Ok((k.clone(), initrd));
    }
    let boot = tree.lookup(b"/boot").map(|id| &tree.node(id).kind);
    let Some(NodeKind::Dir(entries)) = boot else {
        return Err("the root tree has no /boot folder with a vmlinuz-* kernel: set system.kernel".into());
    };
    let version = entries
        .keys()
        .filter_map(|n| std::str::from_utf8(n).ok()?.strip_prefix("vmlinuz-").map(String::from))
        .next_back()
        .ok_or("the root tree's /boot has no vmlinuz-* kernel: set system.kernel")?;
    let initrd = format!("/boot/initrd.img-{version}");
    let initrd = system.initrd.clone().or_else(|| in_tree(&initrd).then_some(initrd));
    Ok((format!("/boot/vmlinuz-{version}"), initrd))
}

/// grub.cfg: serial and console terminals, one entry that finds the kernel's filesystem by
/// UUID (the same shape as the uefi branch's `boot::grub_cfg::render`).
pub fn render(fs_uuid: &str, linux: &str, initrd: Option<&str>, cmdline: &str) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let mut s = String::new();
    s.push_str("# Written by reprodisk: one entry, serial and console terminals.\n");
    s.push_str("set timeout=1\nset default=0\n");
    s.push_str("serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1\n");
    s.push_str("terminal_input serial console\nterminal_output serial console\n");
    s.push_str("menuentry 'reprodisk' {\n");
    s.push_str("\tinsmod part_gpt\n\tinsmod part_msdos\n\tinsmod fat\n\tinsmod ext2\n");
    s.push_str(&format!("\tsearch --no-floppy --fs-uuid --set=root {fs_uuid}\n"));
    let params: Vec<String> = cmdline.split_whitespace().map(quote).collect();
    s.push_str(&format!("\tlinux {} {}\n", quote(linux), params.join(" ")));
    if let Some(i) = initrd {
        s.push_str(&format!("\tinitrd {}\n", quote(i)));
    }
    s.push_str("}\n");
    s
}
