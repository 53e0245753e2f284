//! The QEMU command line of one boot, built as data.
//!
//! Every boot uses `-nodefaults` (no default NIC, VGA, floppy or CD, so a firmware dead end is
//! the disk's fault), `-display none`, the serial console on stdio, `-no-reboot` (a guest
//! reboot or kernel panic ends QEMU), the machine `q35`, one CPU and the image as a virtio disk
//! with `snapshot=on`: writes go to a temporary overlay, so a boot never changes the image.
//! The firmware's debug port 0x402 (isa-debugcon) goes to a file: SeaBIOS prints nothing on
//! the serial console without VGA, but reports "No bootable device." there.
//!
//! Firmware:
//! - SeaBIOS: QEMU's default `-bios`.
//! - OVMF: the CODE file as a read-only pflash (unit 0) and a per-run copy of a VARS file
//!   (unit 1): the OVMF template or a given store such as an image's `efi-vars.fd`. The copy is
//!   made by the runner (`run.rs`), so the given file never changes either.
//! - Direct kernel boot: SeaBIOS with `-kernel`, `-initrd` and `-append`.

use crate::accel::Accel;
use std::path::{Path, PathBuf};

/// The OVMF files of Debian's `ovmf` package.
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// The disk image's format, as QEMU's `-drive format=` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Raw,
    Qcow2,
    Vpc,
    Vdi,
}

impl ImageFormat {
    pub fn qemu_name(self) -> &'static str {
        match self {
            ImageFormat::Raw => "raw",
            ImageFormat::Qcow2 => "qcow2",
            ImageFormat::Vpc => "vpc",
            ImageFormat::Vdi => "vdi",
        }
    }

    /// The format reprodisk writes under this file extension (`img`, `qcow2`, `vhd`, `vdi`).
    pub fn from_extension(path: &Path) -> Option<ImageFormat> {
        match path.extension()?.to_str()? {
            "img" | "raw" => Some(ImageFormat::Raw),
            "qcow2" => Some(ImageFormat::Qcow2),
            "vhd" | "vpc" => Some(ImageFormat::Vpc),
            "vdi" => Some(ImageFormat::Vdi),
            _ => None,
        }
    }

    /// Parses a `format=` name (`raw`, `qcow2`, `vpc`, `vdi`).
    pub fn parse(s: &str) -> Option<ImageFormat> {
        [ImageFormat::Raw, ImageFormat::Qcow2, ImageFormat::Vpc, ImageFormat::Vdi]
            .into_iter()
            .find(|f| f.qemu_name() == s)
    }
}

/// A direct kernel boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectKernel {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub append: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS, QEMU's default BIOS.
    SeaBios,
    /// OVMF: `code` as read-only pflash, a per-run copy of `vars` as writable pflash.
    Ovmf { code: PathBuf, vars: PathBuf },
    /// SeaBIOS loading a kernel and initrd given on QEMU's command line.
    Kernel(DirectKernel),
}

impl Firmware {
    /// OVMF from Debian's `ovmf` package, with its VARS template or the given store.
    pub fn ovmf(vars: Option<PathBuf>) -> Firmware {
        Firmware::Ovmf { code: OVMF_CODE.into(), vars: vars.unwrap_or_else(|| OVMF_VARS.into()) }
    }

    /// The short name used in logs and trial names.
    pub fn name(&self) -> &'static str {
        match self {
            Firmware::SeaBios => "seabios",
            Firmware::Ovmf { .. } => "ovmf",
            Firmware::Kernel(_) => "kernel",
        }
    }
}

/// Everything one boot needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    /// The QEMU binary (`qemu-system-x86_64`, found on PATH).
    pub qemu: PathBuf,
    pub firmware: Firmware,
    pub image: PathBuf,
    pub format: ImageFormat,
    pub accel: Accel,
    pub memory_mib: u32,
    /// Where the per-run VARS copy, the firmware log and the boot log go.
    pub run_dir: PathBuf,
    /// The success pattern (plain text, found anywhere in the console output).
    pub expect: String,
    /// Patterns that end the boot as failed at once, with what each means.
    pub fail_on: Vec<(String, String)>,
    pub timeout: std::time::Duration,
    /// More QEMU arguments, appended last.
    pub extra: Vec<String>,
}

impl Boot {
    /// A boot of `image` that waits for the fixture guest's ok line and fails fast on its fail
    /// line and on the firmware dead ends, under TCG, with a 120 s timeout.
    pub fn new(
        image: impl Into<PathBuf>,
        format: ImageFormat,
        firmware: Firmware,
        run_dir: impl Into<PathBuf>,
    ) -> Boot {
        Boot {
            qemu: "qemu-system-x86_64".into(),
            firmware,
            image: image.into(),
            format,
            accel: Accel::Tcg,
            memory_mib: 512,
            run_dir: run_dir.into(),
            expect: crate::GUEST_OK.into(),
            fail_on: crate::watch::default_failures(),
            timeout: std::time::Duration::from_secs(120),
            extra: Vec::new(),
        }
    }

    /// The per-run copy of the OVMF variable store.
    pub fn vars_copy(&self) -> PathBuf {
        self.run_dir.join("ovmf-vars.fd")
    }

    /// The file the firmware's debug port (0x402) writes to.
    pub fn firmware_log(&self) -> PathBuf {
        self.run_dir.join("firmware.log")
    }

