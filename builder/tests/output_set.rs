//! The output set is all or nothing: signals, SIGKILL, ENOSPC and things in the way at several moments of a build leave the old set or the new one, never a mix; a compressed root's scratch goes with the stage, and a running build's stage is never taken.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A source folder with a file of `mib` MiB of non-zero bytes (so writing the image takes
/// a moment and costs real space), and two specs A and B whose images differ in `/etc/motd`.
struct Fixture {
    _dir: tempfile::TempDir,
    a: PathBuf,
    b: PathBuf,
}

fn fixture(mib: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("data")).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..mib << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8 | 1
        })
        .collect();
    std::fs::write(root.join("data/blob"), bytes).unwrap();
    let mut specs = Vec::new();
    for name in ["a", "b"] {
        std::fs::write(dir.path().join(format!("motd-{name}")), format!("set {name}\n")).unwrap();
        let spec = format!(
            r#"{{"partitionTableType": "legacy", "diskSize": "auto", "baseName": "disk",
                "system": {{"root": "root"}}, "installBootLoader": false,
                "contents": [{{"source": "motd-{name}", "target": "/etc/motd"}}]}}"#
        );
        specs.push(common::write(dir.path(), &format!("{name}.json"), &spec));
    }
    let b = specs.pop().unwrap();
    let a = specs.pop().unwrap();
    Fixture { _dir: dir, a, b }
}

/// Which complete set `out` holds: the image sha256 its manifest records, after checking
/// that every file the manifest lists is there with the recorded sha256. `None` without a
/// manifest.
fn committed_set(out: &Path) -> Option<String> {
    let bytes = std::fs::read(out.join("manifest.json")).ok()?;
    let m: serde_json::Value = serde_json::from_slice(&bytes).expect("a committed manifest is complete JSON");
    let files = m["files"].as_array().expect("the manifest lists its files");
    assert!(files.len() >= 2, "{files:?}");
    for f in files {
        let path = out.join(f["name"].as_str().unwrap());
        assert!(path.is_file(), "{} is missing", path.display());
        if let Some(sha) = f["sha256"].as_str() {
            assert_eq!(common::sha256(&path), sha, "{} is not the manifest's", path.display());
        }
    }
    let image = out.join(m["output"]["file"].as_str().unwrap());
    let products = std::fs::read_to_string(out.join("nix-support/hydra-build-products")).unwrap();
    assert!(products.trim_end().ends_with(image.file_name().unwrap().to_str().unwrap()), "{products}");
    Some(m["output"]["sha256"].as_str().unwrap().to_string())
}

/// The names of `.reprodisk*` temporaries in `out`.
fn temporaries(out: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(out) else { return Vec::new() };
    rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".reprodisk"))
        .collect()
}

/// Builds `spec` into `out` and returns the image sha256 of the committed set.
fn build_ok(spec: &Path, out: &Path) -> String {
    common::build(spec, out);
    committed_set(out).expect("a finished build commits a set")
}

/// A build started in the background, its stderr read line by line.
struct Running {
    child: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStderr>>,
    log: String,
}

impl Running {
    /// Starts `reprodisk build SPEC --out OUT`, with `TMPDIR` set to `tmp` when given.
    fn start(spec: &Path, out: &Path, tmp: Option<&Path>) -> Running {
        let mut cmd = Command::new(common::BIN);
        cmd.args(["build", spec.to_str().unwrap(), "--out", out.to_str().unwrap(), "--json"])
            .env_remove("SOURCE_DATE_EPOCH")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(t) = tmp {
            cmd.env("TMPDIR", t);
        }
        let mut child = cmd.spawn().unwrap();
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        Running { child, lines, log: String::new() }
    }

    /// Reads stderr until a line contains `moment` (true) or the build ends (false).
    fn wait_for(&mut self, moment: &str) -> bool {
        for line in self.lines.by_ref() {
            let line = line.unwrap();
            self.log += &line;
            self.log += "\n";
            if line.contains(moment) {
                return true;
            }
        }
        false
    }

    fn kill(&self, signal: &str) {
        let k = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(k.success());
    }

    /// Reads the rest of stderr and waits: the exit status.
    fn finish(&mut self) -> std::process::ExitStatus {
        for line in self.lines.by_ref() {
            self.log += &line.unwrap();
            self.log += "\n";
        }
        self.child.wait().unwrap()
    }
}

