//! The boot matrix: one named trial per layout x firmware x boot loader x format, all from the
//! table [`MATRIX`], plus negative trials that must fail fast and for the right reason.
//!
//! A trial builds its fixture spec (shared with the `fixture::` trials, see `gate.rs`), boots
//! the image under QEMU with the runner (`-snapshot`; its sha256 is asserted unchanged) and
//! passes only on the fixture guest's own `REPRODISK-GUEST ok` line. Logs are kept in
//! `target/tmp/boot-logs/<trial>/boot.log`.
//!
//! Firmware `kernel` is a direct kernel boot of the fixture guest's kernel and initramfs, with
//! `root=` taken from the build manifest (loader `direct`: the ext4 UUID; `direct-partuuid`:
//! the root partition's GPT GUID or MBR `<signature>-<nn>`).

use crate::gate::{self, Built};
use crate::support::sha256_file;
use anyhow::{Context, Result, ensure};
use reprodisk_runner::{Boot, DirectKernel, Firmware, ImageFormat, Verdict};
use std::path::PathBuf;
use std::time::Duration;

/// One row of the matrix.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub layout: &'static str,
    /// `seabios`, `ovmf` or `kernel`.
    pub firmware: &'static str,
    /// `direct`, `direct-partuuid`, `grub`, `systemd-boot`.
    pub loader: &'static str,
    /// `raw`, `qcow2`, `vpc`, `vdi`.
    pub format: &'static str,
    /// The fixture spec (`fixtures/specs/<spec>.toml`).
    pub spec: &'static str,
    /// Set for a second row of the same layout, firmware, loader and format (`only-nix-store`);
    /// it ends the trial name.
    pub variant: Option<&'static str>,
}

const fn case(
    layout: &'static str,
    firmware: &'static str,
    loader: &'static str,
    format: &'static str,
    spec: &'static str,
) -> Case {
    Case { layout, firmware, loader, format, spec, variant: None }
}

impl Case {
    const fn variant(self, v: &'static str) -> Case {
        Case { variant: Some(v), ..self }
    }
}

/// Every combination the builder on this branch can build, each a trial. Adding one when a
/// layout starts booting is one line.
///
/// Not in the table yet: firmware boots of `hybrid-qcow2`, `hybrid-vpc`, `hybrid-vdi` (they
/// boot by direct kernel boot here). The `efi-touch-efivars` boot is `efivars::boot_without_fallback`.
pub const MATRIX: &[Case] = &[
    case("none", "kernel", "direct", "raw", "none"),
    case("legacy", "kernel", "direct", "raw", "legacy"),
    case("legacy", "kernel", "direct-partuuid", "raw", "legacy-mbr-partuuid"),
    case("legacy+boot", "kernel", "direct", "raw", "legacy-boot"),
    case("legacy+gpt", "kernel", "direct", "raw", "legacy-gpt"),
    case("efi", "kernel", "direct", "raw", "efi"),
    case("efi", "kernel", "direct-partuuid", "raw", "efi-partuuid"),
    case("efixbootldr", "kernel", "direct", "raw", "efixbootldr"),
    case("hybrid", "kernel", "direct", "raw", "hybrid"),
    case("legacy", "kernel", "direct", "raw", "only-nix-store").variant("only-nix-store"),
    case("legacy", "seabios", "grub", "raw", "legacy"),
    case("legacy+boot", "seabios", "grub", "raw", "legacy-boot"),
    case("legacy+gpt", "seabios", "grub", "raw", "legacy-gpt"),
    case("hybrid", "seabios", "grub", "raw", "hybrid"),
    case("hybrid", "kernel", "direct", "qcow2", "hybrid-qcow2"),
    case("hybrid", "kernel", "direct", "vpc", "hybrid-vpc"),
    case("hybrid", "kernel", "direct", "vdi", "hybrid-vdi"),
    case("efi", "ovmf", "systemd-boot", "raw", "efi"),
    case("efixbootldr", "ovmf", "systemd-boot", "raw", "efixbootldr"),
    case("hybrid", "ovmf", "systemd-boot", "raw", "hybrid-sdboot"),
    case("efi", "ovmf", "grub", "raw", "efi-grub"),
    case("hybrid", "ovmf", "grub", "raw", "hybrid"),
];

/// A boot that must fail, and a text the failure must contain.
#[derive(Debug, Clone, Copy)]
pub struct Negative {
    pub name: &'static str,
    pub case: Case,
    pub expect: &'static str,
}

/// Boots that must fail fast for the right reason: the text must be in the failure's meaning or
/// its line. The firmware negatives hold with and without boot loaders installed: SeaBIOS runs
/// only the MBR's boot code (an `efi` image's protective MBR has none), and OVMF boots only an
/// EFI system partition (a `legacy` image has none).
pub const NEGATIVE: &[Negative] = &[
    Negative {
        name: "wrong-root-uuid",
        case: case("none", "kernel", "direct-wrong-uuid", "raw", "none"),
        expect: "REPRODISK-GUEST fail root UUID=0badc0de-",
    },
    Negative {
        name: "efi-on-seabios",
        case: case("efi", "seabios", "systemd-boot", "raw", "efi"),
        // The protective MBR has no boot code: SeaBIOS jumps to it and nothing happens.
        expect: "firmware: Booting from 0000:7c00",
    },
    Negative {
        name: "legacy-on-ovmf",
        case: case("legacy", "ovmf", "grub", "raw", "legacy"),
        expect: "OVMF is starting the UEFI shell",
    },
];

