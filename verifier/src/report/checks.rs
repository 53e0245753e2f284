//! The checks of a report against a spec: the partition table's layout, geometry and IDs,
//! the filesystems each partition should hold, and the `contents` entries.

use super::*;
use crate::expect::{
    DiskSize, Expectations, ExpectedContent, LayoutName, TYPE_BIOS_BOOT, TYPE_ESP, TYPE_LINUX_DATA,
    TYPE_XBOOTLDR, TableKind,
};
use std::collections::BTreeMap;

impl VerifyReport {
    pub(super) fn collect_ids(&mut self, expect: Option<&Expectations>, derived: &DerivedIds) {
        let mut ids = Vec::new();
        let expected_parts = expect.map(|e| e.partitions(self.image.size)).unwrap_or_default();
        if let Some(g) = &self.table.disk_guid {
            let expected = expect.and_then(|e| e.expected_disk_guid()).map(str::to_string);
            ids.push(IdInfo {
                what: "gpt disk guid".into(),
                location: "gpt header".into(),
                value: g.clone(),
                expected,
            });
        }
        if let Some(s) = self.table.mbr_signature {
            // A protective MBR's signature is not an identity anyone reads; only MBR layouts'.
            let expected = if self.table.kind == TableKind::Mbr { derived.mbr_signature } else { None };
            ids.push(IdInfo {
                what: "mbr disk signature".into(),
                location: "mbr".into(),
                value: format!("{s:08x}"),
                expected: expected.map(|e| format!("{e:08x}")),
            });
        }
        for p in &self.table.partitions {
            if let Some(g) = &p.guid {
                let expected =
                    expected_parts.iter().find(|x| x.number == p.number).and_then(|x| x.guid.clone());
                ids.push(IdInfo {
                    what: "partition guid".into(),
                    location: format!("partition {}", p.number),
                    value: g.clone(),
                    expected,
                });
            }
        }
        for fs in &self.filesystems {
            if let Some(u) = &fs.uuid {
                let expected = expect.filter(|_| fs.fs_type == FsType::Ext4).and_then(|e| e.root_fs().uuid);
                ids.push(IdInfo {
                    what: "ext4 uuid".into(),
                    location: fs.location(),
                    value: u.clone(),
                    expected: expected.map(|e| e.to_lowercase()),
                });
            }
            if let Some(x) = &fs.ext4 {
                ids.push(IdInfo {
                    what: "ext4 hash seed".into(),
                    location: fs.location(),
                    value: x.hash_seed.clone(),
                    expected: derived.ext4_hash_seed.get(&fs.partition).cloned(),
                });
            }
            if let Some(v) = fs.volume_id {
                let expected = fs.partition.and_then(|p| derived.fat_volume_ids.get(&p));
                ids.push(IdInfo {
                    what: "fat volume id".into(),
                    location: fs.location(),
                    value: format!("{:04X}-{:04X}", v >> 16, v & 0xffff),
                    expected: expected.map(|e| format!("{:04X}-{:04X}", e >> 16, e & 0xffff)),
                });
            }
        }
        self.ids = ids;
    }

