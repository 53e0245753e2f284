//! `cargo xtask verify`: the CI gate. Formatting, architecture invariants, clippy, every test,
//! the fixture specs (built twice, compared, verified) and the boot matrix, then one summary.
//!
//! The fixture and boot steps are trials of the integration harness (`tests/`), so they run
//! inside `cargo test` in parallel up to the core count; each writes a record that the
//! summary table (`summary.rs`) joins. System packages are checked first: a missing one fails
//! the gate naming the package.

use crate::cmd::Cmd;
use crate::flags::VerifyOpts;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// The steps of the gate, in order, as data so they can be listed and tested.
pub fn steps(opts: &VerifyOpts) -> Vec<Cmd> {
    let mut steps = vec![Cmd::cargo(&["fmt", "--all", "--", "--check"])];
    if opts.clippy {
        steps.push(Cmd::cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]));
    }
    steps.push(Cmd::cargo(&["test", "--workspace", "--locked", "--no-fail-fast"]).env("RUST_BACKTRACE", "1"));
    steps
}

/// Tools the tests run, and the Debian package of each.
pub const REQUIRED_TOOLS: [(&str, &str); 10] = [
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("qemu-img", "qemu-utils"),
    ("faketime", "faketime"),
    ("cpio", "cpio"),
    ("tar", "tar"),
    ("e2fsck", "e2fsprogs"),
    ("debugfs", "e2fsprogs"),
    ("sfdisk", "fdisk"),
    ("sgdisk", "gdisk"),
    ("fsck.fat", "dosfstools"),
];

/// Files the boot tests read, and where each comes from.
pub const REQUIRED_FILES: [(&str, &str); 2] = [
    ("/usr/share/OVMF/OVMF_CODE_4M.fd", "the Debian package `ovmf`"),
    ("/usr/share/OVMF/OVMF_VARS_4M.fd", "the Debian package `ovmf`"),
];

/// Every missing tool, file or package-cache entry, each with what to install.
pub fn missing_packages(path: &str, cache: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    for (tool, package) in REQUIRED_TOOLS {
        let found = path.split(':').chain(["/usr/sbin", "/sbin"]).any(|d| Path::new(d).join(tool).is_file());
        if !found {
            missing.push(format!("`{tool}`: install the Debian package `{package}`"));
        }
    }
    for (file, from) in REQUIRED_FILES {
        if !Path::new(file).is_file() {
            missing.push(format!("`{file}`: install {from}"));
        }
    }
    let root = cache.join("root");
    let kernel = std::fs::read_dir(root.join("boot"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with("vmlinuz-"));
    if !kernel {
        missing.push(format!(
            "no kernel in `{}/boot`: run .ci/fetch-packages (package linux-image-amd64)",
            root.display()
        ));
    }
    if !root.join("bin/busybox").is_file() {
        missing.push(format!(
            "no `{}/bin/busybox`: run .ci/fetch-packages (package busybox-static)",
            root.display()
        ));
    }
    missing
}

/// `$REPRODISK_CACHE`, else `${XDG_CACHE_HOME:-$HOME/.cache}/reprodisk` (as `.ci/fetch-packages`).
fn package_cache() -> PathBuf {
    if let Some(c) = std::env::var_os("REPRODISK_CACHE") {
        return c.into();
    }
    let base = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache")
    });
    base.join("reprodisk")
}

pub fn run(opts: &VerifyOpts) -> anyhow::Result<()> {
    let root = workspace_root()?;
    std::env::set_current_dir(&root).with_context(|| format!("entering `{}`", root.display()))?;
    let missing = missing_packages(&std::env::var("PATH").unwrap_or_default(), &package_cache());
    if !missing.is_empty() {
        bail!("system packages are missing (bash .ci/setup installs them all):\n  {}", missing.join("\n  "));
    }
    eprintln!("ok: every tool, OVMF and the package cache are there");
    check_verifier_independent()?;
    check_file_headers(&root)?;
    check_unsafe_confined(&root)?;
    let records = records_dir(&root);
    // Records of an earlier run must not stand in for this one's.
    let _ = std::fs::remove_dir_all(&records);
    let all = steps(opts);
    let (tests, checks) = all.split_last().context("the gate has no steps")?;
    for step in checks {
        step.run()?;
    }
    let tests_result = tests.run();
    let (fixtures, boots) = crate::summary::read_records(&records);
    let (table, rows_ok) = crate::summary::table(&fixtures, &boots);
    println!("\n{table}");
    tests_result?;
    if !rows_ok {
        bail!("the summary has failed rows (see above)");
    }
    eprintln!("xtask verify: all checks passed");
    Ok(())
}

/// Where the integration harness writes its records (`tests/src/gate.rs`).
fn records_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("tmp/reprodisk-gate")
}

