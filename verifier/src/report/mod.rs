//! The `reprodisk verify` report: what an image holds, checks against a spec, determinism
//! lints, and its human (aligned table) and JSON renderings.
//!
//! The report is plain data. The readers fill it (see `glue.rs`); this module only judges it,
//! so every check and lint here is tested on hand-made reports without any image.

use crate::expect::{Expectations, FsKind, LayoutName, TableKind};
use std::collections::BTreeMap;

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

    /// The name a user knows: "ext4", "vfat (FAT16)".
    pub fn user_name(self) -> &'static str {
        match self {
            FsType::Ext4 => "ext4",
            FsType::Fat12 => "vfat (FAT12)",
            FsType::Fat16 => "vfat (FAT16)",
            FsType::Fat32 => "vfat (FAT32)",
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

    pub(crate) fn location(&self) -> String {
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

    pub(crate) fn push(
        &mut self,
        severity: Severity,
        code: &str,
        message: String,
        location: impl Into<Option<String>>,
    ) {
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
}

mod checks;
mod render;
#[cfg(test)]
mod tests;
mod times;

pub use checks::infer_layout;
pub use render::count;
