//! The boot plan of a build: the files of every FAT partition (loader, configs, kernel, initrd), each planned as a FAT filesystem, and the ESP facts EFI variables need.
//!
//! Which loader (README, "system table"):
//! - `efi`, `efixbootldr`: systemd-boot unless `bootloader = "grub"`.
//! - `hybrid`: GRUB EFI unless `bootloader = "systemd-boot"` (`auto` picks GRUB so that one
//!   grub.cfg on the ESP serves both firmware sides; GRUB BIOS's i386-pc folder joins it).
//! - BIOS layouts: GRUB BIOS (`grub_bios`). It reads the ext4 root on `legacy` and
//!   `legacy+gpt`; on `legacy+boot` it reads the FAT /boot (label `BOOT`, mounted at /boot as
//!   the seed mounts it), which holds:
//!
//!   | path on the FAT | what |
//!   | --- | --- |
//!   | `/vmlinuz-<version>`, `/initrd.img-<version>` | the kernel and initrd, under their own names |
//!   | `/grub/grub.cfg` | one entry: `search --fs-uuid` for this FAT's volume ID (`xxxx-xxxx`), `linux` and `initrd` by their paths on this FAT, `root=` from the deterministic IDs |
//!   | `/grub/i386-pc/` | normal.mod and the rest of GRUB (`grub_bios::runtime`) |
//!
//!   core.img (in the MBR gap) carries part_msdos and fat and has the prefix `/grub`.
//! - `installBootLoader = false` (or no `system` table): every FAT filesystem is written,
//!   empty, and no loader or kernel is installed.
//!
//! The kernel and initrd are copied to the root of the partition the entries live on: the
//! ESP, XBOOTLDR on `efixbootldr`, the FAT /boot on `legacy+boot`. The root tree's `/boot` is
//! not changed.

use super::grub_bios::install::FAT_BOOT_GRUB_DIR;
use super::grub_cfg::{self, GrubEntry};
use super::inputs::{self, InputError, PackageRoots, UsedInput};
use super::kernel::{self, BootFileRecord, KernelError, KernelSet};
use super::{grub_efi, systemd_boot};
use crate::fs::fat::{self, FatError, FatOptions, FatPlan, FatTree, FatType, FileData};
use crate::ids::Guid;
use crate::layout::{Content, Layout, MIB, Plan, Role, SECTOR};
use crate::spec::{Bootloader, Spec};
use crate::tree::FsTree;
use crate::tree::passwd::read_image_file;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("FAT filesystem {label} on partition {partition}: {error}")]
    Fat { label: &'static str, partition: u32, error: FatError },
    #[error("FAT filesystem {label} on partition {partition}: {error}; {hint}")]
    TooSmall { label: &'static str, partition: u32, error: FatError, hint: String },
    #[error(
        "system.bootloader = \"systemd-boot\" needs a UEFI layout (efi, efixbootldr or hybrid), not \"{0}\": use \"grub\" or \"auto\""
    )]
    SystemdBootOnBios(&'static str),
}

/// The UEFI loader installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UefiLoader {
    SystemdBoot,
    GrubEfi,
}

/// What EFI variables need to name the installed loader (`Boot0000`'s `HD()` node and file path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EspFacts {
    pub partition_number: u32,
    pub start_lba: u64,
    pub size_lba: u64,
    pub partition_guid: Guid,
    /// The loader as a UEFI file path, e.g. `\EFI\systemd\systemd-bootx64.efi`.
    pub loader_path: String,
    pub loader: UefiLoader,
}

/// One FAT partition's files and plan.
#[derive(Debug, Clone)]
pub struct FatPartition {
    pub number: u32,
    pub role: Role,
    pub label: &'static str,
    pub offset: u64,
    pub tree: FatTree,
    pub plan: FatPlan,
}

