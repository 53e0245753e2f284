//! `touchEFIVars`: the `efi-vars.fd` of fixture spec `efi-touch-efivars`, read by our verifier
//! and by virt-fw-vars (PyPI package virt-firmware), identical across the gate's two builds,
//! and booted on OVMF from the entry we wrote, with the removable fallback
//! `\EFI\BOOT\BOOTX64.EFI` deleted from a copy of the image (mtools `mdel`), so that only
//! `Boot0000` can find the loader.

use crate::boot;
use crate::gate::{self, Built};
use crate::support::*;
use anyhow::{Context, Result, ensure};
use reprodisk_runner::{Boot, Firmware, ImageFormat};
use std::path::PathBuf;
use std::process::Command;

pub const SPEC: &str = "efi-touch-efivars";

/// `Boot0000` as our verifier and OVMF print it, from the build manifest's ESP.
fn expected_path(b: &Built) -> Result<String> {
    let e = &b.manifest["efi_vars"]["boot0000"];
    ensure!(e.is_object(), "the manifest has no efi_vars.boot0000: {}", b.manifest["efi_vars"]);
    Ok(format!(
        "HD({},GPT,{},0x{:X},0x{:X})/{}",
        e["partition_number"],
        e["partition_guid"].as_str().context("no partition_guid")?,
        e["start_lba"].as_u64().context("no start_lba")?,
        e["size_lba"].as_u64().context("no size_lba")?,
        e["loader_path"].as_str().context("no loader_path")?
    ))
}

fn vars_of(b: &Built) -> Result<PathBuf> {
    let vars = b.out.join("efi-vars.fd");
    ensure!(vars.is_file(), "touchEFIVars = true wrote no `{}`", vars.display());
    Ok(vars)
}

/// Our verifier and virt-fw-vars list `Boot0000` and `BootOrder` as we meant them, and the
/// second build of the gate (other folder, TZ, umask, clock) wrote the same bytes.
pub fn read_back() -> Result<()> {
    let b = gate::built(SPEC)?;
    let vars = vars_of(&b)?;
    let path = expected_path(&b)?;
    ensure!(
        b.manifest["efi_vars"]["boot0000"]["loader_path"] == r"\EFI\systemd\systemd-bootx64.efi",
        "Boot0000 does not name systemd-boot: {}",
        b.manifest["efi_vars"]
    );

    let out = run(Command::new(reprodisk()).arg("verify").arg(&vars))?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "reprodisk verify {} failed:\n{text}", vars.display());
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("Boot0000 (global) attr 0x7 "))
        .with_context(|| format!("no Boot0000:\n{text}"))?;
    ensure!(
        line.ends_with(&format!(": active \"Linux Boot Manager\" {path}")),
        "Boot0000 reads `{line}`, expected {path}"
    );
    ensure!(text.contains("BootOrder (global) attr 0x7 2 bytes: 0000"), "BootOrder is not [0000]:\n{text}");

    require("virt-fw-vars", "virt-firmware (PyPI: pip install virt-firmware==26.10, bash .ci/setup)")?;
    let oracle = run_ok(Command::new("virt-fw-vars").arg("-i").arg(&vars).args(["--print", "--verbose"]))?;
    let want = format!(
        "boot entry: title=\"Linux Boot Manager\" devpath=Partition(nr={})/FilePath({})",
        b.manifest["efi_vars"]["boot0000"]["partition_number"],
        b.manifest["efi_vars"]["boot0000"]["loader_path"].as_str().unwrap_or_default()
    );
    ensure!(
        oracle.contains("name=Boot0000 guid=guid:EfiGlobalVariable") && oracle.contains(&want),
        "virt-fw-vars:\n{oracle}"
    );
    ensure!(oracle.contains("boot order: 0000"), "virt-fw-vars prints no BootOrder 0000:\n{oracle}");

    // The gate built the spec twice under different host conditions and compared efi-vars.fd
    // too (`gate::compare_beside`); its verdict is this spec's `reproducible` step.
    gate::checked(SPEC)?;
    let recorded = b.manifest["files"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["name"] == "efi-vars.fd"))
        .context("the manifest's files do not list efi-vars.fd")?;
    ensure!(
        recorded["sha256"] == sha256_file(&vars)?.as_str(),
        "the manifest's sha256 of efi-vars.fd is wrong"
    );
    ensure!(b.manifest["efi_vars"]["template"]["sha256"].is_string(), "no template sha256 in the manifest");
    Ok(())
}

/// OVMF boots the guest through `Boot0000` alone: the fallback loader is deleted from a copy.
pub fn boot_without_fallback() -> Result<()> {
    let b = gate::built(SPEC)?;
    let vars = vars_of(&b)?;
    let name = "efivars::boot_without_fallback";
    let dir = boot::run_dir(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let image = dir.join("no-fallback.img");
    // A sparse copy: the image is mostly holes.
    run_ok(Command::new("cp").arg("--sparse=always").arg(&b.image).arg(&image))?;

    let esp = &b.manifest["efi_vars"]["boot0000"];
    let offset = esp["start_lba"].as_u64().context("no ESP start")? * 512;
    require("mdel", "mtools")?;
    let target = format!("{}@@{offset}", image.display());
    run_ok(Command::new("mdel").args(["-i", &target, "::/EFI/BOOT/BOOTX64.EFI"]))?;
    let gone = run(Command::new("mdir").args(["-i", &target, "::/EFI/BOOT/BOOTX64.EFI"]))?;
    ensure!(!gone.status.success(), "EFI/BOOT/BOOTX64.EFI is still on the copy's ESP");

    let mut boot = Boot::new(&image, ImageFormat::Raw, Firmware::ovmf(Some(vars.clone())), &dir);
    boot.accel = reprodisk_runner::Accel::from_env(&boot.qemu).map_err(anyhow::Error::msg)?;
    boot.timeout = boot::timeout();
    let before = sha256_file(&vars)?;
    let r = reprodisk_runner::boot_blocking(&boot)?;
    gate::record(
        "efivars-boot_without_fallback",
        // A matrix row of its own: the summary joins it with the spec's fixture build.
        &[
            ("boot", name.into()),
            ("layout", "efi".into()),
            ("firmware", "ovmf".into()),
            ("loader", "systemd-boot (Boot0000 only)".into()),
            ("format", "raw".into()),
            ("spec", SPEC.into()),
            ("boot_s", format!("{:.1}", r.elapsed.as_secs_f64())),
            ("ok", if r.ok() { "yes".into() } else { "NO".into() }),
            ("summary", r.summary()),
        ],
    );
    ensure!(r.ok(), "{}", r.explain());
    let starting = format!("BdsDxe: starting Boot0000 \"Linux Boot Manager\" from {}", expected_path(&b)?);
    ensure!(
        r.serial.contains(&starting) || r.firmware.contains(&starting),
        "the guest booted, but not through our Boot0000 (no `{starting}`); log: {}",
        r.log.display()
    );
    ensure!(
        sha256_file(&vars)? == before,
        "the boot changed `{}` (the runner must boot a copy)",
        vars.display()
    );
    // The logs stay; the image copy is only disk space.
    let _ = std::fs::remove_file(&image);
    Ok(())
}
