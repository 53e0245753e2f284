//! `cargo xtask bench`: reprodisk against `mke2fs -d`, `cp -a`, fstool, `tar -x` + `mke2fs -d` and `openssl dgst`, in paired runs.
//!
//! Cases (see [`cases`]): /usr/share; /usr/share/man; 100,000 generated files of 1–8 KiB in
//! 1000 folders of 100 and in 100 folders of 1000 (fixed seed, [`tree`]); a rootfs tar, plain
//! and zstd, against `tar -x` + `mke2fs -d` and `zstd -dc`; a 64 GiB sparse `efi` disk with a
//! small tree against `openssl dgst -sha256` of the image it wrote. `--quick` runs the small
//! versions of the generated, tar and efi cases (for CI).
//!
//! Fairness: every contender reads the same tree from a warm page cache (an untimed reprodisk
//! build first, then a warm-up round) and writes to the same disk (`--work`). `mke2fs -d`
//! gets the image size reprodisk's `diskSize = "auto"` chose, and no `-N` unless that size
//! fails without it (then the table says so); `cp -a` copies to the same disk; fstool gets
//! the command line its README gives (`fstool create -t ext4 -o IMG DIR`), installed with
//! `cargo install --locked fstool` into `target/bench-tools/` (when that fails, the bench
//! says so and goes on without it). How the runs are paired and summarised: [`paired`].
//! Results: a table on stdout and `WORK/bench.json`.

mod audit;
mod formats;
mod paired;
pub mod tree;

use crate::cmd::Cmd;
use crate::flags::BenchOpts;
use anyhow::{Context, bail};
pub use paired::Measure;
use paired::{Contender, Summary};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Writes the generated tree used by `bench` (`cargo xtask fixtures`): `count` files of
/// 1–8 KiB, 100 to a folder.
pub fn generate_small_files(out: &Path, count: u32) -> anyhow::Result<PathBuf> {
    tree::generate(out, count, 100, tree::SEED)?;
    Ok(out.to_path_buf())
}

/// What a case builds from.
enum Source {
    Dir(PathBuf),
    /// A root tar, plain, and its zstd copy.
    Tar {
        plain: PathBuf,
        zstd: PathBuf,
    },
    /// A sparse `efi` disk of this many MiB holding the tree.
    SparseEfi {
        tree: PathBuf,
        mib: u64,
    },
}

struct Case {
    name: String,
    source: Source,
    /// The goal for this case, printed beside the figures.
    goal: &'static str,
}

struct Env<'a> {
    work: &'a Path,
    reprodisk: &'a Path,
    fstool: Result<PathBuf, String>,
    rounds: usize,
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
    let env =
        Env { work: &work, reprodisk: &reprodisk, fstool: fstool(opts.quick), rounds: opts.runs.max(1) };
    if let Err(why) = &env.fstool {
        eprintln!("fstool is left out: {why}");
    }
    let mut table = String::new();
    let mut json = Vec::new();
    for case in cases(opts, &work)? {
        eprintln!("== case {}", case.name);
        let (summaries, note) = run_one(&env, &case)?;
        table.push_str(&format_case(&case, &summaries, &note));
        json.push(case_json(&case, &summaries, &note));
    }
    if let Err(why) = &env.fstool {
        let _ = writeln!(table, "fstool: not run ({why})");
    }
    println!("{table}");
    let out = work.join("bench.json");
    std::fs::write(&out, format!("[\n{}\n]\n", json.join(",\n")))
        .with_context(|| format!("writing `{}`", out.display()))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// The cases to run, with their inputs generated (and cached under `work`) as needed.
