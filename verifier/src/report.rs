//! The `reprodisk verify` report: what an image holds, checks against a spec, determinism
//! lints, and its human (aligned table) and JSON renderings.
//!
//! The report is plain data. The readers fill it (see `glue.rs`); this module only judges it,
//! so every check and lint here is tested on hand-made reports without any image.

use crate::expect::{
    DiskSize, Expectations, ExpectedContent, FsKind, LayoutName, TYPE_BIOS_BOOT, TYPE_ESP, TYPE_LINUX_DATA,
    TYPE_XBOOTLDR, TableKind,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One problem or remark, with a stable code that tests and CI can match on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable, kebab-case: `"ext4-mount-count"`, `"partition-guid"`.
    pub code: String,
    pub message: String,
    /// Where: `"partition 2 ext4 superblock s_mnt_count"`, `"spec key disk_guid"`.
    pub location: Option<String>,
}

impl Finding {
    pub fn new(
        severity: Severity,
        code: impl Into<String>,
        message: impl Into<String>,
        location: Option<String>,
    ) -> Self {
        Finding { severity, code: code.into(), message: message.into(), location }
    }
}

/// The whole report of one image.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub image: ImageInfo,
    /// The layout the partition table looks like (see [`infer_layout`]).
    pub layout: Option<LayoutName>,
    pub table: TableInfo,
    pub filesystems: Vec<FsInfo>,
    pub ids: Vec<IdInfo>,
    pub times: Vec<TimeInfo>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImageInfo {
    pub path: Option<String>,
    /// Bytes of the raw disk (the virtual size for qcow2, VDI and VHD).
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableInfo {
    pub kind: TableKind,
    /// What the MBR's 440 bytes of boot code are: `"empty"`, `"grub boot.img, core.img at
    /// sector 2048"`, or `"other (sha256 ...)"`.
    pub boot_code: Option<String>,
    pub disk_guid: Option<String>,
    pub mbr_signature: Option<u32>,
    pub first_usable_lba: Option<u64>,
    pub last_usable_lba: Option<u64>,
    pub partitions: Vec<PartitionInfo>,
}

impl Default for TableInfo {
    fn default() -> Self {
        TableInfo {
            kind: TableKind::None,
            boot_code: None,
            disk_guid: None,
            mbr_signature: None,
            first_usable_lba: None,
            last_usable_lba: None,
            partitions: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PartitionInfo {
    pub number: u32,
    pub start_lba: u64,
    pub sectors: u64,
    /// A GPT type GUID in uppercase, or an MBR type as `"0x83"`.
    pub type_id: String,
    /// The type's common name (`"EFI System"`), or empty when unknown.
    pub type_name: String,
    pub name: Option<String>,
    pub guid: Option<String>,
    pub bootable: bool,
    pub attributes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FsType {
    Ext4,
    Fat12,
    Fat16,
    Fat32,
}

impl FsType {
    pub fn as_str(self) -> &'static str {
        match self {
            FsType::Ext4 => "ext4",
            FsType::Fat12 => "fat12",
            FsType::Fat16 => "fat16",
            FsType::Fat32 => "fat32",
        }
    }

    fn kind(self) -> FsKind {
        if self == FsType::Ext4 { FsKind::Ext4 } else { FsKind::Vfat }
    }
}

/// One filesystem: in a partition, or the whole image (`partition: None`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FsInfo {
    pub partition: Option<u32>,
    pub fs_type: FsType,
    pub label: String,
    /// The ext4 UUID, lowercase.
    pub uuid: Option<String>,
    /// The FAT volume ID.
    pub volume_id: Option<u32>,
    pub size_bytes: u64,
    pub block_size: u32,
    pub ext4: Option<Ext4Info>,
    pub file_count: u64,
    /// Every file, for the `contents` checks (not serialised: the tree can be huge).
    #[serde(skip)]
    pub files: FileTree,
    /// Names from the image's own /etc/passwd and /etc/group, for `user` and `group`.
    #[serde(skip)]
    pub users: BTreeMap<String, u32>,
    #[serde(skip)]
    pub groups: BTreeMap<String, u32>,
}

impl FsInfo {
    pub fn new(partition: Option<u32>, fs_type: FsType) -> Self {
        FsInfo {
            partition,
            fs_type,
            label: String::new(),
            uuid: None,
            volume_id: None,
            size_bytes: 0,
            block_size: 0,
            ext4: None,
            file_count: 0,
            files: FileTree::default(),
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
        }
    }

    fn location(&self) -> String {
        match self.partition {
            Some(p) => format!("partition {p} {}", self.fs_type.as_str()),
            None => self.fs_type.as_str().to_string(),
        }
    }
}

/// The ext4 superblock and journal values the lints look at.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Ext4Info {
    /// `s_hash_seed` in UUID form, lowercase.
    pub hash_seed: String,
    pub mount_count: u16,
    pub max_mount_count: i16,
    /// `s_last_mounted`.
    pub last_mounted: String,
    pub kbytes_written: u64,
    /// `s_state`.
    pub state: u16,
    /// The needs_recovery incompat feature.
    pub needs_recovery: bool,
    /// Whether the journal superblock's `s_start` is 0 (no transactions to replay);
    /// `None` without a journal.
    pub journal_clean: Option<bool>,
    pub features: Vec<String>,
}

pub use crate::files::{FileInfo, FileTree};

const S_IFMT: u32 = 0o170_000;
const S_IFLNK: u32 = 0o120_000;

/// One identifier, with what it should be when a rule says so.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IdInfo {
    pub what: String,
    pub location: String,
    pub value: String,
    pub expected: Option<String>,
}

impl IdInfo {
    pub fn matches(&self) -> Option<bool> {
        self.expected.as_ref().map(|e| e.eq_ignore_ascii_case(&self.value))
    }
}

/// What a class of timestamps should hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimeRule {
    /// Exactly SOURCE_DATE_EPOCH (creation times, FAT volume and directory times).
    Epoch,
    /// SOURCE_DATE_EPOCH or 0 for "never" (last check, deletion and error times).
    ZeroOrEpoch,
    /// A last-mount time: 0, the image was never mounted.
    LastMount,
    /// A last-write time: SOURCE_DATE_EPOCH or 0, never the build's clock.
    LastWrite,
    /// A file time, judged by the spec's `timestamps` policy.
    File,
}

