//! Runs the audit's child builds: the work folder, the probes that say which variations can
//! run here, the reversed copies of directory inputs, one `reprodisk build` child process per
//! build (the running binary itself, [`std::env::current_exe`]), a pool of as many workers as
//! cores, and the sha256 of every output file.
//!
//! A child build is `sh -c SCRIPT` (under `unshare` when it needs a UTS or mount namespace):
//! the script sets the hostname, bind-mounts the reversed copies over the inputs, sets the
//! umask, preloads libfaketime and drops to `nobody` as the invocation asks, then execs the
//! binary. Its values travel in `REPRODISK_AUDIT_*` variables that the script unsets before
//! the exec, so the build sees only what the variation changes. A setup step that fails
//! exits 97, and the build is reported as not run, with the script's message.

use super::AuditError;
use super::variations::{Faketime, Invocation, NOBODY, Prepared, Variation};
use reprodisk_verifier::bytes::{ImageFile, ReadAt};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Instant;

/// Exit code of the child script when a setup step (hostname, mount, cd) failed.
const SETUP_FAILED: i32 = 97;
/// Files up to this size are also hashed after normalisation (see [`normalise`]).
pub const NORMALISE_MAX: u64 = 16 << 20;

/// The digest of one output file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileDigest {
    pub bytes: u64,
    pub sha256: String,
    /// sha256 after [`normalise`], for files small enough; equal to `sha256` when nothing
    /// was normalised.
    #[serde(skip)]
    pub normalised: Option<String>,
}

/// Every file a build wrote, by path relative to its output folder.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OutputSet {
    #[serde(skip)]
    pub dir: PathBuf,
    pub files: BTreeMap<String, FileDigest>,
}

impl OutputSet {
    /// Walks `dir` (as the build wrote it) and hashes every file.
    pub fn read(dir: &Path) -> std::io::Result<OutputSet> {
        let mut files = BTreeMap::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            let mut names: Vec<_> = std::fs::read_dir(dir.join(&rel))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()?;
            names.sort();
            for name in names {
                let rel = rel.join(&name);
                let path = dir.join(&rel);
                let meta = std::fs::symlink_metadata(&path)?;
                if meta.is_dir() {
                    stack.push(rel);
                } else {
                    files.insert(rel.to_string_lossy().into_owned(), digest(&path, dir)?);
                }
            }
        }
        Ok(OutputSet { dir: dir.to_path_buf(), files })
    }
}

/// sha256 of a file, skipping its holes (hashed as zeros without reading them), plus the
/// normalised digest for small files.
pub fn digest(path: &Path, out_dir: &Path) -> std::io::Result<FileDigest> {
    let f = ImageFile::open(path)?;
    let len = f.len();
    let mut h = Sha256::new();
    let zeros = vec![0u8; 1 << 20];
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    while pos < len {
        let (start, end) = f.next_data(pos)?.unwrap_or((len, len));
        let mut hole = start - pos;
        while hole > 0 {
            let n = hole.min(zeros.len() as u64) as usize;
            h.update(&zeros[..n]);
            hole -= n as u64;
        }
        let mut at = start;
        while at < end {
            let n = (end - at).min(buf.len() as u64) as usize;
            f.read_exact_at(&mut buf[..n], at)?;
            h.update(&buf[..n]);
            at += n as u64;
        }
        pos = end;
    }
    let sha256 = crate::manifest::hex(&h.finalize());
    let normalised = if len <= NORMALISE_MAX {
        let bytes = std::fs::read(path)?;
        let n = normalise(&bytes, out_dir, TextKind::of(path));
        Some(crate::manifest::sha256_reader(&n[..], |_| {})?)
    } else {
        None
    };
    Ok(FileDigest { bytes: len, sha256, normalised })
}

