//! `reprodisk audit` end to end: the examples reproduce under every variation; random IDs, a
//! clock-dependent and a readdir-dependent byte are caught under exactly the right variations;
//! `--against` passes on a rebuild and names a changed input or an altered field; the HTML
//! report renders in headless Chromium with its disk map and table.
//!
//! Run as root (as CI does): the `uid`, `hostname` and `readdir` variations need it, and a
//! variation that does not run here fails these tests instead of being skipped.

use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_reprodisk-under-test");
const HOOKED: &str = env!("CARGO_BIN_EXE_reprodisk-audit-hooked");

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").canonicalize().unwrap()
}

/// A temporary folder `nobody` can enter (the `uid` variation builds inside it).
fn open_tempdir() -> tempfile::TempDir {
    let t = tempfile::Builder::new().prefix("reprodisk-audit-test-").tempdir().unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    t
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("audit --json printed no JSON ({e}):\n{}\n{}", self.stdout, self.stderr)
        })
    }
}

/// Runs `bin ARGS` with its own TMPDIR, and checks that the audit left nothing in it.
fn run(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let tmp = open_tempdir();
    let mut c = Command::new(bin);
    c.args(args).env("TMPDIR", tmp.path()).env("CI", "true").env_remove("SOURCE_DATE_EPOCH");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("the reprodisk binary runs");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "the audit left temporary files: {left:?}");
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Each build's name and status from an audit's JSON.
fn statuses(j: &Value) -> BTreeMap<String, String> {
    j["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_string(), r["status"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn examples_reproduce_under_every_variation() {
    for name in ["efi.toml", "legacy.json"] {
        let spec = examples().join(name);
        let r = run(BIN, &["audit", spec.to_str().unwrap(), "--json"], &[]);
        assert_eq!(r.code, 0, "{name}: audit exited {}:\n{}\n{}", r.code, r.stdout, r.stderr);
        let j = r.json();
        let s = statuses(&j);
        assert_eq!(s.len(), 10, "{name}: nine variations and all: {s:?}");
        for (b, status) in &s {
            // legacy.json has no directory input: there is no readdir order to vary, and the
            // report says so.
            if name == "legacy.json" && b == "readdir" {
                assert_eq!(status, "not-run");
                let reason = j["results"][5]["reason"].as_str().unwrap();
                assert!(reason.contains("no directory inputs"), "{reason}");
                continue;
            }
            assert_eq!(status, "reproduced", "{name}: {b}: {}", r.stdout);
        }
        assert_eq!(j["reproducible"], true);
        let files: Vec<&str> =
            j["reference"]["files"].as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert!(
            files.contains(&"manifest.json") && files.contains(&"nix-support/hydra-build-products"),
            "{files:?}"
        );
        // The control's image is hashed after the builds have compared with it: every digest
        // in the report, the control's and those taken over from it, is a real one.
        let mut digests = Vec::new();
        collect_digests(&j, &mut digests);
        assert!(digests.len() > 20, "{name}: {digests:?}");
        for d in digests {
            assert!(d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()), "{name}: digest `{d}`");
        }
    }
}

/// Every `sha256` and `reference_sha256` value in a report.
fn collect_digests<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x.as_str()) {
                    ("sha256" | "reference_sha256", Some(s)) => out.push(s),
                    _ => collect_digests(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_digests(x, out)),
        _ => {}
    }
}

