//! The ext4 reader against e2fsprogs: images made by mke2fs (ext2, ext3, ext4 and feature
//! variants, populated with every file type) must read exactly as `dumpe2fs -h`,
//! `debugfs stat` and `debugfs rdump` see them; the util-linux corpus must match its
//! blkid `.expected` fields.

mod ext4_util;

use ext4_util::*;
use reprodisk_verifier::bytes::{ImageFile, ReadAt};
use reprodisk_verifier::ext4::summary::uuid_string;
use reprodisk_verifier::ext4::{Entry, Ext4, FileType, Superblock, walk};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Builds the source tree every populated image is made from.
fn populate(dir: &Path) {
    use std::fs;
    let w = |p: &str, data: &[u8]| fs::write(dir.join(p), data).expect("writing a source file");
    fs::create_dir_all(dir.join("dir/nested")).unwrap();
    fs::create_dir_all(dir.join("bigdir")).unwrap();
    w("hello.txt", b"hello world\n");
    w("empty", b"");
    w("dir/nested/deep.txt", &b"deep file contents ".repeat(300));
    w("hard1", b"two names, one inode\n");
    fs::hard_link(dir.join("hard1"), dir.join("dir/hard2")).unwrap();
    std::os::unix::fs::symlink("hello.txt", dir.join("link")).unwrap();
    std::os::unix::fs::symlink("a/".repeat(60) + "target", dir.join("longlink")).unwrap();
    w("caf\u{e9}-\u{1F600}.txt", b"unicode name\n");
    for i in 0..200 {
        w(&format!("bigdir/entry-with-a-rather-long-name-number-{i:04}"), format!("{i}\n").as_bytes());
    }
    // A sparse file: data at 0 and at 512 KiB, a hole in between and after.
    let f = fs::File::create(dir.join("sparse")).unwrap();
    f.set_len(1 << 20).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"start", 0).unwrap();
    f.write_all_at(b"middle", 512 << 10).unwrap();
    // Many extents: 4 KiB of data every 8 KiB.
    let f = fs::File::create(dir.join("fragmented")).unwrap();
    for i in 0..30u64 {
        f.write_all_at(&vec![b'a' + (i % 26) as u8; 4096], i * 8192).unwrap();
    }
    w("setuid", b"#!/bin/sh\n");
    fs::set_permissions(dir.join("setuid"), std::os::unix::fs::PermissionsExt::from_mode(0o4755)).unwrap();
    std::os::unix::fs::chown(dir.join("setuid"), Some(1000), Some(1001)).unwrap();
    // Times past 2038 (epoch bits) and before 1970 (negative seconds), with nanoseconds.
    w("future", b"2200\n");
    w("past", b"1960\n");
    let future = std::time::UNIX_EPOCH + std::time::Duration::new(7_258_118_400, 987_654_321);
    let past = std::time::UNIX_EPOCH - std::time::Duration::new(315_619_200, 0);
    fs::File::options().write(true).open(dir.join("future")).unwrap().set_modified(future).unwrap();
    fs::File::options().write(true).open(dir.join("past")).unwrap().set_modified(past).unwrap();
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::new(1_234_567_890, 123_456_789);
    fs::File::options().write(true).open(dir.join("hello.txt")).unwrap().set_modified(mtime).unwrap();
    run_ok("mknod", &[dir.join("chr").to_str().unwrap(), "c", "4", "65"]);
    run_ok("mknod", &[dir.join("blk").to_str().unwrap(), "b", "259", "300000"]);
    run_ok("mkfifo", &[dir.join("fifo").to_str().unwrap()]);
    std::os::unix::net::UnixListener::bind(dir.join("sock")).unwrap();
    w("xsmall", b"x\n");
    run_ok("setfattr", &["-n", "user.small", "-v", "tiny", dir.join("xsmall").to_str().unwrap()]);
    w("xbig", b"x\n");
    let big = "v".repeat(700);
    run_ok("setfattr", &["-n", "user.big", "-v", &big, dir.join("xbig").to_str().unwrap()]);
    run_ok("setfattr", &["-n", "trusted.other", "-v", "second", dir.join("xbig").to_str().unwrap()]);
}

