//! Compares two output sets file by file and explains every difference: the structural diff
//! of the verifier for binary files (images, efi-vars.fd: whatever the verifier can read it
//! names by partition, structure and field, the rest it shows as hex), JSON pointers for the
//! manifest, line numbers for text.

use super::outputs::{FileDigest, NORMALISE_MAX, OutputSet, TextKind, normalise, read_text};
use super::report::{FileResult, FileStatus};
use reprodisk_verifier::diff::DiffReport;
use reprodisk_verifier::glue;
use serde_json::Value;
use std::path::Path;

/// At most this many JSON fields or lines are listed per file.
const MAX_LINES: usize = 24;

/// One side of a comparison: a set of files, and which of them is the disk image (compared
/// under that name whatever the other side calls it).
pub struct Side<'a> {
    pub set: &'a OutputSet,
    pub image: Option<&'a str>,
}

/// Compares `b` against the reference `a`; every file of either side gets a result.
pub fn compare(a: &Side, b: &Side) -> Vec<FileResult> {
    let key = |side: &Side, path: &str| -> String {
        if Some(path) == side.image { "<image>".to_string() } else { path.to_string() }
    };
    let mut names: Vec<(String, Option<&str>, Option<&str>)> = Vec::new();
    for p in a.set.files.keys() {
        names.push((key(a, p), Some(p), None));
    }
    for p in b.set.files.keys() {
        let k = key(b, p);
        match names.iter_mut().find(|(n, _, _)| *n == k) {
            Some(entry) => entry.2 = Some(p),
            None => names.push((k, None, Some(p))),
        }
    }
    names
        .into_iter()
        .map(|(_, pa, pb)| match (pa, pb) {
            (Some(pa), Some(pb)) => compare_file(a, pa, b, pb),
            (Some(pa), None) => FileResult::new(pa, FileStatus::Missing, a.set.files.get(pa), None)
                .with_lines(vec![format!("{pa} was not written by this build")]),
            (None, Some(pb)) => FileResult::new(pb, FileStatus::Extra, None, b.set.files.get(pb))
                .with_lines(vec![format!("{pb} was written only by this build")]),
            (None, None) => FileResult::new("", FileStatus::Same, None, None),
        })
        .collect()
}

fn compare_file(a: &Side, pa: &str, b: &Side, pb: &str) -> FileResult {
    let (da, db) = (&a.set.files[pa], &b.set.files[pb]);
    let name = if Some(pb) == b.image && pa != pb { format!("{pa} (as {pb})") } else { pa.to_string() };
    if da.sha256 == db.sha256 {
        return FileResult::new(&name, FileStatus::Same, Some(da), Some(db));
    }
    if da.normalised.is_some() && da.normalised == db.normalised {
        return FileResult::new(&name, FileStatus::SameNormalised, Some(da), Some(db)).with_lines(vec![
            "differs only where it records the output folder ($out) or the spec's path as given".into(),
        ]);
    }
    let (fa, fb) = (a.set.dir.join(pa), b.set.dir.join(pb));
    let mut r = FileResult::new(&name, FileStatus::Differs, Some(da), Some(db));
    let is_image = Some(pa) == a.image || Some(pb) == b.image;
    if !is_image && let Some(lines) = text_diff(&fa, da, &a.set.dir, &fb, db, &b.set.dir) {
        r.first = lines.first().cloned();
        return r.with_lines(lines);
    }
    match structural_diff(&fa, &fb) {
        Ok(d) => {
            r.first = first_difference(&d);
            r.lines = d.render_text().lines().map(str::to_string).collect();
            r.diff = Some(d);
        }
        Err(e) => {
            r.first = Some(format!("cannot compare structurally: {e}"));
            r.lines = vec![format!("cannot compare structurally: {e}")];
        }
    }
    r
}

/// The structural diff, through the same image-opening entry point as `reprodisk diff`, so
/// that every format the verifier learns to read is diffed here too.
pub fn structural_diff(a: &Path, b: &Path) -> anyhow::Result<DiffReport> {
    let (ia, ib) = (crate::cli::open_image(a)?, crate::cli::open_image(b)?);
    Ok(contain_panic("the structural diff", || glue::diff_images(&ia, &ib))??)
}

/// Runs a verifier call so that a bug in it (a panic) becomes an explanation that says so
/// instead of losing the audit's whole report.
pub fn contain_panic<T>(what: &str, f: impl FnOnce() -> T) -> anyhow::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        anyhow::anyhow!("{what} panicked (a verifier bug, please report it): {msg}")
    })
}

