//! Valid images made by the reference tools must verify without an error finding and without
//! a panic, whatever their shape: full inode tables, deep directory chains.

mod ext4_util;

use reprodisk_verifier::bytes::ImageFile;
use reprodisk_verifier::glue;
use reprodisk_verifier::report::{Severity, VerifyReport};
use std::path::Path;

fn verify(img: &Path) -> VerifyReport {
    let f = ImageFile::open(img).expect("the image opens");
    glue::verify(&f, None, None, None)
}

fn errors(r: &VerifyReport) -> Vec<String> {
    r.findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| format!("{}: {} ({:?})", f.code, f.message, f.location))
        .collect()
}

/// e2fsck must call the image clean, so that the verifier's verdict is compared with the
/// oracle's and not with a guess.
fn e2fsck_clean(img: &Path) {
    let (out, code) = ext4_util::run("e2fsck", &["-fn", img.to_str().expect("UTF-8 tempdir")]);
    assert_eq!(code, 0, "e2fsck rejects the fixture:\n{out}");
}

/// The reproduction: 2037 empty files in a filesystem of 2048 inodes leave group 0's
/// inode table fully used (`bg_itable_unused == 0`), which once panicked in the bitmap check.
#[test]
fn full_inode_table_is_clean() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("t");
    std::fs::create_dir(&src).expect("source dir");
    for i in 1..=2037 {
        std::fs::write(src.join(i.to_string()), b"").expect("empty file");
    }
    let img = ext4_util::mkfs(dir.path(), "m.img", 16, &["-b4096", "-N2048"], Some(&src));
    e2fsck_clean(&img);
    let groups = ext4_util::dumpe2fs_groups(&img);
    assert!(
        // dumpe2fs leaves out "N unused inodes" when N is 0.
        groups.iter().any(|g| g.get("free_inodes_count").map(String::as_str) == Some("0")
            && g.get("unused").is_none_or(|u| u == "0")),
        "the fixture must have a full inode table: {groups:?}"
    );
    let r = verify(&img);
    assert_eq!(errors(&r), Vec::<String>::new());
    assert_eq!(r.filesystems[0].file_count, 2039, "/, lost+found and 2037 files");
}