fn cases(opts: &BenchOpts, work: &Path) -> anyhow::Result<Vec<Case>> {
    let mut cases = Vec::new();
    for t in &opts.trees {
        let t = std::fs::canonicalize(t).with_context(|| format!("no tree at `{}`", t.display()))?;
        cases.push(Case { name: t.display().to_string(), source: Source::Dir(t), goal: "" });
    }
    if !opts.trees.is_empty() {
        return Ok(cases);
    }
    let files = if opts.quick { opts.files.min(2000) } else { opts.files };
    let by100 = work.join(format!("gen-{files}-by100"));
    tree::cached(&by100, files, 100)?;
    if !opts.quick {
        for (t, goal) in [
            ("/usr/share", "mke2fs -d >= 10x, cp -a >= 1x"),
            ("/usr/share/man", "mke2fs -d >= 10x, cp -a >= 1x"),
        ] {
            cases.push(Case { name: t.to_string(), source: Source::Dir(t.into()), goal });
        }
    }
    cases.push(Case {
        name: format!("{files} files, {} dirs of 100", files.div_ceil(100)),
        source: Source::Dir(by100.clone()),
        goal: "mke2fs -d >= 3x, fstool > 1x",
    });
    if !opts.quick {
        let by1000 = work.join(format!("gen-{files}-by1000"));
        tree::cached(&by1000, files, 1000)?;
        cases.push(Case {
            name: format!("{files} files, {} dirs of 1000", files.div_ceil(1000)),
            source: Source::Dir(by1000),
            goal: "fstool > 1x",
        });
    }
    let (tar_from, tar_name) = match &opts.rootfs_tar {
        Some(t) => (None, t.clone()),
        None if opts.quick => (Some(by100.clone()), work.join("rootfs-quick.tar")),
        None => (Some(PathBuf::from("/usr/share")), work.join("rootfs-usr-share.tar")),
    };
    if let Some(from) = tar_from
        && !tar_name.exists()
    {
        let tmp = tar_name.with_extension("tar.part");
        let (t, f) = (tmp.display().to_string(), from.display().to_string());
        Cmd::new("tar", &["--sort=name", "-cf", &t, "-C", &f, "."]).run()?;
        std::fs::rename(&tmp, &tar_name)?;
    }
    let zstd = PathBuf::from(format!("{}.zst", tar_name.display()));
    if !zstd.exists() {
        let (t, z) = (tar_name.display().to_string(), zstd.display().to_string());
        Cmd::new("zstd", &["-q", "-f", "-3", &t, "-o", &z]).run()?;
    }
    cases.push(Case {
        name: format!("rootfs tar {}", tar_name.display()),
        source: Source::Tar { plain: tar_name, zstd },
        goal: "tar -x + mke2fs -d >= 8x; zstd adds <= zstd -dc",
    });
    let small = work.join("gen-1000-by100");
    tree::cached(&small, 1000, 100)?;
    let mib = if opts.quick { 4096 } else { 65536 };
    cases.push(Case {
        name: format!("sparse efi {} GiB", mib / 1024),
        source: Source::SparseEfi { tree: small, mib },
        goal: "openssl dgst -sha256 of the image: within 1.1x",
    });
    Ok(cases)
}

/// fstool from the cache folder, installed there first when missing (not in `--quick`).
fn fstool(quick: bool) -> Result<PathBuf, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-tools/fstool");
    let bin = root.join("bin/fstool");
    if bin.exists() {
        return Ok(bin);
    }
    if quick {
        return Err(format!("not installed in `{}` and --quick does not install it", root.display()));
    }
    let r = root.display().to_string();
    match Cmd::cargo(&["install", "--locked", "fstool", "--root", &r]).run() {
        Ok(()) if bin.exists() => Ok(bin),
        Ok(()) => Err(format!("`cargo install` put no `{}` there", bin.display())),
        Err(e) => Err(format!("`cargo install --locked fstool` failed: {e:#}")),
    }
}

fn json_spec(body: &str) -> String {
    format!("{{\"diskSize\":\"auto\",\"additionalSpace\":\"0\",\"installBootLoader\":false,{body}}}")
}

/// A reprodisk contender building `spec` into `out`.
fn reprodisk_contender(env: &Env, name: &str, spec: &Path, out: &Path) -> Contender {
    let out_owned = out.to_path_buf();
    Contender::new(
        name,
        Cmd::new(&env.reprodisk.display().to_string(), &["build", &s(spec), "--out", &s(out)])
            .env("CI", "true"),
    )
    .before(move || remove(&out_owned))
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn remove(p: &Path) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            std::fs::remove_dir_all(p).with_context(|| format!("removing `{}`", p.display()))
        }
        Ok(_) => std::fs::remove_file(p).with_context(|| format!("removing `{}`", p.display())),
        Err(_) => Ok(()),
    }
}

/// An untimed build of `spec` into `out` (warms the page cache), checked with e2fsck when the
/// image is a bare filesystem; returns the image path and size.
fn sizing_build(env: &Env, spec: &Path, out: &Path, bare: bool) -> anyhow::Result<(PathBuf, u64)> {
    remove(out)?;
    let build = Cmd::new(&s(env.reprodisk), &["build", &s(spec), "--out", &s(out)]).env("CI", "true");
    eprintln!("$ {build}");
    build.output()?;
    let img = out.join("nixos.img");
    if bare {
        Cmd::new("e2fsck", &["-fn", &s(&img)]).output().context("e2fsck of reprodisk's image")?;
    }
    let bytes = std::fs::metadata(&img).with_context(|| format!("no image at `{}`", img.display()))?.len();
    Ok((img, bytes))
}

