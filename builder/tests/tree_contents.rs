//! `contents`, `configFile`, `additionalPaths` and `onlyNixStore`, with the seed's own shell loop run through real rsync as the oracle.

mod tree_support;

use std::path::{Path, PathBuf};

use reprodisk::tree::contents::{
    ContentsEntry, add_additional_paths, add_config_file, add_contents, apply_contents_ownership,
    only_nix_store,
};
use reprodisk::tree::dir::{HostCopy, add_dir, add_host_dir};
use reprodisk::tree::ingest::{IngestError, IngestOptions};
use reprodisk::tree::{FsTree, Metadata, NodeId, NodeKind, Timestamp};
use tree_support::sh;

const T: i64 = 1_600_000_000;

fn opts() -> IngestOptions {
    IngestOptions::new(T + 1)
}

fn root() -> FsTree {
    FsTree::new(Metadata::new(0o755, 0, 0, Timestamp::from_secs(T + 1)))
}

fn entry(source: &Path, target: &str, mode: Option<&str>) -> ContentsEntry {
    ContentsEntry {
        source: source.to_path_buf(),
        target: target.into(),
        mode: mode.map(Into::into),
        ..Default::default()
    }
}

/// The seed's prepareImage `contents` loop, run by bash and rsync into `root`.
const SEED_LOOP: &str = r#"
set -euo pipefail
umask 022
root="$1"; shift
mkdir -p "$root"
while [ $# -gt 0 ]; do
  source="$1"; target="$2"; mode="$3"; shift 3
  flags="-a --no-o --no-g"
  if [ -n "$mode" ]; then flags="$flags --chmod=$mode"; fi
  if [[ "$source" =~ '*' ]]; then
    mkdir -p "$root/$target"
    for fn in $source; do rsync $flags "$fn" "$root/$target/"; done
  else
    mkdir -p "$root/$(dirname "$target")"
    if [ -e "$root/$target" ]; then echo "duplicate entry $target -> $source"; exit 1
    elif [ -d "$source" ]; then rsync $flags "$source/" "$root/$target"
    else rsync $flags "$source" "$root/$target"; fi
  fi
done
"#;

fn make_sources(src: &Path) {
    sh(&format!(
        r#"cd '{d}' && mkdir -p etc/sub bin tree/a/b more/sub real
        printf a > etc/a.conf; printf b > etc/b.conf; printf n > etc/.hidden.conf; printf s > etc/sub/x.conf; printf t > etc/c.txt
        printf '#!' > bin/tool; chmod 0700 bin/tool; printf d > bin/data; chmod 0640 bin/data
        printf 1 > tree/one; chmod 0600 tree/one; printf 2 > tree/a/two; chmod 0751 tree/a; chmod 0700 tree/a/b
        ln tree/one tree/one-hard; ln -s one tree/one-link; mkfifo tree/pipe
        printf single > single; chmod 4755 single; ln -s single link; ln -s real dirlink; printf r > real/r
        printf m > more/sub/m; printf xx > more/a.conf
        "#,
        d = src.display()
    ));
    tree_support::touch_all(src, T);
}

#[test]
fn contents_match_the_seed_loop_run_with_rsync() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    make_sources(&src);
    let s = |p: &str| src.join(p);
    let entries = vec![
        entry(&s("etc/*.conf"), "/etc", None),
        entry(&s("bin/*"), "/usr/bin", Some("F755")),
        entry(&s("tree"), "/opt/tree", Some("u+rwX,go=rX")),
        entry(&s("single"), "/etc/single", Some("0600")),
        entry(&s("link"), "/etc/link", None),
        entry(&s("dirlink"), "/opt/dl", Some("D750,F640")),
        entry(&s("more/*"), "/etc", Some("Dg+s,ug+w,Fo-w,+X")),
        entry(&s("etc/sub"), "etc2/sub", None),
    ];
    let mut ours = root();
    add_contents(&mut ours, &entries, &opts()).unwrap();

    let stage = tmp.path().join("stage");
    let mut args = vec![stage.display().to_string()];
    for e in &entries {
        args.extend([e.source.display().to_string(), e.target.clone(), e.mode.clone().unwrap_or_default()]);
    }
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    sh(&format!("bash -c '{}' seed {}", SEED_LOOP.replace('\'', r"'\''"), quoted.join(" ")));
    let mut seed = root();
    add_host_dir(&mut seed, &stage, b"/", HostCopy::RSYNC, &opts()).unwrap();
    tree_support::assert_same_tree(&ours, &seed, "contents vs the seed loop");
    // The spot checks that matter most, so a failure above is easy to read.
    let node = |p: &[u8]| ours.node(ours.lookup(p).unwrap());
    assert_eq!(node(b"/usr/bin/data").meta.perm, 0o755);
    assert_eq!(node(b"/etc/single").meta.perm, 0o600);
    assert!(ours.lookup(b"/etc/.hidden.conf").is_none(), "`*` skips dot files");
    assert_ne!(ours.lookup(b"/opt/tree/one"), ours.lookup(b"/opt/tree/one-hard"), "rsync -a without -H");
    assert_eq!(node(b"/etc/link").kind, NodeKind::Symlink(b"single".to_vec()));
    assert_eq!(node(b"/opt/dl/r").meta.perm, 0o640);
}

