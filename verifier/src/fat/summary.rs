//! A serializable summary of a FAT volume for `verify` reports: type, IDs, labels, geometry,
//! counts and the range of every class of timestamp.

use super::boot::FatType;
use super::dir::{Tree, trim_label};
use super::time::FatTime;
use super::{Fat, Finding};
use crate::bytes::ReadAt;
use serde::Serialize;
use std::collections::BTreeMap;

/// The earliest and latest value of one class of timestamp, and how many entries carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeRange {
    pub count: usize,
    pub min: String,
    pub max: String,
    /// Seconds since the epoch (read as UTC) of `min` and `max`; `None` when invalid.
    pub min_unix: Option<i64>,
    pub max_unix: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// "FAT12", "FAT16" or "FAT32".
    pub fat_type: &'static str,
    /// `BS_VolID` as `XXXX-XXXX`; `None` without the extended boot signature.
    pub volume_id: Option<String>,
    /// `BS_OEMName`, trailing spaces kept out.
    pub oem_name: String,
    /// `BS_VolLab` trimmed, `None` when blank or "NO NAME" (blkid's `LABEL_FATBOOT`).
    pub label_fatboot: Option<String>,
    /// The root directory's volume label entry, trimmed; `None` when absent or blank
    /// (blkid's `LABEL`).
    pub label: Option<String>,
    /// `BS_FilSysType` trimmed (informational only).
    pub fil_sys_type: String,
    pub bytes_per_sector: u32,
    pub sectors_per_cluster: u8,
    pub bytes_per_cluster: u32,
    pub reserved_sectors: u16,
    pub num_fats: u8,
    pub root_entries: u16,
    pub root_cluster: Option<u32>,
    pub total_sectors: u32,
    pub sectors_per_fat: u32,
    pub media: u8,
    pub sectors_per_track: u16,
    pub heads: u16,
    pub hidden_sectors: u32,
    pub drive_number: u8,
    pub fat_offset: u64,
    pub root_dir_offset: Option<u64>,
    pub data_offset: u64,
    pub cluster_count: u32,
    /// Allocated clusters in the FAT (neither free nor bad).
    pub used_clusters: u32,
    pub free_clusters: u32,
    pub fsinfo_free_count: Option<u32>,
    pub fsinfo_next_free: Option<u32>,
    pub backup_boot_sector: Option<u16>,
    /// Regular files and directories found by the walk (root excluded), when walked.
    pub files: Option<usize>,
    pub directories: Option<usize>,
    /// Keyed by class: "created", "modified", "accessed" (dates only), "label".
    pub times: BTreeMap<&'static str, TimeRange>,
    pub findings: Vec<Finding>,
}

fn text(raw: &[u8]) -> String {
    String::from_utf8_lossy(trim_label(raw)).into_owned()
}

fn add(times: &mut BTreeMap<&'static str, Vec<FatTime>>, class: &'static str, t: FatTime) {
    times.entry(class).or_default().push(t);
}

impl Summary {
    pub(super) fn new<R: ReadAt + ?Sized>(fat: &Fat<'_, R>, tree: Option<&Tree>) -> Summary {
        let b = &fat.boot;
        let g = &fat.geometry;
        let label_fatboot = b.boot_label().map(text);
        let mut raw_times: BTreeMap<&'static str, Vec<FatTime>> = BTreeMap::new();
        let mut findings = fat.findings.clone();
        if let Some(t) = tree {
            for n in &t.nodes {
                let e = &n.entry;
                if e.dir_crt_date != 0 {
                    add(&mut raw_times, "created", e.created());
                }
                add(&mut raw_times, "modified", e.modified());
                if e.dir_lst_acc_date != 0 {
                    add(&mut raw_times, "accessed", e.accessed());
                }
            }
            if let Some(l) = &t.root_label {
                add(&mut raw_times, "label", l.entry.modified());
            }
            findings.extend(t.findings.iter().cloned());
        }
        let times = raw_times
            .into_iter()
            .filter_map(|(k, v)| {
                let (min, max) = (*v.iter().min()?, *v.iter().max()?);
                Some((
                    k,
                    TimeRange {
                        count: v.len(),
                        min: min.to_string(),
                        max: max.to_string(),
                        min_unix: min.unix(),
                        max_unix: max.unix(),
                    },
                ))
            })
            .collect();
        let fat32 = g.fat_type == FatType::Fat32;
        Summary {
            fat_type: g.fat_type.name(),
            volume_id: b.has_extended_sig().then(|| b.volume_id_string()),
            oem_name: text(&b.bs_oem_name),
            label_fatboot,
            label: tree
                .and_then(|t| t.root_label.as_ref())
                .map(|l| text(l.trimmed()))
                .filter(|l| !l.is_empty()),
            fil_sys_type: text(&b.bs_fil_sys_type),
            bytes_per_sector: g.bytes_per_sector,
            sectors_per_cluster: b.bpb_sec_per_clus,
            bytes_per_cluster: g.bytes_per_cluster,
            reserved_sectors: b.bpb_rsvd_sec_cnt,
            num_fats: b.bpb_num_fats,
            root_entries: b.bpb_root_ent_cnt,
            root_cluster: fat32.then_some(b.bpb_root_clus),
            total_sectors: g.total_sectors,
            sectors_per_fat: g.fat_size,
            media: b.bpb_media,
            sectors_per_track: b.bpb_sec_per_trk,
            heads: b.bpb_num_heads,
            hidden_sectors: b.bpb_hidd_sec,
            drive_number: b.bs_drv_num,
            fat_offset: g.fat_offset,
            root_dir_offset: (!fat32).then_some(g.root_dir_offset),
            data_offset: g.data_offset,
            cluster_count: g.cluster_count,
            used_clusters: fat.table.used_count(),
            free_clusters: fat.table.free_count(),
            fsinfo_free_count: fat.fsinfo.as_ref().map(|f| f.fsi_free_count),
            fsinfo_next_free: fat.fsinfo.as_ref().map(|f| f.fsi_nxt_free),
            backup_boot_sector: fat32.then_some(b.bpb_bk_boot_sec),
            files: tree.map(|t| t.nodes.iter().filter(|n| !n.is_dir()).count()),
            directories: tree.map(|t| t.nodes.iter().filter(|n| n.is_dir()).count()),
            times,
            findings,
        }
    }
}
