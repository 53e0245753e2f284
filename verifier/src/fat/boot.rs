//! The FAT boot sector and BIOS parameter block (fatgen103 section 3), with the FAT type
//! determined from the cluster count as the specification prescribes.

use super::{Finding, fat_err};
use crate::bytes::{Le, need};
use crate::error::Result;
use serde::Serialize;

/// The three FAT variants. The type is a function of the cluster count alone (fatgen103,
/// "FAT Type Determination"), never of `BS_FilSysType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FatType {
    Fat12,
    Fat16,
    Fat32,
}

impl FatType {
    /// The name blkid prints as `VERSION` and fsck.fat as "N bit entries".
    pub fn name(self) -> &'static str {
        match self {
            FatType::Fat12 => "FAT12",
            FatType::Fat16 => "FAT16",
            FatType::Fat32 => "FAT32",
        }
    }
    /// Bits per FAT entry.
    pub fn bits(self) -> u32 {
        match self {
            FatType::Fat12 => 12,
            FatType::Fat16 => 16,
            FatType::Fat32 => 32,
        }
    }
    /// The type fatgen103 assigns to a volume with `count` data clusters.
    pub fn from_cluster_count(count: u32) -> FatType {
        if count < 4085 {
            FatType::Fat12
        } else if count < 65525 {
            FatType::Fat16
        } else {
            FatType::Fat32
        }
    }
}

/// The boot sector fields, named as in fatgen103. FAT12/16 and FAT32 share the first 36 bytes
/// (0x00..0x24); the extended fields after them sit at different offsets, and the ones only
/// FAT32 has are zero on FAT12/16.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootSector {
    /// 0x00: a jump to the boot code, `EB ?? 90` or `E9 ?? ??`.
    pub bs_jmp_boot: [u8; 3],
    /// 0x03: the formatting tool's name; informational only.
    pub bs_oem_name: [u8; 8],
    /// 0x0B
    pub bpb_byts_per_sec: u16,
    /// 0x0D
    pub bpb_sec_per_clus: u8,
    /// 0x0E
    pub bpb_rsvd_sec_cnt: u16,
    /// 0x10
    pub bpb_num_fats: u8,
    /// 0x11: 32-byte entries in the fixed FAT12/16 root directory; 0 on FAT32.
    pub bpb_root_ent_cnt: u16,
    /// 0x13
    pub bpb_tot_sec16: u16,
    /// 0x15
    pub bpb_media: u8,
    /// 0x16: sectors per FAT on FAT12/16; 0 on FAT32.
    pub bpb_fat_sz16: u16,
    /// 0x18
    pub bpb_sec_per_trk: u16,
    /// 0x1A
    pub bpb_num_heads: u16,
    /// 0x1C
    pub bpb_hidd_sec: u32,
    /// 0x20
    pub bpb_tot_sec32: u32,
    /// 0x24 (FAT32 only)
    pub bpb_fat_sz32: u32,
    /// 0x28 (FAT32 only): bits 0-3 active FAT, bit 7 set = mirroring disabled.
    pub bpb_ext_flags: u16,
    /// 0x2A (FAT32 only)
    pub bpb_fs_ver: u16,
    /// 0x2C (FAT32 only)
    pub bpb_root_clus: u32,
    /// 0x30 (FAT32 only)
    pub bpb_fs_info: u16,
    /// 0x32 (FAT32 only)
    pub bpb_bk_boot_sec: u16,
    /// 0x24 on FAT12/16, 0x40 on FAT32
    pub bs_drv_num: u8,
    /// 0x25 / 0x41: reserved by the spec; Linux and fsck.fat use bit 0 as a "dirty" flag,
    /// set while the volume is mounted.
    pub bs_reserved1: u8,
    /// 0x26 / 0x42: 0x29 when the three fields after it are present.
    pub bs_boot_sig: u8,
    /// 0x27 / 0x43
    pub bs_vol_id: u32,
    /// 0x2B / 0x47
    pub bs_vol_lab: [u8; 11],
    /// 0x36 / 0x52: informational only, never used to pick the FAT type.
    pub bs_fil_sys_type: [u8; 8],
    /// Bytes 0x1FE..0x200: `55 AA`.
    pub signature: [u8; 2],
}

