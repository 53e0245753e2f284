//! The files of a build's output set: each one's sha256 (holes hashed without being read)
//! and, for small text files, a digest after normalising what records where a build ran.

use reprodisk_verifier::bytes::{ImageFile, ReadAt};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Files up to this size are also hashed after normalisation (see [`normalise`]).
pub const NORMALISE_MAX: u64 = 16 << 20;

/// The digest of one output file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileDigest {
    pub bytes: u64,
    pub sha256: String,
    /// sha256 after [`normalise`], for files small enough; equal to `sha256` when nothing
    /// was normalised.
    #[serde(skip)]
    pub normalised: Option<String>,
}

/// Every file a build wrote, by path relative to its output folder.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OutputSet {
    #[serde(skip)]
    pub dir: PathBuf,
    pub files: BTreeMap<String, FileDigest>,
}

impl OutputSet {
    /// Walks `dir` (as the build wrote it) and hashes every file.
    pub fn read(dir: &Path) -> std::io::Result<OutputSet> {
        let mut files = BTreeMap::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            let mut names: Vec<_> = std::fs::read_dir(dir.join(&rel))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()?;
            names.sort();
            for name in names {
                let rel = rel.join(&name);
                let path = dir.join(&rel);
                let meta = std::fs::symlink_metadata(&path)?;
                if meta.is_dir() {
                    stack.push(rel);
                } else {
                    files.insert(rel.to_string_lossy().into_owned(), digest(&path, dir)?);
                }
            }
        }
        Ok(OutputSet { dir: dir.to_path_buf(), files })
    }
}

/// sha256 of a file, skipping its holes (hashed as zeros without reading them), plus the
/// normalised digest for small files.
pub fn digest(path: &Path, out_dir: &Path) -> std::io::Result<FileDigest> {
    let f = ImageFile::open(path)?;
    let len = f.len();
    let mut h = Sha256::new();
    let zeros = vec![0u8; 1 << 20];
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    while pos < len {
        let (start, end) = f.next_data(pos)?.unwrap_or((len, len));
        let mut hole = start - pos;
        while hole > 0 {
            let n = hole.min(zeros.len() as u64) as usize;
            h.update(&zeros[..n]);
            hole -= n as u64;
        }
        let mut at = start;
        while at < end {
            let n = (end - at).min(buf.len() as u64) as usize;
            f.read_exact_at(&mut buf[..n], at)?;
            h.update(&buf[..n]);
            at += n as u64;
        }
        pos = end;
    }
    let sha256 = crate::manifest::hex(&h.finalize());
    let normalised = if len <= NORMALISE_MAX {
        let bytes = std::fs::read(path)?;
        let n = normalise(&bytes, out_dir, TextKind::of(path));
        Some(crate::manifest::sha256_reader(&n[..], |_| {})?)
    } else {
        None
    };
    Ok(FileDigest { bytes: len, sha256, normalised })
}

