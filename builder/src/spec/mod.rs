//! The image spec: the arguments of nixpkgs' `make-disk-image`, read from TOML or JSON.
//!
//! Keys are snake_case; the seed's camelCase argument names are accepted as aliases so the
//! JSON of a make-disk-image call works as it is. Defaults are the seed's, and every assertion
//! the seed makes is checked here with a message that says what to change. Unknown keys fail
//! and name the closest valid key. Relative paths resolve against the spec file's folder.
//!
//! Parsing goes through one generic tree (`serde_json::Value`) for both formats: keys are
//! first normalised (aliases to canonical names, unknown keys rejected), then each field is
//! read on its own so that a type error names its key.

pub mod size;

use crate::ids::{Guid, SEED_DISK_GUID, SEED_ROOT_GPUID};
use crate::layout::Layout;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use size::SizeError;
use std::path::{Path, PathBuf};

/// SOURCE_DATE_EPOCH when neither the spec nor the environment sets it: 1980-01-01T00:00:00Z,
/// the earliest instant every filesystem we write (FAT included) stores exactly.
pub const DEFAULT_SOURCE_DATE_EPOCH: i64 = 315_532_800;

/// Everything that can be wrong with a spec. The CLI exits with code 2 on any of them.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read spec `{path}`: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("spec `{path}` has extension `{ext}`: use `.toml` or `.json`")]
    UnknownFormat { path: PathBuf, ext: String },
    #[error("spec `{path}` is not valid {format}: {message}")]
    Syntax { path: PathBuf, format: &'static str, message: String },
    #[error("unknown key `{location}{key}`{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownKey { location: String, key: String, suggestion: Option<String> },
    #[error("`{location}{key}` and its alias `{location}{alias}` are both set: keep one")]
    DuplicateKey { location: String, key: String, alias: String },
    #[error("`{location}{key}` {message}")]
    Invalid { location: String, key: String, message: String },
    #[error("`{location}{key}` = {value}: {error}")]
    BadSize { location: String, key: String, value: String, error: SizeError },
    #[error("{0}")]
    Assertion(String),
    #[error(
        "`{location}{key}` names `{path}`, which does not exist: check the path (relative paths start at the spec's folder `{base}`)"
    )]
    MissingFile { location: String, key: String, path: PathBuf, base: PathBuf },
    #[error("`{key}` is not supported: {why}")]
    Unsupported { key: String, why: String },
}

/// `diskSize`: a fixed size or "auto".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskSize {
    /// The seed's `"auto"`: the contents' size plus `additionalSpace` and the reserved space.
    Auto,
    /// A fixed size in MiB (the seed's integer `diskSize`).
    Mib(u64),
}

/// `format`: the output image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Format {
    #[serde(rename = "raw")]
    Raw,
    #[serde(rename = "qcow2")]
    Qcow2,
    #[serde(rename = "qcow2-compressed")]
    Qcow2Compressed,
    #[serde(rename = "vdi")]
    Vdi,
    #[serde(rename = "vpc")]
    Vpc,
}

impl Format {
    pub const ALL: [(&'static str, Format); 5] = [
        ("raw", Format::Raw),
        ("qcow2", Format::Qcow2),
        ("qcow2-compressed", Format::Qcow2Compressed),
        ("vdi", Format::Vdi),
        ("vpc", Format::Vpc),
    ];

    /// The file extension the seed gives this format.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Raw => "img",
            Format::Qcow2 | Format::Qcow2Compressed => "qcow2",
            Format::Vdi => "vdi",
            Format::Vpc => "vhd",
        }
    }

    /// The name the seed writes into hydra-build-products (`qcow2-compressed` becomes `qcow2`).
    pub fn hydra_name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Qcow2 | Format::Qcow2Compressed => "qcow2",
            Format::Vdi => "vdi",
            Format::Vpc => "vpc",
        }
    }
}

/// `timestamps`: what happens to file times taken from the sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Timestamps {
    /// Times later than SOURCE_DATE_EPOCH become SOURCE_DATE_EPOCH (`tar --clamp-mtime`).
    Clamp,
    /// Every time is replaced by SOURCE_DATE_EPOCH.
    SourceDateEpoch,
    /// Times are kept as the sources have them.
    Keep,
}

/// `auto_sizing`: how `diskSize = "auto"` sizes the root filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AutoSizing {
    /// The smallest ext4 filesystem that holds the tree, computed by planning it, plus
    /// `additionalSpace`. It cannot be too small.
    Exact,
    /// The seed's estimate (du in 4 KiB blocks, 2 blocks per inode, 5.2%), for images sized
    /// like make-disk-image's; it can be too small for trees with many small files.
    Seed,
}

