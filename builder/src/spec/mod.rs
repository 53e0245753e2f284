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

mod checks;
mod keys;
mod parse;
pub mod size;
mod table;
#[cfg(test)]
mod tests;

pub use crate::format::VpcSubformat;
use crate::ids::{Guid, SEED_DISK_GUID, SEED_ROOT_GPUID};
use crate::layout::Layout;
pub use keys::{CONTENTS_KEYS, SYSTEM_KEYS, TOP_KEYS, closest, edit_distance};
use serde::Serialize;
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
    #[error("spec `{path}` {}: use `.toml` or `.json`", if ext.is_empty() { "has no extension".to_string() } else { format!("has extension `.{ext}`") })]
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

/// `owners`: whose uid and gid the files of a folder `system.root` get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Owners {
    /// The source's uid and gid, as `mke2fs -d`, `cp -a` and systemd-repart keep them.
    Keep,
    /// Every owner becomes 0:0 (genext2fs `-U`).
    Root,
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
    pub owners: Owners,
    pub auto_sizing: AutoSizing,
    pub disk_guid: Guid,
    /// `vpc_subformat`: the VHD disk type when `format = "vpc"` (reprodisk's own key).
    pub vpc_subformat: VpcSubformat,
    /// A folder laid out like `/` searched first for boot-loader inputs (see `boot::inputs`).
    pub package_root: Option<InputPath>,
}
