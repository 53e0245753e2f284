//! Tar semantics held against GNU tar and bsdtar: pax global headers, device numbers, deep paths, errors naming the member, compressed archives streamed without staging zeros, ENOSPC.

mod tree_support;

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

use reprodisk::tree::ingest::{IngestError, IngestOptions};
use reprodisk::tree::tar::{add_tar, add_tar_with_scratch};
use reprodisk::tree::{FsTree, Metadata, NodeKind, Timestamp};
use tree_support::sh;

fn opts() -> IngestOptions {
    IngestOptions::new(1_700_000_000)
}

fn empty() -> FsTree {
    FsTree::new(Metadata::new(0o755, 0, 0, Timestamp::from_secs(0)))
}

/// One pax record `LEN key=value\n`.
fn record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while format!("{len}{body}").len() != len {
        len += 1;
    }
    format!("{len}{body}")
}

/// Writes an archive of `members`: (type, name, data), where type `g`/`x` is a pax header
/// whose data is its records.
fn write_tar(path: &Path, members: &[(u8, &str, Vec<u8>)]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (kind, name, data) in members {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::new(*kind));
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_000_000);
        h.set_path(name).unwrap();
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    b.into_inner().unwrap().flush().unwrap();
}

/// `NAME UID/GID` of each member as GNU tar (`tar`) or bsdtar lists it.
fn listed_owners(tool: &str, archive: &Path) -> Vec<(String, String)> {
    let out = sh(&format!("{tool} --numeric-owner -tvf '{}'", archive.display()));
    out.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // GNU: `-rw-r--r-- 2000/2000 0 date time name`; bsdtar: `-rw-r--r-- 0 2000 2000 0 date name`.
            if tool == "tar" {
                (f[f.len() - 1].to_string(), f[1].to_string())
            } else {
                (f[f.len() - 1].to_string(), format!("{}/{}", f[2], f[3]))
            }
        })
        .collect()
}

#[test]
fn pax_global_headers_latest_wins_like_gnu_tar_and_bsdtar() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("g.tar");
    write_tar(
        &archive,
        &[
            (b'g', "g1", format!("{}{}", record("uid", "1000"), record("gid", "1000")).into_bytes()),
            (b'0', "a", vec![]),
            (b'g', "g2", format!("{}{}", record("uid", "2000"), record("gid", "2000")).into_bytes()),
            (b'0', "b", vec![]),
            (b'x', "x", record("uid", "3000").into_bytes()),
            (b'0', "c", vec![]),
            (b'0', "d", vec![]),
        ],
    );
    let mut t = empty();
    add_tar(&mut t, &archive, b"/", &opts()).unwrap();
    let owner = |name: &[u8]| {
        let m = &t.node(t.lookup(name).unwrap()).meta;
        format!("{}/{}", m.uid, m.gid)
    };
    let ours: Vec<(String, String)> =
        ["a", "b", "c", "d"].iter().map(|n| (n.to_string(), owner(n.as_bytes()))).collect();
    assert_eq!(ours[1].1, "2000/2000");
    assert_eq!(ours[2].1, "3000/2000", "a local record overrides the global one for one member");
    assert_eq!(listed_owners("tar", &archive), ours, "GNU tar");
    // bsdtar (libarchive) ignores global headers altogether, but agrees on the local one.
    assert_eq!(listed_owners("bsdtar", &archive)[2].1, "3000/0", "bsdtar");
}

/// Seconds to ingest 20k empty members after one global header of `records` records.
fn time_with_globals(dir: &Path, records: usize) -> f64 {
    let archive = dir.join(format!("g{records}.tar"));
    let globals: String = (0..records).map(|i| record(&format!("comment.{i}"), "x")).collect();
    let mut members = vec![(b'g', "g", globals.into_bytes())];
    let names: Vec<String> = (0..20_000).map(|i| format!("f{i}")).collect();
    members.extend(names.iter().map(|n| (b'0', n.as_str(), Vec::new())));
    write_tar(&archive, &members);
    let started = Instant::now();
    let mut t = empty();
    add_tar(&mut t, &archive, b"/", &opts()).unwrap();
    assert_eq!(t.nodes.len(), 20_001);
    started.elapsed().as_secs_f64()
}

#[test]
fn many_global_records_are_not_copied_per_member() {
    let tmp = tempfile::tempdir().unwrap();
    let none = time_with_globals(tmp.path(), 0);
    let many = time_with_globals(tmp.path(), 5000);
    // Copying every global record into every member made this 100 times slower.
    assert!(many < 3.0 * none + 0.5, "5000 global records: {many:.2} s, none: {none:.2} s");
}

#[test]
fn device_numbers_beyond_ext4_are_refused_naming_the_member() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("dev.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&archive).unwrap());
    for (name, major, minor) in [("dev/ok", 4095, 1_048_575), ("dev/big", 2_097_151, 2_097_151)] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Char);
        h.set_size(0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_path(name).unwrap();
        h.set_cksum();
        b.append(&h, std::io::empty()).unwrap();
    }
    b.into_inner().unwrap();
    let e = add_tar(&mut empty(), &archive, b"/", &opts()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("member `dev/big`") && msg.contains("2097151:2097151 does not fit"), "{msg}");
}