/// `system.bootloader`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bootloader {
    /// GRUB for BIOS layouts, systemd-boot for UEFI ones.
    Auto,
    Grub,
    SystemdBoot,
}

/// Where SOURCE_DATE_EPOCH came from; the manifest records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EpochOrigin {
    Spec,
    Environment,
    Default,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SourceDateEpoch {
    pub value: i64,
    pub origin: EpochOrigin,
}

/// A path from the spec: as written (recorded in the manifest) and resolved against the
/// spec's folder (used to read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputPath {
    pub written: String,
    pub resolved: PathBuf,
}

impl Serialize for InputPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.written)
    }
}

/// One `contents` entry: copy `source` to `target` in the image, like the seed's rsync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContentEntry {
    /// A file or directory; a `*` in it globs, and the matches go into `target` as a folder.
    pub source: InputPath,
    /// An absolute path in the image.
    pub target: String,
    /// `rsync --chmod` syntax, e.g. `"0644"`, `"u+x"`; applied to what is copied.
    pub mode: Option<String>,
    pub user: Option<String>,
    pub group: Option<String>,
}

/// The `system` table: what the seed's NixOS `config` provided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct System {
    /// The root tree: a directory or a tar archive (plain, gzip or zstd).
    pub root: InputPath,
    /// The kernel: a path inside the root tree or outside it; found in the root's /boot when unset.
    pub kernel: Option<String>,
    pub initrd: Option<String>,
    pub kernel_params: Vec<String>,
    pub bootloader: Bootloader,
    /// How the kernel's `root=` names the root filesystem.
    pub root_device: RootDevice,
}

/// `system.root_device`: the form of the `root=` kernel parameter reprodisk adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RootDevice {
    /// `root=UUID=<rootFSUID>` (the ext4 UUID).
    Uuid,
    /// `root=PARTUUID=<rootGPUID>` (the GPT partition GUID; GPT layouts only).
    Partuuid,
}

/// A parsed, checked and resolved image spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spec {
    #[serde(skip)]
    pub path: PathBuf,
    #[serde(skip)]
    pub base_dir: PathBuf,
    pub partition_table_type: Layout,
    pub disk_size: DiskSize,
    /// Bytes (numfmt --from=iec of the seed's `additionalSpace`).
    pub additional_space: u64,
    /// Bytes as written (numfmt --from=iec); the layout rounds it as the seed does.
    pub boot_size: u64,
    pub contents: Vec<ContentEntry>,
    pub install_boot_loader: bool,
    pub touch_efi_vars: bool,
    pub efi_firmware: Option<InputPath>,
    pub efi_variables: Option<InputPath>,
    pub fs_type: String,
    pub label: String,
    pub config_file: Option<InputPath>,
    pub post_vm: String,
    pub mem_size: u64,
    pub only_nix_store: bool,
    pub name: String,
    pub format: Format,
    pub base_name: String,
    pub deterministic: bool,
    pub root_gpuid: Guid,
    /// `None` only when `fsType` is not ext4 (rejected) or the spec sets it to null.
    pub root_fsuid: Option<Guid>,
    pub copy_channel: bool,
    pub additional_paths: Vec<String>,
    pub system: Option<System>,
    pub source_date_epoch: SourceDateEpoch,
    pub timestamps: Timestamps,
    pub auto_sizing: AutoSizing,
    pub disk_guid: Guid,
    /// A folder laid out like `/` searched first for boot-loader inputs (see `boot::inputs`).
    pub package_root: Option<InputPath>,
}

/// Canonical key, alias (the seed's camelCase name, if different).
pub const TOP_KEYS: &[(&str, Option<&str>)] = &[
    ("partition_table_type", Some("partitionTableType")),
    ("disk_size", Some("diskSize")),
    ("additional_space", Some("additionalSpace")),
    ("boot_size", Some("bootSize")),
    ("contents", None),
    ("install_boot_loader", Some("installBootLoader")),
    ("touch_efi_vars", Some("touchEFIVars")),
    ("efi_firmware", Some("efiFirmware")),
    ("efi_variables", Some("efiVariables")),
    ("fs_type", Some("fsType")),
    ("label", None),
    ("config_file", Some("configFile")),
    ("post_vm", Some("postVM")),
    ("mem_size", Some("memSize")),
    ("only_nix_store", Some("onlyNixStore")),
    ("name", None),
    ("format", None),
    ("base_name", Some("baseName")),
    ("deterministic", None),
    ("root_gpuid", Some("rootGPUID")),
    ("root_fsuid", Some("rootFSUID")),
    ("copy_channel", Some("copyChannel")),
    ("additional_paths", Some("additionalPaths")),
    ("system", None),
    ("source_date_epoch", Some("sourceDateEpoch")),
    ("timestamps", None),
    ("auto_sizing", Some("autoSizing")),
    ("disk_guid", Some("diskGUID")),
    ("package_root", Some("packageRoot")),
];

