//! The files of a build's output set: each one's sha256 (holes hashed without being read)
//! and, for small text files, a digest after normalising what records where a build ran.
//!
//! A variation build's files are first compared byte for byte with the control build's
//! ([`OutputSet::read_against`]): a file with the same bytes has the same sha256, so only the
//! control's image is hashed by the audit, and a comparison reads what a hash would read
//! without its cost (SHA-256 runs over every byte, holes included, where the comparison skips
//! the holes both files share). A file that differs is hashed in full, as before.
//!
//! The control build's own large files are listed first and hashed later
//! ([`OutputSet::list`], [`OutputSet::hash_deferred`]): the comparisons need only their
//! bytes, so the builds that wait for the control start comparing, and the next builds start,
//! while its image is being hashed on another thread. A digest taken over from such a
//! reference is filled in afterwards ([`OutputSet::fill_deferred`]).

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

impl FileDigest {
    /// Not hashed yet: listed by [`OutputSet::list`] (or taken over from such a listing).
    pub fn is_deferred(&self) -> bool {
        self.sha256.is_empty()
    }
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
        OutputSet::walk(dir, None, false)
    }

    /// As [`OutputSet::read`], but the files larger than [`NORMALISE_MAX`] are not hashed yet:
    /// their digest is deferred ([`FileDigest::is_deferred`]) until [`OutputSet::hash_deferred`].
    pub fn list(dir: &Path) -> std::io::Result<OutputSet> {
        OutputSet::walk(dir, None, true)
    }

    /// Hashes every file whose digest [`OutputSet::list`] deferred.
    pub fn hash_deferred(&mut self) -> std::io::Result<()> {
        for (rel, d) in self.files.iter_mut().filter(|(_, d)| d.is_deferred()) {
            *d = digest(&self.dir.join(rel), &self.dir)?;
        }
        Ok(())
    }

    /// Fills in the digests this set took over, still deferred, from a reference made by
    /// [`OutputSet::list`]: `hashed` is that reference once hashed. Each such file had the
    /// same path, length and bytes as the reference's, so it has the same digest.
    pub fn fill_deferred(&mut self, hashed: &OutputSet) {
        for (rel, d) in self.files.iter_mut().filter(|(_, d)| d.is_deferred()) {
            if let Some(h) = hashed.files.get(rel) {
                *d = h.clone();
            }
        }
    }

    /// As [`OutputSet::read`], but a file larger than [`NORMALISE_MAX`] that has the same
    /// name, length and bytes as in `reference` takes the reference's sha256 instead of being
    /// hashed again (equal bytes, equal digest); small files are always hashed, since their
    /// normalised digest depends on this set's own folder.
    pub fn read_against(dir: &Path, reference: Option<&OutputSet>) -> std::io::Result<OutputSet> {
        OutputSet::walk(dir, reference, false)
    }

    fn walk(dir: &Path, reference: Option<&OutputSet>, defer: bool) -> std::io::Result<OutputSet> {
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
                    let rel = rel.to_string_lossy().into_owned();
                    let same = match reference.and_then(|r| r.files.get(&rel).map(|d| (r, d))) {
                        Some((r, d)) if d.bytes == meta.len() && d.bytes > NORMALISE_MAX => {
                            same_bytes(&r.dir.join(&rel), &path)?.then(|| d.clone())
                        }
                        _ => None,
                    };
                    let d = match same {
                        Some(d) => d,
                        None if defer && meta.len() > NORMALISE_MAX => {
                            FileDigest { bytes: meta.len(), sha256: String::new(), normalised: None }
                        }
                        None => digest(&path, dir)?,
                    };
                    files.insert(rel, d);
                }
            }
        }
        Ok(OutputSet { dir: dir.to_path_buf(), files })
    }
}

