//! Runs the audit's child builds: the work folder, one `reprodisk build` child process per
//! build (the running binary itself, [`std::env::current_exe`]) and a pool of as many workers
//! as cores. The probes are in [`super::host`], the readdir variation in [`super::readdir`]
//! and the output files' digests in [`super::outputs`].
//!
//! A child build is `sh -c SCRIPT` (under `unshare --uts` for another hostname, which only
//! root runs: see [`super::host`]): the script sets the hostname, sets the umask, preloads
//! libfaketime and drops to `nobody` as the invocation asks, then execs the binary (for the
//! readdir variation, through the hidden subcommand that hands its folder listings to a
//! [`Supervisor`] thread of the audit). Its values travel in `REPRODISK_AUDIT_*` variables
//! that the script unsets before the exec, so the build sees only what the variation changes. A setup step that fails
//! exits 97, and the build is reported as not run, with the script's message.

use super::AuditError;
use super::outputs::OutputSet;
use super::readdir::{Stats as ReaddirStats, Supervisor};
use super::variations::{Invocation, Variation};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Instant;

/// Exit code of the child script when a setup step (hostname, cd, the readdir filter) failed.
pub const SETUP_FAILED: i32 = 97;

/// The audit's work folder: removed with everything in it when dropped (also on error),
/// unless the user asked to keep it.
pub struct WorkDir {
    pub path: PathBuf,
    keep: bool,
    _tmp: Option<tempfile::TempDir>,
    /// Removes the folder on SIGINT, SIGTERM and SIGHUP too.
    _signals: Option<crate::cleanup::Guard>,
}

impl WorkDir {
    /// A new folder in `parent` (kept afterwards) or a temporary one: in `$TMPDIR` when it is
    /// set, else in /dev/shm when that has room for twice `ram_bytes`, else in the system's
    /// temporary folder. In memory, the builds (removed as soon as they are compared) cost no
    /// disk writes: each one fsyncs its image, and on a disk shared by parallel builds that
    /// wait, not the CPU, set the audit's time.
    pub fn new(parent: Option<&Path>, ram_bytes: Option<u64>) -> Result<WorkDir, AuditError> {
        let shm = Path::new("/dev/shm");
        let in_memory = ram_bytes
            .filter(|_| std::env::var_os("TMPDIR").is_none() && shm.is_dir())
            .is_some_and(|need| room(shm) > need.saturating_mul(2));
        let temp_parent = if in_memory { shm.to_path_buf() } else { std::env::temp_dir() };
        let (path, keep, tmp) = match parent {
            Some(p) => {
                std::fs::create_dir_all(p).map_err(AuditError::io("creating", p))?;
                let p = p.canonicalize().map_err(AuditError::io("resolving", p))?;
                (p, true, None)
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("reprodisk-audit-")
                    .tempdir_in(&temp_parent)
                    .map_err(AuditError::io("creating", &temp_parent))?;
                let p = t.path().canonicalize().map_err(AuditError::io("resolving", t.path()))?;
                (p, false, Some(t))
            }
        };
        // `nobody` must reach its own build folder through this one.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(AuditError::io("opening up", &path))?;
        let signals = (!keep).then(|| crate::cleanup::register(&path));
        Ok(WorkDir { path, keep, _tmp: tmp, _signals: signals })
    }

    pub fn kept(&self) -> bool {
        self.keep
    }
}

/// Bytes free for this process in the filesystem of `p`.
pub fn room(p: &Path) -> u64 {
    rustix::fs::statvfs(p).map(|s| s.f_bavail.saturating_mul(s.f_frsize)).unwrap_or(0)
}

/// Removes a build's folder (outputs of a build that reproduced are not worth keeping).
pub fn remove_build(root: &Path) {
    // A failure to clean up one folder is not worth failing the audit; the work folder's own
    // removal retries it.
    let _ = std::fs::remove_dir_all(root);
}

/// How one child build ended.
#[derive(Debug, Clone)]
pub enum BuildEnd {
    /// The build wrote its outputs.
    Built(OutputSet),
    /// The build failed (its last lines of stderr).
    Failed(String),
    /// The build could not be set up (a variation could not be applied), with why.
    NotRun(String),
}

