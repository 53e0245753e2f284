//! `verify --spec` compares the bytes of every `contents` file and of `configFile` with
//! their sources: a bare ext4 image made by mkfs.ext4 -d from the same sources passes the
//! check, and a changed source (or a changed file in the image) is an error naming the
//! path and both sha256s.

mod ext4_util;

use ext4_util::*;
use reprodisk_verifier::expect::Expectations;
use reprodisk_verifier::glue;
use reprodisk_verifier::report::Finding;
use std::path::Path;

/// The spec's folder: `motd`, a folder `tree` (copied as /srv/tree and globbed into /g),
/// `configuration.nix`, and `s.toml` naming them for a bare filesystem.
fn sources(d: &Path) {
    std::fs::create_dir_all(d.join("tree/sub")).unwrap();
    std::fs::write(d.join("motd"), "welcome\n").unwrap();
    std::fs::write(d.join("tree/a"), "a\n").unwrap();
    std::fs::write(d.join("tree/sub/b"), vec![b'b'; 70_000]).unwrap();
    std::fs::write(d.join("configuration.nix"), "{ ... }: { }\n").unwrap();
    std::fs::write(
        d.join("s.toml"),
        "partitionTableType = \"none\"\nconfigFile = \"configuration.nix\"\n\
         [[contents]]\nsource = \"motd\"\ntarget = \"/etc/motd\"\n\
         [[contents]]\nsource = \"tree\"\ntarget = \"/srv/tree\"\n\
         [[contents]]\nsource = \"tree/*\"\ntarget = \"/g\"\n",
    )
    .unwrap();
}

/// A bare ext4 image holding what the spec asks for, laid out by hand as the seed's copy
/// loop would, and populated by mkfs.ext4 -d.
fn image(d: &Path) -> Vec<u8> {
    let root = d.join("root");
    for (dir, from) in [("srv/tree", "tree"), ("g", "tree")] {
        std::fs::create_dir_all(root.join(dir).join("sub")).unwrap();
        std::fs::copy(d.join(from).join("a"), root.join(dir).join("a")).unwrap();
        std::fs::copy(d.join(from).join("sub/b"), root.join(dir).join("sub/b")).unwrap();
    }
    std::fs::create_dir_all(root.join("etc/nixos")).unwrap();
    std::fs::copy(d.join("motd"), root.join("etc/motd")).unwrap();
    std::fs::copy(d.join("configuration.nix"), root.join("etc/nixos/configuration.nix")).unwrap();
    let img = mkfs(d, "fs.img", 8, &["-t", "ext4", "-E", "root_owner=0:0"], Some(&root));
    std::fs::read(img).unwrap()
}

/// The content findings `verify --spec` reports.
fn content_findings(img: &[u8], spec: &Path) -> Vec<Finding> {
    let e = Expectations::from_path(spec).expect("valid spec");
    glue::verify(&img, None, Some(&e), None)
        .findings
        .into_iter()
        .filter(|f| f.code.starts_with("content"))
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn unchanged_contents_pass() {
    let dir = tempfile::tempdir().unwrap();
    sources(dir.path());
    let img = image(dir.path());
    assert_eq!(content_findings(&img, &dir.path().join("s.toml")), Vec::<Finding>::new());
}

#[test]
fn a_changed_contents_file_is_an_error_naming_both_sha256s() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sources(d);
    let img = image(d);
    std::fs::write(d.join("motd"), "other text\n").unwrap();
    std::fs::write(d.join("tree/sub/b"), vec![b'c'; 70_000]).unwrap();
    let f = content_findings(&img, &d.join("s.toml"));
    let got: Vec<(&str, &str)> =
        f.iter().map(|f| (f.code.as_str(), f.location.as_deref().unwrap_or_default())).collect();
    assert_eq!(
        got,
        [
            ("content-sha256", "contents target /etc/motd"),
            ("content-sha256", "contents target /g file /g/sub/b"),
            ("content-sha256", "contents target /srv/tree file /srv/tree/sub/b"),
        ]
    );
    let motd = &f[0].message;
    let (old, new) = (sha256(b"welcome\n"), sha256(b"other text\n"));
    assert!(motd.starts_with(&format!("/etc/motd has sha256 {old} in the image, its source ")), "{motd}");
    assert!(motd.ends_with(&format!("motd has {new}")), "{motd}");
}

#[test]
fn a_changed_config_file_is_an_error_naming_both_sha256s() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sources(d);
    let img = image(d);
    std::fs::write(d.join("configuration.nix"), "{ ... }: { boot.x = 1; }\n").unwrap();
    let f = content_findings(&img, &d.join("s.toml"));
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!((f[0].code.as_str(), f[0].location.as_deref()), ("content-sha256", Some("configFile")));
    let (old, new) = (sha256(b"{ ... }: { }\n"), sha256(b"{ ... }: { boot.x = 1; }\n"));
    assert!(f[0].message.contains(&format!("/etc/nixos/configuration.nix has sha256 {old} in the image")));
    assert!(f[0].message.ends_with(&format!("configuration.nix has {new}")), "{}", f[0].message);
}

#[test]
fn a_missing_source_is_a_warning_and_a_missing_file_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sources(d);
    let img = image(d);
    std::fs::remove_file(d.join("configuration.nix")).unwrap();
    std::fs::write(d.join("tree/new"), "n").unwrap();
    let f = content_findings(&img, &d.join("s.toml"));
    let got: Vec<(&str, &str)> =
        f.iter().map(|f| (f.code.as_str(), f.location.as_deref().unwrap_or_default())).collect();
    assert_eq!(
        got,
        [
            ("content-missing", "contents target /g file /g/new"),
            ("content-missing", "contents target /srv/tree file /srv/tree/new"),
            ("content-source-unreadable", "configFile"),
        ]
    );
}
