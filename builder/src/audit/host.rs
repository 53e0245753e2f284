//! What the audit can do on this machine, probed once before the builds: root, libfaketime,
//! a UTS namespace, seccomp user notification for the readdir variation, and whether
//! `nobody` can read the inputs.

use super::variations::{Faketime, NOBODY, Variation};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// What can run on this machine, found once before the builds.
#[derive(Debug, Clone)]
pub struct Host {
    pub root: bool,
    pub faketime: Result<Faketime, String>,
    pub uts: Result<(), String>,
    /// A supervised child lists a folder in reverse ([`super::readdir::probe`]).
    pub readdir: Result<(), String>,
}

impl Host {
    pub fn probe() -> Host {
        let root = rustix::process::geteuid().is_root();
        // Another hostname takes a UTS namespace, which only root can make without a user
        // namespace; in a user namespace every input owned by someone else would show
        // another owner (the overflow uid), so the build would differ for that alone.
        let uts = if !root {
            Err("another hostname needs root: without it the UTS namespace comes with a user namespace, in which inputs owned by other users show another owner".into())
        } else {
            match Command::new("unshare")
                .args(["--uts", "true"])
                .stderr(Stdio::piped())
                .stdout(Stdio::null())
                .output()
            {
                Ok(o) if o.status.success() => Ok(()),
                Ok(o) => {
                    Err(format!("`unshare --uts` failed: {}", String::from_utf8_lossy(&o.stderr).trim()))
                }
                Err(e) => Err(format!("cannot run `unshare` ({e}): install the Debian package util-linux")),
            }
        };
        Host { root, faketime: probe_faketime(), uts, readdir: super::readdir::probe() }
    }

    /// Why `v` cannot run here, if it cannot (checks that need the inputs come later).
    pub fn unavailable(&self, v: Variation) -> Option<String> {
        match v {
            Variation::Clock => self.faketime.as_ref().err().cloned(),
            Variation::Hostname => self.uts.as_ref().err().cloned(),
            Variation::Readdir => self.readdir.as_ref().err().cloned(),
            Variation::Uid if !self.root => {
                Some("running as another user needs root: run the audit as root for this variation".into())
            }
            _ => None,
        }
    }
}

/// Finds libfaketime and checks that it really shifts a child's clock.
fn probe_faketime() -> Result<Faketime, String> {
    let arch = format!("{}-linux-gnu", std::env::consts::ARCH);
    let candidates = [
        format!("/usr/lib/{arch}/faketime/libfaketime.so.1"),
        "/usr/lib/faketime/libfaketime.so.1".to_string(),
        "/usr/local/lib/faketime/libfaketime.so.1".to_string(),
    ];
    let Some(library) = candidates.iter().map(PathBuf::from).find(|p| p.is_file()) else {
        return Err(format!(
            "libfaketime not found (looked for {}): install the Debian package faketime",
            candidates.join(", ")
        ));
    };
    let ft = Faketime { library, shift: super::variations::CLOCK_SHIFT.to_string() };
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let o = Command::new("date")
        .arg("+%s")
        .env("LD_PRELOAD", &ft.library)
        .env("FAKETIME", &ft.shift)
        .env("FAKETIME_DISABLE_SHM", "1")
        .output()
        .map_err(|e| format!("cannot run `date` under libfaketime: {e}"))?;
    let shifted: u64 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap_or(0);
    // 3650 days ahead, give or take the time the probe took.
    if shifted < now + 3640 * 86400 {
        return Err(format!(
            "libfaketime `{}` did not shift the clock of a child process (date printed {shifted}, expected about {} + 3650 days)",
            ft.library.display(),
            now
        ));
    }
    Ok(ft)
}

/// The first of `paths` (recursively) that `nobody` cannot read, or cannot enter when it is a
/// folder, checked by running `find` as `nobody`.
pub fn unreadable_as_nobody(paths: &[PathBuf]) -> Result<(), String> {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        format!("--reuid={NOBODY}"),
        format!("--regid={NOBODY}"),
        "--clear-groups".into(),
        "--".into(),
    ]);
    // Symlinks are never followed by the builder, so their targets need not be readable.
    cmd.arg("find").args(paths).args([
        "!",
        "-type",
        "l",
        "(",
        "!",
        "-readable",
        "-o",
        "-type",
        "d",
        "!",
        "-executable",
        ")",
        "-print",
        "-quit",
    ]);
    let o = cmd
        .output()
        .map_err(|e| format!("cannot run `setpriv` ({e}): install the Debian package util-linux"))?;
    let found = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
    if !found.is_empty() {
        return Err(format!("`{found}` is not readable as nobody"));
    }
    if !o.status.success() {
        return Err(format!(
            "inputs are not readable as nobody: {}",
            err.lines().next().unwrap_or("find failed")
        ));
    }
    Ok(())
}