/// Paths of the source tree as the walk should list them (plus /lost+found).
fn source_paths(src: &Path) -> BTreeSet<Vec<u8>> {
    let mut out = BTreeSet::from([b"/".to_vec(), b"/lost+found".to_vec()]);
    let mut stack = vec![src.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(src).unwrap().as_os_str().as_bytes().to_vec();
            let mut p = b"/".to_vec();
            p.extend(rel);
            out.insert(p);
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out
}

/// dumpe2fs's "Lifetime writes" units.
fn lifetime(kb: u64) -> String {
    if kb < 1 << 13 {
        format!("{kb} kB")
    } else if kb < 1 << 23 {
        format!("{} MB", (kb + (1 << 9)) >> 10)
    } else if kb < 1 << 33 {
        format!("{} GB", (kb + (1 << 19)) >> 20)
    } else {
        format!("{} TB", (kb + (1 << 29)) >> 30)
    }
}

/// Every superblock and journal value against `dumpe2fs -h`, field by field.
fn check_dumpe2fs(img: &Path, fs: &Ext4<ImageFile>) {
    let d = dumpe2fs(img);
    let sb = &fs.sb;
    let mut expect: Vec<(&str, String)> = vec![
        (
            "Filesystem volume name",
            if sb.s_volume_name.is_empty() {
                "<none>".into()
            } else {
                String::from_utf8_lossy(&sb.s_volume_name).into()
            },
        ),
        ("Filesystem UUID", uuid_string(&sb.s_uuid)),
        ("Filesystem magic number", format!("{:#06X}", sb.s_magic).replace("0X", "0x")),
        ("Filesystem revision #", format!("{} (dynamic)", sb.s_rev_level)),
        ("Filesystem features", sb.features.names().join(" ")),
        ("Filesystem state", sb.state_name()),
        ("Errors behavior", sb.errors_name()),
        ("Filesystem OS type", sb.creator_os_name()),
        (
            "Default mount options",
            if sb.s_default_mount_opts == 0 {
                "(none)".into()
            } else {
                sb.default_mount_opt_names().join(" ")
            },
        ),
        ("Inode count", sb.s_inodes_count.to_string()),
        ("Block count", sb.s_blocks_count.to_string()),
        ("Reserved block count", sb.s_r_blocks_count.to_string()),
        ("Free blocks", sb.s_free_blocks_count.to_string()),
        ("Free inodes", sb.s_free_inodes_count.to_string()),
        ("First block", sb.s_first_data_block.to_string()),
        ("Block size", sb.block_size().to_string()),
        ("Fragment size", (1024u64 << sb.s_log_cluster_size).to_string()),
        ("Blocks per group", sb.s_blocks_per_group.to_string()),
        ("Fragments per group", sb.s_clusters_per_group.to_string()),
        ("Inodes per group", sb.s_inodes_per_group.to_string()),
        ("Inode blocks per group", sb.inode_table_blocks().to_string()),
        ("Filesystem created", ctime(sb.s_mkfs_time)),
        ("Last mount time", if sb.s_mtime == 0 { "n/a".into() } else { ctime(sb.s_mtime) }),
        ("Last write time", ctime(sb.s_wtime)),
        ("Mount count", sb.s_mnt_count.to_string()),
        ("Maximum mount count", sb.s_max_mnt_count.to_string()),
        ("Last checked", ctime(sb.s_lastcheck)),
        ("Reserved blocks uid", format!("{} (user root)", sb.s_def_resuid)),
        ("Reserved blocks gid", format!("{} (group root)", sb.s_def_resgid)),
        ("First inode", sb.s_first_ino.to_string()),
        ("Inode size", sb.s_inode_size.to_string()),
        ("Default directory hash", sb.def_hash_name()),
        ("Directory Hash Seed", uuid_string(&sb.s_hash_seed)),
    ];
    expect.push((
        "Last mounted on",
        if sb.s_last_mounted.is_empty() {
            "<not available>".into()
        } else {
            String::from_utf8_lossy(&sb.s_last_mounted).into()
        },
    ));
    if sb.s_flags != 0 {
        expect.push(("Filesystem flags", sb.flag_names().join(" ")));
    }
    if sb.s_reserved_gdt_blocks != 0 {
        expect.push(("Reserved GDT blocks", sb.s_reserved_gdt_blocks.to_string()));
    }
    if sb.s_overhead_clusters != 0 {
        expect.push(("Overhead clusters", sb.s_overhead_clusters.to_string()));
    }
    if sb.features.is_64bit() {
        expect.push(("Group descriptor size", sb.s_desc_size.to_string()));
    }
    if sb.features.flex_bg() {
        expect.push(("Flex block group size", (1u64 << sb.s_log_groups_per_flex).to_string()));
    }
    if sb.s_kbytes_written != 0 {
        expect.push(("Lifetime writes", lifetime(sb.s_kbytes_written)));
    }
    if sb.s_inode_size > 128 {
        expect.push(("Required extra isize", sb.s_min_extra_isize.to_string()));
        expect.push(("Desired extra isize", sb.s_want_extra_isize.to_string()));
    }
    if sb.features.has_metadata_csum() {
        expect.push(("Checksum type", "crc32c".into()));
        expect.push(("Checksum", format!("{:#010x}", sb.s_checksum)));
    }
    if sb.features.has_journal() {
        expect.push(("Journal inode", sb.s_journal_inum.to_string()));
        if sb.s_jnl_backup_type == 1 {
            expect.push(("Journal backup", "inode blocks".into()));
        }
        let j = fs.journal.as_ref().expect("has_journal images have a journal superblock");
        let feats = j.feature_names();
        expect.push(("Journal features", if feats.is_empty() { "(none)".into() } else { feats.join(" ") }));
        let size = u64::from(j.s_maxlen) * u64::from(j.s_blocksize);
        expect.push((
            "Total journal size",
            if size < 8192 * 1024 { format!("{}k", size >> 10) } else { format!("{}M", size >> 20) },
        ));
        expect.push(("Total journal blocks", j.s_maxlen.to_string()));
        expect.push(("Max transaction length", j.s_maxlen.to_string()));
        expect.push(("Fast commit length", j.s_num_fc_blks.to_string()));
        expect.push(("Journal sequence", format!("{:#010x}", j.s_sequence)));
        expect.push(("Journal start", j.s_start.to_string()));
        if j.has_csum_v2v3() {
            expect.push(("Journal checksum type", j.checksum_type_name().into()));
            expect.push(("Journal checksum", format!("{:#010x}", j.s_checksum)));
        }
    } else {
        assert!(fs.journal.is_none());
        assert!(!d.contains_key("Journal inode"), "dumpe2fs sees a journal the reader does not");
    }
    let interval = d.get("Check interval").and_then(|v| v.split_whitespace().next()).unwrap_or("");
    assert_eq!(interval, sb.s_checkinterval.to_string(), "Check interval");
    for (k, v) in &expect {
        let got = d.get(*k).unwrap_or_else(|| panic!("dumpe2fs -h has no `{k}` line; it printed {d:#?}"));
        assert_eq!(got, v, "{}: dumpe2fs says `{k}: {got}`, the reader `{v}`", img.display());
    }
}

/// Every group against the per-group part of `dumpe2fs`: descriptor fields and checksums,
/// where the superblock and descriptor copies are, and which blocks are free (from the
/// ownership map: a block is free exactly when nothing owns it).
fn check_groups(img: &Path, fs: &Ext4<ImageFile>, owners: &reprodisk_verifier::ext4::OwnerMap) {
    let theirs = dumpe2fs_groups(img);
    let sb = &fs.sb;
    assert_eq!(theirs.len(), fs.groups.len(), "group count");
    let csum = sb.features.has_metadata_csum() || sb.features.gdt_csum();
    let locations = fs.gdt_locations();
    for (gd, t) in fs.groups.iter().zip(&theirs) {
        let g = u64::from(gd.group);
        let mut mine: BTreeMap<String, String> = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            mine.insert(k.to_string(), v);
        };
        if csum {
            put("csum", format!("{:04x}", gd.bg_checksum));
            let flags: Vec<&str> = [(1, "INODE_UNINIT"), (2, "BLOCK_UNINIT"), (4, "ITABLE_ZEROED")]
                .iter()
                .filter(|(m, _)| gd.bg_flags & m != 0)
                .map(|(_, n)| *n)
                .collect();
            put("flags", flags.join(", "));
            put("unused", gd.bg_itable_unused.to_string());
        }
        if sb.group_has_super(g) {
            put("superblock", sb.group_first_block(g).to_string());
        }
        // dumpe2fs prints the old-style table as a range ("2-2"), a meta_bg block alone.
        let held: Vec<(usize, u64)> = locations
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.iter().find(|(cg, _)| *cg == g).map(|&(_, b)| (i, b)))
            .collect();
        let old = sb.old_gdt_blocks() as usize;
        match (held.first(), held.last()) {
            (Some(&(i, a)), Some(&(_, b))) if i < old => put("gdt", format!("{a}-{b}")),
            (Some(&(_, a)), _) => put("gdt", a.to_string()),
            _ => {}
        }
        if sb.group_has_super(g) && sb.s_reserved_gdt_blocks > 0 {
            let start = sb.group_first_block(g) + 1 + sb.old_gdt_blocks();
            put("reserved_gdt", format!("{start}-{}", start + u64::from(sb.s_reserved_gdt_blocks) - 1));
        }
        put("block_bitmap", gd.bg_block_bitmap.to_string());
        put("inode_bitmap", gd.bg_inode_bitmap.to_string());
        put(
            "inode_table",
            format!("{}-{}", gd.bg_inode_table, gd.bg_inode_table + sb.inode_table_blocks() - 1),
        );
        if sb.features.has_metadata_csum() {
            let wide = sb.desc_size() >= 64;
            let c = |v: u32| {
                if wide { format!("{v:08x}") } else { format!("{:08x}", v & 0xFFFF) }
            };
            put("block_bitmap_csum", c(gd.bg_block_bitmap_csum));
            put("inode_bitmap_csum", c(gd.bg_inode_bitmap_csum));
        }
        put("free_blocks_count", gd.bg_free_blocks_count.to_string());
        put("free_inodes_count", gd.bg_free_inodes_count.to_string());
        put("dirs", gd.bg_used_dirs_count.to_string());
        let first = sb.group_first_block(g);
        // The gaps between owned ranges inside the group are its free blocks.
        let end = first + sb.blocks_in_group(g);
        let mut gaps = Vec::new();
        let mut at = first;
        for r in owners.ranges().iter().filter(|r| r.start < end && r.start + r.len > first) {
            if r.start > at {
                gaps.push(if r.start - 1 == at { at.to_string() } else { format!("{at}-{}", r.start - 1) });
            }
            at = at.max(r.start + r.len);
        }
        if at < end {
            gaps.push(if end - 1 == at { at.to_string() } else { format!("{at}-{}", end - 1) });
        }
        put("free_blocks", gaps.join(", "));
        assert_eq!(&mine, t, "{}: group {g}", img.display());
    }
}

