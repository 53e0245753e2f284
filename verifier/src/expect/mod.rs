//! An independent reading of a reprodisk spec into what the image must look like.
//!
//! Written from the seed (`make-disk-image.nix`), BRIEF.md and ARCHITECTURE.md, never from the
//! builder's spec code: a misreading in one must show up as a disagreement with the other.
//! Only the keys that say something about the finished image are read; the builder rejects
//! unknown keys, the verifier need not.

mod geometry;
mod parse;
pub mod sources;

pub use parse::{SpecError, is_guid, round_boot_size};

use crate::report::Finding;

/// SOURCE_DATE_EPOCH when neither the spec nor the environment gives one (ARCHITECTURE.md:
/// 1980-01-01T00:00:00Z, the earliest instant FAT stores exactly).
pub const DEFAULT_EPOCH: i64 = 315_532_800;
/// The seed's default `rootGPUID` (and, for ext4, `rootFSUID`).
pub const SEED_ROOT_GUID: &str = "F222513B-DED1-49FA-B591-20CE86A2FE7F";
/// The seed's fixed GUID of GPT partition 1.
pub const SEED_PART1_GUID: &str = "1C06F03B-704E-4657-B9CD-681A087A2FDC";
/// The seed's fixed GUID of GPT partition 2 when it is not the root.
pub const SEED_PART2_GUID: &str = "970C694F-AFD0-4B99-B750-CDB7A329AB6F";
/// The disk GUID sgdisk writes for the seed's 31-digit `--disk-guid` string.
pub const SEED_DISK_GUID: &str = "97FD5997-F390-0B4A-A3F8-D106C1723AEA";

/// GPT partition type GUIDs the seed's parted commands produce.
pub const TYPE_ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
pub const TYPE_BIOS_BOOT: &str = "21686148-6449-6E6F-744E-656564454649";
pub const TYPE_XBOOTLDR: &str = "BC13C2FF-59E6-4262-A352-B275FD6F7172";
pub const TYPE_LINUX_DATA: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";

const MIB: u64 = 1 << 20;

pub use crate::ids::LayoutName;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    Mbr,
    Gpt,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FsKind {
    Ext4,
    Vfat,
}

impl FsKind {
    /// The name a user knows (mkfs's and mount's).
    pub fn as_str(self) -> &'static str {
        match self {
            FsKind::Ext4 => "ext4",
            FsKind::Vfat => "vfat",
        }
    }
}

impl TableKind {
    /// The table's name as sfdisk and sgdisk print it in a listing: `mbr`, `gpt`, `none`.
    pub fn label(self) -> &'static str {
        match self {
            TableKind::Mbr => "mbr",
            TableKind::Gpt => "gpt",
            TableKind::None => "none",
        }
    }

    /// The name a user knows, with its article: "a GPT", "an MBR", "no".
    pub fn as_str(self) -> &'static str {
        match self {
            TableKind::Mbr => "an MBR",
            TableKind::Gpt => "a GPT",
            TableKind::None => "no",
        }
    }
}

/// A filesystem the image must hold.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExpectedFs {
    pub kind: FsKind,
    pub label: String,
    /// The ext4 UUID (`rootFSUID`), when deterministic.
    pub uuid: Option<String>,
}

/// One partition as the seed's parted and sgdisk commands lay it out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExpectedPartition {
    pub number: u32,
    pub start_lba: u64,
    pub sectors: u64,
    /// GPT partition type GUID (GPT layouts).
    pub gpt_type: Option<&'static str>,
    /// MBR partition type byte (MBR layouts).
    pub mbr_type: Option<u8>,
    /// GPT partition name.
    pub name: Option<&'static str>,
    /// GPT unique partition GUID, when deterministic.
    pub guid: Option<String>,
    /// MBR boot flag.
    pub bootable: bool,
    /// GPT attribute bits: the seed's parted commands set none (`set 1 boot on` on GPT
    /// changes the type to ESP instead).
    pub attributes: u64,
    pub filesystem: Option<ExpectedFs>,
}

