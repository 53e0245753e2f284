//! An independent reading of a reprodisk spec into what the image must look like.
//!
//! Written from the seed (`make-disk-image.nix`), BRIEF.md and ARCHITECTURE.md, never from the
//! builder's spec code: a misreading in one must show up as a disagreement with the other.
//! Only the keys that say something about the finished image are read; the builder rejects
//! unknown keys, the verifier need not.

use crate::report::{Finding, Severity};
use serde_json::Value;
use std::path::{Path, PathBuf};

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
const SECTOR: u64 = 512;
/// parted's alignment grain: 1 MiB in 512-byte sectors.
const GRAIN: u64 = MIB / SECTOR;

/// A spec that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("reading spec `{path}`: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("spec `{path}` has extension `{ext}`: name it .toml or .json")]
    Extension { path: PathBuf, ext: String },
    #[error("spec is not valid {format}: {message}")]
    Syntax { format: &'static str, message: String },
    #[error("spec key `{key}`: expected {expected}, found {found}")]
    BadValue { key: String, expected: String, found: String },
    #[error("spec sets both `{a}` and `{b}`, which mean the same: keep one")]
    Conflict { a: String, b: String },
}

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
    /// The name a user knows.
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
    /// Problems found in the spec itself (malformed GUID strings).
    pub spec_findings: Vec<Finding>,
}