impl Case {
    pub fn name(&self) -> String {
        let name = format!("boot::{}::{}::{}::{}", self.layout, self.firmware, self.loader, self.format);
        match self.variant {
            Some(v) => format!("{name}::{v}"),
            None => name,
        }
    }
}

/// The per-boot timeout: `REPRODISK_BOOT_TIMEOUT` seconds, else 120 (the guest needs well
/// under 20 s under TCG on an idle core; the margin is for a loaded machine).
pub(crate) fn timeout() -> Duration {
    let s = std::env::var("REPRODISK_BOOT_TIMEOUT").ok().and_then(|v| v.parse().ok()).unwrap_or(120);
    Duration::from_secs(s)
}

pub(crate) fn run_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("boot-logs")
        .join(name.replace("::", "-").replace('+', "_"))
}

/// The `root=` value a direct kernel boot of `b` uses.
fn root_param(b: &Built, loader: &str) -> Result<String> {
    let layout = &b.manifest["layout"];
    match loader {
        "direct" => Ok(format!(
            "UUID={}",
            layout["root_fs_uuid"].as_str().context("no root_fs_uuid in the manifest")?
        )),
        "direct-wrong-uuid" => Ok("UUID=0badc0de-0000-4000-8000-000000000000".into()),
        "direct-partuuid" => {
            let n = layout["root_partition"].as_u64().context("no root partition in the manifest")?;
            let part = layout["partitions"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["number"].as_u64() == Some(n)))
                .context("the root partition is not in the manifest's partition list")?;
            if let Some(guid) = part["gpt"]["partition_guid"].as_str() {
                Ok(format!("PARTUUID={guid}"))
            } else {
                let sig =
                    layout["mbr_disk_signature"].as_u64().context("no MBR disk signature in the manifest")?;
                Ok(format!("PARTUUID={sig:08x}-{n:02x}"))
            }
        }
        other => anyhow::bail!("loader `{other}` is not a direct kernel boot"),
    }
}

/// The runner's boot for `case` of the built image `b`.
fn boot_of(case: &Case, b: &Built, name: &str) -> Result<Boot> {
    let format =
        ImageFormat::parse(case.format).with_context(|| format!("unknown format `{}`", case.format))?;
    let firmware = match case.firmware {
        "seabios" => Firmware::SeaBios,
        "ovmf" => {
            let vars = b.out.join("efi-vars.fd");
            Firmware::ovmf(vars.is_file().then_some(vars))
        }
        "kernel" => {
            let g = gate::guest()?;
            Firmware::Kernel(DirectKernel {
                kernel: g.kernel,
                initrd: Some(g.initrd),
                append: reprodisk_fixtures::guest::Guest::cmdline(&root_param(b, case.loader)?),
            })
        }
        other => anyhow::bail!("unknown firmware `{other}`"),
    };
    let mut boot = Boot::new(&b.image, format, firmware, run_dir(name));
    boot.accel = reprodisk_runner::Accel::from_env(&boot.qemu).map_err(anyhow::Error::msg)?;
    boot.timeout = timeout();
    Ok(boot)
}

/// Boots and checks that the image is unchanged; returns the report.
fn boot(case: &Case, name: &str) -> Result<reprodisk_runner::Report> {
    boot_with(case, name, |_| {})
}

/// [`boot`] with the runner's settings changed by `adjust`.
fn boot_with(case: &Case, name: &str, adjust: impl FnOnce(&mut Boot)) -> Result<reprodisk_runner::Report> {
    let b = gate::built(case.spec)?;
    let mut boot = boot_of(case, &b, name)?;
    adjust(&mut boot);
    let before = sha256_file(&b.image)?;
    let report = reprodisk_runner::boot_blocking(&boot)?;
    ensure!(sha256_file(&b.image)? == before, "the boot changed the image `{}`", b.image.display());
    Ok(report)
}

/// The trial of one matrix row: the guest's ok line, recorded for the summary.
pub fn positive(case: Case) -> Result<()> {
    let name = case.name();
    let result = boot(&case, &name);
    let (ok, summary, secs) = match &result {
        Ok(r) => (r.ok(), r.summary(), format!("{:.1}", r.elapsed.as_secs_f64())),
        Err(e) => (false, format!("{e:#}"), "-".into()),
    };
    gate::record(
        &name.replace("::", "-"),
        &[
            ("boot", name.clone()),
            ("layout", case.layout.into()),
            ("firmware", case.firmware.into()),
            ("loader", case.loader.into()),
            ("format", case.format.into()),
            ("spec", case.spec.into()),
            ("boot_s", secs),
            ("ok", if ok { "yes".into() } else { "NO".into() }),
            ("summary", summary),
        ],
    );
    let r = result?;
    ensure!(r.ok(), "{}", r.explain());
    Ok(())
}