    pub(super) fn check_table(&mut self, e: &Expectations) {
        if let DiskSize::Bytes(n) = e.disk_size
            && n != self.image.size
        {
            self.push(
                Severity::Error,
                "disk-size",
                format!("the disk is {} bytes, the spec's diskSize asks for {n}", self.image.size),
                Some("image".to_string()),
            );
        }
        if self.table.kind != e.table() {
            self.push(
                Severity::Error,
                "layout-table",
                format!(
                    "layout {} needs {} partition table, the image has {} partition table",
                    e.layout.as_str(),
                    e.table().as_str(),
                    self.table.kind.as_str()
                ),
                Some("partition table".to_string()),
            );
            return;
        }
        let expected = e.partitions(self.image.size);
        if self.table.partitions.len() != expected.len() {
            self.push(
                Severity::Error,
                "partition-count",
                format!(
                    "layout {} has {}, the image has {}",
                    e.layout.as_str(),
                    count(expected.len(), "partition", "partitions"),
                    self.table.partitions.len()
                ),
                Some("partition table".to_string()),
            );
        }
        let mut findings = Vec::new();
        for x in &expected {
            let loc = Some(format!("partition {}", x.number));
            let Some(p) = self.table.partitions.iter().find(|p| p.number == x.number) else {
                findings.push((
                    "partition-missing",
                    format!("partition {} is missing", x.number),
                    loc.clone(),
                ));
                continue;
            };
            let mut diff = |code: &'static str, what: &str, actual: String, wanted: String| {
                if !actual.eq_ignore_ascii_case(&wanted) {
                    findings.push((
                        code,
                        format!("{what} is {actual}, the spec's layout gives {wanted}"),
                        loc.clone(),
                    ));
                }
            };
            diff("partition-start", "start sector", p.start_lba.to_string(), x.start_lba.to_string());
            diff("partition-size", "size in sectors", p.sectors.to_string(), x.sectors.to_string());
            if let Some(t) = x.gpt_type {
                diff("partition-type", "type", p.type_id.clone(), t.to_string());
            }
            if let Some(t) = x.mbr_type {
                diff("partition-type", "type", p.type_id.clone(), format!("{t:#04x}"));
            }
            if let Some(n) = x.name {
                diff(
                    "partition-name",
                    "name",
                    format!("{:?}", p.name.clone().unwrap_or_default()),
                    format!("{n:?}"),
                );
            }
            if x.mbr_type.is_some() {
                diff("partition-boot-flag", "boot flag", p.bootable.to_string(), x.bootable.to_string());
            } else {
                diff(
                    "partition-attributes",
                    "attributes",
                    format!("{:#x}", p.attributes),
                    format!("{:#x}", x.attributes),
                );
            }
            if let Some(g) = &x.guid {
                diff("partition-guid", "unique GUID", p.guid.clone().unwrap_or_default(), g.clone());
            }
        }
        for (code, message, loc) in findings {
            self.push(Severity::Error, code, message, loc);
        }
        if let (Some(wanted), Some(actual)) = (e.expected_disk_guid(), self.table.disk_guid.clone())
            && !wanted.eq_ignore_ascii_case(&actual)
        {
            self.push(
                Severity::Error,
                "disk-guid",
                format!("the disk GUID is {actual}, the spec gives {wanted}"),
                Some("gpt header".to_string()),
            );
        }
    }

    pub(super) fn check_filesystems(&mut self, e: &Expectations) {
        let mut wanted: Vec<(Option<u32>, crate::expect::ExpectedFs)> = e
            .partitions(self.image.size)
            .into_iter()
            .filter_map(|p| Some((Some(p.number), p.filesystem?)))
            .collect();
        if e.table() == TableKind::None {
            wanted.push((None, e.root_fs()));
        }
        let mut findings = Vec::new();
        for (part, x) in wanted {
            let loc = part.map_or("image".to_string(), |p| format!("partition {p}"));
            let Some(fs) = self.filesystems.iter().find(|f| f.partition == part) else {
                findings.push((
                    "fs-missing",
                    format!("no filesystem found, the spec asks for {}", x.kind.as_str()),
                    loc,
                ));
                continue;
            };
            if fs.fs_type.kind() != x.kind {
                findings.push((
                    "fs-type",
                    format!(
                        "the filesystem is {}, the spec asks for {}",
                        fs.fs_type.user_name(),
                        x.kind.as_str()
                    ),
                    loc,
                ));
                continue;
            }
            // FAT labels are stored uppercase and space-padded.
            let label_ok = match x.kind {
                FsKind::Vfat => fs.label.trim_end().eq_ignore_ascii_case(&x.label),
                FsKind::Ext4 => fs.label == x.label,
            };
            if !label_ok {
                findings.push((
                    "fs-label",
                    format!("the label is {:?}, the spec gives {:?}", fs.label, x.label),
                    loc.clone(),
                ));
            }
            if let Some(u) = &x.uuid
                && !fs.uuid.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(u))
            {
                findings.push((
                    "fs-uuid",
                    format!("the UUID is {}, the spec gives {u}", fs.uuid.as_deref().unwrap_or("missing")),
                    loc,
                ));
            }
        }
        for (code, message, loc) in findings {
            self.push(Severity::Error, code, message, Some(loc));
        }
    }

    pub(super) fn check_contents(&mut self, e: &Expectations) {
        if e.contents.is_empty() {
            return;
        }
        let root = e.layout.root_partition();
        let Some(fs) = self.filesystems.iter().find(|f| f.partition == root && f.fs_type == FsType::Ext4)
        else {
            return; // check_filesystems already reported the missing root filesystem
        };
        let mut findings = Vec::new();
        for c in &e.contents {
            content_findings(fs, c, &mut findings);
        }
        self.findings.extend(findings);
    }

    pub(super) fn lint_ids(&mut self, lint: Severity) {
        let mut findings = Vec::new();
        for id in &self.ids {
            if id.what == "ext4 hash seed" && id.value.bytes().all(|b| b == b'0' || b == b'-') {
                findings.push(Finding::new(
                    lint,
                    "ext4-hash-seed-zero",
                    "the ext4 directory hash seed is zero: derive it from rootFSUID",
                    Some(id.location.clone()),
                ));
                continue;
            }
            // Table IDs set by the spec are checked by check_table; these are the derived ones.
            let derived =
                ["mbr disk signature", "ext4 hash seed", "fat volume id"].contains(&id.what.as_str());
            if derived && id.matches() == Some(false) {
                findings.push(Finding::new(
                    lint,
                    "id-not-derived",
                    format!(
                        "the {} is {}, derive(...) gives {}",
                        id.what,
                        id.value,
                        id.expected.as_deref().unwrap_or_default()
                    ),
                    Some(id.location.clone()),
                ));
            }
        }
        self.findings.extend(findings);
    }
}

