//! Tar ingestion checked against archives made by GNU tar and by the `tar` crate.

mod tree_support;

use reprodisk::tree::dir::add_dir;
use reprodisk::tree::ingest::{IngestError, IngestOptions};
use reprodisk::tree::tar::{add_tar, add_tar_with_scratch};
use reprodisk::tree::{DataSource, FsTree, Metadata, NodeKind, Timestamp};
use tree_support::{by_content, content, make_sample, sh};

const T: i64 = 1_600_000_000;

fn opts() -> IngestOptions {
    IngestOptions::new(1_700_000_000)
}

fn empty() -> FsTree {
    FsTree::new(Metadata::new(0o755, 0, 0, Timestamp::from_secs(0)))
}

/// The tree of a tar archive ingested at the root with the default options.
fn tar_tree(archive: &std::path::Path) -> FsTree {
    let mut t = empty();
    add_tar(&mut t, archive, b"/", &opts()).unwrap();
    t
}

/// The sample tree in a fresh temporary directory, and the tree ingested from it.
fn sample_as_dir() -> (tempfile::TempDir, std::path::PathBuf, FsTree) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    make_sample(&src, T);
    let mut from_dir = empty();
    add_dir(&mut from_dir, &src, b"/", &opts()).unwrap();
    (tmp, src, from_dir)
}

/// The sample as a directory and as archives made by GNU tar with `flags` give the same tree.
fn same_as_dir(flags: &str, keep_xattrs: bool) {
    let (tmp, src, from_dir) = sample_as_dir();
    let archive = tmp.path().join("archive");
    sh(&format!(
        "tar --numeric-owner --owner=0 --group=0 {flags} -C '{}' -cf '{}' .",
        src.display(),
        archive.display()
    ));
    let mut from_tar = empty();
    let _scratch = add_tar(&mut from_tar, &archive, b"/", &opts()).unwrap();
    let mut want = by_content(&from_dir);
    if !keep_xattrs {
        want.nodes.iter_mut().for_each(|n| n.meta.xattrs.clear());
    }
    tree_support::assert_same_tree(&from_tar, &want, &format!("tar {flags}"));
    if keep_xattrs {
        let f = from_tar.node(from_tar.lookup(b"/a/file").unwrap());
        assert_eq!(f.meta.xattrs.get(&b"user.test"[..]).map(Vec::as_slice), Some(&b"value"[..]), "{flags}");
    }
    // The sparse file keeps a map unless the format wrote it dense.
    let sparse = from_tar.node(from_tar.lookup(b"/sparse").unwrap());
    if flags.contains("--sparse") {
        let holes = from_tar.node(from_tar.lookup(b"/holes").unwrap());
        assert!(
            matches!(&holes.kind, NodeKind::File(c) if matches!(&c.source, DataSource::Archive { map: Some(m), .. } if m.len() == 30)),
            "{flags}: 30 runs"
        );
        assert!(
            matches!(&sparse.kind, NodeKind::File(c) if matches!(&c.source, DataSource::Archive { map: Some(_), .. })),
            "{flags}"
        );
    }
}

#[test]
fn gnu_tar_posix_with_xattrs_and_sparse_matches_dir() {
    same_as_dir("--format=posix --xattrs --sparse", true);
}

#[test]
fn gnu_tar_pax_sparse_versions_match_dir() {
    same_as_dir("--format=posix --xattrs --sparse --sparse-version=0.0", true);
    same_as_dir("--format=posix --xattrs --sparse --sparse-version=0.1", true);
}

#[test]
fn gnu_tar_gnu_format_sparse_matches_dir() {
    same_as_dir("--format=gnu --sparse", false);
}

#[test]
fn gzip_and_zstd_are_detected_by_magic() {
    same_as_dir("--format=posix --xattrs -z", true);
    same_as_dir("--format=posix --xattrs --zstd", true);
}