/// The layout computed from a boot sector (fatgen103 section 3.5), in sectors and bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Geometry {
    pub fat_type: FatType,
    pub bytes_per_sector: u32,
    pub bytes_per_cluster: u32,
    /// Sectors per FAT (`BPB_FATSz16` or `BPB_FATSz32`).
    pub fat_size: u32,
    /// Total sectors (`BPB_TotSec16` or `BPB_TotSec32`).
    pub total_sectors: u32,
    pub root_dir_sectors: u32,
    /// First sector of the data region (cluster 2).
    pub first_data_sector: u32,
    /// Data clusters: valid cluster numbers are `2..=cluster_count + 1`.
    pub cluster_count: u32,
    /// Byte offset of FAT copy 0 from the volume start.
    pub fat_offset: u64,
    /// Byte offset of the fixed root directory (FAT12/16); 0 on FAT32.
    pub root_dir_offset: u64,
    pub data_offset: u64,
}

impl Geometry {
    /// Byte offset of cluster `n` (`n >= 2`) from the volume start.
    pub fn cluster_offset(&self, n: u32) -> u64 {
        self.data_offset + u64::from(n.saturating_sub(2)) * u64::from(self.bytes_per_cluster)
    }
    /// Byte offset of FAT copy `i`.
    pub fn fat_copy_offset(&self, i: u8) -> u64 {
        self.fat_offset + u64::from(i) * u64::from(self.fat_size) * u64::from(self.bytes_per_sector)
    }
    /// The largest valid cluster number.
    pub fn max_cluster(&self) -> u32 {
        self.cluster_count + 1
    }
    /// Bytes of the whole volume as the boot sector describes it.
    pub fn volume_bytes(&self) -> u64 {
        u64::from(self.total_sectors) * u64::from(self.bytes_per_sector)
    }
}

const STRUCT: &str = "fat boot sector";

impl BootSector {
    /// Decodes the fields of a boot sector; `buf` must hold at least 512 bytes. Whether FAT32
    /// fields are read depends on `BPB_FATSz16` being 0, which is how the layouts differ.
    pub fn parse(buf: &[u8]) -> Result<BootSector> {
        need(buf, 512, STRUCT, Some(0))?;
        let b = Le(buf);
        let fat_sz16 = b.u16(0x16);
        let fat32 = fat_sz16 == 0;
        let ext = if fat32 { 0x40 } else { 0x24 };
        Ok(BootSector {
            bs_jmp_boot: b.array(0x00),
            bs_oem_name: b.array(0x03),
            bpb_byts_per_sec: b.u16(0x0B),
            bpb_sec_per_clus: b.u8(0x0D),
            bpb_rsvd_sec_cnt: b.u16(0x0E),
            bpb_num_fats: b.u8(0x10),
            bpb_root_ent_cnt: b.u16(0x11),
            bpb_tot_sec16: b.u16(0x13),
            bpb_media: b.u8(0x15),
            bpb_fat_sz16: fat_sz16,
            bpb_sec_per_trk: b.u16(0x18),
            bpb_num_heads: b.u16(0x1A),
            bpb_hidd_sec: b.u32(0x1C),
            bpb_tot_sec32: b.u32(0x20),
            bpb_fat_sz32: if fat32 { b.u32(0x24) } else { 0 },
            bpb_ext_flags: if fat32 { b.u16(0x28) } else { 0 },
            bpb_fs_ver: if fat32 { b.u16(0x2A) } else { 0 },
            bpb_root_clus: if fat32 { b.u32(0x2C) } else { 0 },
            bpb_fs_info: if fat32 { b.u16(0x30) } else { 0 },
            bpb_bk_boot_sec: if fat32 { b.u16(0x32) } else { 0 },
            bs_drv_num: b.u8(ext),
            bs_reserved1: b.u8(ext + 1),
            bs_boot_sig: b.u8(ext + 2),
            bs_vol_id: b.u32(ext + 3),
            bs_vol_lab: b.array(ext + 7),
            bs_fil_sys_type: b.array(ext + 18),
            signature: b.array(0x1FE),
        })
    }

    /// True when the FAT32 layout is used (`BPB_FATSz16 == 0`).
    pub fn is_fat32_layout(&self) -> bool {
        self.bpb_fat_sz16 == 0
    }

    /// True when `BS_VolID`, `BS_VolLab` and `BS_FilSysType` are present (`BS_BootSig` 0x29).
    pub fn has_extended_sig(&self) -> bool {
        self.bs_boot_sig == 0x29
    }

