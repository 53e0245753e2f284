//! The report's renderings: aligned text tables for people, JSON for machines.

use super::*;
use std::fmt::Write as _;

impl VerifyReport {
    pub fn to_json(&self) -> String {
        // Plain strings, integers and maps with integer keys always serialise.
        serde_json::to_string_pretty(self).expect("a verify report always serialises")
    }

    /// The human report: one aligned table per section, then the findings and the verdict.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let path = self.image.path.as_deref().unwrap_or("image");
        let _ = writeln!(out, "{path}: {} bytes", self.image.size);

        if let Some(l) = self.layout {
            let _ = writeln!(out, "layout: {}", l.as_str());
        }
        let t = &self.table;
        let _ = write!(out, "\npartition table: {}", t.kind.label());
        if let (Some(f), Some(l)) = (t.first_usable_lba, t.last_usable_lba) {
            let _ = write!(out, ", usable sectors {f}..={l}");
        }
        if let Some(b) = &t.boot_code {
            let _ = write!(out, ", boot code: {b}");
        }
        out.push('\n');
        if !t.partitions.is_empty() {
            let mut rows = vec![row(&["#", "start", "sectors", "size", "type", "name", "guid", "flags"])];
            for p in &t.partitions {
                let mut flags = Vec::new();
                if p.bootable {
                    flags.push("boot".to_string());
                }
                if p.attributes != 0 {
                    flags.push(format!("attrs={:#x}", p.attributes));
                }
                let ty = if p.type_name.is_empty() { p.type_id.clone() } else { p.type_name.clone() };
                rows.push(vec![
                    p.number.to_string(),
                    p.start_lba.to_string(),
                    p.sectors.to_string(),
                    human_size(p.sectors * 512),
                    ty,
                    p.name.clone().unwrap_or_default(),
                    p.guid.clone().unwrap_or_default(),
                    flags.join(","),
                ]);
            }
            table(&mut out, &rows);
        }

        let _ = writeln!(out, "\nfilesystems:");
        let mut rows = vec![row(&["where", "type", "label", "id", "size", "block", "files"])];
        for fs in &self.filesystems {
            let id = fs
                .uuid
                .clone()
                .or_else(|| fs.volume_id.map(|v| format!("{:04X}-{:04X}", v >> 16, v & 0xffff)))
                .unwrap_or_default();
            rows.push(vec![
                fs.partition.map_or("disk".to_string(), |p| format!("partition {p}")),
                fs.fs_type.user_name().to_string(),
                format!("{:?}", fs.label),
                id,
                human_size(fs.size_bytes),
                fs.block_size.to_string(),
                fs.file_count.to_string(),
            ]);
        }
        table(&mut out, &rows);

        let _ = writeln!(out, "\nids:");
        let mut rows = vec![row(&["what", "where", "value", "expected"])];
        for id in &self.ids {
            let expected = match (id.matches(), &id.expected) {
                (Some(true), _) => "ok".to_string(),
                (Some(false), Some(e)) => format!("MISMATCH: {e}"),
                _ => "-".to_string(),
            };
            rows.push(vec![id.what.clone(), id.location.clone(), id.value.clone(), expected]);
        }
        table(&mut out, &rows);

        let _ = writeln!(out, "\ntimes:");
        let mut rows = vec![row(&["where", "class", "values (count)"])];
        for t in &self.times {
            let vals: Vec<String> = t.values.iter().map(|(v, n)| format!("{v} ({n})")).collect();
            rows.push(vec![
                t.partition.map_or("disk".to_string(), |p| format!("partition {p}")),
                t.class.clone(),
                vals.join(", "),
            ]);
        }
        table(&mut out, &rows);

        let _ = writeln!(out, "\nfindings:");
        if self.findings.is_empty() {
            let _ = writeln!(out, "  none");
        } else {
            let mut rows = Vec::new();
            for f in &self.findings {
                rows.push(vec![
                    f.severity.as_str().to_string(),
                    f.code.clone(),
                    f.location.clone().unwrap_or_default(),
                    f.message.clone(),
                ]);
            }
            table(&mut out, &rows);
        }
        let count = |s: Severity| self.findings.iter().filter(|f| f.severity == s).count() as u64;
        let verdict = if self.failed() { "FAILED" } else { "ok" };
        let _ = writeln!(
            out,
            "\n{verdict}: {}, {}",
            crate::diff::count(count(Severity::Error), "error"),
            crate::diff::count(count(Severity::Warning), "warning")
        );
        out
    }
}

/// `n` with the singular or plural words after it: "1 file has", "2 files have".
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Writes rows as an aligned table, two spaces of indent, trailing spaces trimmed.
fn table(out: &mut String, rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| rows.iter().map(|r| r.get(i).map_or(0, |c| c.chars().count())).max().unwrap_or(0))
        .collect();
    for r in rows {
        let mut line = String::from(" ");
        for (i, c) in r.iter().enumerate() {
            let _ = write!(line, " {c:<w$}", w = widths[i]);
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// `"256 MiB"`, `"1.5 GiB"`, `"512 B"`.
pub(super) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if v.fract() == 0.0 { format!("{v} {}", UNITS[u]) } else { format!("{v:.1} {}", UNITS[u]) }
}