/// `cargo xtask summary`: the table of the records the last run left.
pub fn summary() -> anyhow::Result<()> {
    let (fixtures, boots) = crate::summary::read_records(&records_dir(&workspace_root()?));
    let (table, ok) = crate::summary::table(&fixtures, &boots);
    println!("{table}");
    if !ok {
        bail!("the summary has failed rows");
    }
    Ok(())
}

fn workspace_root() -> anyhow::Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).context("xtask has no parent folder")
}

/// **Architecture invariant:** the verifier never depends on the builder, not even as a
/// dev-dependency, so that no writer code can be mirrored by a reader.
fn check_verifier_independent() -> anyhow::Result<()> {
    let tree =
        Cmd::cargo(&["tree", "-p", "reprodisk-verifier", "-e", "normal,build,dev", "--prefix", "none"])
            .output()?;
    if let Some(line) = forbidden_dependency(&tree) {
        bail!("the verifier depends on the builder (`{line}`): readers must not share code with writers");
    }
    eprintln!("ok: reprodisk-verifier does not depend on reprodisk-builder");
    Ok(())
}

fn forbidden_dependency(cargo_tree: &str) -> Option<&str> {
    cargo_tree.lines().find(|l| l.split_whitespace().next() == Some("reprodisk-builder"))
}

/// **Architecture invariant:** `seccomp/` holds the project's only `unsafe` code; the
/// builder, the verifier and the runner forbid it at their roots.
fn check_unsafe_confined(root: &Path) -> anyhow::Result<()> {
    for lib in ["builder/src/lib.rs", "verifier/src/lib.rs", "runner/src/lib.rs"] {
        let text = std::fs::read_to_string(root.join(lib)).with_context(|| format!("reading `{lib}`"))?;
        if !forbids_unsafe(&text) {
            bail!(
                "`{lib}` does not forbid unsafe code: only seccomp/ may hold it (`#![forbid(unsafe_code)]`)"
            );
        }
    }
    Ok(())
}

fn forbids_unsafe(crate_root: &str) -> bool {
    crate_root.lines().any(|l| l.trim() == "#![forbid(unsafe_code)]")
}

/// Every Rust source file opens with a `//!` line saying what it is for.
fn check_file_headers(root: &Path) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    let mut count = 0;
    for dir in ["builder", "verifier", "fixtures", "runner", "seccomp", "tests", "xtask", "fuzz"] {
        let mut stack = vec![root.join(dir)];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else { continue };
            for e in entries {
                let path = e?.path();
                if path.is_dir() {
                    if path.file_name().is_some_and(|n| n != "target" && n != "corpus" && n != "artifacts") {
                        stack.push(path);
                    }
                } else if path.extension().is_some_and(|x| x == "rs") {
                    count += 1;
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading `{}`", path.display()))?;
                    if !text.trim_start().starts_with("//!") {
                        missing.push(path.strip_prefix(root).unwrap_or(&path).display().to_string());
                    }
                }
            }
        }
    }
    if !missing.is_empty() {
        missing.sort();
        bail!(
            "these files do not open with a `//!` line saying what they are for:\n  {}",
            missing.join("\n  ")
        );
    }
    eprintln!("ok: all {count} Rust files open with a `//!` line");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_runs_fmt_clippy_and_tests() {
        let all: Vec<String> = steps(&VerifyOpts { clippy: true }).iter().map(|c| c.args.join(" ")).collect();
        assert_eq!(
            all,
            [
                "fmt --all -- --check",
                "clippy --workspace --all-targets --locked -- -D warnings",
                "test --workspace --locked --no-fail-fast"
            ]
        );
        assert_eq!(steps(&VerifyOpts { clippy: false }).len(), 2);
    }

    #[test]
    fn a_missing_package_is_named() {
        let empty = std::env::temp_dir().join(format!("xtask-no-cache-{}", std::process::id()));
        let missing = missing_packages("/nonexistent", &empty);
        assert!(
            missing
                .iter()
                .any(|m| m.contains("`qemu-system-x86_64`: install the Debian package `qemu-system-x86`")),
            "{missing:?}"
        );
        assert!(
            missing.iter().any(|m| m.contains("run .ci/fetch-packages (package linux-image-amd64)")),
            "{missing:?}"
        );
        assert!(
            missing.iter().any(|m| m.contains("`faketime`: install the Debian package `faketime`")),
            "{missing:?}"
        );
    }

    #[test]
    fn dependency_check_sees_the_builder_only_as_a_package() {
        assert_eq!(forbidden_dependency("reprodisk-verifier v0.1.0\nthiserror v2.0.0\n"), None);
        assert!(forbids_unsafe("//! x\n#![forbid(unsafe_code)]\nmod a;\n"));
        assert!(!forbids_unsafe("//! x\n// #![forbid(unsafe_code)]\n#![deny(unsafe_code)]\n"));
        assert_eq!(
            forbidden_dependency("reprodisk-verifier v0.1.0\nreprodisk-builder v0.1.0 (/x)\n"),
            Some("reprodisk-builder v0.1.0 (/x)")
        );
    }
}