/// Starts a build of `spec` into `out`, sends `signal` once stderr shows a line containing
/// `moment`, and returns the exit code.
fn build_and_signal(spec: &Path, out: &Path, moment: &str, signal: &str) -> i32 {
    build_and_signal_in(spec, out, moment, signal, None)
}

/// [`build_and_signal`] with the child's `TMPDIR` set to `tmp`.
fn build_and_signal_in(spec: &Path, out: &Path, moment: &str, signal: &str, tmp: Option<&Path>) -> i32 {
    let mut run = Running::start(spec, out, tmp);
    if run.wait_for(moment) {
        run.kill(signal);
    }
    let status = run.finish();
    let log = run.log;
    // SIGKILL leaves no exit code; the others are caught and answered with 128 + N.
    let code = status.code().unwrap_or(-1);
    assert!(log.contains(moment) || code == 0, "never reached `{moment}`: {log}");
    if signal != "KILL" && code != 0 {
        assert!(log.contains("interrupted by SIG"), "{log}");
    }
    code
}

const MOMENTS: [&str; 4] = [
    "reading the sources",
    "writing the partition table",
    "writing the root filesystem",
    "hashing the image",
];

#[test]
fn signals_at_every_moment_leave_one_set_and_no_temporaries() {
    let f = fixture(8);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let old = build_ok(&f.a, &out);
    let new = {
        let other = work.path().join("other");
        build_ok(&f.b, &other)
    };
    assert_ne!(old, new);
    for (signal, code) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        for moment in MOMENTS {
            let got = build_and_signal(&f.b, &out, moment, signal);
            assert!(got == code || got == 0, "SIG{signal} at `{moment}`: exit {got}");
            let set = committed_set(&out).expect("a set stays committed");
            assert!(set == old || set == new, "SIG{signal} at `{moment}`: a third set");
            assert_eq!(temporaries(&out), Vec::<String>::new(), "SIG{signal} at `{moment}`");
            if set == new {
                // Start over from the old set for the next moment.
                build_ok(&f.a, &out);
            }
        }
    }
}

#[test]
fn sigkill_leaves_one_set_and_the_next_build_clears_its_stage() {
    let f = fixture(8);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let old = build_ok(&f.a, &out);
    for moment in MOMENTS {
        build_and_signal(&f.b, &out, moment, "KILL");
        // The commit window (a few renames) is far shorter than a build; the stage stays.
        let set = committed_set(&out).expect("a set stays committed");
        let left = temporaries(&out);
        assert!(set == old || left.is_empty(), "SIGKILL at `{moment}`: {left:?}");
        let new = build_ok(&f.b, &out);
        assert_eq!(temporaries(&out), Vec::<String>::new(), "the stale stage of SIGKILL at `{moment}` stays");
        assert_ne!(new, old);
        build_ok(&f.a, &out);
    }
}