/// How a build's outputs are read once it has ended.
#[derive(Clone, Copy)]
pub enum Outputs<'a> {
    /// Every file hashed ([`OutputSet::read`]).
    Hashed,
    /// Listed, large files hashed later ([`OutputSet::list`]): the control build's.
    Listed,
    /// Compared with the set this gives (the control build's) before they are hashed
    /// ([`OutputSet::read_against`]).
    Against(&'a dyn Fn() -> Option<OutputSet>),
}

/// Runs `reprodisk build SPEC --out OUT` as `inv` says, then reads its outputs as `outputs`
/// says. With the readdir variation, also what its supervisor did.
pub fn run_build(
    exe: &Path,
    spec: &Path,
    inv: &Invocation,
    base_env: &[(String, String)],
    outputs: Outputs,
) -> (BuildEnd, Option<ReaddirStats>) {
    try_run_build(exe, spec, inv, base_env, outputs).unwrap_or_else(|e| (BuildEnd::NotRun(e), None))
}

fn try_run_build(
    exe: &Path,
    spec: &Path,
    inv: &Invocation,
    base_env: &[(String, String)],
    outputs: Outputs,
) -> Result<(BuildEnd, Option<ReaddirStats>), String> {
    // Folders are created and the child started under the clean-up lock: an interrupt then
    // removes them after they exist, or stops the audit before they do, never in between.
    let hold = crate::cleanup::hold();
    let mkdir = |p: &Path| std::fs::create_dir_all(p).map_err(|e| format!("creating `{}`: {e}", p.display()));
    mkdir(&inv.root)?;
    mkdir(&inv.cwd)?;
    for d in &inv.mkdirs {
        mkdir(d)?;
    }
    if let Some(parent) = inv.out_abs.parent() {
        mkdir(parent)?;
    }
    if let Some(uid) = inv.uid {
        // The build runs as `uid`: it needs to write its folder.
        for d in walk_dirs(&inv.root) {
            std::os::unix::fs::lchown(&d, Some(uid), Some(uid))
                .map_err(|e| format!("handing `{}` to uid {uid}: {e}", d.display()))?;
        }
    }
    let log_path = inv.root.join("build.log");
    let log = std::fs::File::create(&log_path).map_err(|e| format!("creating the build log: {e}"))?;
    let log2 = log.try_clone().map_err(|e| format!("creating the build log: {e}"))?;

    let mut script = String::new();
    let mut vars: Vec<(String, String)> = Vec::new();
    if let Some(h) = &inv.hostname {
        vars.push(("REPRODISK_AUDIT_HOSTNAME".into(), h.clone()));
        script.push_str(
            "printf %s \"$REPRODISK_AUDIT_HOSTNAME\" > /proc/sys/kernel/hostname || { echo 'setting the hostname failed' >&2; exit 97; }\n",
        );
    }
    script.push_str(&format!("umask {:03o}\n", inv.umask));
    // libfaketime is preloaded only into the build itself (after `setpriv`), without its
    // shared-memory semaphore, which a root process of the same pid would otherwise own.
    let mut preload = String::new();
    if let Some(ft) = &inv.faketime {
        vars.push(("REPRODISK_AUDIT_FT_LIB".into(), ft.library.display().to_string()));
        vars.push(("REPRODISK_AUDIT_FT_SHIFT".into(), ft.shift.clone()));
        script
            .push_str("rda_ft_lib=\"$REPRODISK_AUDIT_FT_LIB\"; rda_ft_shift=\"$REPRODISK_AUDIT_FT_SHIFT\"\n");
        preload = "env LD_PRELOAD=\"$rda_ft_lib${LD_PRELOAD:+:$LD_PRELOAD}\" FAKETIME=\"$rda_ft_shift\" FAKETIME_DISABLE_SHM=1 "
            .to_string();
    }
    let names: Vec<String> = vars.iter().map(|(k, _)| k.clone()).collect();
    if !names.is_empty() {
        script.push_str(&format!("unset {}\n", names.join(" ")));
    }
    // The build gets SIGTERM when the audit dies (an interrupted audit removes its folders,
    // and no build may go on writing into them); `setpriv` also drops to `nobody` for `uid`.
    let ids = inv.uid.map(|u| format!("--reuid={u} --regid={u} --clear-groups ")).unwrap_or_default();
    script.push_str(&format!("exec setpriv {ids}--pdeathsig TERM -- {preload}\"$@\" || exit 97\n"));

    let mut cmd = if inv.hostname.is_some() {
        let mut c = Command::new("unshare");
        c.args(["--uts", "--", "sh", "-c", &script]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", &script]);
        c
    };
    // The readdir variation's build is started by the hidden subcommand that hands its
    // listings to `supervisor` (see `readdir.rs`); every step before it execs, so the pid
    // the supervisor expects is the child's.
    let supervisor = match inv.readdir {
        true => Some(Supervisor::new().map_err(|e| format!("creating the readdir variation's socket: {e}"))?),
        false => None,
    };
    cmd.arg("reprodisk-audit");
    if let Some(sup) = &supervisor {
        cmd.arg(exe).arg(super::readdir::SUBCOMMAND).arg(sup.name()).arg("--");
    }
    cmd.arg(exe)
        .arg("build")
        .arg(spec)
        .arg("--out")
        .arg(&inv.out_arg)
        .current_dir(&inv.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2));
    for (k, v) in base_env.iter().chain(&inv.env).chain(&vars) {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot start the build: {e}"))?;
    // Registered before the lock is released: an interrupt stops this build (which removes
    // its own stage) before the audit removes the folders around it.
    let stop_on_signal = crate::cleanup::register_child(child.id());
    drop(hold);
    let pid = child.id();
    let done = AtomicBool::new(false);
    let (status, served) = std::thread::scope(|s| {
        let served = supervisor.map(|sup| s.spawn(|| sup.serve(pid, &done)));
        let status = child.wait();
        done.store(true, Ordering::Release);
        (status, served.map(|t| t.join().unwrap_or_else(|_| Err("the readdir supervisor panicked".into()))))
    });
    let status = status.map_err(|e| format!("waiting for the build: {e}"))?;
    drop(stop_on_signal);
    let tail = log_tail(&log_path);
    if status.code() == Some(SETUP_FAILED) {
        return Ok((BuildEnd::NotRun(tail), None));
    }
    let stats = match served {
        None => None,
        Some(Ok(st)) => Some(st),
        // The build could not list its folders: it did not run as the variation asks.
        Some(Err(e)) => {
            return Ok((BuildEnd::NotRun(format!("the readdir variation's supervisor: {e}")), None));
        }
    };
    if !status.success() {
        return Ok((BuildEnd::Failed(format!("exit status {status}: {tail}")), stats));
    }
    let read = match outputs {
        Outputs::Hashed => OutputSet::read(&inv.out_abs),
        Outputs::Listed => OutputSet::list(&inv.out_abs),
        Outputs::Against(reference) => OutputSet::read_against(&inv.out_abs, reference().as_ref()),
    };
    let end = match read {
        Ok(set) => BuildEnd::Built(set),
        Err(e) => BuildEnd::Failed(format!("reading the outputs in `{}`: {e}", inv.out_abs.display())),
    };
    Ok((end, stats))
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(4)..].join(" | ")
}

