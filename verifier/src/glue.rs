//! Glue from the readers (partition tables, ext4, FAT) to the verify report and to the diff's
//! region maps: one pass over an image fills both.
//!
//! Each reader is called from exactly one function here (`table_section`, `ext4_section`,
//! `fat_section`), so a change in a reader's API touches one place. Reader errors never stop
//! the pass: they become findings, and the map keeps whatever was labelled before, so that
//! even a corrupt image can still be diffed structure by structure.

use crate::bytes::{ReadAt, Slice};
use crate::diff::{self, DiffReport};
use crate::disk::{self, Contents, Disk, Layout as DiskLayout};
use crate::expect::{Expectations, TableKind};
use crate::ext4::owner::Owner;
use crate::ext4::{Ext4, FileType};
use crate::fat::Fat;
use crate::fields;
use crate::guid::Guid;
use crate::ids;
use crate::regions::{Label, Layout, Records, Region, RegionMap, RegionMapBuilder};
use crate::report::{
    DerivedIds, Ext4Info, FileInfo, Finding, FsInfo, FsType, PartitionInfo, Severity, TimeRule, VerifyReport,
};
use std::collections::{BTreeMap, HashSet};

/// The largest /etc/passwd or /etc/group read to resolve `contents` owners.
const MAX_ACCOUNTS_FILE: u64 = 4 << 20;

/// What one pass over an image finds: the report (before checks) and the region map.
pub struct Inspection {
    pub report: VerifyReport,
    pub map: RegionMap,
}

/// Reads every structure of an image; never fails (reader errors become findings).
pub fn inspect(r: &dyn ReadAt, path: Option<&str>) -> Inspection {
    let mut report = VerifyReport::default();
    report.image.path = path.map(str::to_string);
    report.image.size = r.len();
    let mut map = RegionMap::builder();
    match disk::open(r) {
        Ok(d) => {
            table_section(&d, &mut report, &mut map);
            report.findings.extend(crate::bootcode::findings(r, &d));
            for p in &d.partitions {
                let part = (p.number != 0).then_some(p.number);
                match p.contents {
                    Contents::Ext { .. } => ext4_section(r, part, p.start, p.len, &mut report, &mut map),
                    Contents::Fat { .. } => fat_section(r, part, p.start, p.len, &mut report, &mut map),
                    Contents::Extended | Contents::Unknown => {}
                }
            }
            let uuids: Vec<String> = report.filesystems.iter().filter_map(|f| f.uuid.clone()).collect();
            report.findings.extend(crate::bootcode::grub_cfg_section(r, &d, &uuids));
        }
        Err(e) => report.findings.push(read_error("partition table", &e)),
    }
    Inspection { report, map: map.build() }
}

/// `reprodisk verify`: inspect, then check against the spec (if any) and lint.
/// `env_epoch` is the caller's SOURCE_DATE_EPOCH environment variable, parsed.
pub fn verify(
    r: &dyn ReadAt,
    path: Option<&str>,
    expect: Option<&Expectations>,
    env_epoch: Option<i64>,
) -> VerifyReport {
    let mut report = inspect(r, path).report;
    if expect.is_none() {
        // Without a spec, the table readers' own ID lints (which infer the layout) are the
        // only check of the GPT GUIDs; with one, `VerifyReport::check` compares them exactly.
        if let Ok(d) = disk::open(r) {
            let lints = crate::lints::lint_ids(&d, None);
            report.findings.extend(
                lints.iter().filter(|f| f.code != "mbr.signature.not-derived").map(from_table_finding),
            );
        }
    }
    let derived = derived_ids(&report, expect);
    report.check(expect, env_epoch, &derived);
    report
}

/// `reprodisk diff`: both images inspected for their maps, then compared.
pub fn diff_images(a: &dyn ReadAt, b: &dyn ReadAt) -> crate::Result<DiffReport> {
    let map_a = inspect(a, None).map;
    let map_b = inspect(b, None).map;
    diff::diff(a, b, &map_a, &map_b)
}