#[test]
fn seed_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    make_sources(&src);
    let run =
        |entries: Vec<ContentsEntry>| add_contents(&mut root(), &entries, &opts()).unwrap_err().to_string();
    let single = src.join("single");
    assert_eq!(
        run(vec![entry(&single, "/etc/x", None), entry(&src.join("bin"), "/etc/x", None)]),
        format!("duplicate entry /etc/x -> {}", src.join("bin").display())
    );
    // mkdir -p of a later target's parent makes an earlier target's path exist.
    let e = run(vec![entry(&single, "/a/b/c", None), entry(&single, "/a/b", None)]);
    assert!(e.starts_with("duplicate entry /a/b -> "), "{e}");
    let e = run(vec![entry(&src.join("e*/.."), "/etc", None)]);
    assert!(e.contains("must end in a file name"), "{e}");
    let e = run(vec![entry(&src.join("*.none"), "/etc", None)]);
    assert!(e.contains("matched no file"), "{e}");
    let e = run(vec![entry(&single, "/../etc/x", None)]);
    assert!(e.contains("escapes the image root"), "{e}");
    let e = run(vec![entry(&single, "/x", Some("u+q"))]);
    assert!(e.contains("invalid mode `u+q`"), "{e}");
    let e = run(vec![ContentsEntry { user: Some("root".into()), ..entry(&single, "/x", None) }]);
    assert!(e.contains("set both `user` and `group`"), "{e}");
    let missing = src.join("missing");
    let e = run(vec![entry(&missing, "/x", None)]);
    assert!(e.contains(&missing.display().to_string()), "{e}");
}

