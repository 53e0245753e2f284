//! The `reprodisk` command line: `build` and `plan` (clap derive), exit codes and messages.
//!
//! Exit codes: 0 ok, 1 a check failed (reserved for `verify` and `diff`), 2 bad input or
//! usage (clap's usage errors exit 2 too). Errors are printed as `error: ...` with their
//! causes joined by `: `.

use crate::build::{self, BuildError, PlanReport};
use crate::layout::{Content, Plan, Role, Sizing, TableKind};
use crate::progress::Progress;
use crate::spec::EpochOrigin;
use crate::spec::Spec;
use anyhow::Context;
use clap::{Parser, Subcommand};
use reprodisk_verifier::bytes::ImageFile;
use reprodisk_verifier::efivars::{self, report::EfiVarsReport};
use reprodisk_verifier::expect::Expectations;
use reprodisk_verifier::format::VirtualDisk;
use reprodisk_verifier::glue;
use std::path::PathBuf;
use std::process::ExitCode;

const LONG_ABOUT: &str = "\
reprodisk builds bootable disk images that are bit-for-bit reproducible, without root, loop \
devices or a virtual machine. Its input is an image spec (TOML or JSON) holding the arguments \
of nixpkgs' make-disk-image, under the same names (camelCase) or in snake_case; the names are \
listed at the top of https://github.com/NixOS/nixpkgs/blob/master/nixos/lib/make-disk-image.nix \
and in README.md's spec reference.

The same spec, input files and SOURCE_DATE_EPOCH always give the same bytes: every ID is fixed \
or derived from rootGPUID, every time comes from SOURCE_DATE_EPOCH, and nothing is read from \
the clock, the RNG, the umask, the time zone or the build path (unless deterministic = false).

Layouts (partitionTableType):
  legacy        MBR; ext4 root from 1 MiB to the end
  legacy+boot   MBR; FAT /boot from 1 MiB to bootSize (active), ext4 root after it
  legacy+gpt    GPT; BIOS boot partition 1-2 MiB (for GRUB), ext4 root from 2 MiB
  efi           GPT; EFI system partition from 8 MiB to bootSize, ext4 root after it
  efixbootldr   GPT; ESP 8-100 MiB, XBOOTLDR 100 MiB to bootSize, ext4 root after it
  hybrid        GPT; ESP 8 MiB to bootSize, BIOS boot partition before 1 MiB, ext4 root;
                boots on BIOS and UEFI
  none          no partition table: the whole disk is the ext4 filesystem

bootSize is the END offset of the boot partition, not its size, rounded as nixpkgs' make-disk-image does: \
\"256M\" becomes 257 MiB. diskSize is a whole number of MiB or \"auto\" (the contents plus \
additionalSpace).";

const AFTER_HELP: &str = "\
Exit codes: 0 success, 1 a check failed, 2 bad input or usage.
Example: reprodisk build examples/efi.toml --out result";

#[derive(Debug, Parser)]
#[command(name = "reprodisk", version, about = "Build bit-for-bit reproducible bootable disk images", long_about = LONG_ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the disk image a spec describes
    #[command(long_about = "\