/// The IDs ARCHITECTURE.md derives, from the spec's anchors or, without one, from the anchors
/// the image carries (the root partition's GUID, the ext4 UUID).
fn derived_ids(report: &VerifyReport, expect: Option<&Expectations>) -> DerivedIds {
    let spec_root = expect.and_then(|e| Guid::parse(&e.root_gpuid).ok());
    let root_part = expect.and_then(|e| e.layout.root_partition());
    let image_root = report
        .table
        .partitions
        .iter()
        .find(|p| Some(p.number) == root_part)
        .or(report.table.partitions.last())
        .and_then(|p| p.guid.as_deref())
        .and_then(|g| Guid::parse(g).ok());
    let ext4_uuid = report
        .filesystems
        .iter()
        .find(|f| f.fs_type == FsType::Ext4)
        .and_then(|f| f.uuid.as_deref())
        .and_then(|u| Guid::parse(u).ok());
    let anchor = spec_root.or(image_root).or(ext4_uuid);
    let mut d = DerivedIds { mbr_signature: anchor.map(ids::mbr_disk_signature), ..Default::default() };
    let spec_fsuid = expect.and_then(|e| e.root_fsuid.as_deref()).and_then(|u| Guid::parse(u).ok());
    for fs in &report.filesystems {
        match fs.fs_type {
            FsType::Ext4 => {
                let own = fs.uuid.as_deref().and_then(|u| Guid::parse(u).ok());
                let is_root = fs.partition == root_part;
                if let Some(fsuid) = if is_root { spec_fsuid.or(own) } else { own } {
                    let seed = ids::ext4_hash_seed(fsuid);
                    d.ext4_hash_seed.insert(fs.partition, crate::ext4::summary::uuid_string(&seed));
                }
            }
            _ => {
                if let (Some(n), Some(a)) = (fs.partition, anchor) {
                    d.fat_volume_ids.insert(n, ids::fat_volume_id(n, a));
                }
            }
        }
    }
    d
}

/// The partition table: report section and regions (MBR, GPT headers and entry arrays,
/// every partition's extent as a fallback label).
fn table_section<'a>(d: &Disk<'a, dyn ReadAt + 'a>, rep: &mut VerifyReport, map: &mut RegionMapBuilder) {
    rep.table.kind = match d.layout {
        DiskLayout::Gpt => TableKind::Gpt,
        DiskLayout::Mbr => TableKind::Mbr,
        DiskLayout::None => TableKind::None,
    };
    rep.table.mbr_signature = d.mbr.as_ref().map(|m| m.unique_mbr_disk_signature);
    rep.table.boot_code = d.mbr.as_ref().map(|m| match &m.boot_code {
        crate::mbr::BootCode::Empty => "empty".to_string(),
        crate::mbr::BootCode::Grub { kernel_sector, .. } => {
            format!("grub boot.img, core.img at sector {kernel_sector}")
        }
        crate::mbr::BootCode::Other { sha256 } => format!("other (sha256 {sha256})"),
    });
    if d.mbr.is_some() {
        map.add(Region::structure(0, None, &fields::MBR));
    }
    if let Some(g) = &d.gpt {
        rep.table.disk_guid = Some(g.primary.disk_guid.to_string());
        rep.table.first_usable_lba = Some(g.primary.first_usable_lba);
        rep.table.last_usable_lba = Some(g.primary.last_usable_lba);
        let ss = g.sector_size;
        let mut headers = vec![("primary", &g.primary)];
        headers.extend(g.backup.as_ref().map(|b| ("backup", b)));
        for (which, h) in headers {
            map.add(
                Region::structure(h.my_lba.saturating_mul(ss), None, &fields::GPT_HEADER)
                    .with_label(Label::new(None, format!("gpt header ({which})"))),
            );
            map.add(Region::array(
                h.partition_entry_lba.saturating_mul(ss),
                u64::from(h.number_of_partition_entries),
                u64::from(h.size_of_partition_entry),
                Label::new(None, format!("gpt entry array ({which})")),
                Records { table: &fields::GPT_ENTRY, first: 1, what: "entry" },
            ));
        }
    }
    if d.layout == DiskLayout::None {
        rep.findings.extend(d.findings.iter().map(from_table_finding));
        return;
    }
    for p in &d.partitions {
        let ss = d.sector_size;
        let entry = d.gpt.as_ref().and_then(|g| g.entries.iter().find(|e| e.index == p.number));
        let record = d.mbr.as_ref().and_then(|m| m.partitions().find(|r| r.number == p.number));
        let (start_lba, sectors) = match (entry, record) {
            (Some(e), _) => (e.starting_lba, e.sectors()),
            (None, Some(r)) if d.layout == DiskLayout::Mbr => (r.starting_lba, u64::from(r.size_in_lba)),
            _ => (p.start / ss, p.len / ss),
        };
        rep.table.partitions.push(PartitionInfo {
            number: p.number,
            start_lba,
            sectors,
            type_id: match (p.type_guid, p.mbr_type) {
                (Some(g), _) => g.to_string(),
                (None, Some(t)) => format!("{t:#04x}"),
                (None, None) => String::new(),
            },
            type_name: p.type_name.unwrap_or_default().to_string(),
            name: p.name.clone(),
            guid: p.unique_guid.map(|g| g.to_string()),
            bootable: p.bootable,
            attributes: entry.map_or(0, |e| e.attributes.raw),
        });
        map.add(Region::new(p.start, p.len, Label::new(Some(p.number), "partition data")));
    }
    rep.findings.extend(d.findings.iter().map(from_table_finding));
}