/// All timestamps of one class (e.g. every ext4 inode's `i_mtime` of partition 2), counted by
/// value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TimeInfo {
    pub partition: Option<u32>,
    /// `"ext4 superblock s_wtime"`, `"ext4 inode i_mtime"`, `"fat entry DIR_WrtDate"`.
    pub class: String,
    pub rule: TimeRule,
    /// Seconds since 1970 -> how many timestamps hold it.
    pub values: BTreeMap<i64, u64>,
    /// Where each value was first seen (`"/etc/motd"`, `"inode 12"`).
    #[serde(skip)]
    pub first_seen: BTreeMap<i64, String>,
}

/// IDs that ARCHITECTURE.md's `derive(domain, anchor)` gives; computed by the caller (the
/// derivation lives with the ID readers), so that this module stays plain data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DerivedIds {
    pub mbr_signature: Option<u32>,
    /// The ext4 hash seed per partition (`None` key: a bare filesystem), UUID form.
    pub ext4_hash_seed: BTreeMap<Option<u32>, String>,
    /// FAT volume IDs per partition number.
    pub fat_volume_ids: BTreeMap<u32, u32>,
}

/// How many offending timestamps a finding lists by location.
const MAX_EXAMPLES: usize = 3;

impl VerifyReport {
    /// Records one timestamp in its class.
    pub fn add_time(&mut self, partition: Option<u32>, class: &str, rule: TimeRule, value: i64, at: &str) {
        let pos = self.times.iter().position(|t| t.partition == partition && t.class == class);
        let t = match pos {
            Some(i) => &mut self.times[i],
            None => {
                self.times.push(TimeInfo {
                    partition,
                    class: class.to_string(),
                    rule,
                    values: BTreeMap::new(),
                    first_seen: BTreeMap::new(),
                });
                // The push above makes the vector non-empty.
                self.times.last_mut().expect("just pushed")
            }
        };
        *t.values.entry(value).or_default() += 1;
        t.first_seen.entry(value).or_insert_with(|| at.to_string());
    }

