//! Snapshots of `reprodisk plan --json` for every layout (refresh with INSTA_UPDATE=always).

mod common;

fn plan_json(layout: &str, extra: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let spec = common::write(
        dir.path(),
        "spec.toml",
        &format!("partition_table_type = \"{layout}\"\ndisk_size = 300\n{extra}"),
    );
    let o = common::reprodisk(&["plan", spec.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn legacy() {
    insta::assert_json_snapshot!(plan_json("legacy", ""));
}

#[test]
fn legacy_boot() {
    insta::assert_json_snapshot!(plan_json("legacy+boot", ""));
}

#[test]
fn legacy_gpt() {
    insta::assert_json_snapshot!(plan_json("legacy+gpt", ""));
}

#[test]
fn efi() {
    insta::assert_json_snapshot!(plan_json("efi", ""));
}

#[test]
fn efixbootldr() {
    insta::assert_json_snapshot!(plan_json("efixbootldr", ""));
}

#[test]
fn hybrid() {
    insta::assert_json_snapshot!(plan_json("hybrid", ""));
}

#[test]
fn none() {
    insta::assert_json_snapshot!(plan_json("none", ""));
}

#[test]
fn efi_auto_size() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("motd"), "hello\n").unwrap();
    let spec = common::write(
        dir.path(),
        "spec.json",
        r#"{"partitionTableType": "efi", "additionalSpace": "8M", "contents": [{"source": "motd", "target": "/etc/motd"}]}"#,
    );
    let o = common::reprodisk(&["plan", spec.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    insta::assert_json_snapshot!(v);
}
