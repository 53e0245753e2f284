//! The partition geometry of the seven layouts, exactly as the seed's parted and sgdisk
//! commands lay them out, every partition's IDs, and disk sizing.
//!
//! Facts measured with parted 3.5 and sgdisk 1.0.9 (Debian 12) on sparse files, and checked
//! again by the seed-command comparison test (builder/tests/seed_compare.rs):
//! - `mkpart ... 8MiB $bootSizeMiB`: IEC units are exact; the end sector is the one before.
//! - `100%` on MBR ends at the disk's last sector (our disks are whole MiB).
//! - `100%` on GPT: parted reads "100%" as a range of +/- half a percent of the disk and picks
//!   the last 1MiB-aligned end inside it that is still usable (before the backup GPT); if there
//!   is none (disks under about 205 MiB) the end is the last usable sector, `L - 34`.
//! - hybrid's `mkpart no-fs 0 1024KiB` becomes sectors 34..=2048 (start moved to the first
//!   usable sector; end 2048, not 2047).
//! - Types: `boot on` on GPT = ESP C12A7328-..., `bios_grub` = 21686148-..., `bls_boot` =
//!   XBOOTLDR BC13C2FF-..., `ext4` = Linux data 0FC63DAF-...; no GPT attribute bits are set.
//!   MBR: `fat32` = 0x0c, `ext4` = 0x83, `boot on` = active flag 0x80.

use crate::ids::{self, Guid, IdSource, RandomError};
use crate::spec::{DiskSize, Spec};
use serde::Serialize;

pub const SECTOR: u64 = 512;
pub const MIB: u64 = 1 << 20;
const MIB_SECTORS: u64 = MIB / SECTOR;
/// Sectors the GPT array plus header take at each end: 1 header + 32 array sectors (128 entries).
const GPT_TAIL_SECTORS: u64 = 33;
/// The first sector a GPT partition may use: protective MBR, header, 32 array sectors.
pub const GPT_FIRST_USABLE: u64 = 34;

pub const TYPE_ESP: Guid = guid_const("C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
pub const TYPE_BIOS_BOOT: Guid = guid_const("21686148-6449-6E6F-744E-656564454649");
pub const TYPE_XBOOTLDR: Guid = guid_const("BC13C2FF-59E6-4262-A352-B275FD6F7172");
pub const TYPE_LINUX_DATA: Guid = guid_const("0FC63DAF-8483-4772-8E79-3D69D8477DE4");
pub const MBR_TYPE_FAT32_LBA: u8 = 0x0c;
pub const MBR_TYPE_LINUX: u8 = 0x83;

/// A GUID literal, checked at compile time.
const fn guid_const(s: &str) -> Guid {
    let b = s.as_bytes();
    let mut out = [0u8; 16];
    let mut i = 0;
    let mut n = 0;
    while i < b.len() {
        if b[i] != b'-' {
            let v = match b[i] {
                b'0'..=b'9' => b[i] - b'0',
                b'A'..=b'F' => b[i] - b'A' + 10,
                _ => panic!("GUID literals are upper-case hex"),
            };
            out[n / 2] |= if n % 2 == 0 { v << 4 } else { v };
            n += 1;
        }
        i += 1;
    }
    assert!(n == 32, "a GUID literal has 32 hex digits");
    Guid(out)
}

/// `partitionTableType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Layout {
    /// MBR, ext4 from 1MiB to the end.
    #[serde(rename = "legacy")]
    Legacy,
    /// MBR, FAT /boot from 1MiB to bootSize (active), ext4 after it.
    #[serde(rename = "legacy+boot")]
    LegacyBoot,
    /// GPT, bios_grub 1-2MiB, ext4 from 2MiB.
    #[serde(rename = "legacy+gpt")]
    LegacyGpt,
    /// GPT, ESP 8MiB to bootSize, ext4 after it.
    #[serde(rename = "efi")]
    Efi,
    /// GPT, ESP 8-100MiB, XBOOTLDR 100MiB to bootSize, ext4 after it.
    #[serde(rename = "efixbootldr")]
    EfiXbootldr,
    /// GPT, ESP 8MiB to bootSize, bios_grub before 1MiB, ext4 after the ESP.
    #[serde(rename = "hybrid")]
    Hybrid,
    /// No partition table: the disk is the ext4 filesystem.
    #[serde(rename = "none")]
    None,
}

