//! The ext4 section of an inspection: the filesystem's report entry (label, UUID, features,
//! times, files, owners) and the labelled regions of its structures for the diff.

use crate::bytes::Slice;
use crate::ext4::owner::Owner;
use crate::ext4::{Ext4, FileType};
use crate::fields;
use crate::glue::{Part, read_error};
use crate::regions::{Label, Records, Region, RegionMapBuilder};
use crate::report::{Ext4Info, FileInfo, FileTree, FsInfo, FsType, TimeRule, VerifyReport};
use std::collections::{BTreeMap, HashSet};

/// The largest /etc/passwd or /etc/group read to resolve `contents` owners.
const MAX_ACCOUNTS_FILE: u64 = 4 << 20;

/// One ext4 filesystem at `[start, start + len)` of the image.
pub fn section(p: &Part<'_>, rep: &mut VerifyReport, map: &mut RegionMapBuilder) {
    let (r, part, start, len) = (p.image, p.number, p.start, p.len);
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

    let fixed = fixed_regions(&fs, part, start);
    let isz = u64::from(sb.s_inode_size);
    let ipg = u64::from(sb.s_inodes_per_group);
    let entries = match fs.walk() {
        Ok(entries) => entries,
        Err(e) => {
            for r in fixed {
                map.add(r);
            }
            rep.findings.push(read_error(&format!("{where_} tree"), &e));
            rep.filesystems.push(info);
            return;
        }
    };
    match fs.owner_map(&entries) {
        Ok(owners) => {
            for o in owners.ranges() {
                let label = owner_label(part, &o.owner);
                // Inode tables and superblocks get finer regions below; these cover the rest
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
    for r in fixed {
        map.add(r);
    }
    if let Err(e) = fs.check_backups() {
        rep.findings.push(read_error(&format!("{where_} backup superblocks"), &e));
    }
    let mut seen = HashSet::new();
    let mut files = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let path = crate::ext4::walk::shown_path(&entries, i);
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
        files.push(FileInfo {
            parent: e.parent,
            name: String::from_utf8_lossy(&e.name).into_owned(),
            end: e.end,
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
    info.files = FileTree::from_preorder(files);
    info.file_count = entries.len() as u64;
    for (file, table) in [("/etc/passwd", &mut info.users), ("/etc/group", &mut info.groups)] {
        let found = crate::ext4::walk::find(&entries, file.as_bytes()).and_then(|i| entries.get(i));
        if let Some(e) = found.filter(|e| e.file_type == FileType::Regular) {
            match fs.read_file(e.ino, MAX_ACCOUNTS_FILE) {
                Ok(bytes) => *table = parse_accounts(&bytes),
                Err(err) => rep.findings.push(read_error(&format!("{where_} {file}"), &err)),
            }
        }
    }
    rep.filesystems.push(info);
}

fn owner_label(part: Option<u32>, owner: &Owner) -> Label {
    let p = |path: &crate::ext4::owner::ShownPath| path.to_string();
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
pub(crate) fn parse_accounts(bytes: &[u8]) -> BTreeMap<String, u32> {
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

/// The fixed metadata structures with their field tables: superblocks, descriptor tables,
/// inode tables. They are added after the block owners, because a region wins over an
/// earlier one of the same length: on 1 KiB blocks a superblock is its whole block, and an
/// inode table always is, so the owner label must not hide the field names.
fn fixed_regions<R: crate::bytes::ReadAt>(fs: &Ext4<R>, part: Option<u32>, start: u64) -> Vec<Region> {
    let sb = &fs.sb;
    let bs = sb.block_size();
    let mut fixed = Vec::new();
    let groups = sb.group_count();
    for g in 0..groups {
        if !sb.group_has_super(g) {
            continue;
        }
        let first = sb.group_first_block(g);
        let (sb_off, what) =
            if g == 0 { (1024, String::new()) } else { (first * bs, format!(" (backup in group {g})")) };
        fixed.push(
            Region::structure(start + sb_off, part, &fields::EXT4_SUPERBLOCK)
                .with_label(Label::new(part, format!("ext4 superblock{what}"))),
        );
        if !sb.features.meta_bg() {
            fixed.push(Region::array(
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
        fixed.push(Region::array(
            start + gd.bg_inode_table * bs,
            ipg,
            isz,
            Label::new(part, "ext4 inode table").with_detail(format!("group {g}")),
            Records { table: &fields::EXT4_INODE, first: g * ipg + 1, what: "inode" },
        ));
    }
    fixed
}