fn walk_dirs(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(rd) = std::fs::read_dir(&out[i]) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    out.push(e.path());
                }
            }
        }
        i += 1;
    }
    out
}

/// One build to run: its name, the variations it applies, and its invocation.
pub struct Job {
    pub name: String,
    pub variations: Vec<Variation>,
    pub inv: Invocation,
    /// Why it cannot run, known before it starts.
    pub blocked: Option<String>,
    /// Its `before` needs the control build's result: the pool starts it only once the
    /// control has ended, and runs other jobs meanwhile instead of holding a worker idle.
    pub after_control: bool,
}

/// A finished job.
pub struct Finished {
    pub end: BuildEnd,
    pub seconds: f64,
}

/// Runs `jobs` on `workers` threads; `jobs[0]` is the control and starts first. A worker
/// takes the first job not yet started, skipping those `after_control` while the control
/// runs (it waits only when nothing else is left). `before` runs on the worker just before a
/// job starts (it may block it) and `run` runs it.
pub fn run_pool(
    jobs: &mut [Job],
    workers: usize,
    before: &(dyn Fn(&mut Job, &Gate) + Sync),
    run: &(dyn Fn(&Job, &Gate) -> BuildEnd + Sync),
) -> Vec<Finished> {
    let taken = Mutex::new(vec![false; jobs.len()]);
    let after_control: Vec<bool> = jobs.iter().map(|j| j.after_control).collect();
    let gate = Gate::default();
    let results: Vec<OnceLock<Finished>> = jobs.iter().map(|_| OnceLock::new()).collect();
    let slots: Vec<Mutex<&mut Job>> = jobs.iter_mut().map(Mutex::new).collect();
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| {
                while let Some(i) = next_job(&taken, &after_control, &gate) {
                    let Some(slot) = slots.get(i) else { break };
                    let mut job = slot.lock().unwrap_or_else(|e| e.into_inner());
                    let t = Instant::now();
                    before(&mut job, &gate);
                    let end = match &job.blocked {
                        Some(why) => BuildEnd::NotRun(why.clone()),
                        None => run(&job, &gate),
                    };
                    if i == 0 {
                        gate.open(&end);
                    }
                    let _ = results[i].set(Finished { end, seconds: t.elapsed().as_secs_f64() });
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| {
            r.into_inner().unwrap_or(Finished { end: BuildEnd::NotRun("not started".into()), seconds: 0.0 })
        })
        .collect()
}

/// The next job a worker takes (marked taken), `None` when every job has been taken.
fn next_job(taken: &Mutex<Vec<bool>>, after_control: &[bool], gate: &Gate) -> Option<usize> {
    loop {
        {
            let mut t = taken.lock().unwrap_or_else(|e| e.into_inner());
            let control_done = gate.control_if_done().is_some();
            let eligible = (0..t.len()).find(|&i| !t[i] && (control_done || !after_control[i]));
            if let Some(i) = eligible {
                t[i] = true;
                return Some(i);
            }
            if t.iter().all(|&x| x) {
                return None;
            }
        }
        // Only jobs that need the control are left: wait for it (it returns at once when
        // the control ended after the check above).
        gate.control();
    }
}

/// Lets jobs wait for the control build's result.
#[derive(Default)]
pub struct Gate {
    control: Mutex<Option<BuildEnd>>,
    done: Condvar,
}

impl Gate {
    fn open(&self, end: &BuildEnd) {
        *self.control.lock().unwrap_or_else(|e| e.into_inner()) = Some(end.clone());
        self.done.notify_all();
    }

    /// The control build's end, if it has ended.
    pub fn control_if_done(&self) -> Option<BuildEnd> {
        self.control.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Blocks until the control build has ended.
    pub fn control(&self) -> BuildEnd {
        let mut g = self.control.lock().unwrap_or_else(|e| e.into_inner());
        while g.is_none() {
            g = self.done.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        g.clone().unwrap_or(BuildEnd::NotRun("no control build".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_after_the_control_does_not_hold_a_worker() {
        let job = |name: &str, after_control: bool| Job {
            name: name.into(),
            variations: Vec::new(),
            inv: Invocation::control(PathBuf::from("/nonexistent")),
            blocked: None,
            after_control,
        };
        let mut jobs = vec![job("control", false), job("needs-control", true), job("free", false)];
        let started = Mutex::new(Vec::new());
        let before = |_: &mut Job, _: &Gate| {};
        let run = |j: &Job, gate: &Gate| {
            started.lock().unwrap().push((j.name.clone(), gate.control_if_done().is_some()));
            if j.name == "control" {
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
            BuildEnd::NotRun("a test job".into())
        };
        let finished = run_pool(&mut jobs, 2, &before, &run);
        assert_eq!(finished.len(), 3);
        let started = started.into_inner().unwrap();
        let at = |n: &str| started.iter().position(|(s, _)| s == n).unwrap();
        // The second worker took the later job that needs nothing rather than wait.
        assert!(at("free") < at("needs-control"), "{started:?}");
        assert!(started[at("needs-control")].1, "started before the control ended: {started:?}");
    }
}
