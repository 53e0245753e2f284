//! Runs one boot: QEMU on tokio, the serial console and the firmware log read as they arrive,
//! a verdict from [`crate::watch`], QEMU killed on every path, an artifact written.
//!
//! QEMU is spawned with `kill_on_drop`, so even a panic or a dropped future kills it; on a
//! verdict it is killed explicitly and reaped. The artifact (`RUN_DIR/boot.log`) holds the
//! full command line, the verdict, the serial console, the firmware's debug-port log and
//! QEMU's stderr; [`Report::explain`] gives the same for a failure message.

use crate::qemu::{Boot, Firmware};
use crate::watch::{Hit, Watcher};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// A boot that could not be started (bad input or a missing tool), as opposed to one that ran
/// and failed (a [`Verdict`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "`{program}` is not installed: install the Debian package `qemu-system-x86` (bash .ci/setup does)"
    )]
    QemuMissing { program: String },
    #[error("{what} `{}` does not exist{hint}", path.display())]
    Missing { what: &'static str, path: PathBuf, hint: &'static str },
    #[error("{what} `{}`: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
}

/// How a boot ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The success pattern, on this line.
    Success { line: String },
    /// A failure pattern: what it means and the line it is on.
    Failure { meaning: String, line: String },
    /// QEMU exited before any pattern.
    Exited { status: String },
    /// Nothing decided within the timeout.
    Timeout { after: Duration },
}

/// The outcome of one boot.
#[derive(Debug, Clone)]
pub struct Report {
    pub verdict: Verdict,
    /// From spawning QEMU to the verdict.
    pub elapsed: Duration,
    pub command: String,
    pub serial: String,
    pub firmware: String,
    pub qemu_stderr: String,
    /// The artifact file.
    pub log: PathBuf,
}

impl Report {
    pub fn ok(&self) -> bool {
        matches!(self.verdict, Verdict::Success { .. })
    }

    /// One line: the verdict and the time.
    pub fn summary(&self) -> String {
        let s = self.elapsed.as_secs_f64();
        match &self.verdict {
            Verdict::Success { line } => format!("ok after {s:.1} s: {line}"),
            Verdict::Failure { meaning, line } => format!("failed after {s:.1} s: {meaning}: `{line}`"),
            Verdict::Exited { status } => {
                format!("QEMU exited ({status}) after {s:.1} s before the guest printed a verdict")
            }
            Verdict::Timeout { after } => {
                format!(
                    "timed out after {:.0} s: no success or failure line on the console",
                    after.as_secs_f64()
                )
            }
        }
    }

    /// The summary, the command line, the end of every log and where the artifact is.
    pub fn explain(&self) -> String {
        format!(
            "boot {}\ncommand: {}\n--- serial console (last 60 lines) ---\n{}\n--- firmware debug port (last 15 lines) ---\n{}\n--- qemu stderr ---\n{}\nfull log: {}",
            self.summary(),
            self.command,
            tail(&self.serial, 60),
            tail(&self.firmware, 15),
            self.qemu_stderr.trim_end(),
            self.log.display()
        )
    }

