//! Integration harness (libtest-mimic): builds every layout with the real CLI and checks each image with the reference tools.
//!
//! Trials are named `<group>::<layout>` so `cargo test -p reprodisk-tests -- build::efi` (or
//! nextest's filters) select them. Every check runs a real oracle: sfdisk and sgdisk for the
//! partition tables, e2fsck, dumpe2fs and debugfs for the root filesystem, sha256 of two
//! builds made under different hosts' conditions for determinism. A missing tool fails the
//! trial with the package to install; nothing is skipped silently.

mod boot;
mod efivars;
mod gate;
mod grub_bios;
mod support;

use anyhow::{Context, Result, bail, ensure};
use libtest_mimic::{Arguments, Failed, Trial};
use reprodisk_fixtures::specs::Status;
use reprodisk_fixtures::{Order, write_root_tree};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

const LAYOUTS: [&str; 7] = ["legacy", "legacy+boot", "legacy+gpt", "efi", "efixbootldr", "hybrid", "none"];
const MIB: u64 = 2048; // sectors
const ROOT_GUID: &str = "F222513B-DED1-49FA-B591-20CE86A2FE7F";
const ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
const BIOS_BOOT: &str = "21686148-6449-6E6F-744E-656564454649";
const XBOOTLDR: &str = "BC13C2FF-59E6-4262-A352-B275FD6F7172";
const LINUX_DATA: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
const MOTD: &str = "built by reprodisk\n";

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for layout in LAYOUTS {
        trials.push(trial(format!("build::{layout}"), move || build_and_check(layout)));
        trials.push(trial(format!("determinism::{layout}"), move || determinism(layout)));
    }
    trials.push(trial("diff::names_the_changed_label".into(), diff_names_label));
    for (name, status) in reprodisk_fixtures::specs::SPECS {
        trials.push(match status {
            Status::Builds => trial(format!("fixture::{name}::reproducible"), move || gate::checked(name)),
            Status::Pending(why) => {
                trial(format!("fixture::{name}::pending"), move || gate::still_pending(name, why))
            }
        });
    }
    for case in boot::MATRIX {
        trials.push(trial(case.name(), move || boot::positive(*case)));
    }
    for n in boot::NEGATIVE {
        trials.push(trial(format!("negative::{}", n.name), move || boot::negative(*n)));
    }
    trials.push(trial("negative::wrong-owner".into(), boot::wrong_owner));
    trials.push(trial("efivars::read_back".into(), efivars::read_back));
    trials.push(trial("efivars::boot_without_fallback".into(), efivars::boot_without_fallback));
    for c in grub_bios::CORRUPTIONS {
        trials.push(trial(format!("negative::grub-bios::{}", c.name), move || grub_bios::trial(*c)));
    }
    trials.push(trial("cli::boot::kernel_exits_0".into(), boot::cli_kernel_boot_exits_0));
    trials.push(trial(
        "cli::boot::seabios_without_loader_exits_1".into(),
        boot::cli_seabios_without_loader_exits_1,
    ));
    libtest_mimic::run(&args, trials).exit();
}

fn trial(name: String, f: impl FnOnce() -> Result<()> + Send + 'static) -> Trial {
    Trial::test(name, move || f().map_err(|e| Failed::from(format!("{e:#}"))))
}

/// A build folder holding a spec, its root tree and `contents` input, all by relative path,
/// so that two folders with the same content give byte-identical spec files.
struct Project {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Project {
    fn new(layout: &str, order: Order, label: &str) -> Result<Project> {
        let tmp = tempfile::Builder::new().prefix("reprodisk-it-").tempdir()?;
        let dir = tmp.path().join("project");
        std::fs::create_dir(&dir)?;
        write_root_tree(&dir.join("root"), order)?;
        std::fs::write(dir.join("motd"), MOTD)?;
        let spec = format!(
            r#"# Integration-test spec: every layout with the fixture root tree.
partitionTableType = "{layout}"
diskSize = "auto"
additionalSpace = "8M"
installBootLoader = false
label = "{label}"

[system]
root = "root"

[[contents]]
source = "motd"
target = "/etc/motd"
mode = "0640"
user = "alice"
group = "users"
"#
        );
        std::fs::write(dir.join("spec.toml"), spec)?;
        Ok(Project { _tmp: tmp, dir })
    }

