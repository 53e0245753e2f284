//! The gate's summary table: one row per boot (layout, firmware, loader, format) joined with its
//! fixture spec's build (seconds, verified, reproducible), read from the records the
//! integration harness writes (`tests/src/gate.rs`): one `.tsv` file per fixture spec and per
//! boot, a single line of tab-separated `key=value` fields.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

type Record = BTreeMap<String, String>;

/// Parses one record line.
pub fn parse_record(line: &str) -> Record {
    line.trim_end()
        .split('\t')
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every record in `dir`: (fixture records by spec, boot records in name order).
pub fn read_records(dir: &Path) -> (BTreeMap<String, Record>, Vec<Record>) {
    let mut fixtures = BTreeMap::new();
    let mut boots = Vec::new();
    let mut files: Vec<_> =
        std::fs::read_dir(dir).into_iter().flatten().filter_map(|e| e.ok()).map(|e| e.path()).collect();
    files.sort();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else { continue };
        let r = parse_record(&text);
        if r.contains_key("boot") {
            boots.push(r);
        } else if let Some(spec) = r.get("spec") {
            fixtures.insert(spec.clone(), r);
        }
    }
    (fixtures, boots)
}

/// The table and whether every row passed. A fixture spec that no boot uses gets a row of
/// its own (pending specs say what they wait for).
pub fn table(fixtures: &BTreeMap<String, Record>, boots: &[Record]) -> (String, bool) {
    let get = |r: &Record, k: &str| r.get(k).cloned().unwrap_or_else(|| "-".into());
    let mut rows = vec![
        [
            "layout",
            "firmware",
            "loader",
            "format",
            "spec",
            "build s",
            "verified",
            "reproducible",
            "boot s",
            "result",
        ]
        .map(String::from),
    ];
    let mut ok = !boots.is_empty();
    let mut used = std::collections::BTreeSet::new();
    for b in boots {
        let spec = get(b, "spec");
        used.insert(spec.clone());
        let f = fixtures.get(&spec).cloned().unwrap_or_default();
        let good = b.get("ok").is_some_and(|v| v == "yes")
            && f.get("verified").is_some_and(|v| v == "yes")
            && f.get("reproducible").is_some_and(|v| v == "yes");
        ok &= good;
        rows.push([
            get(b, "layout"),
            get(b, "firmware"),
            get(b, "loader"),
            get(b, "format"),
            spec,
            get(&f, "build_s"),
            get(&f, "verified"),
            get(&f, "reproducible"),
            get(b, "boot_s"),
            if good { "ok".into() } else { "FAIL".into() },
        ]);
    }
    for (spec, f) in fixtures.iter().filter(|(s, _)| !used.contains(*s)) {
        let (result, good) = match f.get("pending") {
            Some(why) => (format!("pending: {why}"), true),
            None => {
                let good = f.get("verified").is_some_and(|v| v == "yes")
                    && f.get("reproducible").is_some_and(|v| v == "yes");
                (if good { "ok (no boot row)".into() } else { "FAIL".into() }, good)
            }
        };
        ok &= good;
        rows.push([
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            spec.clone(),
            get(f, "build_s"),
            get(f, "verified"),
            get(f, "reproducible"),
            "-".into(),
            result,
        ]);
    }
    let widths: Vec<usize> = (0..10).map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in &rows {
        let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    let failures: Vec<String> = boots
        .iter()
        .filter(|b| b.get("ok").is_none_or(|v| v != "yes"))
        .map(|b| format!("{}: {}", get(b, "boot"), get(b, "summary")))
        .chain(
            fixtures
                .values()
                .filter_map(|f| f.get("error").map(|e| format!("fixture {}: {e}", get(f, "spec")))),
        )
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "\nfailures:\n  {}", failures.join("\n  "));
    }
    (out, ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(line: &str) -> Record {
        parse_record(line)
    }

    #[test]
    fn rows_join_boots_with_their_fixture_builds() {
        let mut fixtures = BTreeMap::new();
        fixtures.insert("none".into(), rec("spec=none\tbuild_s=0.3\treproducible=yes\tverified=yes\n"));
        fixtures
            .insert("hybrid-qcow2".into(), rec("spec=hybrid-qcow2\tpending=format qcow2 (formats branch)"));
        let boots = vec![rec(
            "boot=boot::none::kernel::direct::raw\tlayout=none\tfirmware=kernel\tloader=direct\tformat=raw\tspec=none\tboot_s=12.5\tok=yes\tsummary=ok",
        )];
        let (text, ok) = table(&fixtures, &boots);
        assert!(ok, "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("layout  firmware  loader"), "{text}");
        assert!(
            lines[1]
                .split_whitespace()
                .eq(["none", "kernel", "direct", "raw", "none", "0.3", "yes", "yes", "12.5", "ok"]),
            "{text}"
        );
        assert!(lines[2].ends_with("pending: format qcow2 (formats branch)"), "{text}");
    }

    #[test]
    fn a_failed_boot_or_an_unreproducible_build_fails_the_table_with_its_reason() {
        let mut fixtures = BTreeMap::new();
        fixtures.insert("efi".into(), rec("spec=efi\tbuild_s=1\treproducible=NO\tverified=yes\terror=not reproducible: two builds differ"));
        let boots =
            vec![rec("boot=boot::efi::ovmf::systemd-boot::raw\tspec=efi\tok=NO\tsummary=failed: Shell>")];
        let (text, ok) = table(&fixtures, &boots);
        assert!(!ok);
        assert!(
            text.contains("FAIL") && text.contains("fixture efi: not reproducible: two builds differ"),
            "{text}"
        );
        assert!(text.contains("boot::efi::ovmf::systemd-boot::raw: failed: Shell>"), "{text}");
        assert!(!table(&BTreeMap::new(), &[]).1, "no boots at all is a failure");
    }
}
