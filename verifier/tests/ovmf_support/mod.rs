//! Test helpers for the EFI variable store tests of both crates: Debian's OVMF files and the
//! virt-fw-vars oracle (PyPI package virt-firmware). Included with `#[path]` by
//! `verifier/tests/efivars_read.rs` and `builder/tests/efivars.rs`; test code only, no format
//! code lives here.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// An OVMF file from the package cache (`.ci/fetch-packages`), else the host's `ovmf`.
pub fn ovmf(name: &str) -> Vec<u8> {
    let cache = std::env::var_os("REPRODISK_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"));
        base.join("reprodisk")
    });
    let candidates =
        [cache.join("root/usr/share/OVMF").join(name), PathBuf::from("/usr/share/OVMF").join(name)];
    for c in &candidates {
        if let Ok(b) = std::fs::read(c) {
            return b;
        }
    }
    panic!("{name} not found in {candidates:?}: run .ci/fetch-packages (Debian package ovmf)")
}

/// Runs virt-fw-vars and returns its stdout; a missing tool fails naming its package.
pub fn virt_fw_vars(args: &[&str]) -> String {
    let o = match Command::new("virt-fw-vars").args(args).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("`virt-fw-vars` is not installed: pip install virt-firmware==26.10 (bash .ci/setup)")
        }
        Err(e) => panic!("running virt-fw-vars: {e}"),
    };
    assert!(o.status.success(), "virt-fw-vars {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The variables virt-fw-vars writes with `--output-json`, as parsed JSON.
pub fn virt_fw_vars_json(file: &[u8]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("vars.fd"), dir.path().join("vars.json"));
    std::fs::write(&input, file).unwrap();
    virt_fw_vars(&["-i", input.to_str().unwrap(), "--output-json", output.to_str().unwrap()]);
    serde_json::from_slice(&std::fs::read(&output).unwrap()).unwrap()
}
