//! The FAT32 FSInfo sector (fatgen103 section 5): signatures and the free-cluster hints.

use super::Finding;
use crate::bytes::{Le, need};
use crate::error::{Error, Result};
use serde::Serialize;

pub const FSI_LEAD_SIG: u32 = 0x4161_5252;
pub const FSI_STRUC_SIG: u32 = 0x6141_7272;
pub const FSI_TRAIL_SIG: u32 = 0xAA55_0000;
/// `FSI_Free_Count` and `FSI_Nxt_Free` value meaning "unknown".
pub const FSI_UNKNOWN: u32 = 0xFFFF_FFFF;

/// The FSInfo sector's fields, named as in fatgen103.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FsInfo {
    /// 0x000
    pub fsi_lead_sig: u32,
    /// 0x1E4
    pub fsi_struc_sig: u32,
    /// 0x1E8: last known free cluster count, or 0xFFFFFFFF.
    pub fsi_free_count: u32,
    /// 0x1EC: hint where to look for a free cluster, or 0xFFFFFFFF.
    pub fsi_nxt_free: u32,
    /// 0x1FC
    pub fsi_trail_sig: u32,
}

pub(super) const STRUCT: &str = "fat32 fsinfo sector";

impl FsInfo {
    /// Decodes an FSInfo sector and checks its three signatures; `offset` is where it lies,
    /// for error messages.
    pub fn parse(buf: &[u8], offset: u64) -> Result<FsInfo> {
        need(buf, 512, STRUCT, Some(offset))?;
        let b = Le(buf);
        let fsi = FsInfo {
            fsi_lead_sig: b.u32(0x000),
            fsi_struc_sig: b.u32(0x1E4),
            fsi_free_count: b.u32(0x1E8),
            fsi_nxt_free: b.u32(0x1EC),
            fsi_trail_sig: b.u32(0x1FC),
        };
        for (name, off, found, expected) in [
            ("FSI_LeadSig", 0x000, fsi.fsi_lead_sig, FSI_LEAD_SIG),
            ("FSI_StrucSig", 0x1E4, fsi.fsi_struc_sig, FSI_STRUC_SIG),
            ("FSI_TrailSig", 0x1FC, fsi.fsi_trail_sig, FSI_TRAIL_SIG),
        ] {
            if found != expected {
                return Err(Error::corrupt(
                    STRUCT,
                    Some(offset + off),
                    format!("{name}: expected {expected:#010x}, found {found:#010x}"),
                ));
            }
        }
        Ok(fsi)
    }

    /// Compares the hints with the FAT: `free` is the number of free clusters counted in the
    /// FAT, `max_cluster` the largest valid cluster number.
    pub fn check(&self, offset: u64, free: u32, max_cluster: u32, findings: &mut Vec<Finding>) {
        if self.fsi_free_count != FSI_UNKNOWN && self.fsi_free_count != free {
            findings.push(Finding::error(
                STRUCT,
                Some(offset + 0x1E8),
                format!("FSI_Free_Count: says {} free clusters, the fat has {free}", self.fsi_free_count),
            ));
        }
        if self.fsi_nxt_free != FSI_UNKNOWN && (self.fsi_nxt_free < 2 || self.fsi_nxt_free > max_cluster) {
            findings.push(Finding::warning(
                STRUCT,
                Some(offset + 0x1EC),
                format!("FSI_Nxt_Free: cluster {} is outside 2..={max_cluster}", self.fsi_nxt_free),
            ));
        }
    }
}
