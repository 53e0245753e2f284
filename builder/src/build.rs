//! The whole pipeline: spec -> plan -> image, written atomically into the output folder.
//!
//! [`prepare`] does everything that can fail on bad input before a byte is written: it reads
//! the spec's sources into one tree ([`rootfs::ingest`]), sizes the disk (exactly, from an
//! ext4 plan of that tree, for `diskSize = "auto"`), lays out the partitions and plans the
//! root filesystem for its partition. [`build`] then writes the partition tables and the root
//! filesystem into a sparse temporary file and renames it into place.
//! - [`write_boot_filesystems`]: writes every FAT partition as `boot::esp` planned it
//!   (loader, configs, kernel, initrd); [`pending`] lists what is still not written, and
//!   `plan`, `build` and the manifest report it.

use crate::boot::efivars::{self, EfiVarsBuildError, EfiVarsPlan, EfiVarsReport};
use crate::boot::esp::{self, BootError, BootPlan, BootReport};
use crate::boot::grub_bios::install::{self as grub_install, BiosGrub, InstallError};
use crate::boot::grub_bios::{self as grub_bios, CoreConfig, CoreImage, FsKind, setup::Region};
use crate::boot::inputs::PackageRoots;
use crate::format::raw::{self, Image};
use crate::format::{self, FormatParams};
use crate::fs::ext4::Ext4Plan;
use crate::layout::{self, LayoutError, Plan, RootFsBytes};
use crate::manifest::{self, FileRecord, Manifest, OutputRecord, SpecRecord};
use crate::output::{HYDRA_PRODUCTS, MANIFEST, OutputError, Stage};
use crate::progress::Progress;
use crate::ptable::{self, PtableError};
use crate::rootfs::{self, RootFsError, RootTree};
use crate::spec::{AutoSizing, DiskSize, Format, SourceDateEpoch, Spec, SpecError};
use crate::tree::digest::FileHashes;
use serde::Serialize;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Ptable(#[from] PtableError),
    #[error(transparent)]
    RootFs(#[from] RootFsError),
    #[error(transparent)]
    GrubBios(#[from] InstallError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Boot(#[from] BootError),
    #[error(transparent)]
    EfiVars(#[from] EfiVarsBuildError),
    #[error(transparent)]
    PostVm(#[from] crate::post_vm::PostVmError),
    #[error("{action} `{path}`: {error}")]
    Io { action: &'static str, path: PathBuf, error: std::io::Error },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BuildError {
    let path = path.to_path_buf();
    move |error| BuildError::Io { action, path, error }
}

/// What `reprodisk plan` prints: the layout and what the build would and would not write.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    pub output_file: String,
    pub format: Format,
    pub source_date_epoch: SourceDateEpoch,
    pub plan: Plan,
    /// Boot loader, kernel, FAT filesystems and boot-loader inputs.
    pub boot: BootReport,
    /// `efi-vars.fd` with `touchEFIVars = true`: its template and boot entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub efi_vars: Option<EfiVarsReport>,
    /// Parts reprodisk does not write yet.
    pub pending: Vec<String>,
}

/// Everything `build` produced.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    pub image: PathBuf,
    pub manifest_path: PathBuf,
    pub manifest: Manifest,
}

/// The root filesystem's size for `diskSize = "auto"`, `None` for a fixed size: exactly
/// what the ext4 planner needs for `tree`, or with `auto_sizing = "seed"` the seed's estimate
/// ([`layout::seed_estimate`]) from a walk of the root tree and the `contents` sources (like
/// the seed's, it does not count the folders `mkdir -p` creates for `contents` targets).
pub fn root_fs_bytes(spec: &Spec, tree: &RootTree) -> Result<Option<RootFsBytes>, BuildError> {
    if spec.disk_size != DiskSize::Auto {
        return Ok(None);
    }
    if spec.auto_sizing == AutoSizing::Exact {
        let opts = rootfs::ext4_options(spec, spec.root_fsuid)?;
        return Ok(Some(RootFsBytes::Exact(rootfs::minimal_bytes(&tree.tree, &opts)?)));
    }
    let mut usage = SeedUsage { blocks: 0, entries: 1 };
    if let Some(system) = &spec.system {
        usage.add_path(&system.root.resolved, true)?;
    }
    for c in &spec.contents {
        if !c.source.written.contains('*') {
            usage.add_path(&c.source.resolved, false)?;
        }
    }
    Ok(Some(RootFsBytes::SeedEstimate(layout::seed_estimate(usage.blocks, usage.entries))))
}

/// The seed's `du --apparent-size --block-size 4096` over non-directories and `find | wc -l`.
struct SeedUsage {
    blocks: u64,
    entries: u64,
}

impl SeedUsage {
    fn add_path(&mut self, path: &Path, is_root: bool) -> Result<(), BuildError> {
        let meta = std::fs::symlink_metadata(path).map_err(io("reading", path))?;
        if meta.is_dir() {
            if !is_root {
                self.entries += 1;
            }
            let mut names: Vec<_> = std::fs::read_dir(path)
                .map_err(io("listing", path))?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()
                .map_err(io("listing", path))?;
            names.sort();
            for p in names {
                self.add_path(&p, false)?;
            }
        } else if is_root && meta.is_file() {
            self.add_tar(path)?;
        } else {
            self.entries += 1;
            self.blocks += meta.len().div_ceil(4096);
        }
        Ok(())
    }

    fn add_tar(&mut self, path: &Path) -> Result<(), BuildError> {
        let mut f = std::fs::File::open(path).map_err(io("opening", path))?;
        let mut magic = [0u8; 4];
        let n = f.read(&mut magic).map_err(io("reading", path))?;
        f.seek(SeekFrom::Start(0)).map_err(io("reading", path))?;
        let reader: Box<dyn Read> = match &magic[..n] {
            [0x1f, 0x8b, ..] => Box::new(flate2::read::GzDecoder::new(f)),
            [0x28, 0xb5, 0x2f, 0xfd] => Box::new(zstd::stream::read::Decoder::new(f).map_err(|e| {
                BuildError::Io { action: "decompressing", path: path.to_path_buf(), error: e }
            })?),
            _ => Box::new(f),
        };
        let mut archive = tar::Archive::new(reader);
        // Hard-link members carry no size; du counts each link at its file's size.
        let mut sizes: std::collections::HashMap<PathBuf, u64> = std::collections::HashMap::new();
        let clean = |p: &Path| -> PathBuf {
            p.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect()
        };
        for entry in archive.entries().map_err(io("reading tar", path))? {
            let entry = entry.map_err(io("reading tar", path))?;
            let member = clean(&entry.path().map_err(io("reading tar", path))?);
            if member.as_os_str().is_empty() {
                continue;
            }
            self.entries += 1;
            let kind = entry.header().entry_type();
            if kind.is_dir() {
                continue;
            }
            let target = entry.link_name().map_err(io("reading tar", path))?;
            let size = match target {
                Some(t) if kind.is_symlink() => t.as_os_str().len() as u64,
                Some(t) if kind.is_hard_link() => sizes.get(&clean(&t)).copied().unwrap_or(0),
                _ => entry.size(),
            };
            sizes.insert(member, size);
            self.blocks += size.div_ceil(4096);
        }
        Ok(())
    }
}

/// What this version leaves unwritten for `plan`; empty once every writer has landed.
pub fn pending(boot: &BootPlan) -> Vec<String> {
    boot.pending.clone()
}

/// Everything decided before writing: the plan `reprodisk plan` shows, the merged source
/// tree and the root filesystem's plan.
pub struct Prepared {
    pub report: PlanReport,
    pub root: RootTree,
    pub ext4: Ext4Plan,
    pub boot: BootPlan,
    pub efi_vars: Option<EfiVarsPlan>,
    /// GRUB for BIOS, with its core.img checked to fit, when the layout boots on BIOS.
    pub bios: Option<PreparedBios>,
}

/// GRUB BIOS between planning and writing.
pub struct PreparedBios {
    pub grub: BiosGrub,
    pub core: CoreImage,
    pub config: CoreConfig,
    pub region: Region,
}

/// Reads the sources, sizes and lays out the disk and plans the root filesystem. Every error
/// about the spec or its inputs surfaces here, before anything is written.
pub fn prepare(spec: &Spec, progress: &Progress) -> Result<Prepared, BuildError> {
    prepare_in(spec, progress, None)
}

/// [`prepare`] with the scratch files of compressed archives in `scratch_dir` (the build's
/// stage, so that they go with it) instead of the system's temporary folder.
pub fn prepare_in(
    spec: &Spec,
    progress: &Progress,
    scratch_dir: Option<&Path>,
) -> Result<Prepared, BuildError> {
    // The one place that refuses what this version cannot build: `plan` and `build` both
    // come through here, so plan refuses exactly what build refuses, with the same words.
    progress.stage("reading the sources");
    let mut root = rootfs::ingest(spec, scratch_dir)?;
    // GRUB's files go into the root tree before sizing, grub.cfg with its final length (from
    // a first plan: UUIDs and PARTUUIDs have fixed lengths) and its text once the final plan
    // is known.
    let bios_fs = grub_install::bios_fs(spec);
    let mut bios_grub = None;
    let mut fat_extra = Vec::new();
    // GRUB BIOS on a FAT partition: beside GRUB EFI on hybrid's ESP, reading its grub.cfg, or
    // on legacy+boot's FAT /boot.
    let on_esp = bios_fs.is_some()
        && spec.partition_table_type == layout::Layout::Hybrid
        && esp::uefi_loader(spec)? == Some(esp::UefiLoader::GrubEfi);
    let fat_grub = if on_esp {
        Some((layout::Role::Esp, crate::boot::grub_efi::CFG_PATH.trim_end_matches("/grub.cfg")))
    } else if bios_fs == Some(FsKind::Fat) {
        Some((layout::Role::Boot, grub_install::FAT_BOOT_GRUB_DIR))
    } else {
        None
    };
    let grub_files = || {
        let roots =
            crate::boot::inputs::PackageRoots::new(spec.package_root.as_ref().map(|p| p.resolved.as_path()));
        grub_install::PackageRootFiles::new(roots.roots.iter().map(|r| r.path.clone()).collect())
    };
    if let Some((_, dir)) = fat_grub {
        let (grub, extra) = BiosGrub::on_fat(spec.partition_table_type, dir, grub_files())?;
        bios_grub = Some(grub);
        fat_extra = extra;
    } else if let Some(fs) = bios_fs {
        let first = layout::plan(spec, root_fs_bytes(spec, &root)?)?;
        let opts = rootfs::ext4_options(spec, first.root_fs_uuid)?;
        let len = bios_grub_cfg(spec, &first, &root, &opts)?.len();
        let meta = root.tree.node(crate::tree::NodeId::ROOT).meta.clone();
        let file_meta = crate::tree::Metadata { perm: 0o644, ..meta.clone() };
        let dir_meta = crate::tree::Metadata { perm: 0o755, ..meta };
        let files = grub_files();
        bios_grub = Some(BiosGrub::add_to_tree(
            spec.partition_table_type,
            fs,
            &mut root.tree,
            files,
            len,
            &dir_meta,
            &file_meta,
        )?);
    }
    progress.stage(&format!("planning the layout ({} files and folders)", root.tree.nodes.len()));
    // With the exact auto size and no GRUB BIOS (whose grub.cfg changes the tree below), the
    // census of the sizing plan serves the final plan too.
    let (root_fs, census) =
        if spec.disk_size == DiskSize::Auto && spec.auto_sizing == AutoSizing::Exact && bios_grub.is_none() {
            let (bytes, census) =
                rootfs::minimal_census(&root.tree, &rootfs::ext4_options(spec, spec.root_fsuid)?)?;
            (Some(RootFsBytes::Exact(bytes)), Some(census))
        } else {
            (root_fs_bytes(spec, &root)?, None)
        };
    let plan = layout::plan(spec, root_fs)?;
    let opts = rootfs::ext4_options(spec, plan.root_fs_uuid)?;
    let mut bios = None;
    if let Some(grub) = bios_grub {
        let uuid = match fat_grub {
            Some((role, _)) => {
                let volume = plan.partitions.iter().find_map(|p| match &p.content {
                    layout::Content::Fat { volume_id, .. } if p.role == role => Some(*volume_id),
                    _ => None,
                });
                // hybrid always has an ESP and legacy+boot a FAT /boot.
                crate::boot::grub_cfg::fat_uuid(volume.unwrap_or_default())
            }
            None => {
                let text = bios_grub_cfg(spec, &plan, &root, &opts)?;
                grub.finish_config(&mut root.tree, &text)?;
                crate::ids::Guid(opts.uuid).to_string().to_ascii_lowercase()
            }
        };
        let (core, config, region) = grub.core(&plan, &uuid)?;
        bios = Some(PreparedBios { grub, core, config, region });
    }
    let ext4 = rootfs::plan_exact_from(census, &root.tree, &opts, plan.root_bytes)?;
    // GRUB reads the ext4 root only when /boot is in it.
    if bios.as_ref().is_some_and(|b| b.grub.fs == FsKind::Ext4) {
        grub_bios::check_ext4_incompat(ext4.incompat_features()).map_err(InstallError::from)?;
    }
    let boot = esp::plan_with(spec, &plan, &root.tree, fat_extra)?;
    let roots = PackageRoots::new(spec.package_root.as_ref().map(|p| p.resolved.as_path()));
    let efi_vars = efivars::plan(spec, &roots, boot.report.esp.as_ref())?;
    let report = PlanReport {
        output_file: output_file_name(spec),
        format: spec.format,
        source_date_epoch: spec.source_date_epoch,
        pending: pending(&boot),
        boot: boot.report.clone(),
        efi_vars: efi_vars.as_ref().map(|v| v.report.clone()),
        plan,
    };
    Ok(Prepared { report, root, ext4, boot, efi_vars, bios })
}

/// The plan for `spec`, with everything `reprodisk plan` shows.
pub fn plan_report(spec: &Spec) -> Result<PlanReport, BuildError> {
    Ok(prepare(spec, &Progress::quiet())?.report)
}

pub fn output_file_name(spec: &Spec) -> String {
    format!("{}.{}", spec.base_name, spec.format.extension())
}

/// Writes the planned root filesystem into its byte range of the image; returns the sha256
/// of every file as the write pass read it.
pub fn write_root_filesystem(
    prepared: &Prepared,
    image: &mut Image,
    progress: &Progress,
) -> Result<FileHashes, BuildError> {
    let task = progress.bytes("writing the root filesystem", prepared.ext4.size_bytes());
    let mut last = 0;
    let offset = prepared.report.plan.root_offset;
    let hashes = prepared
        .ext4
        .write(&prepared.root.tree, image.file(), offset, &mut |done| {
            task.inc(done.saturating_sub(last));
            last = done;
        })
        .map_err(RootFsError::from)?;
    task.finish();
    Ok(hashes)
}

/// Writes the planned FAT filesystems into their partitions' byte ranges.
pub fn write_boot_filesystems(
    boot: &BootPlan,
    image: &mut Image,
    progress: &Progress,
) -> Result<(), BuildError> {
    for f in &boot.fat {
        let task = progress.bytes(
            &format!("writing the {} FAT filesystem", f.label),
            f.plan.used_clusters as u64 * f.plan.geometry.cluster_bytes(),
        );
        f.plan
            .write(&mut image.writer(), f.offset, &mut |n| task.inc(n))
            .map_err(|error| BootError::Fat { label: f.label, partition: f.number, error })?;
        task.finish();
    }
    Ok(())
}

/// Runs `postVM` with `$out` = the stage folder (what becomes `out_dir`) and `$diskImage` the
/// staged image, as the seed runs it after conversion. Regular files it adds at the top of
/// `$out` join the output set (in name order); its scratch space is its own `$TMPDIR`.
fn post_vm_on_stage(spec: &Spec, stage: &mut Stage, staged_image: &Path) -> Result<(), BuildError> {
    if spec.post_vm.trim().is_empty() {
        return Ok(());
    }
    let dir = std::path::absolute(stage.dir()).map_err(io("resolving", stage.dir()))?;
    let list = |d: &Path| -> Result<std::collections::BTreeSet<std::ffi::OsString>, BuildError> {
        std::fs::read_dir(d)
            .map_err(io("listing", d))?
            .map(|e| e.map(|e| e.file_name()).map_err(io("listing", d)))
            .collect()
    };
    let before = list(&dir)?;
    crate::post_vm::run(
        &spec.post_vm,
        &dir,
        &std::path::absolute(staged_image).map_err(io("resolving", staged_image))?,
        spec.source_date_epoch.value,
    )?;
    for name in list(&dir)?.difference(&before) {
        let is_file = std::fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.is_file());
        if let (true, Some(n)) = (is_file, name.to_str()) {
            stage.path_for(n)?;
        }
    }
    Ok(())
}

/// Builds the image of `spec` into `out_dir`: `<baseName>.img`, `nix-support/hydra-build-products`
/// and `manifest.json`, staged and committed as one set ([`crate::output`]): on any error
/// the folder keeps the set it had.
pub fn build(spec: &Spec, out_dir: &Path, progress: &Progress) -> Result<BuildOutput, BuildError> {
    let mut stage = Stage::begin(out_dir)?;
    let prepared = prepare_in(spec, progress, Some(stage.dir()))?;
    let plan = prepared.report.plan.clone();
    // A spec built in memory (Spec::from_value) has no file: its digest is over its JSON.
    let spec_bytes = if spec.path.as_os_str().is_empty() {
        serde_json::to_vec(spec).map_err(|e| BuildError::Io {
            action: "serialising",
            path: PathBuf::from("spec"),
            error: std::io::Error::other(e),
        })?
    } else {
        std::fs::read(&spec.path).map_err(io("reading", &spec.path))?
    };
    let out_dir_abs = std::path::absolute(out_dir).map_err(io("resolving", out_dir))?;
    let file_name = output_file_name(spec);
    let staged_image = stage.path_for(&file_name)?;
    let mut image = Image::create(&staged_image, plan.disk_bytes).map_err(io("creating", &staged_image))?;
    let params = FormatParams::of(spec);
    // Raw (and fixed vpc): this file is the output, so it goes to disk while it is written.
    let writeback = match format::needs_conversion(&params) {
        true => None,
        false => Some(raw::BackgroundWriteback::start(image.file()).map_err(io("writing", &staged_image))?),
    };
    progress.stage("writing the partition table");
    ptable::write_tables(&plan, &mut image.writer())?;
    let grub_bios = match &prepared.bios {
        Some(b) => {
            progress.stage("writing GRUB's boot code (boot.img, core.img)");
            Some(b.grub.write(&mut image.writer(), &b.core, &b.config, &b.region)?)
        }
        None => None,
    };
    write_boot_filesystems(&prepared.boot, &mut image, progress)?;
    let file_hashes = write_root_filesystem(&prepared, &mut image, progress)?;

    if let Some(w) = writeback {
        w.finish().map_err(io("writing", &staged_image))?;
    }
    progress.stage(&format!("writing the {} file", spec.format.hydra_name()));
    let (mut image, format_record) =
        format::finish(image, plan.disk_bytes, &params).map_err(io("writing", &staged_image))?;
    // Without postVM the image is final now: it is hashed on a second thread while the
    // inputs' digests are resolved, the image is fsynced and the rest of the set is
    // written. With postVM it is hashed after postVM, which may change it, so the manifest
    // says what is there either way.
    let hash_early = spec.post_vm.trim().is_empty();
    let task = progress.bytes("hashing the image", plan.disk_bytes);
    let hash = |file: &std::fs::File| -> Result<(u64, String), BuildError> {
        let bytes = file.metadata().map_err(io("reading", &staged_image))?.len();
        let sha256 =
            manifest::sha256_sparse_file(file, |n| task.inc(n)).map_err(io("reading", &staged_image))?;
        Ok((bytes, sha256))
    };
    let early_file = match hash_early {
        true => Some(image.file().try_clone().map_err(io("reading", &staged_image))?),
        false => None,
    };
    let (inputs, (bytes, sha256)) = std::thread::scope(|scope| -> Result<_, BuildError> {
        let hasher = early_file.map(|f| scope.spawn(move || hash(&f)));
        // After the write pass, which hashed every file it read: no input is read twice.
        let digests = prepared.root.digests(&file_hashes)?;
        drop(file_hashes);
        let inputs = manifest::input_records(spec, &digests).map_err(RootFsError::from)?;
        image.commit().map_err(io("writing", &staged_image))?;

        if let Some(v) = &prepared.efi_vars {
            let path = stage.path_for(efivars::FILE_NAME)?;
            raw::write_atomic(&path, &v.bytes).map_err(io("writing", &path))?;
        }

        let products = stage.path_for(HYDRA_PRODUCTS)?;
        let line =
            format!("file {}-image {}\n", spec.format.hydra_name(), out_dir_abs.join(&file_name).display());
        raw::write_atomic(&products, line.as_bytes()).map_err(io("writing", &products))?;
        // postVM runs on the staged set, before anything moves into place: on failure the
        // stage is dropped and the output folder keeps the set it had.
        post_vm_on_stage(spec, &mut stage, &staged_image)?;
        let hashed = match hasher {
            // A panic in the hasher is a bug; it is passed on as it is.
            Some(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?,
            None => hash(&std::fs::File::open(&staged_image).map_err(io("reading", &staged_image))?)?,
        };
        Ok((inputs, hashed))
    })?;
    task.finish();

    let manifest_path = stage.path_for(MANIFEST)?;
    let mut files = Vec::new();
    for name in stage.names().filter(|n| *n != MANIFEST) {
        let path = stage.dir().join(name);
        if name == HYDRA_PRODUCTS {
            // It names the output folder; see `FileRecord`.
            files.push(FileRecord { name: name.to_string(), bytes: None, sha256: None });
            continue;
        }
        let bytes = std::fs::metadata(&path).map_err(io("reading", &path))?.len();
        let sha256 = if name == file_name {
            sha256.clone()
        } else {
            manifest::sha256_file(&path).map_err(io("hashing", &path))?
        };
        files.push(FileRecord { name: name.to_string(), bytes: Some(bytes), sha256: Some(sha256) });
    }
    let manifest = Manifest {
        reprodisk_version: env!("CARGO_PKG_VERSION"),
        spec: SpecRecord {
            path: spec.path.display().to_string(),
            sha256: manifest::sha256_reader(&spec_bytes[..], |_| {}).map_err(io("hashing", &spec.path))?,
            resolved: spec.clone(),
        },
        source_date_epoch: spec.source_date_epoch,
        not_written: prepared.report.pending.clone(),
        inputs,
        boot: prepared.report.boot.clone(),
        efi_vars: prepared.report.efi_vars.clone(),
        grub_bios,
        output: OutputRecord {
            file: file_name.clone(),
            format: spec.format.hydra_name(),
            bytes,
            sha256,
            file_format: format_record,
        },
        files,
        layout: plan,
    };
    let mut json = serde_json::to_vec_pretty(&manifest).map_err(|e| BuildError::Io {
        action: "serialising",
        path: manifest_path.clone(),
        error: std::io::Error::other(e),
    })?;
    json.push(b'\n');
    raw::write_atomic(&manifest_path, &json).map_err(io("writing", &manifest_path))?;
    // The tree's scratch files live in the stage: release them before it goes.
    drop(prepared);
    stage.commit()?;
    let image_path = out_dir.join(&file_name);
    progress.stage(&format!("wrote {}", image_path.display()));
    Ok(BuildOutput { image: image_path, manifest_path: out_dir.join(MANIFEST), manifest })
}

/// The grub.cfg GRUB for BIOS reads from the ext4 root's /boot/grub: the kernel and initrd
/// where they are in the root tree, found by `boot::kernel` with the command line it builds.
fn bios_grub_cfg(
    spec: &Spec,
    plan: &Plan,
    root: &RootTree,
    opts: &crate::fs::ext4::Ext4Options,
) -> Result<String, BuildError> {
    let Some(system) = &spec.system else { return Ok(String::new()) };
    let k = crate::boot::kernel::find(spec, system, &root.tree, plan).map_err(BootError::from)?;
    let in_tree = |f: &crate::boot::kernel::BootFile, what: &str| {
        f.tree_path.clone().ok_or_else(|| InstallError::OutsideTree {
            what: what.to_string(),
            path: f.host_path.clone().unwrap_or_default(),
        })
    };
    let linux = in_tree(&k.kernel, "kernel")?;
    let initrd = k.initrd.as_ref().map(|i| in_tree(i, "initrd")).transpose()?;
    Ok(crate::boot::grub_cfg::render(&crate::boot::grub_cfg::GrubEntry {
        title: esp::title(&root.tree, &k),
        fs_uuid: crate::ids::Guid(opts.uuid).to_string().to_ascii_lowercase(),
        linux,
        initrd,
        cmdline: k.cmdline(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> Spec {
        Spec::from_value(v, Path::new("."), None).unwrap()
    }

    #[test]
    fn builds_an_in_memory_spec() {
        let dir = tempfile::tempdir().unwrap();
        let out = build(
            &spec(json!({"partitionTableType": "hybrid", "diskSize": 20, "bootSize": "8M"})),
            dir.path(),
            &Progress::quiet(),
        )
        .unwrap();
        assert_eq!(out.image, dir.path().join("nixos.img"));
        assert_eq!(std::fs::metadata(&out.image).unwrap().len(), 20 << 20);
        assert_eq!(out.manifest.output.sha256, manifest::sha256_file(&out.image).unwrap());
        assert_eq!(out.manifest.layout.partitions.len(), 3);
        let products = std::fs::read_to_string(dir.path().join("nix-support/hydra-build-products")).unwrap();
        assert!(products.starts_with("file raw-image /") && products.ends_with("/nixos.img\n"), "{products}");
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&out.manifest_path).unwrap()).unwrap();
        assert_eq!(m["source_date_epoch"], json!({"value": 315532800, "origin": "default"}));
        assert_eq!(m["spec"]["resolved"]["partition_table_type"], "hybrid");
        // Every partition is written now: the FAT ESP (empty without a system) and the root.
        assert_eq!(m["not_written"], json!([]));
        assert_eq!(m["boot"]["fat"][0]["label"], "ESP");
    }

    #[test]
    fn a_failed_build_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(json!({"partitionTableType": "efi", "diskSize": 20}));
        // bootSize 256M does not fit a 20 MiB disk: the plan fails before any file exists.
        assert!(matches!(build(&s, dir.path(), &Progress::quiet()), Err(BuildError::Layout(_))));
        let file_as_dir = dir.path().join("file");
        std::fs::write(&file_as_dir, b"x").unwrap();
        let ok = spec(json!({"diskSize": 32}));
        assert!(matches!(build(&ok, &file_as_dir, &Progress::quiet()), Err(BuildError::Output(_))));
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("file")]);
    }
}