pub const SYSTEM_KEYS: &[(&str, Option<&str>)] = &[
    ("root", None),
    ("kernel", None),
    ("initrd", None),
    ("kernel_params", Some("kernelParams")),
    ("bootloader", None),
    ("root_device", Some("rootDevice")),
];

pub const CONTENTS_KEYS: &[(&str, Option<&str>)] =
    &[("source", None), ("target", None), ("mode", None), ("user", None), ("group", None)];

/// Levenshtein distance over chars, ignoring ASCII case.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate closest to `word` by [`edit_distance`] (first one on ties).
/// A candidate that contains `word` (ignoring case) wins over edit distance, so `"gpt"`
/// suggests `"legacy+gpt"` rather than `"efi"`.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates.into_iter().min_by_key(|c| (!c.to_ascii_lowercase().contains(&lower), edit_distance(word, c)))
}

/// A table with canonical keys, and for each canonical key the name the spec wrote.
type Normalised = (Map<String, Value>, Map<String, Value>);

/// Replaces aliases by canonical keys and rejects unknown or doubled keys.
fn normalise(
    map: Map<String, Value>,
    keys: &[(&str, Option<&str>)],
    location: &str,
) -> Result<Normalised, SpecError> {
    let mut out = Map::new();
    let mut written = Map::new();
    for (key, value) in map {
        let canonical = keys.iter().find(|(c, a)| *c == key || *a == Some(key.as_str())).map(|(c, _)| *c);
        let Some(canonical) = canonical else {
            let names = keys.iter().flat_map(|(c, a)| std::iter::once(*c).chain(*a));
            return Err(SpecError::UnknownKey {
                location: location.to_string(),
                suggestion: closest(&key, names).map(str::to_string),
                key,
            });
        };
        if out.contains_key(canonical) {
            let alias = keys.iter().find(|(c, _)| *c == canonical).and_then(|(_, a)| *a).unwrap_or(canonical);
            return Err(SpecError::DuplicateKey {
                location: location.to_string(),
                key: canonical.to_string(),
                alias: alias.to_string(),
            });
        }
        written.insert(canonical.to_string(), Value::String(key));
        out.insert(canonical.to_string(), value);
    }
    Ok((out, written))
}

/// Reads fields of one table with errors that name the key.
struct Table<'a> {
    map: Map<String, Value>,
    /// Canonical key to the name the spec used (its alias, if it used one).
    written: Map<String, Value>,
    location: &'a str,
}

impl Table<'_> {
    /// The key as the user wrote it, for messages.
    fn name(&self, key: &str) -> String {
        self.written.get(key).and_then(Value::as_str).unwrap_or(key).to_string()
    }

    fn invalid(&self, key: &str, message: impl Into<String>) -> SpecError {
        SpecError::Invalid {
            location: self.location.to_string(),
            key: self.name(key),
            message: message.into(),
        }
    }

    fn get<T: DeserializeOwned>(&mut self, key: &str, expected: &str) -> Result<Option<T>, SpecError> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(v) => serde_json::from_value(v.clone())
                .map(Some)
                .map_err(|_| self.invalid(key, format!("must be {expected}, not {v}"))),
        }
    }

    fn bool(&mut self, key: &str, default: bool) -> Result<bool, SpecError> {
        Ok(self.get(key, "true or false")?.unwrap_or(default))
    }

    fn string(&mut self, key: &str) -> Result<Option<String>, SpecError> {
        self.get(key, "a string")
    }

    /// One of `choices` (by name), suggesting the closest on a miss.
    fn choice<T: Copy>(&mut self, key: &str, choices: &[(&str, T)], default: T) -> Result<T, SpecError> {
        let Some(s) = self.string(key)? else { return Ok(default) };
        match choices.iter().find(|(n, _)| *n == s) {
            Some((_, v)) => Ok(*v),
            None => {
                let names: Vec<String> = choices.iter().map(|(n, _)| format!("\"{n}\"")).collect();
                let near = closest(&s, choices.iter().map(|(n, _)| *n))
                    .map(|n| format!(" (did you mean \"{n}\"?)"))
                    .unwrap_or_default();
                Err(self.invalid(key, format!("is \"{s}\": it must be one of {}{near}", names.join(", "))))
            }
        }
    }

    /// A size in bytes: a numfmt string, or an integer number of bytes.
    fn iec_size(&mut self, key: &str, default: &str) -> Result<u64, SpecError> {
        let v = self.map.remove(key).unwrap_or(Value::String(default.to_string()));
        match &v {
            Value::Number(n) => n.as_u64().ok_or_else(|| {
                self.invalid(
                    key,
                    format!("must be a size such as \"512M\" or a non-negative number of bytes, not {v}"),
                )
            }),
            Value::String(s) => size::parse_iec(s).map_err(|error| SpecError::BadSize {
                location: self.location.to_string(),
                key: self.name(key),
                value: v.to_string(),
                error,
            }),
            _ => Err(self.invalid(key, format!("must be a size such as \"512M\", not {v}"))),
        }
    }

    fn path(&mut self, key: &str, base: &Path) -> Result<Option<InputPath>, SpecError> {
        Ok(self.string(key)?.map(|w| resolve(base, &w)))
    }
}

