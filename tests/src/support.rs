//! Shared helpers of the integration harness: running tools, extracting partitions, hashing.

use anyhow::{Context, Result, bail};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `reprodisk` command line under test.
pub fn reprodisk() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_reprodisk-under-test"))
}

/// Fails with the Debian package to install when `tool` is not on PATH (or in /sbin).
pub fn require(tool: &str, package: &str) -> Result<PathBuf> {
    for dir in std::env::var("PATH").unwrap_or_default().split(':').chain(["/usr/sbin", "/sbin"]) {
        let p = Path::new(dir).join(tool);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!("`{tool}` is not installed: install the Debian package `{package}` (bash .ci/setup does)")
}

/// Runs a command and returns its output, whatever its exit status.
pub fn run(cmd: &mut Command) -> Result<Output> {
    cmd.output().with_context(|| format!("starting {cmd:?}"))
}

/// Runs a command that must succeed and returns its standard output as text.
pub fn run_ok(cmd: &mut Command) -> Result<String> {
    let out = run(cmd)?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("{cmd:?} printed non-UTF-8"))
}

pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path).with_context(|| format!("opening `{}`", path.display()))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Copies `len` bytes at `offset` of `image` into a new sparse file `out` (zero blocks become
/// holes), so tools without an offset option (e2fsck, fsck.fat) can check one partition.
pub fn extract(image: &Path, offset: u64, len: u64, out: &Path) -> Result<()> {
    let src = std::fs::File::open(image).with_context(|| format!("opening `{}`", image.display()))?;
    let dst = std::fs::File::create(out).with_context(|| format!("creating `{}`", out.display()))?;
    dst.set_len(len)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    while done < len {
        let n = buf.len().min((len - done) as usize);
        src.read_exact_at(&mut buf[..n], offset + done)?;
        if buf[..n].iter().any(|&b| b != 0) {
            dst.write_all_at(&buf[..n], done)?;
        }
        done += n as u64;
    }
    Ok(())
}

/// One partition as `sfdisk --json` reports it: start and size in 512-byte sectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SfPart {
    pub start: u64,
    pub size: u64,
    pub ty: String,
    pub uuid: Option<String>,
    pub name: Option<String>,
}

/// Reads the partition table with util-linux's sfdisk (an independent reader).
pub fn sfdisk(image: &Path) -> Result<(String, Vec<SfPart>)> {
    require("sfdisk", "fdisk")?;
    let text = run_ok(Command::new("sfdisk").arg("--json").arg(image))?;
    let v: serde_json::Value = serde_json::from_str(&text).context("parsing sfdisk --json")?;
    let table = &v["partitiontable"];
    let label = table["label"].as_str().unwrap_or_default().to_string();
    let parts = table["partitions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| SfPart {
                    start: p["start"].as_u64().unwrap_or(0),
                    size: p["size"].as_u64().unwrap_or(0),
                    ty: p["type"].as_str().unwrap_or_default().to_string(),
                    uuid: p["uuid"].as_str().map(str::to_string),
                    name: p["name"].as_str().map(str::to_string),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((label, parts))
}

/// `dumpe2fs -h` as a map of "Field name" -> value.
pub fn dumpe2fs(fs: &Path) -> Result<std::collections::BTreeMap<String, String>> {
    require("dumpe2fs", "e2fsprogs")?;
    let text = run_ok(Command::new("dumpe2fs").arg("-h").arg(fs))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}