/// What is compared when raw bytes differ: the output folder's own path replaced by `$out`
/// (hydra-build-products names it, as the seed's does with `$out`; its paths are compared
/// after resolving `.` and `..`), and in a manifest the spec's path as given on the command
/// line replaced by `$spec` (it says where the build was started, not what it built), as is
/// the manifest's size and digest of hydra-build-products (which cover `$out`; that file is
/// compared on its own). All of these record where, not what; everything else counts.
pub fn normalise(bytes: &[u8], out_dir: &Path, kind: TextKind) -> Vec<u8> {
    let mut forms = vec![out_dir.to_path_buf()];
    if let Ok(c) = out_dir.canonicalize() {
        forms.push(c);
    }
    forms.sort_by_key(|f| std::cmp::Reverse(f.as_os_str().len()));
    let mut out = bytes.to_vec();
    match kind {
        TextKind::HydraProducts => {
            let Ok(text) = std::str::from_utf8(bytes) else { return out };
            let mut lines = Vec::new();
            for line in text.split_inclusive('\n') {
                let (body, nl) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
                let mut parts = body.splitn(3, ' ');
                let (kind, ty, path) = (parts.next(), parts.next(), parts.next());
                let rel = path.and_then(|p| {
                    let p = lexical(Path::new(p));
                    forms.iter().find_map(|f| p.strip_prefix(lexical(f)).ok().map(Path::to_path_buf))
                });
                match (kind, ty, rel) {
                    (Some(k), Some(t), Some(rel)) => {
                        lines.push(format!("{k} {t} $out/{}{nl}", rel.display()))
                    }
                    _ => lines.push(line.to_string()),
                }
            }
            out = lines.concat().into_bytes();
        }
        TextKind::Manifest | TextKind::Other => {
            for form in forms.iter().map(|f| f.display().to_string()).filter(|f| f.len() > 1) {
                out = replace(&out, form.as_bytes(), b"$out");
            }
        }
    }
    if kind == TextKind::Manifest
        && let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&out)
    {
        if let Some(p) = v.pointer_mut("/spec/path") {
            *p = serde_json::Value::String("$spec".into());
        }
        // The manifest's digest of hydra-build-products covers the `$out` path it names; the
        // file itself is compared on its own, after normalisation.
        if let Some(files) = v.pointer_mut("/files").and_then(|f| f.as_array_mut()) {
            for f in files.iter_mut().filter(|f| f["name"] == "nix-support/hydra-build-products") {
                f["bytes"] = serde_json::Value::String("$out-dependent".into());
                f["sha256"] = serde_json::Value::String("$out-dependent".into());
            }
        }
        if let Ok(s) = serde_json::to_vec_pretty(&v) {
            out = s;
        }
    }
    out
}

/// Which normalisation a file gets, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    Manifest,
    HydraProducts,
    Other,
}

impl TextKind {
    pub fn of(path: &Path) -> TextKind {
        match path.file_name().and_then(|n| n.to_str()) {
            Some("manifest.json") => TextKind::Manifest,
            Some("hydra-build-products") => TextKind::HydraProducts,
            _ => TextKind::Other,
        }
    }
}

