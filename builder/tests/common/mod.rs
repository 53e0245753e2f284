//! Helpers shared by the builder's integration tests: running the binary and reference tools.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_reprodisk");

/// Runs a reference tool; fails the test with the Debian package to install when it is missing.
pub fn tool(name: &str, package: &str, args: &[&str]) -> Output {
    match Command::new(name).args(args).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("`{name}` is not installed: install the Debian package `{package}` (bash .ci/setup)")
        }
        Err(e) => panic!("running {name}: {e}"),
    }
}

/// `sfdisk --json IMAGE`, parsed.
pub fn sfdisk_json(image: &Path) -> serde_json::Value {
    let o = tool("sfdisk", "fdisk", &["--json", image.to_str().unwrap()]);
    assert!(o.status.success(), "sfdisk --json {}: {}", image.display(), String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("sfdisk prints JSON")
}

/// Writes `text` as `name` in `dir` and returns its path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs `reprodisk ARGS` and returns its output.
pub fn reprodisk(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("CI", "true")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("the reprodisk binary runs")
}

/// Builds `spec` into `out` and returns the image path; panics with stderr on failure.
pub fn build(spec: &Path, out: &Path) -> PathBuf {
    let o = reprodisk(&["build", spec.to_str().unwrap(), "--out", out.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "build failed: {}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).expect("build --json prints the manifest");
    out.join(m["output"]["file"].as_str().unwrap())
}

pub fn sha256(path: &Path) -> String {
    let o = tool("sha256sum", "coreutils", &[path.to_str().unwrap()]);
    String::from_utf8_lossy(&o.stdout).split_whitespace().next().unwrap().to_string()
}

/// The package cache's root (`$REPRODISK_CACHE/root`, default `~/.cache/reprodisk/root`);
/// panics naming `.ci/fetch-packages` when `file` (relative to the root) is not there.
pub fn cache_root_with(file: &str) -> PathBuf {
    let cache = std::env::var_os("REPRODISK_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache"));
        base.join("reprodisk")
    });
    let root = cache.join("root");
    assert!(
        root.join(file).exists(),
        "`{}` is missing: run `.ci/fetch-packages` to fill the package cache",
        root.join(file).display()
    );
    root
}
