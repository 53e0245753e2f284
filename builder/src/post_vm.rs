//! `postVM`: the user's shell code, run once the image is final, as the seed runs it.
//!
//! The seed runs `postVM` in its Nix builder (bash with `set -eu -o pipefail`) after the
//! image is converted and `nix-support/hydra-build-products` is written, with `$out` the
//! output folder and `$diskImage` the image in it. reprodisk does the same, in a fixed
//! environment so the script sees no more host state than Nix would give it: `PATH` from
//! the caller (the tools the script calls), `out`, `diskImage`, `SOURCE_DATE_EPOCH`,
//! `TZ=UTC0`, `LC_ALL=C`, `HOME=/homeless-shelter` (as Nix), and `TMPDIR` plus the working
//! folder set to a fresh temporary folder. A non-zero exit fails the build with that code.

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum PostVmError {
    #[error(
        "postVM exited with status {code}: the build fails and its output is removed (fix the script; it ran with $out = `{out}` and $diskImage = `{disk_image}`)"
    )]
    Failed { code: i32, out: PathBuf, disk_image: PathBuf },
    #[error("postVM was killed by signal {signal}: the build fails and its output is removed")]
    Killed { signal: i32 },
    #[error("running postVM with bash: {0} (install bash)")]
    Spawn(std::io::Error),
}

impl PostVmError {
    /// The exit code the build exits with: the script's own, or 128 + signal as shells do.
    pub fn exit_code(&self) -> i32 {
        match self {
            PostVmError::Failed { code, .. } => *code,
            PostVmError::Killed { signal } => 128 + signal,
            PostVmError::Spawn(_) => 2,
        }
    }
}

/// The command that runs `script` (built as data so tests can check it).
pub fn command(script: &str, out: &Path, disk_image: &Path, source_date_epoch: i64, tmp: &Path) -> Command {
    let mut c = Command::new("bash");
    c.args(["-eu", "-o", "pipefail", "-c", script, "postVM"]);
    c.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        c.env("PATH", path);
    }
    c.env("out", out)
        .env("diskImage", disk_image)
        .env("SOURCE_DATE_EPOCH", source_date_epoch.to_string())
        .env("TZ", "UTC0")
        .env("LC_ALL", "C")
        .env("HOME", "/homeless-shelter")
        .env("TMPDIR", tmp)
        .current_dir(tmp);
    c
}

/// Runs `script` (nothing for an empty one).
pub fn run(script: &str, out: &Path, disk_image: &Path, source_date_epoch: i64) -> Result<(), PostVmError> {
    if script.trim().is_empty() {
        return Ok(());
    }
    let tmp = tempfile::Builder::new().prefix("reprodisk-postvm-").tempdir().map_err(PostVmError::Spawn)?;
    let status = command(script, out, disk_image, source_date_epoch, tmp.path())
        .status()
        .map_err(PostVmError::Spawn)?;
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(code), _) => {
            Err(PostVmError::Failed { code, out: out.to_path_buf(), disk_image: disk_image.to_path_buf() })
        }
        (None, signal) => Err(PostVmError::Killed { signal: signal.unwrap_or(0) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_the_seed_variables_and_fails_with_the_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("nixos.qcow2");
        std::fs::write(&img, b"x").unwrap();
        run(r#"test -f "$diskImage" && echo "$out" > "$out/seen""#, dir.path(), &img, 1).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("seen")).unwrap().trim(),
            dir.path().to_str().unwrap()
        );
        let e = run("false; echo not reached", dir.path(), &img, 1).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert_eq!(run("exit 7", dir.path(), &img, 1).unwrap_err().exit_code(), 7);
        // set -u, as Nix's stdenv: an unset variable is an error.
        assert_eq!(run("echo $UNSET_VARIABLE", dir.path(), &img, 1).unwrap_err().exit_code(), 1);
    }
}