#[test]
fn ids_modes_times_and_links_from_a_tar_crate_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("t.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o4711);
    h.set_uid(1000);
    h.set_gid(100);
    h.set_mtime(T as u64);
    h.set_size(3);
    let long = format!("usr/{}/bin", "d".repeat(150));
    b.append_data(&mut h.clone(), format!("./{long}"), &b"abc"[..]).unwrap();
    h.set_entry_type(tar::EntryType::Link);
    h.set_size(0);
    b.append_link(&mut h.clone(), "hard", format!("./{long}")).unwrap();
    // A leading `/` is stripped, as GNU tar does.
    b.append(&raw_header(b"/abs", tar::EntryType::Fifo, b""), std::io::empty()).unwrap();
    h.set_entry_type(tar::EntryType::Symlink);
    b.append_link(&mut h.clone(), "sym", "../x/y").unwrap();
    h.set_entry_type(tar::EntryType::Char);
    h.set_device_major(4).unwrap();
    h.set_device_minor(64).unwrap();
    b.append_data(&mut h.clone(), "dev/ttyS0", std::io::empty()).unwrap();
    b.into_inner().unwrap();

    let mut o = opts();
    o.source_date_epoch = T - 10; // clamps every member
    let mut t = empty();
    add_tar(&mut t, &path, b"/", &o).unwrap();
    let file = t.lookup(long.as_bytes()).unwrap();
    assert_eq!(t.lookup(b"hard"), Some(file), "hard link is the same node");
    let n = t.node(file);
    assert_eq!(
        (n.meta.perm, n.meta.uid, n.meta.gid, n.meta.mtime),
        (0o4711, 1000, 100, Timestamp::from_secs(T - 10))
    );
    assert_eq!(n.meta.ctime, n.meta.mtime);
    let NodeKind::File(c) = &n.kind else { panic!("not a file") };
    assert_eq!(content(c), b"abc");
    assert_eq!(t.node(t.lookup(b"sym").unwrap()).kind, NodeKind::Symlink(b"../x/y".to_vec()));
    assert_eq!(t.node(t.lookup(b"dev/ttyS0").unwrap()).kind, NodeKind::CharDevice { major: 4, minor: 64 });
    // Missing parents are created 0755 0:0 at SOURCE_DATE_EPOCH.
    let usr = t.node(t.lookup(b"usr").unwrap());
    assert_eq!(usr.meta, Metadata::new(0o755, 0, 0, Timestamp::from_secs(T - 10)));
    assert_eq!(t.link_counts()[file.0 as usize], 2);
    assert_eq!(t.node(t.lookup(b"abs").unwrap()).kind, NodeKind::Fifo);
}

#[test]
fn pax_nanosecond_mtime_and_later_members_win() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("s");
    sh(&format!(
        "mkdir -p {s}/d && printf one > {s}/d/f && touch -d @{T}.123456789 {s}/d/f && \
         tar --format=posix --numeric-owner -C {s} -cf {t}/a.tar d && \
         printf two > {s}/d/f && chmod 0600 {s}/d/f && tar --format=posix -C {s} -rf {t}/a.tar d/f",
        s = src.display(),
        t = tmp.path().display()
    ));
    let mut t = empty();
    let mut o = opts();
    o.timestamps = reprodisk::tree::ingest::TimestampPolicy::Keep;
    add_tar(&mut t, &tmp.path().join("a.tar"), b"/", &o).unwrap();
    let f = t.node(t.lookup(b"d/f").unwrap());
    let NodeKind::File(c) = &f.kind else { panic!("not a file") };
    assert_eq!((content(c), f.meta.perm), (b"two".to_vec(), 0o600));
    assert_eq!(t.nodes.len(), 3, "the replaced member is not kept");
    let mut t = empty();
    sh(&format!(
        "tar --format=posix -C {s} --delete -f {t}/a.tar d/f 2>/dev/null || true",
        s = src.display(),
        t = tmp.path().display()
    ));
    sh(&format!(
        "touch -d @{T}.123456789 {}/d/f && tar --format=posix -C {} -cf {}/b.tar d",
        src.display(),
        src.display(),
        tmp.path().display()
    ));
    add_tar(&mut t, &tmp.path().join("b.tar"), b"/", &o).unwrap();
    let f = t.node(t.lookup(b"d/f").unwrap());
    assert_eq!(f.meta.mtime, Timestamp { secs: T, nanos: 123_456_789 });
}

#[test]
fn archive_placed_under_a_subdirectory() {
    let tmp = tempfile::tempdir().unwrap();
    sh(&format!("cd {t} && mkdir s && printf x > s/f && tar -C s -cf a.tar .", t = tmp.path().display()));
    let mut t = empty();
    add_tar(&mut t, &tmp.path().join("a.tar"), b"/opt/app", &opts()).unwrap();
    assert!(t.lookup(b"/opt/app/f").is_some());
}