impl Expectations {
    /// Reads a spec file, TOML or JSON by its extension.
    pub fn from_path(path: &Path) -> Result<Self, SpecError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| SpecError::Io { path: path.to_path_buf(), source })?;
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Self::from_toml_str(&text),
            Some("json") => Self::from_json_str(&text),
            other => {
                Err(SpecError::Extension { path: path.to_path_buf(), ext: other.unwrap_or("").to_string() })
            }
        }
    }

    pub fn from_toml_str(text: &str) -> Result<Self, SpecError> {
        let v: Value =
            toml::from_str(text).map_err(|e| SpecError::Syntax { format: "TOML", message: e.to_string() })?;
        Self::from_value(&v)
    }

    pub fn from_json_str(text: &str) -> Result<Self, SpecError> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| SpecError::Syntax { format: "JSON", message: e.to_string() })?;
        Self::from_value(&v)
    }

    fn from_value(v: &Value) -> Result<Self, SpecError> {
        let s = Keys(v);
        let layout_text =
            s.string(&["partition_table_type", "partitionTableType"])?.unwrap_or("legacy".into());
        let layout = LayoutName::parse(&layout_text).ok_or_else(|| SpecError::BadValue {
            key: "partition_table_type".into(),
            expected: "one of legacy, legacy+boot, legacy+gpt, efi, efixbootldr, hybrid, none".into(),
            found: format!("{layout_text:?}"),
        })?;
        let disk_size = match s.get(&["disk_size", "diskSize"])? {
            None => DiskSize::Auto,
            Some((_, Value::String(a))) if a == "auto" => DiskSize::Auto,
            Some((k, v)) => DiskSize::Bytes(size(k, v)?),
        };
        let boot_size = match s.get(&["boot_size", "bootSize"])? {
            None => 256 * MIB,
            Some((k, v)) => size(k, v)?,
        };
        let only_nix_store = s.bool(&["only_nix_store", "onlyNixStore"])?.unwrap_or(false);
        let fs_type = s.string(&["fs_type", "fsType"])?.unwrap_or("ext4".into());
        let root_gpuid = s.string(&["root_gpuid", "rootGPUID"])?.unwrap_or(SEED_ROOT_GUID.into());
        let root_fsuid = match s.string(&["root_fsuid", "rootFSUID"])? {
            Some(u) => Some(u),
            None => (fs_type == "ext4").then(|| root_gpuid.clone()),
        };
        let disk_guid = s.string(&["disk_guid", "diskGUID"])?.unwrap_or(SEED_DISK_GUID.into());
        let mut spec_findings = Vec::new();
        for (key, value) in [
            ("root_gpuid", Some(&root_gpuid)),
            ("root_fsuid", root_fsuid.as_ref()),
            ("disk_guid", Some(&disk_guid)),
        ] {
            if let Some(g) = value
                && !is_guid(g)
            {
                spec_findings.push(Finding::new(
                    Severity::Error,
                    "spec-malformed-guid",
                    format!("`{key}` = {g:?} is not a GUID: write 32 hex digits as 8-4-4-4-12"),
                    Some(format!("spec key {key}")),
                ));
            }
        }
        if let Some(obj) = v.as_object() {
            for key in obj.keys().filter(|k| !KNOWN_KEYS.contains(&k.as_str())) {
                spec_findings.push(Finding::new(
                    Severity::Warning,
                    "spec-unknown-key",
                    format!("`{key}` is not a make-disk-image or reprodisk key: the verifier ignores it"),
                    Some(format!("spec key {key}")),
                ));
            }
        }
        let source_date_epoch = match s.get(&["source_date_epoch", "sourceDateEpoch"])? {
            None => None,
            Some((k, v)) => Some(epoch(k, v)?),
        };
        let contents = match s.get(&["contents"])? {
            None => Vec::new(),
            Some((k, Value::Array(items))) => items
                .iter()
                .enumerate()
                .map(|(i, item)| content(&format!("{k}[{i}]"), item))
                .collect::<Result<_, _>>()?,
            Some((k, other)) => return Err(bad(k, "a list of tables", other)),
        };
        Ok(Expectations {
            layout,
            disk_size,
            boot_end: round_boot_size(boot_size),
            deterministic: s.bool(&["deterministic"])?.unwrap_or(true),
            label: s.string(&["label"])?.unwrap_or(if only_nix_store { "nix-store" } else { "nixos" }.into()),
            fs_type,
            root_gpuid,
            root_fsuid,
            disk_guid,
            only_nix_store,
            source_date_epoch,
            timestamps: s.string(&["timestamps"])?.unwrap_or("clamp".into()),
            format: s.string(&["format"])?.unwrap_or("raw".into()),
            base_name: s.string(&["base_name", "baseName"])?.unwrap_or("nixos".into()),
            contents,
            spec_findings,
        })
    }

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

    /// The partitions of an image of `disk_bytes` bytes, as the seed's parted commands make
    /// them: fixed starts, `bootSize` ends, and the root partition up to parted's `100%`,
    /// which parted aligns down to a whole MiB.
    pub fn partitions(&self, disk_bytes: u64) -> Vec<ExpectedPartition> {
        let total = disk_bytes / SECTOR;
        let boot = self.boot_end / SECTOR;
        let det = self.deterministic;
        let guid = |g: &str| det.then(|| g.to_string());
        let root_guid = guid(&self.root_gpuid);
        let vfat = |label: &str| Some(ExpectedFs { kind: FsKind::Vfat, label: label.into(), uuid: None });
        let root_fs = Some(self.root_fs());
        let gpt = |number, start: u64, end: u64, ty, name, guid, filesystem| ExpectedPartition {
            number,
            start_lba: start,
            sectors: end.saturating_sub(start),
            gpt_type: Some(ty),
            mbr_type: None,
            name: Some(name),
            guid,
            bootable: false,
            attributes: 0,
            filesystem,
        };
        let mbr = |number, start: u64, end: u64, ty, bootable, filesystem| ExpectedPartition {
            number,
            start_lba: start,
            sectors: end.saturating_sub(start),
            gpt_type: None,
            mbr_type: Some(ty),
            name: None,
            guid: None,
            bootable,
            attributes: 0,
            filesystem,
        };
        let end = match self.table() {
            TableKind::Mbr => parted_end_of_100_percent(total, total.saturating_sub(1)),
            TableKind::Gpt => parted_end_of_100_percent(total, total.saturating_sub(34)),
            TableKind::None => total,
        };
        let (p1, p2) = (guid(SEED_PART1_GUID), guid(SEED_PART2_GUID));
        match self.layout {
            LayoutName::Legacy => vec![mbr(1, GRAIN, end, 0x83, false, root_fs)],
            LayoutName::LegacyBoot => {
                vec![mbr(1, GRAIN, boot, 0x0c, true, vfat("BOOT")), mbr(2, boot, end, 0x83, false, root_fs)]
            }
            LayoutName::LegacyGpt => vec![
                gpt(1, GRAIN, 2 * GRAIN, TYPE_BIOS_BOOT, "no-fs", p1, None),
                gpt(2, 2 * GRAIN, end, TYPE_LINUX_DATA, "primary", root_guid, root_fs),
            ],
            LayoutName::Efi => vec![
                gpt(1, 8 * GRAIN, boot, TYPE_ESP, "ESP", p1, vfat("ESP")),
                gpt(2, boot, end, TYPE_LINUX_DATA, "primary", root_guid, root_fs),
            ],
            LayoutName::Efixbootldr => vec![
                gpt(1, 8 * GRAIN, 100 * GRAIN, TYPE_ESP, "ESP", p1, vfat("ESP")),
                gpt(2, 100 * GRAIN, boot, TYPE_XBOOTLDR, "BOOT", p2, vfat("BOOT")),
                gpt(3, boot, end, TYPE_LINUX_DATA, "ROOT", root_guid, root_fs),
            ],
            // `mkpart no-fs 0 1024KiB`: parted moves the start to the first usable LBA and,
            // as the end is not rounded to a grain, keeps sector 2048 itself (34..=2048).
            LayoutName::Hybrid => vec![
                gpt(1, 8 * GRAIN, boot, TYPE_ESP, "ESP", p1, vfat("ESP")),
                gpt(2, 34, GRAIN + 1, TYPE_BIOS_BOOT, "no-fs", p2, None),
                gpt(3, boot, end, TYPE_LINUX_DATA, "primary", root_guid, root_fs),
            ],
            LayoutName::None => Vec::new(),
        }
    }
}