    /// Runs `reprodisk build` in the project folder and returns the image path.
    fn build(&self, env: &[(&str, &str)], umask: &str, faketime: Option<&str>) -> Result<PathBuf> {
        let mut cmd = Command::new("sh");
        let mut script = format!("umask {umask}; exec");
        if let Some(t) = faketime {
            require("faketime", "faketime")?;
            script.push_str(&format!(" faketime '{t}'"));
        }
        script.push_str(" \"$0\" build spec.toml --out out");
        cmd.arg("-c").arg(script).arg(reprodisk()).current_dir(&self.dir).env("CI", "true");
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_ok(&mut cmd).context("reprodisk build")?;
        let img = self.dir.join("out/nixos.img");
        ensure!(img.is_file(), "no image at `{}`", img.display());
        Ok(img)
    }
}

/// The geometry the seed's parted commands give with the default bootSize (256M, which the
/// seed rounds to 257 MiB): (start, size) per partition in sectors; `None` = to the end.
fn expected_partitions(layout: &str) -> Vec<(u64, Option<u64>, &'static str, Option<&'static str>)> {
    let boot_end = 257 * MIB;
    match layout {
        "legacy" => vec![(MIB, None, "83", None)],
        "legacy+boot" => vec![(MIB, Some(boot_end - MIB), "c", None), (boot_end, None, "83", None)],
        "legacy+gpt" => vec![(MIB, Some(MIB), BIOS_BOOT, None), (2 * MIB, None, LINUX_DATA, Some(ROOT_GUID))],
        "efi" => vec![
            (8 * MIB, Some(boot_end - 8 * MIB), ESP, Some("1C06F03B-704E-4657-B9CD-681A087A2FDC")),
            (boot_end, None, LINUX_DATA, Some(ROOT_GUID)),
        ],
        "efixbootldr" => vec![
            (8 * MIB, Some(92 * MIB), ESP, Some("1C06F03B-704E-4657-B9CD-681A087A2FDC")),
            (100 * MIB, Some(boot_end - 100 * MIB), XBOOTLDR, Some("970C694F-AFD0-4B99-B750-CDB7A329AB6F")),
            (boot_end, None, LINUX_DATA, Some(ROOT_GUID)),
        ],
        "hybrid" => vec![
            (8 * MIB, Some(boot_end - 8 * MIB), ESP, Some("1C06F03B-704E-4657-B9CD-681A087A2FDC")),
            (34, Some(MIB - 33), BIOS_BOOT, Some("970C694F-AFD0-4B99-B750-CDB7A329AB6F")),
            (boot_end, None, LINUX_DATA, Some(ROOT_GUID)),
        ],
        _ => vec![],
    }
}

/// Checks the partition table with sfdisk (and sgdisk for GPT); returns the root partition's
/// byte range.
fn check_table(layout: &str, img: &Path) -> Result<(u64, u64)> {
    let len = std::fs::metadata(img)?.len();
    if layout == "none" {
        return Ok((0, len));
    }
    let sectors = len / 512;
    let (label, parts) = sfdisk(img)?;
    let expected = expected_partitions(layout);
    ensure!(
        label == if layout.starts_with("legacy") && layout != "legacy+gpt" { "dos" } else { "gpt" },
        "label {label}"
    );
    ensure!(
        parts.len() == expected.len(),
        "{} partitions, expected {}: {parts:?}",
        parts.len(),
        expected.len()
    );
    for (i, (p, (start, size, ty, uuid))) in parts.iter().zip(&expected).enumerate() {
        let n = i + 1;
        ensure!(p.start == *start, "partition {n} starts at sector {}, expected {start}", p.start);
        match size {
            Some(want) => ensure!(p.size == *want, "partition {n} has {} sectors, expected {want}", p.size),
            // MBR: parted's `100%` is the disk's last sector.
            None if label == "dos" => ensure!(
                p.size == sectors - start,
                "partition {n} has {} sectors, expected {}",
                p.size,
                sectors - start
            ),
            // GPT: parted takes the last 1 MiB-aligned end within half a percent of the end of
            // the disk, or the last usable sector (disk - 34) when none is usable.
            None => {
                let (end, last_usable) = (p.start + p.size - 1, sectors - 34);
                let aligned = (end + 1) % MIB == 0 && last_usable - end <= sectors / 200;
                ensure!(
                    end == last_usable || aligned,
                    "partition {n} ends at sector {end}: neither the last usable sector {last_usable} nor an aligned end near it"
                );
            }
        }
        ensure!(p.ty.eq_ignore_ascii_case(ty), "partition {n} type {}, expected {ty}", p.ty);
        if let Some(u) = uuid {
            ensure!(
                p.uuid.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(u)),
                "partition {n} GUID {:?}, expected {u}",
                p.uuid
            );
        }
    }
    if label == "gpt" {
        require("sgdisk", "gdisk")?;
        let out = run_ok(Command::new("sgdisk").arg("-v").arg(img))?;
        ensure!(out.contains("No problems found"), "sgdisk -v: {out}");
        let out = run_ok(Command::new("sgdisk").arg("-p").arg(img))?;
        ensure!(out.contains("97FD5997-F390-0B4A-A3F8-D106C1723AEA"), "disk GUID not the seed's: {out}");
    }
    let root = parts.last().context("no partitions")?;
    Ok((root.start * 512, root.size * 512))
}

