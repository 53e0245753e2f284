//! Reading a spec (TOML or JSON) into [`Expectations`]: every key under its snake_case name
//! and its camelCase alias, the seed's defaults, sizes and epochs as the seed reads them.

use super::{DiskSize, Expectations, ExpectedContent, LayoutName, MIB, SEED_DISK_GUID, SEED_ROOT_GUID};
use crate::report::{Finding, Severity};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A spec that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    // `cause`, not `source`: the message says it, and a chain printer must not repeat it.
    #[error("reading spec `{path}`: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("spec `{path}` has extension `{ext}`: name it .toml or .json")]
    Extension { path: PathBuf, ext: String },
    #[error("spec is not valid {format}: {message}")]
    Syntax { format: &'static str, message: String },
    #[error("spec key `{key}`: expected {expected}, found {found}")]
    BadValue { key: String, expected: String, found: String },
    #[error("spec sets both `{a}` and `{b}`, which mean the same: keep one")]
    Conflict { a: String, b: String },
}

impl SpecError {
    /// Whether the message names the spec file already (a caller adding "spec `path`"
    /// would say it twice).
    pub fn names_path(&self) -> bool {
        matches!(self, SpecError::Io { .. } | SpecError::Extension { .. })
    }
}

impl Expectations {
    /// Reads a spec file, TOML or JSON by its extension.
    pub fn from_path(path: &Path) -> Result<Self, SpecError> {
        let text = std::fs::read_to_string(path)
            .map_err(|cause| SpecError::Io { path: path.to_path_buf(), cause })?;
        let mut e = match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Self::from_toml_str(&text),
            Some("json") => Self::from_json_str(&text),
            other => {
                Err(SpecError::Extension { path: path.to_path_buf(), ext: other.unwrap_or("").to_string() })
            }
        }?;
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        // Absolute, so that a glob in a source is matched from the root down.
        e.spec_dir = Some(std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf()));
        Ok(e)
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
            config_file: s.string(&["config_file", "configFile"])?,
            spec_dir: None,
            spec_findings,
        })
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
    use crate::expect::DEFAULT_EPOCH;

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
}
