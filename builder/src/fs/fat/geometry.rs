//! The FAT type, cluster size and area sizes `mkfs.vfat` 4.2 picks for a partition of a given size.
//!
//! These are facts about dosfstools 4.2's `mkfs.fat` at its defaults (512-byte sectors, two
//! FATs, alignment on), run on a file of the partition's size; builder/tests/fat_mkfs.rs
//! checks them against the real tool over a sweep of sizes:
//! - Geometry: up to 524288 sectors (256 MiB) the SD card CHS recommendation (heads 2, 4, 8,
//!   16 at 16, 32, 128, 256 MiB; 16 sectors per track up to 2 MiB, else 32); above it LBA
//!   assist (63 sectors per track, heads 16 to 255 by size).
//! - The sector count is rounded down to whole tracks (alignment), and alignment is off for
//!   filesystems of 8192 sectors or fewer.
//! - FAT32 from 512 MiB, with 8 sectors per cluster above 260 MiB worth of sectors (more
//!   above 8, 16 and 32 GiB); below 512 MiB FAT12 or FAT16, starting from 4 sectors per
//!   cluster. The cluster size doubles until the cluster count fits the type's limits
//!   (FAT12 at most 4084 clusters, FAT16 4087..=65524, FAT32 at least 65525); FAT16 wins
//!   over FAT12 when it yields more clusters.
//! - Reserved sectors 1 (FAT12/16) or 32 (FAT32), the FAT length and the root directory
//!   (512 entries on FAT12/16) are each rounded up to whole clusters; the root directory
//!   then gets every entry of its rounded size.

use super::FatError;
use serde::Serialize;

pub const SECTOR: u64 = 512;
pub const NUM_FATS: u32 = 2;
pub const MEDIA: u8 = 0xf8;
const MAX_CLUST_12: i64 = 4084;
const MIN_CLUST_16: i64 = 4087;
const MAX_CLUST_16: i64 = 65524;
const MIN_CLUST_32: i64 = 65525;
const MAX_CLUST_32: i64 = 268_435_446;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FatType {
    #[serde(rename = "FAT12")]
    Fat12,
    #[serde(rename = "FAT16")]
    Fat16,
    #[serde(rename = "FAT32")]
    Fat32,
}

impl FatType {
    pub fn name(self) -> &'static str {
        match self {
            FatType::Fat12 => "FAT12",
            FatType::Fat16 => "FAT16",
            FatType::Fat32 => "FAT32",
        }
    }
}

/// Everything the boot sector says about the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Geometry {
    pub fat_type: FatType,
    /// Sectors of the filesystem (the partition's, rounded down to whole tracks).
    pub total_sectors: u32,
    pub sectors_per_cluster: u32,
    pub reserved_sectors: u32,
    /// Sectors of one FAT.
    pub fat_sectors: u32,
    /// Root directory entries (FAT12/16; 0 on FAT32).
    pub root_entries: u32,
    /// Clusters of the data area (numbered from 2).
    pub clusters: u32,
    pub sectors_per_track: u16,
    pub heads: u16,
    /// Sectors before the filesystem on the disk (the partition's first LBA).
    pub hidden_sectors: u32,
}

impl Geometry {
    pub fn cluster_bytes(&self) -> u64 {
        self.sectors_per_cluster as u64 * SECTOR
    }
    pub fn root_dir_sectors(&self) -> u32 {
        (self.root_entries * 32).div_ceil(SECTOR as u32)
    }
    /// First sector of the data area (cluster 2).
    pub fn data_start_sector(&self) -> u32 {
        self.reserved_sectors + NUM_FATS * self.fat_sectors + self.root_dir_sectors()
    }
    /// Byte offset of cluster `c` from the start of the filesystem.
    pub fn cluster_offset(&self, c: u32) -> u64 {
        self.data_start_sector() as u64 * SECTOR + (c as u64 - 2) * self.cluster_bytes()
    }
}