/// One `contents` entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExpectedContent {
    pub source: String,
    pub target: String,
    /// rsync `--chmod` syntax as given (`"755"`, `"u+x"`).
    pub mode: Option<String>,
    pub user: Option<String>,
    pub group: Option<String>,
}

impl ExpectedContent {
    /// Whether the source is a glob (the seed copies the matches into the target folder).
    pub fn is_glob(&self) -> bool {
        self.source.contains('*')
    }

    /// The mode as permission bits, when it is plain octal (`"755"`, `"0644"`); symbolic
    /// rsync modes (`"u+x"`, `"D755,F644"`) give `None`.
    pub fn octal_mode(&self) -> Option<u32> {
        let m = self.mode.as_deref()?;
        if m.is_empty() || m.len() > 4 || !m.bytes().all(|c| (b'0'..=b'7').contains(&c)) {
            return None;
        }
        u32::from_str_radix(m, 8).ok()
    }
}

/// `diskSize`: a fixed size or the seed's `"auto"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskSize {
    Auto,
    Bytes(u64),
}

/// What an image built from a spec must look like.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Expectations {
    pub layout: LayoutName,
    pub disk_size: DiskSize,
    /// `bootSize` rounded as the seed rounds it: `(x / MiB + 1) * MiB`, the boot partition's
    /// END offset in bytes.
    pub boot_end: u64,
    pub deterministic: bool,
    pub fs_type: String,
    pub label: String,
    pub root_gpuid: String,
    pub root_fsuid: Option<String>,
    pub disk_guid: String,
    pub only_nix_store: bool,
    /// The spec's `source_date_epoch`; see [`Expectations::epoch`].
    pub source_date_epoch: Option<i64>,
    /// The file time policy: `"clamp"` (default), `"source-date-epoch"` or `"keep"`.
    pub timestamps: String,
    pub format: String,
    pub base_name: String,
    pub contents: Vec<ExpectedContent>,
    /// `configFile`, as written (relative to the spec's folder).
    pub config_file: Option<String>,
    /// The folder of the spec file, which relative paths resolve against; `None` for a spec
    /// read from text.
    pub spec_dir: Option<std::path::PathBuf>,
    /// Problems found in the spec itself (malformed GUID strings).
    pub spec_findings: Vec<Finding>,
}

impl Expectations {
    /// SOURCE_DATE_EPOCH: the spec's, else `env` (the caller's `SOURCE_DATE_EPOCH`), else
    /// [`DEFAULT_EPOCH`].
    pub fn epoch(&self, env: Option<i64>) -> i64 {
        self.source_date_epoch.or(env).unwrap_or(DEFAULT_EPOCH)
    }

    pub fn table(&self) -> TableKind {
        self.layout.table()
    }

    /// The root filesystem the spec asks for.
    pub fn root_fs(&self) -> ExpectedFs {
        ExpectedFs {
            kind: FsKind::Ext4,
            label: self.label.clone(),
            uuid: if self.deterministic { self.root_fsuid.clone() } else { None },
        }
    }

    /// The GPT disk GUID, when deterministic on a GPT layout.
    pub fn expected_disk_guid(&self) -> Option<&str> {
        (self.deterministic && self.table() == TableKind::Gpt).then_some(self.disk_guid.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_guid_strings_are_the_id_rules_guids() {
        use crate::ids;
        assert_eq!(SEED_ROOT_GUID, ids::DEFAULT_ROOT_GPUID.to_string());
        assert_eq!(SEED_PART1_GUID, ids::SEED_PARTITION_1.to_string());
        assert_eq!(SEED_PART2_GUID, ids::SEED_PARTITION_2.to_string());
        assert_eq!(SEED_DISK_GUID, ids::DISK_GUID.to_string());
    }
}