#[test]
fn ownership_resolves_against_the_image_accounts() {
    let tmp = tempfile::tempdir().unwrap();
    let (sys, src) = (tmp.path().join("sys"), tmp.path().join("src"));
    std::fs::create_dir_all(sys.join("etc")).unwrap();
    std::fs::write(
        sys.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\nalice:x:1000:100::/home/alice:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(sys.join("etc/group"), "root:x:0:\nusers:x:100:alice\nwheel:x:10:\n").unwrap();
    std::fs::create_dir(&src).unwrap();
    make_sources(&src);
    let mut t = root();
    add_dir(&mut t, &sys, b"/", &opts()).unwrap();
    let owned = |user: &str, group: &str, target: &str| ContentsEntry {
        user: Some(user.into()),
        group: Some(group.into()),
        ..entry(&src.join("tree"), target, None)
    };
    let entries = vec![owned("alice", "users", "/srv/tree"), owned("42", "wheel", "/srv/other")];
    add_contents(&mut t, &entries, &opts()).unwrap();
    apply_contents_ownership(&mut t, &entries).unwrap();
    let ids = |p: &[u8]| {
        let n = t.node(t.lookup(p).unwrap());
        (n.meta.uid, n.meta.gid)
    };
    for p in [&b"/srv/tree"[..], b"/srv/tree/a/b", b"/srv/tree/one-link", b"/srv/tree/pipe"] {
        assert_eq!(ids(p), (1000, 100), "{}", String::from_utf8_lossy(p));
    }
    assert_eq!(ids(b"/srv/other/one"), (42, 10));
    assert_eq!(ids(b"/srv"), (0, 0), "only the target is chowned");
    let bad = vec![owned("bob", "users", "/srv/tree")];
    let e = apply_contents_ownership(&mut t, &bad).unwrap_err();
    assert!(
        matches!(&e, IngestError::UnknownOwner { name, file: "/etc/passwd", .. } if name == "bob"),
        "{e}"
    );
}

#[test]
fn config_file_additional_paths_and_only_nix_store() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    sh(&format!(
        "cd '{}' && printf '{{ }}' > conf.nix && chmod 4775 conf.nix && mkdir -p store/abc-pkg/bin && printf x > store/abc-pkg/bin/run && \
         chmod 0700 store/abc-pkg/bin/run && printf d > store/abc-pkg/data && chmod 0664 store/abc-pkg/data && ln -s data store/abc-pkg/ln && \
         mkfifo fifo",
        d.display()
    ));
    let mut t = root();
    add_config_file(&mut t, Some(&d.join("conf.nix")), &opts()).unwrap();
    let conf = t.node(t.lookup(b"/etc/nixos/configuration.nix").unwrap());
    assert_eq!(
        conf.meta,
        Metadata::new(0o755, 0, 0, Timestamp::from_secs(T + 1)),
        "cp without -p, umask 022"
    );
    let mut bare = root();
    add_config_file(&mut bare, None, &opts()).unwrap();
    assert!(bare.lookup(b"/etc/nixos").is_some(), "the seed creates /etc/nixos either way");

    let pkg: PathBuf = d.join("store/abc-pkg");
    add_additional_paths(&mut t, std::slice::from_ref(&pkg), &opts()).unwrap();
    let at = |p: &Path| t.node(t.lookup(p.to_str().unwrap().as_bytes()).unwrap()).meta.clone();
    assert_eq!(at(&pkg).perm, 0o555);
    assert_eq!(at(&pkg.join("bin/run")).perm, 0o555);
    assert_eq!(
        at(&pkg.join("data")),
        Metadata::new(0o444, 0, 0, Timestamp::from_secs(1)),
        "NAR: 0444, mtime 1"
    );
    let before = t.clone();
    add_additional_paths(&mut t, std::slice::from_ref(&pkg), &opts()).unwrap();
    assert_eq!(t, before, "a path already in the image is skipped");
    let e = add_additional_paths(&mut t, &[d.join("fifo")], &opts()).unwrap_err();
    assert!(matches!(&e, IngestError::SpecialSource { path, .. } if path.ends_with("fifo")), "{e}");

    std::fs::create_dir(d.join("store/.links")).unwrap();
    let mut with_links = root();
    add_host_dir(&mut with_links, &d.join("store"), b"/nix/store", HostCopy::TREE, &opts()).unwrap();
    let only = only_nix_store(&with_links, &opts()).unwrap();
    assert!(only.lookup(b"/abc-pkg/bin/run").is_some());
    assert!(only.lookup(b"/.links").is_none() && only.lookup(b"/nix").is_none());
    assert_eq!(only.node(NodeId::ROOT).meta, Metadata::new(0o755, 0, 0, Timestamp::from_secs(T + 1)));
    let e = only_nix_store(&root(), &opts()).unwrap_err();
    assert!(e.to_string().contains("/nix/store"), "{e}");
}
