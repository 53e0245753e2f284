//! `cargo xtask bench --formats`: each output format written by reprodisk against `qemu-img convert` of the same raw image.
//!
//! Both sides are measured the same way: wall seconds and CPU seconds (user + system, every
//! thread), each including getting the output file to disk (reprodisk's conversion step ends
//! with the fsync of its commit, so `qemu-img`'s output is fsynced inside its timing too). On a
//! loaded machine the CPU figures and cores used (CPU / wall) are the ones to compare.

use super::json_string;
use crate::cmd::Cmd;
use crate::flags::BenchOpts;
use anyhow::{Context, bail};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Clock ticks per second of `/proc/<pid>/stat`'s times: Linux' USER_HZ, 100 on every
/// architecture Linux exposes to userland.
const USER_HZ: f64 = 100.0;

fn file_bytes(p: &Path) -> anyhow::Result<u64> {
    Ok(std::fs::metadata(p).with_context(|| format!("reading `{}`", p.display()))?.len())
}

/// Wall and CPU seconds of one measured step.
#[derive(Debug, Clone, Copy)]
struct Cost {
    wall: f64,
    cpu: f64,
}

/// User + system CPU seconds `pid` has used so far, all its threads (live and exited) counted.
fn cpu_of(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').context("no `)` in /proc/PID/stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let ticks =
        |i: usize| -> anyhow::Result<f64> { Ok(f.get(i - 3).context("short /proc/PID/stat")?.parse()?) };
    Ok((ticks(14)? + ticks(15)?) / USER_HZ)
}

/// Runs `reprodisk build` and measures its conversion step: from its progress line `writing
/// the ... file` to the next one, read as they arrive on stderr, with the process' CPU time
/// read from /proc at both lines. That is the format's own cost (conversion and fsync),
/// measured inside one run, so the ext4 part of the build stays out of it. Returns the whole
/// build's wall seconds and the step's cost.
fn timed_conversion(reprodisk: &Path, args: &[&str]) -> anyhow::Result<(f64, Cost)> {
    use std::io::BufRead;
    eprintln!("$ {} {}", reprodisk.display(), args.join(" "));
    let start = Instant::now();
    let mut child = std::process::Command::new(reprodisk)
        .args(args)
        .env("CI", "true")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("starting reprodisk")?;
    let pid = child.id();
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let (mut from, mut to) = (None, None);
    let mut log = String::new();
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line?;
        let now = start.elapsed().as_secs_f64();
        if line.contains("writing the") && line.contains(" file") {
            from = Some((now, cpu_of(pid)?));
        } else if from.is_some() && to.is_none() {
            to = Some((now, cpu_of(pid)?));
        }
        log.push_str(&line);
        log.push('\n');
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("reprodisk build failed: {log}");
    }
    let total = start.elapsed().as_secs_f64();
    let cost = match (from, to) {
        (Some(a), Some(b)) => Cost { wall: b.0 - a.0, cpu: b.1 - a.1 },
        _ => bail!("reprodisk printed no conversion progress lines: {log}"),
    };
    Ok((total, cost))
}

/// Runs `cmd` under GNU time (`%e %U %S`), then fsyncs `output` inside the measured wall time.
fn timed_qemu_img(cmd: &Cmd, output: &Path) -> anyhow::Result<Cost> {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        bail!("`/usr/bin/time` is missing: install the Debian package `time`");
    }
    let mut args = vec!["-f".to_string(), "%e %U %S".to_string(), cmd.program.clone()];
    args.extend(cmd.args.iter().cloned());
    eprintln!("$ {cmd}");
    let start = Instant::now();
    let out = std::process::Command::new(time).args(&args).output().context("starting /usr/bin/time")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("`{cmd}` failed: {stderr}");
    }
    std::fs::File::open(output)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("fsyncing `{}`", output.display()))?;
    let wall = start.elapsed().as_secs_f64();
    let line = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    let f: Vec<f64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    let [_, user, sys] = f[..] else { bail!("GNU time printed no figures for `{cmd}`: {stderr}") };
    Ok(Cost { wall, cpu: user + sys })
}