Build the disk image SPEC describes and write, into the output folder:
  <baseName>.img                     the disk image in `format` (raw: .img; qcow2 and qcow2-compressed: .qcow2; vdi: .vdi; vpc: .vhd)
  efi-vars.fd                        the UEFI variable store, when `touchEFIVars` is set
  nix-support/hydra-build-products   one line `file <format>-image <path>`, as make-disk-image writes it
  manifest.json                      what the image is a function of (spec digest, input digests, \
SOURCE_DATE_EPOCH and its origin) and what it holds (layout, every ID, the image's sha256)

Each file appears under its final name only when it is complete; on error nothing half-written \
is left. Parts reprodisk does not write yet are listed in the manifest's `not_written`.")]
    Build(BuildArgs),
    /// Show the partition layout and sizes a spec gives, without writing anything
    #[command(long_about = "\
Show the layout SPEC gives: disk size and how it was found, the partition table, every \
partition (sectors, type, GUID, name, MBR type and flags, the filesystem it will hold), the \
disk GUID or MBR disk signature, and what this version does not write yet. Nothing is written.")]
    Plan(PlanArgs),
    /// Read every structure of an image, check it (against a spec if given) and lint determinism
    #[command(long_about = "\
Read every structure of IMAGE with the verifier's own readers (written from the specifications, \
sharing no code with the builder): MBR, GPT, ext4 and FAT. Print the layout, every ID (disk GUID, \
partition GUIDs, filesystem UUIDs, FAT volume IDs, MBR signature) and every class of timestamp, \
and check:
  - that all structures are consistent (checksums, counts, bitmaps, directory trees);
  - with --spec, that the image is what the spec asks for (layout, sizes, labels, IDs derived as \
documented, contents with their modes and owners);
  - determinism: IDs that do not derive from the spec, times other than SOURCE_DATE_EPOCH, a zero \
or non-derived ext4 hash seed, mount counts, last-mount or last-write times, a dirty journal.
Works on images made by anyone (reprodisk, mkfs, parted, sgdisk, nixpkgs). Exit code 1 when a \
check fails.")]
    Verify(VerifyArgs),
    /// Explain where two images differ, by partition, structure and field
    #[command(long_about = "\
Compare images A and B byte by byte and explain every differing range by partition, structure \
and field, e.g. `partition 2 ext4 superblock s_wtime: 0 vs 1732550400`, an inode's times, a \
file's data or the order of a FAT directory. Ranges no structure explains are shown as hex. \
Exit code 0 when the images are identical, 1 when they differ.")]
    Diff(DiffArgs),
    /// Check that a spec builds bit for bit the same under perturbed host conditions, or rebuild an existing image
    #[command(long_about = crate::audit::cli::LONG_ABOUT, after_help = crate::audit::cli::AFTER_HELP)]
    Audit(crate::audit::cli::AuditArgs),
    /// Boot an image under QEMU (SeaBIOS, OVMF or a direct kernel boot) and wait for a pattern
    #[command(long_about = crate::cli_boot::LONG_ABOUT, after_help = crate::cli_boot::AFTER_HELP)]
    Boot(crate::cli_boot::BootArgs),
    /// Internal to `audit`'s readdir variation: hand this process's folder listings to the audit, then run COMMAND
    #[command(name = crate::audit::readdir::SUBCOMMAND, hide = true)]
    AuditReaddirChild(AuditReaddirChildArgs),
}

#[derive(Debug, clap::Args)]
pub struct AuditReaddirChildArgs {
    /// The audit's abstract socket
    pub socket: String,
    /// The command to run (after `--`)
    #[arg(last = true, required = true)]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The raw disk image to verify
    pub image: PathBuf,
    /// The spec the image was built from: also check the image against it
    #[arg(long, value_name = "SPEC")]
    pub spec: Option<PathBuf>,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The first raw disk image
    pub a: PathBuf,
    /// The second raw disk image
    pub b: PathBuf,
    /// Print the differences as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The image spec: a .toml or .json file; relative paths in it start at its folder
    pub spec: PathBuf,
    /// The output folder (created if missing)
    #[arg(long, short, value_name = "DIR", default_value = "result")]
    pub out: PathBuf,
    /// Print the build manifest as JSON on stdout instead of a summary; progress stays on stderr as plain lines
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The image spec: a .toml or .json file; relative paths in it start at its folder
    pub spec: PathBuf,
    /// Print the plan as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// Exit code for bad input or usage.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code for a failed check.
pub const EXIT_CHECK_FAILED: u8 = 1;

/// Parses the command line, runs it and maps the result to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before anything starts a thread: the filter goes on this one thread, then it execs.
    if let Command::AuditReaddirChild(a) = &cli.command {
        let e = crate::audit::readdir::child_main(&a.socket, &a.command);
        eprintln!("error: the readdir variation could not start the build: {e:#}");
        return ExitCode::from(crate::audit::runner::SETUP_FAILED as u8);
    }
    // Without the handlers a signal would leave the stage of a build behind; say so, go on.
    if let Err(e) = crate::cleanup::install_signal_handlers() {
        eprintln!(
            "reprodisk: warning: cannot watch for SIGINT/SIGTERM/SIGHUP ({e}); an interrupted build leaves its stage folder for the next build to remove"
        );
    }
    match run(cli) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::CheckFailed) => ExitCode::from(EXIT_CHECK_FAILED),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Every error (as opposed to a failed check, which `verify` and `diff` report in their
/// output) is bad input or a failing environment: exit 2.
/// A failed `postVM` is the exception: the build exits with the script's own code.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<BuildError>() {
        Some(BuildError::PostVm(p)) => u8::try_from(p.exit_code()).unwrap_or(EXIT_BAD_INPUT),
        _ => EXIT_BAD_INPUT,
    }
}

