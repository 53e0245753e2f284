//! `reprodisk audit`: reproducibility audits under perturbation (reprotest's idea, for disk
//! images) and the independent rebuilder's check `--against IMAGE`.
//!
//! An audit runs one control build, then one build per variation ([`variations`]) and one
//! with all of them at once, each a child process of this very binary
//! (`std::env::current_exe() build SPEC --out ...`) in its own folder, so the variation is real:
//! another cwd, TZ, umask, clock, uid, hostname or readdir order is what the child sees.
//! Builds run in parallel, as many as there are cores ([`runner`]); none of the variations
//! interfere with another (separate folders, per-process clock and listings, private
//! namespaces). Every output file is hashed (sha256); a file that differs from the control
//! build's is explained ([`compare`]) by the verifier's structural diff, called through the
//! same image-opening entry point as `reprodisk diff` so that every format and structure the
//! verifier learns is explained here too. Two things are normalised before files are compared, because they
//! record where a build ran, not what it built: the output folder's own path (which
//! hydra-build-products names, as the seed's names `$out`) and the spec's path as given on the
//! command line (the manifest's `spec.path`). The report ([`report`]) is a terminal table,
//! JSON, or a self-contained HTML page with a map of the disk.
//!
//! `--against IMAGE SPEC` reads the manifest beside IMAGE, checks each input it lists by
//! sha256 (naming any that changed), rebuilds from SPEC and compares the output set with the
//! folder IMAGE is in ([`against`]).
//!
//! The temporary work folder is in `$TMPDIR` when set, else in /dev/shm when it has room for
//! the builds alive at once (see [`runner::WorkDir::new`]), else in the system's temporary
//! folder. Every temporary build is removed on the way out, on success and on error ([`runner::WorkDir`]
//! is removed when dropped; with `--out` the builds that did not reproduce are kept there).
//!
//! ## Testing the audit with a deliberately non-deterministic build
//!
//! To prove that the audit catches a clock- or readdir-dependent byte under exactly the right
//! variation, the tests need a build that has one. The builder itself has no hook for it, not
//! even behind a cargo feature: features unify across a workspace build, so a hook compiled
//! for the tests could end up in the shipped binary. Instead the test package builds its own
//! binary, `reprodisk-audit-hooked` (tests/src/bin/), which runs this same CLI and, after a
//! `build`, overwrites one byte of the image with a value taken from the wall clock or from the
//! raw readdir order of the root tree, as `REPRODISK_AUDIT_TEST_INJECT=clock|readdir` asks.
//! Because the audit runs its children as `current_exe()`, an audit started from that binary
//! builds with the injection in every child, under every variation, as a real bug would be.

pub mod against;
pub mod cli;
pub mod compare;
pub mod host;
pub mod outputs;
pub mod readdir;
pub mod report;
pub mod runner;
pub mod variations;

use host::Host;
use outputs::OutputSet;
use report::{AuditReport, BuildResult, BuildStatus, FileStatus, Reference};
use runner::{BuildEnd, Job, Outputs, WorkDir};
use std::path::{Path, PathBuf};
use std::time::Instant;
use variations::{Invocation, Variation};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{action} `{path}`: {error}")]
    Io { action: &'static str, path: PathBuf, error: std::io::Error },
    #[error("the control build failed, so there is nothing to compare: {0}")]
    ControlFailed(String),
    #[error("{0}")]
    BadInput(String),
}

impl AuditError {
    pub fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> AuditError {
        let path = path.to_path_buf();
        move |error| AuditError::Io { action, path, error }
    }
}

/// What `reprodisk audit SPEC` is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub spec: PathBuf,
    pub vary: Vec<Variation>,
    /// Keep the builds (the control and those that did not reproduce) in this folder.
    pub out: Option<PathBuf>,
    /// Compute the disk map for an HTML report.
    pub disk_map: bool,
    /// Builds at once; `None`: as many as there are cores.
    pub jobs: Option<usize>,
}

/// The environment every child build starts from: this process's, with the package cache
/// pinned so that the `env` variation's HOME does not move the boot-loader inputs.
fn base_env() -> Vec<(String, String)> {
    let mut env = Vec::new();
    if std::env::var_os("REPRODISK_CACHE").is_none() {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|c| c.join("reprodisk"));
        if let Some(c) = cache {
            env.push(("REPRODISK_CACHE".to_string(), c.display().to_string()));
        }
    }
    env
}