/// One ext4 filesystem at `[start, start + len)` of the image.
fn ext4_section(
    r: &dyn ReadAt,
    part: Option<u32>,
    start: u64,
    len: u64,
    rep: &mut VerifyReport,
    map: &mut RegionMapBuilder,
) {
    let where_ = part.map_or("ext4".to_string(), |p| format!("partition {p} ext4"));
    let fs = match Ext4::open(Slice { inner: r, start, len }) {
        Ok(fs) => fs,
        Err(e) => return rep.findings.push(read_error(&where_, &e)),
    };
    let sb = &fs.sb;
    let bs = sb.block_size();
    let mut info = FsInfo::new(part, FsType::Ext4);
    info.label = String::from_utf8_lossy(&sb.s_volume_name).into_owned();
    info.uuid = Some(crate::ext4::summary::uuid_string(&sb.s_uuid));
    info.size_bytes = sb.s_blocks_count.saturating_mul(bs);
    info.block_size = u32::try_from(bs).unwrap_or(u32::MAX);
    info.ext4 = Some(Ext4Info {
        hash_seed: crate::ext4::summary::uuid_string(&sb.s_hash_seed),
        mount_count: sb.s_mnt_count,
        max_mount_count: sb.s_max_mnt_count,
        last_mounted: String::from_utf8_lossy(&sb.s_last_mounted).into_owned(),
        kbytes_written: sb.s_kbytes_written,
        state: sb.s_state,
        needs_recovery: sb.features.needs_recovery(),
        journal_clean: fs.journal.as_ref().map(|j| j.is_clean()),
        features: sb.features.names(),
    });
    let sb_times = [
        ("s_mkfs_time", TimeRule::Epoch, sb.s_mkfs_time),
        ("s_wtime", TimeRule::LastWrite, sb.s_wtime),
        ("s_mtime", TimeRule::LastMount, sb.s_mtime),
        ("s_lastcheck", TimeRule::ZeroOrEpoch, sb.s_lastcheck),
        ("s_first_error_time", TimeRule::ZeroOrEpoch, sb.s_first_error_time),
        ("s_last_error_time", TimeRule::ZeroOrEpoch, sb.s_last_error_time),
    ];
    for (field, rule, value) in sb_times {
        rep.add_time(part, &format!("ext4 superblock {field}"), rule, value, "superblock");
    }

    // Fixed metadata first; finer regions added later win where they overlap.
    let groups = sb.group_count();
    for g in 0..groups {
        if !sb.group_has_super(g) {
            continue;
        }
        let first = sb.group_first_block(g);
        let (sb_off, what) =
            if g == 0 { (1024, String::new()) } else { (first * bs, format!(" (backup in group {g})")) };
        map.add(
            Region::structure(start + sb_off, part, &fields::EXT4_SUPERBLOCK)
                .with_label(Label::new(part, format!("ext4 superblock{what}"))),
        );
        if !sb.features.meta_bg() {
            map.add(Region::array(
                start + (first + 1) * bs,
                groups,
                sb.desc_size(),
                Label::new(part, format!("ext4 group descriptors{what}")),
                Records { table: &fields::EXT4_GROUP_DESC, first: 0, what: "group" },
            ));
        }
    }
    let isz = u64::from(sb.s_inode_size);
    let ipg = u64::from(sb.s_inodes_per_group);
    for gd in &fs.groups {
        let g = u64::from(gd.group);
        map.add(Region::array(
            start + gd.bg_inode_table * bs,
            ipg,
            isz,
            Label::new(part, "ext4 inode table").with_detail(format!("group {g}")),
            Records { table: &fields::EXT4_INODE, first: g * ipg + 1, what: "inode" },
        ));
    }
    if sb.features.has_journal() && sb.s_journal_inum != 0 {
        let first = fs.inode(sb.s_journal_inum).and_then(|i| fs.block_map(&i));
        match first {
            Ok(bm) => {
                if let Some(e) = bm.extents.iter().find(|e| e.logical == 0) {
                    map.add(Region::structure(start + e.physical * bs, part, &fields::JBD2_SUPERBLOCK));
                }
            }
            Err(e) => rep.findings.push(read_error(&format!("{where_} journal"), &e)),
        }
    }

    let entries = match fs.walk() {
        Ok(entries) => entries,
        Err(e) => {
            rep.findings.push(read_error(&format!("{where_} tree"), &e));
            rep.filesystems.push(info);
            return;
        }
    };
    match fs.owner_map(&entries) {
        Ok(owners) => {
            for o in owners.ranges() {
                let label = owner_label(part, &o.owner);
                // Inode tables and superblocks have finer regions above; these cover the rest
                // of their blocks.
                map.add(Region::new(start + o.start * bs, o.len * bs, label));
            }
            // Bitmaps, their checksums and free counts against what the walk found in use,
            // then the backup superblocks and descriptors against the primary ones.
            if let Err(e) = fs.check_bitmaps(&owners, &entries) {
                rep.findings.push(read_error(&format!("{where_} bitmaps"), &e));
            }
        }
        Err(e) => rep.findings.push(read_error(&format!("{where_} block ownership"), &e)),
    }
    if let Err(e) = fs.check_backups() {
        rep.findings.push(read_error(&format!("{where_} backup superblocks"), &e));
    }
    let mut seen = HashSet::new();
    for e in &entries {
        let path = String::from_utf8_lossy(&e.path).into_owned();
        let Some(gd) = fs.groups.get(((u64::from(e.ino) - 1) / ipg.max(1)) as usize) else { continue };
        if seen.insert(e.ino) {
            let idx = (u64::from(e.ino) - 1) % ipg.max(1);
            map.add(
                Region::structure(start + gd.bg_inode_table * bs + idx * isz, part, &fields::EXT4_INODE)
                    .with_label(Label::new(part, "inode").with_detail(format!("{} {path}", e.ino))),
            );
            // The extended inode area past the structure (in-inode xattrs) belongs to it too.
            let tail = fields::EXT4_INODE.len;
            if isz > tail {
                map.add(Region::new(
                    start + gd.bg_inode_table * bs + idx * isz + tail,
                    isz - tail,
                    Label::new(part, "inode").with_detail(format!("{} {path} in-inode xattrs", e.ino)),
                ));
            }
        }
        info.files.push(FileInfo {
            path: path.clone(),
            mode: type_bits(e.file_type) | u32::from(e.mode),
            uid: e.uid,
            gid: e.gid,
        });
        for (field, t) in [
            ("i_atime", Some(e.atime)),
            ("i_ctime", Some(e.ctime)),
            ("i_mtime", Some(e.mtime)),
            ("i_crtime", e.crtime),
        ] {
            if let Some(t) = t {
                rep.add_time(part, &format!("ext4 inode {field}"), TimeRule::File, t.sec, &path);
            }
        }
    }
    info.file_count = entries.len() as u64;
    for (file, table) in [("/etc/passwd", &mut info.users), ("/etc/group", &mut info.groups)] {
        if let Some(e) =
            entries.iter().find(|e| e.path == file.as_bytes() && e.file_type == FileType::Regular)
        {
            match fs.read_file(e.ino, MAX_ACCOUNTS_FILE) {
                Ok(bytes) => *table = parse_accounts(&bytes),
                Err(err) => rep.findings.push(read_error(&format!("{where_} {file}"), &err)),
            }
        }
    }
    rep.filesystems.push(info);
}