fn resolve(base: &Path, written: &str) -> InputPath {
    InputPath { written: written.to_string(), resolved: base.join(written) }
}

fn as_table(v: Value, location: &str, key: &str) -> Result<Map<String, Value>, SpecError> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(SpecError::Invalid {
            location: location.to_string(),
            key: key.to_string(),
            message: format!("must be a table, not {other}"),
        }),
    }
}

impl Spec {
    /// Reads a spec file (`.toml` or `.json`), taking SOURCE_DATE_EPOCH from the environment
    /// when the spec does not set it.
    pub fn load(path: &Path) -> Result<Spec, SpecError> {
        let env = std::env::var("SOURCE_DATE_EPOCH").ok();
        Spec::load_with_env(path, env.as_deref())
    }

    /// [`Spec::load`] with the SOURCE_DATE_EPOCH environment value passed in (for tests).
    pub fn load_with_env(path: &Path, env_epoch: Option<&str>) -> Result<Spec, SpecError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| SpecError::Read { path: path.to_path_buf(), error })?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        let value = match ext.as_str() {
            "json" => serde_json::from_str::<Value>(&text).map_err(|e| SpecError::Syntax {
                path: path.to_path_buf(),
                format: "JSON",
                message: e.to_string(),
            })?,
            "toml" => {
                let t: toml::Table = toml::from_str(&text).map_err(|e| SpecError::Syntax {
                    path: path.to_path_buf(),
                    format: "TOML",
                    message: e.to_string().trim_end().to_string(),
                })?;
                serde_json::to_value(t).map_err(|e| SpecError::Syntax {
                    path: path.to_path_buf(),
                    format: "TOML",
                    message: e.to_string(),
                })?
            }
            _ => return Err(SpecError::UnknownFormat { path: path.to_path_buf(), ext }),
        };
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut spec = Spec::from_value(value, &base, env_epoch)?;
        spec.path = path.to_path_buf();
        spec.check_files()?;
        Ok(spec)
    }

    /// Builds a spec from a parsed document. Checks everything except that files exist.
    pub fn from_value(value: Value, base: &Path, env_epoch: Option<&str>) -> Result<Spec, SpecError> {
        let (map, written) = normalise(as_table(value, "", "the document")?, TOP_KEYS, "")?;
        let mut t = Table { map, written, location: "" };

        let layout = t.choice("partition_table_type", &Layout::ALL.map(|l| (l.name(), l)), Layout::Legacy)?;
        let disk_size = match t.map.remove("disk_size") {
            None => DiskSize::Auto,
            Some(Value::String(s)) if s == "auto" => DiskSize::Auto,
            Some(Value::Number(n)) => match n.as_u64() {
                Some(m) if m > 0 => DiskSize::Mib(m),
                _ => {
                    return Err(t.invalid(
                        "disk_size",
                        format!("is {n}: it must be \"auto\" or a positive whole number of MiB"),
                    ));
                }
            },
            Some(Value::String(s)) => {
                let bytes = size::parse_iec(&s).map_err(|error| SpecError::BadSize {
                    location: String::new(),
                    key: t.name("disk_size"),
                    value: format!("\"{s}\""),
                    error,
                })?;
                if bytes == 0 || bytes % (1 << 20) != 0 {
                    return Err(t.invalid("disk_size", format!("is \"{s}\" = {bytes} bytes: it must be a positive whole number of MiB (the seed runs `truncate -s <diskSize>M`)")));
                }
                DiskSize::Mib(bytes >> 20)
            }
            Some(v) => {
                return Err(
                    t.invalid("disk_size", format!("must be \"auto\" or a whole number of MiB, not {v}"))
                );
            }
        };
        let additional_space = t.iec_size("additional_space", "512M")?;
        let boot_size = t.iec_size("boot_size", "256M")?;
        let install_boot_loader: Option<bool> = t.get("install_boot_loader", "true or false")?;
        let touch_efi_vars = t.bool("touch_efi_vars", false)?;
        let efi_firmware = t.path("efi_firmware", base)?;
        let efi_variables = t.path("efi_variables", base)?;
        let fs_type = t.string("fs_type")?.unwrap_or_else(|| "ext4".into());
        let label: Option<String> = t.string("label")?;
        let config_file = t.path("config_file", base)?;
        let post_vm = t.string("post_vm")?.unwrap_or_default();
        let mem_size: u64 = t.get("mem_size", "a whole number of MiB")?.unwrap_or(1024);
        let only_nix_store = t.bool("only_nix_store", false)?;
        let name = t.string("name")?.unwrap_or_else(|| "nixos-disk-image".into());
        let format = t.choice("format", &Format::ALL, Format::Raw)?;
        let base_name = t.string("base_name")?.unwrap_or_else(|| "nixos".into());
        let deterministic = t.bool("deterministic", true)?;
        let root_gpuid = t.guid("root_gpuid")?.unwrap_or(SEED_ROOT_GPUID);
        // A missing rootFSUID defaults to rootGPUID (for ext4); an explicit null stays null.
        let root_fsuid = match t.map.get("root_fsuid") {
            Some(Value::Null) => {
                t.map.remove("root_fsuid");
                None
            }
            _ => Some(t.guid("root_fsuid")?.unwrap_or(root_gpuid)),
        };
        let copy_channel = t.bool("copy_channel", true)?;
        let additional_paths: Vec<String> =
            t.get("additional_paths", "a list of strings")?.unwrap_or_default();
        let timestamps = t.choice(
            "timestamps",
            &[
                ("clamp", Timestamps::Clamp),
                ("source-date-epoch", Timestamps::SourceDateEpoch),
                ("keep", Timestamps::Keep),
            ],
            Timestamps::Clamp,
        )?;
        let auto_sizing = t.choice(
            "auto_sizing",
            &[("exact", AutoSizing::Exact), ("seed", AutoSizing::Seed)],
            AutoSizing::Exact,
        )?;
        let disk_guid = t.guid("disk_guid")?.unwrap_or(SEED_DISK_GUID);
        let package_root = t.path("package_root", base)?;
        let spec_epoch = match t.map.remove("source_date_epoch") {
            None => None,
            Some(Value::Number(n)) => Some(n.as_i64().ok_or_else(|| {
                t.invalid(
                    "source_date_epoch",
                    format!("is {n}: it must be a whole number of seconds since 1970"),
                )
            })?),
            Some(Value::String(s)) => Some(parse_epoch(&s).ok_or_else(|| {
                t.invalid(
                    "source_date_epoch",
                    format!("is \"{s}\": it must be a whole number of seconds since 1970"),
                )
            })?),
            Some(v) => {
                return Err(t.invalid(
                    "source_date_epoch",
                    format!("must be a whole number of seconds since 1970, not {v}"),
                ));
            }
        };
        let source_date_epoch = match (spec_epoch, env_epoch) {
            (Some(value), _) => SourceDateEpoch { value, origin: EpochOrigin::Spec },
            (None, Some(s)) => SourceDateEpoch {
                value: parse_epoch(s).ok_or_else(|| SpecError::Invalid {
                    location: String::new(),
                    key: "$SOURCE_DATE_EPOCH".into(),
                    message: format!(
                        "is \"{s}\": it must be a whole number of seconds since 1970 (unset it or fix it)"
                    ),
                })?,
                origin: EpochOrigin::Environment,
            },
            (None, None) => {
                SourceDateEpoch { value: DEFAULT_SOURCE_DATE_EPOCH, origin: EpochOrigin::Default }
            }
        };

        let system = match t.map.remove("system") {
            None => None,
            Some(v) => Some(parse_system(as_table(v, "", "system")?, base)?),
        };
        let contents = match t.map.remove("contents") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| parse_content(v, i, base))
                .collect::<Result<Vec<_>, _>>()?,
            Some(v) => {
                return Err(t.invalid(
                    "contents",
                    format!("must be a list of tables ([[contents]] in TOML), not {v}"),
                ));
            }
        };
        debug_assert!(
            t.map.is_empty(),
            "every normalised key is read: {:?}",
            t.map.keys().collect::<Vec<_>>()
        );

        let label = label.unwrap_or_else(|| if only_nix_store { "nix-store".into() } else { "nixos".into() });
        // The seed's default is true, but without a system there is nothing to boot: only an
        // explicit `installBootLoader = true` without a system table is an error.
        let install_boot_loader = match (install_boot_loader, &system) {
            (Some(true), None) => {
                return Err(SpecError::Assertion(
                    "installBootLoader = true needs a [system] table (a root tree with a kernel): add one, or set installBootLoader = false".into(),
                ));
            }
            (Some(b), _) => b,
            (None, s) => s.is_some(),
        };

        let spec = Spec {
            path: PathBuf::new(),
            base_dir: base.to_path_buf(),
            partition_table_type: layout,
            disk_size,
            additional_space,
            boot_size,
            contents,
            install_boot_loader,
            touch_efi_vars,
            efi_firmware,
            efi_variables,
            fs_type,
            label,
            config_file,
            post_vm,
            mem_size,
            only_nix_store,
            name,
            format,
            base_name,
            deterministic,
            root_gpuid,
            root_fsuid,
            copy_channel,
            additional_paths,
            system,
            source_date_epoch,
            timestamps,
            auto_sizing,
            disk_guid,
            package_root,
        };
        spec.check_assertions()?;
        Ok(spec)
    }

    /// The seed's assertions, in the seed's order and with its wording, then reprodisk's own.
    fn check_assertions(&self) -> Result<(), SpecError> {
        let a = |m: &str| Err(SpecError::Assertion(m.to_string()));
        let ext4 = self.fs_type == "ext4";
        if ext4 && self.deterministic && self.root_fsuid.is_none() {
            return a(
                "in deterministic mode with an ext4 partition, rootFSUID must be non-null (by default it equals rootGPUID): remove `rootFSUID = null` or set deterministic = false",
            );
        }
        if self.partition_table_type != Layout::None && !ext4 {
            return a(&format!(
                "fsType = \"{}\" with partitionTableType = \"{}\": a partition table needs fsType = \"ext4\" (the seed needs mkfs's -E offset, which only e2fsprogs has)",
                self.fs_type,
                self.partition_table_type.name()
            ));
        }
        if !ext4 {
            return Err(SpecError::Unsupported {
                key: "fsType".into(),
                why: format!(
                    "\"{}\": reprodisk writes ext4 root filesystems only; use fsType = \"ext4\"",
                    self.fs_type
                ),
            });
        }
        if self.touch_efi_vars && !self.partition_table_type.is_gpt() {
            return a(
                "touchEFIVars = true needs a GPT layout: EFI variables can be used only with partitionTableType hybrid, efi, efixbootldr or legacy+gpt",
            );
        }
        if self.only_nix_store
            && (!self.contents.is_empty() || self.config_file.is_some() || self.install_boot_loader)
        {
            return a(
                "onlyNixStore = true: the contents must be empty, no configFile may be given and installBootLoader must be false",
            );
        }
        if let Some(i) = self.contents.iter().position(|c| c.user.is_some() != c.group.is_some()) {
            return a(&format!(
                "contents[{i}] (target `{}`): set both of user and group, or neither",
                self.contents[i].target
            ));
        }
        if !self.post_vm.trim().is_empty() {
            return Err(SpecError::Unsupported {
                key: "postVM".into(),
                why: "it is shell code the seed runs after its build VM, and reprodisk has no VM: post-process the output in your own script instead (only an empty postVM is accepted)".into(),
            });
        }
        if let Some(p) = self.additional_paths.iter().find(|p| !p.starts_with('/')) {
            return Err(SpecError::Unsupported {
                key: "additionalPaths".into(),
                why: format!(
                    "`{p}` is not absolute: each path is copied to the same absolute path in the image, as the seed copies store paths"
                ),
            });
        }
        if self.base_name.is_empty()
            || self.base_name.contains('/')
            || self.base_name == "."
            || self.base_name == ".."
        {
            return a(&format!(
                "baseName = \"{}\": it must be a plain file name without `/`",
                self.base_name
            ));
        }
        if self.label.len() > 16 {
            return a(&format!(
                "label = \"{}\" is {} bytes: an ext4 label holds at most 16 bytes",
                self.label,
                self.label.len()
            ));
        }
        for (i, c) in self.contents.iter().enumerate() {
            if !c.target.starts_with('/') {
                return a(&format!(
                    "contents[{i}]: target `{}` must be an absolute path in the image (start it with `/`)",
                    c.target
                ));
            }
        }
        Ok(())
    }

    /// Checks that every input file the spec names exists.
    fn check_files(&self) -> Result<(), SpecError> {
        let missing = |location: &str, key: &str, p: &InputPath| SpecError::MissingFile {
            location: location.to_string(),
            key: key.to_string(),
            path: p.resolved.clone(),
            base: self.base_dir.clone(),
        };
        let check = |location: &str, key: &str, p: &Option<InputPath>| match p {
            Some(p) if !p.resolved.exists() => Err(missing(location, key, p)),
            _ => Ok(()),
        };
        check("", "efiFirmware", &self.efi_firmware)?;
        check("", "efiVariables", &self.efi_variables)?;
        check("", "configFile", &self.config_file)?;
        check("", "package_root", &self.package_root)?;
        if let Some(s) = &self.system {
            check("system.", "root", &Some(s.root.clone()))?;
        }
        for (i, c) in self.contents.iter().enumerate() {
            // A glob source is checked by its folder; the matches are found at ingestion.
            let p = if c.source.written.contains('*') {
                match c.source.resolved.parent() {
                    Some(parent) => {
                        InputPath { written: c.source.written.clone(), resolved: parent.to_path_buf() }
                    }
                    None => continue,
                }
            } else {
                c.source.clone()
            };
            check(&format!("contents[{i}]."), "source", &Some(p))?;
        }
        Ok(())
    }

    /// Every input file the spec names that exists as a regular file (for the manifest).
    pub fn input_files(&self) -> Vec<&InputPath> {
        let mut v: Vec<&InputPath> = Vec::new();
        v.extend(self.efi_firmware.iter());
        v.extend(self.efi_variables.iter());
        v.extend(self.config_file.iter());
        if let Some(s) = &self.system {
            v.push(&s.root);
        }
        v.extend(self.contents.iter().map(|c| &c.source));
        v
    }
}