fn tar_err(build: impl FnOnce(&mut tar::Builder<std::fs::File>)) -> IngestError {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bad.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
    build(&mut b);
    b.into_inner().unwrap();
    add_tar(&mut empty(), &path, b"/", &opts()).unwrap_err()
}

fn raw_header(name: &[u8], kind: tar::EntryType, link: &[u8]) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(0);
    h.set_mode(0o644);
    let gnu = h.as_gnu_mut().unwrap();
    gnu.name[..name.len()].copy_from_slice(name);
    gnu.linkname[..link.len()].copy_from_slice(link);
    h.set_cksum();
    h
}

#[test]
fn bad_archives_are_errors_naming_the_problem() {
    let e = tar_err(|b| {
        b.append(&raw_header(b"../etc/passwd", tar::EntryType::Regular, b""), std::io::empty()).unwrap()
    });
    assert!(matches!(&e, IngestError::EscapesRoot { path, .. } if path == "../etc/passwd"), "{e}");
    let e =
        tar_err(|b| b.append(&raw_header(b"h", tar::EntryType::Link, b"nothing"), std::io::empty()).unwrap());
    assert!(matches!(&e, IngestError::HardLinkTarget { target, .. } if target == "nothing"), "{e}");
    let e = tar_err(|b| {
        b.append(&raw_header(b"l", tar::EntryType::Symlink, b"/etc"), std::io::empty()).unwrap();
        b.append(&raw_header(b"l/f", tar::EntryType::Regular, b""), std::io::empty()).unwrap();
    });
    assert!(matches!(&e, IngestError::NotADirectory { blocker, .. } if blocker == "/l"), "{e}");
    let long = "x".repeat(256);
    let e = tar_err(|b| {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        b.append_data(&mut h, format!("d/{long}"), std::io::empty()).unwrap();
    });
    assert!(matches!(&e, IngestError::Tree { path, .. } if path.ends_with(&long)), "{e}");
    assert!(e.to_string().contains("255 bytes"), "{e}");

    let tmp = tempfile::tempdir().unwrap();
    let garbage = tmp.path().join("garbage.tar");
    std::fs::write(&garbage, vec![7u8; 1024]).unwrap();
    let e = add_tar(&mut empty(), &garbage, b"/", &opts()).unwrap_err();
    assert!(matches!(&e, IngestError::Tar { offset: 0, what, .. } if what.contains("checksum")), "{e}");
    sh(&format!(
        "cd {t} && head -c 5000 /dev/zero | tr '\\0' a > big && tar -cf full.tar big && head -c 2048 full.tar > cut.tar",
        t = tmp.path().display()
    ));
    let e = add_tar(&mut empty(), &tmp.path().join("cut.tar"), b"/", &opts()).unwrap_err();
    assert!(matches!(&e, IngestError::Tar { what, .. } if what.contains("past the end")), "{e}");
    sh(&format!("cd {t} && xz -k full.tar", t = tmp.path().display()));
    let e = add_tar(&mut empty(), &tmp.path().join("full.tar.xz"), b"/", &opts()).unwrap_err();
    assert!(e.to_string().contains("recompress with gzip or zstd"), "{e}");
    let e = add_tar(&mut empty(), &tmp.path().join("missing.tar"), b"/", &opts()).unwrap_err();
    assert!(matches!(&e, IngestError::Io { path, .. } if path.ends_with("missing.tar")), "{e}");
}

#[test]
fn bsdtar_archives_with_libarchive_xattrs_match_dir() {
    let (tmp, src, from_dir) = sample_as_dir();
    for (flags, name) in
        [("--format=pax", "a.tar"), ("--format=pax --zstd", "a.tar.zst"), ("--format=pax -z", "a.tgz")]
    {
        let archive = tmp.path().join(name);
        sh(&format!(
            "bsdtar {flags} --xattrs --numeric-owner --uid 0 --gid 0 -C '{}' -cf '{}' . \
             || {{ echo 'bsdtar is missing: apt-get install libarchive-tools' >&2; exit 1; }}",
            src.display(),
            archive.display()
        ));
        let records = sh(&format!("grep -a -c LIBARCHIVE.xattr.user.test '{}' || true", archive.display()));
        if name == "a.tar" {
            assert_ne!(records.trim(), "0", "bsdtar wrote LIBARCHIVE.xattr records");
        }
        let mut from_tar = empty();
        let _scratch = add_tar(&mut from_tar, &archive, b"/", &opts()).unwrap();
        tree_support::assert_same_tree(&from_tar, &from_dir, &format!("bsdtar {flags}"));
    }
}