/// One FAT filesystem at `[start, start + len)` of the image.
fn fat_section(
    r: &dyn ReadAt,
    part: Option<u32>,
    start: u64,
    len: u64,
    rep: &mut VerifyReport,
    map: &mut RegionMapBuilder,
) {
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
        info.files.push(FileInfo { path: n.path.clone(), mode, uid: 0, gid: 0 });
    }
    info.file_count = tree.nodes.len() as u64;
    rep.filesystems.push(info);
}

/// Consecutive clusters as `(first, count)` runs.
fn runs(clusters: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &c in clusters {
        match out.last_mut() {
            Some((first, n)) if first.checked_add(*n) == Some(c) => *n += 1,
            _ => out.push((c, 1)),
        }
    }
    out
}

fn owner_label(part: Option<u32>, owner: &Owner) -> Label {
    let p = |path: &[u8]| String::from_utf8_lossy(path).into_owned();
    match owner {
        Owner::FileData { path, .. } => Label::new(part, "file").with_detail(format!("{} data", p(path))),
        Owner::DirBlock { path, .. } => Label::new(part, "ext4 directory").with_detail(p(path)),
        Owner::BlockMapBlock { path, .. } => Label::new(part, "ext4 extent block").with_detail(p(path)),
        Owner::XattrBlock { path, .. } => Label::new(part, "ext4 xattr block").with_detail(p(path)),
        other => Label::new(part, format!("ext4 {other}")),
    }
}