impl Table<'_> {
    fn guid(&mut self, key: &str) -> Result<Option<Guid>, SpecError> {
        match self.string(key)? {
            None => Ok(None),
            Some(s) => {
                s.parse().map(Some).map_err(|e: crate::ids::GuidError| self.invalid(key, e.to_string()))
            }
        }
    }
}

fn parse_epoch(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().enumerate().all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-')) {
        return None;
    }
    s.parse().ok()
}

fn parse_system(map: Map<String, Value>, base: &Path) -> Result<System, SpecError> {
    let (map, written) = normalise(map, SYSTEM_KEYS, "system.")?;
    let mut t = Table { map, written, location: "system." };
    let root = t
        .path("root", base)?
        .ok_or_else(|| t.invalid("root", "is missing: name the root tree, a directory or a tar archive"))?;
    let kernel = t.string("kernel")?;
    let initrd = t.string("initrd")?;
    let kernel_params: Vec<String> = t.get("kernel_params", "a list of strings")?.unwrap_or_default();
    if let Some(p) = kernel_params.iter().find(|p| p.starts_with("root=")) {
        return Err(t.invalid(
            "kernel_params",
            format!("holds `{p}`: reprodisk adds root= itself from the deterministic IDs, remove it"),
        ));
    }
    let bootloader = t.choice(
        "bootloader",
        &[("auto", Bootloader::Auto), ("grub", Bootloader::Grub), ("systemd-boot", Bootloader::SystemdBoot)],
        Bootloader::Auto,
    )?;
    let root_device = t.choice(
        "root_device",
        &[("uuid", RootDevice::Uuid), ("partuuid", RootDevice::Partuuid)],
        RootDevice::Uuid,
    )?;
    Ok(System { root, kernel, initrd, kernel_params, bootloader, root_device })
}