/// What `plan` and the manifest show about one FAT filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FatReport {
    pub partition: u32,
    pub label: &'static str,
    pub fat_type: FatType,
    pub cluster_bytes: u64,
    /// As blkid prints it, `XXXX-XXXX`.
    pub volume_id: String,
    pub free_clusters: u32,
    pub files: Vec<FatFileReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FatFileReport {
    pub path: String,
    pub bytes: u64,
}

/// The boot part of `plan`'s and the manifest's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct BootReport {
    pub loader: Option<UefiLoader>,
    pub kernel: Option<BootFileRecord>,
    pub initrd: Option<BootFileRecord>,
    pub cmdline: Option<String>,
    pub esp: Option<EspFacts>,
    pub fat: Vec<FatReport>,
    /// Boot-loader inputs from the package roots, with their sha256.
    pub inputs: Vec<UsedInput>,
}

/// Everything the build writes for booting.
#[derive(Debug, Clone, Default)]
pub struct BootPlan {
    pub fat: Vec<FatPartition>,
    pub kernel: Option<KernelSet>,
    pub report: BootReport,
    /// What is still not written (empty: every layout's boot loader is written).
    pub pending: Vec<String>,
}

/// The loader `spec` asks for, `None` for BIOS layouts and without a boot loader.
pub fn uefi_loader(spec: &Spec) -> Result<Option<UefiLoader>, BootError> {
    let Some(system) = spec.system.as_ref().filter(|_| spec.install_boot_loader) else { return Ok(None) };
    let layout = spec.partition_table_type;
    Ok(match (layout, system.bootloader) {
        (Layout::Efi | Layout::EfiXbootldr, Bootloader::Auto | Bootloader::SystemdBoot) => {
            Some(UefiLoader::SystemdBoot)
        }
        (Layout::Hybrid, Bootloader::SystemdBoot) => Some(UefiLoader::SystemdBoot),
        (Layout::Efi | Layout::EfiXbootldr | Layout::Hybrid, _) => Some(UefiLoader::GrubEfi),
        (_, Bootloader::SystemdBoot) => return Err(BootError::SystemdBootOnBios(layout.name())),
        _ => None,
    })
}

/// The entry title: the root tree's `PRETTY_NAME`, else `Linux <version>`.
pub fn title(tree: &FsTree, k: &KernelSet) -> String {
    let pretty = ["/etc/os-release", "/usr/lib/os-release"].iter().find_map(|p| {
        let text = String::from_utf8(read_image_file(tree, p).ok()??).ok()?;
        text.lines().find_map(|l| {
            let v = l.strip_prefix("PRETTY_NAME=")?.trim().trim_matches('"').to_string();
            (!v.is_empty()).then_some(v)
        })
    });
    pretty.unwrap_or_else(|| format!("Linux {}", k.version.as_deref().unwrap_or("")).trim_end().to_string())
}

/// Plans every FAT partition of `plan` with the boot files `spec` asks for.
pub fn plan(spec: &Spec, plan: &Plan, tree: &FsTree) -> Result<BootPlan, BootError> {
    plan_with(spec, plan, tree, Vec::new())
}

