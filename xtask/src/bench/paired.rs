//! Paired runs: each case runs reprodisk and every peer in turn (A B C, A B C, ...), a warm-up round then counted rounds.
//!
//! Each run is one command under GNU time (`-f "%e %U %S %M"`: wall, user and system
//! seconds, peak resident set in KiB of the largest process). A contender that is a pipeline
//! (`tar -x` then `mke2fs -d`) runs under `sh -c`, whose children GNU time counts. Running the
//! contenders alternately, round after round, spreads the noise of a shared machine over all
//! of them; the report is the median of each figure and, for each peer, the median of the
//! per-round ratios peer wall / reprodisk wall (paired, so a slow round slows both sides).

use crate::cmd::Cmd;
use anyhow::{Context, bail};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measure {
    pub seconds: f64,
    pub user: f64,
    pub sys: f64,
    pub peak_kib: u64,
}

/// Parses the last line GNU time wrote with `-f "%e %U %S %M"` ("12.34 10.01 1.20 56789").
pub fn parse_time(stderr: &str) -> Option<Measure> {
    let line = stderr.lines().rev().find(|l| !l.trim().is_empty())?;
    let mut it = line.split_whitespace();
    let seconds = it.next()?.parse().ok()?;
    let user = it.next()?.parse().ok()?;
    let sys = it.next()?.parse().ok()?;
    let peak_kib = it.next()?.parse().ok()?;
    Some(Measure { seconds, user, sys, peak_kib })
}

/// Runs `cmd` once under GNU time.
pub fn timed(cmd: &Cmd) -> anyhow::Result<Measure> {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        bail!("`/usr/bin/time` is missing: install the Debian package `time`");
    }
    let mut c = std::process::Command::new(time);
    c.args(["-f", "%e %U %S %M", &cmd.program]).args(&cmd.args);
    for (k, v) in &cmd.env {
        c.env(k, v);
    }
    eprintln!("$ {cmd}");
    let out = c.output().context("starting /usr/bin/time")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("`{cmd}` failed: {stderr}");
    }
    parse_time(&stderr).with_context(|| format!("GNU time printed no figures for `{cmd}`: {stderr}"))
}

/// One side of a case: how to get ready for a run (remove the last output) and what to time.
pub struct Contender {
    pub name: String,
    pub prepare: Box<dyn Fn() -> anyhow::Result<()>>,
    pub cmd: Cmd,
}

impl Contender {
    pub fn new(name: &str, cmd: Cmd) -> Self {
        Contender { name: name.to_string(), prepare: Box::new(|| Ok(())), cmd }
    }

    pub fn before(mut self, prepare: impl Fn() -> anyhow::Result<()> + 'static) -> Self {
        self.prepare = Box::new(prepare);
        self
    }

    /// A shell pipeline, timed as a whole.
    pub fn shell(name: &str, script: &str) -> Self {
        Contender::new(name, Cmd::new("sh", &["-c", script]))
    }
}

/// The medians of one contender's counted runs.
#[derive(Debug, Clone)]
pub struct Summary {
    pub name: String,
    pub median: Measure,
    /// Median of the per-round ratios this contender's wall / the first contender's wall.
    pub ratio: f64,
    pub runs: Vec<Measure>,
}

pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// Runs one warm-up round, then `rounds` counted rounds of every contender in turn; the
/// first contender is the reference of the ratios. `after_run` sees each contender's index
/// after its run (to check an output before the next run removes it).
pub fn run_case(
    contenders: &[Contender],
    rounds: usize,
    after_run: &mut dyn FnMut(usize) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<Summary>> {
    let mut runs: Vec<Vec<Measure>> = vec![Vec::new(); contenders.len()];
    for round in 0..=rounds {
        for (i, c) in contenders.iter().enumerate() {
            (c.prepare)().with_context(|| format!("preparing `{}`", c.name))?;
            let m = timed(&c.cmd)?;
            after_run(i)?;
            if round > 0 {
                runs[i].push(m);
            }
        }
    }
    Ok(summarize(contenders.iter().map(|c| c.name.clone()).collect(), runs))
}

/// Medians and paired ratios of `runs[contender][round]`.
pub fn summarize(names: Vec<String>, runs: Vec<Vec<Measure>>) -> Vec<Summary> {
    let reference: Vec<f64> = runs.first().map(|r| r.iter().map(|m| m.seconds).collect()).unwrap_or_default();
    names
        .into_iter()
        .zip(runs)
        .map(|(name, r)| {
            let pick = |f: fn(&Measure) -> f64| median(r.iter().map(f).collect());
            let median = Measure {
                seconds: pick(|m| m.seconds),
                user: pick(|m| m.user),
                sys: pick(|m| m.sys),
                peak_kib: pick(|m| m.peak_kib as f64) as u64,
            };
            let ratio = median_ratio(&r, &reference);
            Summary { name, median, ratio, runs: r }
        })
        .collect()
}

fn median_ratio(runs: &[Measure], reference: &[f64]) -> f64 {
    median(runs.iter().zip(reference).map(|(m, r)| m.seconds / r.max(0.001)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gnu_time_output() {
        let m = parse_time("some warning\n12.34 10.01 1.20 56789\n").unwrap();
        assert_eq!(m, Measure { seconds: 12.34, user: 10.01, sys: 1.2, peak_kib: 56789 });
        assert!(parse_time("Command exited with non-zero status 1\n").is_none());
    }

    #[test]
    fn medians_and_paired_ratios() {
        let m = |s| Measure { seconds: s, user: s / 2.0, sys: 0.1, peak_kib: 10 };
        let s = summarize(
            vec!["ours".into(), "peer".into()],
            vec![vec![m(1.0), m(2.0), m(1.0)], vec![m(3.0), m(4.0), m(3.5)]],
        );
        assert_eq!(s[0].median.seconds, 1.0);
        assert_eq!(s[0].ratio, 1.0);
        assert_eq!(s[1].median.seconds, 3.5);
        // Per round 3.0, 2.0, 3.5: the median ratio pairs each run with its own round.
        assert_eq!(s[1].ratio, 3.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
