//! `cargo xtask bench`: reprodisk's ext4 writer against `mke2fs -d` and `cp -a`, wall time and peak memory.
//!
//! Each contender runs under GNU time (`/usr/bin/time -f "%e %M"`), which reports elapsed
//! seconds and the peak resident set size of the process. Every contender reads the same tree
//! from a warm page cache (a first `cp -a` warms it), so the figures compare CPU work, not
//! disk reads. The results are printed as a table and written to `WORK/bench.json`.

mod audit;
mod formats;

use crate::cmd::Cmd;
use crate::flags::BenchOpts;
use anyhow::{Context, bail};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug)]
struct Measure {
    seconds: f64,
    peak_kib: u64,
}

/// Parses the last line GNU time wrote with `-f "%e %M"` ("12.34 56789").
fn parse_time(stderr: &str) -> Option<Measure> {
    let line = stderr.lines().rev().find(|l| !l.trim().is_empty())?;
    let mut it = line.split_whitespace();
    let seconds = it.next()?.parse().ok()?;
    let peak_kib = it.next()?.parse().ok()?;
    Some(Measure { seconds, peak_kib })
}

fn timed(cmd: &Cmd) -> anyhow::Result<Measure> {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        bail!("`/usr/bin/time` is missing: install the Debian package `time`");
    }
    let mut args = vec!["-f".to_string(), "%e %M".to_string(), cmd.program.clone()];
    args.extend(cmd.args.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    eprintln!("$ {cmd}");
    let out = std::process::Command::new(time).args(&args).output().context("starting /usr/bin/time")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("`{cmd}` failed: {stderr}");
    }
    parse_time(&stderr).with_context(|| format!("GNU time printed no figures for `{cmd}`: {stderr}"))
}

/// Writes `count` small files with deterministic sizes (0..8 KiB) and contents, 1000 per folder.
pub fn generate_small_files(out: &Path, count: u32) -> anyhow::Result<PathBuf> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // xorshift64*: deterministic, dependency-free, good enough for sizes and bytes.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    for i in 0..count {
        let dir = out.join(format!("d{:03}", i / 1000));
        if i % 1000 == 0 {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating `{}`", dir.display()))?;
        }
        let len = (next() % 8192) as usize;
        let byte = (next() % 251) as u8;
        let data: Vec<u8> = (0..len).map(|k| byte.wrapping_add(k as u8)).collect();
        let path = dir.join(format!("f{i:06}.txt"));
        std::fs::write(&path, data).with_context(|| format!("writing `{}`", path.display()))?;
    }
    Ok(out.to_path_buf())
}

/// Files and folders below `tree` (not following links).
fn count_entries(tree: &Path) -> anyhow::Result<u64> {
    let mut n = 0;
    let mut stack = vec![tree.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("listing `{}`", d.display()))? {
            let e = e?;
            n += 1;
            if e.file_type()?.is_dir() {
                stack.push(e.path());
            }
        }
    }
    Ok(n)
}

fn du_bytes(tree: &Path) -> anyhow::Result<u64> {
    let out = Cmd::new("du", &["-sb", &tree.display().to_string()]).output()?;
    out.split_whitespace().next().and_then(|n| n.parse().ok()).context("`du -sb` printed no size")
}