/// The exclusive end sector parted gives `mkpart ... 100%` on a disk of `total` sectors whose
/// last usable sector is `last`. libparted reads a location in percent as `100 * unit` bytes,
/// where a unit is 1% of the disk rounded down to a byte, give or take a radius of half a
/// unit (`ceil(unit / sector) / 2 - 1` sectors). With optimal alignment it ends the partition
/// on the last sector before a whole MiB when that lies inside the range; else at the last
/// usable sector. Checked against parted itself over a sweep of disk sizes in the tests.
fn parted_end_of_100_percent(total: u64, last: u64) -> u64 {
    let unit = total.saturating_mul(SECTOR) / 100;
    let radius = (unit.div_ceil(SECTOR) / 2).saturating_sub(1);
    let wanted = unit.saturating_mul(100) / SECTOR;
    // The inclusive end on a MiB boundary at or below the last usable sector.
    match ((last + 1) / GRAIN * GRAIN).checked_sub(1) {
        Some(aligned) if aligned.saturating_add(radius) >= wanted => aligned + 1,
        _ => last + 1,
    }
}

/// Every top-level key BRIEF.md names: the seed's arguments in snake_case and camelCase, and
/// reprodisk's own (`system`, `source_date_epoch`, `disk_guid`, `timestamps`).
#[rustfmt::skip]
const KNOWN_KEYS: &[&str] = &[
    "partition_table_type", "partitionTableType",
    "disk_size", "diskSize",
    "additional_space", "additionalSpace",
    "boot_size", "bootSize",
    "contents",
    "install_boot_loader", "installBootLoader",
    "touch_efi_vars", "touchEFIVars",
    "efi_firmware", "efiFirmware",
    "efi_variables", "efiVariables",
    "fs_type", "fsType",
    "label",
    "config_file", "configFile",
    "post_vm", "postVM",
    "mem_size", "memSize",
    "only_nix_store", "onlyNixStore",
    "name",
    "format",
    "base_name", "baseName",
    "deterministic",
    "root_gpuid", "rootGPUID",
    "root_fsuid", "rootFSUID",
    "copy_channel", "copyChannel",
    "additional_paths", "additionalPaths",
    "system",
    "source_date_epoch", "sourceDateEpoch",
    "disk_guid", "diskGUID",
    "timestamps",
    "owners",
];