/// Checks the root filesystem with e2fsck, dumpe2fs and debugfs.
fn check_root_fs(img: &Path, offset: u64, len: u64) -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let fs = scratch.path().join("root.ext4");
    extract(img, offset, len, &fs)?;
    require("e2fsck", "e2fsprogs")?;
    let out = run(Command::new("e2fsck").arg("-fn").arg(&fs))?;
    ensure!(
        out.status.success(),
        "e2fsck -fn failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let h = dumpe2fs(&fs)?;
    ensure!(
        h.get("Filesystem UUID").map(String::as_str) == Some(&ROOT_GUID.to_lowercase()),
        "UUID {:?}",
        h.get("Filesystem UUID")
    );
    ensure!(
        h.get("Filesystem volume name").map(String::as_str) == Some("nixos"),
        "label {:?}",
        h.get("Filesystem volume name")
    );
    let features = h.get("Filesystem features").cloned().unwrap_or_default();
    for f in ["has_journal", "extent", "metadata_csum", "dir_index", "filetype", "sparse_super"] {
        ensure!(features.split_whitespace().any(|x| x == f), "feature {f} missing from `{features}`");
    }
    let motd = run_ok(Command::new("debugfs").arg("-R").arg("cat /etc/motd").arg(&fs))?;
    ensure!(motd == MOTD, "/etc/motd reads {motd:?}");
    let stat = run_ok(Command::new("debugfs").arg("-R").arg("stat /etc/motd").arg(&fs))?;
    ensure!(
        stat.contains("Mode:  0640") && stat.contains("User:  1000") && stat.contains("Group:   100"),
        "/etc/motd: {stat}"
    );
    let ls = run_ok(Command::new("debugfs").arg("-R").arg("ls -l /bin").arg(&fs))?;
    let inode_of = |name: &str| {
        ls.lines()
            .find(|l| l.split_whitespace().last() == Some(name))
            .and_then(|l| l.split_whitespace().next().map(str::to_string))
    };
    ensure!(
        inode_of("sh").is_some() && inode_of("sh") == inode_of("busybox"),
        "/bin/sh is not a hard link of busybox:\n{ls}"
    );
    Ok(())
}