/// `mke2fs -d DIR IMG SIZE` arguments at reprodisk's size; `-N` only if that size needs it.
fn mke2fs_args(tree: &Path, img: &Path, bytes: u64, note: &mut String) -> anyhow::Result<Vec<String>> {
    let kib = format!("{}k", bytes / 1024);
    let base = |extra: &[String]| -> Vec<String> {
        let mut a: Vec<String> =
            ["-q", "-F", "-t", "ext4", "-b", "4096"].iter().map(|x| x.to_string()).collect();
        a.extend(extra.iter().cloned());
        a.extend(["-d".into(), s(tree), s(img), kib.clone()]);
        a
    };
    let plain = base(&[]);
    let try_args = |a: &[String]| {
        let r = std::process::Command::new("mke2fs").args(a).output();
        let _ = std::fs::remove_file(img);
        r
    };
    let o = try_args(&plain).context("running mke2fs (Debian package e2fsprogs)")?;
    if o.status.success() {
        return Ok(plain);
    }
    let entries = count_entries(tree)?;
    let with_n = base(&["-N".into(), (entries + entries / 10 + 1024).to_string()]);
    let o2 = try_args(&with_n)?;
    if !o2.status.success() {
        bail!(
            "mke2fs -d fails at reprodisk's size {kib} even with -N: {}",
            String::from_utf8_lossy(&o2.stderr)
        );
    }
    let _ = write!(note, "mke2fs needs -N at reprodisk's size ({kib}: its default inode ratio runs out); ");
    Ok(with_n)
}

/// `du -sb` of a tree (`audit.rs` sizes its disk with it).
fn du_bytes(tree: &Path) -> anyhow::Result<u64> {
    let out = Cmd::new("du", &["-sb", &tree.display().to_string()]).output()?;
    out.split_whitespace().next().and_then(|n| n.parse().ok()).context("`du -sb` printed no size")
}

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

/// Runs one case; returns the summaries (reprodisk first) and notes.
fn run_one(env: &Env, case: &Case) -> anyhow::Result<(Vec<Summary>, String)> {
    let w = env.work;
    let mut note = String::new();
    let spec = w.join("bench-spec.json");
    let out = w.join("out-reprodisk");
    let mut contenders = Vec::new();
    match &case.source {
        Source::Dir(tree) => {
            let tree =
                std::fs::canonicalize(tree).with_context(|| format!("no tree at `{}`", tree.display()))?;
            std::fs::write(
                &spec,
                json_spec(&format!(
                    "\"partitionTableType\":\"none\",\"system\":{{\"root\":{}}}",
                    json_string(&s(&tree))
                )),
            )?;
            let (_, bytes) = sizing_build(env, &spec, &out, true)?;
            contenders.push(reprodisk_contender(env, "reprodisk", &spec, &out));
            let img = w.join("peer.img");
            let args = mke2fs_args(&tree, &img, bytes, &mut note)?;
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let img2 = img.clone();
            contenders
                .push(Contender::new("mke2fs -d", Cmd::new("mke2fs", &args)).before(move || remove(&img2)));
            let copy = w.join("cp-copy");
            let copy2 = copy.clone();
            contenders.push(
                Contender::new("cp -a", Cmd::new("cp", &["-a", &s(&tree), &s(&copy)]))
                    .before(move || remove(&copy2)),
            );
            if let Ok(fstool) = &env.fstool {
                let img3 = img.clone();
                contenders.push(
                    Contender::new(
                        "fstool",
                        Cmd::new(&s(fstool), &["create", "-t", "ext4", "-o", &s(&img), &s(&tree)]),
                    )
                    .before(move || remove(&img3)),
                );
            }
        }
        Source::Tar { plain, zstd } => {
            let spec_zst = w.join("bench-spec-zst.json");
            let out_zst = w.join("out-reprodisk-zst");
            let body = |t: &Path| {
                json_spec(&format!(
                    "\"partitionTableType\":\"none\",\"system\":{{\"root\":{}}}",
                    json_string(&s(t))
                ))
            };
            std::fs::write(&spec, body(plain))?;
            std::fs::write(&spec_zst, body(zstd))?;
            let (_, bytes) = sizing_build(env, &spec, &out, true)?;
            sizing_build(env, &spec_zst, &out_zst, true)?;
            // mke2fs's size: reprodisk's, checked on an unpacked copy (-N only if needed).
            let x = w.join("tar-x");
            remove(&x)?;
            std::fs::create_dir_all(&x)?;
            Cmd::new("tar", &["-xf", &s(plain), "-C", &s(&x)]).run()?;
            let img = w.join("peer.img");
            let args = mke2fs_args(&x, &img, bytes, &mut note)?;
            let script = format!(
                "mkdir {} && tar -xf {} -C {} && mke2fs {}",
                sh(&x),
                sh(plain),
                sh(&x),
                args.iter().map(|a| sh(Path::new(a))).collect::<Vec<_>>().join(" ")
            );
            contenders.push(reprodisk_contender(env, "reprodisk (tar)", &spec, &out));
            let (x2, img2) = (x.clone(), img.clone());
            contenders.push(Contender::shell("tar -x + mke2fs -d", &script).before(move || {
                remove(&x2)?;
                remove(&img2)
            }));
            contenders.push(reprodisk_contender(env, "reprodisk (tar.zst)", &spec_zst, &out_zst));
            contenders.push(Contender::shell("zstd -dc", &format!("zstd -dc {} > /dev/null", sh(zstd))));
        }
        Source::SparseEfi { tree, mib } => {
            std::fs::write(
                &spec,
                format!(
                    "{{\"partitionTableType\":\"efi\",\"diskSize\":{mib},\"installBootLoader\":false,\"system\":{{\"root\":{}}}}}",
                    json_string(&s(tree))
                ),
            )?;
            let (img, _) = sizing_build(env, &spec, &out, false)?;
            contenders.push(reprodisk_contender(env, "reprodisk", &spec, &out));
            // Runs right after reprodisk in each round, on the image that run wrote.
            contenders.push(Contender::new(
                "openssl dgst -sha256",
                Cmd::new("openssl", &["dgst", "-sha256", &s(&img)]),
            ));
        }
    }
    let summaries = paired::run_case(&contenders, env.rounds, &mut |_| Ok(()))?;
    for p in [w.join("peer.img"), w.join("cp-copy"), w.join("tar-x"), out, w.join("out-reprodisk-zst")] {
        remove(&p)?;
    }
    if let Source::Tar { .. } = case.source {
        let m = |name: &str| summaries.iter().find(|x| x.name == name).map(|x| x.median.seconds);
        if let (Some(a), Some(b), Some(z)) = (m("reprodisk (tar)"), m("reprodisk (tar.zst)"), m("zstd -dc")) {
            let _ = write!(note, "zstd adds {:.2} s to reprodisk, zstd -dc takes {:.2} s; ", b - a, z);
        }
    }
    Ok((summaries, note))
}

