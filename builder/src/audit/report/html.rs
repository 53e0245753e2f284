//! `reprodisk audit --html FILE`: one self-contained HTML page (inline CSS and SVG, no
//! scripts, no external assets) with a map of the disk, the table of builds and, per
//! difference, the structural diff's lines.
//!
//! The map draws the whole disk to scale on its first row (partition tables, partitions,
//! filesystem regions), then one row per partition, zoomed to that partition. Colours say
//! what a range holds ([`Kind`]); red ticks above a row mark where a build differed from the
//! reference (each differing structure and field at its first differing byte, and every
//! unexplained range), with the field's name as the tick's tooltip.

use super::diskmap::{DiskMap, Kind};
use super::{AuditReport, BuildStatus, FileStatus, duration};
use std::fmt::Write as _;

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 150.0;
const BAR: f64 = 28.0;
const ROW: f64 = 58.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn colour(k: Kind) -> &'static str {
    match k {
        Kind::Table => "#8e44ad",
        Kind::Metadata => "#e67e22",
        Kind::Journal => "#16a085",
        Kind::Data => "#2e86c1",
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// A differing range of the image and what it is.
struct Mark {
    start: u64,
    len: u64,
    what: String,
}

fn marks(r: &AuditReport) -> Vec<Mark> {
    let mut out = Vec::new();
    for b in r.results.iter().filter(|b| b.status == BuildStatus::Differs) {
        for f in b.files.iter().filter(|f| f.status == FileStatus::Differs) {
            let Some(d) = &f.diff else { continue };
            for g in &d.groups {
                out.push(Mark {
                    start: g.first_offset,
                    len: (g.bytes / g.ranges.max(1)).max(1),
                    what: format!("{}: {}", b.name, g.name),
                });
            }
            for u in &d.unexplained.shown {
                out.push(Mark {
                    start: u.start,
                    len: u.end - u.start,
                    what: format!("{}: unexplained bytes", b.name),
                });
            }
        }
    }
    out
}

/// One bar of the map: `[start, start + len)` of the disk drawn at `y`.
fn bar(
    svg: &mut String,
    map: &DiskMap,
    marks: &[Mark],
    y: f64,
    (start, len): (u64, u64),
    title: &str,
    whole: bool,
) {
    let scale = (WIDTH - LEFT - 10.0) / len.max(1) as f64;
    let x = |off: u64| LEFT + (off.saturating_sub(start)) as f64 * scale;
    let _ = write!(
        svg,
        r##"<text x="{}" y="{}" class="rowlabel">{}</text><rect x="{LEFT}" y="{y}" width="{}" height="{BAR}" fill="#eceff1" stroke="#90a4ae"><title>{} ({})</title></rect>"##,
        LEFT - 8.0,
        y + BAR / 2.0 + 4.0,
        esc(title),
        WIDTH - LEFT - 10.0,
        esc(title),
        bytes(len)
    );
    if whole {
        for p in &map.partitions {
            let _ = write!(
                svg,
                r##"<rect x="{:.2}" y="{}" width="{:.2}" height="{}" fill="none" stroke="#263238" stroke-width="1.5"><title>partition {}: {} at {} ({})</title></rect>"##,
                x(p.start),
                y - 3.0,
                (p.len as f64 * scale).max(1.0),
                BAR + 6.0,
                p.number,
                esc(&p.what),
                bytes(p.start),
                bytes(p.len)
            );
        }
    }
    // Spans merged at pixel resolution, so a map of 100 000 files stays small.
    let mut last: Option<(f64, f64, Kind)> = None;
    let flush = |svg: &mut String, s: Option<(f64, f64, Kind)>| {
        if let Some((x0, x1, k)) = s {
            let _ = write!(
                svg,
                r#"<rect x="{x0:.2}" y="{}" width="{:.2}" height="{}" fill="{}"/>"#,
                y + 2.0,
                (x1 - x0).max(0.6),
                BAR - 4.0,
                colour(k)
            );
        }
    };
    let end = start + len;
    for s in map.spans.iter().filter(|s| s.start < end && s.start + s.len > start) {
        let (x0, x1) = (x(s.start.max(start)), x((s.start + s.len).min(end)));
        match &mut last {
            Some((_, lx1, lk)) if *lk == s.kind && x0 <= *lx1 + 0.6 => *lx1 = x1,
            _ => {
                let prev = last.take();
                flush(svg, prev);
                last = Some((x0, x1, s.kind));
            }
        }
    }
    flush(svg, last);
    for m in marks.iter().filter(|m| m.start < end && m.start + m.len > start) {
        let x0 = x(m.start.max(start));
        let w = ((m.start + m.len).min(end) - m.start.max(start)) as f64 * scale;
        let _ = write!(
            svg,
            r##"<rect x="{:.2}" y="{}" width="{:.2}" height="{}" fill="#d32f2f"><title>{} at {:#x}</title></rect>"##,
            x0 - 1.0,
            y - 10.0,
            w.max(2.5),
            BAR + 12.0,
            esc(&m.what),
            m.start
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{LEFT}" y="{}" class="axis">{}</text><text x="{}" y="{}" class="axis" text-anchor="end">{}</text>"#,
        y + BAR + 14.0,
        bytes(start),
        WIDTH - 10.0,
        y + BAR + 14.0,
        bytes(end)
    );
}

fn disk_svg(r: &AuditReport) -> String {
    let Some(map) = &r.disk_map else { return String::new() };
    if map.size == 0 {
        return format!(
            "<p>No disk map: {}</p>",
            esc(map.note.as_deref().unwrap_or("the image could not be read"))
        );
    }
    let marks = marks(r);
    let rows = 1 + map.partitions.len();
    let height = 30.0 + rows as f64 * ROW + 16.0;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="disk map">"#
    );
    let mut y = 24.0;
    bar(&mut svg, map, &marks, y, (0, map.size), "whole disk", true);
    for p in &map.partitions {
        y += ROW;
        let title = if p.number == 0 { "filesystem".to_string() } else { format!("partition {}", p.number) };
        bar(&mut svg, map, &marks, y, (p.start, p.len), &title, false);
        let _ = write!(svg, r#"<text x="{LEFT}" y="{}" class="what">{}</text>"#, y - 4.0, esc(&p.what));
    }
    y += ROW;
    let mut lx = LEFT;
    for k in [Kind::Table, Kind::Metadata, Kind::Journal, Kind::Data] {
        let _ = write!(
            svg,
            r#"<rect x="{lx}" y="{}" width="14" height="14" fill="{}"/><text x="{}" y="{}" class="legend">{}</text>"#,
            y - 8.0,
            colour(k),
            lx + 20.0,
            y + 4.0,
            k.name()
        );
        lx += 180.0;
    }
    let _ = write!(
        svg,
        r##"<rect x="{lx}" y="{}" width="14" height="14" fill="#d32f2f"/><text x="{}" y="{}" class="legend">differs from the reference</text></svg>"##,
        y - 8.0,
        lx + 20.0,
        y + 4.0
    );
    svg
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#212121;background:#fff}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}\
.ok{color:#1b5e20}.bad{color:#b71c1c}.skip{color:#6d4c41}\
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #cfd8dc;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#eceff1}tr.differs td,tr.failed td{background:#ffebee}tr.not-run td{background:#fff8e1}\
pre{background:#f5f5f5;padding:8px;white-space:pre-wrap;font-size:12px}code{font-size:12px}\
.rowlabel{font-size:13px;text-anchor:end}.axis{font-size:10px;fill:#546e7a}.what{font-size:11px;fill:#37474f}.legend{font-size:12px}";

/// The whole page.
pub fn render(r: &AuditReport) -> String {
    let mut h = String::new();
    let (cls, verdict) = if r.reproducible { ("ok", "reproducible") } else { ("bad", "NOT reproducible") };
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>reprodisk audit: {}</title><style>{STYLE}</style></head><body>",
        esc(&r.spec)
    );
    let _ = write!(
        h,
        "<h1>reprodisk audit of <code>{}</code>: <span class=\"{cls}\">{verdict}</span></h1>",
        esc(&r.spec)
    );
    let _ = write!(
        h,
        "<p>{} &middot; the audit took {} with {} builds at a time; the reference ({}) took {}.</p>",
        match &r.against {
            Some(i) => format!("rebuilt and compared with <code>{}</code>", esc(i)),
            None => format!("a control build and {} varied builds", r.results.len()),
        },
        duration(r.seconds),
        r.parallel,
        esc(&r.reference.what),
        duration(r.reference.seconds)
    );
    h += "<h2>Disk map</h2>";
    h += &disk_svg(r);
    if !r.inputs.is_empty() {
        h += "<h2>Inputs listed in the image's manifest</h2><table><tr><th>input</th><th>status</th><th>note</th></tr>";
        for i in &r.inputs {
            let s = i.status.word();
            let _ = write!(
                h,
                "<tr><td><code>{}</code></td><td>{s}</td><td>{}</td></tr>",
                esc(&i.path),
                esc(i.note.as_deref().unwrap_or(""))
            );
        }
        h += "</table>";
    }
    h += "<h2>Builds</h2><table><tr><th>variation</th><th>what changed</th><th>result</th><th>differing files</th><th>first differing field</th><th>time</th></tr>";
    for b in &r.results {
        let files: Vec<String> = b.differing().map(|f| format!("<code>{}</code>", esc(&f.path))).collect();
        let first = b.first_line();
        let class = match b.status {
            BuildStatus::Reproduced => "reproduced",
            BuildStatus::Differs => "differs",
            BuildStatus::Failed => "failed",
            BuildStatus::NotRun => "not-run",
        };
        let _ = write!(
            h,
            "<tr class=\"{class}\"><td><b>{}</b></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&b.name),
            esc(&b.description),
            b.status.word(),
            if files.is_empty() { "&ndash;".into() } else { files.join(", ") },
            if first.is_empty() { "&ndash;".into() } else { esc(&first) },
            duration(b.seconds)
        );
    }
    h += "</table>";
    let notes: Vec<String> = r
        .results
        .iter()
        .flat_map(|b| b.notes.iter().map(move |n| format!("{}: {n}", b.name)))
        .chain(r.notes.iter().cloned())
        .collect();
    if !notes.is_empty() {
        h += "<ul>";
        for n in notes {
            let _ = write!(h, "<li>{}</li>", esc(&n));
        }
        h += "</ul>";
    }
    let mut any = false;
    for b in r.results.iter().filter(|b| b.status == BuildStatus::Differs) {
        for f in b.differing() {
            if !any {
                h += "<h2>Differences</h2>";
                any = true;
            }
            let _ = write!(
                h,
                "<details open><summary><b>{}</b> ({}): <code>{}</code></summary><pre>{}</pre></details>",
                esc(&b.name),
                esc(&b.description),
                esc(&f.path),
                esc(&f.lines.join("\n"))
            );
        }
    }
    h += "<h2>Reference files</h2><table><tr><th>file</th><th>bytes</th><th>sha256</th></tr>";
    for (p, d) in &r.reference.files {
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td><td><code>{}</code></td></tr>",
            esc(p),
            d.bytes,
            d.sha256
        );
    }
    h += "</table></body></html>\n";
    h
}
