//! The fixture specs as gate steps: each built twice under different host conditions (build
//! folder, TZ, locale, umask, wall clock via faketime) with the sha256 compared, and checked
//! with `reprodisk verify --spec`; the result recorded for `cargo xtask verify`'s summary.
//!
//! A spec is built once per test process however many trials need it ([`built`]): the boot
//! trials boot the first of the two images (with `snapshot=on`, so sharing it is safe).
//!
//! Records: one file per fixture spec and per boot in [`records_dir`], a single line of
//! tab-separated `key=value` fields, read by xtask (`xtask/src/summary.rs`).

use crate::support::*;
use anyhow::{Context, Result, bail, ensure};
use reprodisk_fixtures::guest::{self, Guest};
use reprodisk_fixtures::specs;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// Where the records go: `target/tmp/reprodisk-gate/`.
pub fn records_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reprodisk-gate")
}

/// Writes record `name` (a file in [`records_dir`]) with `fields`.
pub fn record(name: &str, fields: &[(&str, String)]) {
    let dir = records_dir();
    let line: Vec<String> =
        fields.iter().map(|(k, v)| format!("{k}={}", v.replace(['\t', '\n'], " "))).collect();
    // A record that cannot be written shows up as a missing row in the summary, which xtask
    // reports as a failure, so the error itself need not fail the trial.
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{name}.tsv")), line.join("\t") + "\n");
}

/// The fixture guest, assembled once per test process into `target/tmp/guest`.
pub fn guest() -> Result<Guest> {
    static GUEST: OnceLock<Result<Guest, String>> = OnceLock::new();
    GUEST
        .get_or_init(|| {
            let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("guest");
            guest::prepare(&guest::default_cache(), &out).map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// A fixture spec built and checked.
#[derive(Debug, Clone)]
pub struct Built {
    pub spec: PathBuf,
    pub out: PathBuf,
    pub image: PathBuf,
    pub manifest: serde_json::Value,
    pub build_seconds: f64,
}

/// Builds `spec` into `dir/out` with the CLI under the given host conditions.
pub fn build_in(spec: &Path, env: &[(&str, &str)], umask: &str, faketime: Option<&str>) -> Result<Built> {
    let dir = spec.parent().context("spec without a folder")?;
    let mut script = format!("umask {umask}; exec");
    if let Some(t) = faketime {
        require("faketime", "faketime")?;
        script.push_str(&format!(" faketime '{t}'"));
    }
    script.push_str(" \"$0\" build \"$1\" --out out");
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).arg(reprodisk()).arg(spec.file_name().context("spec without a name")?);
    cmd.current_dir(dir).env("CI", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let t = Instant::now();
    run_ok(&mut cmd).with_context(|| format!("reprodisk build {}", spec.display()))?;
    let build_seconds = t.elapsed().as_secs_f64();
    let out = dir.join("out");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("manifest.json")).context("reading the build manifest")?,
    )?;
    let file = manifest["output"]["file"].as_str().context("the manifest names no output file")?;
    let image = out.join(file);
    ensure!(image.is_file(), "no image at `{}`", image.display());
    Ok(Built { spec: spec.to_path_buf(), out, image, manifest, build_seconds })
}

/// Two builds of fixture spec `name` in two folders under different host conditions, which
/// must give the same bytes, then `reprodisk verify --spec` on the first; recorded. The outer
/// error: the spec did not build; the inner one: a check failed (the image can still boot).
fn build_twice(name: &str) -> Result<(Built, Result<(), String>)> {
    let g = guest()?;
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixtures").join(name);
    let _ = std::fs::remove_dir_all(&base);
    let (a, b) = (base.join("a"), base.join("build-folder-b"));
    let spec_a = specs::stage(name, &g, &a)?;
    let spec_b = specs::stage(name, &g, &b)?;
    let not_built = |e: anyhow::Error| {
        record(
            &format!("fixture-{name}"),
            &[("spec", name.into()), ("built", "NO".into()), ("error", format!("{e:#}"))],
        );
        e
    };
    let first = build_in(&spec_a, &[("TZ", "UTC"), ("LC_ALL", "C")], "022", None).map_err(not_built)?;
    let second = build_in(
        &spec_b,
        &[("TZ", "Pacific/Kiritimati"), ("LC_ALL", "C.UTF-8")],
        "077",
        Some("2031-05-05 10:00:00"),
    )
    .map_err(not_built)?;
    let mut fields = vec![("spec", name.to_string()), ("build_s", format!("{:.1}", first.build_seconds))];
    let same = compare(&first.image, &second.image).and_then(|()| compare_beside(&first, &second));
    // Only the first image is booted; the second has served its purpose (disk space is shared).
    let _ = std::fs::remove_dir_all(&second.out);
    fields.push(("reproducible", if same.is_ok() { "yes".into() } else { "NO".into() }));
    let verified = verify(&first);
    fields.push(("verified", if verified.is_ok() { "yes".into() } else { "NO".into() }));
    let outcome = same.and(verified).map_err(|e| format!("{e:#}"));
    if let Err(e) = &outcome {
        fields.push(("error", e.clone()));
    }
    record(&format!("fixture-{name}"), &fields);
    Ok((first, outcome))
}

/// The images must be byte-identical; if not, `reprodisk diff` says where.
pub fn compare(a: &Path, b: &Path) -> Result<()> {
    let (ha, hb) = (sha256_file(a)?, sha256_file(b)?);
    if ha != hb {
        let diff = run(Command::new(reprodisk()).arg("diff").arg(a).arg(b))?;
        bail!(
            "not reproducible: two builds differ ({ha} vs {hb}); reprodisk diff:\n{}",
            String::from_utf8_lossy(&diff.stdout)
        );
    }
    Ok(())
}

/// The output files beside the image that depend only on the spec and the inputs must be
/// byte-identical too. (`manifest.json` records the spec's path and `hydra-build-products`
/// the output folder, which differ between the two build folders by design.)
fn compare_beside(a: &Built, b: &Built) -> Result<()> {
    let name = "efi-vars.fd";
    let (fa, fb) = (a.out.join(name), b.out.join(name));
    match (fa.exists(), fb.exists()) {
        (false, false) => {}
        (true, true) => {
            let (ha, hb) = (sha256_file(&fa)?, sha256_file(&fb)?);
            ensure!(ha == hb, "not reproducible: {name} differs between the two builds ({ha} vs {hb})");
        }
        (ea, eb) => bail!("{name} written by one build only (first: {ea}, second: {eb})"),
    }
    Ok(())
}

/// `reprodisk verify IMAGE --spec SPEC` must pass, except for the parts the builder itself
/// lists as not written yet.
fn verify(b: &Built) -> Result<()> {
    let out =
        run(Command::new(reprodisk()).arg("verify").arg(&b.image).arg("--spec").arg(&b.spec).arg("--json"))?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!("verify --json printed no JSON: {}", String::from_utf8_lossy(&out.stderr))
    })?;
    let pending = b.manifest["not_written"].as_array().map(Vec::len).unwrap_or(0);
    let errors: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["severity"] == "error")
        // FAT partitions the builder reports as not written are found missing: expected.
        .filter(|f| !(pending > 0 && f["code"] == "fs-missing"))
        .collect();
    let text: Vec<String> = errors
        .iter()
        .map(|f| {
            format!(
                "{} at {}: {}",
                f["code"].as_str().unwrap_or("?"),
                f["location"].as_str().unwrap_or("?"),
                f["message"].as_str().unwrap_or("?")
            )
        })
        .collect();
    ensure!(text.is_empty(), "reprodisk verify --spec {} fails: {}", b.spec.display(), text.join("; "));
    Ok(())
}