/// Every walked inode against `debugfs stat`.
fn check_debugfs(img: &Path, fs: &Ext4<ImageFile>, entries: &[Entry]) {
    let inos: Vec<u32> = entries.iter().map(|e| e.ino).collect::<BTreeSet<_>>().into_iter().collect();
    let stats = debugfs_stats(img, &inos);
    for (i, e) in entries.iter().enumerate() {
        let st = &stats[&e.ino];
        let inode = fs.inode(e.ino).unwrap();
        let where_ = format!("{} inode {} {}", img.display(), e.ino, walk::shown_path(entries, i));
        let f = |k: &str| {
            st.fields.get(k).unwrap_or_else(|| panic!("{where_}: debugfs printed no `{k}`: {st:?}")).clone()
        };
        let ty = match e.file_type {
            FileType::Regular => "regular",
            FileType::Directory => "directory",
            FileType::Symlink => "symlink",
            FileType::CharDevice => "character special",
            FileType::BlockDevice => "block special",
            FileType::Fifo => "FIFO",
            FileType::Socket => "socket",
        };
        assert_eq!(f("Type"), ty, "{where_}");
        assert_eq!(f("Mode"), format!("{:04o}", e.mode), "{where_}");
        assert_eq!(f("Flags"), format!("{:#x}", inode.i_flags), "{where_}");
        assert_eq!(
            f("Generation").split_whitespace().next().unwrap(),
            inode.i_generation.to_string(),
            "{where_}"
        );
        assert_eq!(f("User"), e.uid.to_string(), "{where_}");
        assert_eq!(f("Group"), e.gid.to_string(), "{where_}");
        if let Some(p) = st.fields.get("Project") {
            assert_eq!(p, &inode.i_projid.to_string(), "{where_}");
        }
        assert_eq!(f("Size"), e.size.to_string(), "{where_}");
        assert_eq!(f("File ACL"), inode.i_file_acl.to_string(), "{where_}");
        assert_eq!(f("Links"), e.links.to_string(), "{where_}");
        assert_eq!(f("Blockcount"), inode.sectors(&fs.sb).to_string(), "{where_}");
        if fs.sb.features.has_metadata_csum() {
            assert_eq!(f("Inode checksum"), format!("{:#010x}", inode.i_checksum), "{where_}");
        }
        for (name, t) in [
            ("atime", Some(e.atime)),
            ("mtime", Some(e.mtime)),
            ("ctime", Some(e.ctime)),
            ("crtime", e.crtime),
        ] {
            let got = st.times.get(name).copied();
            match (t, got) {
                (Some(t), Some((secs, extra))) => {
                    assert_eq!((t.sec as u64 & 0xFFFF_FFFF) as u32, secs, "{where_} {name} seconds");
                    let extra = extra.unwrap_or(0);
                    assert_eq!(
                        t.sec,
                        i64::from(secs as i32) + (i64::from(extra & 3) << 32),
                        "{where_} {name} epoch"
                    );
                    assert_eq!(t.nsec, extra >> 2, "{where_} {name} nsec");
                }
                (None, None) => {}
                (a, b) => panic!("{where_}: {name} reader {a:?}, debugfs {b:?}"),
            }
        }
        if let Some((maj, min)) = e.device {
            let k = if st.fields.contains_key("Device major/minor number") {
                "Device major/minor number"
            } else {
                "(New-style) Device major/minor number"
            };
            let v = f(k);
            let (a, b) = v.split_whitespace().next().unwrap().split_once(':').unwrap();
            assert_eq!((a.parse::<u32>().unwrap(), b.parse::<u32>().unwrap()), (maj, min), "{where_}");
        }
        if inode.is_fast_symlink() {
            assert_eq!(
                f("Fast link dest").trim_matches('"').as_bytes(),
                e.link_target.as_deref().unwrap(),
                "{where_}"
            );
        }
        let mine = merge_runs(e.extents.iter().map(|x| (x.logical, x.physical, x.len)).collect());
        assert_eq!(mine, merge_runs(st.data.clone()), "{where_}: data extents");
        let mut meta = e.map_blocks.clone();
        meta.sort_unstable();
        let mut theirs = st.meta.clone();
        theirs.sort_unstable();
        assert_eq!(meta, theirs, "{where_}: extent/indirect blocks");
        let mut xa: Vec<String> = e
            .xattrs
            .iter()
            .map(|x| {
                format!(
                    "{} ({}) = \"{}\"",
                    String::from_utf8_lossy(&x.name),
                    x.value.len(),
                    String::from_utf8_lossy(&x.value)
                )
            })
            .collect();
        let mut xb: Vec<String> =
            st.xattrs.iter().filter(|x| !x.starts_with("system.data")).cloned().collect();
        xa.sort();
        xb.sort();
        // debugfs abbreviates long values; compare names and sizes, and short values in full.
        let key = |s: &String| s.split(" = ").next().unwrap().to_string();
        assert_eq!(
            xa.iter().map(key).collect::<Vec<_>>(),
            xb.iter().map(key).collect::<Vec<_>>(),
            "{where_}: xattrs"
        );
    }
}

