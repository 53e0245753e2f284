//! `diskSize = "auto"`: by default the exact size the ext4 planner needs; with
//! `auto_sizing = "seed"` the seed's estimate, whose filesystem bytes must equal what the
//! seed's own shell pipeline (find | du, find | wc -l) computes on the same tree, whether the
//! root is a folder or a tar archive of it.

mod common;

use std::path::Path;
use std::process::Command;

/// The seed's `diskUsage` and `numInodes` lines, run by sh in `dir`.
fn seed_usage(dir: &Path) -> (u64, u64) {
    common::tool("du", "coreutils", &["--version"]);
    let script = "find . ! -type d -print0 | du --files0-from=- --apparent-size --count-links --block-size 4096 | cut -f1 | awk '{s+=$1} END {print s+0}'; find . | wc -l";
    let o = Command::new("sh").arg("-c").arg(script).current_dir(dir).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let mut n = out.split_whitespace().map(|x| x.parse::<u64>().unwrap());
    (n.next().unwrap(), n.next().unwrap())
}

fn filesystem_bytes(spec: &Path) -> u64 {
    let o = common::reprodisk(&["plan", spec.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["plan"]["sizing"]["filesystem_bytes"].as_u64().unwrap()
}

#[test]
fn auto_size_matches_the_seeds_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc/deep")).unwrap();
    std::fs::write(root.join("etc/a"), vec![7u8; 5000]).unwrap();
    std::fs::write(root.join("etc/deep/b"), vec![1u8; 4096]).unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    std::os::unix::fs::symlink("etc/a", root.join("link")).unwrap();
    std::fs::hard_link(root.join("etc/a"), root.join("hard")).unwrap();
    let (blocks, entries) = seed_usage(&root);
    let usage = (blocks + 2 * entries) * 4096;
    let want = ((usage + usage * 52 / 1000) / 4096 + 1) * 4096;

    let spec = common::write(
        dir.path(),
        "dir.toml",
        "partition_table_type = \"efi\"\nauto_sizing = \"seed\"\ninstall_boot_loader = false\n[system]\nroot = \"root\"\n",
    );
    assert_eq!(filesystem_bytes(&spec), want, "folder root");

    let o = common::tool(
        "tar",
        "tar",
        &["-C", root.to_str().unwrap(), "-cf", dir.path().join("root.tar").to_str().unwrap(), "."],
    );
    assert!(o.status.success());
    let spec = common::write(
        dir.path(),
        "tar.toml",
        "partition_table_type = \"efi\"\nauto_sizing = \"seed\"\ninstall_boot_loader = false\n[system]\nroot = \"root.tar\"\n",
    );
    assert_eq!(filesystem_bytes(&spec), want, "tar root");
    let o = common::tool("zstd", "zstd", &["-q", "-f", dir.path().join("root.tar").to_str().unwrap()]);
    assert!(o.status.success());
    let spec = common::write(
        dir.path(),
        "zst.toml",
        "partition_table_type = \"efi\"\nauto_sizing = \"seed\"\ninstall_boot_loader = false\n[system]\nroot = \"root.tar.zst\"\n",
    );
    assert_eq!(filesystem_bytes(&spec), want, "zstd tar root");
}

/// The exact size holds the tree with nothing to spare: a fixed diskSize one MiB under the
/// auto disk fails with an error that says how many MiB are missing.
#[test]
fn exact_auto_size_is_the_smallest_that_fits() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    for i in 0..2000 {
        std::fs::write(root.join(format!("f{i:04}")), vec![i as u8; 3000]).unwrap();
    }
    let spec = common::write(
        dir.path(),
        "auto.toml",
        "partition_table_type = \"legacy\"\nadditionalSpace = \"0\"\n[system]\nroot = \"root\"\n",
    );
    let o = common::reprodisk(&["plan", spec.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let disk_mib = v["plan"]["disk_bytes"].as_u64().unwrap() >> 20;
    // 2000 files of one block each, plus metadata: more than 8 MiB, far less than the seed's guess.
    assert!((9..40).contains(&disk_mib), "auto disk is {disk_mib} MiB");
    let fixed = common::write(
        dir.path(),
        "fixed.toml",
        &format!(
            "partition_table_type = \"legacy\"\ndiskSize = {}\n[system]\nroot = \"root\"\n",
            disk_mib - 1
        ),
    );
    let o = common::reprodisk(&["plan", fixed.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("MiB missing"), "{err}");
}