fn parse_content(v: Value, i: usize, base: &Path) -> Result<ContentEntry, SpecError> {
    let location = format!("contents[{i}].");
    let (map, written) = normalise(as_table(v, "", &format!("contents[{i}]"))?, CONTENTS_KEYS, &location)?;
    let mut t = Table { map, written, location: &location };
    let source = t
        .path("source", base)?
        .ok_or_else(|| t.invalid("source", "is missing: name the file or folder to copy"))?;
    let target = t.string("target")?.ok_or_else(|| {
        t.invalid("target", "is missing: name where the file goes in the image, e.g. \"/etc/motd\"")
    })?;
    let mode = t.string("mode")?;
    let user = t.string("user")?;
    let group = t.string("group")?;
    Ok(ContentEntry { source, target, mode, user, group })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> Result<Spec, SpecError> {
        Spec::from_value(v, Path::new("/specs"), None)
    }

    #[test]
    fn seed_json_with_camel_case_works() {
        let s = spec(json!({"partitionTableType":"efi","diskSize":1024,"installBootLoader":false})).unwrap();
        assert_eq!(s.partition_table_type, Layout::Efi);
        assert_eq!(s.disk_size, DiskSize::Mib(1024));
        assert!(!s.install_boot_loader);
    }

    #[test]
    fn defaults_are_the_seeds() {
        let s = spec(json!({})).unwrap();
        assert_eq!(s.partition_table_type, Layout::Legacy);
        assert_eq!(s.disk_size, DiskSize::Auto);
        assert_eq!(s.additional_space, 512 << 20);
        assert_eq!(s.boot_size, 256 << 20);
        assert_eq!(
            (s.label.as_str(), s.name.as_str(), s.base_name.as_str()),
            ("nixos", "nixos-disk-image", "nixos")
        );
        assert_eq!(s.format, Format::Raw);
        assert!(s.deterministic && s.copy_channel && !s.touch_efi_vars && !s.only_nix_store);
        assert_eq!(s.mem_size, 1024);
        assert_eq!(s.root_gpuid, SEED_ROOT_GPUID);
        assert_eq!(s.root_fsuid, Some(SEED_ROOT_GPUID));
        assert_eq!(s.disk_guid, SEED_DISK_GUID);
        assert_eq!(
            s.source_date_epoch,
            SourceDateEpoch { value: DEFAULT_SOURCE_DATE_EPOCH, origin: EpochOrigin::Default }
        );
        assert_eq!(s.timestamps, Timestamps::Clamp);
        let s = spec(json!({"onlyNixStore": true})).unwrap();
        assert_eq!(s.label, "nix-store");
    }

    #[test]
    fn unknown_keys_name_the_closest() {
        let e = spec(json!({"partitonTableType": "efi"})).unwrap_err().to_string();
        assert_eq!(e, "unknown key `partitonTableType` (did you mean `partitionTableType`?)");
        let e = spec(json!({"system": {"rot": "x"}})).unwrap_err().to_string();
        assert_eq!(e, "unknown key `system.rot` (did you mean `root`?)");
        let e = spec(json!({"contents": [{"source": "a", "target": "/a", "gruop": "x"}]}))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "unknown key `contents[0].gruop` (did you mean `group`?)");
    }

    #[test]
    fn alias_and_key_together_fail() {
        assert!(matches!(spec(json!({"disk_size": 5, "diskSize": 5})), Err(SpecError::DuplicateKey { .. })));
    }

    #[test]
    fn seed_assertions() {
        for (v, needle) in [
            (json!({"partitionTableType": "gpt"}), "must be one of"),
            (json!({"rootFSUID": null}), "rootFSUID must be non-null"),
            (json!({"fsType": "btrfs"}), "a partition table needs fsType"),
            (json!({"fsType": "btrfs", "partitionTableType": "none"}), "ext4 root filesystems only"),
            (json!({"touchEFIVars": true, "partitionTableType": "legacy"}), "needs a GPT layout"),
            (json!({"onlyNixStore": true, "contents": [{"source": "a", "target": "/a"}]}), "onlyNixStore"),
            (
                json!({"contents": [{"source": "a", "target": "/a", "user": "root"}]}),
                "both of user and group",
            ),
            (json!({"postVM": "echo hi"}), "no VM"),
            (json!({"additionalPaths": ["nix/store/x"]}), "is not absolute"),
            (json!({"installBootLoader": true}), "needs a [system] table"),
            (json!({"rootGPUID": "97FD5997-D90B-4AA3-8D16-C1723AEA73C"}), "is not a GUID"),
            (json!({"diskSize": "1.5K"}), "whole number of MiB"),
            (json!({"diskSize": 0}), "positive whole number"),
            (json!({"bootSize": "256MiB"}), "numfmt"),
            (json!({"system": {"root": "r", "kernelParams": ["root=/dev/sda"]}}), "adds root="),
            (json!({"label": "a-label-longer-than-16"}), "at most 16 bytes"),
        ] {
            let e = spec(v.clone()).unwrap_err().to_string();
            assert!(e.contains(needle), "{v}: {e}");
        }
    }

    #[test]
    fn sizes_and_paths() {
        let s = spec(json!({"diskSize": "2G", "bootSize": "1.5M", "additionalSpace": 4096,
            "system": {"root": "root.tar"}, "contents": [{"source": "../motd", "target": "/etc/motd"}]}))
        .unwrap();
        assert_eq!(s.disk_size, DiskSize::Mib(2048));
        assert_eq!(s.boot_size, 1572864);
        assert_eq!(s.additional_space, 4096);
        assert_eq!(s.system.as_ref().unwrap().root.resolved, Path::new("/specs/root.tar"));
        assert_eq!(s.contents[0].source.resolved, Path::new("/specs/../motd"));
        assert!(s.install_boot_loader, "a system table turns the seed's default on");
    }

    #[test]
    fn source_date_epoch_precedence() {
        let s = Spec::from_value(json!({"sourceDateEpoch": 5}), Path::new("."), Some("7")).unwrap();
        assert_eq!(s.source_date_epoch, SourceDateEpoch { value: 5, origin: EpochOrigin::Spec });
        let s = Spec::from_value(json!({}), Path::new("."), Some("7")).unwrap();
        assert_eq!(s.source_date_epoch, SourceDateEpoch { value: 7, origin: EpochOrigin::Environment });
        assert!(Spec::from_value(json!({}), Path::new("."), Some("yesterday")).is_err());
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("diskSize", "disksize"), 0);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
