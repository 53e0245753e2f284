//! Every option of every xtask command, parsed by hand to keep xtask's dependencies few.

use std::path::PathBuf;

pub const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  verify            the CI gate: system packages, formatting, architecture invariants, clippy,
                    every test, each fixture spec built twice and verified, the boot matrix;
                    then a summary table (REPRODISK_BOOT_TIMEOUT=S per boot, REPRODISK_ACCEL=tcg|kvm)
      --no-clippy       skip clippy (faster local runs; CI never skips it)
  summary           print the summary table of the last `verify` (or boot trials) again
  bench             paired runs of reprodisk against `mke2fs -d`, `cp -a`, fstool, `tar -x` +
                    `mke2fs -d` and `openssl dgst`; a table and WORK/bench.json
      --quick           the small cases only (CI)
      --runs N          counted rounds after the warm-up (default 3)
      --tree DIR        benchmark only this tree (repeatable)
      --files N         size of the generated small-file trees (default 100000)
      --rootfs-tar F    the rootfs tar case's archive (default: a tar of /usr/share)
      --work DIR        scratch folder for images and copies (default: target/bench)
      --audit           time `reprodisk audit` of an efi image of the tree (default /usr/share)
                        against 1.2 x (builds / cores) x one build, a build and an audit per
                        round (--runs), medians; writes WORK/bench-audit.json
  fixtures          write the generated small-file tree used by `bench`
      --out DIR         where to write it (required)
      --files N         how many files (default 100000)
";

#[derive(Debug, PartialEq, Eq)]
pub enum Flags {
    Help,
    Verify(VerifyOpts),
    Summary,
    Bench(BenchOpts),
    Fixtures(FixturesOpts),
}

#[derive(Debug, PartialEq, Eq, Default)]
pub struct VerifyOpts {
    pub clippy: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub struct BenchOpts {
    pub trees: Vec<PathBuf>,
    pub files: u32,
    pub work: PathBuf,
    /// `--formats`: the output-format case (each format vs `qemu-img convert`) instead.
    pub formats: bool,
    /// `--quick`: the small cases only.
    pub quick: bool,
    /// `--runs N`: counted rounds after the warm-up.
    pub runs: usize,
    /// `--rootfs-tar FILE`.
    pub rootfs_tar: Option<PathBuf>,
    /// `--audit`: `reprodisk audit` of an efi image against 1.2 x (builds / cores) x one build.
    pub audit: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub struct FixturesOpts {
    pub out: PathBuf,
    pub count: u32,
}

pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Flags, String> {
    let Some(cmd) = args.next() else { return Ok(Flags::Help) };
    let rest: Vec<String> = args.collect();
    let mut it = rest.iter();
    let value = |it: &mut std::slice::Iter<String>, flag: &str| {
        it.next().cloned().ok_or_else(|| format!("`{flag}` needs a value"))
    };
    let number = |s: String, flag: &str| {
        s.parse::<u32>().map_err(|_| format!("`{flag}` needs a whole number, got `{s}`"))
    };
    match cmd.as_str() {
        "-h" | "--help" | "help" => Ok(Flags::Help),
        "verify" => {
            let mut opts = VerifyOpts { clippy: true };
            for a in it {
                match a.as_str() {
                    "--no-clippy" => opts.clippy = false,
                    other => return Err(format!("unknown option `{other}` for `verify`")),
                }
            }
            Ok(Flags::Verify(opts))
        }
        "summary" if rest.is_empty() => Ok(Flags::Summary),
        "summary" => Err(format!("`summary` takes no options, got `{}`", rest[0])),
        "bench" => {
            let mut opts = BenchOpts {
                trees: Vec::new(),
                files: 100_000,
                work: PathBuf::from("target/bench"),
                formats: false,
                quick: false,
                runs: 3,
                rootfs_tar: None,
                audit: false,
            };
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--tree" => opts.trees.push(value(&mut it, a)?.into()),
                    "--files" => opts.files = number(value(&mut it, a)?, a)?,
                    "--work" => opts.work = value(&mut it, a)?.into(),
                    "--formats" => opts.formats = true,
                    "--quick" => opts.quick = true,
                    "--runs" => opts.runs = number(value(&mut it, a)?, a)? as usize,
                    "--rootfs-tar" => opts.rootfs_tar = Some(value(&mut it, a)?.into()),
                    "--audit" => opts.audit = true,
                    other => return Err(format!("unknown option `{other}` for `bench`")),
                }
            }
            Ok(Flags::Bench(opts))
        }
        "fixtures" => {
            let mut out = None;
            let mut count = 100_000;
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--out" => out = Some(PathBuf::from(value(&mut it, a)?)),
                    "--files" => count = number(value(&mut it, a)?, a)?,
                    other => return Err(format!("unknown option `{other}` for `fixtures`")),
                }
            }
            let out = out.ok_or("`fixtures` needs `--out DIR`")?;
            Ok(Flags::Fixtures(FixturesOpts { out, count }))
        }
        other => Err(format!("unknown command `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Flags, String> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_commands() {
        assert_eq!(p(&[]), Ok(Flags::Help));
        assert_eq!(p(&["verify"]), Ok(Flags::Verify(VerifyOpts { clippy: true })));
        assert_eq!(p(&["verify", "--no-clippy"]), Ok(Flags::Verify(VerifyOpts { clippy: false })));
        assert_eq!(p(&["summary"]), Ok(Flags::Summary));
        assert_eq!(
            p(&["bench", "--tree", "/x", "--files", "10"]),
            Ok(Flags::Bench(BenchOpts {
                trees: vec!["/x".into()],
                files: 10,
                work: "target/bench".into(),
                formats: false,
                quick: false,
                runs: 3,
                rootfs_tar: None,
                audit: false,
            }))
        );
        assert!(matches!(p(&["bench", "--audit"]), Ok(Flags::Bench(BenchOpts { audit: true, .. }))));
        assert_eq!(
            p(&["fixtures", "--out", "o"]),
            Ok(Flags::Fixtures(FixturesOpts { out: "o".into(), count: 100_000 }))
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(p(&["frobnicate"]), Err("unknown command `frobnicate`".into()));
        assert_eq!(
            p(&["bench", "--files", "many"]),
            Err("`--files` needs a whole number, got `many`".into())
        );
        assert_eq!(p(&["bench", "--tree"]), Err("`--tree` needs a value".into()));
        assert_eq!(p(&["fixtures"]), Err("`fixtures` needs `--out DIR`".into()));
        assert_eq!(p(&["verify", "--fast"]), Err("unknown option `--fast` for `verify`".into()));
    }
}
