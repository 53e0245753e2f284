//! `cargo xtask bench --audit`: `reprodisk audit` of an efi image against the issue's target, 1.2 x (builds / cores) x one build.
//!
//! After a warm-up build (the tree in the page cache), each of `--runs` rounds times one build
//! of the spec and then `reprodisk audit SPEC --json` on the same spec; the figures are the
//! medians over the rounds, and the verdict is the median of each round's audit against that
//! round's own target. The single build writes where the audit's builds write (/dev/shm
//! when it has room, as the audit's work folder does), so that both pay the same for their
//! output. The audit's own report says how many builds it ran (the control and every
//! variation that could run here) and how long it took. Every run goes under GNU time
//! (`-f "%e %U %S %M"`: elapsed, user and system seconds, peak RSS), whose user and system
//! times include every child the audit waited for. The wall-clock target is the issue's; on a
//! shared machine the CPU figures say more: the audit's user+sys against `builds` times one
//! build's is what the audit costs beyond the builds themselves (probes, hashing the
//! control, comparing, removing builds). Results: a table on stdout and
//! `WORK/bench-audit.json`.

use super::json_string;
use crate::flags::BenchOpts;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// The issue's allowance over perfectly parallel builds.
const ALLOWANCE: f64 = 1.2;

/// What GNU time reported for one command, and the command's stdout.
#[derive(Debug, PartialEq)]
struct Run {
    wall: f64,
    cpu: f64,
    peak_kib: u64,
    stdout: String,
}

/// Parses the last line GNU time wrote with `-f "%e %U %S %M"` into (wall, user+sys, peak KiB).
fn parse_time(stderr: &str) -> Option<(f64, f64, u64)> {
    let line = stderr.lines().rev().find(|l| !l.trim().is_empty())?;
    let f: Vec<&str> = line.split_whitespace().collect();
    let [wall, user, sys, peak] = f.as_slice() else { return None };
    let secs = |s: &str| s.parse::<f64>().ok();
    Some((secs(wall)?, secs(user)? + secs(sys)?, peak.parse().ok()?))
}