pub fn run(opts: &BenchOpts) -> anyhow::Result<()> {
    std::fs::create_dir_all(&opts.work).with_context(|| format!("creating `{}`", opts.work.display()))?;
    let work = std::fs::canonicalize(&opts.work)?;
    Cmd::cargo(&["build", "--release", "--locked", "-p", "reprodisk-builder"]).run()?;
    let reprodisk = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/reprodisk");
    if opts.formats {
        return formats::run_formats(opts, &work, &reprodisk);
    }
    if opts.audit {
        return audit::run_audit(opts, &work, &reprodisk);
    }

    let mut trees = opts.trees.clone();
    if trees.is_empty() {
        trees.push(PathBuf::from("/usr/share"));
        let small = work.join("small-files");
        if !small.exists() {
            eprintln!("generating {} small files in {}", opts.files, small.display());
            generate_small_files(&small, opts.files)?;
        }
        trees.push(small);
    }

    let mut table = String::from(
        "tree | bytes | cp -a s | mke2fs -d s | reprodisk s | vs mke2fs | vs cp | peak MiB (mke2fs / reprodisk)\n",
    );
    let mut json = Vec::new();
    for tree in &trees {
        let tree = std::fs::canonicalize(tree).with_context(|| format!("no tree at `{}`", tree.display()))?;
        let bytes = du_bytes(&tree)?;
        let copy = work.join("copy");
        let _ = std::fs::remove_dir_all(&copy);
        // The first copy warms the page cache; the second is the one measured.
        Cmd::new("cp", &["-a", &tree.display().to_string(), &copy.display().to_string()]).run()?;
        std::fs::remove_dir_all(&copy)?;
        let cp = timed(&Cmd::new("cp", &["-a", &tree.display().to_string(), &copy.display().to_string()]))?;
        std::fs::remove_dir_all(&copy)?;

        let img = work.join("mke2fs.img");
        let _ = std::fs::remove_file(&img);
        let size_mib = (bytes * 2 / (1 << 20) + 256).to_string();
        // mke2fs's default of one inode per 16 KiB is too few for trees of small files.
        let inodes = (count_entries(&tree)? * 2 + 1024).to_string();
        let mke2fs = timed(&Cmd::new(
            "mke2fs",
            &[
                "-q",
                "-F",
                "-t",
                "ext4",
                "-b",
                "4096",
                "-N",
                &inodes,
                "-d",
                &tree.display().to_string(),
                &img.display().to_string(),
                &format!("{size_mib}M"),
            ],
        ))?;
        std::fs::remove_file(&img)?;

        let spec = work.join("bench-spec.json");
        let spec_json = format!(
            "{{\"partitionTableType\":\"none\",\"diskSize\":\"auto\",\"additionalSpace\":\"0\",\"installBootLoader\":false,\"system\":{{\"root\":{}}}}}",
            json_string(&tree.display().to_string())
        );
        std::fs::write(&spec, spec_json)?;
        let out = work.join("reprodisk-out");
        let _ = std::fs::remove_dir_all(&out);
        let ours = timed(&Cmd::new(
            &reprodisk.display().to_string(),
            &["build", &spec.display().to_string(), "--out", &out.display().to_string()],
        ))?;
        let fsck = Cmd::new("e2fsck", &["-fn", &out.join("nixos.img").display().to_string()]).output();
        std::fs::remove_dir_all(&out)?;
        fsck.context("e2fsck on the benchmarked image")?;

        let _ = writeln!(
            table,
            "{} | {} | {:.2} | {:.2} | {:.2} | {:.1}x faster | {:.2}x cp | {:.0} / {:.0}",
            tree.display(),
            bytes,
            cp.seconds,
            mke2fs.seconds,
            ours.seconds,
            mke2fs.seconds / ours.seconds.max(0.001),
            ours.seconds / cp.seconds.max(0.001),
            mke2fs.peak_kib as f64 / 1024.0,
            ours.peak_kib as f64 / 1024.0
        );
        json.push(format!(
            "{{\"tree\":{},\"bytes\":{bytes},\"cp_s\":{},\"mke2fs_s\":{},\"reprodisk_s\":{},\"mke2fs_peak_kib\":{},\"reprodisk_peak_kib\":{}}}",
            json_string(&tree.display().to_string()),
            cp.seconds,
            mke2fs.seconds,
            ours.seconds,
            mke2fs.peak_kib,
            ours.peak_kib
        ));
    }
    println!("{table}");
    std::fs::write(work.join("bench.json"), format!("[{}]\n", json.join(",")))?;
    Ok(())
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gnu_time_output() {
        let m = parse_time("some warning\n12.34 56789\n").unwrap();
        assert_eq!((m.seconds, m.peak_kib), (12.34, 56789));
        assert!(parse_time("Command exited with non-zero status 1\n").is_none());
    }

    #[test]
    fn generated_tree_is_deterministic() {
        let a = tempfile_dir("a");
        let b = tempfile_dir("b");
        generate_small_files(&a, 1500).unwrap();
        generate_small_files(&b, 1500).unwrap();
        for rel in ["d000/f000000.txt", "d001/f001499.txt"] {
            assert_eq!(std::fs::read(a.join(rel)).unwrap(), std::fs::read(b.join(rel)).unwrap());
        }
        assert_eq!(std::fs::read_dir(a.join("d001")).unwrap().count(), 500);
        std::fs::remove_dir_all(&a).unwrap();
        std::fs::remove_dir_all(&b).unwrap();
    }

    fn tempfile_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("xtask-bench-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