/// `p` quoted for `sh`.
fn sh(p: &Path) -> String {
    format!("'{}'", s(p).replace('\'', "'\\''"))
}

fn format_case(case: &Case, rows: &[Summary], note: &str) -> String {
    let mut t = format!("\n{} (goal: {})\n", case.name, if case.goal.is_empty() { "-" } else { case.goal });
    let _ = writeln!(
        t,
        "{:<22} {:>8} {:>8} {:>8} {:>9} {:>12}",
        "contender", "wall s", "user s", "sys s", "peak MiB", "÷ reprodisk"
    );
    for r in rows {
        let m = &r.median;
        let _ = writeln!(
            t,
            "{:<22} {:>8.2} {:>8.2} {:>8.2} {:>9.1} {:>11.2}x",
            r.name,
            m.seconds,
            m.user,
            m.sys,
            m.peak_kib as f64 / 1024.0,
            r.ratio
        );
    }
    if !note.is_empty() {
        let _ = writeln!(t, "note: {}", note.trim_end_matches("; "));
    }
    t
}

fn case_json(case: &Case, rows: &[Summary], note: &str) -> String {
    let m = |x: &Measure| {
        format!(
            "{{\"wall_s\":{},\"user_s\":{},\"sys_s\":{},\"peak_kib\":{}}}",
            x.seconds, x.user, x.sys, x.peak_kib
        )
    };
    let contenders: Vec<String> = rows
        .iter()
        .map(|r| {
            let runs: Vec<String> = r.runs.iter().map(m).collect();
            format!(
                "{{\"name\":{},\"median\":{},\"wall_ratio_to_reprodisk\":{},\"runs\":[{}]}}",
                json_string(&r.name),
                m(&r.median),
                r.ratio,
                runs.join(",")
            )
        })
        .collect();
    format!(
        "{{\"case\":{},\"goal\":{},\"note\":{},\"contenders\":[{}]}}",
        json_string(&case.name),
        json_string(case.goal),
        json_string(note.trim_end_matches("; ")),
        contenders.join(",")
    )
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
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(sh(Path::new("/a b/it's")), "'/a b/it'\\''s'");
    }
}