/// What a command found: success, or a failed check (exit 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    CheckFailed,
}

pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Build(a) => run_build(a).map(|()| Outcome::Ok),
        Command::Plan(a) => run_plan(a).map(|()| Outcome::Ok),
        Command::Verify(a) => run_verify(a),
        Command::Diff(a) => run_diff(a),
        Command::Audit(a) => crate::audit::cli::run(a),
        Command::Boot(a) => crate::cli_boot::run(a),
        Command::AuditReaddirChild(_) => {
            anyhow::bail!("`{}` is run by `reprodisk audit` only", crate::audit::readdir::SUBCOMMAND)
        }
    }
}

/// Opens an image file of any format as the disk it holds (the one entry point of `verify`,
/// `diff` and `audit`): every format's tables (and
/// every compressed cluster) are read and checked here, so a corrupt container is an error
/// naming the structure before any disk-level check runs.
pub fn open_image(path: &std::path::Path) -> anyhow::Result<VirtualDisk<ImageFile>> {
    let file = ImageFile::open(path).with_context(|| format!("opening image `{}`", path.display()))?;
    let disk = VirtualDisk::open(file).with_context(|| format!("reading image `{}`", path.display()))?;
    if let VirtualDisk::Qcow2(q) = &disk {
        q.check_compressed().with_context(|| format!("reading image `{}`", path.display()))?;
    }
    Ok(disk)
}

fn env_epoch() -> anyhow::Result<Option<i64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v
            .trim()
            .parse()
            .map(Some)
            .with_context(|| format!("SOURCE_DATE_EPOCH is `{v}`, not a whole number of seconds")),
        Err(_) => Ok(None),
    }
}

fn run_verify(a: VerifyArgs) -> anyhow::Result<Outcome> {
    // Opened first: a FIFO or a directory is refused before anything reads it.
    let image = open_image(&a.image)?;
    let vars = |p: &std::path::Path| {
        efivars::report::inspect_file(p).with_context(|| format!("reading `{}`", p.display()))
    };
    if let Some(r) = vars(&a.image)? {
        emit(&if a.json { r.to_json() + "\n" } else { r.render_text() })?;
        return Ok(if r.failed() { Outcome::CheckFailed } else { Outcome::Ok });
    }
    let efi_vars = match efivars::report::beside(&a.image) {
        Some(p) => vars(&p)?,
        None => None,
    };
    let expect = match &a.spec {
        Some(p) => Some(Expectations::from_path(p).map_err(|e| {
            // Reading errors name the spec already: say it once.
            let named = e.names_path();
            let e = anyhow::Error::new(e);
            if named { e } else { e.context(format!("spec `{}`", p.display())) }
        })?),
        None => None,
    };
    let path = a.image.display().to_string();
    let not_written = manifest_not_written(&a.image);
    let report = glue::verify_built(&image, Some(&path), expect.as_ref(), env_epoch()?, &not_written);
    let vars_failed = efi_vars.as_ref().is_some_and(EfiVarsReport::failed);
    // The container's own IDs (VDI UUIDs, VHD unique ID) against the documented rule.
    let anchor = expect.as_ref().and_then(|e| reprodisk_verifier::guid::Guid::parse(&e.root_gpuid).ok());
    let format_lints = anchor.map(|g| image.lint_ids(g)).unwrap_or_default();
    if a.json {
        for l in &format_lints {
            eprintln!("lint: {l}");
        }
    }
    let mut out = String::new();
    if let (true, Some(vars)) = (a.json, &efi_vars) {
        // Keys come out sorted this way; only images with an efi-vars.fd beside them get it.
        let mut v = serde_json::to_value(&report)?;
        v["efi_vars"] = serde_json::to_value(vars)?;
        out = serde_json::to_string_pretty(&v)? + "\n";
    } else if a.json {
        out = report.to_json() + "\n";
    } else {
        let f = image.summary();
        if f.format != reprodisk_verifier::format::Kind::Raw {
            out += &format!(
                "image format: {} holding a {} byte disk; {}\n",
                f.format.name(),
                f.virtual_size,
                f.notes.join("; ")
            );
        }
        for l in &format_lints {
            out += &format!("lint: {l}\n");
        }
        out += &report.render_text();
        efi_vars.iter().for_each(|r| out += &r.render_text());
    }
    emit(&out)?;
    Ok(if report.failed() || vars_failed || !format_lints.is_empty() {
        Outcome::CheckFailed
    } else {
        Outcome::Ok
    })
}