    /// `BS_VolLab` without trailing spaces, or `None` when it is absent (no extended boot
    /// signature), blank, or the placeholder "NO NAME" (blkid's `LABEL_FATBOOT` rule).
    pub fn boot_label(&self) -> Option<&[u8]> {
        let l = super::dir::trim_label(&self.bs_vol_lab);
        (self.has_extended_sig() && !l.is_empty() && l != b"NO NAME").then_some(l)
    }

    /// The volume serial as blkid and mdir print it: `XXXX-XXXX`, high half first.
    pub fn volume_id_string(&self) -> String {
        format!("{:04X}-{:04X}", self.bs_vol_id >> 16, self.bs_vol_id & 0xFFFF)
    }

    /// Validates every field the layout depends on and computes the geometry. Fields that
    /// only matter to other systems (CHS geometry, drive number) are not judged here.
    /// `findings` receives deviations that do not stop reading.
    pub fn geometry(&self, findings: &mut Vec<Finding>) -> Result<Geometry> {
        let corrupt = |field: &str, off: u64, what: String| fat_err(STRUCT, off, format!("{field}: {what}"));
        if self.signature != [0x55, 0xAA] {
            return Err(corrupt(
                "signature",
                0x1FE,
                format!(
                    "expected 55 aa, found {:02x} {:02x}; this is not a fat boot sector",
                    self.signature[0], self.signature[1]
                ),
            ));
        }
        let j = self.bs_jmp_boot;
        if !((j[0] == 0xEB && j[2] == 0x90) || j[0] == 0xE9) {
            return Err(corrupt(
                "BS_jmpBoot",
                0x00,
                format!("expected eb ?? 90 or e9 ?? ??, found {:02x} {:02x} {:02x}", j[0], j[1], j[2]),
            ));
        }
        let bps = self.bpb_byts_per_sec;
        if !matches!(bps, 512 | 1024 | 2048 | 4096) {
            return Err(corrupt(
                "BPB_BytsPerSec",
                0x0B,
                format!("expected 512, 1024, 2048 or 4096, found {bps}"),
            ));
        }
        let spc = self.bpb_sec_per_clus;
        if spc == 0 || !spc.is_power_of_two() {
            return Err(corrupt(
                "BPB_SecPerClus",
                0x0D,
                format!("expected a power of two from 1 to 128, found {spc}"),
            ));
        }
        if self.bpb_rsvd_sec_cnt == 0 {
            return Err(corrupt("BPB_RsvdSecCnt", 0x0E, "expected at least 1, found 0".into()));
        }
        if self.bpb_num_fats == 0 {
            return Err(corrupt("BPB_NumFATs", 0x10, "expected at least 1, found 0".into()));
        }
        if !(self.bpb_media == 0xF0 || self.bpb_media >= 0xF8) {
            return Err(corrupt(
                "BPB_Media",
                0x15,
                format!("expected f0 or f8..ff, found {:02x}", self.bpb_media),
            ));
        }
        let total_sectors = match (self.bpb_tot_sec16, self.bpb_tot_sec32) {
            (0, 0) => {
                return Err(corrupt("BPB_TotSec16", 0x13, "BPB_TotSec16 and BPB_TotSec32 are both 0".into()));
            }
            (0, t) => t,
            (t, t32) => {
                if t32 != 0 && t32 != u32::from(t) {
                    findings.push(Finding::warning(
                        STRUCT,
                        Some(0x20),
                        format!(
                            "BPB_TotSec32 is {t32} while BPB_TotSec16 is {t}; the spec wants 0 in one of them"
                        ),
                    ));
                }
                u32::from(t)
            }
        };
        let fat32_layout = self.is_fat32_layout();
        let fat_size = if fat32_layout { self.bpb_fat_sz32 } else { u32::from(self.bpb_fat_sz16) };
        if fat_size == 0 {
            return Err(corrupt("BPB_FATSz32", 0x24, "BPB_FATSz16 and BPB_FATSz32 are both 0".into()));
        }
        if fat32_layout && self.bpb_root_ent_cnt != 0 {
            return Err(corrupt(
                "BPB_RootEntCnt",
                0x11,
                format!("expected 0 on a fat32 volume (BPB_FATSz16 is 0), found {}", self.bpb_root_ent_cnt),
            ));
        }
        if !fat32_layout && self.bpb_root_ent_cnt == 0 {
            return Err(corrupt(
                "BPB_RootEntCnt",
                0x11,
                "expected root directory entries on fat12/16, found 0".into(),
            ));
        }
        let bps32 = u32::from(bps);
        let root_dir_sectors = (u32::from(self.bpb_root_ent_cnt) * 32).div_ceil(bps32);
        let meta = u64::from(self.bpb_rsvd_sec_cnt)
            + u64::from(self.bpb_num_fats) * u64::from(fat_size)
            + u64::from(root_dir_sectors);
        if meta >= u64::from(total_sectors) {
            return Err(corrupt(
                "BPB_TotSec",
                0x13,
                format!(
                    "{total_sectors} sectors leave no data region after {meta} sectors of reserved area, fats and root directory"
                ),
            ));
        }
        // `meta < total_sectors <= u32::MAX`, so the narrowing is exact.
        let first_data_sector = meta as u32;
        let cluster_count = (total_sectors - first_data_sector) / u32::from(spc);
        let spec_type = FatType::from_cluster_count(cluster_count);
        let fat_type = match (spec_type, fat32_layout) {
            (FatType::Fat32, true) | (FatType::Fat12 | FatType::Fat16, false) => spec_type,
            (FatType::Fat32, false) => {
                return Err(corrupt(
                    "BPB_FATSz16",
                    0x16,
                    format!(
                        "{cluster_count} clusters make a fat32 volume, but BPB_FATSz16 is non-zero (a fat12/16 layout)"
                    ),
                ));
            }
            (_, true) => {
                // mkfs.fat -F 32 makes such volumes; Linux, mtools and blkid read them as FAT32
                // because the layout is FAT32's, while the spec's rule would say FAT12/16.
                findings.push(Finding::warning(
                    STRUCT,
                    Some(0x24),
                    format!(
                        "{cluster_count} clusters is below the fat32 minimum 65525 of the spec, which would make this {}; read as fat32 because BPB_FATSz16 is 0",
                        spec_type.name()
                    ),
                ));
                FatType::Fat32
            }
        };
        if cluster_count == 0 {
            return Err(corrupt("BPB_SecPerClus", 0x0D, "the data region holds no whole cluster".into()));
        }
        if fat_type == FatType::Fat32 && cluster_count > 0x0FFF_FFF5 {
            return Err(corrupt(
                "BPB_TotSec32",
                0x20,
                format!("{cluster_count} clusters exceed the fat32 maximum 268435445"),
            ));
        }
        let needed_fat_bytes = (u64::from(cluster_count) + 2) * u64::from(fat_type.bits()) / 8;
        if needed_fat_bytes.div_ceil(u64::from(bps)) > u64::from(fat_size) {
            return Err(corrupt(
                if fat32_layout { "BPB_FATSz32" } else { "BPB_FATSz16" },
                if fat32_layout { 0x24 } else { 0x16 },
                format!(
                    "{fat_size} sectors per fat cannot hold {} entries ({needed_fat_bytes} bytes)",
                    u64::from(cluster_count) + 2
                ),
            ));
        }
        if fat_type == FatType::Fat32 {
            if self.bpb_fs_ver != 0 {
                return Err(crate::Error::unsupported(
                    STRUCT,
                    Some(0x2A),
                    format!("BPB_FSVer: version {:#06x}, only 0:0 is defined", self.bpb_fs_ver),
                ));
            }
            let rc = self.bpb_root_clus;
            if rc < 2 || rc > cluster_count + 1 {
                return Err(corrupt(
                    "BPB_RootClus",
                    0x2C,
                    format!("cluster {rc} is outside 2..={}", cluster_count + 1),
                ));
            }
            let active = u32::from(self.bpb_ext_flags & 0x0F);
            if self.bpb_ext_flags & 0x80 != 0 && active >= u32::from(self.bpb_num_fats) {
                return Err(corrupt(
                    "BPB_ExtFlags",
                    0x28,
                    format!("active fat {active} does not exist, there are {} fats", self.bpb_num_fats),
                ));
            }
        }
        if u32::from(bps) * u32::from(spc) > 32 * 1024 {
            findings.push(Finding::warning(
                STRUCT,
                Some(0x0D),
                format!(
                    "clusters of {} bytes exceed the 32 KiB the spec allows; many systems cannot mount this",
                    u32::from(bps) * u32::from(spc)
                ),
            ));
        }
        if self.bs_reserved1 & 1 != 0 {
            findings.push(Finding::error(
                STRUCT,
                Some(if fat32_layout { 0x41 } else { 0x25 }),
                "BS_Reserved1 has bit 0 set, the dirty flag of Linux and fsck.fat: the volume was not unmounted cleanly",
            ));
        }
        if !self.has_extended_sig() {
            findings.push(Finding::warning(
                STRUCT,
                Some(if fat32_layout { 0x42 } else { 0x26 }),
                format!(
                    "BS_BootSig is {:#04x}, not 0x29: BS_VolID, BS_VolLab and BS_FilSysType are absent",
                    self.bs_boot_sig
                ),
            ));
        }
        // BS_FilSysType is informational, but a tool that writes it should write the truth.
        let label = &self.bs_fil_sys_type;
        let agrees = match label {
            b"FAT12   " => fat_type == FatType::Fat12,
            b"FAT16   " => fat_type == FatType::Fat16,
            b"FAT32   " => fat_type == FatType::Fat32,
            b"FAT     " => fat_type != FatType::Fat32,
            _ => true,
        };
        if self.has_extended_sig() && !agrees {
            findings.push(Finding::warning(
                STRUCT,
                Some(if fat32_layout { 0x52 } else { 0x36 }),
                format!(
                    "BS_FilSysType says {:?}, the cluster count makes it {}",
                    String::from_utf8_lossy(label),
                    fat_type.name()
                ),
            ));
        }
        let bpsec = u64::from(bps);
        Ok(Geometry {
            fat_type,
            bytes_per_sector: bps32,
            bytes_per_cluster: bps32 * u32::from(spc),
            fat_size,
            total_sectors,
            root_dir_sectors,
            first_data_sector,
            cluster_count,
            fat_offset: u64::from(self.bpb_rsvd_sec_cnt) * bpsec,
            root_dir_offset: if fat32_layout {
                0
            } else {
                (u64::from(self.bpb_rsvd_sec_cnt) + u64::from(self.bpb_num_fats) * u64::from(fat_size))
                    * bpsec
            },
            data_offset: u64::from(first_data_sector) * bpsec,
        })
    }