/// Every file's contents against `debugfs rdump`.
fn check_rdump(img: &Path, fs: &Ext4<ImageFile>, entries: &[Entry]) {
    let out = tempfile::tempdir().unwrap();
    run_ok("debugfs", &["-R", &format!("rdump / {}", out.path().display()), img.to_str().unwrap()]);
    let mut files = 0;
    for (i, e) in entries.iter().enumerate() {
        let path = walk::path(entries, i);
        let host = out.path().join(std::ffi::OsStr::from_bytes(&path[1..]));
        match e.file_type {
            FileType::Regular => {
                let theirs = std::fs::read(&host)
                    .unwrap_or_else(|err| panic!("rdump did not write {}: {err}", host.display()));
                assert_eq!(fs.read_file(e.ino, 1 << 30).unwrap(), theirs, "{}: contents", host.display());
                let mut streamed = Vec::new();
                assert_eq!(fs.copy_file(e.ino, &mut streamed).unwrap(), theirs.len() as u64);
                assert_eq!(streamed, theirs, "{}: streamed contents", host.display());
                files += 1;
            }
            FileType::Symlink => {
                let theirs = std::fs::read_link(&host).unwrap();
                assert_eq!(
                    e.link_target.as_deref().unwrap(),
                    theirs.as_os_str().as_bytes(),
                    "{}",
                    host.display()
                );
            }
            _ => {}
        }
    }
    assert!(files > 0, "no regular file compared");
}

