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
    /// A file's sha256 (of the bytes that went into the image, for sources read at
    /// ingestion); for a folder its `tree-v1` digest as ingested (see `tree/digest.rs`:
    /// names, types, modes, owners, times, xattrs and file sha256s, in canonical order);
    /// for a glob its `glob-v1` digest: the `tree-v1` records of what it matched, by name.
    pub sha256: Option<String>,
    /// How `sha256` was computed: `"sha256"` of the bytes, `"tree-v1"` or `"glob-v1"`.
    pub digest: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutputRecord {
    /// File name inside the output folder.
    pub file: String,
    pub format: &'static str,
    /// Size of the output file (the disk's size for raw).
    pub bytes: u64,
    pub sha256: String,
    /// The format's own record: virtual size, allocation, IDs, VHD geometry and why.
    pub file_format: crate::format::FormatRecord,
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

/// Zeros to hash holes from: a hole is never read, so the kernel never fills pages with zeros.
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

/// Feeds `n` zero bytes to `h`.
pub(crate) fn hash_zeros(h: &mut Sha256, mut n: u64) {
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        h.update(&ZEROS[..k]);
        n -= k as u64;
    }
}

/// Lower-case hex sha256 of a (sparse) file: the ranges `SEEK_DATA`/`SEEK_HOLE` report as
/// data are read, holes are hashed from a static zero buffer. The same digest as reading every
/// byte, at the speed of SHA-256 rather than of the kernel zero-filling pages.
pub fn sha256_sparse_file(file: &std::fs::File, mut on_chunk: impl FnMut(u64)) -> std::io::Result<String> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    let disk = crate::format::scan::RawDisk::new(file, len);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < len {
        let (start, end) = disk.next_data(at)?.unwrap_or((len, len));
        hash_zeros(&mut h, start - at);
        on_chunk(start - at);
        at = start;
        while at < end {
            let n = (end - at).min(buf.len() as u64) as usize;
            file.read_exact_at(&mut buf[..n], at)?;
            h.update(&buf[..n]);
            on_chunk(n as u64);
            at += n as u64;
        }
    }
    Ok(hex(&h.finalize()))
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    sha256_reader(std::fs::File::open(path)?, |_| {})
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Records every input the spec names (`additionalPaths` included). `digests` holds what
/// ingestion computed from the tree (by resolved path); other files (a tar root, EFI
/// inputs) are hashed here, after a check that they are regular files, so that a fifo
/// cannot block and a device cannot run forever.
pub fn input_records(
    spec: &Spec,
    digests: &std::collections::BTreeMap<std::path::PathBuf, String>,
) -> Result<Vec<InputRecord>, crate::tree::ingest::IngestError> {
    let mut paths: Vec<(String, std::path::PathBuf)> =
        spec.input_files().into_iter().map(|p| (p.written.clone(), p.resolved.clone())).collect();
    paths.extend(spec.additional_paths.iter().map(|p| (p.clone(), std::path::PathBuf::from(p))));
    let mut out = Vec::new();
    for (written, resolved) in paths {
        let record = if written.contains('*') {
            let sha256 = digests.get(&resolved).cloned();
            InputRecord {
                path: written,
                kind: InputKind::Glob,
                digest: sha256.as_ref().map(|_| "glob-v1"),
                sha256,
            }
        } else {
            let is_dir = std::fs::metadata(&resolved).is_ok_and(|m| m.is_dir());
            let kind = if is_dir { InputKind::Directory } else { InputKind::File };
            let (sha256, digest) = match digests.get(&resolved) {
                Some(d) if is_dir => (d.clone(), "tree-v1"),
                Some(d) => (d.clone(), "sha256"),
                None if is_dir => (String::new(), "tree-v1"),
                None => {
                    crate::tree::ingest::check_data_source(&resolved, "input")?;
                    let sha = sha256_file(&resolved).map_err(|source| {
                        crate::tree::ingest::IngestError::Io { path: resolved.clone(), source }
                    })?;
                    (sha, "sha256")
                }
            };
            let sha256 = (!sha256.is_empty()).then_some(sha256);
            InputRecord { path: written, kind, digest: sha256.as_ref().map(|_| digest), sha256 }
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

    #[test]
    fn hex_is_lower_case_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff, 0x10]), "000fa5ff10");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn sparse_hash_is_the_plain_hash() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        // Data at the start, in the middle and up to the end, holes between.
        f.set_len(40 << 20).unwrap();
        f.write_all_at(b"head", 0).unwrap();
        f.write_all_at(&[7u8; 70_000], 17 << 20).unwrap();
        f.write_all_at(b"tail", (40 << 20) - 4).unwrap();
        let mut seen = 0;
        assert_eq!(sha256_sparse_file(&f, |n| seen += n).unwrap(), sha256_file(&path).unwrap());
        assert_eq!(seen, 40 << 20);
        f.set_len((40 << 20) + 5).unwrap();
        assert_eq!(sha256_sparse_file(&f, |_| {}).unwrap(), sha256_file(&path).unwrap(), "a trailing hole");
    }
}
