//! What a user reads: plan refuses what build refuses with the same words, plan speaks in words, messages name their subject once, root resolves without a passwd file, `--help` names make-disk-image.

mod common;

use std::path::Path;

/// (exit code, stderr) of `reprodisk ARGS`.
fn run(args: &[&str]) -> (i32, String) {
    let o = common::reprodisk(args);
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The error after the command's own context (`planning ...:` / `building ...:`).
fn cause(err: &str) -> &str {
    err.split_once("`: ").map_or(err, |(_, rest)| rest).trim_end()
}

#[test]
fn plan_refuses_what_build_refuses_with_the_same_words() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("root")).unwrap();
    std::fs::write(dir.path().join("root/big"), vec![7u8; 3 << 20]).unwrap();
    for json in [
        r#"{"format": "qcow2", "diskSize": 16}"#,
        r#"{"partitionTableType": "efi", "touchEFIVars": true, "diskSize": 300}"#,
        r#"{"partitionTableType": "none", "diskSize": 2, "system": {"root": "root"}}"#,
        r#"{"partitionTableType": "none", "diskSize": 16, "system": {"root": "root"}}"#,
    ] {
        let spec = common::write(dir.path(), "spec.json", json);
        let out = dir.path().join("out");
        let (plan_code, plan_err) = run(&["plan", spec.to_str().unwrap()]);
        let (build_code, build_err) = run(&["build", spec.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert_eq!(plan_code, build_code, "{json}: plan {plan_err} / build {build_err}");
        if build_code != 0 {
            assert_eq!(build_code, 2, "{json}");
            assert_eq!(cause(&plan_err), cause(&build_err), "{json}");
            assert!(!out.exists(), "{json}: a refused build left its output folder");
        }
        let _ = std::fs::remove_dir_all(&out);
    }
}

#[test]
fn root_needs_no_passwd_file_and_bare_digit_sizes_are_mib() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("motd"), "hi\n").unwrap();
    let spec = common::write(
        dir.path(),
        "spec.json",
        r#"{"diskSize": "10", "partitionTableType": "legacy",
            "contents": [{"source": "motd", "target": "/etc/motd", "user": "root", "group": "root"}]}"#,
    );
    let o = common::reprodisk(&["plan", spec.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(text.contains("disk 10 MiB"), "{text}");
    assert!(text.contains("sizing: fixed diskSize of 10 MiB"), "{text}");
    // Other names still need the image's own passwd.
    let spec = common::write(
        dir.path(),
        "spec.json",
        r#"{"contents": [{"source": "motd", "target": "/etc/motd", "user": "alice", "group": "root"}]}"#,
    );
    let (code, err) = run(&["plan", spec.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("`alice` is not in the image's `/etc/passwd`"), "{err}");
}

#[test]
fn plan_speaks_in_words() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let spec = common::write(
        &tempfile::tempdir().unwrap().keep(),
        "hybrid.json",
        r#"{"partitionTableType": "hybrid", "diskSize": 300}"#,
    );
    for s in [examples.join("efi.toml"), spec] {
        let o = common::reprodisk(&["plan", s.to_str().unwrap()]);
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        for debug in ["{\"kind\"", "(from Default)", "(from Spec)", " Esp:", " BiosBoot:", " Root:"] {
            assert!(!text.contains(debug), "`{debug}` in: {text}");
        }
        assert!(text.contains("partition 1 EFI system:"), "{text}");
    }
}

#[test]
fn messages_name_their_subject_once() {
    let dir = tempfile::tempdir().unwrap();
    let bad = common::write(dir.path(), "bad.json", "{");
    let (code, err) = run(&["plan", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert_eq!(err.matches("bad.json").count(), 1, "{err}");
    let noext = common::write(dir.path(), "spec", "{}");
    let (_, err) = run(&["plan", noext.to_str().unwrap()]);
    assert!(err.contains("has no extension") && !err.contains("extension ``"), "{err}");
}

#[test]
fn help_names_make_disk_image_and_where_its_keys_are() {
    let o = common::reprodisk(&["--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("nixpkgs' make-disk-image"), "{help}");
    assert!(help.contains("nixos/lib/make-disk-image.nix"), "{help}");
    assert!(!help.contains("the seed"), "{help}");
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    assert!(!readme.contains("the seed"), "README.md still says `the seed`");
}

#[test]
fn progress_bars_end_at_100_percent_with_the_reprodisk_prefix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("root/d")).unwrap();
    // Bytes that do not compress and do not fill the filesystem: the writer's count stops
    // short of the total (free space is never written), as on /usr/share.
    let mut x: u32 = 1;
    let data: Vec<u8> = (0..3 << 20)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect();
    std::fs::write(dir.path().join("root/d/f"), data).unwrap();
    let spec = common::write(
        dir.path(),
        "spec.json",
        r#"{"partitionTableType": "none", "additionalSpace": "8M", "system": {"root": "root"}}"#,
    );
    // `script` gives the build a terminal, so it draws bars.
    let cmd = format!("{} build {} --out {}", common::BIN, spec.display(), dir.path().join("out").display());
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &cmd, "/dev/null"]).env_remove("CI");
    let o = c.output().expect("script (util-linux) runs the build on a terminal");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let text = String::from_utf8_lossy(&o.stdout).replace('\r', "\n");
    // Escape sequences (cursor moves, line clears) removed.
    let mut plain = String::new();
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        if ch == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(ch);
        }
    }
    let mut last: std::collections::BTreeMap<String, String> = Default::default();
    for line in plain.lines().map(str::trim).filter(|l| l.contains("] ") && l.contains('/')) {
        assert!(line.starts_with("reprodisk: "), "a bar line without the prefix: {line:?}");
        let (msg, rest) = line.split_once('[').unwrap();
        last.insert(msg.trim().to_string(), rest.to_string());
    }
    assert!(last.contains_key("reprodisk: writing the root filesystem"), "{plain}");
    for (msg, bar) in &last {
        let counts = bar.split_once("] ").unwrap().1.split(" (").next().unwrap();
        let (done, total) = counts.split_once('/').unwrap();
        assert_eq!(done.trim(), total.trim(), "`{msg}` ends at {counts}");
    }
}
