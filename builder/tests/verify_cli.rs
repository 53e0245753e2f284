//! `reprodisk verify` and `reprodisk diff` on things that are not images: bad input, exit 2,
//! at once (a FIFO must not block the open or a read).

use std::time::{Duration, Instant};

/// Runs reprodisk with a deadline, so that a hang fails the test instead of stalling CI.
fn run_bounded(args: &[&str]) -> (i32, String) {
    let start = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reprodisk"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the reprodisk binary runs");
    loop {
        if let Some(status) = child.try_wait().expect("waiting for reprodisk") {
            let out = child.wait_with_output().expect("reading stderr");
            return (status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned());
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("reprodisk {args:?} hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn verify_and_diff_refuse_a_fifo_and_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo (coreutils) runs");
    assert!(made.success());
    let img = dir.path().join("ok.img");
    std::fs::write(&img, vec![0u8; 4096]).unwrap();
    let (fifo, d, img) = (fifo.to_str().unwrap(), dir.path().to_str().unwrap(), img.to_str().unwrap());
    for (args, what) in [
        (vec!["verify", fifo], "a FIFO"),
        (vec!["verify", d], "a directory"),
        (vec!["diff", fifo, img], "a FIFO"),
        (vec!["diff", img, d], "a directory"),
    ] {
        let (code, err) = run_bounded(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.starts_with("error: opening image"), "{args:?}: {err}");
        assert!(err.contains(&format!("{what}, not a disk image")), "{args:?}: {err}");
    }
}

/// Runs reprodisk under `/usr/bin/time` and returns (exit code, max RSS in KiB).
fn max_rss_kib(args: &[&str]) -> (i32, u64) {
    let out = std::process::Command::new("/usr/bin/time")
        .arg("-f")
        .arg("REPRODISK-RSS %M")
        .arg(env!("CARGO_BIN_EXE_reprodisk"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .output()
        .expect("/usr/bin/time runs (install the `time` package)");
    let err = String::from_utf8_lossy(&out.stderr);
    let rss = err
        .lines()
        .find_map(|l| l.strip_prefix("REPRODISK-RSS "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no RSS from /usr/bin/time: {err}"));
    // `time` exits with the command's status.
    (out.status.code().unwrap_or(-1), rss)
}

fn tool(cmd: &str, args: &[&str], input: Option<&std::path::Path>) {
    let mut c = std::process::Command::new(cmd);
    c.args(args).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    if let Some(i) = input {
        c.stdin(std::fs::File::open(i).unwrap());
    }
    let s = c.status().unwrap_or_else(|e| panic!("{cmd} ({e}): install e2fsprogs"));
    assert!(s.success(), "{cmd} {args:?} failed");
}

/// A chain of 20,000 nested directories (made with debugfs, which mkfs.ext4 -d cannot do past
/// PATH_MAX) once made `verify` use 2 GB: paths are now parent links, so memory follows the
/// number of entries. `diff` against the same chain with a new UUID (every inode checksum
/// differs) stays bounded too.
#[test]
fn a_deep_directory_chain_verifies_and_diffs_in_bounded_memory() {
    const DEPTH: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("deep.img");
    std::fs::File::create(&img).unwrap().set_len(32 << 20).unwrap();
    let img_s = img.to_str().unwrap();
    tool("mkfs.ext4", &["-qF", "-b1024", "-N", "21000", img_s], None);
    let cmds = dir.path().join("cmds");
    std::fs::write(&cmds, "mkdir a\ncd a\n".repeat(DEPTH)).unwrap();
    tool("debugfs", &["-w", "-f", cmds.to_str().unwrap(), img_s], None);
    tool("e2fsck", &["-fn", img_s], None);
    let (code, rss) = max_rss_kib(&["verify", img_s]);
    assert_eq!(code, 0, "a clean deep chain verifies (warnings only)");
    assert!(rss < 160 << 10, "verify of a {DEPTH}-deep chain used {rss} KiB");

    let other = dir.path().join("other.img");
    std::fs::copy(&img, &other).unwrap();
    tool("tune2fs", &["-U", "clear", other.to_str().unwrap()], None);
    let (code, rss) = max_rss_kib(&["diff", img_s, other.to_str().unwrap()]);
    assert_eq!(code, 1, "the images differ");
    assert!(rss < 320 << 10, "diff of two {DEPTH}-deep chains used {rss} KiB");
}

fn verify_out(args: &[&str]) -> (i32, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_reprodisk"))
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("the reprodisk binary runs");
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned())
}

/// The reproduction: a 150 MiB efi disk once failed with a false `partition-size`
/// (parted's 100% window) and `fs-missing` for the ESP the FAT writer does not write yet. The
/// manifest lists that part as not written, and verify reports it as such.
#[test]
fn verify_spec_passes_a_fresh_efi_build_and_names_what_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("s.toml");
    std::fs::write(&spec, "partition_table_type=\"efi\"\ndisk_size=150\nboot_size=\"32M\"\n").unwrap();
    let out = dir.path().join("o");
    let (s, o) = (spec.to_str().unwrap(), out.to_str().unwrap());
    let b = std::process::Command::new(env!("CARGO_BIN_EXE_reprodisk"))
        .args(["build", s, "--out", o])
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let img = out.join("nixos.img");
    let (code, text) = verify_out(&["verify", img.to_str().unwrap(), "--spec", s]);
    assert!(!text.contains("partition-size"), "{text}");
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    if manifest.contains("FAT writer pending") {
        assert!(text.contains("not-written"), "{text}");
        assert!(!text.contains("fs-missing") && !text.contains("fs-unrecognised"), "{text}");
    }
    assert_eq!(code, 0, "{text}");
}

/// An image in which nothing is recognised is an error, whatever it holds.
#[test]
fn nothing_recognised_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut noise = vec![0u8; 1 << 20];
    let mut x: u32 = 0x1234_5678;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    for (name, bytes, says) in [
        ("empty.img", Vec::new(), "the image is empty"),
        ("zeros.img", vec![0u8; 1 << 20], "the image starts with zeros"),
        ("random.img", noise, "hold no partition table and no ext4 or FAT filesystem"),
    ] {
        let img = dir.path().join(name);
        std::fs::write(&img, bytes).unwrap();
        let (code, text) = verify_out(&["verify", img.to_str().unwrap()]);
        assert_eq!(code, 1, "{name}: {text}");
        assert!(text.contains("nothing-recognised") && text.contains(says), "{name}: {text}");
    }
}