/// `path` with `.` and `..` resolved by name (as `std::path::absolute` leaves them).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn replace(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

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
    /// A new folder in `parent` (kept afterwards) or in the system's temporary folder.
    pub fn new(parent: Option<&Path>) -> Result<WorkDir, AuditError> {
        let (path, keep, tmp) = match parent {
            Some(p) => {
                std::fs::create_dir_all(p).map_err(AuditError::io("creating", p))?;
                let p = p.canonicalize().map_err(AuditError::io("resolving", p))?;
                (p, true, None)
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("reprodisk-audit-")
                    .tempdir()
                    .map_err(AuditError::io("creating", &std::env::temp_dir()))?;
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

/// Removes a build's folder (outputs of a build that reproduced are not worth keeping).
pub fn remove_build(root: &Path) {
    // A failure to clean up one folder is not worth failing the audit; the work folder's own
    // removal retries it.
    let _ = std::fs::remove_dir_all(root);
}

/// What can run on this machine, found once before the builds.
#[derive(Debug, Clone)]
pub struct Host {
    pub root: bool,
    pub faketime: Result<Faketime, String>,
    pub uts: Result<(), String>,
    pub mount: Result<(), String>,
}

impl Host {
    pub fn probe() -> Host {
        let root = rustix::process::geteuid().is_root();
        let ns = |flag: &str| -> Result<(), String> {
            let mut c = Command::new("unshare");
            if !root {
                c.arg("--map-root-user");
            }
            match c.args([flag, "true"]).stderr(Stdio::piped()).stdout(Stdio::null()).output() {
                Ok(o) if o.status.success() => Ok(()),
                Ok(o) => {
                    Err(format!("`unshare {flag}` failed: {}", String::from_utf8_lossy(&o.stderr).trim()))
                }
                Err(e) => Err(format!("cannot run `unshare` ({e}): install the Debian package util-linux")),
            }
        };
        Host { root, faketime: probe_faketime(), uts: ns("--uts"), mount: ns("--mount") }
    }

    /// Why `v` cannot run here, if it cannot (checks that need the inputs come later).
    pub fn unavailable(&self, v: Variation) -> Option<String> {
        match v {
            Variation::Clock => self.faketime.as_ref().err().cloned(),
            Variation::Hostname => self.uts.as_ref().err().cloned(),
            Variation::Readdir => self.mount.as_ref().err().cloned(),
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

/// Runs `reprodisk build SPEC --out OUT` as `inv` says.
pub fn run_build(exe: &Path, spec: &Path, inv: &Invocation, base_env: &[(String, String)]) -> BuildEnd {
    match try_run_build(exe, spec, inv, base_env) {
        Ok(end) => end,
        Err(e) => BuildEnd::NotRun(e),
    }
}

fn try_run_build(
    exe: &Path,
    spec: &Path,
    inv: &Invocation,
    base_env: &[(String, String)],
) -> Result<BuildEnd, String> {
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
    for (i, (copy, orig)) in inv.binds.iter().enumerate() {
        let (src, dst) = (format!("REPRODISK_AUDIT_BIND_SRC_{i}"), format!("REPRODISK_AUDIT_BIND_DST_{i}"));
        script.push_str(&format!(
            "mount --bind \"${src}\" \"${dst}\" || {{ echo \"bind-mounting the reversed copy over ${dst} failed\" >&2; exit 97; }}\n"
        ));
        vars.push((src, copy.display().to_string()));
        vars.push((dst, orig.display().to_string()));
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

    let mut cmd = if inv.hostname.is_some() || !inv.binds.is_empty() {
        let mut c = Command::new("unshare");
        if !rustix::process::geteuid().is_root() {
            c.arg("--map-root-user");
        }
        if inv.hostname.is_some() {
            c.arg("--uts");
        }
        if !inv.binds.is_empty() {
            c.args(["--mount", "--propagation", "private"]);
        }
        c.args(["--", "sh", "-c", &script]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", &script]);
        c
    };
    cmd.arg("reprodisk-audit")
        .arg(exe)
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
    let status = child.wait().map_err(|e| format!("waiting for the build: {e}"))?;
    drop(stop_on_signal);
    let tail = log_tail(&log_path);
    if status.code() == Some(SETUP_FAILED) {
        return Ok(BuildEnd::NotRun(tail));
    }
    if !status.success() {
        return Ok(BuildEnd::Failed(format!("exit status {status}: {tail}")));
    }
    match OutputSet::read(&inv.out_abs) {
        Ok(set) => Ok(BuildEnd::Built(set)),
        Err(e) => Ok(BuildEnd::Failed(format!("reading the outputs in `{}`: {e}", inv.out_abs.display()))),
    }
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

/// How a filesystem orders `readdir` relative to the order entries were created in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DirOrder {
    Creation,
    NewestFirst,
    Other,
}

fn probe_dir_order(dir: &Path) -> std::io::Result<DirOrder> {
    let probe = dir.join("order-probe");
    std::fs::create_dir(&probe)?;
    let names = ["m", "c", "x", "a"];
    for n in names {
        std::fs::write(probe.join(n), b"")?;
    }
    let seen: Vec<String> = std::fs::read_dir(&probe)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into())
        .collect();
    std::fs::remove_dir_all(&probe)?;
    let mut rev = names.to_vec();
    rev.reverse();
    Ok(if seen == names {
        DirOrder::Creation
    } else if seen == rev {
        DirOrder::NewestFirst
    } else {
        DirOrder::Other
    })
}

/// The readdir variation's copies: for every directory input, a copy whose `readdir` order is
/// the opposite of the original's, with the same modes, owners, times, xattrs and hard links.
#[derive(Debug, Clone)]
pub struct ReversedCopies {
    pub prepared: Prepared,
    /// Folders with at least two entries, and how many of them list in another order.
    pub dirs: u64,
    pub reordered: u64,
    pub staged_in: PathBuf,
    /// Removes the copies on SIGINT, SIGTERM and SIGHUP.
    pub _signals: std::sync::Arc<crate::cleanup::Guard>,
}

/// Copies each of `inputs` (folders) into `work` (or a tmpfs, where creation order decides
/// `readdir` order, when one has room) in reversed order.
pub fn reversed_copies(inputs: &[PathBuf], work: &Path) -> Result<ReversedCopies, String> {
    let size: u64 = inputs.iter().map(|p| tree_bytes(p)).sum();
    let shm = Path::new("/dev/shm");
    let room = |p: &Path| rustix::fs::statvfs(p).map(|s| s.f_bavail.saturating_mul(s.f_frsize)).unwrap_or(0);
    let stage_root = if shm.is_dir() && room(shm) > size.saturating_mul(2) + (256 << 20) {
        tempfile::Builder::new()
            .prefix("reprodisk-audit-readdir-")
            .tempdir_in(shm)
            .map(|t| t.keep())
            .map_err(|e| format!("creating a folder in /dev/shm: {e}"))?
    } else {
        let p = work.join("readdir-copies");
        std::fs::create_dir_all(&p).map_err(|e| format!("creating `{}`: {e}", p.display()))?;
        p
    };
    let signals = std::sync::Arc::new(crate::cleanup::register(&stage_root));
    std::fs::set_permissions(&stage_root, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("opening up `{}`: {e}", stage_root.display()))?;
    let copy_all = || -> Result<(Copier, Vec<(PathBuf, PathBuf)>), String> {
        let order = probe_dir_order(&stage_root).map_err(|e| format!("probing readdir order: {e}"))?;
        let mut copier = Copier { order, links: HashMap::new(), dirs: 0, reordered: 0 };
        let mut binds = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            let dst = stage_root.join(format!("input-{i}"));
            copier
                .copy(input, &dst)
                .map_err(|e| format!("copying `{}` in reverse order: {e}", input.display()))?;
            binds.push((dst, input.clone()));
        }
        Ok((copier, binds))
    };
    let (copier, mut binds) = match copy_all() {
        Ok(done) => done,
        Err(e) => {
            remove_build(&stage_root);
            return Err(e);
        }
    };
    // Outer folders first, so that a nested input's copy is mounted over the outer copy.
    binds.sort_by_key(|(_, orig)| orig.components().count());
    Ok(ReversedCopies {
        prepared: Prepared { faketime: None, binds },
        dirs: copier.dirs,
        reordered: copier.reordered,
        staged_in: stage_root,
        _signals: signals,
    })
}

fn tree_bytes(p: &Path) -> u64 {
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

struct Copier {
    order: DirOrder,
    links: HashMap<(u64, u64), PathBuf>,
    dirs: u64,
    reordered: u64,
}

impl Copier {
    fn copy(&mut self, src: &Path, dst: &Path) -> std::io::Result<()> {
        let meta = std::fs::symlink_metadata(src)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            std::fs::create_dir(dst)?;
            let original: Vec<_> =
                std::fs::read_dir(src)?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
            // Create in the order that makes this filesystem list the opposite of `original`.
            let mut create = original.clone();
            if self.order != DirOrder::NewestFirst {
                create.reverse();
            }
            for name in &create {
                self.copy(&src.join(name), &dst.join(name))?;
            }
            if original.len() >= 2 {
                self.dirs += 1;
                let copied: Vec<_> =
                    std::fs::read_dir(dst)?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
                if copied != original {
                    self.reordered += 1;
                }
            }
        } else if ft.is_file() {
            let key = (meta.dev(), meta.ino());
            if meta.nlink() > 1 {
                if let Some(first) = self.links.get(&key) {
                    return std::fs::hard_link(first, dst);
                }
                self.links.insert(key, dst.to_path_buf());
            }
            std::fs::copy(src, dst)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(src)?, dst)?;
        } else {
            // FIFOs, sockets and devices: GNU cp makes them like the original.
            let o = Command::new("cp").arg("-a").arg(src).arg(dst).output()?;
            if !o.status.success() {
                return Err(std::io::Error::other(String::from_utf8_lossy(&o.stderr).trim().to_string()));
            }
        }
        std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()))?;
        if !ft.is_symlink() {
            // After chown, which clears set-id bits.
            std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
        for name in xattr::list(src)? {
            if let Some(value) = xattr::get(src, &name)? {
                xattr::set(dst, &name, &value)?;
            }
        }
        let ts = |s: i64, ns: i64| rustix::fs::Timespec { tv_sec: s, tv_nsec: ns as _ };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            dst,
            &rustix::fs::Timestamps {
                last_access: ts(meta.atime(), meta.atime_nsec()),
                last_modification: ts(meta.mtime(), meta.mtime_nsec()),
            },
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )?;
        Ok(())
    }
}

/// One build to run: its name, the variations it applies, and its invocation.
pub struct Job {
    pub name: String,
    pub variations: Vec<Variation>,
    pub inv: Invocation,
    /// Why it cannot run, known before it starts.
    pub blocked: Option<String>,
}

/// A finished job.
pub struct Finished {
    pub end: BuildEnd,
    pub seconds: f64,
}

/// Runs `jobs` on `workers` threads; `jobs[0]` is the control and starts first. `before`
/// runs on the worker just before a job starts (it may block it, e.g. until the control has
/// finished) and `after` when it ends.
pub fn run_pool(
    jobs: &mut [Job],
    workers: usize,
    before: &(dyn Fn(&mut Job, &Gate) + Sync),
    run: &(dyn Fn(&Job, &Gate) -> BuildEnd + Sync),
) -> Vec<Finished> {
    let next = Mutex::new(0usize);
    let gate = Gate::default();
    let results: Vec<OnceLock<Finished>> = jobs.iter().map(|_| OnceLock::new()).collect();
    let slots: Vec<Mutex<&mut Job>> = jobs.iter_mut().map(Mutex::new).collect();
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().unwrap_or_else(|e| e.into_inner());
                        let i = *n;
                        *n += 1;
                        i
                    };
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

/// Reads a whole (small) file as text, for explanations.
pub fn read_text(path: &Path, max: u64) -> Option<String> {
    let f = std::fs::File::open(path).ok()?;
    let mut s = String::new();
    f.take(max).read_to_string(&mut s).ok()?;
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_the_output_folder_and_the_spec_path() {
        let out = Path::new("/tmp/x/out");
        let h = TextKind::HydraProducts;
        assert_eq!(normalise(b"file raw-image /tmp/x/out/a.img\n", out, h), b"file raw-image $out/a.img\n");
        assert_eq!(
            normalise(b"file raw-image /tmp/x/y z/../out/a.img\n", out, h),
            b"file raw-image $out/a.img\n"
        );
        assert_eq!(normalise(b"file raw-image /tmp/y/a.img\n", out, h), b"file raw-image /tmp/y/a.img\n");
        let m = TextKind::Manifest;
        let a = normalise(br#"{"spec": {"path": "a.toml", "sha256": "1"}}"#, out, m);
        let b = normalise(br#"{"spec": {"path": "/b/a.toml", "sha256": "1"}}"#, out, m);
        assert_eq!(a, b);
        let files = |h: &str| {
            format!(
                r#"{{"files": [{{"name": "nix-support/hydra-build-products", "sha256": "{h}"}}, {{"name": "x.img", "sha256": "1"}}]}}"#
            )
        };
        assert_eq!(normalise(files("1").as_bytes(), out, m), normalise(files("2").as_bytes(), out, m));
        let other = r#"{"files": [{"name": "x.img", "sha256": "2"}]}"#;
        assert_ne!(normalise(files("1").as_bytes(), out, m), normalise(other.as_bytes(), out, m));
        let c = normalise(br#"{"spec": {"path": "a.toml", "sha256": "2"}}"#, out, m);
        assert_ne!(a, c);
    }

    #[test]
    fn reversed_copy_keeps_everything_but_order() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("d")).unwrap();
        for n in ["b", "a", "c", "d/z", "d/y"] {
            std::fs::write(src.join(n), n).unwrap();
        }
        std::fs::hard_link(src.join("a"), src.join("d/a-link")).unwrap();
        std::fs::set_permissions(src.join("b"), std::fs::Permissions::from_mode(0o4751)).unwrap();
        std::os::unix::fs::symlink("a", src.join("s")).unwrap();
        let c = reversed_copies(std::slice::from_ref(&src), t.path()).unwrap();
        let (copy, orig) = &c.prepared.binds[0];
        assert_eq!(orig, &src);
        for n in ["b", "a", "c", "d/z", "d/y", "d/a-link"] {
            let (m1, m2) =
                (std::fs::metadata(src.join(n)).unwrap(), std::fs::metadata(copy.join(n)).unwrap());
            assert_eq!(std::fs::read(src.join(n)).unwrap(), std::fs::read(copy.join(n)).unwrap());
            assert_eq!(
                (m1.mode(), m1.uid(), m1.mtime(), m1.mtime_nsec()),
                (m2.mode(), m2.uid(), m2.mtime(), m2.mtime_nsec())
            );
        }
        assert_eq!(std::fs::read_link(copy.join("s")).unwrap(), Path::new("a"));
        assert_eq!(
            std::fs::metadata(copy.join("a")).unwrap().ino(),
            std::fs::metadata(copy.join("d/a-link")).unwrap().ino()
        );
        assert_eq!(c.dirs, 2);
        std::fs::remove_dir_all(&c.staged_in).unwrap();
    }
}
