//! Bad and special sources are refused early (fifos, devices, sockets, `""`, trees reaching /proc), owners of folder roots are kept, and the manifest digests every input.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Runs `reprodisk ARGS` with a deadline (a fifo used to block forever): (exit code, stderr).
fn run(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(common::BIN)
        .args(args)
        .env("CI", "true")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..600 {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    panic!("reprodisk {args:?} hangs");
}

fn spec(dir: &Path, json: &str) -> PathBuf {
    common::write(dir, "spec.json", json)
}

#[test]
fn fifos_devices_and_sockets_are_refused_before_opening() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let o = common::tool("mkfifo", "coreutils", &[fifo.to_str().unwrap()]);
    assert!(o.status.success());
    let sock = dir.path().join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    for (json, needle) in [
        (r#"{"contents": [{"source": "fifo", "target": "/etc/x"}]}"#.to_string(), "contents source `"),
        (r#"{"configFile": "fifo"}"#.to_string(), "configFile `"),
        (r#"{"contents": [{"source": "/dev/zero", "target": "/z"}]}"#.to_string(), "is a character device"),
        (r#"{"contents": [{"source": "sock", "target": "/s"}]}"#.to_string(), "is a socket"),
        (r#"{"system": {"root": "fifo"}}"#.to_string(), "system.root `"),
    ] {
        let s = spec(dir.path(), &json);
        for cmd in ["plan", "build"] {
            let out = dir.path().join("out");
            let (code, err) = run(&[cmd, s.to_str().unwrap(), "--out", out.to_str().unwrap()]
                [..if cmd == "plan" { 2 } else { 4 }]);
            assert_eq!(code, 2, "{cmd} {json}: {err}");
            assert!(err.contains(needle) && err.contains("not a file or folder"), "{cmd} {json}: {err}");
            assert!(!out.exists(), "{cmd} {json}: the output folder was left");
        }
    }
}

#[test]
fn an_empty_source_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), r#"{"contents": [{"source": "", "target": "/etc/x"}]}"#);
    let (code, err) = run(&["plan", s.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`contents[0].source` is empty"), "{err}");
}

#[test]
fn a_tree_reaching_proc_sys_or_dev_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/", dir.path().join("host")).unwrap();
    std::os::unix::fs::symlink("/sys/kernel", dir.path().join("kernel")).unwrap();
    for (src, host) in [("host", "/proc"), ("kernel", "/sys")] {
        let s = spec(dir.path(), &format!(r#"{{"contents": [{{"source": "{src}", "target": "/x"}}]}}"#));
        let (code, err) = run(&["plan", s.to_str().unwrap()]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(&format!("reaches the host's `{host}`")), "{err}");
    }
}

#[test]
fn a_tree_larger_than_a_fixed_disk_is_refused_early() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("big")).unwrap();
    let o =
        common::tool("fallocate", "util-linux", &["-l", "40M", dir.path().join("big/f").to_str().unwrap()]);
    assert!(o.status.success());
    // fallocate'd blocks read as zeros but are allocated: they count.
    let s = spec(dir.path(), r#"{"diskSize": 16, "contents": [{"source": "big", "target": "/big"}]}"#);
    let (code, err) = run(&["plan", s.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("more than 16777216 bytes of file data, more than the whole disk"), "{err}");
}

#[test]
fn proc_files_go_in_as_read_and_the_manifest_hashes_those_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(
        dir.path(),
        r#"{"partitionTableType": "none", "contents": [{"source": "/proc/self/status", "target": "/status"}]}"#,
    );
    let out = dir.path().join("out");
    let image = common::build(&s, &out);
    let dumped = dir.path().join("status");
    let o = common::tool(
        "debugfs",
        "e2fsprogs",
        &["-R", &format!("dump /status {}", dumped.display()), image.to_str().unwrap()],
    );
    assert!(o.status.success());
    let bytes = std::fs::read(&dumped).unwrap();
    assert!(bytes.starts_with(b"Name:"), "{}", String::from_utf8_lossy(&bytes));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let input = m["inputs"].as_array().unwrap().iter().find(|i| i["path"] == "/proc/self/status").unwrap();
    assert_eq!(input["sha256"].as_str().unwrap(), common::sha256(&dumped));
}

/// A root folder with files of several owners.
fn mixed_tree(root: &Path) {
    std::fs::create_dir_all(root.join("home/alice")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("home/alice/notes"), "hi\n").unwrap();
    std::fs::write(root.join("etc/conf"), "x\n").unwrap();
    std::os::unix::fs::chown(root.join("home/alice"), Some(1000), Some(1000)).unwrap();
    std::os::unix::fs::chown(root.join("home/alice/notes"), Some(1000), Some(100)).unwrap();
    std::os::unix::fs::chown(root.join("etc/conf"), Some(0), Some(42)).unwrap();
}

fn owner_in(image: &Path, path: &str) -> (u32, u32) {
    let o = common::tool("debugfs", "e2fsprogs", &["-R", &format!("stat {path}"), image.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    let field = |name: &str| -> u32 {
        let rest = &text[text.find(name).unwrap_or_else(|| panic!("{path}: {text}")) + name.len()..];
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };
    (field("User:"), field("Group:"))
}

#[test]
fn folder_roots_keep_their_owners_unless_squashed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    mixed_tree(&root);
    for (owners, alice, notes, conf) in
        [("keep", (1000, 1000), (1000, 100), (0, 42)), ("root", (0, 0), (0, 0), (0, 0))]
    {
        let s = spec(
            dir.path(),
            &format!(
                r#"{{"partitionTableType": "none", "owners": "{owners}", "system": {{"root": "root"}}}}"#
            ),
        );
        let image = common::build(&s, &dir.path().join(format!("out-{owners}")));
        assert_eq!(owner_in(&image, "/home/alice"), alice, "{owners}");
        assert_eq!(owner_in(&image, "/home/alice/notes"), notes, "{owners}");
        assert_eq!(owner_in(&image, "/etc/conf"), conf, "{owners}");
    }
}

/// Builds the spec `json` in `spec_dir` and returns its manifest's first input record.
fn first_input(spec_dir: &Path, json: &str) -> serde_json::Value {
    let s = spec(spec_dir, json);
    let out = spec_dir.join("out");
    let o = common::reprodisk(&["build", s.to_str().unwrap(), "--out", out.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    m["inputs"][0].take()
}

/// The manifest's record of the root folder input.
fn root_digest(spec_dir: &Path, root: &str) -> String {
    let input = &first_input(
        spec_dir,
        &format!(r#"{{"partitionTableType": "none", "system": {{"root": "{root}"}}}}"#),
    );
    assert_eq!(input["kind"], "directory");
    assert_eq!(input["digest"], "tree-v1");
    input["sha256"].as_str().unwrap().to_string()
}

#[test]
fn the_root_folder_digest_follows_content_not_the_host_path() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    mixed_tree(&root);
    let first = root_digest(dir.path(), "root");
    // Moved elsewhere: the same digest.
    std::fs::rename(&root, dir.path().join("moved")).unwrap();
    assert_eq!(root_digest(dir.path(), "moved"), first);
    let moved = dir.path().join("moved");
    let mut seen = vec![first];
    let changes: [&dyn Fn(); 3] = [
        &|| std::fs::write(moved.join("etc/conf"), "y\n").unwrap(),
        &|| std::fs::set_permissions(moved.join("etc/conf"), std::fs::Permissions::from_mode(0o600)).unwrap(),
        &|| std::os::unix::fs::chown(moved.join("etc/conf"), Some(7), None).unwrap(),
    ];
    for change in changes {
        change();
        let d = root_digest(dir.path(), "moved");
        assert!(!seen.contains(&d), "a file, mode or owner change left the digest as it was");
        seen.push(d);
    }
}

/// The manifest's record of the `contents` glob `SRC/*.conf` (SRC relative to the spec).
fn glob_digest(spec_dir: &Path, src: &str) -> String {
    let input = &first_input(
        spec_dir,
        &format!(
            r#"{{"partitionTableType": "none", "contents": [{{"source": "{src}/*.conf", "target": "/etc/conf.d"}}]}}"#
        ),
    );
    assert_eq!(input["path"], format!("{src}/*.conf"));
    assert_eq!(input["kind"], "glob");
    assert_eq!(input["digest"], "glob-v1");
    input["sha256"].as_str().unwrap().to_string()
}

#[test]
fn a_glob_digest_follows_what_it_matched_not_the_host_folder() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("b.conf")).unwrap();
    std::fs::write(src.join("a.conf"), "a\n").unwrap();
    std::fs::write(src.join("b.conf/inner"), "inner\n").unwrap();
    std::fs::write(src.join("notes.txt"), "not matched\n").unwrap();
    let first = glob_digest(dir.path(), "src");
    assert_eq!(glob_digest(dir.path(), "src"), first, "the same input gave another digest");
    // The folder the glob expands in moved: the same digest.
    std::fs::rename(&src, dir.path().join("moved")).unwrap();
    assert_eq!(glob_digest(dir.path(), "moved"), first);
    let moved = dir.path().join("moved");
    // What the glob does not match, and the host owner (a contents copy is rsync --no-o
    // --no-g, so the image never gets it), leave the digest as it is.
    std::fs::write(moved.join("notes.txt"), "changed, still not matched\n").unwrap();
    std::os::unix::fs::chown(moved.join("a.conf"), Some(7), Some(7)).unwrap();
    assert_eq!(glob_digest(dir.path(), "moved"), first);
    let mut seen = vec![first];
    let changes: [(&str, &dyn Fn()); 5] = [
        ("a matched file's bytes", &|| std::fs::write(moved.join("a.conf"), "b\n").unwrap()),
        ("a matched file's mode", &|| {
            std::fs::set_permissions(moved.join("a.conf"), std::fs::Permissions::from_mode(0o600)).unwrap()
        }),
        ("a file inside a matched folder", &|| {
            std::fs::write(moved.join("b.conf/inner"), "other\n").unwrap()
        }),
        ("a new match", &|| std::fs::write(moved.join("c.conf"), "c\n").unwrap()),
        ("a renamed match", &|| std::fs::rename(moved.join("c.conf"), moved.join("d.conf")).unwrap()),
    ];
    for (what, change) in changes {
        change();
        let d = glob_digest(dir.path(), "moved");
        assert!(!seen.contains(&d), "{what} left the glob's digest as it was");
        seen.push(d);
    }
}