#[test]
fn random_ids_fail_and_name_the_guids() {
    let t = open_tempdir();
    let spec = t.path().join("random.json");
    std::fs::write(
        &spec,
        r#"{"partitionTableType": "efi", "diskSize": 40, "bootSize": "16M", "deterministic": false}"#,
    )
    .unwrap();
    let r = run(BIN, &["audit", spec.to_str().unwrap(), "--vary", "tz", "--json"], &[]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(statuses(&j)["tz"], "differs");
    let image =
        j["results"][0]["files"].as_array().unwrap().iter().find(|f| f["path"] == "nixos.img").unwrap();
    let names: Vec<&str> =
        image["diff"]["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    for field in ["DiskGUID", "UniquePartitionGUID", "ext4 superblock s_uuid"] {
        assert!(names.iter().any(|n| n.contains(field)), "no group names {field}: {names:#?}");
    }
    let text = run(BIN, &["audit", spec.to_str().unwrap(), "--vary", "tz"], &[]);
    assert!(text.stdout.contains("DiskGUID"), "{}", text.stdout);
}

/// An audit of the efi example with the hooked binary injecting `what`: exactly `expect` differ.
fn injected(what: &str, expect: &[&str]) {
    let spec = examples().join("efi.toml");
    let r =
        run(HOOKED, &["audit", spec.to_str().unwrap(), "--json"], &[("REPRODISK_AUDIT_TEST_INJECT", what)]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    let differing: Vec<String> = statuses(&j)
        .into_iter()
        .filter(|(_, s)| s != "reproduced")
        .map(|(n, s)| format!("{n}:{s}"))
        .collect();
    let want: Vec<String> = expect.iter().map(|n| format!("{n}:differs")).collect();
    assert_eq!(differing, want, "{}", r.stdout);
    for res in j["results"].as_array().unwrap().iter().filter(|r| r["status"] == "differs") {
        let files = res["files"].as_array().unwrap();
        let bad: Vec<&Value> =
            files.iter().filter(|f| f["status"] != "same" && f["status"] != "same-normalised").collect();
        assert_eq!(bad.len(), 1, "only the image differs: {bad:#?}");
        assert_eq!(bad[0]["path"], "example.img");
        let first = bad[0]["first"].as_str().unwrap();
        assert!(first.starts_with("mbr"), "the injected byte is in the MBR's boot code: {first}");
    }
}

#[test]
fn a_clock_dependent_byte_fails_under_the_clock_only() {
    injected("clock", &["all", "clock"]);
}

#[test]
fn a_readdir_dependent_byte_fails_under_readdir_only() {
    injected("readdir", &["all", "readdir"]);
}

/// A project folder: spec, root tree and motd, by relative paths.
fn project(t: &Path, layout: &str) -> PathBuf {
    let dir = t.join("project");
    let o = Command::new("cp").arg("-a").arg(examples()).arg(&dir).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let spec = dir.join("spec.toml");
    std::fs::write(
        &spec,
        format!(
            "partition_table_type = \"{layout}\"\ndisk_size = 48\nboot_size = \"16M\"\ninstall_boot_loader = false\n[system]\nroot = \"root\"\n[[contents]]\nsource = \"motd\"\ntarget = \"/etc/motd\"\n"
        ),
    )
    .unwrap();
    spec
}

fn build(spec: &Path, out: &Path) {
    let o =
        Command::new(BIN).arg("build").arg(spec).arg("--out").arg(out).env("CI", "true").output().unwrap();
    assert!(o.status.success(), "build: {}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn against_passes_on_a_rebuild_and_names_a_changed_input() {
    let t = open_tempdir();
    let spec = project(t.path(), "efi");
    let out = t.path().join("result");
    build(&spec, &out);
    let image = out.join("nixos.img");
    let args = ["audit", "--against", image.to_str().unwrap(), spec.to_str().unwrap()];
    let r = run(BIN, &args, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("unchanged    motd"), "{}", r.stdout);

    std::fs::write(spec.parent().unwrap().join("motd"), "changed since the build\n").unwrap();
    let r = run(BIN, &[&args[..], &["--json"]].concat(), &[]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    let motd = j["inputs"].as_array().unwrap().iter().find(|i| i["path"] == "motd").unwrap();
    assert_eq!(motd["status"], "changed", "{motd}");
    let text = run(BIN, &args, &[]);
    assert!(text.stdout.contains("CHANGED      motd"), "{}", text.stdout);
    assert!(text.stdout.contains("file /etc/motd data"), "the diff names the file: {}", text.stdout);
}

#[test]
fn against_names_the_field_of_an_altered_image() {
    let t = open_tempdir();
    let spec = project(t.path(), "none");
    let out = t.path().join("result");
    build(&spec, &out);
    let copy = t.path().join("copy");
    assert!(Command::new("cp").arg("-a").arg(&out).arg(&copy).status().unwrap().success());
    let image = copy.join("nixos.img");
    let o = Command::new("tune2fs").arg("-L").arg("altered").arg(&image).output();
    let o = o.unwrap_or_else(|e| panic!("tune2fs: {e}: install the Debian package e2fsprogs"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = run(BIN, &["audit", "--against", image.to_str().unwrap(), spec.to_str().unwrap()], &[]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("s_volume_name"), "{}", r.stdout);
    assert!(r.stdout.contains("\"altered\""), "{}", r.stdout);
}

/// The pixels of an 8-bit RGB or RGBA PNG, decoded with the filters undone.
fn png_pixels(png: &[u8]) -> (u32, u32, Vec<[u8; 3]>) {
    use std::io::Read;
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let (mut w, mut h, mut bpp, mut idat) = (0u32, 0u32, 0usize, Vec::new());
    let mut i = 8;
    while i + 8 <= png.len() {
        let len = u32::from_be_bytes(png[i..i + 4].try_into().unwrap()) as usize;
        let kind = &png[i + 4..i + 8];
        let data = &png[i + 8..i + 8 + len];
        match kind {
            b"IHDR" => {
                w = u32::from_be_bytes(data[0..4].try_into().unwrap());
                h = u32::from_be_bytes(data[4..8].try_into().unwrap());
                assert_eq!(data[8], 8, "8-bit PNG expected");
                bpp = match data[9] {
                    2 => 3,
                    6 => 4,
                    c => panic!("PNG colour type {c} not handled"),
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        i += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..]).read_to_end(&mut raw).unwrap();
    let stride = w as usize * bpp;
    let mut prev = vec![0u8; stride];
    let mut px = Vec::with_capacity((w * h) as usize);
    for row in raw.chunks(stride + 1).take(h as usize) {
        let (f, line) = (row[0], &row[1..]);
        let mut cur = vec![0u8; stride];
        for x in 0..stride {
            let a = if x >= bpp { cur[x - bpp] as i16 } else { 0 };
            let b = prev[x] as i16;
            let c = if x >= bpp { prev[x - bpp] as i16 } else { 0 };
            let pred = match f {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) / 2,
                4 => {
                    let p = a + b - c;
                    let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                _ => panic!("bad PNG filter {f}"),
            };
            cur[x] = line[x].wrapping_add(pred as u8);
        }
        px.extend(cur.chunks(bpp).map(|p| [p[0], p[1], p[2]]));
        prev = cur;
    }
    (w, h, px)
}

#[test]
fn the_html_report_renders_in_headless_chromium() {
    let t = open_tempdir();
    let html = t.path().join("audit.html");
    let spec = examples().join("efi.toml");
    let r = run(
        HOOKED,
        &["audit", spec.to_str().unwrap(), "--vary", "clock,tz", "--html", html.to_str().unwrap()],
        &[("REPRODISK_AUDIT_TEST_INJECT", "clock")],
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("<table"), "no map or table");
    for external in ["<script", "src=\"http", "href=\"http", "@import", "url("] {
        assert!(!page.contains(external), "the page is not self-contained: {external}");
    }
    let profile = t.path().join("chromium-profile");
    std::fs::create_dir(&profile).unwrap();
    let png = t.path().join("audit.png");
    let o = Command::new("timeout")
        .args(["120", "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic"])
        .args([
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1200,900")
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(
        png.is_file(),
        "chromium wrote no screenshot (install the Debian package chromium: bash .ci/setup): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (w, h, px) = png_pixels(&std::fs::read(&png).unwrap());
    assert_eq!((w, h), (1200, 900));
    let near = |c: [u8; 3]| px.iter().filter(|p| p.iter().zip(c).all(|(a, b)| a.abs_diff(b) <= 6)).count();
    let distinct: std::collections::HashSet<[u8; 3]> = px.iter().copied().collect();
    assert!(distinct.len() > 50, "the screenshot has only {} colours", distinct.len());
    // The map's metadata and journal colours, the red marks of the differing byte, and the
    // table's header background.
    for (what, c) in [
        ("metadata", [0xe6, 0x7e, 0x22]),
        ("journal", [0x16, 0xa0, 0x85]),
        ("difference", [0xd3, 0x2f, 0x2f]),
        ("table header", [0xec, 0xef, 0xf1]),
    ] {
        assert!(near(c) > 50, "the screenshot shows no {what} colour");
    }
}

#[test]
fn bad_input_exits_2_and_leaves_nothing() {
    let t = open_tempdir();
    let missing = t.path().join("missing.toml");
    let r = run(BIN, &["audit", missing.to_str().unwrap()], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let spec = examples().join("efi.toml");
    let r = run(BIN, &["audit", spec.to_str().unwrap(), "--vary", "tz,moon"], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("unknown variation `moon`"), "{}", r.stderr);
    // A spec that parses but cannot be built: the control build fails, the audit says so,
    // exits 2, and (checked by `run`) removes every temporary build.
    let bad = t.path().join("too-small.json");
    std::fs::write(&bad, r#"{"partitionTableType": "efi", "diskSize": 20}"#).unwrap();
    let r = run(BIN, &["audit", bad.to_str().unwrap()], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("the control build failed"), "{}", r.stderr);
    let r = run(BIN, &["audit", "--against", missing.to_str().unwrap(), spec.to_str().unwrap()], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn out_keeps_the_control_and_the_builds_that_differ() {
    let t = open_tempdir();
    let keep = t.path().join("kept");
    let spec = examples().join("efi.toml");
    let r = run(
        HOOKED,
        &["audit", spec.to_str().unwrap(), "--vary", "clock,tz", "--out", keep.to_str().unwrap()],
        &[("REPRODISK_AUDIT_TEST_INJECT", "clock")],
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let mut kept: Vec<String> = std::fs::read_dir(&keep)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    kept.sort();
    assert_eq!(kept, ["all", "clock", "control"], "tz reproduced and was removed");
    assert!(keep.join("clock/out/example.img").is_file());
    assert!(
        r.stdout.contains(&format!("builds kept in {}", keep.canonicalize().unwrap().display())),
        "{}",
        r.stdout
    );
}

#[test]
fn an_interrupted_audit_removes_its_builds() {
    use std::io::{BufRead, BufReader};
    let tmp = open_tempdir();
    let spec = examples().join("efi.toml");
    let mut child = Command::new(BIN)
        .args(["audit", spec.to_str().unwrap()])
        .env("TMPDIR", tmp.path())
        .env("CI", "true")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // Wait until builds are under way (the work folder and the first builds exist).
    let mut built = 0;
    while built < 3 {
        let line = lines.next().expect("the audit reports its builds").unwrap();
        built += usize::from(line.contains(" built in "));
    }
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "exit code after SIGINT");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "an interrupted audit left {left:?}");
}

/// A new folder `dir` holding an empty file of each name.
fn folder_of(dir: &Path, names: impl Iterator<Item = String>) -> PathBuf {
    std::fs::create_dir(dir).unwrap();
    for n in names {
        std::fs::write(dir.join(n), b"").unwrap();
    }
    dir.to_path_buf()
}

/// `ls -f DIR` (the kernel's order, `.` and `..` included), optionally supervised.
fn ls_f(dir: &Path, supervised: bool) -> (Vec<String>, Option<reprodisk::audit::readdir::Stats>) {
    let lines = |out: &[u8]| String::from_utf8_lossy(out).lines().map(str::to_string).collect::<Vec<_>>();
    if supervised {
        let (out, stats) = reprodisk::audit::readdir::run_supervised(
            Path::new(BIN),
            &["ls".as_ref(), "-f".as_ref(), dir.as_os_str()],
        )
        .unwrap();
        (lines(&out), Some(stats))
    } else {
        let o = Command::new("ls").arg("-f").arg(dir).output().unwrap();
        assert!(o.status.success());
        (lines(&o.stdout), None)
    }
}

#[test]
fn a_supervised_child_lists_folders_in_reverse_across_many_calls() {
    let t = open_tempdir();
    // Enough long names that one listing takes several getdents64 calls of ls's buffer, so
    // that the answers go on from the position the supervisor left.
    let big = folder_of(&t.path().join("big"), (0..3000).map(|i| format!("{i:05}-{}", "n".repeat(i % 90))));
    let (kernel, _) = ls_f(&big, false);
    assert_eq!(kernel.len(), 3002, "3000 names, `.` and `..`");
    let (seen, stats) = ls_f(&big, true);
    let mut expected = kernel.clone();
    expected.reverse();
    assert_eq!(seen, expected);
    let stats = stats.unwrap();
    assert_eq!((stats.listings, stats.reordered, stats.passed), (1, 1, 0), "{stats:?}");
    // A folder with one name: nothing to reorder, and it says so.
    let one = t.path().join("one");
    std::fs::create_dir(&one).unwrap();
    std::fs::write(one.join("only"), b"").unwrap();
    let (seen, stats) = ls_f(&one, true);
    let mut expected = ls_f(&one, false).0;
    expected.reverse();
    assert_eq!(seen, expected);
    assert_eq!(stats.unwrap().reordered, 0);
}

#[test]
fn a_supervised_child_gets_every_folder_of_a_walk_reversed() {
    // `find` opens, lists and closes folder after folder (file descriptors are reused, so
    // every new listing starts at position 0 of a new open file), and lists a folder while
    // its parent is still open.
    let t = open_tempdir();
    let root = t.path().join("tree");
    for d in ["a", "a/x", "a/y", "b", "c/d/e"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for f in ["a/1", "a/2", "a/x/3", "a/x/4", "b/5", "b/6", "b/7", "c/d/e/8", "c/d/e/9", "top"] {
        std::fs::write(root.join(f), b"").unwrap();
    }
    let lines = |out: &[u8]| String::from_utf8_lossy(out).lines().map(str::to_string).collect::<Vec<_>>();
    let plain = lines(&Command::new("find").arg(&root).output().unwrap().stdout);
    let (out, stats) =
        reprodisk::audit::readdir::run_supervised(Path::new(BIN), &["find".as_ref(), root.as_os_str()])
            .unwrap();
    let supervised = lines(&out);
    let (mut p, mut s) = (plain.clone(), supervised.clone());
    p.sort();
    s.sort();
    assert_eq!(p, s, "the same paths");
    // Each folder's children, in the order they were printed.
    let children = |list: &[String], dir: &str| -> Vec<String> {
        list.iter().filter(|l| Path::new(l.as_str()).parent() == Some(Path::new(dir))).cloned().collect()
    };
    for d in ["", "a", "a/x", "b", "c"] {
        let dir = root.join(d).display().to_string();
        let mut expected = children(&plain, &dir);
        expected.reverse();
        assert_eq!(children(&supervised, &dir), expected, "children of {dir}");
    }
    // Eight folders, each listed once; five of them with two or more names.
    assert_eq!((stats.listings, stats.reordered, stats.passed), (8, 5, 0), "{stats:?}");
}

#[test]
fn a_supervised_child_can_telldir_seekdir_and_rewind() {
    // perl's telldir/seekdir/rewinddir are glibc's: a position from a record's d_off, then
    // lseek to it (a position the supervisor made), and lseek to 0 (a new listing).
    let t = open_tempdir();
    let dir = folder_of(&t.path().join("d"), (0..50).map(|i| format!("f{i}")));
    let script = r#"opendir(my $d, $ARGV[0]) or die "$!"; my @a; push @a, scalar readdir($d) for 1..5;
        my $p = telldir($d); my @rest = readdir($d); seekdir($d, $p); my @again = readdir($d);
        rewinddir($d); my @all = readdir($d);
        print join(",", @a), "\n", join(",", @rest), "\n", join(",", @again), "\n", join(",", @all), "\n";"#;
    let run = |supervised: bool| -> Vec<String> {
        let out = if supervised {
            reprodisk::audit::readdir::run_supervised(
                Path::new(BIN),
                &["perl".as_ref(), "-e".as_ref(), script.as_ref(), dir.as_os_str()],
            )
            .unwrap()
            .0
        } else {
            Command::new("perl").args(["-e", script]).arg(&dir).output().unwrap().stdout
        };
        String::from_utf8_lossy(&out).lines().map(str::to_string).collect()
    };
    let (plain, seen) = (run(false), run(true));
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(seen[1], seen[2], "seekdir to a telldir position goes on from there");
    assert_eq!(seen[3], format!("{},{}", seen[0], seen[1]), "rewinddir lists everything again");
    let mut reversed: Vec<&str> = plain[3].split(',').collect();
    reversed.reverse();
    assert_eq!(seen[3], reversed.join(","), "in the opposite of the kernel's order");
}
