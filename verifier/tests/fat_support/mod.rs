//! Helpers shared by the FAT reader's integration tests: running the reference tools
//! (dosfstools, mtools, util-linux) and failing with the package name when one is missing.

#![allow(dead_code)]

use reprodisk_verifier::bytes::ImageFile;
use reprodisk_verifier::fat::{Fat, FatType, Tree};
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
    assert!(
        out.status.success(),
        "xz -dc {} failed: {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
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

/// The first integer in `s`.
pub fn num(s: &str) -> u64 {
    let d: String = s.trim_start().chars().take_while(|c| c.is_ascii_digit()).collect();
    d.parse().unwrap_or_else(|_| panic!("no number at the start of {s:?}"))
}

/// Compares the boot-sector report of `fsck.fat -n -v` line by line.
/// `clean` asks that fsck.fat find nothing to repair. Returns fsck.fat's output.
pub fn check_fsck(img: &str, fat: &Fat<'_, ImageFile>, tree: &Tree, clean: bool) -> String {
    let out = run("fsck.fat", &["-n", "-v", img]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !clean || out.status.success(),
        "fsck.fat found problems: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b = &fat.boot;
    let g = &fat.geometry;
    let mut seen = 0;
    for line in text.lines() {
        let l = line.trim();
        let mut check = |ok: bool| {
            assert!(ok, "fsck.fat says {l:?}; we have {b:?} {g:?}");
            seen += 1;
        };
        if let Some(v) = l.strip_prefix("System ID ") {
            // fsck.fat prints BS_OEMName as a C string: up to the first NUL.
            let oem = b.bs_oem_name.split(|&c| c == 0).next().unwrap_or(&[]);
            check(v.trim_matches('"') == String::from_utf8_lossy(oem));
        } else if let Some(v) = l.strip_prefix("Media byte 0x") {
            check(u8::from_str_radix(&v[..2], 16).ok() == Some(b.bpb_media));
        } else if l.ends_with("bytes per logical sector") {
            check(num(l) == u64::from(g.bytes_per_sector));
        } else if l.ends_with("bytes per cluster") {
            check(num(l) == u64::from(g.bytes_per_cluster));
        } else if l.ends_with("reserved sectors") || l.ends_with("reserved sector") {
            check(num(l) == u64::from(b.bpb_rsvd_sec_cnt));
        } else if let Some(v) = l.strip_prefix("First FAT starts at byte ") {
            check(num(v) == g.fat_offset);
        } else if l.contains("FATs, ") {
            let bits = num(l.split(", ").nth(1).unwrap_or(""));
            check(num(l) == u64::from(b.bpb_num_fats) && bits == u64::from(g.fat_type.bits()));
        } else if l.contains("bytes per FAT (= ") {
            let sectors = num(l.split("(= ").nth(1).unwrap_or(""));
            check(
                sectors == u64::from(g.fat_size)
                    && num(l) == u64::from(g.fat_size) * u64::from(g.bytes_per_sector),
            );
        } else if let Some(v) = l.strip_prefix("Root directory starts at byte ") {
            check(num(v) == g.root_dir_offset);
        } else if let Some(v) = l.strip_prefix("Root directory start at cluster ") {
            check(num(v) == u64::from(b.bpb_root_clus));
        } else if l.ends_with("root directory entries") {
            check(num(l) == u64::from(b.bpb_root_ent_cnt));
        } else if let Some(v) = l.strip_prefix("Data area starts at byte ") {
            check(num(v) == g.data_offset);
        } else if l.contains("data clusters (") {
            check(num(l) == u64::from(g.cluster_count));
        } else if l.contains("sectors/track, ") {
            let heads = num(l.split(", ").nth(1).unwrap_or(""));
            check(num(l) == u64::from(b.bpb_sec_per_trk) && heads == u64::from(b.bpb_num_heads));
        } else if l.ends_with("hidden sectors") {
            check(num(l) == u64::from(b.bpb_hidd_sec));
        } else if l.ends_with("sectors total") {
            check(num(l) == u64::from(g.total_sectors));
        } else if let Some((_, v)) = l.split_once(": ")
            && v.contains(" files, ")
        {
            // "N files, U/C clusters": fsck.fat counts every entry but `.`/`..`, the root
            // volume label included, and every allocated cluster.
            let files = num(v);
            let (used, total) = v.split(", ").nth(1).and_then(|s| s.split_once('/')).expect("U/C clusters");
            let label = u64::from(tree.root_label.is_some());
            check(files == tree.nodes.len() as u64 + label);
            check(num(used) == u64::from(fat.table.used_count()) && num(total) == u64::from(g.cluster_count));
        }
    }
    // FAT32 has no "root directory entries" line.
    let lines = if g.fat_type == FatType::Fat32 { 16 } else { 17 };
    assert_eq!(seen, lines, "fsck.fat printed fewer lines than expected:\n{text}");
    text
}