fn type_bits(t: FileType) -> u32 {
    match t {
        FileType::Fifo => 0o010_000,
        FileType::CharDevice => 0o020_000,
        FileType::Directory => 0o040_000,
        FileType::BlockDevice => 0o060_000,
        FileType::Regular => 0o100_000,
        FileType::Symlink => 0o120_000,
        FileType::Socket => 0o140_000,
    }
}

/// `name:x:id:...` lines of /etc/passwd or /etc/group: name to id.
fn parse_accounts(bytes: &[u8]) -> BTreeMap<String, u32> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?.trim();
            let id = f.nth(1)?.trim().parse().ok()?;
            (!name.is_empty() && !name.starts_with('#')).then(|| (name.to_string(), id))
        })
        .collect()
}

fn read_error(what: &str, e: &crate::Error) -> Finding {
    Finding::new(Severity::Error, "read-error", format!("{e}"), Some(what.to_string()))
}

fn from_table_finding(f: &crate::lints::Finding) -> Finding {
    let severity = match f.severity {
        crate::lints::Severity::Error => Severity::Error,
        crate::lints::Severity::Warning => Severity::Warning,
        crate::lints::Severity::Info => Severity::Info,
    };
    Finding::new(severity, f.code, f.message.clone(), Some(f.location.to_string()))
}

