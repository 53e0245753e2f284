//! One-byte corruptions of GRUB BIOS images (`legacy`, and `legacy+boot` with its FAT /boot): each must be reported by `reprodisk verify` and
//! must make the SeaBIOS boot fail (a guest failure line, or no success line in time; SeaBIOS
//! prints nothing on a dead end, so the boot timeout is short).

use crate::gate;
use crate::support::{reprodisk, run};
use anyhow::{Context, Result, bail, ensure};
use reprodisk_runner::{Boot, Firmware, ImageFormat, Verdict};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// One corruption of a GRUB BIOS fixture image.
#[derive(Debug, Clone, Copy)]
pub struct Corruption {
    /// The trial's name.
    pub name: &'static str,
    /// The fixture spec whose image is corrupted.
    pub spec: &'static str,
    /// What is changed: `kernel-sector`, `blocklist` or `grub-cfg-root-uuid`.
    pub kind: &'static str,
    /// The verify finding code it must cause.
    pub verify_code: &'static str,
    /// A text the guest's failure line must contain, or `None` when any non-success will do
    /// (GRUB never runs, so nothing prints).
    pub guest_fail: Option<&'static str>,
}

pub const CORRUPTIONS: &[Corruption] = &[
    // boot.img's kernel_sector (LE64 at 0x5c) 1 -> 3: sector 3 is inside core.img's payload.
    Corruption {
        name: "kernel-sector",
        spec: "legacy",
        kind: "kernel-sector",
        verify_code: "grub-no-diskboot",
        guest_fail: None,
    },
    // The same on legacy+boot, whose GRUB reads its menu from the FAT /boot.
    Corruption {
        name: "legacy-boot-kernel-sector",
        spec: "legacy-boot",
        kind: "kernel-sector",
        verify_code: "grub-no-diskboot",
        guest_fail: None,
    },
    // diskboot.img's first blocklist start (core.img sector 0 + 0x1f4) 2 -> 3.
    Corruption {
        name: "blocklist",
        spec: "legacy",
        kind: "blocklist",
        verify_code: "grub-blocklist",
        guest_fail: None,
    },
    // One hex digit of `root=UUID=` in /boot/grub/grub.cfg.
    Corruption {
        name: "grub-cfg-root-uuid",
        spec: "legacy",
        kind: "grub-cfg-root-uuid",
        verify_code: "grub-cfg-uuid",
        guest_fail: Some("REPRODISK-GUEST fail root UUID=f222513c"),
    },
];

fn patch(c: &Corruption, image: &std::path::Path) -> Result<()> {
    let f = std::fs::OpenOptions::new().read(true).write(true).open(image)?;
    let mut one = [0u8; 1];
    match c.kind {
        "kernel-sector" => {
            f.read_exact_at(&mut one, 0x5c)?;
            ensure!(one[0] == 1, "kernel_sector of the {} image is {}, expected 1", c.spec, one[0]);
            f.write_all_at(&[3], 0x5c)?;
        }
        "blocklist" => {
            f.read_exact_at(&mut one, 512 + 0x1f4)?;
            ensure!(one[0] == 2, "blocklist start of the {} image is {}, expected 2", c.spec, one[0]);
            f.write_all_at(&[3], 512 + 0x1f4)?;
        }
        "grub-cfg-root-uuid" => {
            let bytes = std::fs::read(image)?;
            let needle = b"root=UUID=f222513b";
            let at = bytes
                .windows(needle.len())
                .position(|w| w == needle)
                .context("no `root=UUID=f222513b` in the image (grub.cfg)")?;
            f.write_all_at(b"c", (at + needle.len() - 1) as u64)?;
        }
        other => bail!("unknown corruption `{other}`"),
    }
    Ok(())
}

/// Builds (shared with the other trials of its spec), corrupts a copy, verifies and boots it.
pub fn trial(c: Corruption) -> Result<()> {
    let b = gate::built(c.spec)?;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("grub-corrupt").join(c.name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let image = dir.join("nixos.img");
    let o = run(Command::new("cp").arg("--sparse=always").arg(&b.image).arg(&image))?;
    ensure!(o.status.success(), "cp: {}", String::from_utf8_lossy(&o.stderr));
    patch(&c, &image)?;

    let o = run(Command::new(reprodisk()).arg("verify").arg(&image).arg("--json"))?;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).context("verify --json prints JSON")?;
    let codes: Vec<&str> = v["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["severity"] == "error")
        .filter_map(|f| f["code"].as_str())
        .collect();
    ensure!(o.status.code() == Some(1), "verify exited {:?} on a corrupt image", o.status.code());
    ensure!(codes.contains(&c.verify_code), "verify reported {codes:?}, expected `{}`", c.verify_code);

    let mut boot = Boot::new(&image, ImageFormat::Raw, Firmware::SeaBios, dir.join("boot"));
    boot.accel = reprodisk_runner::Accel::from_env(&boot.qemu).map_err(anyhow::Error::msg)?;
    boot.timeout = Duration::from_secs(if c.guest_fail.is_some() { 120 } else { 40 });
    let r = reprodisk_runner::boot_blocking(&boot)?;
    match (&r.verdict, c.guest_fail) {
        (Verdict::Success { .. }, _) => bail!("the corrupt image booted: {}", r.explain()),
        (Verdict::Failure { line, .. }, Some(want)) if line.contains(want) => Ok(()),
        (_, Some(want)) => bail!("expected the guest to fail with `{want}`, got: {}", r.explain()),
        (_, None) => Ok(()),
    }
}