/// A negative trial: the boot must fail with the expected text.
pub fn negative(n: Negative) -> Result<()> {
    let name = format!("negative::{}", n.name);
    let r = boot_with(&n.case, &name, |b| b.timeout *= 3)?;
    // Fast means ended by its reason, never by the timeout: the verdict is a `Failure`, and
    // the timeout is tripled so that a loaded machine cannot turn one into the other (on an
    // idle machine each ends in well under a minute).
    match &r.verdict {
        Verdict::Failure { line, meaning } if line.contains(n.expect) || meaning.contains(n.expect) => Ok(()),
        _ => anyhow::bail!("expected a failure containing `{}`, got: {}", n.expect, r.explain()),
    }
}

/// A contents file with the wrong owner (the spec says root where the guest expects alice):
/// the image builds, and the guest's own check fails naming the file and both owners.
pub fn wrong_owner() -> Result<()> {
    let g = gate::guest()?;
    let text = std::fs::read_to_string(reprodisk_fixtures::specs::path("none"))?;
    let changed = text.replacen("user = \"alice\"", "user = \"root\"", 1);
    ensure!(changed != text, "the none fixture spec has no `user = \"alice\"` to change");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixtures").join("negative-wrong-owner");
    let _ = std::fs::remove_dir_all(&dir);
    let spec = reprodisk_fixtures::specs::stage_text("wrong-owner.toml", &changed, &g, &dir)?;
    let b = gate::build_in(&spec, &[], "022", None)?;
    let case = case("none", "kernel", "direct", "raw", "none");
    let boot = boot_of(&case, &b, "negative::wrong-owner")?;
    let r = reprodisk_runner::boot_blocking(&boot)?;
    let want = "REPRODISK-GUEST fail contents /etc/motd: owner uid 0, expected 1000 (alice)";
    match &r.verdict {
        Verdict::Failure { line, .. } if line.contains(want) => Ok(()),
        _ => anyhow::bail!("expected `{want}`, got: {}", r.explain()),
    }
}

/// `reprodisk boot --firmware kernel` on the `none` fixture image: exit 0 on the guest's line.
pub fn cli_kernel_boot_exits_0() -> Result<()> {
    let b = gate::built("none")?;
    let g = gate::guest()?;
    let uuid = b.manifest["layout"]["root_fs_uuid"].as_str().context("no root_fs_uuid")?;
    let out = crate::support::run(
        std::process::Command::new(crate::support::reprodisk())
            .arg("boot")
            .arg(&b.image)
            .args(["--firmware", "kernel", "--kernel"])
            .arg(&g.kernel)
            .arg("--initrd")
            .arg(&g.initrd)
            .arg("--append")
            .arg(reprodisk_fixtures::guest::Guest::cmdline(&format!("UUID={uuid}")))
            .arg("--timeout")
            .arg(timeout().as_secs().to_string())
            .arg("--log-dir")
            .arg(run_dir("cli::boot::kernel")),
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.code() == Some(0) && stdout.contains("REPRODISK-GUEST ok"),
        "reprodisk boot exited with {}:\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// `reprodisk boot --firmware seabios` on an image without a boot loader: exit 1, fast, naming
/// the firmware's dead end and printing the command line; a missing image: exit 2.
pub fn cli_seabios_without_loader_exits_1() -> Result<()> {
    let b = gate::built("none")?;
    let started = std::time::Instant::now();
    let out = crate::support::run(
        std::process::Command::new(crate::support::reprodisk())
            .arg("boot")
            .arg(&b.image)
            .args(["--firmware", "seabios", "--log-dir"])
            .arg(run_dir("cli::boot::seabios")),
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(1),
        "reprodisk boot exited with {} (expected 1):\n{stderr}",
        out.status
    );
    ensure!(
        stderr.contains("the firmware could not boot the disk")
            && stderr.contains("command: qemu-system-x86_64"),
        "{stderr}"
    );
    ensure!(started.elapsed() < Duration::from_secs(60), "the dead end took {:?}", started.elapsed());
    let out = crate::support::run(std::process::Command::new(crate::support::reprodisk()).args([
        "boot",
        "/nonexistent.img",
        "--firmware",
        "ovmf",
    ]))?;
    ensure!(out.status.code() == Some(2), "a missing image exited with {}", out.status);
    Ok(())
}

/// Every row of the matrix has a trial name of its own and a fixture spec the builder builds.
pub fn matrix_is_well_formed() -> Result<()> {
    let mut names: Vec<String> = MATRIX.iter().map(Case::name).collect();
    names.sort();
    let before = names.len();
    names.dedup();
    ensure!(names.len() == before, "two matrix rows share a trial name");
    for c in MATRIX {
        let status = reprodisk_fixtures::specs::SPECS.iter().find(|(n, _)| *n == c.spec).map(|(_, s)| *s);
        ensure!(
            status == Some(reprodisk_fixtures::specs::Status::Builds),
            "{} uses fixture spec `{}`, which is {status:?} in fixtures/src/specs.rs",
            c.name(),
            c.spec
        );
    }
    Ok(())
}
