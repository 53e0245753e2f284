//! The same spec built twice, from different working folders with different TZ, umask and
//! locale, gives byte-identical output (image, manifest's IDs and digests).

mod common;

use std::path::Path;
use std::process::Command;

fn build_in(cwd: &Path, spec: &Path, out: &Path, tz: &str, umask: &str, lang: &str) {
    let script = format!("umask {umask}; exec \"$0\" build \"$1\" --out \"$2\"");
    let o = Command::new("sh")
        .current_dir(cwd)
        .arg("-c")
        .arg(script)
        .arg(common::BIN)
        .arg(spec)
        .arg(out)
        .env("TZ", tz)
        .env("LANG", lang)
        .env("CI", "true")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn two_builds_are_identical() {
    let work = tempfile::tempdir().unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for name in ["efi.toml", "legacy.json"] {
        let spec = examples.join(name).canonicalize().unwrap();
        let (a, b) = (work.path().join(name).join("a"), work.path().join(name).join("b"));
        std::fs::create_dir_all(a.join("deep/er")).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        build_in(&a.join("deep/er"), &spec, &a.join("out"), "UTC", "022", "C");
        build_in(&b, &spec, &b.join("out"), "Pacific/Kiritimati", "077", "de_DE.UTF-8");
        let name = |d: &Path| {
            std::fs::read_dir(d.join("out"))
                .unwrap()
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "img"))
                .unwrap()
        };
        let (ia, ib) = (name(&a), name(&b));
        assert_eq!(common::sha256(&ia), common::sha256(&ib), "{}", spec.display());
        let ma: serde_json::Value =
            serde_json::from_slice(&std::fs::read(a.join("out/manifest.json")).unwrap()).unwrap();
        let mb: serde_json::Value =
            serde_json::from_slice(&std::fs::read(b.join("out/manifest.json")).unwrap()).unwrap();
        assert_eq!(ma, mb, "the manifest is a function of the spec too");
        assert_eq!(ma["output"]["sha256"], common::sha256(&ia));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&ib).unwrap().permissions().mode() & 0o777,
            0o644,
            "the umask does not leak"
        );
        let leftovers: Vec<_> = std::fs::read_dir(b.join("out"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".reprodisk-"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }
}

#[test]
fn random_ids_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let spec = common::write(
        dir.path(),
        "spec.json",
        r#"{"partitionTableType": "efi", "diskSize": 300, "deterministic": false}"#,
    );
    let a = common::build(&spec, &dir.path().join("a"));
    let b = common::build(&spec, &dir.path().join("b"));
    let (ja, jb) = (common::sfdisk_json(&a), common::sfdisk_json(&b));
    assert_ne!(ja["partitiontable"]["id"], jb["partitiontable"]["id"]);
    assert_ne!(ja["partitiontable"]["partitions"][1]["uuid"], jb["partitiontable"]["partitions"][1]["uuid"]);
}