    /// The artifact: command line, serial console, firmware log and verdict.
    pub fn boot_log(&self) -> PathBuf {
        self.run_dir.join("boot.log")
    }

    /// QEMU's arguments (without the program name).
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = [
            "-nodefaults",
            "-no-user-config",
            "-machine",
            "q35",
            "-accel",
            self.accel.qemu_name(),
            "-smp",
            "1",
            "-m",
            &self.memory_mib.to_string(),
            "-display",
            "none",
            "-serial",
            "stdio",
            "-monitor",
            "none",
            "-no-reboot",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.push("-chardev".into());
        a.push(format!("file,id=fwlog,path={}", self.firmware_log().display()));
        a.push("-device".into());
        a.push("isa-debugcon,iobase=0x402,chardev=fwlog".into());
        match &self.firmware {
            Firmware::SeaBios => {}
            Firmware::Ovmf { code, .. } => {
                a.push("-drive".into());
                a.push(format!("if=pflash,format=raw,unit=0,readonly=on,file={}", code.display()));
                a.push("-drive".into());
                a.push(format!("if=pflash,format=raw,unit=1,file={}", self.vars_copy().display()));
            }
            Firmware::Kernel(k) => {
                a.push("-kernel".into());
                a.push(k.kernel.display().to_string());
                if let Some(i) = &k.initrd {
                    a.push("-initrd".into());
                    a.push(i.display().to_string());
                }
                a.push("-append".into());
                a.push(k.append.clone());
            }
        }
        a.push("-drive".into());
        a.push(format!(
            "file={},format={},if=virtio,snapshot=on",
            drive_path(&self.image),
            self.format.qemu_name()
        ));
        a.extend(self.extra.iter().cloned());
        a
    }

    /// The whole command line as one shell-quoted string, for logs.
    pub fn command_line(&self) -> String {
        std::iter::once(self.qemu.display().to_string())
            .chain(self.args())
            .map(|s| shell_quote(&s))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// QEMU's `-drive` splits on commas; a comma in a path is written twice.
fn drive_path(p: &Path) -> String {
    p.display().to_string().replace(',', ",,")
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=,:+@%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot(firmware: Firmware) -> Boot {
        Boot::new("/img/a,b.qcow2", ImageFormat::Qcow2, firmware, "/run")
    }

    fn pairs(a: &[String]) -> Vec<(String, String)> {
        a.windows(2).filter(|w| w[0].starts_with('-')).map(|w| (w[0].clone(), w[1].clone())).collect()
    }

    #[test]
    fn seabios_is_the_default_bios_with_the_image_as_a_snapshot() {
        let a = boot(Firmware::SeaBios).args();
        assert!(!a.iter().any(|x| x == "-bios" || x.contains("pflash") || x == "-kernel"), "{a:?}");
        assert_eq!(a.last().unwrap(), "file=/img/a,,b.qcow2,format=qcow2,if=virtio,snapshot=on");
        let p = pairs(&a);
        for want in [("-accel", "tcg"), ("-serial", "stdio"), ("-display", "none"), ("-machine", "q35")] {
            assert!(p.contains(&(want.0.into(), want.1.into())), "{want:?} not in {a:?}");
        }
        assert!(a.contains(&"-nodefaults".into()) && a.contains(&"-no-reboot".into()));
        assert!(a.contains(&"isa-debugcon,iobase=0x402,chardev=fwlog".into()));
    }

    #[test]
    fn ovmf_code_is_read_only_and_vars_is_the_per_run_copy() {
        let b = boot(Firmware::ovmf(Some("/out/efi-vars.fd".into())));
        let a = b.args();
        assert!(a.contains(&format!("if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}")), "{a:?}");
        assert!(a.contains(&"if=pflash,format=raw,unit=1,file=/run/ovmf-vars.fd".into()), "{a:?}");
        assert!(
            !a.iter().any(|x| x.contains("efi-vars.fd")),
            "the given store itself is never attached: {a:?}"
        );
    }

    #[test]
    fn direct_kernel_boot_passes_kernel_initrd_and_append() {
        let k = DirectKernel {
            kernel: "/k/vmlinuz".into(),
            initrd: Some("/k/initrd".into()),
            append: "console=ttyS0 root=UUID=x".into(),
        };
        let b = Boot { accel: Accel::Kvm, format: ImageFormat::Raw, ..boot(Firmware::Kernel(k)) };
        let p = pairs(&b.args());
        for want in [
            ("-kernel", "/k/vmlinuz"),
            ("-initrd", "/k/initrd"),
            ("-append", "console=ttyS0 root=UUID=x"),
            ("-accel", "kvm"),
        ] {
            assert!(p.contains(&(want.0.into(), want.1.into())), "{want:?} not in {p:?}");
        }
        assert!(b.command_line().contains(" -append 'console=ttyS0 root=UUID=x' "), "{}", b.command_line());
        assert!(b.command_line().starts_with("qemu-system-x86_64 -nodefaults"));
    }

    #[test]
    fn formats_by_name_and_extension() {
        for (ext, f) in [("img", "raw"), ("qcow2", "qcow2"), ("vhd", "vpc"), ("vdi", "vdi")] {
            let got = ImageFormat::from_extension(Path::new(&format!("x.{ext}"))).unwrap();
            assert_eq!(got.qemu_name(), f);
            assert_eq!(ImageFormat::parse(f), Some(got));
        }
        assert_eq!(ImageFormat::from_extension(Path::new("x.iso")), None);
    }
}