    fn artifact(&self) -> String {
        format!(
            "command: {}\nverdict: {}\n--- serial console ---\n{}\n--- firmware debug port ---\n{}\n--- qemu stderr ---\n{}\n",
            self.command,
            self.summary(),
            self.serial,
            self.firmware,
            self.qemu_stderr
        )
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io { what, path: path.to_path_buf(), source }
}

fn require(what: &'static str, path: &Path, hint: &'static str) -> Result<(), Error> {
    if path.exists() { Ok(()) } else { Err(Error::Missing { what, path: path.to_path_buf(), hint }) }
}

/// Checks the inputs and prepares the run folder (the per-run OVMF VARS copy, an empty
/// firmware log).
fn prepare(b: &Boot) -> Result<(), Error> {
    require("image", &b.image, "")?;
    std::fs::create_dir_all(&b.run_dir).map_err(io("creating the run folder", &b.run_dir))?;
    match &b.firmware {
        Firmware::SeaBios => {}
        Firmware::Ovmf { code, vars } => {
            require("OVMF code", code, ": install the Debian package `ovmf` (bash .ci/setup does)")?;
            require(
                "OVMF variable store",
                vars,
                ": install the Debian package `ovmf`, or give an existing --vars file",
            )?;
            std::fs::copy(vars, b.vars_copy()).map_err(io("copying the OVMF variable store", vars))?;
        }
        Firmware::Kernel(k) => {
            require("kernel", &k.kernel, "")?;
            if let Some(i) = &k.initrd {
                require("initrd", i, "")?;
            }
        }
    }
    std::fs::write(b.firmware_log(), b"").map_err(io("creating the firmware log", &b.firmware_log()))
}

/// Boots and waits for a verdict. `Err` only when the boot could not be started.
pub async fn boot(b: &Boot) -> Result<Report, Error> {
    prepare(b)?;
    let command = b.command_line();
    let mut cmd = tokio::process::Command::new(&b.qemu);
    cmd.args(b.args()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        ErrorKind::NotFound => Error::QemuMissing { program: b.qemu.display().to_string() },
        _ => Error::Io { what: "starting", path: b.qemu.clone(), source: e },
    })?;
    // Both pipes exist: they were requested just above.
    let (mut stdout, mut stderr) = (child.stdout.take(), child.stderr.take());
    let mut serial = Watcher::new(Some(b.expect.clone()), b.fail_on.clone());
    let mut firmware = Watcher::new(None, b.fail_on.clone());
    let mut fw_read = 0usize;
    let mut qemu_stderr = String::new();
    let deadline = tokio::time::Instant::from_std(started + b.timeout);
    let mut grace: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let (mut out_buf, mut err_buf) = ([0u8; 4096], [0u8; 4096]);
    let verdict = loop {
        let decided = tokio::select! {
            n = read_some(&mut stdout, &mut out_buf) => match n {
                Some(n) => serial.feed(&String::from_utf8_lossy(&out_buf[..n])),
                None => {
                    // QEMU closed the console: it is exiting. Collect the rest and decide.
                    let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                    poll_file(&b.firmware_log(), &mut fw_read, &mut firmware);
                    if let Some(hit) = serial.pending().or_else(|| firmware.pending()) {
                        break to_verdict(hit);
                    }
                    let status = match status {
                        Ok(Ok(s)) => s.to_string(),
                        Ok(Err(e)) => format!("wait failed: {e}"),
                        Err(_) => "closed its console but did not exit".into(),
                    };
                    break Verdict::Exited { status };
                }
            },
            n = read_some(&mut stderr, &mut err_buf) => {
                match n {
                    Some(n) => qemu_stderr.push_str(&String::from_utf8_lossy(&err_buf[..n])),
                    None => stderr = None,
                }
                None
            }
            _ = tick.tick() => poll_file(&b.firmware_log(), &mut fw_read, &mut firmware),
            _ = tokio::time::sleep_until(grace.unwrap_or(deadline)), if grace.is_some() => {
                serial.pending().or_else(|| firmware.pending())
            }
            _ = tokio::time::sleep_until(deadline) => {
                break Verdict::Timeout { after: b.timeout };
            }
        };
        if let Some(hit) = decided {
            break to_verdict(hit);
        }
        if grace.is_none() && (serial.pending().is_some() || firmware.pending().is_some()) {
            grace = Some(tokio::time::Instant::now() + Duration::from_secs(1));
        }
    };
    let elapsed = started.elapsed();
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    // What QEMU said on its way out (an error about the drive, say) belongs in the report.
    if let Some(mut e) = stderr {
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(1), e.read_to_end(&mut rest)).await;
        qemu_stderr.push_str(&String::from_utf8_lossy(&rest));
    }
    poll_file(&b.firmware_log(), &mut fw_read, &mut firmware);
    let report = Report {
        verdict,
        elapsed,
        command,
        serial: serial.text().to_string(),
        firmware: firmware.text().to_string(),
        qemu_stderr,
        log: b.boot_log(),
    };
    std::fs::write(&report.log, report.artifact()).map_err(io("writing the boot log", &report.log))?;
    Ok(report)
}

/// [`boot`] on a runtime of its own, for callers that are not async.
pub fn boot_blocking(b: &Boot) -> Result<Report, Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("starting the tokio runtime for", &b.image))?;
    rt.block_on(boot(b))
}

fn to_verdict(hit: Hit) -> Verdict {
    match hit.failure {
        None => Verdict::Success { line: hit.line },
        Some(meaning) => Verdict::Failure { meaning, line: hit.line },
    }
}

/// Reads what is there; `None` at end of file or when the pipe is gone (never resolves then,
/// so a closed stderr does not spin the loop).
async fn read_some<R: tokio::io::AsyncRead + Unpin>(r: &mut Option<R>, buf: &mut [u8]) -> Option<usize> {
    match r {
        Some(r) => match r.read(buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        },
        None => std::future::pending().await,
    }
}

/// Feeds what was appended to the firmware log since the last call.
fn poll_file(path: &Path, read: &mut usize, w: &mut Watcher) -> Option<Hit> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() <= *read {
        return None;
    }
    let new = String::from_utf8_lossy(&bytes[*read..]).into_owned();
    *read = bytes.len();
    w.feed(&new)
}