/// `(x / MiB + 1) * MiB`, the seed's `round_to_nearest` (256M becomes 257MiB).
pub fn round_boot_size(bytes: u64) -> u64 {
    (bytes / MIB + 1) * MIB
}

/// Whether `s` is a GUID in the 8-4-4-4-12 form (either case).
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// Looks keys up under their snake_case name and their camelCase alias.
struct Keys<'a>(&'a Value);

impl<'a> Keys<'a> {
    fn get(&self, names: &[&'a str]) -> Result<Option<(&'a str, &'a Value)>, SpecError> {
        let mut found: Option<(&str, &Value)> = None;
        for &n in names {
            if let Some(v) = self.0.get(n) {
                if let Some((prev, _)) = found {
                    return Err(SpecError::Conflict { a: prev.into(), b: n.into() });
                }
                found = Some((n, v));
            }
        }
        Ok(found)
    }

    fn string(&self, names: &[&'a str]) -> Result<Option<String>, SpecError> {
        match self.get(names)? {
            None | Some((_, Value::Null)) => Ok(None),
            Some((_, Value::String(s))) => Ok(Some(s.clone())),
            Some((k, v)) => Err(bad(k, "a string", v)),
        }
    }

    fn bool(&self, names: &[&'a str]) -> Result<Option<bool>, SpecError> {
        match self.get(names)? {
            None | Some((_, Value::Null)) => Ok(None),
            Some((_, Value::Bool(b))) => Ok(Some(*b)),
            Some((k, v)) => Err(bad(k, "true or false", v)),
        }
    }
}

fn bad(key: &str, expected: &str, found: &Value) -> SpecError {
    SpecError::BadValue { key: key.into(), expected: expected.into(), found: found.to_string() }
}

/// A size: an integer or a bare number string is MiB (as `diskSize`); a string with an IEC
/// suffix (`"256M"`, `"1G"`, `"512K"`, also `"256MiB"`) is read as `numfmt --from=iec` does.
fn size(key: &str, v: &Value) -> Result<u64, SpecError> {
    let err = || bad(key, "a size such as 1024 (MiB), \"512M\" or \"1G\"", v);
    match v {
        Value::Number(n) => n.as_u64().and_then(|m| m.checked_mul(MIB)).ok_or_else(err),
        Value::String(s) => {
            let s = s.trim();
            let digits = s.bytes().take_while(u8::is_ascii_digit).count();
            let n: u64 = s[..digits].parse().map_err(|_| err())?;
            let unit = match s[digits..].trim_end_matches("iB").trim_end_matches('i') {
                "" => MIB,
                "K" | "k" => 1 << 10,
                "M" => MIB,
                "G" => 1 << 30,
                "T" => 1 << 40,
                _ => return Err(err()),
            };
            n.checked_mul(unit).ok_or_else(err)
        }
        _ => Err(err()),
    }
}

fn epoch(key: &str, v: &Value) -> Result<i64, SpecError> {
    let parsed = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| bad(key, "seconds since 1970 (an integer)", v))
}

fn content(key: &str, v: &Value) -> Result<ExpectedContent, SpecError> {
    if !v.is_object() {
        return Err(bad(key, "a table with source and target", v));
    }
    let s = Keys(v);
    let text = |name: &'static str| -> Result<Option<String>, SpecError> {
        match s.get(&[name])? {
            None | Some((_, Value::Null)) => Ok(None),
            Some((_, Value::String(t))) => Ok(Some(t.clone())),
            // A mode written as a number (`mode = 755`) means the same digits.
            Some((_, Value::Number(n))) if name == "mode" => Ok(Some(n.to_string())),
            Some((_, other)) => Err(bad(&format!("{key}.{name}"), "a string", other)),
        }
    };
    let required = |name: &'static str| -> Result<String, SpecError> {
        text(name)?.ok_or_else(|| bad(&format!("{key}.{name}"), "a string", &Value::Null))
    };
    Ok(ExpectedContent {
        source: required("source")?,
        target: required("target")?,
        mode: text("mode")?,
        user: text("user")?,
        group: text("group")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn camel_case_json_as_the_seed_writes_it() {
        let e = Expectations::from_json_str(
            r#"{"partitionTableType":"efi","diskSize":1024,"bootSize":"512M","label":"root",
                "rootGPUID":"11111111-2222-3333-4444-555555555555","deterministic":true,
                "fsType":"ext4","format":"qcow2","baseName":"img","onlyNixStore":false,
                "sourceDateEpoch":1700000000,
                "contents":[{"source":"motd","target":"/etc/motd","mode":"0644","user":"root","group":"root"}]}"#,
        )
        .expect("valid spec");
        assert_eq!(e.layout, LayoutName::Efi);
        assert_eq!(e.disk_size, DiskSize::Bytes(1024 * MIB));
        assert_eq!(e.boot_end, 513 * MIB);
        assert_eq!(e.label, "root");
        assert_eq!(e.root_fsuid.as_deref(), Some("11111111-2222-3333-4444-555555555555"));
        assert_eq!((e.format.as_str(), e.base_name.as_str()), ("qcow2", "img"));
        assert_eq!(e.epoch(Some(5)), 1_700_000_000);
        assert_eq!(e.contents[0].octal_mode(), Some(0o644));
        assert_eq!(e.contents[0].user.as_deref(), Some("root"));
        assert!(e.spec_findings.is_empty());
    }

    #[test]
    fn snake_case_toml_and_defaults() {
        let e = Expectations::from_toml_str(
            "partition_table_type = \"hybrid\"\ndisk_size = \"auto\"\nsource_date_epoch = 0\n\
             [[contents]]\nsource = \"dir/*\"\ntarget = \"/srv\"\nmode = \"u+x\"\n",
        )
        .expect("valid spec");
        assert_eq!(e.layout, LayoutName::Hybrid);
        assert_eq!(e.disk_size, DiskSize::Auto);
        assert_eq!(e.boot_end, 257 * MIB);
        assert_eq!(e.label, "nixos");
        assert_eq!(e.root_gpuid, SEED_ROOT_GUID);
        assert_eq!(e.root_fsuid.as_deref(), Some(SEED_ROOT_GUID));
        assert_eq!(e.disk_guid, SEED_DISK_GUID);
        assert_eq!(e.timestamps, "clamp");
        assert_eq!(e.epoch(None), 0);
        assert!(e.contents[0].is_glob());
        assert_eq!(e.contents[0].octal_mode(), None);
        assert!(e.spec_findings.is_empty(), "{:?}", e.spec_findings);
        let d = Expectations::from_toml_str("onlyNixStore = true").expect("valid spec");
        assert_eq!((d.layout, d.label.as_str()), (LayoutName::Legacy, "nix-store"));
        assert_eq!(d.epoch(None), DEFAULT_EPOCH);
        assert_eq!(d.epoch(Some(7)), 7);
    }

    #[test]
    fn bad_specs_are_errors_that_name_the_key() {
        let err = |t: &str| Expectations::from_toml_str(t).expect_err("must be rejected").to_string();
        assert!(err("partitionTableType = \"gpt\"").contains("partition_table_type"));
        assert!(err("diskSize = 1\ndisk_size = 2").contains("`disk_size` and `diskSize`"));
        assert!(err("bootSize = \"12X\"").contains("bootSize"));
        assert!(err("[[contents]]\nsource = \"a\"").contains("contents[0].target"));
        assert!(err("deterministic = \"yes\"").contains("deterministic"));
        assert!(Expectations::from_json_str("{").is_err());
    }

    #[test]
    fn unknown_keys_are_warnings() {
        let e = Expectations::from_toml_str("partitionTabletype = \"efi\"\n[system]\nroot = \"r\"")
            .expect("valid");
        let codes: Vec<&str> = e.spec_findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, ["spec-unknown-key"]);
        assert!(e.spec_findings[0].message.contains("partitionTabletype"));
        assert_eq!(e.layout, LayoutName::Legacy);
    }

