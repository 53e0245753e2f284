//! Bad specs and bad usage exit with code 2 and an `error: ...` message that says what to fix.

mod common;

/// Runs `plan` on a spec holding `text` (named `name`) and returns (exit code, stderr).
fn plan(name: &str, text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("motd"), "hi\n").unwrap();
    let spec = common::write(dir.path(), name, text);
    let o = common::reprodisk(&["plan", spec.to_str().unwrap()]);
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn check(name: &str, text: &str, needle: &str) {
    let (code, err) = plan(name, text);
    assert_eq!(code, 2, "{text}: {err}");
    assert!(err.starts_with("error: "), "{text}: {err}");
    assert!(err.contains(needle), "{text}: expected `{needle}` in: {err}");
}

#[test]
fn seed_assertions_exit_2() {
    for (json, needle) in [
        (r#"{"partitionTableType": "gpt"}"#, r#"did you mean "legacy+gpt""#),
        (r#"{"rootFSUID": null}"#, "rootFSUID must be non-null"),
        (r#"{"fsType": "xfs"}"#, "a partition table needs fsType = \"ext4\""),
        (r#"{"touchEFIVars": true}"#, "needs a GPT layout"),
        (r#"{"onlyNixStore": true, "installBootLoader": false, "configFile": "motd"}"#, "onlyNixStore"),
        (
            r#"{"contents": [{"source": "motd", "target": "/etc/motd", "group": "wheel"}]}"#,
            "both of user and group",
        ),
        (r#"{"installBootLoader": true}"#, "needs a [system] table"),
    ] {
        check("spec.json", json, needle);
    }
}

#[test]
fn unknown_keys_name_the_closest() {
    check("spec.json", r#"{"diskSise": 100}"#, "unknown key `diskSise` (did you mean `diskSize`?)");
    check("spec.toml", "disk_sise = 100\n", "unknown key `disk_sise` (did you mean `disk_size`?)");
    check(
        "spec.toml",
        "[system]\nroot = \"motd\"\nkernel_param = []\n",
        "unknown key `system.kernel_param` (did you mean `kernel_params`?)",
    );
}

#[test]
fn bad_sizes() {
    check("spec.json", r#"{"bootSize": "256MiB"}"#, "numfmt --from=iec rejects");
    check("spec.json", r#"{"bootSize": "lots"}"#, "is not a number");
    check("spec.json", r#"{"additionalSpace": -5}"#, "non-negative");
    check("spec.json", r#"{"diskSize": "big"}"#, "is not a number");
    check("spec.json", r#"{"diskSize": 0}"#, "positive whole number of MiB");
    check("spec.json", r#"{"diskSize": 2, "partitionTableType": "legacy+gpt"}"#, "too small");
    check(
        "spec.json",
        r#"{"diskSize": 300, "partitionTableType": "efi", "bootSize": "4M"}"#,
        "set bootSize above 8M",
    );
}

#[test]
fn missing_files() {
    check("spec.toml", "[system]\nroot = \"no-such-root\"\n", "no-such-root`, which does not exist");
    check(
        "spec.json",
        r#"{"contents": [{"source": "nope.txt", "target": "/a"}]}"#,
        "nope.txt`, which does not exist",
    );
    let o = common::reprodisk(&["plan", "/nonexistent/spec.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read spec"));
}

#[test]
fn bad_syntax_and_format() {
    check("spec.toml", "disk_size = \n", "is not valid TOML");
    check("spec.json", "{", "is not valid JSON");
    check("spec.yaml", "a: 1", "use `.toml` or `.json`");
}

#[test]
fn usage_errors_exit_2_and_help_explains() {
    assert_eq!(common::reprodisk(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(common::reprodisk(&["plan"]).status.code(), Some(2));
    let help = common::reprodisk(&["help", "build"]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("hydra-build-products") && text.contains("--out"), "{text}");
    let help = common::reprodisk(&["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("bootSize is the END offset") && text.contains("efixbootldr"), "{text}");
}

/// `verify` and `diff` whose stdout is a full disk: exit 2 with the cause said once, no
/// panic; a missing spec names its path once.
#[test]
fn verify_and_diff_on_a_full_stdout_exit_2_and_say_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("z.img");
    std::fs::File::create(&img).unwrap().set_len(1 << 20).unwrap();
    let img = img.to_str().unwrap();
    for args in [&["verify", img][..], &["verify", img, "--json"], &["diff", img, img]] {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full (Linux)");
        let o = std::process::Command::new(common::BIN)
            .args(args)
            .stdout(full)
            .output()
            .expect("the reprodisk binary runs");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(
            err.trim_end(),
            "error: writing the report to stdout: No space left on device (os error 28)",
            "{args:?}"
        );
    }
    let o = common::reprodisk(&["verify", img, "--spec", "/nonexistent/spec.toml"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("/nonexistent/spec.toml").count(), 1, "{err}");
    assert_eq!(err.matches("(os error 2)").count(), 1, "{err}");
}