type Slot = Arc<OnceLock<Result<(Built, Result<(), String>), String>>>;

/// Fixture spec `name` built twice, compared and verified, once per process.
fn slot(name: &str) -> Slot {
    static SLOTS: OnceLock<Mutex<BTreeMap<String, Slot>>> = OnceLock::new();
    let slot = {
        let mut map = SLOTS.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_string()).or_default().clone()
    };
    slot.get_or_init(|| {
        build_twice(name).map_err(|e| format!("fixture spec `{name}` does not build: {e:#}"))
    });
    slot
}

/// The image of fixture spec `name` (an error only when it does not build).
pub fn built(name: &str) -> Result<Built> {
    match slot(name).get() {
        Some(Ok((b, _))) => Ok(b.clone()),
        Some(Err(e)) => Err(anyhow::Error::msg(e.clone())),
        None => bail!("fixture spec `{name}` was not built"),
    }
}

/// The gate step of fixture spec `name`: it builds, reproducibly, and verifies.
pub fn checked(name: &str) -> Result<()> {
    match slot(name).get() {
        Some(Ok((_, Ok(())))) => Ok(()),
        Some(Ok((_, Err(e)))) => Err(anyhow::anyhow!("fixture spec `{name}`: {e}")),
        Some(Err(e)) => Err(anyhow::Error::msg(e.clone())),
        None => bail!("fixture spec `{name}` was not built"),
    }
}

/// A pending spec must still be refused (exit 2, "not implemented"): once the builder accepts
/// it, this fails and says what to do.
pub fn still_pending(name: &str, waits_for: &str) -> Result<()> {
    let g = guest()?;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixtures").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let spec = specs::stage(name, &g, &dir)?;
    let out = run(Command::new(reprodisk()).arg("build").arg(&spec).arg("--out").arg(dir.join("out")))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    record(&format!("fixture-{name}"), &[("spec", name.into()), ("pending", waits_for.into())]);
    if out.status.success() {
        bail!(
            "fixture spec `{name}` builds now: mark it `Status::Builds` in fixtures/src/specs.rs and add its rows to the boot matrix (tests/src/boot.rs)"
        );
    }
    ensure!(
        out.status.code() == Some(2) && stderr.contains("not implemented"),
        "fixture spec `{name}` fails for another reason than pending work ({waits_for}): {}\n{stderr}",
        out.status
    );
    Ok(())
}

/// The reproducibility step on a second build that differs in one byte (the ext4 label's first
/// byte): it must fail, and say where (`reprodisk diff` names the superblock field).
pub fn changed_byte_fails_reproducibility() -> Result<()> {
    let b = built("none")?;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixtures").join("negative-changed-byte");
    std::fs::create_dir_all(&dir)?;
    let copy = dir.join("second.img");
    std::fs::copy(&b.image, &copy)?;
    // The `none` layout is a bare ext4: its superblock is at 1024, s_volume_name at 0x78 in it.
    let mut bytes = std::fs::read(&copy)?;
    bytes[1024 + 0x78] ^= 0x20;
    std::fs::write(&copy, bytes)?;
    let err = match compare(&b.image, &copy) {
        Ok(()) => bail!("two images that differ in one byte passed the reproducibility check"),
        Err(e) => format!("{e:#}"),
    };
    ensure!(err.starts_with("not reproducible: two builds differ") && err.contains("s_volume_name"), "{err}");
    Ok(())
}
