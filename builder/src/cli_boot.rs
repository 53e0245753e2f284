//! `reprodisk boot`: boots an image under QEMU with the runner (`reprodisk-runner`) and waits
//! for a pattern on the serial console.

use crate::cli::Outcome;
use anyhow::{Context, bail};
use reprodisk_runner::{Accel, Boot, DirectKernel, Firmware, ImageFormat};
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "\
Boot IMAGE under QEMU (qemu-system-x86_64, Debian package qemu-system-x86) and wait for PATTERN \
on the serial console. The image is attached with snapshot=on, so the boot never changes it.

Firmware:
  seabios  QEMU's default BIOS (GRUB on legacy, legacy+boot, legacy+gpt, hybrid)
  ovmf     UEFI (Debian's ovmf): OVMF_CODE_4M.fd read-only, and a per-run copy of OVMF_VARS_4M.fd
           or of --vars FILE, e.g. the efi-vars.fd of an image built with touchEFIVars
  kernel   a direct kernel boot of --kernel, --initrd and --append (give root= in --append)

The boot succeeds when PATTERN (plain text; default `REPRODISK-GUEST ok`, the line reprodisk's \
fixture guest prints) appears, and fails at once on `REPRODISK-GUEST fail`, on a firmware dead end \
(`Shell>`, `No bootable device`, `Boot failed`), on a kernel panic, when QEMU exits, or after \
--timeout seconds. QEMU is killed on every path. The full command line, the serial console and \
the firmware's debug-port log are written to LOG_DIR/boot.log and printed on failure.

Accelerator: TCG, or KVM where the CPU has vmx/svm and a probe guest really runs under it; \
REPRODISK_ACCEL=tcg|kvm forces either.";

pub const AFTER_HELP: &str = "\
Exit codes: 0 the pattern appeared, 1 the boot failed or timed out, 2 bad input or usage.
Examples:
  reprodisk boot result/nixos.img --firmware ovmf --vars result/efi-vars.fd
  reprodisk boot result/nixos.qcow2 --firmware seabios --expect 'login:' --timeout 300
  reprodisk boot root.img --firmware kernel --kernel vmlinuz --initrd initrd.img \\
      --append 'console=ttyS0 root=UUID=f222513b-ded1-49fa-b591-20ce86a2fe7f'";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FirmwareArg {
    Seabios,
    Ovmf,
    Kernel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    Raw,
    Qcow2,
    Vpc,
    Vdi,
}

#[derive(Debug, clap::Args)]
pub struct BootArgs {
    /// The disk image to boot
    pub image: PathBuf,
    /// The firmware, or `kernel` for a direct kernel boot
    #[arg(long, value_enum)]
    pub firmware: FirmwareArg,
    /// With --firmware ovmf: the variable store to start from (a per-run copy is used)
    #[arg(long, value_name = "FILE")]
    pub vars: Option<PathBuf>,
    /// With --firmware kernel: the kernel to boot
    #[arg(long, value_name = "FILE")]
    pub kernel: Option<PathBuf>,
    /// With --firmware kernel: the initrd
    #[arg(long, value_name = "FILE")]
    pub initrd: Option<PathBuf>,
    /// With --firmware kernel: the kernel command line
    #[arg(long, value_name = "CMDLINE", default_value = "console=ttyS0 panic=-1")]
    pub append: String,
    /// The text that means success on the serial console
    #[arg(long, value_name = "PATTERN", default_value = reprodisk_runner::GUEST_OK)]
    pub expect: String,
    /// Seconds to wait for PATTERN
    #[arg(long, value_name = "S", default_value_t = 120)]
    pub timeout: u64,
    /// The image format (default: from the file extension: .img raw, .qcow2, .vhd vpc, .vdi)
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Where to keep boot.log (default: a new folder under the temporary directory)
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Guest memory in MiB
    #[arg(long, value_name = "MIB", default_value_t = 512)]
    pub memory: u32,
}

/// The runner's boot for these arguments (bad combinations are errors: exit 2).
pub fn boot_of(a: &BootArgs) -> anyhow::Result<Boot> {
    if a.firmware != FirmwareArg::Kernel && (a.kernel.is_some() || a.initrd.is_some()) {
        bail!("--kernel and --initrd need --firmware kernel");
    }
    if a.firmware != FirmwareArg::Ovmf && a.vars.is_some() {
        bail!("--vars needs --firmware ovmf");
    }
    let firmware = match a.firmware {
        FirmwareArg::Seabios => Firmware::SeaBios,
        FirmwareArg::Ovmf => Firmware::ovmf(a.vars.clone()),
        FirmwareArg::Kernel => Firmware::Kernel(DirectKernel {
            kernel: a.kernel.clone().context("--firmware kernel needs --kernel FILE")?,
            initrd: a.initrd.clone(),
            append: a.append.clone(),
        }),
    };
    let format = match a.format {
        Some(FormatArg::Raw) => ImageFormat::Raw,
        Some(FormatArg::Qcow2) => ImageFormat::Qcow2,
        Some(FormatArg::Vpc) => ImageFormat::Vpc,
        Some(FormatArg::Vdi) => ImageFormat::Vdi,
        None => ImageFormat::from_extension(&a.image).unwrap_or(ImageFormat::Raw),
    };
    let run_dir = a
        .log_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("reprodisk-boot-{}", std::process::id())));
    let mut b = Boot::new(&a.image, format, firmware, run_dir);
    b.accel = Accel::from_env(&b.qemu).map_err(anyhow::Error::msg)?;
    b.expect = a.expect.clone();
    b.timeout = std::time::Duration::from_secs(a.timeout);
    b.memory_mib = a.memory;
    Ok(b)
}