/// Opens, walks and checks an image against every tool; returns the walk.
fn check_image(img: &Path) -> Vec<Entry> {
    let (fsck, code) = run("e2fsck", &["-fn", img.to_str().unwrap()]);
    assert_eq!(code, 0, "the reference image is not clean:\n{fsck}");
    let fs = Ext4::open(ImageFile::open(img).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", img.display()));
    check_dumpe2fs(img, &fs);
    let checked = fs.check().unwrap_or_else(|e| panic!("{}: {e}", img.display()));
    assert_eq!(checked.totals.free_blocks, fs.sb.s_free_blocks_count);
    let backups = (1..fs.sb.group_count()).filter(|&g| fs.sb.group_has_super(g)).count();
    assert_eq!(checked.backups as usize, backups, "{}: superblock backups checked", img.display());
    check_groups(img, &fs, &checked.owners);
    let entries = checked.entries;
    check_debugfs(img, &fs, &entries);
    check_rdump(img, &fs, &entries);
    // The summary is plain data: it must serialize.
    serde_json::to_string(&fs.summary(Some(&entries))).unwrap();
    entries
}

fn populated(args: &[&str], mib: u64) -> (tempfile::TempDir, Vec<Entry>, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    populate(&src);
    let img = mkfs(tmp.path(), "fs.img", mib, args, Some(&src));
    let entries = check_image(&img);
    let paths: BTreeSet<Vec<u8>> = (0..entries.len()).map(|i| walk::path(&entries, i)).collect();
    assert_eq!(paths, source_paths(&src), "the walk lists other paths than the source tree");
    (tmp, entries, img)
}

fn by_path<'a>(entries: &'a [Entry], p: &str) -> &'a Entry {
    walk::find(entries, p.as_bytes()).map(|i| &entries[i]).unwrap_or_else(|| panic!("{p} not in the walk"))
}

#[test]
fn ext4_default_matches_e2fsprogs() {
    let (_tmp, entries, img) = populated(&["-t", "ext4", "-L", "root-fs"], 16);
    // mke2fs -d drops nanoseconds and epoch bits; set them with debugfs: 2200-01-01 is
    // 0xB09E1900 as a signed 32-bit word plus 2 << 32 (epoch bits 2), nsec 987654321.
    let extra = (987_654_321u32 << 2) | 2;
    run_ok("debugfs", &["-w", "-R", &format!("sif /future mtime_extra {extra:#x}"), img.to_str().unwrap()]);
    // Index the big directory the way e2fsck does, then read everything again.
    let (out, code) = run("e2fsck", &["-fyD", img.to_str().unwrap()]);
    assert!(code <= 1, "e2fsck -fyD failed:\n{out}");
    let entries2 = check_image(&img);
    assert!(!by_path(&entries2, "/bigdir").index_blocks.is_empty(), "/bigdir has no htree after e2fsck -D");
    let frag = by_path(&entries, "/fragmented");
    assert!(frag.extents.len() >= 30, "/fragmented has {} extents", frag.extents.len());
    assert!(!frag.map_blocks.is_empty(), "30 extents need an extent index block");
    assert_eq!(by_path(&entries, "/hard1").ino, by_path(&entries, "/dir/hard2").ino);
    assert_eq!(by_path(&entries, "/blk").device, Some((259, 300000)));
    assert_eq!(by_path(&entries, "/chr").device, Some((4, 65)));
    assert_eq!(by_path(&entries, "/hello.txt").mtime.sec, 1_234_567_890);
    let future = by_path(&entries2, "/future").mtime;
    assert_eq!((future.sec, future.nsec), (7_258_118_400, 987_654_321));
    assert_eq!(by_path(&entries, "/past").mtime.sec, -315_619_200);
    let fs = Ext4::open(ImageFile::open(&img).unwrap()).unwrap();
    let x = &by_path(&entries2, "/xbig");
    assert!(x.xattr_block.is_some(), "a 700-byte xattr lives in an xattr block");
    assert_eq!(fs.sb.s_volume_name, b"root-fs");
}

