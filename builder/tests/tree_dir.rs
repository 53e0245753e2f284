//! Directory ingestion: determinism, metadata rules, xattr filtering and bad input.

mod tree_support;

use std::path::Path;

use reprodisk::tree::dir::add_dir;
use reprodisk::tree::ingest::{IngestError, IngestOptions, TimestampPolicy};
use reprodisk::tree::{FsTree, Metadata, NodeKind, Timestamp};
use tree_support::{make_sample, sh};

const T: i64 = 1_600_000_000;

fn empty() -> FsTree {
    FsTree::new(Metadata::new(0o755, 0, 0, Timestamp::from_secs(0)))
}

fn ingest(src: &Path, opts: &IngestOptions) -> Result<FsTree, IngestError> {
    let mut t = empty();
    add_dir(&mut t, src, b"/", opts)?;
    Ok(t)
}

/// Creates 300 files and dirs in the given order under `umask`, then fixes modes explicitly.
fn make_ordered(dir: &Path, umask: &str, reverse: bool) {
    let order = if reverse { "seq 299 -1 0" } else { "seq 0 299" };
    sh(&format!(
        "umask {umask}; cd '{}' && for i in $({order}); do d=d$((i % 7)); mkdir -p $d; printf \"$i\" > $d/f$i; chmod 0640 $d/f$i; done; \
         chmod 0755 d*; ln d0/f0 hard; ln -s d1/f1 soft",
        dir.display()
    ));
    tree_support::touch_all(dir, T);
}

#[test]
fn creation_order_and_umask_do_not_change_the_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    make_ordered(&a, "022", false);
    make_ordered(&b, "077", true);
    sh(&format!("chmod 0755 '{}' '{}'", a.display(), b.display()));
    tree_support::touch_all(&a, T);
    tree_support::touch_all(&b, T);
    let opts = IngestOptions::new(T + 1);
    let (ta, tb) = (ingest(&a, &opts).unwrap(), ingest(&b, &opts).unwrap());
    assert_eq!(
        ta.nodes.len(),
        1 + 7 + 300 + 1,
        "root, 7 dirs, 300 files (one hard-linked twice), one symlink"
    );
    tree_support::assert_same_tree(&ta, &tb, "creation orders");
    // The same tree ingested under a directory the ingestion has to create.
    let mut under = empty();
    add_dir(&mut under, &a, b"/srv/data", &opts).unwrap();
    let sub = under.lookup(b"/srv/data/d3/f3").unwrap();
    assert_eq!(under.node(sub).meta.perm, 0o640);
}

#[test]
fn metadata_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path();
    make_sample(src, T);
    sh(&format!(
        "cd '{d}' && chown 1234:5678 a/file && ln -s /etc etclink && touch -h -d @{late}.5 a/exec && touch -d @{T}.25 empty",
        d = src.display(),
        late = T + 1000
    ));
    xattr::set(src.join("a/exec"), "trusted.secret", b"x").unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(src.join("sock")).unwrap();
    let opts = IngestOptions::new(T + 100);
    let t = ingest(src, &opts).unwrap();
    let node = |p: &[u8]| t.node(t.lookup(p).unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(p))));
    let file = node(b"a/file");
    assert_eq!(
        (file.meta.uid, file.meta.gid, file.meta.perm),
        (1234, 5678, 0o644),
        "a root tree keeps its owners"
    );
    let squashed = ingest(src, &IngestOptions { squash_owners: true, ..opts }).unwrap();
    let f = squashed.node(squashed.lookup(b"a/file").unwrap());
    assert_eq!((f.meta.uid, f.meta.gid), (0, 0), "owners = \"root\" squashes them");
    assert_eq!(file.meta.xattrs.keys().collect::<Vec<_>>(), [&b"user.test".to_vec()]);
    let exec = node(b"a/exec");
    assert_eq!(
        exec.meta.xattrs.keys().collect::<Vec<_>>(),
        [&b"security.capability".to_vec()],
        "trusted.* is dropped"
    );
    assert_eq!(exec.meta.mtime, Timestamp::from_secs(T + 100), "clamped to SOURCE_DATE_EPOCH");
    assert_eq!(
        node(b"empty").meta.mtime,
        Timestamp { secs: T, nanos: 250_000_000 },
        "older times keep their nanoseconds"
    );
    assert_eq!(node(b"suid").meta.perm, 0o4755);
    assert_eq!(node(b"sticky").meta.perm, 0o1777);
    assert_eq!(node(b"etclink").kind, NodeKind::Symlink(b"/etc".to_vec()), "symlinks are not followed");
    assert_eq!(node(b"chardev").kind, NodeKind::CharDevice { major: 1, minor: 3 });
    assert_eq!(node(b"blockdev").kind, NodeKind::BlockDevice { major: 7, minor: 0 });
    assert_eq!(node(b"fifo").kind, NodeKind::Fifo);
    assert_eq!(node(b"sock").kind, NodeKind::Socket);
    assert!(t.lookup(b"\xff\xfename").is_some(), "non-UTF-8 names are kept as bytes");
    assert_eq!(t.lookup(b"a/hard"), t.lookup(b"a/file"), "hard links are one node");
    let NodeKind::File(sparse) = &node(b"sparse").kind else { panic!("sparse is a file") };
    assert_eq!(sparse.size, 1 << 20);

    let mut keep = opts;
    keep.timestamps = TimestampPolicy::Keep;
    let t = ingest(src, &keep).unwrap();
    let exec = t.node(t.lookup(b"a/exec").unwrap());
    // Every time of a node is its source mtime.
    let m = Timestamp { secs: T + 1000, nanos: 500_000_000 };
    assert_eq!((exec.meta.mtime, exec.meta.atime, exec.meta.ctime, exec.meta.crtime), (m, m, m, m));
    keep.timestamps = TimestampPolicy::SourceDateEpoch;
    let t = ingest(src, &keep).unwrap();
    assert!(
        t.nodes.iter().all(|n| n.meta.mtime == Timestamp::from_secs(T + 100) && n.meta.ctime == n.meta.mtime)
    );
}

#[test]
fn missing_source_and_node_budget_are_errors_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let e = ingest(&missing, &IngestOptions::new(0)).unwrap_err();
    assert!(matches!(&e, IngestError::Io { path, .. } if path == &missing), "{e}");
    assert!(e.to_string().contains("nope"), "{e}");

    make_ordered(tmp.path(), "022", false);
    let mut opts = IngestOptions::new(0);
    opts.max_nodes = 50;
    let e = ingest(tmp.path(), &opts).unwrap_err();
    assert!(matches!(&e, IngestError::TooManyFiles { max: 50, path } if path.starts_with("/d")), "{e}");
}

/// Unmounts a bind mount when the test ends, even on failure.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn bind_mount_loops_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let inner = src.join("a/loop");
    std::fs::create_dir_all(&inner).unwrap();
    sh(&format!("mount --bind '{}' '{}'", src.display(), inner.display()));
    let _guard = Unmount(inner.clone());
    let e = ingest(&src, &IngestOptions::new(0)).unwrap_err();
    assert!(
        matches!(&e, IngestError::SourceLoop { path, ancestor } if path == &inner && ancestor == &src),
        "{e}"
    );
}