fn cdiv(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

/// The geometry `mkfs.vfat` 4.2 gives a partition of `bytes` starting at sector `hidden`.
pub fn mkfs_geometry(bytes: u64, hidden: u32) -> Result<Geometry, FatError> {
    let too_small = || FatError::PartitionTooSmall { bytes };
    let sectors = bytes / SECTOR;
    if sectors > u32::MAX as u64 {
        return Err(FatError::PartitionTooLarge { bytes });
    }
    let sectors = sectors as i64;
    let (heads, spt): (i64, i64) = if sectors <= 524_288 {
        let heads = match sectors {
            s if s <= 32_768 => 2,
            s if s <= 65_536 => 4,
            s if s <= 262_144 => 8,
            _ => 16,
        };
        (heads, if sectors <= 4096 { 16 } else { 32 })
    } else {
        let heads = match sectors {
            s if s <= 16 * 63 * 1024 => 16,
            s if s <= 32 * 63 * 1024 => 32,
            s if s <= 64 * 63 * 1024 => 64,
            s if s <= 128 * 63 * 1024 => 128,
            _ => 255,
        };
        (heads, 63)
    };
    let fat32 = bytes >= 512 << 20;
    let mut spc: i64 = if fat32 {
        match sectors {
            s if s > 32 * 1024 * 1024 * 2 => 64,
            s if s > 16 * 1024 * 1024 * 2 => 32,
            s if s > 8 * 1024 * 1024 * 2 => 16,
            s if s > 260 * 1024 * 2 => 8,
            _ => 1,
        }
    } else {
        4
    };
    let reserved: i64 = if fat32 { 32 } else { 1 };
    let root_entries: i64 = if fat32 { 0 } else { 512 };
    let num = sectors / spt * spt;
    let align_on = num > 8192;
    let align = |s: i64, c: i64| if align_on { (s + c - 1) & !(c - 1) } else { s };
    let root_dir_sectors = cdiv(root_entries * 32, SECTOR as i64);
    let nf = NUM_FATS as i64;
    let ss = SECTOR as i64;
    // (type, clusters, fat length) of the first cluster size that fits.
    let mut chosen = None;
    while spc <= 128 {
        let fatdata32 = num - align(reserved, spc);
        let fatdata1216 = fatdata32 - align(root_dir_sectors, spc);
        // The clusters left once the FATs are placed, or 0 when they break the type's
        // limits (mkfs.fat recounts after sizing the FAT, as the estimate can be one over).
        let fits = |fatlen: i64, fatdata: i64, bits: i64, min: i64, max: i64| {
            let left = fatdata - nf * fatlen;
            let clust = if left < 0 { -1 } else { left / spc };
            let maxclust = (fatlen * ss * 8 / bits).min(max);
            if clust < 0 || clust > maxclust || clust < min { 0 } else { clust }
        };
        let c12 = 2 * (fatdata1216 * ss + nf * 3) / (2 * spc * ss + nf * 3);
        let l12 = align(cdiv(((c12 + 2) * 3 + 1) >> 1, ss), spc);
        let c12 = fits(l12, fatdata1216, 12, 0, MAX_CLUST_12);
        let c16 = (fatdata1216 * ss + nf * 4) / (spc * ss + nf * 2);
        let l16 = align(cdiv((c16 + 2) * 2, ss), spc);
        let c16 = fits(l16, fatdata1216, 16, MIN_CLUST_16, MAX_CLUST_16);
        let c32 = (fatdata32 * ss + nf * 8) / (spc * ss + nf * 4);
        let l32 = align(cdiv((c32 + 2) * 4, ss), spc);
        let c32 = fits(l32, fatdata32, 32, MIN_CLUST_32, MAX_CLUST_32);
        if fat32 {
            if c32 > 0 {
                chosen = Some((FatType::Fat32, c32, l32));
                break;
            }
        } else if c12 > 0 || c16 > 0 {
            chosen = Some(if c16 > c12 { (FatType::Fat16, c16, l16) } else { (FatType::Fat12, c12, l12) });
            break;
        }
        spc <<= 1;
    }
    let (fat_type, clusters, fat_len) = chosen.ok_or_else(too_small)?;
    let reserved = align(reserved, spc);
    let root_entries = if align_on { align(root_dir_sectors, spc) * (ss >> 5) } else { root_entries };
    let g = Geometry {
        fat_type,
        total_sectors: num as u32,
        sectors_per_cluster: spc as u32,
        reserved_sectors: reserved as u32,
        fat_sectors: fat_len as u32,
        root_entries: root_entries as u32,
        clusters: clusters as u32,
        sectors_per_track: spt as u16,
        heads: heads as u16,
        hidden_sectors: hidden,
    };
    // mkfs.fat's "too few blocks for viable filesystem": the data area must hold 32 KiB.
    if (sectors as u64 / 2) < (g.data_start_sector() as u64).div_ceil(2) + 32 {
        return Err(too_small());
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brief_measurements() {
        // BRIEF.md: 92 MiB FAT16 2 KiB, 249 MiB FAT16 4 KiB, 600 MiB FAT32 4 KiB.
        for (mib, t, cluster) in
            [(92, FatType::Fat16, 2048), (249, FatType::Fat16, 4096), (600, FatType::Fat32, 4096)]
        {
            let g = mkfs_geometry(mib << 20, 16384).unwrap();
            assert_eq!((g.fat_type, g.cluster_bytes()), (t, cluster), "{mib} MiB: {g:?}");
        }
    }

    #[test]
    fn tiny_partitions_are_refused() {
        assert!(matches!(mkfs_geometry(16 << 10, 0), Err(FatError::PartitionTooSmall { .. })));
    }
}