#[test]
fn ext4_4k_blocks_and_128_byte_inodes() {
    populated(&["-t", "ext4", "-b", "4096"], 24);
    populated(&["-t", "ext4", "-I", "128"], 16);
}

#[test]
fn ext4_without_metadata_csum_and_64bit_variants() {
    populated(&["-t", "ext4", "-O", "^metadata_csum"], 16);
    populated(&["-t", "ext4", "-O", "^metadata_csum,uninit_bg"], 16);
    populated(&["-t", "ext4", "-O", "^64bit"], 16);
    populated(&["-t", "ext4", "-O", "64bit"], 16);
}

#[test]
fn quota_and_orphan_file_inodes_are_owned() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    populate(&src);
    let img = mkfs(tmp.path(), "q.img", 16, &["-t", "ext4", "-O", "quota,project,orphan_file"], Some(&src));
    // mke2fs -d leaves the quota files stale; e2fsck brings them up to date.
    let (out, code) = run("e2fsck", &["-fy", img.to_str().unwrap()]);
    assert!(code <= 1, "e2fsck -fy failed:\n{out}");
    check_image(&img);
    let fs = Ext4::open(ImageFile::open(&img).unwrap()).unwrap();
    let specials = fs.special_inodes();
    for ino in
        [fs.sb.s_usr_quota_inum, fs.sb.s_grp_quota_inum, fs.sb.s_prj_quota_inum, fs.sb.s_orphan_file_inum]
    {
        assert!(ino != 0 && specials.contains(&ino), "inode {ino} missing from {specials:?}");
    }
}

#[test]
fn more_feature_variants_match_e2fsprogs() {
    populated(&["-t", "ext4", "-O", "^has_journal"], 16);
    populated(&["-t", "ext4", "-O", "^resize_inode"], 16);
    populated(&["-t", "ext4", "-O", "sparse_super2", "-b", "1024", "-O", "^flex_bg"], 40);
    populated(&["-t", "ext4", "-b", "65536"], 64);
    // meta_bg: 20 groups of 8 MiB, 16 descriptors per block, so two meta groups.
    let (_t, _, img) = populated(&["-t", "ext4", "-b", "1024", "-O", "meta_bg,^resize_inode"], 160);
    let fs = Ext4::open(ImageFile::open(&img).unwrap()).unwrap();
    assert!(fs.sb.features.meta_bg() && fs.sb.gdt_blocks() == 2, "{:?}", fs.sb.features.names());
    populated(&["-t", "ext4", "-O", "^dir_index,^filetype"], 16);
}

#[test]
fn ext2_and_ext3_match_e2fsprogs() {
    let (_t, entries, _) = populated(&["-t", "ext2"], 16);
    assert!(!by_path(&entries, "/fragmented").map_blocks.is_empty(), "an indirect block for 30+ blocks");
    let (_t, _, img) = populated(&["-t", "ext3"], 16);
    // An htree over an indirect-mapped directory.
    let (out, code) = run("e2fsck", &["-fyD", img.to_str().unwrap()]);
    assert!(code <= 1, "e2fsck -fyD failed:\n{out}");
    let entries = check_image(&img);
    assert!(!by_path(&entries, "/bigdir").index_blocks.is_empty(), "/bigdir has no htree after e2fsck -D");
    populated(&["-t", "ext2", "-b", "4096", "-I", "128"], 24);
}

#[test]
fn superblock_names_match_dumpe2fs() {
    // Unusual flags, mount options, error behaviour and creator OS, set by mke2fs and tune2fs.
    let tmp = tempfile::tempdir().unwrap();
    let img = mkfs(
        tmp.path(),
        "o.img",
        8,
        &["-t", "ext4", "-E", "test_fs", "-o", "hurd", "-O", "^metadata_csum"],
        None,
    );
    run_ok("tune2fs", &["-o", "journal_data,nobarrier,debug", "-e", "remount-ro", img.to_str().unwrap()]);
    let fs = Ext4::open(ImageFile::open(&img).unwrap()).unwrap();
    assert_eq!(fs.sb.creator_os_name(), "Hurd");
    check_dumpe2fs(&img, &fs);
    fs.check().unwrap();
}