/// The first differing field of a structural diff, as one line. Checksums change whenever
/// what they cover changes, so the first field that is not one names the cause.
pub fn first_difference(d: &DiffReport) -> Option<String> {
    let is_checksum = |g: &&reprodisk_verifier::diff::DiffGroup| {
        let f = g.field.as_deref().unwrap_or(&g.name).to_ascii_lowercase();
        f.contains("crc") || f.contains("csum") || f.contains("checksum")
    };
    if let Some(g) = d.groups.iter().find(|g| !is_checksum(g)).or(d.groups.first()) {
        return Some(match (&g.a, &g.b) {
            (Some(a), Some(b)) => format!("{}: {a} vs {b}", g.name),
            _ => g.name.clone(),
        });
    }
    if let Some(u) = d.unexplained.shown.first() {
        return Some(format!("bytes {:#x}..{:#x} (no structure there)", u.start, u.end));
    }
    (d.len_a != d.len_b).then(|| format!("length: {} vs {}", d.len_a, d.len_b))
}

/// A JSON or line diff of two small text files, after the same normalisation the digests
/// saw; `None` when either is not UTF-8 text.
fn text_diff(
    fa: &Path,
    da: &FileDigest,
    out_a: &Path,
    fb: &Path,
    db: &FileDigest,
    out_b: &Path,
) -> Option<Vec<String>> {
    if da.bytes > NORMALISE_MAX || db.bytes > NORMALISE_MAX {
        return None;
    }
    let kind = TextKind::of(fa);
    let ta = String::from_utf8(normalise(read_text(fa, NORMALISE_MAX)?.as_bytes(), out_a, kind)).ok()?;
    let tb = String::from_utf8(normalise(read_text(fb, NORMALISE_MAX)?.as_bytes(), out_b, kind)).ok()?;
    if let (Ok(ja), Ok(jb)) = (serde_json::from_str::<Value>(&ta), serde_json::from_str::<Value>(&tb)) {
        let mut out = Vec::new();
        json_diff("", &ja, &jb, &mut out);
        let total = out.len();
        out.truncate(MAX_LINES);
        if total > MAX_LINES {
            out.push(format!("... and {} more fields", total - MAX_LINES));
        }
        return Some(out);
    }
    let (la, lb): (Vec<&str>, Vec<&str>) = (ta.lines().collect(), tb.lines().collect());
    let mut out = Vec::new();
    for i in 0..la.len().max(lb.len()) {
        let (x, y) = (la.get(i).copied(), lb.get(i).copied());
        if x != y {
            out.push(format!("line {}: {:?} vs {:?}", i + 1, x.unwrap_or("<none>"), y.unwrap_or("<none>")));
        }
    }
    out.truncate(MAX_LINES);
    Some(out)
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 80 { format!("{}...", &s[..s.floor_char_boundary(77)]) } else { s }
}

/// Every JSON pointer where `a` and `b` differ, in document order.
pub fn json_diff(at: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(ma), Value::Object(mb)) => {
            for (k, va) in ma {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                match mb.get(k) {
                    Some(vb) => json_diff(&p, va, vb, out),
                    None => out.push(format!("{p}: {} vs <absent>", short(va))),
                }
            }
            for (k, vb) in mb.iter().filter(|(k, _)| !ma.contains_key(*k)) {
                out.push(format!("{at}/{k}: <absent> vs {}", short(vb)));
            }
        }
        (Value::Array(xa), Value::Array(xb)) if xa.len() == xb.len() => {
            for (i, (va, vb)) in xa.iter().zip(xb).enumerate() {
                json_diff(&format!("{at}/{i}"), va, vb, out);
            }
        }
        _ if a != b => {
            out.push(format!("{}: {} vs {}", if at.is_empty() { "/" } else { at }, short(a), short(b)))
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_diff_names_pointers() {
        let mut out = Vec::new();
        json_diff(
            "",
            &json!({"layout": {"disk_guid": "A", "n": [1, 2]}, "x": 1}),
            &json!({"layout": {"disk_guid": "B", "n": [1, 3]}, "y": 1}),
            &mut out,
        );
        assert_eq!(
            out,
            vec![
                r#"/layout/disk_guid: "A" vs "B""#,
                "/layout/n/1: 2 vs 3",
                "/x: 1 vs <absent>",
                "/y: <absent> vs 1"
            ]
        );
    }
}