#[test]
fn deep_paths_take_linear_time() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("deep.tar");
    let path = "a/".repeat(200_000) + "f";
    write_tar(
        &archive,
        &[(b'x', "x", record("path", &path).into_bytes()), (b'0', "stand-in", b"hi".to_vec())],
    );
    let started = Instant::now();
    let mut t = empty();
    add_tar(&mut t, &archive, b"/", &opts()).unwrap();
    let took = started.elapsed();
    assert_eq!(t.nodes.len(), 200_002);
    assert!(matches!(t.node(t.lookup(path.as_bytes()).unwrap()).kind, NodeKind::File(_)));
    // Over 120 s when each level rebuilt its display path.
    assert!(took.as_secs() < 10, "{took:?}");
}

#[test]
fn errors_name_the_member() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("bad.tar");
    write_tar(&archive, &[(b'0', "etc/ok", b"1".to_vec()), (b'0', "etc/bad", b"2".to_vec())]);
    // Corrupt the uid field of the second header (at 1024: header, data block, header).
    let mut bytes = std::fs::read(&archive).unwrap();
    bytes[1024 + 108..1024 + 116].copy_from_slice(b"99x9999\0");
    let sum: u32 = bytes[1024..1536]
        .iter()
        .enumerate()
        .map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u32::from(b) })
        .sum();
    bytes[1024 + 148..1024 + 156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    std::fs::write(&archive, &bytes).unwrap();
    let msg = add_tar(&mut empty(), &archive, b"/", &opts()).unwrap_err().to_string();
    assert!(msg.contains("member `etc/bad` at byte 1024: bad uid"), "{msg}");
    // A broken header names the member before it.
    bytes[1024] ^= 0xff;
    std::fs::write(&archive, &bytes).unwrap();
    let msg = add_tar(&mut empty(), &archive, b"/", &opts()).unwrap_err().to_string();
    assert!(msg.contains("the header after member `etc/ok`"), "{msg}");
}

#[test]
fn a_gzip_bomb_of_zeros_stages_no_data() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().display();
    // 512 MiB of zeros (a hole on disk, full data in the archive) gzip to about 500 KiB.
    sh(&format!(
        "cd {t} && mkdir s && truncate -s 512M s/zeros && echo hi > s/hi && tar -C s -cf - . | gzip -1 > bomb.tar.gz"
    ));
    std::fs::remove_dir_all(tmp.path().join("s")).unwrap();
    let scratch_dir = tmp.path().join("scratch");
    std::fs::create_dir(&scratch_dir).unwrap();
    let mut tree = empty();
    let scratch =
        add_tar_with_scratch(&mut tree, &tmp.path().join("bomb.tar.gz"), b"/", &opts(), Some(&scratch_dir))
            .unwrap();
    let path = scratch.path.as_ref().unwrap();
    let md = std::fs::metadata(path).unwrap();
    assert!(md.len() >= 512 << 20, "{}", md.len());
    assert!(md.blocks() * 512 <= 64 << 10, "{} bytes staged", md.blocks() * 512);
    match &tree.node(tree.lookup(b"/zeros").unwrap()).kind {
        NodeKind::File(c) => assert_eq!(c.size, 512 << 20),
        k => panic!("{k:?}"),
    }
    match &tree.node(tree.lookup(b"/hi").unwrap()).kind {
        NodeKind::File(c) => assert_eq!(tree_support::content(c), b"hi\n"),
        k => panic!("{k:?}"),
    }
}

#[test]
fn a_compressed_archive_larger_than_the_disk_is_refused_early() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().display();
    sh(&format!(
        "cd {t} && mkdir s && head -c 80M /dev/zero | tr '\\0' A > s/a && tar -C s -cf - . | gzip -1 > a.tar.gz && rm -r s"
    ));
    let mut o = opts();
    o.max_staged_bytes = 64 << 20;
    let e = add_tar_with_scratch(&mut empty(), &tmp.path().join("a.tar.gz"), b"/", &o, Some(tmp.path()))
        .unwrap_err();
    assert!(matches!(e, IngestError::TooMuchData { limit, .. } if limit == 64 << 20), "{e}");
    assert!(e.to_string().contains("enlarge diskSize"), "{e}");
    // The scratch file went with the error.
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["a.tar.gz"]);
}

/// Unmounts when dropped.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn enospc_while_unpacking_is_reported_as_enospc() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().display();
    sh(&format!(
        "cd {t} && mkdir s mnt && head -c 12M /dev/urandom > s/r && tar -C s -czf r.tar.gz . && rm -r s"
    ));
    let mnt = tmp.path().join("mnt");
    sh(&format!(
        "mount -t tmpfs -o size=4m tmpfs '{}' || {{ echo 'this test mounts a tmpfs: run it as root' >&2; exit 1; }}",
        mnt.display()
    ));
    let _m = Mount(mnt.clone());
    let e = add_tar_with_scratch(&mut empty(), &tmp.path().join("r.tar.gz"), b"/", &opts(), Some(&mnt))
        .unwrap_err();
    assert!(matches!(&e, IngestError::Scratch { .. }), "{e}");
    assert!(e.to_string().contains("No space left on device"), "{e}");
    assert_eq!(std::fs::read_dir(&mnt).unwrap().count(), 0, "the scratch file stays");
}