#[test]
fn multi_group_image() {
    // 1 KiB blocks: 8 MiB per group, so 40 MiB has five groups with sparse_super backups.
    populated(&["-t", "ext4", "-b", "1024", "-O", "^flex_bg"], 40);
}

/// util-linux's own test images against their blkid `.expected` fields.
#[test]
fn util_linux_corpus_matches_expected() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/util-linux/fs");
    let corpus =
        if corpus.exists() { corpus } else { Path::new("/work/shared/corpus/util-linux/fs").to_path_buf() };
    for name in ["ext2", "ext3", "ext4"] {
        let tmp = tempfile::tempdir().unwrap();
        let xz = corpus.join(format!("{name}.img.xz"));
        let img = tmp.path().join(format!("{name}.img"));
        let data = std::process::Command::new("xz")
            .args(["-dc", xz.to_str().unwrap()])
            .output()
            .expect("xz (package xz-utils) must be installed");
        assert!(data.status.success(), "xz failed on {}", xz.display());
        std::fs::write(&img, &data.stdout).unwrap();
        let expected: BTreeMap<String, String> =
            std::fs::read_to_string(corpus.join(format!("{name}.expected")))
                .unwrap()
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let file = ImageFile::open(&img).unwrap();
        let sb = &Superblock::read(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let version = format!("{}.{}", sb.s_rev_level, sb.s_minor_rev_level);
        // blkid calls a filesystem ext4 with extents/64bit/flex_bg..., ext3 with a journal.
        let ty = if sb.features.extent() || sb.features.is_64bit() || sb.features.flex_bg() {
            "ext4"
        } else if sb.features.has_journal() {
            "ext3"
        } else {
            "ext2"
        };
        let mine: BTreeMap<&str, String> = BTreeMap::from([
            ("ID_FS_UUID", uuid_string(&sb.s_uuid)),
            ("ID_FS_UUID_ENC", uuid_string(&sb.s_uuid)),
            ("ID_FS_LABEL", String::from_utf8_lossy(&sb.s_volume_name).into_owned()),
            ("ID_FS_LABEL_ENC", String::from_utf8_lossy(&sb.s_volume_name).into_owned()),
            ("ID_FS_VERSION", version),
            ("ID_FS_TYPE", ty.to_string()),
            ("ID_FS_BLOCK_SIZE", sb.block_size().to_string()),
            ("ID_FS_FSBLOCKSIZE", sb.block_size().to_string()),
            ("ID_FS_FSSIZE", (sb.s_blocks_count * sb.block_size()).to_string()),
            ("ID_FS_FSLASTBLOCK", sb.s_blocks_count.to_string()),
        ]);
        let mut compared = 0;
        for (k, v) in &expected {
            if let Some(m) = mine.get(k.as_str()) {
                assert_eq!(m, v, "{name}: {k}");
                compared += 1;
            }
        }
        assert!(compared >= 6, "{name}: only {compared} fields compared");
        // util-linux keeps only the first 8 MiB of its ext4 image: the reader must say so.
        // Complete images are read in full and checked against dumpe2fs.
        if sb.s_blocks_count * sb.block_size() > file.len() {
            let err = Ext4::open(&file).err().expect("a truncated image must not open");
            assert!(matches!(err, reprodisk_verifier::Error::Truncated { .. }), "{name}: {err}");
            continue;
        }
        let fs = Ext4::open(file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let entries = fs.walk().unwrap_or_else(|e| panic!("{name}: walk: {e}"));
        let owners = fs.owner_map(&entries).unwrap_or_else(|e| panic!("{name}: owners: {e}"));
        fs.check_bitmaps(&owners, &entries).unwrap_or_else(|e| panic!("{name}: bitmaps: {e}"));
        check_dumpe2fs(&img, &fs);
    }
}

/// Reading only metadata of a sparse 64 GiB filesystem must take seconds. The time is
/// printed (run with `--nocapture`), not asserted: CI machines vary.
#[test]
fn sparse_64_gib_image_reads_metadata_only() {
    let tmp = tempfile::tempdir().unwrap();
    let img = mkfs(tmp.path(), "big.img", 64 << 10, &["-t", "ext4"], None);
    let start = std::time::Instant::now();
    let fs = Ext4::open(ImageFile::open(&img).unwrap()).unwrap();
    let checked = fs.check().unwrap();
    let totals = checked.totals;
    let elapsed = start.elapsed();
    println!(
        "64 GiB sparse ext4: open + walk + ownership + bitmaps + {} backups in {elapsed:?} ({} groups)",
        checked.backups,
        fs.groups.len()
    );
    assert_eq!(totals.free_blocks, fs.sb.s_free_blocks_count);
    assert_eq!(fs.groups.len(), 512);
    check_dumpe2fs(&img, &fs);
    check_groups(&img, &fs, &checked.owners);
}

/// The directory hashes against `debugfs dx_hash` for every algorithm, both seeds
/// (zero means the default constants), short, long and high-bit names.
#[test]
fn dx_hash_matches_debugfs() {
    use reprodisk_verifier::ext4::hash::dx_hash;
    let tmp = tempfile::tempdir().unwrap();
    let img = mkfs(tmp.path(), "h.img", 2, &["-t", "ext4"], None);
    let seeds = ["00000000-0000-0000-0000-000000000000", "6a853076-6365-49a1-b364-ac5ca6071545"];
    let names = [
        "a",
        "hello",
        "exactly-sixteen!",
        "a-name-that-is-exactly-32-bytes!",
        "h\u{e9}llo-\u{fc}ber-a-long-name-with-more-than-32-bytes-in-it",
        "lost+found",
    ];
    let algs = ["legacy", "half_md4", "tea", "legacy_unsigned", "half_md4_unsigned", "tea_unsigned"];
    for seed in seeds {
        let hex: String = seed.chars().filter(|c| *c != '-').collect();
        let seed_bytes: [u8; 16] =
            std::array::from_fn(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap());
        for (v, alg) in algs.iter().enumerate() {
            for name in names {
                // debugfs knows the unsigned variants only by number.
                let out = run_ok(
                    "debugfs",
                    &["-R", &format!("dx_hash -h {v} -s {seed} {name}"), img.to_str().unwrap()],
                );
                let line = out
                    .lines()
                    .find(|l| l.starts_with("Hash of"))
                    .unwrap_or_else(|| panic!("no hash in {out}"));
                let hex = line.split(" is 0x").nth(1).unwrap().split_whitespace().next().unwrap();
                let theirs = u32::from_str_radix(hex, 16).unwrap();
                assert_eq!(
                    dx_hash(name.as_bytes(), v as u8, &seed_bytes),
                    Some(theirs),
                    "{alg} {name:?} seed {seed}"
                );
            }
        }
    }
}

/// Features the reader does not implement are reported as unsupported, never misread.
#[test]
fn unsupported_features_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("small"), b"inline").unwrap();
    let img = mkfs(tmp.path(), "inline.img", 4, &["-t", "ext4", "-O", "inline_data"], Some(&src));
    let fs = Ext4::open(ImageFile::open(&img).unwrap()).unwrap();
    match fs.check() {
        Err(reprodisk_verifier::Error::Unsupported { what, .. }) => {
            assert!(what.contains("inline data"), "{what}")
        }
        other => panic!("inline_data: expected Unsupported, got {:?}", other.err()),
    }
    let img = mkfs(tmp.path(), "bigalloc.img", 32, &["-t", "ext4", "-O", "bigalloc", "-C", "16384"], None);
    match Ext4::open(ImageFile::open(&img).unwrap()) {
        Err(reprodisk_verifier::Error::Unsupported { what, .. }) => {
            assert!(what.contains("bigalloc"), "{what}")
        }
        other => panic!("bigalloc: expected Unsupported, got {:?}", other.err()),
    }
}