/// Whether two files hold the same bytes. Ranges that are holes in both are skipped without
/// reading; elsewhere both files are read (a hole reads as zeros) and compared.
pub fn same_bytes(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (fa, fb) = (ImageFile::open(a)?, ImageFile::open(b)?);
    let len = fa.len();
    if fb.len() != len {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut pos = 0u64;
    while pos < len {
        // The next range where either file may hold data; before it both are holes.
        let (start, end) = match (fa.next_data(pos)?, fb.next_data(pos)?) {
            (None, None) => break,
            (Some(r), None) | (None, Some(r)) => r,
            (Some(ra), Some(rb)) if ra.0 <= rb.0 => ra,
            (Some(_), Some(rb)) => rb,
        };
        let mut at = start;
        while at < end {
            let n = (end - at).min(ba.len() as u64) as usize;
            fa.read_exact_at(&mut ba[..n], at)?;
            fb.read_exact_at(&mut bb[..n], at)?;
            if ba[..n] != bb[..n] {
                return Ok(false);
            }
            at += n as u64;
        }
        pos = end;
    }
    Ok(true)
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
    use std::os::unix::fs::FileExt;

    /// A sparse file of `len` bytes with `data` written at each offset.
    fn sparse(path: &Path, len: u64, data: &[(u64, &[u8])]) {
        let f = std::fs::File::create(path).unwrap();
        f.set_len(len).unwrap();
        for (at, bytes) in data {
            f.write_all_at(bytes, *at).unwrap();
        }
    }

    #[test]
    fn same_bytes_sees_holes_as_zeros_and_any_byte_that_differs() {
        let t = tempfile::tempdir().unwrap();
        let p = |n: &str| t.path().join(n);
        let len = 64 << 20;
        let far = 40 << 20;
        sparse(&p("a"), len, &[(4096, b"data"), (far, b"more")]);
        // The same bytes with explicit zeros where `a` has a hole.
        sparse(&p("b"), len, &[(4096, b"data"), (8 << 20, &vec![0u8; 1 << 20]), (far, b"more")]);
        assert!(same_bytes(&p("a"), &p("b")).unwrap());
        assert!(same_bytes(&p("b"), &p("a")).unwrap());
        // One byte in what is a hole of `a`.
        sparse(&p("c"), len, &[(4096, b"data"), (20 << 20, b"x"), (far, b"more")]);
        assert!(!same_bytes(&p("a"), &p("c")).unwrap());
        assert!(!same_bytes(&p("c"), &p("a")).unwrap());
        // One byte in the data both have.
        sparse(&p("d"), len, &[(4096, b"dat!"), (far, b"more")]);
        assert!(!same_bytes(&p("a"), &p("d")).unwrap());
        sparse(&p("e"), len - 1, &[(4096, b"data"), (far, b"more")]);
        assert!(!same_bytes(&p("a"), &p("e")).unwrap());
    }

    /// Two output folders `a` and `b`: `same.img` and `small.txt` alike, `other.img` (both
    /// larger than [`NORMALISE_MAX`]) differing in one byte.
    fn two_sets(t: &Path) -> (PathBuf, PathBuf) {
        let (a, b) = (t.join("a"), t.join("b"));
        let big = NORMALISE_MAX + 4096;
        for d in [&a, &b] {
            std::fs::create_dir(d).unwrap();
            sparse(&d.join("same.img"), big, &[(0, b"boot"), (big - 4, b"tail")]);
            std::fs::write(d.join("small.txt"), b"small").unwrap();
        }
        sparse(&a.join("other.img"), big, &[(100, b"A")]);
        sparse(&b.join("other.img"), big, &[(100, b"B")]);
        (a, b)
    }

    #[test]
    fn read_against_hashes_what_differs_and_only_that() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = two_sets(t.path());
        let ra = OutputSet::read(&a).unwrap();
        let rb = OutputSet::read_against(&b, Some(&ra)).unwrap();
        let full = OutputSet::read(&b).unwrap();
        // Whether a digest was taken over or computed, it is the file's own.
        assert_eq!(rb.files, full.files);
        assert_eq!(rb.files["same.img"].sha256, ra.files["same.img"].sha256);
        assert_ne!(rb.files["other.img"].sha256, ra.files["other.img"].sha256);
        // A reference whose digest is wrong shows which files were taken over: only those
        // with the same bytes, never one that differs.
        let mut lying = ra.clone();
        for d in lying.files.values_mut() {
            d.sha256 = "0".repeat(64);
        }
        let rl = OutputSet::read_against(&b, Some(&lying)).unwrap();
        assert_eq!(rl.files["same.img"].sha256, "0".repeat(64));
        assert_eq!(rl.files["other.img"], full.files["other.img"]);
        assert_eq!(rl.files["small.txt"], full.files["small.txt"]);
    }

    #[test]
    fn a_deferred_reference_compares_first_and_is_filled_in_after() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = two_sets(t.path());
        let listed = OutputSet::list(&a).unwrap();
        assert!(listed.files["same.img"].is_deferred() && listed.files["other.img"].is_deferred());
        assert!(!listed.files["small.txt"].is_deferred(), "small files are hashed at once");
        let mut rb = OutputSet::read_against(&b, Some(&listed)).unwrap();
        // Same bytes: the reference's digest (deferred) is taken over; other bytes: hashed.
        assert!(rb.files["same.img"].is_deferred());
        assert_eq!(rb.files["other.img"], OutputSet::read(&b).unwrap().files["other.img"]);
        let mut hashed = listed.clone();
        hashed.hash_deferred().unwrap();
        assert_eq!(hashed.files, OutputSet::read(&a).unwrap().files);
        rb.fill_deferred(&hashed);
        assert_eq!(rb.files, OutputSet::read(&b).unwrap().files);
    }

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
