//! `cargo xtask bench --formats`: each output format written by reprodisk against `qemu-img convert` of the same raw image.

use super::{json_string, timed};
use crate::cmd::Cmd;
use crate::flags::BenchOpts;
use anyhow::{Context, bail};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn file_bytes(p: &Path) -> anyhow::Result<u64> {
    Ok(std::fs::metadata(p).with_context(|| format!("reading `{}`", p.display()))?.len())
}

/// Runs `reprodisk build` and times its conversion step: from its progress line `writing the
/// ... file` to the next one (`hashing the image`), read as they arrive on stderr. That is
/// the format's own cost, measured inside one run, so the noise of the ext4 part of the
/// build (large on a shared machine) stays out of it.
fn timed_conversion(reprodisk: &Path, args: &[&str]) -> anyhow::Result<(f64, f64)> {
    use std::io::BufRead;
    eprintln!("$ {} {}", reprodisk.display(), args.join(" "));
    let start = std::time::Instant::now();
    let mut child = std::process::Command::new(reprodisk)
        .args(args)
        .env("CI", "true")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("starting reprodisk")?;
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let (mut from, mut to) = (None, None);
    let mut log = String::new();
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line?;
        let now = start.elapsed().as_secs_f64();
        if line.contains("writing the") && line.contains(" file") {
            from = Some(now);
        } else if from.is_some() && to.is_none() {
            to = Some(now);
        }
        log.push_str(&line);
        log.push('\n');
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("reprodisk build failed: {log}");
    }
    let total = start.elapsed().as_secs_f64();
    let conv = match (from, to) {
        (Some(a), Some(b)) => b - a,
        _ => bail!("reprodisk printed no conversion progress lines: {log}"),
    };
    Ok((total, conv))
}

/// `cargo xtask bench --formats`: a 2 GiB disk holding one tree (default /usr/share, about
/// 700 MB) built in each format; reprodisk's cost of a format is its conversion step (see
/// [`timed_conversion`]), against `qemu-img convert` of the raw image (from the page cache)
/// to the same format. Sizes are the output files'.
pub(super) fn run_formats(opts: &BenchOpts, work: &Path, reprodisk: &Path) -> anyhow::Result<()> {
    let tree = opts.trees.first().cloned().unwrap_or_else(|| PathBuf::from("/usr/share"));
    let tree = std::fs::canonicalize(&tree).with_context(|| format!("no tree at `{}`", tree.display()))?;
    let build = |format: &str| -> anyhow::Result<((f64, f64), PathBuf)> {
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
    let mut table = format!(
        "format | reprodisk build s (raw build {:.2} s) | reprodisk conversion s | qemu-img convert s | qemu-img / ours | size ours | size qemu-img | ours / qemu-img\n",
        raw_m.0
    );
    let mut json = Vec::new();
    for (format, qemu_fmt, extra) in [
        ("qcow2", "qcow2", None),
        ("qcow2-compressed", "qcow2", Some("-c")),
        ("vdi", "vdi", None),
        ("vpc", "vpc", None),
    ] {
        let (ours, img) = build(format)?;
        let (ours_total, conv) = ours;
        let theirs_path = work.join(format!("qemu-img.{format}"));
        let raw_s = raw.display().to_string();
        let theirs_s = theirs_path.display().to_string();
        let mut args = vec!["convert", "-f", "raw", "-O", qemu_fmt];
        args.extend(extra);
        args.extend([raw_s.as_str(), theirs_s.as_str()]);
        let theirs = timed(&Cmd::new("qemu-img", &args))?;
        let (ob, tb) = (file_bytes(&img)?, file_bytes(&theirs_path)?);
        let _ = writeln!(
            table,
            "{format} | {ours_total:.2} | {conv:.2} | {:.2} | {:.2}x | {ob} | {tb} | {:.3}",
            theirs.seconds,
            theirs.seconds / conv.max(0.001),
            ob as f64 / tb as f64
        );
        json.push(format!(
            "{{\"format\":\"{format}\",\"build_s\":{},\"raw_build_s\":{},\"conversion_s\":{conv},\"qemu_img_s\":{},\"bytes\":{ob},\"qemu_img_bytes\":{tb}}}",
            ours_total, raw_m.0, theirs.seconds
        ));
        std::fs::remove_file(&theirs_path)?;
        let _ = std::fs::remove_dir_all(work.join(format!("out-{format}")));
    }
    let _ = std::fs::remove_dir_all(work.join("out-raw"));
    println!("{table}");
    std::fs::write(work.join("bench-formats.json"), format!("[{}]\n", json.join(",")))?;
    Ok(())
}