impl Layout {
    pub const ALL: [Layout; 7] = [
        Layout::Legacy,
        Layout::LegacyBoot,
        Layout::LegacyGpt,
        Layout::Efi,
        Layout::EfiXbootldr,
        Layout::Hybrid,
        Layout::None,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Layout::Legacy => "legacy",
            Layout::LegacyBoot => "legacy+boot",
            Layout::LegacyGpt => "legacy+gpt",
            Layout::Efi => "efi",
            Layout::EfiXbootldr => "efixbootldr",
            Layout::Hybrid => "hybrid",
            Layout::None => "none",
        }
    }

    pub fn table(self) -> TableKind {
        match self {
            Layout::Legacy | Layout::LegacyBoot => TableKind::Mbr,
            Layout::None => TableKind::None,
            _ => TableKind::Gpt,
        }
    }

    pub fn is_gpt(self) -> bool {
        self.table() == TableKind::Gpt
    }

    /// The root partition's number as the seed defines it (`rootPartition`); `None` for "none".
    pub fn root_partition(self) -> Option<u32> {
        match self {
            Layout::Legacy => Some(1),
            Layout::LegacyBoot | Layout::LegacyGpt | Layout::Efi => Some(2),
            Layout::EfiXbootldr | Layout::Hybrid => Some(3),
            Layout::None => None,
        }
    }

    /// Whether `bootSize` means anything for this layout.
    pub fn uses_boot_size(self) -> bool {
        matches!(self, Layout::LegacyBoot | Layout::Efi | Layout::EfiXbootldr | Layout::Hybrid)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    Mbr,
    Gpt,
    None,
}

/// What a partition is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// GRUB's BIOS boot partition (core.img lives here); no filesystem.
    BiosBoot,
    /// The EFI system partition (FAT).
    Esp,
    /// The Boot Loader Specification's extended boot partition (FAT).
    Xbootldr,
    /// legacy+boot's FAT /boot partition.
    Boot,
    /// The ext4 root filesystem.
    Root,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GptEntry {
    pub type_guid: Guid,
    pub partition_guid: Guid,
    pub name: &'static str,
    pub attributes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MbrEntry {
    pub system_id: u8,
    pub bootable: bool,
}

/// The filesystem a partition will hold and whether reprodisk writes it yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Content {
    /// Raw space (bios_grub).
    None,
    /// A FAT filesystem with this label and volume ID.
    Fat { label: &'static str, volume_id: u32 },
    /// The ext4 root filesystem.
    Ext4 { label: String, uuid: Option<Guid> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// 1-based table index.
    pub number: u32,
    pub role: Role,
    pub start_lba: u64,
    /// Inclusive, as GPT and parted count.
    pub end_lba: u64,
    pub gpt: Option<GptEntry>,
    pub mbr: Option<MbrEntry>,
    pub content: Content,
}

impl Partition {
    pub fn sectors(&self) -> u64 {
        self.end_lba - self.start_lba + 1
    }
    pub fn byte_range(&self) -> std::ops::Range<u64> {
        self.start_lba * SECTOR..(self.end_lba + 1) * SECTOR
    }
}

/// How the disk size was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sizing {
    /// `diskSize` in MiB.
    Fixed { mib: u64 },
    /// The seed's "auto" formula: filesystem bytes + additionalSpace + reserved space, rounded
    /// up a MiB (always adding one: the seed's `round_to_nearest` is `(x/MiB + 1)*MiB`).
    SeedAuto { filesystem_bytes: u64, additional_space: u64, reserved_space: u64 },
    /// "auto" from the exact bytes the root filesystem needs: the smallest whole-MiB disk
    /// whose root partition holds them plus additionalSpace.
    ExactAuto { filesystem_bytes: u64, additional_space: u64 },
}

/// What "auto" sizing is given about the root filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootFsBytes {
    /// The seed's `requiredFilesystemSpace` (du + 2 blocks per inode + 5.2%), see [`seed_estimate`].
    SeedEstimate(u64),
    /// The bytes the ext4 writer needs exactly.
    Exact(u64),
}

/// The whole disk: size, table, IDs and partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub layout: Layout,
    pub table: TableKind,
    pub disk_bytes: u64,
    pub sector_size: u64,
    pub sizing: Sizing,
    /// bootSize after the seed's rounding: the end offset of the boot partition.
    pub boot_size_rounded: Option<u64>,
    pub disk_guid: Option<Guid>,
    pub mbr_disk_signature: Option<u32>,
    pub partitions: Vec<Partition>,
    /// Byte range of the root filesystem (the root partition, or the whole disk for "none").
    pub root_offset: u64,
    pub root_bytes: u64,
    pub root_partition: Option<u32>,
    /// The root filesystem's UUID (`rootFSUID`, random with `deterministic = false`); `None`
    /// only when the seed leaves it to mkfs (deterministic = false without rootFSUID).
    pub root_fs_uuid: Option<Guid>,
}

