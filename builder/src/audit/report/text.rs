//! The terminal report: one table row per build (variation, result, differing files, first
//! differing field), then each difference's explanation and the time the audit took.

use super::{AuditReport, BuildStatus, duration};
use std::fmt::Write as _;

/// Lines of a structural diff shown per file in the terminal; `--json` and `--html` have all.
const MAX_DIFF_LINES: usize = 12;

pub fn render(r: &AuditReport) -> String {
    let mut out = String::new();
    match &r.against {
        Some(img) => {
            let _ = writeln!(out, "audit of `{}` against `{img}`", r.spec);
        }
        None => {
            let _ =
                writeln!(out, "audit of `{}`: a control build and {} varied builds", r.spec, r.results.len());
        }
    }
    if !r.inputs.is_empty() {
        let _ = writeln!(out, "inputs listed in the image's manifest:");
        for i in &r.inputs {
            let word = i.status.word();
            let _ = write!(out, "  {word:<12} {}", i.path);
            if let Some(n) = &i.note {
                let _ = write!(out, " ({n})");
            }
            let _ = writeln!(out);
        }
    }
    let rows: Vec<[String; 4]> = r
        .results
        .iter()
        .map(|b| {
            let files: Vec<&str> = b.differing().map(|f| f.path.as_str()).collect();
            let first = b.first_line();
            [
                b.name.clone(),
                b.status.word().to_string(),
                if files.is_empty() { "-".into() } else { files.join(", ") },
                if first.is_empty() { "-".into() } else { first },
            ]
        })
        .collect();
    let header = ["variation", "result", "differing files", "first differing field"];
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, c) in width.iter_mut().zip(row).take(3) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |out: &mut String, c: [&str; 4]| {
        let _ = writeln!(
            out,
            "  {:<w0$}  {:<w1$}  {:<w2$}  {}",
            c[0],
            c[1],
            c[2],
            c[3],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2]
        );
    };
    line(&mut out, header);
    line(
        &mut out,
        [
            "-".repeat(width[0]).as_str(),
            &"-".repeat(width[1]),
            &"-".repeat(width[2]),
            "-".repeat(21).as_str(),
        ],
    );
    for row in &rows {
        line(&mut out, [&row[0], &row[1], &row[2], &row[3]]);
    }
    for b in r.results.iter().filter(|b| b.status == BuildStatus::Differs) {
        for f in b.differing() {
            let _ = writeln!(out, "\n{} ({}): {} differs", b.name, b.description, f.path);
            for l in f.lines.iter().take(MAX_DIFF_LINES) {
                let _ = writeln!(out, "    {l}");
            }
            if f.lines.len() > MAX_DIFF_LINES {
                let _ = writeln!(
                    out,
                    "    ... {} more lines (see --json or --html)",
                    f.lines.len() - MAX_DIFF_LINES
                );
            }
        }
    }
    for b in &r.results {
        for n in &b.notes {
            let _ = writeln!(out, "note: {}: {n}", b.name);
        }
    }
    for n in &r.notes {
        let _ = writeln!(out, "note: {n}");
    }
    let not_run = r.results.iter().filter(|b| b.status == BuildStatus::NotRun).count();
    let ran = r.results.len() - not_run;
    let verdict = if r.reproducible { "reproducible" } else { "NOT reproducible" };
    let _ = write!(
        out,
        "\n{verdict}: {} of {ran} builds reproduced",
        r.results.iter().filter(|b| b.status == BuildStatus::Reproduced).count()
    );
    if not_run > 0 {
        let _ = write!(out, ", {not_run} could not run here (see above)");
    }
    let _ = writeln!(
        out,
        "; the audit took {} ({} builds, {} at a time; the reference build took {})",
        duration(r.seconds),
        ran + usize::from(r.against.is_none()),
        r.parallel,
        duration(r.reference.seconds)
    );
    if let Some(k) = &r.kept {
        let _ = writeln!(out, "builds kept in {k}");
    }
    out
}
