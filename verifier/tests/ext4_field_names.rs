//! The verifier's byte-to-field map on mke2fs images: two images made with fixed IDs and a
//! fixed clock, identical but for one tune2fs or debugfs edit, differ only in bytes named
//! by the edited field and the checksums that cover it.

mod ext4_util;

use ext4_util::*;
use reprodisk_verifier::ext4::Ext4;
use std::collections::BTreeSet;
use std::path::Path;

/// Two mke2fs images, identical but for one tune2fs or debugfs edit: every differing byte
/// is named by structure and field, and the names are exactly the edited field and the
/// checksums that cover it.
#[test]
fn differing_bytes_are_named_by_field() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("file"), b"data\n").unwrap();
    // mke2fs -d copies the source's times (whole seconds), and its own reads move the atimes
    // (relatime: while the atime is not after the mtime and the ctime). So the second image
    // could differ from the first in an atime whenever a second began between writing the
    // file and the first mke2fs reading it (one CI run failed so). An mtime in the past and
    // an atime a day ahead are never moved by a read.
    let now = std::time::SystemTime::now();
    let times = std::fs::FileTimes::new()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000))
        .set_accessed(now + std::time::Duration::from_secs(86_400));
    for p in [src.join("file"), src.clone()] {
        std::fs::File::open(&p).unwrap().set_times(times).unwrap();
    }
    let make = |name: &str| mkfs_fixed(tmp.path(), name, &[], Some(&src));
    let a = make("a.img");
    let names = |b: &Path| -> BTreeSet<(String, Option<&'static str>)> {
        let x = std::fs::read(&a).unwrap();
        let y = std::fs::read(b).unwrap();
        let fs = Ext4::open(&y[..]).unwrap();
        let checked = fs.check().unwrap();
        let paths = reprodisk_verifier::ext4::paths_by_inode(&checked.entries);
        x.iter()
            .zip(&y)
            .enumerate()
            .filter(|(_, (p, q))| p != q)
            .map(|(i, _)| {
                let info = fs.describe_byte(&checked.owners, &paths, i as u64);
                (info.structure, info.field)
            })
            .collect()
    };
    let b = make("b.img");
    let n = names(&b);
    assert!(n.is_empty(), "mke2fs with fixed IDs, clock and source times is reproducible: {n:?}");
    run_ok("debugfs", &["-w", "-R", "sif /file mtime 0x12345678", b.to_str().unwrap()]);
    let n = names(&b);
    let fields: BTreeSet<&str> = n.iter().filter_map(|(_, f)| *f).collect();
    assert!(n.iter().all(|(s, _)| s == "inode 12 /file"), "{n:?}");
    assert_eq!(fields, BTreeSet::from(["i_mtime", "l_i_checksum_lo", "i_checksum_hi"]), "{n:?}");
    let c = make("c.img");
    run_ok("tune2fs", &["-c", "20", c.to_str().unwrap()]);
    let n = names(&c);
    assert!(n.contains(&("superblock".to_string(), Some("s_max_mnt_count"))), "{n:?}");
    for (s, f) in &n {
        assert!(s.starts_with("superblock"), "{s} {f:?}");
        // tune2fs also stamps the write time with the real clock.
        assert!(matches!(f, Some("s_max_mnt_count" | "s_checksum" | "s_wtime")), "{s} {f:?}");
    }
}