#[test]
fn a_file_named_nix_support_fails_before_anything_is_written() {
    let f = fixture(1);
    let work = tempfile::tempdir().unwrap();
    let p1 = work.path().join("p1");
    std::fs::create_dir(&p1).unwrap();
    std::fs::write(p1.join("nix-support"), "").unwrap();
    let o = common::reprodisk(&["build", f.a.to_str().unwrap(), "--out", p1.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("nix-support` is in the way of the output: it is not a folder"), "{err}");
    let names: Vec<_> = std::fs::read_dir(&p1).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["nix-support"]);

    // The same with an old set in place: it stays whole.
    let out = work.path().join("out");
    let old = build_ok(&f.a, &out);
    std::fs::remove_dir_all(out.join("nix-support")).unwrap();
    std::fs::write(out.join("nix-support"), "").unwrap();
    let o = common::reprodisk(&["build", f.b.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(common::sha256(&out.join("disk.img")), old);
    assert_eq!(temporaries(&out), Vec::<String>::new());
}

/// Unmounts the tmpfs when the test ends, whatever happens.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn avail(path: &Path) -> u64 {
    let o = common::tool("df", "coreutils", &["-B1", "--output=avail", path.to_str().unwrap()]);
    String::from_utf8_lossy(&o.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
}

#[test]
fn enospc_at_every_moment_leaves_one_set() {
    let f = fixture(6);
    let mnt = tempfile::tempdir().unwrap();
    let o = common::tool(
        "mount",
        "mount",
        &["-t", "tmpfs", "-o", "size=64m", "tmpfs", mnt.path().to_str().unwrap()],
    );
    assert!(
        o.status.success(),
        "this test mounts a tmpfs and needs root: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let _mount = Mount(mnt.path().to_path_buf());
    let out = mnt.path().join("out");
    let old = build_ok(&f.a, &out);
    // What a second set takes: its stage holds about as much as the committed one.
    let used = 64 * (1 << 20) - avail(mnt.path());
    let filler = mnt.path().join("filler");
    let mut outcomes = (0, 0);
    // Free space from far too little (fails while the image is written) up to just enough,
    // in 4 KiB steps around the end (fails writing nix-support or the manifest).
    let mut frees: Vec<u64> = vec![1 << 20, used / 2, used - (256 << 10)];
    frees.extend((0..10).map(|k| used - (48 << 10) + k * 8192));
    for free in frees {
        let fill = avail(mnt.path()).saturating_sub(free);
        let st =
            common::tool("fallocate", "util-linux", &["-l", &fill.to_string(), filler.to_str().unwrap()]);
        assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
        let o = common::reprodisk(&["build", f.b.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        let set = committed_set(&out).expect("a set stays committed");
        if o.status.success() {
            outcomes.1 += 1;
            build_ok(&f.a, &out);
        } else {
            outcomes.0 += 1;
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{err}");
            assert!(err.contains("No space left on device"), "free {free}: {err}");
            assert_eq!(set, old, "free {free}");
        }
        assert_eq!(temporaries(&out), Vec::<String>::new(), "free {free}");
        std::fs::remove_file(&filler).unwrap();
    }
    assert!(outcomes.0 >= 3, "no build ran out of space: {outcomes:?}");
}

#[test]
fn a_running_builds_stage_is_left_alone_by_the_next_build() {
    let f = fixture(8);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let old = build_ok(&f.a, &out);
    let new = build_ok(&f.b, &work.path().join("other"));
    // Build B stopped (not killed) while it writes its image: its stage is in use, locked.
    let mut b = Running::start(&f.b, &out, None);
    assert!(b.wait_for("writing the root filesystem"), "{}", b.log);
    b.kill("STOP");
    let stage = temporaries(&out);
    assert_eq!(stage.len(), 1, "{stage:?}");
    // A build started meanwhile commits its own set and leaves B's stage where it is.
    let again = build_ok(&f.a, &out);
    assert_eq!(again, old);
    assert_eq!(temporaries(&out), stage, "the running build's stage was removed");
    b.kill("CONT");
    let status = b.finish();
    assert!(status.success(), "the stopped build failed after the other one ran: {}", b.log);
    assert_eq!(committed_set(&out), Some(new));
    assert_eq!(temporaries(&out), Vec::<String>::new());
}

#[test]
fn a_compressed_roots_scratch_goes_with_the_stage_on_signals() {
    let f = fixture(8);
    let root = f.a.parent().unwrap().join("root");
    let tgz = f.a.parent().unwrap().join("root.tar.gz");
    let o = common::tool(
        "tar",
        "tar",
        &["-C", root.to_str().unwrap(), "--numeric-owner", "-czf", tgz.to_str().unwrap(), "."],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let spec = common::write(
        f.a.parent().unwrap(),
        "tgz.json",
        r#"{"partitionTableType": "legacy", "diskSize": "auto", "baseName": "disk",
            "system": {"root": "root.tar.gz"}, "installBootLoader": false}"#,
    );
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let tmp = work.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let old = build_ok(&f.a, &out);
    for (signal, code) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        for moment in MOMENTS {
            let got = build_and_signal_in(&spec, &out, moment, signal, Some(&tmp));
            assert!(got == code || got == 0, "SIG{signal} at `{moment}`: exit {got}");
            let set = committed_set(&out).expect("a set stays committed");
            assert_eq!(temporaries(&out), Vec::<String>::new(), "SIG{signal} at `{moment}`");
            let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert!(left.is_empty(), "SIG{signal} at `{moment}` left {left:?} in TMPDIR");
            if set != old {
                build_ok(&f.a, &out);
            }
        }
    }
}
