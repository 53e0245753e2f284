//! Helpers shared by the ext4 tests: building images with mke2fs, running the e2fsprogs
//! reference tools and parsing what they print.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs a reference tool and returns its stdout; a missing tool fails with its package name.
pub fn run(cmd: &str, args: &[&str]) -> (String, i32) {
    let out = Command::new(cmd).args(args).env("TZ", "UTC").output().unwrap_or_else(|e| {
        panic!("cannot run `{cmd}` ({e}); install the package that provides it (e2fsprogs, attr or xz-utils)")
    });
    (
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        out.status.code().unwrap_or(-1),
    )
}

/// Runs a tool that must succeed.
pub fn run_ok(cmd: &str, args: &[&str]) -> String {
    let (out, code) = run(cmd, args);
    assert_eq!(code, 0, "`{cmd} {}` failed:\n{out}", args.join(" "));
    out
}

/// Makes a sparse image of `mib` MiB with mke2fs, optionally populated from `src`.
pub fn mkfs(dir: &Path, name: &str, mib: u64, args: &[&str], src: Option<&Path>) -> PathBuf {
    let img = dir.join(name);
    let f = std::fs::File::create(&img).expect("creating the image file in a tempdir");
    f.set_len(mib << 20).expect("sizing the sparse image");
    let mut a: Vec<&str> = vec!["-q", "-F"];
    a.extend_from_slice(args);
    if let Some(s) = src {
        a.push("-d");
        a.push(s.to_str().expect("tempdir paths are UTF-8"));
    }
    a.push(img.to_str().expect("tempdir paths are UTF-8"));
    run_ok("mke2fs", &a);
    img
}

/// UUID and hash seed of the reproducible images made by [`mkfs_fixed`].
pub const FIXED_UUID: &str = "9b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9";
pub const FIXED_HASH_SEED: &str = "11111111-2222-4333-8444-555555555555";