/// The `not_written` list of the build manifest beside the image, if there is one: what
/// reprodisk left as holes is reported as such, not as a corrupt partition.
fn manifest_not_written(image: &std::path::Path) -> Vec<String> {
    let Some(dir) = image.parent() else { return Vec::new() };
    let Ok(text) = std::fs::read_to_string(dir.join("manifest.json")) else { return Vec::new() };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { return Vec::new() };
    v["not_written"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn run_diff(a: DiffArgs) -> anyhow::Result<Outcome> {
    let (ia, ib) = (open_image(&a.a)?, open_image(&a.b)?);
    let d = glue::diff_images(&ia, &ib)
        .with_context(|| format!("comparing `{}` and `{}`", a.a.display(), a.b.display()))?;
    emit(&if a.json { d.to_json() + "\n" } else { d.render_text() })?;
    Ok(if d.identical() { Outcome::Ok } else { Outcome::CheckFailed })
}

/// Writes a report to stdout. A full disk or a closed pipe is an error (exit 2) said once,
/// never a panic, as `print!` would make it; a reader that closed the pipe early (`| head`)
/// has what it wanted, so that is no error.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing the report to stdout"),
    }
}

fn load(path: &std::path::Path) -> anyhow::Result<Spec> {
    use crate::spec::SpecError;
    match Spec::load(path) {
        Ok(s) => Ok(s),
        // These name the spec already: say it once.
        Err(e @ (SpecError::Read { .. } | SpecError::UnknownFormat { .. } | SpecError::Syntax { .. })) => {
            Err(BuildError::from(e).into())
        }
        Err(e) => Err(BuildError::from(e)).with_context(|| format!("spec `{}`", path.display())),
    }
}

fn run_build(a: BuildArgs) -> anyhow::Result<()> {
    let spec = load(&a.spec)?;
    let progress = Progress::auto(a.json);
    let out =
        build::build(&spec, &a.out, &progress).with_context(|| format!("building `{}`", a.spec.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out.manifest)?);
    } else {
        println!("{}", out.image.display());
        println!("sha256 {}", out.manifest.output.sha256);
        for p in &out.manifest.not_written {
            println!("note: {p}");
        }
    }
    Ok(())
}

fn run_plan(a: PlanArgs) -> anyhow::Result<()> {
    let spec = load(&a.spec)?;
    let report = build::plan_report(&spec).with_context(|| format!("planning `{}`", a.spec.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_plan(&report));
    }
    Ok(())
}

/// How the disk size was found, in words.
fn sizing_words(s: &Sizing) -> String {
    match s {
        Sizing::Fixed { mib } => format!("fixed diskSize of {mib} MiB"),
        Sizing::SeedAuto { filesystem_bytes, additional_space, reserved_space } => format!(
            "auto, make-disk-image's estimate: {filesystem_bytes} bytes of files + {additional_space} bytes additionalSpace + {reserved_space} bytes reserved, rounded up a MiB"
        ),
        Sizing::ExactAuto { filesystem_bytes, additional_space } => format!(
            "auto: the smallest disk whose root partition holds the {filesystem_bytes}-byte filesystem + {additional_space} bytes additionalSpace"
        ),
    }
}

/// A partition's role, in words.
fn role_words(r: Role) -> &'static str {
    match r {
        Role::BiosBoot => "BIOS boot",
        Role::Esp => "EFI system",
        Role::Xbootldr => "XBOOTLDR",
        Role::Boot => "FAT /boot",
        Role::Root => "root",
    }
}