#[test]
fn pax_global_headers_libarchive_names_and_dropped_xattrs() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("p.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
    // A global header: its records apply to every later member unless a local one overrides.
    let mut g = tar::Header::new_ustar();
    let global = b"15 uid=4242424\n";
    g.set_entry_type(tar::EntryType::XGlobalHeader);
    g.set_size(global.len() as u64);
    g.set_cksum();
    b.append(&g, &global[..]).unwrap();
    b.append_pax_extensions([
        ("LIBARCHIVE.xattr.user.a%3Db", &b"aGVsbG8="[..]),
        ("SCHILY.xattr.security.selinux", b"system_u:object_r:etc_t:s0"),
        ("SCHILY.xattr.user.plain", b"v\0bin"),
        ("mtime", b"1600000000.000000001"),
        ("uid", b"7"),
    ])
    .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_size(1);
    h.set_mode(0o640);
    b.append_data(&mut h.clone(), "f", &b"x"[..]).unwrap();
    b.append_data(&mut h, "g", &b"y"[..]).unwrap();
    b.into_inner().unwrap();
    let mut t = empty();
    let mut o = opts();
    o.timestamps = reprodisk::tree::ingest::TimestampPolicy::Keep;
    add_tar(&mut t, &path, b"/", &o).unwrap();
    let f = t.node(t.lookup(b"f").unwrap());
    let xattrs: Vec<(&[u8], &[u8])> =
        f.meta.xattrs.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
    assert_eq!(
        xattrs,
        [(&b"user.a=b"[..], &b"hello"[..]), (b"user.plain", b"v\0bin")],
        "security.selinux is dropped"
    );
    assert_eq!((f.meta.uid, f.meta.mtime), (7, Timestamp { secs: T, nanos: 1 }));
    let g = t.node(t.lookup(b"g").unwrap());
    assert_eq!((g.meta.uid, g.meta.xattrs.len()), (4_242_424, 0), "local records end with their member");
}

#[test]
fn multi_frame_zstd_and_multi_member_gzip() {
    let tmp = tempfile::tempdir().unwrap();
    sh(&format!(
        "cd '{}' && mkdir s && for i in $(seq 1 40); do head -c 3000 /dev/urandom > s/f$i; done && tar -C s -cf a.tar . && \
         split -b 50000 a.tar part. && for p in part.*; do zstd -q $p -o $p.zst; gzip -k $p; done && \
         cat part.*.zst > a.tar.zst && cat part.*.gz > a.tar.gz",
        tmp.path().display()
    ));
    let mut plain = empty();
    add_tar(&mut plain, &tmp.path().join("a.tar"), b"/", &opts()).unwrap();
    let scratch_dir = tmp.path().join("scratch");
    std::fs::create_dir(&scratch_dir).unwrap();
    for name in ["a.tar.zst", "a.tar.gz"] {
        let mut t = empty();
        let scratch =
            add_tar_with_scratch(&mut t, &tmp.path().join(name), b"/", &opts(), Some(&scratch_dir)).unwrap();
        let scratch_path =
            scratch.path.as_ref().expect("a compressed archive has a scratch file").to_path_buf();
        tree_support::assert_same_tree(&t, &plain, name);
        drop(scratch);
        assert!(scratch_path.starts_with(&scratch_dir), "{}", scratch_path.display());
        assert!(!scratch_path.exists(), "the scratch file goes with its guard");
    }
}

/// A small archive with pax records, a sparse 1.0 member, long names and links, made once.
fn fuzz_base() -> &'static [u8] {
    static BASE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        sh(&format!(
            "cd '{d}' && mkdir -p s/$(printf 'l%.0s' $(seq 120))/x && printf a > s/f && ln s/f s/h && ln -s f s/l && \
             printf y | dd of=s/sp bs=1 seek=20000 conv=notrunc status=none",
            d = tmp.path().display()
        ));
        xattr::set(tmp.path().join("s/f"), "user.k", b"v").unwrap();
        sh(&format!("tar --format=posix --xattrs --sparse -C '{}/s' -cf '{}/a.tar' .", tmp.path().display(), tmp.path().display()));
        std::fs::read(tmp.path().join("a.tar")).unwrap()
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

    /// Corrupted or truncated archives give an error or a tree, never a panic.
    #[test]
    fn corrupt_archives_never_panic(
        edits in proptest::collection::vec((0usize..8192, proptest::prelude::any::<u8>()), 1..12),
        cut in proptest::option::of(0usize..12000),
    ) {
        let mut bytes = fuzz_base().to_vec();
        for (pos, b) in edits {
            let len = bytes.len();
            bytes[pos % len] = b;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut);
        }
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.tar");
        std::fs::write(&path, &bytes).unwrap();
        let _ = add_tar(&mut empty(), &path, b"/", &opts());
    }
}