/// Makes a reproducible 8 MiB ext4 image: fixed UUID and hash seed, and mke2fs's clock
/// fixed at 1980-01-01 (`E2FSPROGS_FAKE_TIME`).
pub fn mkfs_fixed(dir: &Path, name: &str, args: &[&str], src: Option<&Path>) -> PathBuf {
    let img = dir.join(name);
    std::fs::File::create(&img).unwrap().set_len(8 << 20).unwrap();
    let seed = format!("hash_seed={FIXED_HASH_SEED}");
    let mut a = vec!["-q", "-F", "-t", "ext4", "-U", FIXED_UUID, "-E", &seed];
    a.extend_from_slice(args);
    if let Some(s) = src {
        a.extend(["-d", s.to_str().unwrap()]);
    }
    a.push(img.to_str().unwrap());
    let out = Command::new("mke2fs")
        .args(&a)
        .env("E2FSPROGS_FAKE_TIME", "315532800")
        .output()
        .expect("mke2fs (package e2fsprogs) must be installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    img
}

/// `dumpe2fs -h` as `field -> value`.
pub fn dumpe2fs(img: &Path) -> BTreeMap<String, String> {
    let out = run_ok("dumpe2fs", &["-h", img.to_str().unwrap()]);
    out.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// `ctime(3)` style in UTC, as dumpe2fs prints times: `Wed Nov 25 22:41:20 2026`.
pub fn ctime(t: i64) -> String {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let mn = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        [(m - 1) as usize];
    format!("{wd} {mn} {d:2} {:02}:{:02}:{:02} {y}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// One inode as `debugfs -R "stat <ino>"` prints it.
#[derive(Debug, Default, Clone)]
pub struct DebugfsStat {
    pub fields: BTreeMap<String, String>,
    /// Raw time words: name -> (seconds word, extra word).
    pub times: BTreeMap<String, (u32, Option<u32>)>,
    /// Data runs `(logical, physical, len)`, merged when contiguous.
    pub data: Vec<(u64, u64, u64)>,
    /// Map blocks (ETB*, IND, DIND, TIND).
    pub meta: Vec<u64>,
    pub xattrs: Vec<String>,
}

fn parse_runs(line: &str, st: &mut DebugfsStat) {
    for tok in line.split(", ") {
        let Some((l, p)) = tok.trim().split_once("):") else {
            continue;
        };
        let l = l.trim_start_matches('(');
        let p = p.trim_start_matches("[u]").trim();
        let range = |s: &str| -> Option<(u64, u64)> {
            match s.split_once('-') {
                Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                None => s.parse().ok().map(|a| (a, a)),
            }
        };
        match (range(l), range(p)) {
            (Some((la, lb)), Some((pa, _))) => st.data.push((la, pa, lb - la + 1)),
            (None, Some((pa, pb))) => st.meta.extend(pa..=pb),
            _ => {}
        }
    }
}

/// Merges contiguous runs so that differently split maps compare equal.
pub fn merge_runs(mut v: Vec<(u64, u64, u64)>) -> Vec<(u64, u64, u64)> {
    v.sort();
    let mut out: Vec<(u64, u64, u64)> = Vec::new();
    for r in v {
        if let Some(last) = out.last_mut()
            && last.0 + last.2 == r.0
            && last.1 + last.2 == r.1
        {
            last.2 += r.2;
            continue;
        }
        out.push(r);
    }
    out
}

/// `stat <ino>` for many inodes in one debugfs run.
pub fn debugfs_stats(img: &Path, inos: &[u32]) -> BTreeMap<u32, DebugfsStat> {
    let dir = tempfile::tempdir().expect("tempdir for the debugfs command file");
    let cmds = dir.path().join("cmds");
    let text: String = inos.iter().map(|i| format!("stat <{i}>\n")).collect();
    std::fs::write(&cmds, text).expect("writing the debugfs command file");
    let out = run_ok("debugfs", &["-f", cmds.to_str().unwrap(), img.to_str().unwrap()]);
    let mut res = BTreeMap::new();
    let mut cur: Option<(u32, DebugfsStat)> = None;
    let mut in_runs = false;
    let mut in_xattrs = false;
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("debugfs: stat <") {
            if let Some((i, s)) = cur.take() {
                res.insert(i, s);
            }
            let ino = rest.trim_end_matches('>').parse().expect("debugfs echoes the command");
            cur = Some((ino, DebugfsStat::default()));
            in_runs = false;
            in_xattrs = false;
            continue;
        }
        let Some((_, st)) = cur.as_mut() else {
            continue;
        };
        let t = line.trim();
        if t == "EXTENTS:" || t == "BLOCKS:" {
            in_runs = true;
            continue;
        }
        if in_runs {
            if !t.starts_with("TOTAL") {
                parse_runs(t, st);
            }
            continue;
        }
        if t == "Extended attributes:" {
            in_xattrs = true;
            continue;
        }
        if in_xattrs && line.starts_with("  ") {
            st.xattrs.push(t.to_string());
            continue;
        }
        in_xattrs = false;
        for name in ["ctime", "atime", "mtime", "crtime", "dtime"] {
            if let Some(v) = t.strip_prefix(&format!("{name}: 0x")) {
                let word = v.split_whitespace().next().unwrap_or("");
                let (a, b) = match word.split_once(':') {
                    Some((a, b)) => (a, Some(u32::from_str_radix(b, 16).expect("hex extra"))),
                    None => (word, None),
                };
                st.times.insert(name.into(), (u32::from_str_radix(a, 16).expect("hex seconds"), b));
            }
        }
        // Lines hold several `Key: value` pairs separated by runs of spaces.
        let keys = [
            "Inode",
            "Type",
            "Mode",
            "Flags",
            "Generation",
            "Version",
            "User",
            "Group",
            "Project",
            "Size",
            "File ACL",
            "Links",
            "Blockcount",
            "Inode checksum",
            "Fast link dest",
            "Device major/minor number",
            "(New-style) Device major/minor number",
        ];
        let mut rest = t;
        while !rest.is_empty() {
            let Some(k) = keys.iter().filter(|k| rest.starts_with(&format!("{k}:"))).max_by_key(|k| k.len())
            else {
                break;
            };
            let after = rest[k.len() + 1..].trim_start();
            let end = keys
                .iter()
                .filter_map(|k2| {
                    after
                        .find(&format!("   {k2}:"))
                        .or_else(|| after.find(&format!("  {k2}:")))
                        .or_else(|| after.find(&format!(" {k2}:")))
                })
                .min()
                .unwrap_or(after.len());
            st.fields.insert((*k).to_string(), after[..end].trim().to_string());
            rest = after[end..].trim_start();
        }
    }
    if let Some((i, s)) = cur.take() {
        res.insert(i, s);
    }
    res
}

/// The per-group part of `dumpe2fs` (without -h): one map per group with keys `csum`,
/// `flags`, `superblock`, `gdt`, `reserved_gdt`, `block_bitmap`, `block_bitmap_csum`,
/// `inode_bitmap`, `inode_bitmap_csum`, `inode_table`, `free_blocks_count`,
/// `free_inodes_count`, `dirs`, `unused`, `free_blocks`, as dumpe2fs prints the values.
pub fn dumpe2fs_groups(img: &Path) -> Vec<BTreeMap<String, String>> {
    let out = run_ok("dumpe2fs", &[img.to_str().unwrap()]);
    let mut groups: Vec<BTreeMap<String, String>> = Vec::new();
    for line in out.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("Group ")
            && let Some((_, h)) = rest.split_once(": (Blocks ")
        {
            let mut m = BTreeMap::new();
            if let Some((_, c)) = h.split_once(" csum 0x") {
                m.insert("csum".into(), c.split_whitespace().next().unwrap().to_string());
            }
            if let Some((_, f)) = h.split_once('[') {
                m.insert("flags".into(), f.trim_end_matches(']').to_string());
            }
            groups.push(m);
            continue;
        }
        let Some(m) = groups.last_mut() else { continue };
        fn put(m: &mut BTreeMap<String, String>, k: &str, v: &str) {
            m.insert(k.to_string(), v.trim().to_string());
        }
        for part in t.split(", ") {
            let first = |s: &str| s.split_whitespace().next().unwrap_or("").to_string();
            if let Some(v) =
                part.strip_prefix("Primary superblock at ").or(part.strip_prefix("Backup superblock at "))
            {
                put(m, "superblock", v);
            } else if let Some(v) =
                part.strip_prefix("Group descriptors at ").or(part.strip_prefix("Group descriptor at "))
            {
                put(m, "gdt", v);
            } else if let Some(v) = part.strip_prefix("Reserved GDT blocks at ") {
                put(m, "reserved_gdt", v);
            } else if let Some(v) = part.strip_prefix("Block bitmap at ") {
                put(m, "block_bitmap", &first(v));
            } else if let Some(v) = part.strip_prefix("Inode bitmap at ") {
                put(m, "inode_bitmap", &first(v));
            } else if let Some(v) = part.strip_prefix("Inode table at ") {
                put(m, "inode_table", &first(v));
            } else if let Some(v) = part.strip_prefix("csum 0x") {
                let key =
                    if m.contains_key("inode_bitmap") { "inode_bitmap_csum" } else { "block_bitmap_csum" };
                m.insert(key.into(), v.to_string());
            } else if let Some(v) = part.strip_suffix(" free blocks") {
                put(m, "free_blocks_count", v);
            } else if let Some(v) = part.strip_suffix(" free inodes") {
                put(m, "free_inodes_count", v);
            } else if let Some(v) = part.strip_suffix(" directories") {
                put(m, "dirs", v);
            } else if let Some(v) = part.strip_suffix(" unused inodes") {
                put(m, "unused", v);
            }
        }
        // An empty list is printed as "Free blocks: " (trimmed above to "Free blocks:").
        if let Some(v) = t.strip_prefix("Free blocks:") {
            m.insert("free_blocks".into(), v.trim().to_string());
        }
    }
    groups
}