/// The human-readable plan.
pub fn render_plan(r: &PlanReport) -> String {
    let p: &Plan = &r.plan;
    let mut s = String::new();
    let table = match p.table {
        TableKind::Gpt => "GPT",
        TableKind::Mbr => "MBR",
        TableKind::None => "no partition table",
    };
    s += &format!(
        "output: {} ({})\n",
        r.output_file,
        serde_json::to_value(r.format).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
    );
    s += &format!(
        "layout: {} ({table}), disk {} MiB = {} bytes = {} sectors\n",
        p.layout.name(),
        p.disk_bytes >> 20,
        p.disk_bytes,
        p.total_sectors()
    );
    s += &format!("sizing: {}\n", sizing_words(&p.sizing));
    if let Some(b) = p.boot_size_rounded {
        s += &format!("bootSize (rounded as nixpkgs' make-disk-image does): {} MiB\n", b >> 20);
    }
    if let Some(g) = p.disk_guid {
        s += &format!("disk GUID: {g}\n");
    }
    if let Some(sig) = p.mbr_disk_signature {
        s += &format!("MBR disk signature: 0x{sig:08x}\n");
    }
    let origin = match r.source_date_epoch.origin {
        EpochOrigin::Spec => "the spec",
        EpochOrigin::Environment => "the environment",
        EpochOrigin::Default => "the default, 1980-01-01",
    };
    s += &format!("SOURCE_DATE_EPOCH: {} (from {origin})\n", r.source_date_epoch.value);
    for part in &p.partitions {
        let size = part.sectors() * 512;
        s += &format!(
            "partition {} {}: sectors {}..={} ({} bytes)",
            part.number,
            role_words(part.role),
            part.start_lba,
            part.end_lba,
            size
        );
        if let Some(g) = &part.gpt {
            s += &format!(", type {}, GUID {}, name \"{}\"", g.type_guid, g.partition_guid, g.name);
        }
        if let Some(m) = &part.mbr {
            s += &format!(", type 0x{:02x}{}", m.system_id, if m.bootable { ", active" } else { "" });
        }
        s += &match &part.content {
            Content::None => ", no filesystem".to_string(),
            Content::Fat { label, volume_id } => format!(", FAT \"{label}\" volume ID {volume_id:08X}"),
            Content::Ext4 { label, uuid } => {
                format!(", ext4 \"{label}\" UUID {}", uuid.map(|u| u.to_string()).unwrap_or_default())
            }
        };
        s += "\n";
    }
    if p.partitions.is_empty() {
        s += &format!("root filesystem: the whole disk ({} bytes)\n", p.root_bytes);
    }
    for f in &r.boot.fat {
        s += &format!(
            "FAT filesystem \"{}\" on partition {}: {}, {}-byte clusters, volume ID {}, {} files, {} clusters free\n",
            f.label,
            f.partition,
            f.fat_type.name(),
            f.cluster_bytes,
            f.volume_id,
            f.files.len(),
            f.free_clusters
        );
    }
    if let Some(l) = r.boot.loader {
        s += &format!(
            "boot loader: {}\n",
            serde_json::to_value(l).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
        );
    }
    if let Some(k) = &r.boot.kernel {
        s += &format!("kernel: {} ({})\n", k.name, k.from);
    }
    if let Some(i) = &r.boot.initrd {
        s += &format!("initrd: {} ({})\n", i.name, i.from);
    }
    if let Some(c) = &r.boot.cmdline {
        s += &format!("kernel command line: {c}\n");
    }
    if let Some(v) = &r.efi_vars {
        s += &format!(
            "{}: from `{}` ({}, sha256 {})",
            v.file,
            v.template.path.display(),
            v.template.origin,
            v.template.sha256
        );
        s += &match &v.boot0000 {
            Some(e) => format!(
                ", Boot0000 \"{}\" partition {} LBA {}+{} {}\n",
                e.description, e.partition_number, e.start_lba, e.size_lba, e.loader_path
            ),
            None => ", unchanged (no UEFI loader installed)\n".to_string(),
        };
    }
    for n in &r.pending {
        s += &format!("{n}\n");
    }
    s
}