fn build_and_check(layout: &str) -> Result<()> {
    let p = Project::new(layout, Order::Forward, "nixos")?;
    let img = p.build(&[], "022", None)?;
    let products = std::fs::read_to_string(p.dir.join("out/nix-support/hydra-build-products"))?;
    ensure!(products.trim_end().starts_with("file raw-image "), "hydra-build-products: {products}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.dir.join("out/manifest.json"))?)?;
    let sha = sha256_file(&img)?;
    ensure!(manifest.to_string().contains(&sha), "the manifest does not record the image's sha256 {sha}");
    let (offset, len) = check_table(layout, &img)?;
    check_root_fs(&img, offset, len)?;
    check_verify(&p, &img, &manifest)
}

/// `reprodisk verify --spec` reads the image with the verifier's own readers. Its only errors
/// may be the FAT partitions the builder itself reports as not written yet (manifest
/// `not_written`), each found missing at the right partition; nothing else may fail.
fn check_verify(p: &Project, img: &Path, manifest: &serde_json::Value) -> Result<()> {
    let out = run(Command::new(reprodisk())
        .arg("verify")
        .arg(img)
        .arg("--spec")
        .arg(p.dir.join("spec.toml"))
        .arg("--json"))?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!("verify --json printed no JSON: {}", String::from_utf8_lossy(&out.stderr))
    })?;
    let pending: Vec<u64> = manifest["not_written"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str()?.split_once(" on partition ")?.1.split(':').next()?.parse().ok())
        .collect();
    let mut missing = Vec::new();
    for f in report["findings"].as_array().into_iter().flatten() {
        if f["severity"] != "error" {
            continue;
        }
        let part = f["location"]
            .as_str()
            .and_then(|l| l.strip_prefix("partition "))
            .and_then(|n| n.parse::<u64>().ok());
        match (f["code"].as_str(), part) {
            (Some("fs-missing"), Some(n)) if pending.contains(&n) => missing.push(n),
            _ => bail!("reprodisk verify reports {f}"),
        }
    }
    missing.sort();
    ensure!(
        missing == pending,
        "verify found FAT partitions {missing:?} missing, the builder says {pending:?} are not written"
    );
    let code = out.status.code();
    ensure!(code == Some(if pending.is_empty() { 0 } else { 1 }), "verify exited with {code:?}");
    Ok(())
}

/// Two builds of the same spec under different host conditions must give identical bytes:
/// other build folders, tree created in another order, TZ, locale, umask and wall clock.
fn determinism(layout: &str) -> Result<()> {
    let a = Project::new(layout, Order::Forward, "nixos")?;
    let b = Project::new(layout, Order::Reverse, "nixos")?;
    let img_a = a.build(&[("TZ", "UTC"), ("LC_ALL", "C")], "022", None)?;
    let img_b =
        b.build(&[("TZ", "Pacific/Kiritimati"), ("LC_ALL", "C.UTF-8")], "077", Some("2031-05-05 10:00:00"))?;
    let (ha, hb) = (sha256_file(&img_a)?, sha256_file(&img_b)?);
    if ha != hb {
        let diff = run(Command::new(reprodisk()).arg("diff").arg(&img_a).arg(&img_b))?;
        bail!("images differ: {ha} vs {hb}\n{}", String::from_utf8_lossy(&diff.stdout));
    }
    let (ma, mb) =
        (std::fs::read(a.dir.join("out/manifest.json"))?, std::fs::read(b.dir.join("out/manifest.json"))?);
    ensure!(
        ma == mb,
        "manifests differ:\n{}\n{}",
        String::from_utf8_lossy(&ma),
        String::from_utf8_lossy(&mb)
    );
    Ok(())
}

/// Two images that differ only in the filesystem label: `reprodisk diff` exits 1 and names
/// the superblock field.
fn diff_names_label() -> Result<()> {
    let a = Project::new("efi", Order::Forward, "nixos")?;
    let b = Project::new("efi", Order::Forward, "other")?;
    let (ia, ib) = (a.build(&[], "022", None)?, b.build(&[], "022", None)?);
    let out = run(Command::new(reprodisk()).arg("diff").arg(&ia).arg(&ib))?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.code() == Some(1), "diff exited with {} (expected 1):\n{text}", out.status);
    ensure!(text.contains("s_volume_name"), "diff does not name s_volume_name:\n{text}");
    Ok(())
}