fn from_fat_finding(f: &crate::fat::Finding) -> Finding {
    let at = crate::error::Location { structure: f.structure.clone(), offset: f.offset };
    Finding::new(Severity::Warning, "fat-structure", f.what.clone(), Some(at.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::ImageFile;
    use crate::expect::{SEED_DISK_GUID, SEED_PART1_GUID, SEED_ROOT_GUID};
    use std::path::Path;
    use std::process::Command;

    const MIB: u64 = 1 << 20;

    #[test]
    fn cluster_runs() {
        assert_eq!(runs(&[5, 6, 7, 9, 10, 3]), [(5, 3), (9, 2), (3, 1)]);
        assert!(runs(&[]).is_empty());
    }

    #[test]
    fn accounts_files() {
        let m = parse_accounts(
            b"root:x:0:0:root:/root:/bin/sh\n# comment\nnobody:x:65534:65534::/:/bin/false\nbad\n",
        );
        assert_eq!(m.get("root"), Some(&0));
        assert_eq!(m.get("nobody"), Some(&65534));
        assert_eq!(m.len(), 2);
    }

    /// An mtools command with its clock pinned (mtools honours SOURCE_DATE_EPOCH), so that two
    /// images written one after the other get the same entry times.
    fn mtools(tool: &str) -> Command {
        let mut c = Command::new(tool);
        c.env("SOURCE_DATE_EPOCH", "315532800");
        c
    }

    fn run(cmd: &mut Command, package: &str) {
        let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?} (install {package}): {e}"));
        assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// An `efi` image as the seed makes it (parted, sgdisk with the seed's GUIDs, mkfs.vfat
    /// and mkfs.ext4 at the partition offsets), 64 MiB with bootSize 24M (ESP 8..25 MiB).
    fn seed_efi_image(dir: &Path) -> std::path::PathBuf {
        let img = dir.join("efi.img");
        std::fs::File::create(&img).and_then(|f| f.set_len(64 * MIB)).expect("scratch image");
        let script = "mklabel gpt mkpart ESP fat32 8MiB 25MiB set 1 boot on mkpart primary ext4 25MiB 100%";
        run(Command::new("parted").arg("--script").arg(&img).arg("--").args(script.split(' ')), "parted");
        run(
            Command::new("sgdisk")
                .arg(format!("--disk-guid={SEED_DISK_GUID}"))
                .arg(format!("--partition-guid=1:{SEED_PART1_GUID}"))
                .arg(format!("--partition-guid=2:{SEED_ROOT_GUID}"))
                .arg(&img),
            "gdisk",
        );
        run(
            Command::new("mkfs.vfat").args(["-n", "ESP", "--offset=16384"]).arg(&img).arg("17408"),
            "dosfstools",
        );
        let src = dir.join("loader.conf");
        std::fs::write(&src, "timeout 3\n").expect("scratch file");
        let esp = format!("{}@@{}", img.display(), 8 * MIB);
        run(mtools("mmd").args(["-i", &esp, "::/loader"]), "mtools");
        run(mtools("mcopy").args(["-i", &esp]).arg(&src).arg("::/loader/loader.conf"), "mtools");
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("etc")).expect("scratch tree");
        std::fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").expect("scratch tree");
        std::fs::write(root.join("etc/group"), "root:x:0:\nwheel:x:10:\n").expect("scratch tree");
        std::fs::write(root.join("etc/motd"), "hello\n").expect("scratch tree");
        run(
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-b", "4096", "-L", "nixos", "-U", SEED_ROOT_GUID, "-d"])
                .arg(&root)
                .arg("-E")
                .arg(format!("offset={}", 25 * MIB))
                .arg(&img)
                .arg(format!("{}K", 38 * 1024)),
            "e2fsprogs",
        );
        img
    }

    fn spec() -> Expectations {
        Expectations::from_toml_str(
            "partitionTableType = \"efi\"\ndiskSize = 64\nbootSize = \"24M\"\n\
             [[contents]]\nsource = \"motd\"\ntarget = \"/etc/motd\"\n",
        )
        .expect("valid spec")
    }

    /// A seed-made image passes every layout, label and GUID check, and the lints name
    /// exactly what mkfs leaves random: times, the hash seed, the FAT volume ID.
    #[test]
    fn verify_a_seed_made_efi_image() {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = seed_efi_image(dir.path());
        let r = ImageFile::open(&img).expect("open image");
        let rep = verify(&r, Some("efi.img"), Some(&spec()), None);
        let text = rep.render_text();
        let errors: Vec<&str> =
            rep.findings.iter().filter(|f| f.severity == Severity::Error).map(|f| f.code.as_str()).collect();
        for code in &errors {
            assert!(
                [
                    "time-not-epoch",
                    "last-write-time",
                    "id-not-derived",
                    "file-time-after-epoch",
                    "ext4-kbytes-written"
                ]
                .contains(code),
                "unexpected {code}:\n{text}"
            );
        }
        assert!(errors.contains(&"id-not-derived"), "{text}");
        assert!(errors.contains(&"time-not-epoch"), "{text}");
        assert_eq!(rep.table.disk_guid.as_deref(), Some(SEED_DISK_GUID));
        assert_eq!(rep.layout, Some(crate::expect::LayoutName::Efi));
        assert_eq!(rep.table.boot_code.as_deref(), Some("empty"));
        let p: Vec<(u64, u64)> = rep.table.partitions.iter().map(|p| (p.start_lba, p.sectors)).collect();
        // On a 64 MiB disk parted ends `100%` at the last usable sector (see expect.rs).
        assert_eq!(p, [(16384, 34816), (51200, 79839)]);
        let fs: Vec<(Option<u32>, FsType, &str)> =
            rep.filesystems.iter().map(|f| (f.partition, f.fs_type, f.label.as_str())).collect();
        assert_eq!(fs, [(Some(1), FsType::Fat16, "ESP"), (Some(2), FsType::Ext4, "nixos")]);
        assert_eq!(rep.filesystems[1].uuid.as_deref(), Some(SEED_ROOT_GUID.to_lowercase().as_str()));
        assert_eq!(rep.filesystems[1].users.get("root"), Some(&0));
        assert!(rep.filesystems[0].files.iter().any(|f| f.path == "/loader/loader.conf"), "{text}");
    }

    /// A `legacy` (MBR) image and a bare `none` filesystem, as the seed makes them: the table,
    /// the root filesystem and the derived-ID lints (the MBR signature parted left random).
    #[test]
    fn verify_seed_made_legacy_and_none_images() {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = dir.path().join("legacy.img");
        std::fs::File::create(&img).and_then(|f| f.set_len(48 * MIB)).expect("scratch image");
        let script = "mklabel msdos mkpart primary ext4 1MiB 100%";
        run(Command::new("parted").arg("--script").arg(&img).arg("--").args(script.split(' ')), "parted");
        let mkfs = |target: &Path, offset: u64, kib: u64| {
            run(
                Command::new("mkfs.ext4")
                    .args(["-q", "-F", "-b", "4096", "-L", "nixos", "-U", SEED_ROOT_GUID])
                    .arg("-E")
                    .arg(format!("offset={offset}"))
                    .arg(target)
                    .arg(format!("{kib}K")),
                "e2fsprogs",
            )
        };
        mkfs(&img, MIB, 47 * 1024);
        let spec =
            Expectations::from_toml_str("partitionTableType = \"legacy\"\ndiskSize = 48").expect("valid");
        let rep = verify(&ImageFile::open(&img).expect("open"), None, Some(&spec), None);
        let text = rep.render_text();
        assert_eq!(rep.layout, Some(crate::expect::LayoutName::Legacy), "{text}");
        assert_eq!(rep.table.partitions.len(), 1, "{text}");
        assert_eq!((rep.table.partitions[0].start_lba, rep.table.partitions[0].sectors), (2048, 96256));
        assert_eq!(rep.table.partitions[0].type_id, "0x83");
        let codes: Vec<&str> = rep.findings.iter().map(|f| f.code.as_str()).collect();
        for forbidden in
            ["partition-start", "partition-size", "partition-type", "fs-missing", "fs-label", "fs-uuid"]
        {
            assert!(!codes.contains(&forbidden), "{forbidden}:\n{text}");
        }
        let sig = rep.ids.iter().find(|i| i.what == "mbr disk signature").expect(&text);
        assert_eq!(sig.matches(), Some(false), "parted writes a random signature:\n{text}");

        let bare = dir.path().join("none.img");
        std::fs::File::create(&bare).and_then(|f| f.set_len(16 * MIB)).expect("scratch image");
        mkfs(&bare, 0, 16 * 1024);
        let spec = Expectations::from_toml_str("partitionTableType = \"none\"").expect("valid");
        let rep = verify(&ImageFile::open(&bare).expect("open"), None, Some(&spec), None);
        let text = rep.render_text();
        assert_eq!(rep.layout, Some(crate::expect::LayoutName::None), "{text}");
        assert!(rep.table.partitions.is_empty(), "{text}");
        assert_eq!(rep.filesystems.len(), 1, "{text}");
        assert_eq!((rep.filesystems[0].partition, rep.filesystems[0].label.as_str()), (None, "nixos"));
        let codes: Vec<&str> = rep.findings.iter().map(|f| f.code.as_str()).collect();
        assert!(!codes.contains(&"fs-missing") && !codes.contains(&"fs-uuid"), "{text}");
    }

    /// Two images that differ in one superblock field: the diff names exactly that field.
    #[test]
    fn diff_names_the_one_changed_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = seed_efi_image(dir.path());
        let other = dir.path().join("other.img");
        std::fs::copy(&img, &other).expect("copy image");
        let at = 25 * MIB + 1024 + 0x30;
        {
            use std::os::unix::fs::FileExt;
            let f = std::fs::OpenOptions::new().write(true).open(&other).expect("open copy");
            f.write_all_at(&1_732_550_400u32.to_le_bytes(), at).expect("write s_wtime");
        }
        let a = ImageFile::open(&img).expect("open a");
        let b = ImageFile::open(&other).expect("open b");
        let d = diff_images(&a, &b).expect("diff");
        assert_eq!(d.groups.len(), 1, "{}", d.render_text());
        assert_eq!(d.groups[0].name, "partition 2 ext4 superblock s_wtime");
        assert_eq!(d.groups[0].b.as_deref(), Some("1732550400"));
        assert_eq!(d.unexplained.ranges, 0);
    }

    /// A file changed through mtools and a label changed through tune2fs are named by file and
    /// by field.
    #[test]
    fn diff_names_files_and_tool_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = seed_efi_image(dir.path());
        let other = dir.path().join("other.img");
        std::fs::copy(&img, &other).expect("copy image");
        let src = dir.path().join("loader.conf");
        std::fs::write(&src, "timeout 5\n").expect("scratch file");
        let esp = format!("{}@@{}", other.display(), 8 * MIB);
        run(mtools("mcopy").args(["-o", "-i", &esp]).arg(&src).arg("::/loader/loader.conf"), "mtools");
        let a = ImageFile::open(&img).expect("open a");
        let b = ImageFile::open(&other).expect("open b");
        let d = diff_images(&a, &b).expect("diff");
        let names: Vec<&str> = d.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["partition 1 file /loader/loader.conf data"], "{}", d.render_text());

        // tune2fs rewrites the label in the primary superblock (and its checksum).
        run(
            Command::new("tune2fs").args(["-L", "other"]).arg(format!(
                "{}?offset={}",
                other.display(),
                25 * MIB
            )),
            "e2fsprogs",
        );
        let b = ImageFile::open(&other).expect("open b");
        let d = diff_images(&a, &b).expect("diff");
        let text = d.render_text();
        let g = d.groups.iter().find(|g| g.field.as_deref() == Some("s_volume_name")).expect(&text);
        assert_eq!((g.a.as_deref(), g.b.as_deref()), (Some("\"nixos\""), Some("\"other\"")), "{text}");
        assert!(d.groups.iter().any(|g| g.field.as_deref() == Some("s_checksum")), "{text}");
        assert_eq!(d.unexplained.ranges, 0, "{text}");
    }

    /// The same two files copied into a FAT directory in two orders: the directory's entries
    /// are named a reorder.
    #[test]
    fn diff_names_a_fat_directory_reorder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = seed_efi_image(dir.path());
        let other = dir.path().join("other.img");
        std::fs::copy(&img, &other).expect("copy image");
        for (name, text) in [("a.conf", "title a\n"), ("b.conf", "title b\n")] {
            std::fs::write(dir.path().join(name), text).expect("scratch file");
        }
        for (image, order) in [(&img, ["a.conf", "b.conf"]), (&other, ["b.conf", "a.conf"])] {
            let esp = format!("{}@@{}", image.display(), 8 * MIB);
            run(mtools("mmd").args(["-i", &esp, "::/entries"]), "mtools");
            for name in order {
                let src = dir.path().join(name);
                run(mtools("mcopy").args(["-i", &esp]).arg(&src).arg(format!("::/entries/{name}")), "mtools");
            }
        }
        let a = ImageFile::open(&img).expect("open a");
        let b = ImageFile::open(&other).expect("open b");
        let d = diff_images(&a, &b).expect("diff");
        let text = d.render_text();
        assert!(
            d.groups.iter().any(|g| g.name == "partition 1 FAT directory /entries entry order"),
            "{text}"
        );
        assert_eq!(d.unexplained.ranges, 0, "{text}");
    }
}