    #[test]
    fn malformed_guids_in_the_spec_are_findings() {
        let e = Expectations::from_toml_str("disk_guid = \"97FD5997-D90B-4AA3-8D16-C1723AEA73C\"")
            .expect("valid");
        assert_eq!(e.spec_findings.len(), 1);
        assert_eq!(e.spec_findings[0].code, "spec-malformed-guid");
        assert!(e.spec_findings[0].message.contains("disk_guid"));
        assert!(is_guid(SEED_ROOT_GUID) && is_guid(&SEED_ROOT_GUID.to_lowercase()));
        assert!(!is_guid("97FD5997-D90B-4AA3-8D16-C1723AEA73C") && !is_guid("not-a-guid"));
    }

    #[test]
    fn sizes_as_the_seed_reads_them() {
        let s = |v: Value| size("k", &v).expect("valid size");
        assert_eq!(s(Value::from(300)), 300 * MIB);
        assert_eq!(s(Value::from("256M")), 256 * MIB);
        assert_eq!(s(Value::from("1G")), 1 << 30);
        assert_eq!(s(Value::from("512K")), 512 << 10);
        assert_eq!(s(Value::from("64MiB")), 64 * MIB);
        assert_eq!(round_boot_size(256 * MIB), 257 * MIB);
        assert_eq!(round_boot_size(256 * MIB - 1), 256 * MIB);
    }