    /// Whether any finding is an error: the CLI then exits 1.
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    pub fn exit_code(&self) -> i32 {
        if self.failed() { 1 } else { 0 }
    }

    fn push(&mut self, severity: Severity, code: &str, message: String, location: impl Into<Option<String>>) {
        self.findings.push(Finding::new(severity, code, message, location.into()));
    }

    /// Fills `ids` from the table and filesystems, then runs every check and lint:
    /// against `expect` when a spec is given, with `env_epoch` the caller's
    /// SOURCE_DATE_EPOCH, and the IDs `derived` from the spec or the image's anchors.
    pub fn check(&mut self, expect: Option<&Expectations>, env_epoch: Option<i64>, derived: &DerivedIds) {
        self.layout = infer_layout(&self.table);
        self.collect_ids(expect, derived);
        // Without a spec the lints only warn; a deterministic spec promises what they test.
        let lint = match expect {
            Some(e) if e.deterministic => Severity::Error,
            Some(_) => Severity::Info,
            None => Severity::Warning,
        };
        if let Some(e) = expect {
            self.findings.extend(e.spec_findings.iter().cloned());
            self.check_table(e);
            self.check_filesystems(e);
            self.check_contents(e);
        }
        self.lint_ids(lint);
        self.lint_ext4(lint);
        let epoch = match expect {
            Some(e) => Some(e.epoch(env_epoch)),
            None => env_epoch,
        };
        let policy = expect.map_or("clamp", |e| e.timestamps.as_str()).to_string();
        self.lint_times(epoch, &policy, lint);
        self.findings
            .sort_by(|a, b| (a.severity, &a.code, &a.location).cmp(&(b.severity, &b.code, &b.location)));
    }

