//! The `reprodisk audit` subcommand's arguments, help text and glue to [`super::audit`] and
//! [`super::against::against`] (the top-level `cli.rs` only names the subcommand).

use super::report;
use crate::cli::Outcome;
use anyhow::Context;
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "\
Check that SPEC builds the same bytes whatever the machine it is built on, the way reproducible-\
builds projects check packages with reprotest. SPEC is an image spec (TOML or JSON: the layout, \
size and contents of a disk image; see `reprodisk build --help` and the README). A build is \
reproducible when the same spec and input files give byte-identical output anywhere, which lets \
anyone confirm that a published image was built from the sources it claims.

The audit builds SPEC once as a control, then again under each variation below (each alone, \
then all together), every time by running this reprodisk binary as a separate process with \
that one thing changed:
  build-path  another build folder and working directory
  tz          another time zone (TZ=Pacific/Kiritimati, UTC+14)
  locale      another language (LANG and LC_ALL = fr_CH.UTF-8)
  umask       umask 077 instead of 022
  clock       the wall clock ten years ahead (libfaketime; SOURCE_DATE_EPOCH stays the same)
  readdir     every folder the build lists, in the opposite order (the audit answers its
              getdents64 calls through seccomp user notification)
  uid         built as the user nobody (when nobody can read every input)
  hostname    another hostname (in a separate UTS namespace; needs root)
  env         another HOME and TMPDIR, and extra environment variables
Every file the build writes (the image, efi-vars.fd, manifest.json, \
nix-support/hydra-build-products) is compared with the control's by sha256. When one differs, \
the report says which variation caused it and where the files differ, by partition, structure \
and field (e.g. `partition 2 ext4 superblock s_uuid`), as `reprodisk diff` does. The output \
folder's own path and the spec's path as typed are not counted as differences: they say where \
a build ran, not what it built. A variation that cannot run on this machine (no faketime, not \
root, no namespaces) is reported as not run, with the reason.

The report is a table with one row per build: `reproduced`, `DIFFERS` (with the files that \
differ and the first differing field), `FAILED` (the build broke under that variation) or `not \
run`, followed by each difference explained and how long the audit took. --json gives the same \
for programs; --html writes a page with a map of the disk (partitions to scale, filesystem \
metadata, journal and file data, differing bytes marked in red) for people.

With --against IMAGE, the audit is the independent rebuilder's check instead: it reads the \
manifest.json beside IMAGE (written by `reprodisk build`), checks that every input it lists \
still has the recorded sha256 (and names each one that changed), rebuilds SPEC, and compares \
the result with IMAGE and the files beside it.

Builds run in parallel, one per core. Temporary builds go in $TMPDIR when it is set, else in \
/dev/shm when it has room, else in /tmp, and are removed at the end, also on error; with --out DIR they are kept in DIR instead (the control and every build that differed), so \
you can look at them with `reprodisk diff`.";

pub const AFTER_HELP: &str = "\
Exit codes: 0 every build reproduced, 1 a build differed or failed (or an input changed, with \
--against), 2 bad input or usage (also when the control build fails).
Examples:
  reprodisk audit examples/efi.toml
  reprodisk audit examples/efi.toml --vary tz,clock --html audit.html
  reprodisk build examples/efi.toml --out result && reprodisk audit --against result/example.img examples/efi.toml";

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// The image spec (.toml or .json) to build
    pub spec: PathBuf,
    /// Rebuild and compare with this image (its folder must hold the manifest.json of its build)
    #[arg(long, value_name = "IMAGE")]
    pub against: Option<PathBuf>,
    /// Keep the builds in DIR (the control and those that differ) instead of removing them
    #[arg(long, short, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The variations to build under, separated by commas (build-path, tz, locale, umask, clock, readdir, uid, hostname, env), or all
    #[arg(long, value_name = "LIST", default_value = "all")]
    pub vary: String,
    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Also write the report as one self-contained HTML page, with a map of the disk
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// How many builds to run at once (default: one per core)
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
}

pub fn run(a: AuditArgs) -> anyhow::Result<Outcome> {
    let vary = super::variations::parse_list(&a.vary).map_err(anyhow::Error::msg)?;
    let report = match &a.against {
        Some(image) => super::against::against(&super::against::AgainstOptions {
            image: image.clone(),
            spec: a.spec.clone(),
            out: a.out.clone(),
            disk_map: a.html.is_some(),
        })
        .with_context(|| format!("auditing `{}` against `{}`", a.spec.display(), image.display()))?,
        None => super::audit(&super::Options {
            spec: a.spec.clone(),
            vary,
            out: a.out.clone(),
            disk_map: a.html.is_some(),
            jobs: a.jobs,
        })
        .with_context(|| format!("auditing `{}`", a.spec.display()))?,
    };
    if let Some(path) = &a.html {
        crate::format::raw::write_atomic(path, report::html::render(&report).as_bytes())
            .with_context(|| format!("writing `{}`", path.display()))?;
    }
    let mut text = if a.json { report::json::render(&report) + "\n" } else { report::text::render(&report) };
    if let (Some(path), false) = (&a.html, a.json) {
        text += &format!("HTML report: {}\n", path.display());
    }
    // A closed pipe (`| head`) is not an error worth a panic: the report was made.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
    Ok(if report.reproducible { Outcome::Ok } else { Outcome::CheckFailed })
}