    /// The seed's own parted command for a layout, with its `$bootSizeMiB`.
    fn seed_parted(layout: LayoutName, boot_mib: u64) -> Vec<String> {
        let script = match layout {
            LayoutName::Legacy => "mklabel msdos mkpart primary ext4 1MiB 100%",
            LayoutName::LegacyBoot => {
                "mklabel msdos mkpart primary fat32 1MiB $b set 1 boot on mkpart primary ext4 $b 100%"
            }
            LayoutName::LegacyGpt => {
                "mklabel gpt mkpart no-fs 1MiB 2MiB set 1 bios_grub on \
                 mkpart primary ext4 2MiB 100% align-check optimal 2"
            }
            LayoutName::Efi => {
                "mklabel gpt mkpart ESP fat32 8MiB $b set 1 boot on align-check optimal 1 \
                 mkpart primary ext4 $b 100% align-check optimal 2"
            }
            LayoutName::Efixbootldr => {
                "mklabel gpt mkpart ESP fat32 8MiB 100MiB set 1 boot on align-check optimal 1 \
                 mkpart BOOT fat32 100MiB $b set 2 bls_boot on align-check optimal 2 \
                 mkpart ROOT ext4 $b 100% align-check optimal 3"
            }
            LayoutName::Hybrid => {
                "mklabel gpt mkpart ESP fat32 8MiB $b set 1 boot on align-check optimal 1 \
                 mkpart no-fs 0 1024KiB set 2 bios_grub on \
                 mkpart primary ext4 $b 100% align-check optimal 3"
            }
            LayoutName::None => "",
        };
        let b = format!("{boot_mib}MiB");
        script.split_whitespace().map(|w| if w == "$b" { b.clone() } else { w.to_string() }).collect()
    }