/// The summary of an image made with fixed IDs and a fixed clock reports exactly them.
#[test]
fn summary_reports_fixed_ids_and_times() {
    let tmp = tempfile::tempdir().unwrap();
    let img = mkfs_fixed(tmp.path(), "fixed.img", &["-L", "fixed"], None);
    let fs = Ext4::open(ImageFile::open(&img).unwrap()).unwrap();
    let checked = fs.check().unwrap();
    let s = fs.summary(Some(&checked.entries));
    assert_eq!(s.uuid, FIXED_UUID);
    assert_eq!(s.hash_seed, FIXED_HASH_SEED);
    assert_eq!(s.volume_name, "fixed");
    assert_eq!(s.superblock_times.s_mkfs_time, 315_532_800);
    assert_eq!(s.superblock_times.s_wtime, 315_532_800);
    assert_eq!(s.superblock_times.s_lastcheck, 315_532_800);
    assert_eq!(s.superblock_times.s_mtime, 0);
    assert_eq!(s.mount_count, 0);
    let ft = s.file_times.as_ref().unwrap();
    assert_eq!(
        (ft.mtime.distinct, ft.mtime.min.unwrap().sec),
        (1, 315_532_800),
        "mke2fs stamps / and lost+found with its clock"
    );
    let j = s.journal.as_ref().unwrap();
    assert!(j.clean);
    assert_eq!(j.inode, 8);
    assert_eq!(j.uuid, s.uuid, "mke2fs copies the filesystem UUID into an internal journal");
    assert_eq!((s.last_mounted.as_str(), s.error_count), ("", 0));
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["features"][0], "has_journal");
    check_dumpe2fs(&img, &fs);
    // A v3-checksummed journal (debugfs opens it with checksums): its checksum type and
    // value match dumpe2fs too.
    let cmds = tmp.path().join("jcmds");
    std::fs::write(&cmds, "jo -c\njc\n").unwrap();
    run_ok("debugfs", &["-w", "-f", cmds.to_str().unwrap(), img.to_str().unwrap()]);
    let fs = Ext4::open(ImageFile::open(&img).unwrap()).unwrap();
    assert!(fs.journal.as_ref().unwrap().has_csum_v2v3());
    check_dumpe2fs(&img, &fs);
}