    fn collect_ids(&mut self, expect: Option<&Expectations>, derived: &DerivedIds) {
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

    fn check_table(&mut self, e: &Expectations) {
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
                    "layout {} needs a {:?} partition table, the image has {:?}",
                    e.layout.as_str(),
                    e.table(),
                    self.table.kind
                )
                .to_lowercase(),
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
                    "layout {} has {} partitions, the image has {}",
                    e.layout.as_str(),
                    expected.len(),
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

    fn check_filesystems(&mut self, e: &Expectations) {
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
                    format!("no filesystem found, the spec asks for {:?}", x.kind),
                    loc,
                ));
                continue;
            };
            if fs.fs_type.kind() != x.kind {
                findings.push((
                    "fs-type",
                    format!("the filesystem is {}, the spec asks for {:?}", fs.fs_type.as_str(), x.kind)
                        .to_lowercase(),
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

    fn check_contents(&mut self, e: &Expectations) {
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

    fn lint_ids(&mut self, lint: Severity) {
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

    fn lint_ext4(&mut self, lint: Severity) {
        let mut findings = Vec::new();
        for fs in &self.filesystems {
            let Some(x) = &fs.ext4 else { continue };
            let at = |field: &str| Some(format!("{} superblock {field}", fs.location()));
            if x.mount_count != 0 {
                findings.push(Finding::new(
                    lint,
                    "ext4-mount-count",
                    format!(
                        "the mount count is {}: an image fresh from the builder was never mounted",
                        x.mount_count
                    ),
                    at("s_mnt_count"),
                ));
            }
            if !x.last_mounted.is_empty() {
                findings.push(Finding::new(
                    lint,
                    "ext4-last-mounted",
                    format!(
                        "the last mount point is {:?}: the host's mount leaked into the image",
                        x.last_mounted
                    ),
                    at("s_last_mounted"),
                ));
            }
            if x.kbytes_written != 0 {
                findings.push(Finding::new(
                    lint,
                    "ext4-kbytes-written",
                    format!(
                        "s_kbytes_written is {}: it counts a writer's I/O, set it to 0",
                        x.kbytes_written
                    ),
                    at("s_kbytes_written"),
                ));
            }
            if x.needs_recovery || x.journal_clean == Some(false) {
                findings.push(Finding::new(
                    Severity::Error,
                    "ext4-journal-dirty",
                    "the journal holds transactions to replay: unmount cleanly or run e2fsck",
                    Some(format!("{} journal", fs.location())),
                ));
            }
            if x.state & 1 == 0 {
                findings.push(Finding::new(
                    Severity::Error,
                    "ext4-not-clean",
                    format!("s_state is {:#06x}, not cleanly unmounted", x.state),
                    at("s_state"),
                ));
            }
        }
        self.findings.extend(findings);
    }

    fn lint_times(&mut self, epoch: Option<i64>, policy: &str, lint: Severity) {
        let epoch = match epoch {
            Some(e) => e,
            None => match self.inferred_epoch() {
                Some(e) => {
                    self.push(
                        Severity::Info,
                        "epoch-inferred",
                        format!(
                            "SOURCE_DATE_EPOCH not given: judging times against {e}, the most common one"
                        ),
                        None,
                    );
                    e
                }
                None => return,
            },
        };
        let mut findings = Vec::new();
        for t in &self.times {
            let (code, why): (&str, &str) = match t.rule {
                TimeRule::Epoch => ("time-not-epoch", "should be SOURCE_DATE_EPOCH"),
                TimeRule::ZeroOrEpoch => ("time-not-epoch", "should be 0 or SOURCE_DATE_EPOCH"),
                TimeRule::LastMount => ("last-mount-time", "should be 0: the image was never mounted"),
                TimeRule::LastWrite => {
                    ("last-write-time", "should be SOURCE_DATE_EPOCH, not the build's clock")
                }
                TimeRule::File => match policy {
                    "keep" => continue,
                    "source-date-epoch" => {
                        ("time-not-epoch", "should be SOURCE_DATE_EPOCH (timestamps policy)")
                    }
                    _ => {
                        ("file-time-after-epoch", "should not be later than SOURCE_DATE_EPOCH (clamp policy)")
                    }
                },
            };
            let ok = |v: i64| match t.rule {
                TimeRule::Epoch => v == epoch,
                TimeRule::ZeroOrEpoch | TimeRule::LastWrite => v == 0 || v == epoch,
                TimeRule::LastMount => v == 0,
                TimeRule::File => match policy {
                    "source-date-epoch" => v == epoch,
                    _ => v <= epoch,
                },
            };
            let bad: Vec<(i64, u64)> =
                t.values.iter().filter(|(v, _)| !ok(**v)).map(|(v, n)| (*v, *n)).collect();
            if bad.is_empty() {
                continue;
            }
            let total: u64 = bad.iter().map(|(_, n)| n).sum();
            let examples: Vec<String> = bad
                .iter()
                .take(MAX_EXAMPLES)
                .map(|(v, _)| format!("{v} at {}", t.first_seen.get(v).map_or("?", String::as_str)))
                .collect();
            let location = match t.partition {
                Some(p) => format!("partition {p} {}", t.class),
                None => t.class.clone(),
            };
            findings.push(Finding::new(
                lint,
                code,
                format!("{total} of these times {why} ({epoch}): {}", examples.join(", ")),
                Some(location),
            ));
        }
        self.findings.extend(findings);
    }

    /// The most common non-zero structure time, as a stand-in for an unknown epoch.
    fn inferred_epoch(&self) -> Option<i64> {
        let mut votes: BTreeMap<i64, u64> = BTreeMap::new();
        for t in self.times.iter().filter(|t| t.rule != TimeRule::File) {
            for (&v, &n) in t.values.iter().filter(|(v, _)| **v != 0) {
                *votes.entry(v).or_default() += n;
            }
        }
        votes.into_iter().max_by_key(|&(v, n)| (n, std::cmp::Reverse(v))).map(|(v, _)| v)
    }

    pub fn to_json(&self) -> String {
        // Plain strings, integers and maps with integer keys always serialise.
        serde_json::to_string_pretty(self).expect("a verify report always serialises")
    }

    /// The human report: one aligned table per section, then the findings and the verdict.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let path = self.image.path.as_deref().unwrap_or("image");
        let _ = writeln!(out, "{path}: {} bytes", self.image.size);

        if let Some(l) = self.layout {
            let _ = writeln!(out, "layout: {}", l.as_str());
        }
        let t = &self.table;
        let _ = write!(out, "\npartition table: {}", format!("{:?}", t.kind).to_lowercase());
        if let (Some(f), Some(l)) = (t.first_usable_lba, t.last_usable_lba) {
            let _ = write!(out, ", usable sectors {f}..={l}");
        }
        if let Some(b) = &t.boot_code {
            let _ = write!(out, ", boot code: {b}");
        }
        out.push('\n');
        if !t.partitions.is_empty() {
            let mut rows = vec![row(&["#", "start", "sectors", "size", "type", "name", "guid", "flags"])];
            for p in &t.partitions {
                let mut flags = Vec::new();
                if p.bootable {
                    flags.push("boot".to_string());
                }
                if p.attributes != 0 {
                    flags.push(format!("attrs={:#x}", p.attributes));
                }
                let ty = if p.type_name.is_empty() { p.type_id.clone() } else { p.type_name.clone() };
                rows.push(vec![
                    p.number.to_string(),
                    p.start_lba.to_string(),
                    p.sectors.to_string(),
                    human_size(p.sectors * 512),
                    ty,
                    p.name.clone().unwrap_or_default(),
                    p.guid.clone().unwrap_or_default(),
                    flags.join(","),
                ]);
            }
            table(&mut out, &rows);
        }

        let _ = writeln!(out, "\nfilesystems:");
        let mut rows = vec![row(&["where", "type", "label", "id", "size", "block", "files"])];
        for fs in &self.filesystems {
            let id = fs
                .uuid
                .clone()
                .or_else(|| fs.volume_id.map(|v| format!("{:04X}-{:04X}", v >> 16, v & 0xffff)))
                .unwrap_or_default();
            rows.push(vec![
                fs.partition.map_or("disk".to_string(), |p| format!("partition {p}")),
                fs.fs_type.as_str().to_string(),
                format!("{:?}", fs.label),
                id,
                human_size(fs.size_bytes),
                fs.block_size.to_string(),
                fs.file_count.to_string(),
            ]);
        }
        table(&mut out, &rows);

        let _ = writeln!(out, "\nids:");
        let mut rows = vec![row(&["what", "where", "value", "expected"])];
        for id in &self.ids {
            let expected = match (id.matches(), &id.expected) {
                (Some(true), _) => "ok".to_string(),
                (Some(false), Some(e)) => format!("MISMATCH: {e}"),
                _ => "-".to_string(),
            };
            rows.push(vec![id.what.clone(), id.location.clone(), id.value.clone(), expected]);
        }
        table(&mut out, &rows);

        let _ = writeln!(out, "\ntimes:");
        let mut rows = vec![row(&["where", "class", "values (count)"])];
        for t in &self.times {
            let vals: Vec<String> = t.values.iter().map(|(v, n)| format!("{v} ({n})")).collect();
            rows.push(vec![
                t.partition.map_or("disk".to_string(), |p| format!("partition {p}")),
                t.class.clone(),
                vals.join(", "),
            ]);
        }
        table(&mut out, &rows);

        let _ = writeln!(out, "\nfindings:");
        if self.findings.is_empty() {
            let _ = writeln!(out, "  none");
        } else {
            let mut rows = Vec::new();
            for f in &self.findings {
                rows.push(vec![
                    f.severity.as_str().to_string(),
                    f.code.clone(),
                    f.location.clone().unwrap_or_default(),
                    f.message.clone(),
                ]);
            }
            table(&mut out, &rows);
        }
        let count = |s: Severity| self.findings.iter().filter(|f| f.severity == s).count() as u64;
        let verdict = if self.failed() { "FAILED" } else { "ok" };
        let _ = writeln!(
            out,
            "\n{verdict}: {}, {}",
            crate::diff::count(count(Severity::Error), "error"),
            crate::diff::count(count(Severity::Warning), "warning")
        );
        out
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

/// `n` with the singular or plural words after it: "1 file has", "2 files have".
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Writes rows as an aligned table, two spaces of indent, trailing spaces trimmed.
fn table(out: &mut String, rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| rows.iter().map(|r| r.get(i).map_or(0, |c| c.chars().count())).max().unwrap_or(0))
        .collect();
    for r in rows {
        let mut line = String::from(" ");
        for (i, c) in r.iter().enumerate() {
            let _ = write!(line, " {c:<w$}", w = widths[i]);
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// `"256 MiB"`, `"1.5 GiB"`, `"512 B"`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if v.fract() == 0.0 { format!("{v} {}", UNITS[u]) } else { format!("{v:.1} {}", UNITS[u]) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::{SEED_DISK_GUID, SEED_PART1_GUID, SEED_ROOT_GUID, TYPE_ESP, TYPE_LINUX_DATA};

    const MIB: u64 = 1 << 20;
    const EPOCH: i64 = 315_532_800;

    fn spec(extra: &str) -> Expectations {
        Expectations::from_toml_str(&format!(
            "partitionTableType = \"efi\"\ndiskSize = 1024\n{extra}\n\
             [[contents]]\nsource = \"motd\"\ntarget = \"/etc/motd\"\nmode = \"0644\"\nuser = \"root\"\ngroup = \"wheel\"\n"
        ))
        .expect("valid spec")
    }

    /// A report as the readers would fill it for a good `efi` image built from [`spec`].
    fn good() -> VerifyReport {
        let mut r = VerifyReport {
            image: ImageInfo { path: Some("nixos.img".into()), size: 1024 * MIB },
            table: TableInfo {
                kind: TableKind::Gpt,
                boot_code: Some("empty".into()),
                disk_guid: Some(SEED_DISK_GUID.into()),
                mbr_signature: Some(0),
                first_usable_lba: Some(34),
                last_usable_lba: Some(2_097_118),
                partitions: vec![
                    PartitionInfo {
                        number: 1,
                        start_lba: 16384,
                        sectors: 509_952,
                        type_id: TYPE_ESP.into(),
                        type_name: "EFI System".into(),
                        name: Some("ESP".into()),
                        guid: Some(SEED_PART1_GUID.into()),
                        bootable: false,
                        attributes: 0,
                    },
                    PartitionInfo {
                        number: 2,
                        start_lba: 526_336,
                        sectors: 1_568_768,
                        type_id: TYPE_LINUX_DATA.into(),
                        type_name: "Linux filesystem".into(),
                        name: Some("primary".into()),
                        guid: Some(SEED_ROOT_GUID.into()),
                        bootable: false,
                        attributes: 0,
                    },
                ],
            },
            ..Default::default()
        };
        let mut esp = FsInfo::new(Some(1), FsType::Fat32);
        esp.label = "ESP        ".into();
        esp.volume_id = Some(0x1234_ABCD);
        esp.size_bytes = 509_952 * 512;
        esp.block_size = 512;
        esp.file_count = 3;
        let mut root = FsInfo::new(Some(2), FsType::Ext4);
        root.label = "nixos".into();
        root.uuid = Some(SEED_ROOT_GUID.to_lowercase());
        root.size_bytes = 1_568_768 * 512;
        root.block_size = 4096;
        root.ext4 = Some(Ext4Info {
            hash_seed: "5f1e8c0a-1b2c-8d3e-9f40-112233445566".into(),
            state: 1,
            journal_clean: Some(true),
            features: vec!["has_journal".into(), "extents".into()],
            ..Default::default()
        });
        root.files = FileTree::from_paths([
            ("/", 0o40755, 0, 0),
            ("/etc", 0o40755, 0, 0),
            ("/etc/motd", 0o100644, 0, 10),
        ]);
        root.file_count = 3;
        root.users.insert("root".into(), 0);
        root.groups.insert("wheel".into(), 10);
        r.filesystems = vec![esp, root];
        for (class, rule) in [
            ("ext4 superblock s_mkfs_time", TimeRule::Epoch),
            ("ext4 superblock s_wtime", TimeRule::LastWrite),
            ("ext4 superblock s_lastcheck", TimeRule::ZeroOrEpoch),
        ] {
            r.add_time(Some(2), class, rule, EPOCH, "superblock");
        }
        r.add_time(Some(2), "ext4 superblock s_mtime", TimeRule::LastMount, 0, "superblock");
        r.add_time(Some(2), "ext4 inode i_mtime", TimeRule::File, EPOCH, "/");
        r.add_time(Some(2), "ext4 inode i_mtime", TimeRule::File, 1000, "/etc/motd");
        r
    }

    fn derived() -> DerivedIds {
        let mut d = DerivedIds::default();
        d.ext4_hash_seed.insert(Some(2), "5f1e8c0a-1b2c-8d3e-9f40-112233445566".into());
        d.fat_volume_ids.insert(1, 0x1234_ABCD);
        d
    }

    fn codes(r: &VerifyReport) -> Vec<String> {
        r.findings.iter().map(|f| format!("{}:{}", f.severity.as_str(), f.code)).collect()
    }

    #[test]
    fn a_good_image_passes() {
        let mut r = good();
        r.check(Some(&spec("")), None, &derived());
        assert_eq!(codes(&r), Vec::<String>::new(), "{}", r.render_text());
        assert!(!r.failed());
        assert_eq!(r.exit_code(), 0);
    }

    #[test]
    fn layout_ids_labels_and_contents_are_checked() {
        let mut r = good();
        r.table.partitions[1].start_lba += 2048;
        r.table.partitions[0].attributes = 1 << 2;
        r.table.partitions[1].guid = Some("00000000-0000-0000-0000-000000000001".into());
        r.table.disk_guid = Some("97FD5997-D90B-4AA3-8D16-C1723AEA73C0".into());
        r.filesystems[0].label = "BOOT".into();
        r.filesystems[1].uuid = Some("11111111-1111-1111-1111-111111111111".into());
        if let Some(motd) = r.filesystems[1].files.get_mut(2) {
            motd.mode = 0o100600;
            motd.gid = 0;
        }
        r.check(Some(&spec("")), None, &derived());
        assert_eq!(
            codes(&r),
            [
                "error:content-mode",
                "error:content-owner",
                "error:disk-guid",
                "error:fs-label",
                "error:fs-uuid",
                "error:partition-attributes",
                "error:partition-guid",
                "error:partition-start",
            ]
        );
        assert!(r.failed());
        let owner = r.findings.iter().find(|f| f.code == "content-owner").expect("listed above");
        assert!(owner.message.contains("/etc/motd by 0:0"), "{}", owner.message);
    }

    #[test]
    fn missing_things_are_errors() {
        let mut r = good();
        r.filesystems[1].files = FileTree::from_paths([("/", 0o40755, 0, 0), ("/etc", 0o40755, 0, 0)]);
        r.filesystems.remove(0);
        r.table.partitions.pop();
        r.check(Some(&spec("")), None, &derived());
        assert_eq!(
            codes(&r),
            ["error:content-missing", "error:fs-missing", "error:partition-count", "error:partition-missing"]
        );
        let mut r = good();
        r.table.kind = TableKind::Mbr;
        r.check(Some(&spec("")), None, &derived());
        assert!(codes(&r).contains(&"error:layout-table".to_string()));
    }

    #[test]
    fn determinism_lints() {
        let mut r = good();
        if let Some(x) = &mut r.filesystems[1].ext4 {
            x.mount_count = 3;
            x.kbytes_written = 1234;
            x.last_mounted = "/mnt".into();
            x.journal_clean = Some(false);
        }
        r.filesystems[0].volume_id = Some(0xDEAD_BEEF);
        r.add_time(Some(2), "ext4 superblock s_mtime", TimeRule::LastMount, 1_732_550_400, "superblock");
        r.add_time(Some(2), "ext4 superblock s_wtime", TimeRule::LastWrite, 1_732_550_400, "superblock");
        r.add_time(Some(2), "ext4 inode i_mtime", TimeRule::File, 1_732_550_400, "/etc/hostname");
        r.check(Some(&spec("")), None, &derived());
        assert_eq!(
            codes(&r),
            [
                "error:ext4-journal-dirty",
                "error:ext4-kbytes-written",
                "error:ext4-last-mounted",
                "error:ext4-mount-count",
                "error:file-time-after-epoch",
                "error:id-not-derived",
                "error:last-mount-time",
                "error:last-write-time",
            ]
        );
        let f = r.findings.iter().find(|f| f.code == "file-time-after-epoch").expect("listed above");
        assert!(f.message.contains("1732550400 at /etc/hostname"), "{}", f.message);
    }

    #[test]
    fn lints_follow_the_time_policy_and_the_deterministic_flag() {
        let mut r = good();
        r.check(Some(&spec("timestamps = \"source-date-epoch\"")), None, &derived());
        assert_eq!(codes(&r), ["error:time-not-epoch"]);
        let mut r = good();
        r.check(Some(&spec("source_date_epoch = 1000\ntimestamps = \"keep\"")), None, &derived());
        assert_eq!(codes(&r), ["error:last-write-time", "error:time-not-epoch", "error:time-not-epoch"]);
        let mut r = good();
        if let Some(x) = &mut r.filesystems[1].ext4 {
            x.hash_seed = "00000000-0000-0000-0000-000000000000".into();
        }
        r.check(Some(&spec("deterministic = false")), None, &derived());
        assert_eq!(codes(&r), ["info:ext4-hash-seed-zero"]);
        assert!(!r.failed());
    }

    #[test]
    fn without_a_spec_lints_warn_and_the_epoch_is_inferred() {
        let mut r = good();
        r.add_time(Some(2), "ext4 superblock s_mkfs_time", TimeRule::Epoch, 1_732_550_400, "superblock");
        r.check(None, None, &DerivedIds::default());
        assert_eq!(codes(&r), ["warning:time-not-epoch", "info:epoch-inferred"]);
        assert!(!r.failed());
    }

    #[test]
    fn malformed_spec_guids_fail_verification() {
        let mut r = good();
        r.check(Some(&spec("rootGPUID = \"F222513B-DED1-49FA-B591-20CE86A2FE7\"")), None, &derived());
        assert!(codes(&r).contains(&"error:spec-malformed-guid".to_string()));
    }

    #[test]
    fn renderings() {
        let mut r = good();
        if let Some(x) = &mut r.filesystems[1].ext4 {
            x.mount_count = 1;
        }
        r.check(Some(&spec("")), None, &derived());
        insta::assert_snapshot!("verify_text", r.render_text());
        insta::assert_snapshot!("verify_json", r.to_json());
    }

    #[test]
    fn layouts_are_recognised_from_the_table() {
        let mut t = good().table;
        assert_eq!(infer_layout(&t), Some(LayoutName::Efi));
        t.partitions
            .insert(1, PartitionInfo { type_id: TYPE_BIOS_BOOT.to_lowercase(), ..Default::default() });
        assert_eq!(infer_layout(&t), Some(LayoutName::Hybrid));
        t.partitions[1].type_id = TYPE_XBOOTLDR.into();
        assert_eq!(infer_layout(&t), Some(LayoutName::Efixbootldr));
        t.partitions.remove(0);
        assert_eq!(infer_layout(&t), None);
        t.partitions[0].type_id = TYPE_BIOS_BOOT.into();
        assert_eq!(infer_layout(&t), Some(LayoutName::LegacyGpt));
        t.kind = TableKind::Mbr;
        t.partitions[0].bootable = true;
        assert_eq!(infer_layout(&t), Some(LayoutName::LegacyBoot));
        t.partitions.pop();
        assert_eq!(infer_layout(&t), Some(LayoutName::Legacy));
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(257 * MIB), "257 MiB");
        assert_eq!(human_size(1536 * MIB), "1.5 GiB");
    }
}
