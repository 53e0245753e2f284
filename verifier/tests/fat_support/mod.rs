//! Helpers shared by the FAT reader's integration tests: running the reference tools
//! (dosfstools, mtools, util-linux) and failing with the package name when one is missing.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The Debian package that ships `program`, for the message when it is missing.
fn package_of(program: &str) -> &'static str {
    match program {
        "mkfs.fat" | "mkfs.vfat" | "fsck.fat" => "dosfstools",
        "minfo" | "mdir" | "mcopy" | "mmd" | "mdel" | "mtype" | "mlabel" => "mtools",
        "blkid" => "util-linux (blkid)",
        "xz" => "xz-utils",
        "iconv" => "libc-bin (iconv)",
        _ => "the package providing it",
    }
}

/// Runs `program args` and returns its output, panicking with the missing package's name when
/// the program is not installed. mtools is told to skip its geometry check so it reads any
/// image mkfs.fat makes.
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{program}` ({e}): install {}", package_of(program)))
}

/// Runs a tool that must succeed and returns its stdout as text.
pub fn run_ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "`{program} {}` failed with {}: {}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A sparse file of `bytes` bytes in `dir`.
pub fn sparse_image(dir: &Path, name: &str, bytes: u64) -> PathBuf {
    let p = dir.join(name);
    let f = std::fs::File::create(&p).expect("tempdir is writable");
    f.set_len(bytes).expect("tempdir is writable");
    p
}

/// Decompresses `name.img.xz` from the util-linux corpus into `dir` with the `xz` binary.
pub fn corpus_image(dir: &Path, name: &str) -> PathBuf {
    let src = Path::new("/work/shared/corpus/util-linux/fs").join(format!("{name}.img.xz"));
    let out = run("xz", &["-dc", src.to_str().expect("the corpus path is UTF-8")]);
    assert!(out.status.success(), "xz -dc {} failed: {}", src.display(), String::from_utf8_lossy(&out.stderr));
    let p = dir.join(format!("{name}.img"));
    std::fs::write(&p, out.stdout).expect("tempdir is writable");
    p
}

/// `KEY=value` lines (blkid -o udev, .expected files) as a map.
pub fn udev_map(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect()
}

/// blkid's `_ENC` encoding of a label: bytes outside `[A-Za-z0-9#+-.:=@_]` and not part of a
/// valid UTF-8 multibyte sequence become `\xHH`.
pub fn blkid_enc(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_alphanumeric() || b"#+-.:=@_".contains(&c) {
            out.push(c as char);
            i += 1;
            continue;
        }
        if c >= 0x80 {
            let len = match c {
                0xC2..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF4 => 4,
                _ => 0,
            };
            if len > 0
                && let Some(seq) = bytes.get(i..i + len)
                && let Ok(s) = std::str::from_utf8(seq)
            {
                out.push_str(s);
                i += len;
                continue;
            }
        }
        out.push_str(&format!("\\x{c:02x}"));
        i += 1;
    }
    out
}