pub fn run(a: BootArgs) -> anyhow::Result<Outcome> {
    if !a.image.is_file() {
        bail!("image `{}` does not exist", a.image.display());
    }
    let b = boot_of(&a)?;
    eprintln!(
        "reprodisk: booting {} ({}, {:?}, timeout {} s)",
        a.image.display(),
        b.firmware.name(),
        b.accel,
        a.timeout
    );
    let report =
        reprodisk_runner::boot_blocking(&b).with_context(|| format!("booting `{}`", a.image.display()))?;
    if report.ok() {
        println!("{}", report.summary());
        println!("log: {}", report.log.display());
        Ok(Outcome::Ok)
    } else {
        eprintln!("{}", report.explain());
        Ok(Outcome::CheckFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    // The command line is only built, never run: the images need not exist.
    const IMG: &str = "x.img";
    const QCOW2: &str = "x.qcow2";

    fn parse(args: &[&str]) -> Result<BootArgs, clap::Error> {
        match crate::cli::Cli::try_parse_from(std::iter::once("reprodisk").chain(args.iter().copied()))?
            .command
        {
            crate::cli::Command::Boot(b) => Ok(b),
            other => panic!("not a boot command: {other:?}"),
        }
    }

    #[test]
    fn kernel_boot_takes_kernel_initrd_and_append() {
        let a = parse(&[
            "boot",
            "x.img",
            "--firmware",
            "kernel",
            "--kernel",
            "k",
            "--initrd",
            "i",
            "--append",
            "root=UUID=x",
        ])
        .unwrap();
        let b = boot_of(&a).unwrap();
        let args = b.args();
        assert!(args.windows(2).any(|w| w == ["-append", "root=UUID=x"]), "{args:?}");
        assert_eq!(b.expect, "REPRODISK-GUEST ok");
    }

    #[test]
    fn bad_combinations_are_refused() {
        let a = parse(&["boot", IMG, "--firmware", "kernel"]).unwrap();
        assert!(boot_of(&a).unwrap_err().to_string().contains("needs --kernel"));
        let a = parse(&["boot", IMG, "--firmware", "seabios", "--vars", "v.fd"]).unwrap();
        assert!(boot_of(&a).unwrap_err().to_string().contains("--vars needs --firmware ovmf"));
        assert!(parse(&["boot", "x.img", "--firmware", "coreboot"]).is_err());
    }

    #[test]
    fn format_follows_the_extension_unless_given() {
        let a = parse(&["boot", QCOW2, "--firmware", "ovmf", "--vars", "v.fd"]).unwrap();
        let b = boot_of(&a).unwrap();
        assert_eq!(b.format, ImageFormat::Qcow2);
        assert!(b.args().iter().any(|x| x.ends_with("unit=1,file=") || x.contains("ovmf-vars.fd")));
        let a = parse(&["boot", QCOW2, "--firmware", "seabios", "--format", "raw", "--expect", "login:"])
            .unwrap();
        let b = boot_of(&a).unwrap();
        assert_eq!((b.format, b.expect.as_str()), (ImageFormat::Raw, "login:"));
    }
}
