//! What `verify` and `diff` print for people: the words a user knows for partition and
//! filesystem types (never a Rust debug name), plurals that agree with their count, an I/O
//! cause said once when the error chain is printed, and names from an image with their
//! control bytes escaped.

#[path = "disk_support.rs"]
mod support;

use reprodisk_verifier::expect::Expectations;
use reprodisk_verifier::glue;
use support::*;

/// A hybrid-shaped GPT disk made by sgdisk: an ESP with mkfs.vfat's FAT16, a BIOS boot
/// partition and a Linux filesystem partition with mkfs.ext4 in it.
fn hybrid_disk(dir: &std::path::Path) -> Vec<u8> {
    let img = sparse(dir, "g.img", 64 << 20);
    run(sgdisk()
        .args(["-n", "1:2048:+16M", "-t", "1:ef00", "-n", "2:34:2047", "-t", "2:ef02"])
        .args(["-n", "3:0:0", "-t", "3:8300"])
        .arg(&img));
    run(tool("mkfs.vfat", "dosfstools").arg("--offset=2048").arg(&img).arg("16384"));
    let root = sparse(dir, "root.img", 40 << 20);
    run(tool("mkfs.ext4", "e2fsprogs").args(["-qF", "-b", "1024"]).arg(&root));
    let mut bytes = read_bytes(&img);
    let fs = read_bytes(&root);
    let at = 34816 * 512;
    bytes[at..at + fs.len()].copy_from_slice(&fs);
    bytes
}

/// No Rust enum name a user never typed: whole words only (`vfat` is fine, `Vfat` is not).
fn assert_no_debug_names(text: &str) {
    for word in text.split(|c: char| !c.is_ascii_alphanumeric()) {
        assert!(
            !["Vfat", "Esp", "BiosBoot", "Ext4", "Fat16", "Fat32", "Mbr", "Gpt", "LinuxData", "Xbootldr"]
                .contains(&word),
            "`{word}` in:\n{text}"
        );
    }
}

#[test]
fn partition_and_filesystem_types_are_named_as_users_know_them() {
    let dir = tempdir();
    let img = hybrid_disk(dir.path());
    let plain = glue::verify(&img, None, None, None).render_text();
    let e = Expectations::from_toml_str("partitionTableType = \"efi\"").expect("valid spec");
    let spec = glue::verify(&img, None, Some(&e), None).render_text();
    for text in [&plain, &spec] {
        assert_no_debug_names(text);
    }
    for words in ["EFI system partition", "BIOS boot partition", "Linux filesystem", "vfat (FAT16)", " ext4 "]
    {
        assert!(plain.contains(words), "`{words}` missing from:\n{plain}");
    }
    // The efi layout has two partitions; this disk has three.
    assert!(spec.contains("layout efi has 2 partitions, the image has 3"), "{spec}");
    let legacy = Expectations::from_toml_str("partitionTableType = \"legacy\"").expect("valid spec");
    let text = glue::verify(&img, None, Some(&legacy), None).render_text();
    assert!(
        text.contains("layout legacy needs an MBR partition table, the image has a GPT partition table"),
        "{text}"
    );
    let mut other = img.clone();
    other[2048 * 512 + 0x27] ^= 0xFF; // the FAT volume ID
    let diff = glue::diff_images(&img, &other).expect("diff").render_text();
    assert_no_debug_names(&diff);
    assert!(diff.contains("BS_VolID"), "{diff}");
}

#[test]
fn counts_agree_with_their_nouns() {
    use reprodisk_verifier::report::count;
    assert_eq!(count(1, "file has", "files have"), "1 file has");
    assert_eq!(count(2, "file has", "files have"), "2 files have");
    assert_eq!(count(0, "file has", "files have"), "0 files have");
    // A one-link file whose inode claims five links: "holds 1 link", not "1 links".
    let dir = tempdir();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).expect("tree");
    std::fs::write(src.join("f"), "x").expect("file");
    let img = sparse(dir.path(), "e.img", 4 << 20);
    run(tool("mkfs.ext4", "e2fsprogs").args(["-qF", "-O", "^metadata_csum", "-d"]).arg(&src).arg(&img));
    run(tool("debugfs", "e2fsprogs").args(["-w", "-R", "sif /f links_count 5"]).arg(&img));
    let text = glue::verify(&read_bytes(&img), None, None, None).render_text();
    assert!(text.contains("i_links_count is 5, the tree holds 1 link to it"), "{text}");
    // One byte of noise: "1 byte holds".
    let text = glue::verify(&&[7u8][..], None, None, None).render_text();
    assert!(text.contains("1 byte holds no partition table"), "{text}");
}

/// The chain `{e:#}` of anyhow prints: each error's message, then its source's, joined.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out += &format!(": {s}");
        cur = s.source();
    }
    out
}

#[test]
fn an_io_cause_is_said_once_in_the_error_chain() {
    let e = reprodisk_verifier::Error::from(std::io::Error::from_raw_os_error(28));
    let text = chain(&e);
    assert_eq!(text.matches("(os error 28)").count(), 1, "{text}");
    assert!(text.starts_with("reading the image: "), "{text}");
    let e =
        Expectations::from_path(std::path::Path::new("/nonexistent/spec.toml")).expect_err("no such spec");
    let text = chain(&e);
    assert_eq!(text.matches("(os error 2)").count(), 1, "{text}");
    assert!(text.contains("/nonexistent/spec.toml"), "{text}");
}

/// No raw control byte but the line breaks.
fn assert_no_control_bytes(text: &str) {
    let bad: Vec<char> = text.chars().filter(|c| c.is_control() && *c != '\n').collect();
    assert!(bad.is_empty(), "raw control characters {bad:?} in:\n{text}");
}

#[test]
fn control_bytes_in_names_are_escaped() {
    let dir = tempdir();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).expect("tree");
    std::fs::write(src.join("a\nb"), "x").expect("file");
    std::fs::write(src.join("c\u{1}d"), "y".repeat(5000)).expect("file");
    let img = sparse(dir.path(), "e.img", 4 << 20);
    run(tool("mkfs.ext4", "e2fsprogs")
        .args(["-qF", "-b", "1024", "-O", "^metadata_csum", "-d"])
        .arg(&src)
        .arg(&img));
    let clean = read_bytes(&img);
    run(tool("debugfs", "e2fsprogs").args(["-w", "-R", "sif /c\u{1}d links_count 3"]).arg(&img));
    let text = glue::verify(&read_bytes(&img), None, None, None).render_text();
    assert_no_control_bytes(&text);
    assert!(text.contains("/c\\x01d"), "{text}");
    // A changed byte of the file's data is named by its escaped path.
    let out =
        tool("debugfs", "e2fsprogs").args(["-R", "blocks /c\u{1}d"]).arg(&img).output().expect("debugfs");
    let block: usize = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|b| b.parse().ok())
        .expect("a block");
    let mut other = clean.clone();
    other[block * 1024] ^= 1;
    let diff = glue::diff_images(&clean, &other).expect("diff").render_text();
    assert_no_control_bytes(&diff);
    assert!(diff.contains("file /c\\x01d data"), "{diff}");
}