impl Plan {
    pub fn root(&self) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.role == Role::Root)
    }
    pub fn total_sectors(&self) -> u64 {
        self.disk_bytes / SECTOR
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error(
        "bootSize rounds to {boot_mib} MiB, but layout {layout} puts the {what} from {start_mib} MiB to bootSize: set bootSize above {start_mib}M"
    )]
    BootTooSmall { layout: &'static str, what: &'static str, boot_mib: u64, start_mib: u64 },
    #[error(
        "diskSize {disk_mib} MiB is too small for layout {layout}: the root partition would start at sector {start} but the last usable sector is {end}; use a larger diskSize"
    )]
    DiskTooSmall { layout: &'static str, disk_mib: u64, start: u64, end: u64 },
    #[error(
        "diskSize is {disk_mib} MiB: an MBR can address at most 2 TiB; use a GPT layout (legacy+gpt, efi, efixbootldr, hybrid)"
    )]
    MbrTooLarge { disk_mib: u64 },
    #[error("diskSize = \"auto\" needs the root filesystem's size, which is not known yet")]
    AutoNeedsSize,
    #[error("disk size overflows: {0}")]
    Overflow(&'static str),
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// The seed's `round_to_nearest`: `(x / unit + 1) * unit`, which adds a unit even when `x` is
/// already a multiple (so bootSize "256M" becomes 257 MiB).
pub fn seed_round(x: u64, unit: u64) -> u64 {
    (x / unit + 1) * unit
}

/// The seed's `requiredFilesystemSpace` for "auto": `usage_blocks` is the sum over every
/// non-directory entry of its apparent size in 4 KiB blocks rounded up (hard links counted
/// each time), `entries` the number of paths including the root. Each entry gets two more
/// blocks, then 5.2% is added and the result rounded (seed-style) to 4 KiB.
pub fn seed_estimate(usage_blocks: u64, entries: u64) -> u64 {
    let usage = (usage_blocks + 2 * entries) * 4096;
    let fudge = usage * 52 / 1000;
    seed_round(usage + fudge, 4096)
}

/// The seed's `reservedSpace` for "auto": what lies outside the root partition.
pub fn seed_reserved_space(layout: Layout, boot_size_rounded: u64) -> u64 {
    let gpt_space = 512 * 34;
    match layout {
        Layout::Efi | Layout::EfiXbootldr | Layout::Hybrid => gpt_space + boot_size_rounded,
        Layout::LegacyGpt => gpt_space + 2 * MIB,
        Layout::Legacy => MIB,
        Layout::LegacyBoot => boot_size_rounded,
        Layout::None => 0,
    }
}

/// Where parted ends a GPT partition given as `100%` on a disk of `total` sectors that
/// starts at `start` (see the module comment).
pub fn parted_gpt_end_100(total: u64, start: u64) -> u64 {
    let last_usable = total - GPT_FIRST_USABLE;
    let unit = total * SECTOR / 100; // ped_unit_get_size(PERCENT), integer bytes
    let radius = (unit.div_ceil(SECTOR) / 2).saturating_sub(1);
    let wanted = ((100.0 * unit as f64) / SECTOR as f64) as u64;
    let aligned = ((last_usable + 1) / MIB_SECTORS * MIB_SECTORS).checked_sub(1);
    match aligned {
        Some(a) if a + radius >= wanted && a > start => a,
        _ => last_usable,
    }
}

/// Plans the disk for `spec`. `root_fs` is needed only when `diskSize = "auto"`.
pub fn plan(spec: &Spec, root_fs: Option<RootFsBytes>) -> Result<Plan, LayoutError> {
    let layout = spec.partition_table_type;
    let boot = seed_round(spec.boot_size, MIB);
    let (disk_bytes, sizing) = match (spec.disk_size, root_fs) {
        (DiskSize::Mib(mib), _) => {
            (mib.checked_mul(MIB).ok_or(LayoutError::Overflow("diskSize"))?, Sizing::Fixed { mib })
        }
        (DiskSize::Auto, None) => return Err(LayoutError::AutoNeedsSize),
        (DiskSize::Auto, Some(RootFsBytes::SeedEstimate(fs))) => {
            let reserved = seed_reserved_space(layout, boot);
            let sum = fs
                .checked_add(spec.additional_space)
                .and_then(|x| x.checked_add(reserved))
                .ok_or(LayoutError::Overflow("auto size"))?;
            (
                seed_round(sum, MIB),
                Sizing::SeedAuto {
                    filesystem_bytes: fs,
                    additional_space: spec.additional_space,
                    reserved_space: reserved,
                },
            )
        }
        (DiskSize::Auto, Some(RootFsBytes::Exact(fs))) => {
            let need = fs.checked_add(spec.additional_space).ok_or(LayoutError::Overflow("auto size"))?;
            let sizing = Sizing::ExactAuto { filesystem_bytes: fs, additional_space: spec.additional_space };
            // Start from the reserved space and grow a MiB at a time: parted's end rule is not
            // monotonic enough to invert, and a few iterations are cheap.
            let mut mib = (need + seed_reserved_space(layout, boot)).div_ceil(MIB).max(1);
            loop {
                let p = geometry(spec, layout, boot, mib * MIB, sizing.clone());
                if p.is_ok_and(|p| p.root_bytes >= need) {
                    break;
                }
                mib += 1;
                if mib > (1 << 40) {
                    return Err(LayoutError::Overflow("auto size"));
                }
            }
            (mib * MIB, sizing)
        }
    };
    geometry(spec, layout, boot, disk_bytes, sizing)
}

fn geometry(
    spec: &Spec,
    layout: Layout,
    boot: u64,
    disk_bytes: u64,
    sizing: Sizing,
) -> Result<Plan, LayoutError> {
    let ids = IdSource::from_deterministic(spec.deterministic);
    let total = disk_bytes / SECTOR;
    let disk_mib = disk_bytes / MIB;
    let boot_lba = boot / SECTOR;
    let name = layout.name();
    let root_guid = ids.guid(spec.root_gpuid)?;
    let p1_guid = ids.guid(ids::SEED_PARTITION1_GUID)?;
    let p2_guid = ids.guid(ids::SEED_PARTITION2_GUID)?;
    // The ext4 UUID is rootFSUID, or random like every other ID when deterministic = false.
    let fs_uuid = match spec.root_fsuid {
        Some(u) => Some(ids.guid(u)?),
        None => Some(ids.guid(spec.root_gpuid)?).filter(|_| !spec.deterministic),
    };
    let ext4 = Content::Ext4 { label: spec.label.clone(), uuid: fs_uuid };
    let fat = |label, n| -> Result<Content, LayoutError> {
        Ok(Content::Fat { label, volume_id: ids.fat_volume_id(n, spec.root_gpuid)? })
    };
    let gpt =
        |type_guid, partition_guid, name| Some(GptEntry { type_guid, partition_guid, name, attributes: 0 });
    let mbr = |system_id, bootable| Some(MbrEntry { system_id, bootable });
    let part = |number, role, start_lba, end_lba, gpt, mbr, content| Partition {
        number,
        role,
        start_lba,
        end_lba,
        gpt,
        mbr,
        content,
    };
    let need_boot_above = |start_mib: u64, what| {
        if boot_lba <= start_mib * MIB_SECTORS {
            Err(LayoutError::BootTooSmall { layout: name, what, boot_mib: boot / MIB, start_mib })
        } else {
            Ok(())
        }
    };
    let too_small = |start: u64, end: u64| LayoutError::DiskTooSmall { layout: name, disk_mib, start, end };
    // The root partition runs to `100%`; it must hold at least one sector past its start.
    let root_end = |start: u64| -> Result<u64, LayoutError> {
        let end = match layout.table() {
            TableKind::Gpt => {
                if total < start + GPT_TAIL_SECTORS + 2 {
                    return Err(too_small(start, total.saturating_sub(GPT_FIRST_USABLE)));
                }
                parted_gpt_end_100(total, start)
            }
            _ => total.saturating_sub(1),
        };
        if end <= start { Err(too_small(start, end)) } else { Ok(end) }
    };
    // Every GPT layout but legacy+gpt opens with the seed's ESP from 8 MiB.
    let esp = |end_lba| -> Result<Partition, LayoutError> {
        Ok(part(1, Role::Esp, 8 * MIB_SECTORS, end_lba, gpt(TYPE_ESP, p1_guid, "ESP"), None, fat("ESP", 1)?))
    };
    // The GPT root partition: Linux data from `start` to parted's `100%`.
    let gpt_root = |number, start, name| -> Result<Partition, LayoutError> {
        let entry = gpt(TYPE_LINUX_DATA, root_guid, name);
        Ok(part(number, Role::Root, start, root_end(start)?, entry, None, ext4.clone()))
    };
    if layout.table() == TableKind::Mbr && total > u64::from(u32::MAX) {
        return Err(LayoutError::MbrTooLarge { disk_mib });
    }

    let partitions = match layout {
        Layout::Legacy => vec![part(
            1,
            Role::Root,
            MIB_SECTORS,
            root_end(MIB_SECTORS)?,
            None,
            mbr(MBR_TYPE_LINUX, false),
            ext4.clone(),
        )],
        Layout::LegacyBoot => {
            need_boot_above(1, "FAT /boot partition")?;
            vec![
                part(
                    1,
                    Role::Boot,
                    MIB_SECTORS,
                    boot_lba - 1,
                    None,
                    mbr(MBR_TYPE_FAT32_LBA, true),
                    fat("BOOT", 1)?,
                ),
                part(
                    2,
                    Role::Root,
                    boot_lba,
                    root_end(boot_lba)?,
                    None,
                    mbr(MBR_TYPE_LINUX, false),
                    ext4.clone(),
                ),
            ]
        }
        Layout::LegacyGpt => vec![
            part(
                1,
                Role::BiosBoot,
                MIB_SECTORS,
                2 * MIB_SECTORS - 1,
                gpt(TYPE_BIOS_BOOT, p1_guid, "no-fs"),
                None,
                Content::None,
            ),
            // Deliberate difference from the seed: it sets rootGPUID on a partition 3 that does
            // not exist, leaving 970C694F-... here; we give the root partition rootGPUID.
            gpt_root(2, 2 * MIB_SECTORS, "primary")?,
        ],
        Layout::Efi => {
            need_boot_above(8, "ESP")?;
            vec![esp(boot_lba - 1)?, gpt_root(2, boot_lba, "primary")?]
        }
        Layout::EfiXbootldr => {
            need_boot_above(100, "XBOOTLDR partition")?;
            vec![
                esp(100 * MIB_SECTORS - 1)?,
                part(
                    2,
                    Role::Xbootldr,
                    100 * MIB_SECTORS,
                    boot_lba - 1,
                    gpt(TYPE_XBOOTLDR, p2_guid, "BOOT"),
                    None,
                    fat("BOOT", 2)?,
                ),
                gpt_root(3, boot_lba, "ROOT")?,
            ]
        }
        Layout::Hybrid => {
            need_boot_above(8, "ESP")?;
            vec![
                esp(boot_lba - 1)?,
                part(
                    2,
                    Role::BiosBoot,
                    GPT_FIRST_USABLE,
                    MIB_SECTORS,
                    gpt(TYPE_BIOS_BOOT, p2_guid, "no-fs"),
                    None,
                    Content::None,
                ),
                gpt_root(3, boot_lba, "primary")?,
            ]
        }
        Layout::None => Vec::new(),
    };
    let (root_offset, root_bytes) = match partitions.iter().find(|p| p.role == Role::Root) {
        Some(r) => (r.start_lba * SECTOR, r.sectors() * SECTOR),
        None => (0, disk_bytes),
    };
    let table = layout.table();
    Ok(Plan {
        layout,
        table,
        disk_bytes,
        sector_size: SECTOR,
        sizing,
        boot_size_rounded: layout.uses_boot_size().then_some(boot),
        disk_guid: match table {
            TableKind::Gpt => Some(ids.guid(spec.disk_guid)?),
            _ => None,
        },
        mbr_disk_signature: match table {
            TableKind::Mbr => Some(ids.mbr_disk_signature(spec.root_gpuid)?),
            _ => None,
        },
        partitions,
        root_offset,
        root_bytes,
        root_partition: layout.root_partition(),
        root_fs_uuid: fs_uuid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    fn spec(v: serde_json::Value) -> Spec {
        Spec::from_value(v, Path::new("."), None).unwrap()
    }

    /// (start, end) of every partition for a 300 MiB disk, bootSize 256M, as measured with the
    /// seed's parted + sgdisk lines (`sfdisk --json`).
    #[test]
    fn geometry_matches_measured_parted() {
        let cases: [(&str, &[(u64, u64)]); 6] = [
            ("legacy", &[(2048, 614399)]),
            ("legacy+boot", &[(2048, 526335), (526336, 614399)]),
            ("legacy+gpt", &[(2048, 4095), (4096, 612351)]),
            ("efi", &[(16384, 526335), (526336, 612351)]),
            ("efixbootldr", &[(16384, 204799), (204800, 526335), (526336, 612351)]),
            ("hybrid", &[(16384, 526335), (34, 2048), (526336, 612351)]),
        ];
        for (layout, want) in cases {
            let p = plan(&spec(json!({"partitionTableType": layout, "diskSize": 300})), None).unwrap();
            let got: Vec<(u64, u64)> = p.partitions.iter().map(|p| (p.start_lba, p.end_lba)).collect();
            assert_eq!(got, want, "{layout}");
        }
    }

    #[test]
    fn gpt_end_rule_matches_measured_parted() {
        // (disk MiB, root start, measured end) from parted 3.5 `mkpart primary ext4 2MiB 100%`.
        for (mib, start, end) in [
            (4, 4096, 8158),
            (5, 4096, 10206),
            (10, 4096, 20446),
            (17, 4096, 34782),
            (100, 4096, 204766),
            (300, 4096, 612351),
            (1000, 4096, 2045951),
        ] {
            assert_eq!(parted_gpt_end_100(mib * MIB_SECTORS, start), end, "{mib} MiB");
        }
    }

    #[test]
    fn boot_size_is_rounded_like_the_seed() {
        assert_eq!(seed_round(256 * MIB, MIB), 257 * MIB);
        assert_eq!(seed_round(256 * MIB - 1, MIB), 256 * MIB);
        let p = plan(&spec(json!({"partitionTableType": "efi", "diskSize": 600, "bootSize": "512M"})), None)
            .unwrap();
        assert_eq!(p.partitions[1].start_lba, 513 * MIB_SECTORS);
    }

    #[test]
    fn too_small_is_an_error() {
        assert!(matches!(
            plan(&spec(json!({"partitionTableType": "efi", "diskSize": 200})), None),
            Err(LayoutError::DiskTooSmall { .. })
        ));
        assert!(matches!(
            plan(&spec(json!({"partitionTableType": "efi", "diskSize": 200, "bootSize": "7M"})), None),
            Err(LayoutError::BootTooSmall { .. })
        ));
        assert!(matches!(
            plan(
                &spec(json!({"partitionTableType": "efixbootldr", "diskSize": 400, "bootSize": "99M"})),
                None
            ),
            Err(LayoutError::BootTooSmall { .. })
        ));
        assert!(matches!(
            plan(&spec(json!({"partitionTableType": "legacy+gpt", "diskSize": 2})), None),
            Err(LayoutError::DiskTooSmall { .. })
        ));
    }

    #[test]
    fn auto_sizing() {
        let s = spec(json!({"partitionTableType": "efi"}));
        assert!(matches!(plan(&s, None), Err(LayoutError::AutoNeedsSize)));
        let fs = seed_estimate(10, 5);
        assert_eq!(fs, seed_round((10 + 10) * 4096 + (20 * 4096) * 52 / 1000, 4096));
        let p = plan(&s, Some(RootFsBytes::SeedEstimate(fs))).unwrap();
        assert_eq!(p.disk_bytes, seed_round(fs + 512 * MIB + 512 * 34 + 257 * MIB, MIB));
        let p = plan(&s, Some(RootFsBytes::Exact(100 * MIB))).unwrap();
        assert!(p.root_bytes >= 612 * MIB);
        let smaller = Spec { disk_size: DiskSize::Mib(p.disk_bytes / MIB - 1), ..s.clone() };
        assert!(
            plan(&smaller, None).map(|q| q.root_bytes < 612 * MIB).unwrap_or(true),
            "the exact size is the smallest"
        );
    }

    #[test]
    fn ids_follow_architecture() {
        let p = plan(&spec(json!({"partitionTableType": "legacy+gpt", "diskSize": 10})), None).unwrap();
        assert_eq!(p.disk_guid, Some(ids::SEED_DISK_GUID));
        assert_eq!(p.partitions[1].gpt.as_ref().unwrap().partition_guid, ids::SEED_ROOT_GPUID);
        let p = plan(&spec(json!({"partitionTableType": "legacy", "diskSize": 10})), None).unwrap();
        assert_eq!(p.mbr_disk_signature, Some(0xa0f2_85fb));
        let a =
            plan(&spec(json!({"partitionTableType": "efi", "diskSize": 300, "deterministic": false})), None)
                .unwrap();
        let b =
            plan(&spec(json!({"partitionTableType": "efi", "diskSize": 300, "deterministic": false})), None)
                .unwrap();
        assert_ne!(a.disk_guid, b.disk_guid);
    }
}
