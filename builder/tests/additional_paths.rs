//! `additionalPaths`: each host path lands at the same absolute path in the image, copied as `nix copy` restores a store path.

mod common;

use std::process::Command;

#[test]
fn additional_paths_land_at_their_own_path_as_store_paths() {
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("store-path");
    std::fs::create_dir_all(extra.join("bin")).unwrap();
    std::fs::write(extra.join("bin/tool"), b"#!/bin/sh\n").unwrap();
    std::fs::write(extra.join("README"), b"data\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(extra.join("bin/tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let spec = common::write(
        dir.path(),
        "spec.json",
        &format!(
            r#"{{"partitionTableType": "none", "additionalSpace": "1M", "installBootLoader": false, "additionalPaths": ["{}"]}}"#,
            extra.display()
        ),
    );
    let image = common::build(&spec, &dir.path().join("out"));
    common::tool("debugfs", "e2fsprogs", &["-V"]);
    let stat = |path: &str| {
        let o = Command::new("debugfs").arg("-R").arg(format!("stat {path}")).arg(&image).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // A NAR holds no permissions but the execute bit: files 0444 or 0555, folders 0555, mtime 1.
    let tool = stat(&format!("{}/bin/tool", extra.display()));
    assert!(tool.contains("Mode:  0555"), "{tool}");
    let readme = stat(&format!("{}/README", extra.display()));
    assert!(readme.contains("Mode:  0444"), "{readme}");
    let folder = stat(&extra.display().to_string());
    assert!(folder.contains("Mode:  0555"), "{folder}");
    let fsck = common::tool("e2fsck", "e2fsprogs", &["-fn", image.to_str().unwrap()]);
    assert!(fsck.status.success(), "{}", String::from_utf8_lossy(&fsck.stdout));
}

#[test]
fn relative_additional_paths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = common::write(
        dir.path(),
        "spec.json",
        r#"{"partitionTableType": "none", "additionalPaths": ["rel/path"]}"#,
    );
    let o = common::reprodisk(&["plan", spec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is not absolute"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn additional_paths_are_hashed_in_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("store-path");
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(extra.join("README"), b"data\n").unwrap();
    let spec = common::write(
        dir.path(),
        "spec.json",
        &format!(
            r#"{{"partitionTableType": "none", "additionalSpace": "1M", "additionalPaths": ["{}"]}}"#,
            extra.display()
        ),
    );
    let digest = || {
        let out = dir.path().join("out");
        common::build(&spec, &out);
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        let inputs = m["inputs"].as_array().unwrap();
        let rec = inputs.iter().find(|i| i["path"] == extra.display().to_string()).expect("listed");
        assert_eq!(rec["digest"], "tree-v1", "{rec}");
        rec["sha256"].as_str().expect("hashed").to_string()
    };
    let first = digest();
    std::fs::write(extra.join("README"), b"other\n").unwrap();
    assert_ne!(digest(), first, "a changed byte of an additional path left its digest as it was");
}