#[test]
fn member_order_does_not_change_the_tree() {
    let (tmp, src, _) = sample_as_dir();
    let mut trees = Vec::new();
    for (i, sort) in ["--sort=name", "--sort=inode", "--sort=none"].iter().enumerate() {
        let archive = tmp.path().join(format!("{i}.tar"));
        sh(&format!(
            "tar --format=posix --xattrs --sparse --numeric-owner {sort} -C '{}' -cf '{}' .",
            src.display(),
            archive.display()
        ));
        trees.push(tar_tree(&archive));
    }
    // Reversing the member list is the strongest reordering; GNU tar cannot write it, so
    // list the names in reverse and archive them with --no-recursion.
    let rev = tmp.path().join("rev.tar");
    sh(&format!(
        "cd '{}' && find . | LC_ALL=C sort -r | tar --format=posix --xattrs --sparse --numeric-owner --no-recursion -T - -cf '{}'",
        src.display(),
        rev.display()
    ));
    trees.push(tar_tree(&rev));
    for t in &trees[1..] {
        tree_support::assert_same_tree(t, &trees[0], "member order");
    }
}

#[test]
fn gnu_incremental_dumpdirs_read_as_directories() {
    let tmp = tempfile::tempdir().unwrap();
    sh(&format!(
        "cd '{}' && mkdir -p s/d && printf x > s/d/f && tar --listed-incremental=snap -C s -cf inc.tar .",
        tmp.path().display()
    ));
    let bytes = std::fs::read(tmp.path().join("inc.tar")).unwrap();
    assert_eq!(bytes[156], b'D', "GNU tar wrote a dumpdir member first");
    let t = tar_tree(&tmp.path().join("inc.tar"));
    assert!(matches!(t.node(t.lookup(b"d").unwrap()).kind, NodeKind::Dir(_)));
    assert!(t.lookup(b"d/f").is_some());
}

#[test]
fn sparse_files_over_8_gib_use_base256_and_pax_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let size: u64 = 9 << 30;
    sh(&format!(
        "cd '{}' && mkdir s && printf head > s/big && printf tail | dd of=s/big bs=1 seek={} conv=notrunc status=none",
        tmp.path().display(),
        size - 4
    ));
    for format in ["gnu", "posix"] {
        let archive = tmp.path().join(format!("{format}.tar"));
        sh(&format!(
            "tar --format={format} --sparse -C '{}/s' -cf '{}' big",
            tmp.path().display(),
            archive.display()
        ));
        let mut t = empty();
        add_tar(&mut t, &archive, b"/", &opts()).unwrap();
        let NodeKind::File(c) = &t.node(t.lookup(b"big").unwrap()).kind else { panic!("big is a file") };
        assert_eq!(c.size, size, "{format}");
        let DataSource::Archive { path, offset, map: Some(map) } = &c.source else {
            panic!("{format}: not sparse")
        };
        let last = *map.last().unwrap();
        assert_eq!(last.0 + last.1, size, "{format}: the last run ends the file");
        assert_eq!(map[0].0, 0, "{format}");
        // The data runs hold the bytes written: read the first and last run back.
        let mut f = std::fs::File::open(path.as_path()).unwrap();
        use std::io::{Read, Seek, SeekFrom};
        let mut head = [0u8; 4];
        f.seek(SeekFrom::Start(*offset)).unwrap();
        f.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"head", "{format}");
        let before_last: u64 = map[..map.len() - 1].iter().map(|r| r.1).sum();
        let mut tail = [0u8; 4];
        f.seek(SeekFrom::Start(offset + before_last + last.1 - 4)).unwrap();
        f.read_exact(&mut tail).unwrap();
        assert_eq!(&tail, b"tail", "{format}");
    }
}
