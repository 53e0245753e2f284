//! Names the FAT structure and field that holds a given image byte: boot sector fields, FSInfo,
//! FAT entries, directory entry fields with the path they belong to, and file data. The
//! structural diff uses it to explain differing bytes.

use super::boot::FatType;
use super::dir::Tree;
use super::dirent::{ATTR_LONG_NAME, ATTR_LONG_NAME_MASK};
use super::{Fat, fsinfo};
use crate::bytes::ReadAt;
use serde::Serialize;

/// Where a byte lies: a structure (`"fat boot sector"`, `"fat 1"`, `"fat directory /EFI"`,
/// `"file /EFI/BOOT/BOOTX64.EFI"`) and, when the structure has fields, the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Region {
    pub structure: String,
    pub field: Option<String>,
}

impl Region {
    fn new(structure: impl Into<String>, field: Option<String>) -> Self {
        Region { structure: structure.into(), field }
    }
}

/// Fields shared by every boot sector, then the FAT12/16 and the FAT32 extended fields.
const BPB_COMMON: &[(usize, usize, &str)] = &[
    (0x00, 3, "BS_jmpBoot"),
    (0x03, 8, "BS_OEMName"),
    (0x0B, 2, "BPB_BytsPerSec"),
    (0x0D, 1, "BPB_SecPerClus"),
    (0x0E, 2, "BPB_RsvdSecCnt"),
    (0x10, 1, "BPB_NumFATs"),
    (0x11, 2, "BPB_RootEntCnt"),
    (0x13, 2, "BPB_TotSec16"),
    (0x15, 1, "BPB_Media"),
    (0x16, 2, "BPB_FATSz16"),
    (0x18, 2, "BPB_SecPerTrk"),
    (0x1A, 2, "BPB_NumHeads"),
    (0x1C, 4, "BPB_HiddSec"),
    (0x20, 4, "BPB_TotSec32"),
    (0x1FE, 2, "signature"),
];
const BPB_FAT16: &[(usize, usize, &str)] = &[
    (0x24, 1, "BS_DrvNum"),
    (0x25, 1, "BS_Reserved1"),
    (0x26, 1, "BS_BootSig"),
    (0x27, 4, "BS_VolID"),
    (0x2B, 11, "BS_VolLab"),
    (0x36, 8, "BS_FilSysType"),
];
const BPB_FAT32: &[(usize, usize, &str)] = &[
    (0x24, 4, "BPB_FATSz32"),
    (0x28, 2, "BPB_ExtFlags"),
    (0x2A, 2, "BPB_FSVer"),
    (0x2C, 4, "BPB_RootClus"),
    (0x30, 2, "BPB_FSInfo"),
    (0x32, 2, "BPB_BkBootSec"),
    (0x34, 12, "BPB_Reserved"),
    (0x40, 1, "BS_DrvNum"),
    (0x41, 1, "BS_Reserved1"),
    (0x42, 1, "BS_BootSig"),
    (0x43, 4, "BS_VolID"),
    (0x47, 11, "BS_VolLab"),
    (0x52, 8, "BS_FilSysType"),
];
const FSINFO: &[(usize, usize, &str)] = &[
    (0x000, 4, "FSI_LeadSig"),
    (0x004, 480, "FSI_Reserved1"),
    (0x1E4, 4, "FSI_StrucSig"),
    (0x1E8, 4, "FSI_Free_Count"),
    (0x1EC, 4, "FSI_Nxt_Free"),
    (0x1F0, 12, "FSI_Reserved2"),
    (0x1FC, 4, "FSI_TrailSig"),
];
const DIR_FIELDS: &[(usize, usize, &str)] = &[
    (0x00, 11, "DIR_Name"),
    (0x0B, 1, "DIR_Attr"),
    (0x0C, 1, "DIR_NTRes"),
    (0x0D, 1, "DIR_CrtTimeTenth"),
    (0x0E, 2, "DIR_CrtTime"),
    (0x10, 2, "DIR_CrtDate"),
    (0x12, 2, "DIR_LstAccDate"),
    (0x14, 2, "DIR_FstClusHI"),
    (0x16, 2, "DIR_WrtTime"),
    (0x18, 2, "DIR_WrtDate"),
    (0x1A, 2, "DIR_FstClusLO"),
    (0x1C, 4, "DIR_FileSize"),
];
const LDIR_FIELDS: &[(usize, usize, &str)] = &[
    (0x00, 1, "LDIR_Ord"),
    (0x01, 10, "LDIR_Name1"),
    (0x0B, 1, "LDIR_Attr"),
    (0x0C, 1, "LDIR_Type"),
    (0x0D, 1, "LDIR_Chksum"),
    (0x0E, 12, "LDIR_Name2"),
    (0x1A, 2, "LDIR_FstClusLO"),
    (0x1C, 4, "LDIR_Name3"),
];