/// What is compared when raw bytes differ: the output folder's own path replaced by `$out`
/// (hydra-build-products names it, as the seed's does with `$out`; its paths are compared
/// after resolving `.` and `..`), and in a manifest the spec's path as given on the command
/// line replaced by `$spec` (it says where the build was started, not what it built), as is
/// the manifest's size and digest of hydra-build-products (which cover `$out`; that file is
/// compared on its own). All of these record where, not what; everything else counts.
pub fn normalise(bytes: &[u8], out_dir: &Path, kind: TextKind) -> Vec<u8> {
    let mut forms = vec![out_dir.to_path_buf()];
    if let Ok(c) = out_dir.canonicalize() {
        forms.push(c);
    }
    forms.sort_by_key(|f| std::cmp::Reverse(f.as_os_str().len()));
    let mut out = bytes.to_vec();
    match kind {
        TextKind::HydraProducts => {
            let Ok(text) = std::str::from_utf8(bytes) else { return out };
            let mut lines = Vec::new();
            for line in text.split_inclusive('\n') {
                let (body, nl) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
                let mut parts = body.splitn(3, ' ');
                let (kind, ty, path) = (parts.next(), parts.next(), parts.next());
                let rel = path.and_then(|p| {
                    let p = lexical(Path::new(p));
                    forms.iter().find_map(|f| p.strip_prefix(lexical(f)).ok().map(Path::to_path_buf))
                });
                match (kind, ty, rel) {
                    (Some(k), Some(t), Some(rel)) => {
                        lines.push(format!("{k} {t} $out/{}{nl}", rel.display()))
                    }
                    _ => lines.push(line.to_string()),
                }
            }
            out = lines.concat().into_bytes();
        }
        TextKind::Manifest | TextKind::Other => {
            for form in forms.iter().map(|f| f.display().to_string()).filter(|f| f.len() > 1) {
                out = replace(&out, form.as_bytes(), b"$out");
            }
        }
    }
    if kind == TextKind::Manifest
        && let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&out)
    {
        if let Some(p) = v.pointer_mut("/spec/path") {
            *p = serde_json::Value::String("$spec".into());
        }
        // The manifest's digest of hydra-build-products covers the `$out` path it names; the
        // file itself is compared on its own, after normalisation.
        if let Some(files) = v.pointer_mut("/files").and_then(|f| f.as_array_mut()) {
            for f in files.iter_mut().filter(|f| f["name"] == "nix-support/hydra-build-products") {
                f["bytes"] = serde_json::Value::String("$out-dependent".into());
                f["sha256"] = serde_json::Value::String("$out-dependent".into());
            }
        }
        if let Ok(s) = serde_json::to_vec_pretty(&v) {
            out = s;
        }
    }
    out
}

/// Which normalisation a file gets, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    Manifest,
    HydraProducts,
    Other,
}

impl TextKind {
    pub fn of(path: &Path) -> TextKind {
        match path.file_name().and_then(|n| n.to_str()) {
            Some("manifest.json") => TextKind::Manifest,
            Some("hydra-build-products") => TextKind::HydraProducts,
            _ => TextKind::Other,
        }
    }
}

/// `path` with `.` and `..` resolved by name (as `std::path::absolute` leaves them).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn replace(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// Reads a whole (small) file as text, for explanations.
pub fn read_text(path: &Path, max: u64) -> Option<String> {
    let f = std::fs::File::open(path).ok()?;
    let mut s = String::new();
    f.take(max).read_to_string(&mut s).ok()?;
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_the_output_folder_and_the_spec_path() {
        let out = Path::new("/tmp/x/out");
        let h = TextKind::HydraProducts;
        assert_eq!(normalise(b"file raw-image /tmp/x/out/a.img\n", out, h), b"file raw-image $out/a.img\n");
        assert_eq!(
            normalise(b"file raw-image /tmp/x/y z/../out/a.img\n", out, h),
            b"file raw-image $out/a.img\n"
        );
        assert_eq!(normalise(b"file raw-image /tmp/y/a.img\n", out, h), b"file raw-image /tmp/y/a.img\n");
        let m = TextKind::Manifest;
        let a = normalise(br#"{"spec": {"path": "a.toml", "sha256": "1"}}"#, out, m);
        let b = normalise(br#"{"spec": {"path": "/b/a.toml", "sha256": "1"}}"#, out, m);
        assert_eq!(a, b);
        let files = |h: &str| {
            format!(
                r#"{{"files": [{{"name": "nix-support/hydra-build-products", "sha256": "{h}"}}, {{"name": "x.img", "sha256": "1"}}]}}"#
            )
        };
        assert_eq!(normalise(files("1").as_bytes(), out, m), normalise(files("2").as_bytes(), out, m));
        let other = r#"{"files": [{"name": "x.img", "sha256": "2"}]}"#;
        assert_ne!(normalise(files("1").as_bytes(), out, m), normalise(other.as_bytes(), out, m));
        let c = normalise(br#"{"spec": {"path": "a.toml", "sha256": "2"}}"#, out, m);
        assert_ne!(a, c);
    }
}