fn timed(program: &Path, args: &[&str]) -> anyhow::Result<Run> {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        bail!("`/usr/bin/time` is missing: install the Debian package `time`");
    }
    eprintln!("$ {} {}", program.display(), args.join(" "));
    let out = std::process::Command::new(time)
        .args(["-f", "%e %U %S %M"])
        .arg(program)
        .args(args)
        .env("CI", "true")
        .output()
        .context("starting /usr/bin/time")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (wall, cpu, peak_kib) = parse_time(&stderr)
        .with_context(|| format!("GNU time printed no figures for `{}`: {stderr}", program.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // The audit exits 1 when a variation does not reproduce; its report still holds the figures.
    let reported = out.status.code() == Some(1) && stdout.trim_start().starts_with('{');
    if !out.status.success() && !reported {
        bail!("`{} {}` failed with {}: {stderr}", program.display(), args.join(" "), out.status);
    }
    Ok(Run { wall, cpu, peak_kib, stdout })
}

/// What the audit's JSON report says: (builds run, seconds, builds at a time, reproducible).
fn audit_figures(report: &str) -> anyhow::Result<(usize, f64, usize, bool)> {
    let j: serde_json::Value =
        serde_json::from_str(report).context("`reprodisk audit --json` printed no JSON")?;
    let results = j["results"].as_array().context("the audit report has no `results`")?;
    // The control build, plus every variation build that ran (failed builds ran too).
    let builds = 1 + results.iter().filter(|r| r["status"] != "not-run").count();
    let seconds = j["seconds"].as_f64().context("the audit report has no `seconds`")?;
    let parallel = j["parallel"].as_u64().context("the audit report has no `parallel`")? as usize;
    Ok((builds, seconds, parallel, j["reproducible"] == true))
}

/// The efi spec of the benchmark: the tree as the root folder, sized to fit.
fn spec_json(tree: &Path) -> String {
    format!(
        "{{\"partitionTableType\":\"efi\",\"diskSize\":\"auto\",\"installBootLoader\":false,\"baseName\":\"audit-bench\",\"system\":{{\"root\":{}}}}}",
        json_string(&tree.display().to_string())
    )
}

/// One round: a single build, then the audit.
struct Round {
    one: Run,
    audit: Run,
    builds: usize,
    audit_s: f64,
    parallel: usize,
    reproducible: bool,
}

/// Free bytes in the filesystem of `dir` (`df`), if it can be read.
fn shm_room(dir: &Path) -> Option<u64> {
    let o = std::process::Command::new("df").args(["--output=avail", "-B1"]).arg(dir).output().ok()?;
    String::from_utf8_lossy(&o.stdout).lines().nth(1)?.trim().parse().ok()
}

/// The target: `ALLOWANCE` x (builds / cores) x one build.
fn target(builds: usize, cores: usize, one: f64) -> f64 {
    ALLOWANCE * builds as f64 / cores.max(1) as f64 * one
}

pub fn run_audit(opts: &BenchOpts, work: &Path, reprodisk: &Path) -> anyhow::Result<()> {
    let tree = opts.trees.first().cloned().unwrap_or_else(|| PathBuf::from("/usr/share"));
    let tree = std::fs::canonicalize(&tree).with_context(|| format!("no tree at `{}`", tree.display()))?;
    let bytes = super::du_bytes(&tree)?;
    let spec = work.join("bench-audit-spec.json");
    std::fs::write(&spec, spec_json(&tree)).with_context(|| format!("writing `{}`", spec.display()))?;
    let spec_s = spec.display().to_string();
    // Where the audit's work folder goes (see the builder's `audit::runner::WorkDir`).
    let shm = Path::new("/dev/shm");
    let out = if shm_room(shm).is_some_and(|room| room > 4 * bytes + (1 << 30)) {
        shm.join("reprodisk-bench-audit-one")
    } else {
        work.join("audit-one")
    };
    let out_s = out.display().to_string();
    let _ = std::fs::remove_dir_all(&out);
    timed(reprodisk, &["build", &spec_s, "--out", &out_s])?;
    std::fs::remove_dir_all(&out)?;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut rounds = Vec::new();
    for _ in 0..opts.runs.max(1) {
        let one = timed(reprodisk, &["build", &spec_s, "--out", &out_s])?;
        std::fs::remove_dir_all(&out)?;
        let audit = timed(reprodisk, &["audit", &spec_s, "--json"])?;
        let (builds, audit_s, parallel, reproducible) = audit_figures(&audit.stdout)?;
        rounds.push(Round { one, audit, builds, audit_s, parallel, reproducible });
    }
    let m = |f: &dyn Fn(&Round) -> f64| super::paired::median(rounds.iter().map(f).collect());
    let (one_wall, one_cpu, one_peak) =
        (m(&|r| r.one.wall), m(&|r| r.one.cpu), m(&|r| r.one.peak_kib as f64));
    let (audit_s, audit_wall, audit_cpu, audit_peak) =
        (m(&|r| r.audit_s), m(&|r| r.audit.wall), m(&|r| r.audit.cpu), m(&|r| r.audit.peak_kib as f64));
    let builds = rounds[0].builds;
    let parallel = rounds[0].parallel;
    let reproducible = rounds.iter().all(|r| r.reproducible);
    let wall_target = target(builds, cores, one_wall);
    // Each round against its own target, then the median of those ratios.
    let ratio = m(&|r| r.audit_s / target(r.builds, cores, r.one.wall));
    let pass = ratio <= 1.0;
    let cpu_builds = builds as f64 * one_cpu;
    let cpu_overhead = audit_cpu - cpu_builds;
    let per_round: Vec<String> =
        rounds.iter().map(|r| format!("{:.2} s audit / {:.2} s build", r.audit_s, r.one.wall)).collect();
    println!(
        "tree {} ({bytes} bytes), {} rounds ({}), single build in {}\n\
         one build: {one_wall:.2} s wall, {one_cpu:.2} s user+sys (medians)\n\
         audit: {builds} builds, {parallel} at a time on {cores} cores: {audit_s:.2} s wall (GNU time {audit_wall:.2} s), {audit_cpu:.2} s user+sys (medians)\n\
         target {ALLOWANCE} x ({builds} / {cores}) x {one_wall:.2} s = {wall_target:.2} s; audit / target, median of the rounds: {ratio:.3}: {}\n\
         CPU beyond the builds: {cpu_overhead:.2} s user+sys ({:+.1}% of {builds} x one build's {one_cpu:.2} s){}",
        tree.display(),
        rounds.len(),
        per_round.join(", "),
        out.parent().map_or_else(String::new, |p| p.display().to_string()),
        if pass { "PASS" } else { "FAIL" },
        100.0 * cpu_overhead / cpu_builds.max(0.001),
        if reproducible { "" } else { "\nnote: the audit found a variation that does not reproduce" },
    );
    let json = format!(
        "{{\"tree\":{},\"bytes\":{bytes},\"cores\":{cores},\"rounds\":{},\"builds\":{builds},\"parallel\":{parallel},\
         \"build_s\":{one_wall},\"build_cpu_s\":{one_cpu},\"build_peak_kib\":{one_peak},\"audit_s\":{audit_s},\"audit_wall_s\":{audit_wall},\
         \"audit_cpu_s\":{audit_cpu},\"audit_peak_kib\":{audit_peak},\"target_s\":{wall_target},\"ratio\":{ratio},\"allowance\":{ALLOWANCE},\
         \"pass\":{pass},\"cpu_overhead_s\":{cpu_overhead},\"reproducible\":{reproducible}}}\n",
        json_string(&tree.display().to_string()),
        rounds.len(),
    );
    std::fs::write(work.join("bench-audit.json"), json)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gnu_time_with_cpu_times() {
        assert_eq!(parse_time("warning\n12.5 3.25 0.75 4096\n"), Some((12.5, 4.0, 4096)));
        assert_eq!(parse_time("Command exited with non-zero status 1\n"), None);
    }

    #[test]
    fn counts_the_builds_that_ran() {
        let report = r#"{"seconds": 40.5, "parallel": 2, "reproducible": true, "results": [
            {"status": "reproduced"}, {"status": "not-run"}, {"status": "differs"}, {"status": "failed"}]}"#;
        assert_eq!(audit_figures(report).unwrap(), (4, 40.5, 2, true));
    }

    #[test]
    fn target_is_the_allowance_over_parallel_builds() {
        assert!((target(11, 2, 10.0) - 66.0).abs() < 1e-9);
        assert!((target(3, 0, 1.0) - 3.6).abs() < 1e-9);
    }
}