/// The layout (`partitionTableType`) a partition table looks like, by its partitions' types
/// in table order, as the seed's parted commands make them.
pub fn infer_layout(t: &TableInfo) -> Option<LayoutName> {
    let types: Vec<&str> = t.partitions.iter().map(|p| p.type_id.as_str()).collect();
    let is = |got: &str, want: &str| got.eq_ignore_ascii_case(want);
    let matches = |want: &[&str]| types.len() == want.len() && types.iter().zip(want).all(|(g, w)| is(g, w));
    match t.kind {
        TableKind::None => Some(LayoutName::None),
        TableKind::Mbr => match types.as_slice() {
            [_] => Some(LayoutName::Legacy),
            [_, _] if t.partitions[0].bootable => Some(LayoutName::LegacyBoot),
            _ => None,
        },
        TableKind::Gpt => [
            (LayoutName::LegacyGpt, &[TYPE_BIOS_BOOT, TYPE_LINUX_DATA][..]),
            (LayoutName::Efi, &[TYPE_ESP, TYPE_LINUX_DATA][..]),
            (LayoutName::Efixbootldr, &[TYPE_ESP, TYPE_XBOOTLDR, TYPE_LINUX_DATA][..]),
            (LayoutName::Hybrid, &[TYPE_ESP, TYPE_BIOS_BOOT, TYPE_LINUX_DATA][..]),
        ]
        .into_iter()
        .find(|(_, want)| matches(want))
        .map(|(l, _)| l),
    }
}

/// The findings for one `contents` entry: the target exists, and every file the seed's rsync
/// `--chmod` and `chown -R` touched has the mode and owner asked for.
fn content_findings(fs: &FsInfo, c: &ExpectedContent, out: &mut Vec<Finding>) {
    let target = format!("/{}", c.target.trim_matches('/'));
    let loc = Some(format!("contents target {target}"));
    let Some(at) = fs.files.find(&target) else {
        out.push(Finding::new(
            Severity::Error,
            "content-missing",
            format!("{target} (from {}) is not in the root filesystem", c.source),
            loc,
        ));
        return;
    };
    let under = || fs.files.subtree(at);
    let not_link = |(_, f): &(usize, &FileInfo)| f.mode & S_IFMT != S_IFLNK;
    // rsync --chmod applies to what it copied: the whole tree for a plain source, the glob's
    // matches (which we cannot tell from other entries) for a glob.
    if let Some(m) = c.octal_mode().filter(|_| !c.is_glob()) {
        let wrong: Vec<(usize, &FileInfo)> =
            under().filter(not_link).filter(|(_, f)| f.mode & 0o7777 != m).collect();
        if let Some((i, first)) = wrong.first() {
            out.push(Finding::new(
                Severity::Error,
                "content-mode",
                format!(
                    "{} another mode than {m:04o}, e.g. {} with {:04o}",
                    count(wrong.len(), "file has", "files have"),
                    fs.files.path(*i),
                    first.mode & 0o7777
                ),
                loc.clone(),
            ));
        }
    } else if let Some(m) = &c.mode {
        out.push(Finding::new(
            Severity::Info,
            "content-mode-unchecked",
            format!("mode {m:?} is symbolic or applies to a glob: not checked"),
            loc.clone(),
        ));
    }
    let (Some(user), Some(group)) = (&c.user, &c.group) else { return };
    let resolve = |name: &str, table: &BTreeMap<String, u32>| {
        name.parse::<u32>().ok().or_else(|| table.get(name).copied())
    };
    let (Some(uid), Some(gid)) = (resolve(user, &fs.users), resolve(group, &fs.groups)) else {
        out.push(Finding::new(
            Severity::Error,
            "content-owner-unresolved",
            format!("{user}:{group} is not in the image's /etc/passwd and /etc/group"),
            loc,
        ));
        return;
    };
    let wrong: Vec<(usize, &FileInfo)> = under().filter(|(_, f)| (f.uid, f.gid) != (uid, gid)).collect();
    if let Some((i, first)) = wrong.first() {
        out.push(Finding::new(
            Severity::Error,
            "content-owner",
            format!(
                "{} not owned by {user}:{group} ({uid}:{gid}), e.g. {} by {}:{}",
                count(wrong.len(), "file is", "files are"),
                fs.files.path(*i),
                first.uid,
                first.gid
            ),
            loc,
        ));
    }
}