/// `cargo xtask bench --formats`: a 2 GiB disk holding one tree (default /usr/share, about
/// 700 MB) built in each format; reprodisk's cost of a format is its conversion step (see
/// [`timed_conversion`]), against `qemu-img convert` of the raw image (from the page cache)
/// to the same format. Sizes are the output files'.
pub(super) fn run_formats(opts: &BenchOpts, work: &Path, reprodisk: &Path) -> anyhow::Result<()> {
    let tree = opts.trees.first().cloned().unwrap_or_else(|| PathBuf::from("/usr/share"));
    let tree = std::fs::canonicalize(&tree).with_context(|| format!("no tree at `{}`", tree.display()))?;
    let build = |format: &str| -> anyhow::Result<((f64, Cost), PathBuf)> {
        let spec = work.join(format!("bench-{format}.json"));
        let text = format!(
            "{{\"partitionTableType\":\"none\",\"diskSize\":2048,\"installBootLoader\":false,\"format\":\"{format}\",\"system\":{{\"root\":{}}}}}",
            json_string(&tree.display().to_string())
        );
        std::fs::write(&spec, text)?;
        let out = work.join(format!("out-{format}"));
        let _ = std::fs::remove_dir_all(&out);
        let m = timed_conversion(
            reprodisk,
            &["build", &spec.display().to_string(), "--out", &out.display().to_string()],
        )?;
        let ext = match format {
            "raw" => "img",
            "vpc" => "vhd",
            "vdi" => "vdi",
            _ => "qcow2",
        };
        Ok((m, out.join(format!("nixos.{ext}"))))
    };
    // A first raw build warms the page cache for the tree; the second is the baseline.
    build("raw")?;
    let (raw_m, raw) = build("raw")?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut table = format!(
        "{cores} cores; raw build {:.2} s. Wall s and CPU s (user+sys) of the conversion, fsync included; cores = CPU / wall\n\
         format | reprodisk build s | ours wall s | ours CPU s | ours cores | qemu-img wall s | qemu-img CPU s | qemu-img cores | wall qemu-img / ours | CPU qemu-img / ours | size ours | size qemu-img | ours / qemu-img\n",
        raw_m.0
    );
    let mut json = Vec::new();
    for (format, qemu_fmt, extra) in [
        ("qcow2", "qcow2", None),
        ("qcow2-compressed", "qcow2", Some("-c")),
        ("vdi", "vdi", None),
        ("vpc", "vpc", None),
    ] {
        let ((ours_total, ours), img) = build(format)?;
        let theirs_path = work.join(format!("qemu-img.{format}"));
        let raw_s = raw.display().to_string();
        let theirs_s = theirs_path.display().to_string();
        let mut args = vec!["convert", "-f", "raw", "-O", qemu_fmt];
        args.extend(extra);
        args.extend([raw_s.as_str(), theirs_s.as_str()]);
        let theirs = timed_qemu_img(&Cmd::new("qemu-img", &args), &theirs_path)?;
        let (ob, tb) = (file_bytes(&img)?, file_bytes(&theirs_path)?);
        let _ = writeln!(
            table,
            "{format} | {ours_total:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}x | {:.2}x | {ob} | {tb} | {:.3}",
            ours.wall,
            ours.cpu,
            ours.cpu / ours.wall.max(0.001),
            theirs.wall,
            theirs.cpu,
            theirs.cpu / theirs.wall.max(0.001),
            theirs.wall / ours.wall.max(0.001),
            theirs.cpu / ours.cpu.max(0.001),
            ob as f64 / tb as f64
        );
        json.push(format!(
            "{{\"format\":\"{format}\",\"build_s\":{ours_total},\"raw_build_s\":{},\"conversion_s\":{},\"conversion_cpu_s\":{},\"qemu_img_s\":{},\"qemu_img_cpu_s\":{},\"bytes\":{ob},\"qemu_img_bytes\":{tb}}}",
            raw_m.0, ours.wall, ours.cpu, theirs.wall, theirs.cpu
        ));
        std::fs::remove_file(&theirs_path)?;
        let _ = std::fs::remove_dir_all(work.join(format!("out-{format}")));
    }
    let _ = std::fs::remove_dir_all(work.join("out-raw"));
    println!("{table}");
    std::fs::write(work.join("bench-formats.json"), format!("[{}]\n", json.join(",")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_of_reads_this_process() {
        let t = super::cpu_of(std::process::id()).unwrap();
        assert!((0.0..1e6).contains(&t), "{t}");
    }
}