    /// The fields that differ between this boot sector and `other`, by spec name, for the
    /// FAT32 backup boot sector check.
    pub fn differing_fields(&self, other: &BootSector) -> Vec<&'static str> {
        let mut out = Vec::new();
        macro_rules! cmp {
            ($($f:ident => $n:literal),* $(,)?) => {$( if self.$f != other.$f { out.push($n); } )*};
        }
        cmp!(
            bs_jmp_boot => "BS_jmpBoot", bs_oem_name => "BS_OEMName", bpb_byts_per_sec => "BPB_BytsPerSec",
            bpb_sec_per_clus => "BPB_SecPerClus", bpb_rsvd_sec_cnt => "BPB_RsvdSecCnt", bpb_num_fats => "BPB_NumFATs",
            bpb_root_ent_cnt => "BPB_RootEntCnt", bpb_tot_sec16 => "BPB_TotSec16", bpb_media => "BPB_Media",
            bpb_fat_sz16 => "BPB_FATSz16", bpb_sec_per_trk => "BPB_SecPerTrk", bpb_num_heads => "BPB_NumHeads",
            bpb_hidd_sec => "BPB_HiddSec", bpb_tot_sec32 => "BPB_TotSec32", bpb_fat_sz32 => "BPB_FATSz32",
            bpb_ext_flags => "BPB_ExtFlags", bpb_fs_ver => "BPB_FSVer", bpb_root_clus => "BPB_RootClus",
            bpb_fs_info => "BPB_FSInfo", bpb_bk_boot_sec => "BPB_BkBootSec", bs_drv_num => "BS_DrvNum", bs_reserved1 => "BS_Reserved1",
            bs_boot_sig => "BS_BootSig", bs_vol_id => "BS_VolID", bs_vol_lab => "BS_VolLab",
            bs_fil_sys_type => "BS_FilSysType", signature => "signature",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_boundaries_follow_the_spec() {
        assert_eq!(FatType::from_cluster_count(4084), FatType::Fat12);
        assert_eq!(FatType::from_cluster_count(4085), FatType::Fat16);
        assert_eq!(FatType::from_cluster_count(65524), FatType::Fat16);
        assert_eq!(FatType::from_cluster_count(65525), FatType::Fat32);
    }

    #[test]
    fn short_buffer_is_truncated_not_a_panic() {
        assert!(matches!(BootSector::parse(&[0u8; 100]), Err(crate::Error::Truncated { .. })));
    }
}