/// The bytes of every file under `p` (for sizing the work folder; unreadable parts count 0).
pub fn tree_bytes(p: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// The folders whose listing order could reach the image: directory inputs, and the
/// folders globs expand in. Without any, the readdir variation has nothing to vary.
fn directory_inputs(spec: &crate::spec::Spec) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = Vec::new();
    let mut paths: Vec<PathBuf> = spec.input_files().iter().map(|p| p.resolved.clone()).collect();
    paths.extend(spec.additional_paths.iter().map(PathBuf::from));
    for p in paths {
        let dir = if p.to_string_lossy().contains('*') {
            let mut d = PathBuf::new();
            for c in p.components() {
                if c.as_os_str().to_string_lossy().contains('*') {
                    break;
                }
                d.push(c);
            }
            d
        } else {
            p
        };
        if let Ok(c) = dir.canonicalize()
            && c.is_dir()
            && !v.contains(&c)
        {
            v.push(c);
        }
    }
    v
}

/// Runs the audit of `opts.spec` under its variations.
pub fn audit(opts: &Options) -> Result<AuditReport, AuditError> {
    let started = Instant::now();
    let spec = crate::spec::Spec::load(&opts.spec).map_err(|e| AuditError::BadInput(format!("spec: {e}")))?;
    let spec_path = std::path::absolute(&opts.spec).map_err(AuditError::io("resolving", &opts.spec))?;
    let exe =
        std::env::current_exe().map_err(AuditError::io("finding", Path::new("the reprodisk binary")))?;
    // The builds alive at once (one per worker, and the control kept to the end) in memory,
    // each about the size of its inputs and a margin for metadata.
    let input_bytes: u64 = spec
        .input_files()
        .iter()
        .map(|p| tree_bytes(&p.resolved).max(std::fs::metadata(&p.resolved).map_or(0, |m| m.len())))
        .sum();
    let alive = opts.jobs.unwrap_or_else(cores) as u64 + 1;
    let work = WorkDir::new(opts.out.as_deref(), Some(alive * (input_bytes + (256 << 20))))?;
    let host = Host::probe();
    let base = base_env();

    let mut jobs = vec![Job {
        name: "control".into(),
        variations: Vec::new(),
        inv: Invocation::control(work.path.join("control")),
        blocked: None,
        after_control: false,
    }];
    let mut selected: Vec<Vec<Variation>> = opts.vary.iter().map(|v| vec![*v]).collect();
    if opts.vary.len() > 1 {
        selected.push(opts.vary.clone());
    }
    for vs in selected {
        let name = if vs.len() == 1 { vs[0].name().to_string() } else { "all".to_string() };
        let inv = Invocation::control(work.path.join(&name));
        // The uid variation checks the inputs the control build's manifest lists.
        let after_control = vs.contains(&Variation::Uid);
        jobs.push(Job { name, variations: vs, inv, blocked: None, after_control });
    }
    // The pool takes jobs in order: the build with every variation (the longest) goes right
    // after the control, so that the audit does not end on it with one worker busy and the
    // others idle. The report keeps the order above.
    let report_order: Vec<String> = jobs.iter().map(|j| j.name.clone()).collect();
    if let Some(all) = jobs.iter().position(|j| j.variations.len() > 1) {
        let job = jobs.remove(all);
        jobs.insert(1.min(jobs.len()), job);
    }

    let dir_inputs = directory_inputs(&spec);
    let notes = std::sync::Mutex::new(Vec::<(String, String)>::new());
    let (to_hash, pending) = std::sync::mpsc::channel::<OutputSet>();
    let to_hash = std::sync::Mutex::new(Some(to_hash));
    let before = |job: &mut Job, gate: &runner::Gate| {
        if job.variations.is_empty() {
            return;
        }
        // Without a control build there is nothing to compare with: do not start more builds.
        if let Some(BuildEnd::Failed(_) | BuildEnd::NotRun(_)) = gate.control_if_done() {
            job.blocked = Some("the control build failed".into());
            return;
        }
        let mut left_out = Vec::new();
        let mut applied = Vec::new();
        for v in job.variations.clone() {
            let mut why = host.unavailable(v);
            let mut prepared = variations::Prepared::default();
            if why.is_none() {
                match v {
                    Variation::Clock => prepared.faketime = host.faketime.clone().ok(),
                    Variation::Readdir if dir_inputs.is_empty() => {
                        why = Some(
                            "the spec has no directory inputs, so there is no readdir order to vary".into(),
                        )
                    }
                    Variation::Uid => {
                        // Every input the control build used (its manifest lists them) must be
                        // readable as nobody, and the binary runnable.
                        let mut paths = vec![spec_path.clone(), exe.clone()];
                        paths.extend(dir_inputs.iter().cloned());
                        paths.extend(
                            spec.input_files()
                                .iter()
                                .filter(|p| !p.written.contains('*'))
                                .map(|p| p.resolved.clone()),
                        );
                        if let BuildEnd::Built(set) = gate.control() {
                            paths.extend(manifest_inputs(&set, &spec.base_dir));
                        }
                        if let Err(e) = host::unreadable_as_nobody(&paths) {
                            why = Some(e);
                        }
                    }
                    _ => {}
                }
            }
            match why {
                Some(w) => left_out.push((v, w)),
                None => {
                    v.apply(&mut job.inv, &prepared);
                    applied.push(v);
                }
            }
        }
        if job.variations.len() == 1 {
            if let Some((_, w)) = left_out.pop() {
                job.blocked = Some(w);
            }
        } else {
            for (v, w) in &left_out {
                notes.lock().unwrap_or_else(|e| e.into_inner()).push((
                    job.name.clone(),
                    format!("built without `{}`, which could not run: {w}", v.name()),
                ));
            }
            if applied.is_empty() {
                job.blocked = Some("none of the variations could run here".into());
            }
            job.variations = applied;
        }
    };
    // One line per build on stderr, so a long audit shows it is moving (stdout stays the report).
    let run = |job: &Job, gate: &runner::Gate| {
        eprintln!("audit: building {} ({})", job.name, describe(&job.variations));
        let t = Instant::now();
        // A varied build's files are compared with the control's before they are hashed: one
        // that ends first waits for the control (builds take about as long, and the wait
        // costs less than hashing an image).
        let control = || match gate.control() {
            BuildEnd::Built(set) => Some(set),
            _ => None,
        };
        let outputs = if job.variations.is_empty() { Outputs::Listed } else { Outputs::Against(&control) };
        let (end, readdir) = runner::run_build(&exe, &spec_path, &job.inv, &base, outputs);
        if let Some(st) = readdir {
            let mut n = notes.lock().unwrap_or_else(|e| e.into_inner());
            if job.variations.len() == 1 {
                n.push((
                    job.name.clone(),
                    format!(
                        "{} folder listings were answered in reverse order, {} of them with two or more entries",
                        st.listings, st.reordered
                    ),
                ));
            }
            // Also for the build with every variation: a listing not reversed is a
            // variation that did not fully run, and the report must say so.
            if st.passed > 0 {
                n.push((
                    job.name.clone(),
                    format!("{} listing calls were left to the kernel, in its own order", st.passed),
                ));
            }
        }
        // The control's image is hashed on a thread of its own (see `hasher` below), so
        // that this worker opens the gate and goes on at once.
        if job.variations.is_empty()
            && let Some(tx) = to_hash.lock().unwrap_or_else(|e| e.into_inner()).take()
            && let BuildEnd::Built(set) = &end
        {
            let _ = tx.send(set.clone());
        }
        // A build identical to the control is removed at once, so that the disk holds the
        // control and the builds in progress, not every build of the audit.
        if let (false, BuildEnd::Built(set), Some(BuildEnd::Built(control))) =
            (job.variations.is_empty(), &end, gate.control_if_done())
            && same_outputs(&control, set)
        {
            runner::remove_build(&job.inv.root);
        }
        let how = match &end {
            BuildEnd::Built(_) => "built",
            BuildEnd::Failed(_) => "failed",
            BuildEnd::NotRun(_) => "could not run",
        };
        eprintln!("audit: {} {how} in {}", job.name, report::duration(t.elapsed().as_secs_f64()));
        end
    };
    let parallel = opts.jobs.unwrap_or_else(cores).clamp(1, jobs.len());
    let (finished, hashed) = std::thread::scope(|s| {
        let hasher = s.spawn(move || {
            pending.recv().ok().map(|mut set| match set.hash_deferred() {
                Ok(()) => Ok(set),
                Err(e) => Err((set.dir, e)),
            })
        });
        let finished = runner::run_pool(&mut jobs, parallel, &before, &run);
        // A control that did not build sent nothing: let the hasher end.
        drop(to_hash.lock().unwrap_or_else(|e| e.into_inner()).take());
        (finished, hasher.join())
    });
    let hashed = match hashed {
        Ok(h) => h,
        Err(_) => return Err(AuditError::ControlFailed("hashing its outputs panicked".into())),
    };
    let mut done: Vec<(Job, runner::Finished)> = jobs.into_iter().zip(finished).collect();
    done.sort_by_key(|(j, _)| report_order.iter().position(|n| *n == j.name));
    let (jobs, finished): (Vec<Job>, Vec<runner::Finished>) = done.into_iter().unzip();

    let control = match (&finished[0].end, hashed) {
        (BuildEnd::Built(_), Some(Ok(set))) => set,
        (BuildEnd::Built(_), Some(Err((dir, e)))) => {
            return Err(AuditError::Io {
                action: "hashing the control build's outputs in",
                path: dir,
                error: e,
            });
        }
        (BuildEnd::Built(_), None) => {
            return Err(AuditError::ControlFailed("its outputs were not hashed".into()));
        }
        (BuildEnd::Failed(e) | BuildEnd::NotRun(e), _) => return Err(AuditError::ControlFailed(e.clone())),
    };
    let image = control_image(&control);
    let reference = Side { set: &control, image: image.as_deref() };
    let notes = notes.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut results = Vec::new();
    for (job, fin) in jobs.iter().zip(&finished).skip(1) {
        let mut r = BuildResult {
            name: job.name.clone(),
            variations: job.variations.clone(),
            description: describe(&job.variations),
            status: BuildStatus::Reproduced,
            reason: None,
            seconds: fin.seconds,
            files: Vec::new(),
            notes: notes.iter().filter(|(n, _)| *n == job.name).map(|(_, t)| t.clone()).collect(),
        };
        match &fin.end {
            BuildEnd::NotRun(why) => {
                r.status = BuildStatus::NotRun;
                r.reason = Some(why.clone());
            }
            BuildEnd::Failed(why) => {
                r.status = BuildStatus::Failed;
                r.reason = Some(why.clone());
            }
            BuildEnd::Built(set) => {
                let mut set = set.clone();
                set.fill_deferred(&control);
                let set = &set;
                let other_image = control_image(set);
                r.files = compare::compare(&reference, &Side { set, image: other_image.as_deref() });
                if r.differing().next().is_some() {
                    r.status = BuildStatus::Differs;
                } else {
                    runner::remove_build(&job.inv.root);
                }
            }
        }
        results.push(r);
    }
    let reproducible =
        results.iter().all(|r| matches!(r.status, BuildStatus::Reproduced | BuildStatus::NotRun));
    let disk_map = match (&image, opts.disk_map) {
        (Some(i), true) => Some(report::diskmap::DiskMap::of(&control.dir.join(i))),
        _ => None,
    };
    let kept = work.kept().then(|| work.path.display().to_string());
    let report = AuditReport {
        mode: "variations",
        spec: opts.spec.display().to_string(),
        against: None,
        reproducible,
        seconds: started.elapsed().as_secs_f64(),
        parallel,
        reference: Reference {
            what: "control build".into(),
            seconds: finished[0].seconds,
            files: control.files.clone(),
        },
        inputs: Vec::new(),
        results,
        kept,
        notes: vec![format!(
            "compared after normalising what records where a build ran: the output folder's path ($out) and the spec's path as given"
        )],
        disk_map,
    };
    Ok(report)
}