fn field(table: &[(usize, usize, &'static str)], off: usize) -> Option<&'static str> {
    table.iter().find(|(o, l, _)| (*o..o + l).contains(&off)).map(|(_, _, n)| *n)
}

fn boot_field(fat32: bool, off: usize) -> String {
    let ext = if fat32 { BPB_FAT32 } else { BPB_FAT16 };
    field(BPB_COMMON, off).or_else(|| field(ext, off)).unwrap_or("boot code").to_string()
}

impl<R: ReadAt + ?Sized> Fat<'_, R> {
    /// Names the structure and field holding image byte `offset`, using `tree` (from
    /// [`Fat::walk`]) to tell which file or directory owns a cluster. `None` outside the volume.
    pub fn locate(&self, tree: &Tree, offset: u64) -> Option<Region> {
        let rel = offset.checked_sub(self.base)?;
        let g = &self.geometry;
        let b = &self.boot;
        if rel >= g.volume_bytes() {
            return None;
        }
        let bps = u64::from(g.bytes_per_sector);
        let fat32 = g.fat_type == FatType::Fat32;
        if rel < g.fat_offset {
            let sector = rel / bps;
            let in_sector = (rel % bps) as usize;
            if sector == 0 {
                return Some(Region::new("fat boot sector", Some(boot_field(fat32, in_sector))));
            }
            if fat32 && sector == u64::from(b.bpb_fs_info) {
                let f = field(FSINFO, in_sector).unwrap_or("past the fsinfo structure");
                return Some(Region::new(fsinfo::STRUCT, Some(f.to_string())));
            }
            if fat32 && sector == u64::from(b.bpb_bk_boot_sec) {
                return Some(Region::new("fat32 backup boot sector", Some(boot_field(true, in_sector))));
            }
            if fat32 && sector == u64::from(b.bpb_bk_boot_sec) + 1 {
                let f = field(FSINFO, in_sector).unwrap_or("past the fsinfo structure");
                return Some(Region::new("fat32 backup fsinfo sector", Some(f.to_string())));
            }
            return Some(Region::new("fat reserved sectors", Some(format!("sector {sector}"))));
        }
        let fat_bytes = u64::from(g.fat_size) * bps;
        let fats_end = g.fat_offset + fat_bytes * u64::from(b.bpb_num_fats);
        if rel < fats_end {
            let copy = (rel - g.fat_offset) / fat_bytes;
            let entry = (rel - g.fat_offset) % fat_bytes * 8 / u64::from(g.fat_type.bits());
            let what = if entry > u64::from(g.max_cluster()) {
                "unused tail".to_string()
            } else {
                format!("entry {entry}")
            };
            return Some(Region::new(format!("fat {copy}"), Some(what)));
        }
        if rel < g.data_offset {
            // The FAT12/16 root directory region.
            return Some(self.dir_slot(tree, "", rel - g.root_dir_offset, rel));
        }
        let bpc = u64::from(g.bytes_per_cluster);
        let cluster = ((rel - g.data_offset) / bpc) as u32 + 2;
        if cluster > g.max_cluster() {
            return Some(Region::new("fat data area", Some("past the last cluster".into())));
        }
        let in_cluster = (rel - g.data_offset) % bpc;
        if let Some(i) = tree.root_clusters.iter().position(|&c| c == cluster) {
            return Some(self.dir_slot(tree, "", i as u64 * bpc + in_cluster, rel));
        }
        for n in &tree.nodes {
            if let Some(i) = n.clusters.iter().position(|&c| c == cluster) {
                let at = i as u64 * bpc + in_cluster;
                if n.is_dir() {
                    return Some(self.dir_slot(tree, &n.path, at, rel));
                }
                let what = if at < u64::from(n.entry.dir_file_size) {
                    "data"
                } else {
                    "slack after the end of the file"
                };
                return Some(Region::new(format!("file {}", n.path), Some(what.into())));
            }
        }
        let state = if self.table.raw(cluster) == Some(0) { "free" } else { "lost (allocated, unowned)" };
        Some(Region::new("fat data area", Some(format!("cluster {cluster}, {state}"))))
    }

    /// Names a byte at `at` bytes into directory `dir` (image-relative byte `rel` from the
    /// volume start): the entry it belongs to and the field.
    fn dir_slot(&self, tree: &Tree, dir: &str, at: u64, rel: u64) -> Region {
        let slot = at / 32;
        let in_slot = (at % 32) as usize;
        let structure = format!("fat directory {}", if dir.is_empty() { "/" } else { dir });
        let attr_at = rel - in_slot as u64 + 0x0B;
        let mut attr = [0u8; 1];
        let is_lfn = self.reader.read_exact_at(&mut attr, attr_at).is_ok()
            && attr[0] & ATTR_LONG_NAME_MASK == ATTR_LONG_NAME;
        let table = if is_lfn { LDIR_FIELDS } else { DIR_FIELDS };
        let fname = field(table, in_slot).unwrap_or("entry");
        let parent_of = |p: &str| p.rsplit_once('/').map_or("", |(d, _)| d).to_string();
        let owner = tree
            .nodes
            .iter()
            .find(|n| {
                parent_of(&n.path) == dir
                    && (n.slot.saturating_sub(n.lfn_slots as u64)..=n.slot).contains(&slot)
            })
            .map(|n| n.name.clone())
            .or_else(|| {
                let label = tree.root_label.as_ref()?;
                (dir.is_empty() && label.offset == self.base + rel - in_slot as u64)
                    .then(|| "volume label".to_string())
            });
        let what = match owner {
            Some(name) => format!("entry {slot} ({name}) {fname}"),
            None => format!("entry {slot} {fname}"),
        };
        Region::new(structure, Some(what))
    }
}