/// [`plan`] with `grub_bios_files` (path, bytes) added to the FAT partition GRUB BIOS reads:
/// its `i386-pc` folder on hybrid's ESP or on legacy+boot's FAT /boot.
pub fn plan_with(
    spec: &Spec,
    plan: &Plan,
    tree: &FsTree,
    grub_bios_files: Vec<(String, Vec<u8>)>,
) -> Result<BootPlan, BootError> {
    let loader = uefi_loader(spec)?;
    let mut trees: Vec<(u32, Role, &'static str, u32, FatTree)> = Vec::new();
    for p in &plan.partitions {
        if let Content::Fat { label, volume_id } = &p.content {
            trees.push((p.number, p.role, label, *volume_id, FatTree::new()));
        }
    }
    // A layout has an ESP or a FAT /boot, never both.
    if let Some(t) = trees.iter_mut().find(|t| matches!(t.1, Role::Esp | Role::Boot)) {
        for (path, bytes) in grub_bios_files {
            let data = FileData::Bytes(std::sync::Arc::from(bytes));
            t.4.add_file(&path, data).map_err(|error| BootError::Fat {
                label: t.2,
                partition: t.0,
                error,
            })?;
        }
    }
    let mut out = BootPlan::default();
    let layout = spec.partition_table_type;
    // Where the kernel, the initrd and the loader's entry go: the ESP (XBOOTLDR on
    // efixbootldr) for a UEFI loader, legacy+boot's FAT /boot for GRUB BIOS.
    let installs = spec.install_boot_loader && spec.system.is_some();
    let entry_role = match (loader, layout) {
        (Some(_), Layout::EfiXbootldr) => Some(Role::Xbootldr),
        (Some(_), _) => Some(Role::Esp),
        (None, Layout::LegacyBoot) if installs => Some(Role::Boot),
        (None, _) => None,
    };
    if let (Some(entry_role), Some(system)) = (entry_role, &spec.system) {
        let k = kernel::find(spec, system, tree, plan)?;
        let roots = PackageRoots::new(spec.package_root.as_ref().map(|p| p.resolved.as_path()));
        let linux = format!("/{}", k.kernel.name);
        let initrd = k.initrd.as_ref().map(|i| format!("/{}", i.name));
        let title = title(tree, &k);
        let cmdline = k.cmdline();
        let find = |role: Role| trees.iter().position(|t| t.1 == role);
        let esp_i = find(Role::Esp);
        // Every layout with an entry role has that FAT partition (and an ESP with a UEFI loader).
        let Some(entry_i) = find(entry_role) else { unreachable!("the entry partition is in the plan") };
        let fat_err = |t: &(u32, Role, &'static str, u32, FatTree), error| BootError::Fat {
            label: t.2,
            partition: t.0,
            error,
        };
        let entry_volume = trees[entry_i].3;
        {
            let t = &mut trees[entry_i];
            let r = t.4.add_file(&linux, k.kernel.data.clone()).and_then(|_| match (&initrd, &k.initrd) {
                (Some(p), Some(i)) => t.4.add_file(p, i.data.clone()),
                _ => Ok(()),
            });
            r.map_err(|e| fat_err(t, e))?;
        }
        let grub_entry = || GrubEntry {
            title: title.clone(),
            fs_uuid: grub_cfg::fat_uuid(entry_volume),
            linux: linux.clone(),
            initrd: initrd.clone(),
            cmdline: cmdline.clone(),
        };
        let uefi = match loader {
            Some(UefiLoader::SystemdBoot) => {
                let used = roots.find(inputs::SYSTEMD_BOOT_EFI)?;
                let entry = systemd_boot::entry_conf(&systemd_boot::Entry {
                    title: &title,
                    version: k.version.as_deref(),
                    linux: &linux,
                    initrd: initrd.as_deref(),
                    options: &cmdline,
                });
                let t = &mut trees[entry_i];
                t.4.add_file(&systemd_boot::entry_path(), entry.as_str().into())
                    .map_err(|e| fat_err(t, e))?;
                let Some(esp_i) = esp_i else { unreachable!("UEFI layouts have an ESP") };
                let t = &mut trees[esp_i];
                for (path, data) in systemd_boot::esp_files(&used) {
                    t.4.add_file(&path, data).map_err(|e| fat_err(t, e))?;
                }
                Some((used, systemd_boot::LOADER_PATH, UefiLoader::SystemdBoot))
            }
            Some(UefiLoader::GrubEfi) => {
                let used = roots.find(inputs::GRUB_EFI_MONOLITHIC)?;
                let cfg = grub_cfg::render(&grub_entry());
                let Some(esp_i) = esp_i else { unreachable!("UEFI layouts have an ESP") };
                let t = &mut trees[esp_i];
                for (path, data) in grub_efi::esp_files(&used, &cfg) {
                    t.4.add_file(&path, data).map_err(|e| fat_err(t, e))?;
                }
                Some((used, grub_efi::LOADER_PATH, UefiLoader::GrubEfi))
            }
            None => {
                // GRUB BIOS on legacy+boot: grub.cfg in its folder on the FAT /boot, where
                // core.img's prefix points; its i386-pc folder came in as `grub_bios_files`.
                let cfg = grub_cfg::render(&grub_entry());
                let t = &mut trees[entry_i];
                t.4.add_file(&format!("{FAT_BOOT_GRUB_DIR}/grub.cfg"), cfg.as_str().into())
                    .map_err(|e| fat_err(t, e))?;
                None
            }
        };
        if let Some((used, loader_path, loader)) = uefi {
            let esp_part = plan.partitions.iter().find(|p| p.role == Role::Esp);
            out.report.esp = esp_part.map(|p| EspFacts {
                partition_number: p.number,
                start_lba: p.start_lba,
                size_lba: p.sectors(),
                partition_guid: p.gpt.as_ref().map(|g| g.partition_guid).unwrap_or(Guid([0; 16])),
                loader_path: loader_path.replace('/', "\\"),
                loader,
            });
            out.report.loader = Some(loader);
            out.report.inputs.push(used);
        }
        out.report.kernel = Some(k.kernel.record());
        out.report.initrd = k.initrd.as_ref().map(|i| i.record());
        out.report.cmdline = Some(cmdline);
        out.kernel = Some(k);
    }
    for (number, role, label, volume_id, tree) in trees {
        // Every FAT partition's role is in the plan's list, which `trees` was built from.
        let Some(p) = plan.partitions.iter().find(|p| p.number == number) else { unreachable!() };
        let opts = FatOptions {
            label: label.to_string(),
            volume_id,
            hidden_sectors: p.start_lba.min(u32::MAX as u64) as u32,
            time: spec.source_date_epoch.value,
        };
        let bytes = p.sectors() * SECTOR;
        let fat_plan = match fat::plan(&tree, bytes, &opts) {
            Ok(f) => f,
            Err(error @ FatError::TooSmall { .. }) => {
                let hint = size_hint(spec, &tree, &opts, p.start_lba * SECTOR, role);
                return Err(BootError::TooSmall { label, partition: number, error, hint });
            }
            Err(error) => return Err(BootError::Fat { label, partition: number, error }),
        };
        out.report.fat.push(FatReport {
            partition: number,
            label,
            fat_type: fat_plan.geometry.fat_type,
            cluster_bytes: fat_plan.geometry.cluster_bytes(),
            volume_id: format!("{:04X}-{:04X}", volume_id >> 16, volume_id & 0xffff),
            free_clusters: fat_plan.free_clusters(),
            files: tree.files().into_iter().map(|(path, d)| FatFileReport { path, bytes: d.len() }).collect(),
        });
        out.fat.push(FatPartition {
            number,
            role,
            label,
            offset: p.start_lba * SECTOR,
            tree,
            plan: fat_plan,
        });
    }
    Ok(out)
}

/// Which `bootSize` would make the partition hold its files.
fn size_hint(spec: &Spec, tree: &FatTree, opts: &FatOptions, start: u64, role: Role) -> String {
    let bounded_by_boot_size = match (spec.partition_table_type, role) {
        (Layout::EfiXbootldr, Role::Esp) => false,
        (_, Role::Esp | Role::Xbootldr | Role::Boot) => true,
        _ => false,
    };
    if !bounded_by_boot_size {
        return "this partition has a fixed size in this layout (the efixbootldr ESP is 8-100 MiB): make the files smaller".into();
    }
    let start_mib = start / MIB;
    match fat::min_mib(tree, opts, 1 << 21) {
        // The seed rounds bootSize up with (x / MiB + 1) * MiB, so an end of E MiB is bootSize = E-1 MiB.
        Some(m) => format!(
            "set bootSize = \"{}M\" or more (the partition would end at {} MiB; bootSize is the END offset of the boot partition)",
            start_mib + m - 1,
            start_mib + m
        ),
        None => "the files do not fit any FAT partition reprodisk can write".into(),
    }
}
