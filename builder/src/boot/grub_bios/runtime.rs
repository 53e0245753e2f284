//! The rest of GRUB, read at boot from `<prefix>/i386-pc/` on the /boot filesystem: normal.mod,
//! the modules a generated grub.cfg needs, their dependencies and the `.lst` files, as
//! `grub-install` lays them out (but not all ~270 modules, no fonts, no locales).

use super::GrubBiosError;
use super::GrubFiles;
use super::core::ModDeps;

/// Modules the menu needs besides what core.img carries: the normal mode and its command
/// line, the commands a generated grub.cfg uses (`serial`, `terminal_*`, `search`, `linux`,
/// `initrd`, `echo`, `test`, `insmod`, `set`), and every partition map and filesystem our
/// layouts use, so that a grub.cfg may search either. Dependencies come from moddep.lst.
pub const RUNTIME_MODULES: &[&str] = &[
    "normal",
    "linux",
    "serial",
    "terminal",
    "terminfo",
    "search",
    "search_fs_uuid",
    "search_fs_file",
    "search_label",
    "echo",
    "test",
    "sleep",
    "configfile",
    "loadenv",
    "minicmd",
    "halt",
    "reboot",
    "gzio",
    "biosdisk",
    "part_msdos",
    "part_gpt",
    "ext2",
    "fat",
];

/// The `.lst` files grub-install copies: normal.mod reads them to load modules on demand
/// (commands, filesystems, partition maps, terminals) and to list them.
pub const LST_FILES: &[&str] = &[
    "command.lst",
    "crypto.lst",
    "fs.lst",
    "moddep.lst",
    "partmap.lst",
    "parttool.lst",
    "terminal.lst",
    "video.lst",
];

/// Every file for `<prefix>/i386-pc/`, by name, sorted by name.
pub fn files(files: &dyn GrubFiles) -> Result<Vec<(String, Vec<u8>)>, GrubBiosError> {
    let deps = ModDeps::parse(&String::from_utf8_lossy(&files.read("moddep.lst")?))?;
    let mut out = Vec::new();
    for m in deps.resolve(RUNTIME_MODULES)? {
        let name = format!("{m}.mod");
        let bytes = files.read(&name)?;
        out.push((name, bytes));
    }
    for l in LST_FILES {
        out.push((l.to_string(), files.read(l)?));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
