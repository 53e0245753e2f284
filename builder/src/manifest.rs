//! The machine-readable build manifest, `DIR/manifest.json`.
//!
//! It records what an image is a function of (the spec and its digest, every input file's
//! digest, SOURCE_DATE_EPOCH and where it came from) and what came out (layout, every ID, the
//! image's sha256), so an independent rebuilder can compare without reading the image.

use crate::layout::Plan;
use crate::spec::{SourceDateEpoch, Spec};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub reprodisk_version: &'static str,
    pub spec: SpecRecord,
    pub source_date_epoch: SourceDateEpoch,
    pub layout: Plan,
    /// Parts of the image reprodisk does not write yet (left as holes).
    pub not_written: Vec<String>,
    pub inputs: Vec<InputRecord>,
    /// GRUB for BIOS: where core.img is, its modules and the GRUB files used, with sha256s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grub_bios: Option<crate::boot::grub_bios::install::GrubBiosRecord>,
    /// Boot loader, kernel, initrd, FAT filesystems and the boot-loader inputs with sha256.
    pub boot: crate::boot::esp::BootReport,
    /// `efi-vars.fd` (`touchEFIVars`): the template read (path, sha256) and `Boot0000`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub efi_vars: Option<crate::boot::efivars::EfiVarsReport>,
    pub output: OutputRecord,
    /// Every other file of the output set (this manifest is its commit marker, see
    /// `output.rs`), sorted by name.
    pub files: Vec<FileRecord>,
}

/// One file of the output set, by its name relative to the output folder.
///
/// `nix-support/hydra-build-products` names the image by its absolute path, as make-disk-image
/// writes it, so its bytes depend on where the output folder is: it is listed (it belongs to
/// the set) with `bytes` and `sha256` null, so that the manifest stays a function of the spec
/// and the inputs wherever the build is written.
#[derive(Debug, Clone, Serialize)]
pub struct FileRecord {
    pub name: String,
    pub bytes: Option<u64>,
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SpecRecord {
    /// The spec file as given on the command line.
    pub path: String,
    /// sha256 of the spec file's bytes.
    pub sha256: String,
    /// The spec after aliases, defaults and checks (paths as written).
    pub resolved: Spec,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    File,
    Directory,
    /// A `*` glob, expanded when the tree is ingested.
    Glob,
}

#[derive(Debug, Clone, Serialize)]
pub struct InputRecord {
    /// As written in the spec.
    pub path: String,
    pub kind: InputKind,
    /// For files only.
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutputRecord {
    /// File name inside the output folder.
    pub file: String,
    pub format: &'static str,
    pub bytes: u64,
    pub sha256: String,
}

/// Lower-case hex sha256 of everything `r` yields.
pub fn sha256_reader<R: Read>(mut r: R, mut on_chunk: impl FnMut(u64)) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        on_chunk(n as u64);
    }
    Ok(hex(&h.finalize()))
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    sha256_reader(std::fs::File::open(path)?, |_| {})
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Records every input the spec names, hashing regular files.
pub fn input_records(spec: &Spec) -> std::io::Result<Vec<InputRecord>> {
    let mut out = Vec::new();
    for p in spec.input_files() {
        let record = if p.written.contains('*') {
            InputRecord { path: p.written.clone(), kind: InputKind::Glob, sha256: None }
        } else if p.resolved.is_dir() {
            InputRecord { path: p.written.clone(), kind: InputKind::Directory, sha256: None }
        } else {
            InputRecord {
                path: p.written.clone(),
                kind: InputKind::File,
                sha256: Some(sha256_file(&p.resolved)?),
            }
        };
        out.push(record);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_abc() {
        assert_eq!(
            sha256_reader(&b"abc"[..], |_| {}).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