    fn run(cmd: &mut Command, package: &str) -> std::process::Output {
        let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?} (install {package}): {e}"));
        assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    /// `parted_end_of_100_percent` against parted itself: every MiB from 20 to 400 and a few
    /// large disks (sparse files), GPT and MBR, `mkpart ... 100%` read back with `print`.
    #[test]
    fn end_of_100_percent_matches_parted_over_a_sweep() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sizes: Vec<u64> = (20..=400).map(|m| m * MIB).collect();
        sizes.extend([1024 * MIB + 5 * SECTOR, 10 << 30, (100 << 30) + 3 * SECTOR, 2 << 40]);
        let work: Vec<(u64, bool)> = sizes.iter().flat_map(|&b| [(b, true), (b, false)]).collect();
        let mismatches = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for chunk in work.chunks(work.len().div_ceil(2)) {
                let (dir, mismatches) = (dir.path(), &mismatches);
                s.spawn(move || {
                    for &(bytes, gpt) in chunk {
                        let img = dir.join(format!("{bytes}-{gpt}.img"));
                        std::fs::File::create(&img).and_then(|f| f.set_len(bytes)).expect("scratch image");
                        let (label, start) = if gpt { ("gpt", "2MiB") } else { ("msdos", "1MiB") };
                        let out = run(
                            Command::new("parted").arg("-m").arg("--script").arg(&img).arg("--").args([
                                "mklabel", label, "mkpart", "primary", "ext4", start, "100%", "unit", "s",
                                "print",
                            ]),
                            "parted",
                        );
                        std::fs::remove_file(&img).expect("scratch image removed");
                        let text = String::from_utf8_lossy(&out.stdout).into_owned();
                        let end: u64 = text
                            .lines()
                            .find(|l| l.starts_with("1:"))
                            .and_then(|l| l.split(':').nth(2))
                            .and_then(|e| e.trim_end_matches('s').parse().ok())
                            .unwrap_or_else(|| panic!("no partition 1 in parted's print: {text}"));
                        let total = bytes / SECTOR;
                        let last = if gpt { total - 34 } else { total - 1 };
                        let ours = parted_end_of_100_percent(total, last);
                        if ours != end + 1 {
                            mismatches.lock().expect("not poisoned").push((bytes, label, end + 1, ours));
                        }
                    }
                });
            }
        });
        let m = mismatches.into_inner().expect("not poisoned");
        assert!(m.is_empty(), "(disk bytes, label, parted's end, ours): {m:?}");
    }

    /// Runs the seed's parted command for every layout on sparse scratch disks (one a whole
    /// number of MiB as the seed makes them, one not) and compares `sfdisk --json` with
    /// [`Expectations::partitions`] field by field.
    #[test]
    fn geometry_matches_the_seeds_parted_for_every_layout() {
        let dir = tempfile::tempdir().expect("tempdir");
        for layout in LayoutName::ALL {
            // Whole MiB as the seed makes them, not whole MiB, and disks under 100 MiB where
            // parted cannot align the end of `100%` (efixbootldr needs more than 100 MiB).
            let mut sizes = vec![(300 * MIB, "256M"), (1024 * MIB + 5 * SECTOR, "100M"), (600 * MIB, "300M")];
            if layout != LayoutName::Efixbootldr {
                sizes.extend([
                    (64 * MIB, "24M"),
                    (90 * MIB + 7 * SECTOR, "40M"),
                    (101 * MIB, "64M"),
                    (210 * MIB, "64M"),
                ]);
            }
            for (disk_bytes, boot) in sizes {
                let spec = format!("partitionTableType = \"{}\"\nbootSize = \"{boot}\"", layout.as_str());
                let e = Expectations::from_toml_str(&spec).expect("valid spec");
                let expected = e.partitions(disk_bytes);
                if layout == LayoutName::None {
                    assert!(expected.is_empty());
                    continue;
                }
                let img = dir.path().join(format!("{}-{disk_bytes}.img", layout.as_str().replace('+', "_")));
                std::fs::File::create(&img).and_then(|f| f.set_len(disk_bytes)).expect("scratch image");
                let args = seed_parted(layout, e.boot_end / MIB);
                run(Command::new("parted").arg("--script").arg(&img).arg("--").args(&args), "parted");
                let out = run(Command::new("sfdisk").arg("--json").arg(&img), "fdisk (sfdisk)");
                let v: Value = serde_json::from_slice(&out.stdout).expect("sfdisk prints JSON");
                let table = &v["partitiontable"];
                assert_eq!(table["label"], if e.table() == TableKind::Gpt { "gpt" } else { "dos" });
                let parts = table["partitions"].as_array().expect("partitions");
                let ctx = format!("{} on {disk_bytes} bytes", layout.as_str());
                assert_eq!(parts.len(), expected.len(), "{ctx}");
                for (p, x) in parts.iter().zip(&expected) {
                    let ctx = format!("{ctx}, partition {}", x.number);
                    let node = p["node"].as_str().expect("node");
                    assert!(node.ends_with(&x.number.to_string()), "{ctx}: {node}");
                    assert_eq!(p["start"].as_u64(), Some(x.start_lba), "{ctx}: start");
                    assert_eq!(p["size"].as_u64(), Some(x.sectors), "{ctx}: size");
                    match (x.gpt_type, x.mbr_type) {
                        (Some(t), _) => {
                            assert_eq!(p["type"].as_str(), Some(t), "{ctx}: type");
                            assert_eq!(p["name"].as_str(), x.name, "{ctx}: name");
                            assert!(
                                p.get("attrs").is_none() && x.attributes == 0,
                                "{ctx}: attributes {:?}",
                                p.get("attrs")
                            );
                        }
                        (None, Some(t)) => {
                            assert_eq!(p["type"].as_str(), Some(format!("{t:x}").as_str()), "{ctx}: type");
                            assert_eq!(
                                p["bootable"].as_bool().unwrap_or(false),
                                x.bootable,
                                "{ctx}: boot flag"
                            );
                        }
                        (None, None) => panic!("{ctx}: neither a GPT nor an MBR type"),
                    }
                }
            }
        }
    }

    #[test]
    fn deterministic_guids_per_layout() {
        let guids = |layout: &str| {
            let e =
                Expectations::from_toml_str(&format!("partitionTableType = \"{layout}\"")).expect("valid");
            e.partitions(1024 * MIB).into_iter().map(|p| p.guid).collect::<Vec<_>>()
        };
        let g = |s: &str| Some(s.to_string());
        assert_eq!(guids("efi"), [g(SEED_PART1_GUID), g(SEED_ROOT_GUID)]);
        // The seed gives rootGPUID to a partition 3 that does not exist; reprodisk gives it to
        // the root partition (ARCHITECTURE.md).
        assert_eq!(guids("legacy+gpt"), [g(SEED_PART1_GUID), g(SEED_ROOT_GUID)]);
        assert_eq!(guids("hybrid"), [g(SEED_PART1_GUID), g(SEED_PART2_GUID), g(SEED_ROOT_GUID)]);
        assert_eq!(guids("efixbootldr"), [g(SEED_PART1_GUID), g(SEED_PART2_GUID), g(SEED_ROOT_GUID)]);
        assert_eq!(guids("legacy"), [None]);
        let random = Expectations::from_toml_str("partitionTableType = \"efi\"\ndeterministic = false")
            .expect("valid");
        assert!(random.partitions(1024 * MIB).iter().all(|p| p.guid.is_none()));
        assert_eq!(random.expected_disk_guid(), None);
        assert_eq!(random.root_fs().uuid, None);
    }

    #[test]
    fn seed_guid_strings_are_the_id_rules_guids() {
        use crate::ids;
        assert_eq!(SEED_ROOT_GUID, ids::DEFAULT_ROOT_GPUID.to_string());
        assert_eq!(SEED_PART1_GUID, ids::SEED_PARTITION_1.to_string());
        assert_eq!(SEED_PART2_GUID, ids::SEED_PARTITION_2.to_string());
        assert_eq!(SEED_DISK_GUID, ids::DISK_GUID.to_string());
    }
}
