//! `cargo xtask verify`: the CI gate. Formatting, architecture invariants, clippy, every test.

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

pub fn run(opts: &VerifyOpts) -> anyhow::Result<()> {
    let root = workspace_root()?;
    std::env::set_current_dir(&root).with_context(|| format!("entering `{}`", root.display()))?;
    check_verifier_independent()?;
    check_file_headers(&root)?;
    for step in steps(opts) {
        step.run()?;
    }
    eprintln!("xtask verify: all checks passed");
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

/// Every Rust source file opens with a `//!` line saying what it is for.
fn check_file_headers(root: &Path) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    let mut count = 0;
    for dir in ["builder", "verifier", "fixtures", "tests", "xtask", "fuzz"] {
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
    fn dependency_check_sees_the_builder_only_as_a_package() {
        assert_eq!(forbidden_dependency("reprodisk-verifier v0.1.0\nthiserror v2.0.0\n"), None);
        assert_eq!(
            forbidden_dependency("reprodisk-verifier v0.1.0\nreprodisk-builder v0.1.0 (/x)\n"),
            Some("reprodisk-builder v0.1.0 (/x)")
        );
    }
}