pub use compare::Side;

/// Every file of `b` has the digest (raw or normalised) of the same file of `a`, and the
/// other way round; the image is matched by the manifest's name on each side.
fn same_outputs(a: &OutputSet, b: &OutputSet) -> bool {
    let (ia, ib) = (control_image(a), control_image(b));
    let key = |image: &Option<String>, p: &str| {
        if image.as_deref() == Some(p) { "<image>".to_string() } else { p.to_string() }
    };
    let map = |set: &OutputSet,
               image: &Option<String>|
     -> std::collections::BTreeMap<String, outputs::FileDigest> {
        set.files.iter().map(|(p, d)| (key(image, p), d.clone())).collect()
    };
    let (ma, mb) = (map(a, &ia), map(b, &ib));
    ma.len() == mb.len()
        && ma.iter().all(|(k, da)| {
            mb.get(k).is_some_and(|db| {
                da.sha256 == db.sha256 || (da.normalised.is_some() && da.normalised == db.normalised)
            })
        })
}

/// The image file of an output set: the manifest's `output.file`, else the largest file.
pub fn control_image(set: &OutputSet) -> Option<String> {
    let from_manifest = std::fs::read(set.dir.join("manifest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|m| m.pointer("/output/file").and_then(|v| v.as_str()).map(str::to_string))
        .filter(|f| set.files.contains_key(f));
    from_manifest.or_else(|| set.files.iter().max_by_key(|(_, d)| d.bytes).map(|(p, _)| p.clone()))
}

/// The input paths a build's manifest lists, resolved against the spec's folder.
fn manifest_inputs(set: &OutputSet, base: &Path) -> Vec<PathBuf> {
    let Some(m) = std::fs::read(set.dir.join("manifest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        return Vec::new();
    };
    m["inputs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["path"].as_str())
                .filter(|p| !p.contains('*'))
                .map(|p| base.join(p))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default()
}

fn describe(vs: &[Variation]) -> String {
    if vs.is_empty() {
        "nothing varied".into()
    } else if vs.len() == 1 {
        vs[0].describe()
    } else {
        format!("all at once: {}", vs.iter().map(|v| v.name()).collect::<Vec<_>>().join(", "))
    }
}

/// The exit code of an audit: 0 when everything reproduced, 1 when not.
pub fn exit_code(r: &AuditReport) -> u8 {
    if r.reproducible { 0 } else { 1 }
}

/// A file result is worth showing when it is not identical.
pub fn is_difference(s: FileStatus) -> bool {
    !matches!(s, FileStatus::Same | FileStatus::SameNormalised)
}
