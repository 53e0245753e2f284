//! The FAT section of an inspection: the filesystem's report entry (type, volume ID, label,
//! times, files) and the labelled regions of its boot sector, tables and directories.

use crate::bytes::Slice;
use crate::fat::Fat;
use crate::fields;
use crate::glue::{Part, from_fat_finding, read_error};
use crate::regions::{Label, Layout, Region, RegionMapBuilder};
use crate::report::{FileTree, FsInfo, FsType, TimeRule, VerifyReport};

/// One FAT filesystem at `[start, start + len)` of the image.
pub fn section(p: &Part<'_>, rep: &mut VerifyReport, map: &mut RegionMapBuilder) {
    let (r, part, start, len) = (p.image, p.number, p.start, p.len);
    let where_ = part.map_or("fat".to_string(), |p| format!("partition {p} fat"));
    let slice = Slice { inner: r, start, len };
    let fat = match Fat::open_at(&slice, start) {
        Ok(f) => f,
        Err(e) => return rep.findings.push(read_error(&where_, &e)),
    };
    let geo = &fat.geometry;
    let fs_type = match geo.fat_type.bits() {
        12 => FsType::Fat12,
        16 => FsType::Fat16,
        _ => FsType::Fat32,
    };
    let bps = u64::from(geo.bytes_per_sector);
    let boot_table =
        if fs_type == FsType::Fat32 { &fields::FAT32_BOOT_SECTOR } else { &fields::FAT16_BOOT_SECTOR };
    map.add(Region::structure(start, part, boot_table));
    if fs_type == FsType::Fat32 {
        let bk = u64::from(fat.boot.bpb_bk_boot_sec);
        if bk != 0 && fat.backup_boot.is_some() {
            map.add(
                Region::structure(start + bk * bps, part, boot_table)
                    .with_label(Label::new(part, "fat boot sector (backup)")),
            );
        }
        if fat.fsinfo.is_some() {
            map.add(Region::structure(
                start + u64::from(fat.boot.bpb_fs_info) * bps,
                part,
                &fields::FAT32_FSINFO,
            ));
        }
    }
    let fat_bytes = u64::from(geo.fat_size) * bps;
    for i in 0..fat.boot.bpb_num_fats {
        map.add(Region::new(
            start + geo.fat_copy_offset(i),
            fat_bytes,
            Label::new(part, "fat table").with_detail(format!("copy {i}")),
        ));
    }

    let mut info = FsInfo::new(part, fs_type);
    info.volume_id = fat.boot.has_extended_sig().then_some(fat.boot.bs_vol_id);
    info.size_bytes = geo.volume_bytes();
    info.block_size = geo.bytes_per_cluster;
    rep.findings.extend(fat.findings.iter().map(from_fat_finding));
    let tree = match fat.walk() {
        Ok(t) => t,
        Err(e) => {
            rep.findings.push(read_error(&format!("{where_} tree"), &e));
            rep.filesystems.push(info);
            return;
        }
    };
    rep.findings.extend(tree.findings.iter().map(from_fat_finding));
    let label = match (&tree.root_label, fat.boot.boot_label()) {
        (Some(l), _) => l.trimmed().to_vec(),
        (None, Some(b)) => crate::fat::dir::trim_label(b).to_vec(),
        (None, None) => Vec::new(),
    };
    info.label = String::from_utf8_lossy(&label).into_owned();
    if let Some(l) = &tree.root_label {
        map.add(
            Region::structure(l.offset, part, &fields::FAT_DIR_ENTRY)
                .with_label(Label::new(part, "fat volume label entry")),
        );
        if let Some(t) = l.entry.modified().unix() {
            rep.add_time(part, "fat volume label DIR_WrtDate", TimeRule::Epoch, t, "volume label");
        }
    }

    // Directories as entry arrays (so a reorder is named as such), then each entry.
    let cluster = u64::from(geo.bytes_per_cluster);
    let dir_region = |off: u64, n: u64, path: &str| {
        Region::new(start + off, n, Label::new(part, "FAT directory").with_detail(path.to_string()))
            .with_layout(Layout::Entries { size: 32, ignore: &fields::FAT_DIR_ENTRY_CLUSTER_BYTES })
    };
    if fs_type == FsType::Fat32 {
        for &c in &tree.root_clusters {
            map.add(dir_region(geo.cluster_offset(c), cluster, "/"));
        }
    } else {
        map.add(dir_region(geo.root_dir_offset, u64::from(fat.boot.bpb_root_ent_cnt) * 32, "/"));
    }
    let mut files = Vec::with_capacity(tree.nodes.len());
    for n in &tree.nodes {
        let is_dir = n.is_dir();
        for run in runs(&n.clusters) {
            let (off, bytes) = (geo.cluster_offset(run.0), u64::from(run.1) * cluster);
            if is_dir {
                map.add(dir_region(off, bytes, &n.path));
            } else {
                map.add(Region::new(
                    start + off,
                    bytes,
                    Label::new(part, "file").with_detail(format!("{} data", n.path)),
                ));
            }
        }
        map.add(
            Region::structure(n.offset, part, &fields::FAT_DIR_ENTRY)
                .with_label(Label::new(part, "FAT directory entry").with_detail(n.path.clone())),
        );
        if n.lfn_slots > 0 {
            let lfn = n.lfn_slots as u64 * 32;
            map.add(Region::new(
                n.offset.saturating_sub(lfn),
                lfn,
                Label::new(part, "FAT directory entry").with_detail(format!("{} long name", n.path)),
            ));
        }
        let e = &n.entry;
        for (field, t) in
            [("DIR_WrtDate", e.modified()), ("DIR_CrtDate", e.created()), ("DIR_LstAccDate", e.accessed())]
        {
            if let Some(secs) = t.unix() {
                rep.add_time(part, &format!("fat entry {field}"), TimeRule::File, secs, &n.path);
            }
        }
        let mode = if is_dir { 0o040_755 } else { 0o100_644 };
        files.push((n.path.as_str(), mode, 0, 0));
    }
    info.files = FileTree::from_paths(files);
    info.file_count = tree.nodes.len() as u64;
    rep.filesystems.push(info);
}

/// The error for a sector 0 that claims to be a FAT boot sector (a jump instruction and a
/// `FAT` `BS_FilSysType`, which every formatter writes) but whose BPB does not describe a
/// volume: the disk reader then takes it for a partition table without partitions, and the
/// filesystem would drop out of the report unnoticed. `None` for anything else.
pub fn broken_boot_sector(r: &dyn crate::bytes::ReadAt) -> Option<crate::report::Finding> {
    let head = r.read_vec(0, 512, "fat boot sector").ok()?;
    let jump = (head[0] == 0xEB && head[2] == 0x90) || head[0] == 0xE9;
    let named = head[0x36..0x39] == *b"FAT" || head[0x52..0x57] == *b"FAT32";
    if !(jump && named) {
        return None;
    }
    Fat::open(r).err().map(|e| read_error("fat", &e))
}

/// Consecutive clusters as `(first, count)` runs.
pub(crate) fn runs(clusters: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &c in clusters {
        match out.last_mut() {
            Some((first, n)) if first.checked_add(*n) == Some(c) => *n += 1,
            _ => out.push((c, 1)),
        }
    }
    out
}
