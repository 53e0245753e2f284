//! Shared helpers of the partition-table tests: running the reference tools (sgdisk,
//! sfdisk, fdisk, blkid, parted, xz) and making small sparse images in tempdirs.
//!
//! Included by the other test files with `#[path = "disk_support.rs"] mod support;`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A command for a reference tool. Panics naming the Debian package when the tool is not
/// installed: a missing oracle fails the test, it never skips it.
pub fn tool(name: &str, package: &str) -> Command {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs =
        std::env::split_paths(&path).chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from));
    for d in dirs {
        let p = d.join(name);
        if p.is_file() {
            let mut c = Command::new(p);
            c.env("LC_ALL", "C");
            return c;
        }
    }
    panic!("`{name}` is not installed: install the Debian package `{package}` (apt-get install {package})");
}

pub fn sgdisk() -> Command {
    tool("sgdisk", "gdisk")
}
pub fn sfdisk() -> Command {
    tool("sfdisk", "fdisk")
}
pub fn parted() -> Command {
    tool("parted", "parted")
}
pub fn blkid() -> Command {
    tool("blkid", "util-linux")
}

/// Runs `cmd` with `stdin` and returns stdout; panics with the full command line, status
/// and stderr when it fails.
pub fn run_with_input(cmd: &mut Command, stdin: &str) -> String {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    // The stdin pipe was requested just above.
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .unwrap_or_else(|e| panic!("writing to {cmd:?}: {e}"));
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("waiting for {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        panic!(
            "{cmd:?} failed with {}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    stdout
}

pub fn run(cmd: &mut Command) -> String {
    run_with_input(cmd, "")
}

/// A sparse file of `bytes` bytes (a hole, nothing written).
pub fn sparse(dir: &Path, name: &str, bytes: u64) -> PathBuf {
    let p = dir.join(name);
    let f = std::fs::File::create(&p).unwrap_or_else(|e| panic!("creating {}: {e}", p.display()));
    f.set_len(bytes).unwrap_or_else(|e| panic!("sizing {}: {e}", p.display()));
    p
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory can be created")
}

/// `sfdisk --json IMAGE`, parsed.
pub fn sfdisk_json(img: &Path) -> serde_json::Value {
    let out = run(sfdisk().arg("--json").arg(img));
    serde_json::from_str::<serde_json::Value>(&out)
        .unwrap_or_else(|e| panic!("sfdisk --json output is not json: {e}\n{out}"))["partitiontable"]
        .clone()
}

/// `blkid -p -o export [extra] IMAGE` as a key/value map (empty if blkid finds nothing).
pub fn blkid_probe(img: &Path, extra: &[&str]) -> BTreeMap<String, String> {
    let out = blkid().args(["-p", "-o", "export"]).args(extra).arg(img).output().expect("blkid runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Decompresses `src` (an .xz file) into `dir` with the `xz` binary; returns the new path.
pub fn unxz(src: &Path, dir: &Path) -> PathBuf {
    let name = src.file_name().and_then(|n| n.to_str()).expect("corpus names are utf-8");
    let dst = dir.join(name.trim_end_matches(".xz"));
    let out = tool("xz", "xz-utils").arg("-dc").arg(src).output().expect("xz runs");
    assert!(
        out.status.success(),
        "xz -dc {} failed: {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&dst, out.stdout).expect("the tempdir is writable");
    dst
}

pub fn image(path: &Path) -> reprodisk_verifier::bytes::ImageFile {
    reprodisk_verifier::bytes::ImageFile::open(path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
}

/// The value after `prefix` on the first line of `text` that starts with it.
pub fn field<'t>(text: &'t str, prefix: &str) -> &'t str {
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{text}"))
        .trim()
}

pub fn read_bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// The seed's `parted` + `sgdisk` commands for each GPT layout (make-disk-image.nix), run
/// on a sparse file of `mib` MiB, with `boot_mib` the seed's rounded bootSize.
pub fn seed_gpt_layout(dir: &Path, layout: &str, mib: u64, boot_mib: u64, root_gpuid: &str) -> PathBuf {
    let img = sparse(dir, &format!("{}.img", layout.replace('+', "-")), mib << 20);
    let b = format!("{boot_mib}MiB");
    let script: Vec<String> = match layout {
        "legacy+gpt" => "mklabel gpt mkpart no-fs 1MiB 2MiB set 1 bios_grub on mkpart primary ext4 2MiB 100%"
            .split(' ')
            .map(String::from)
            .collect(),
        "efi" => vec![
            "mklabel", "gpt", "mkpart", "ESP", "fat32", "8MiB", &b, "set", "1", "boot", "on", "mkpart",
            "primary", "ext4", &b, "100%",
        ]
        .into_iter()
        .map(String::from)
        .collect(),
        "efixbootldr" => vec![
            "mklabel", "gpt", "mkpart", "ESP", "fat32", "8MiB", "100MiB", "set", "1", "boot", "on", "mkpart",
            "BOOT", "fat32", "100MiB", &b, "set", "2", "bls_boot", "on", "mkpart", "ROOT", "ext4", &b,
            "100%",
        ]
        .into_iter()
        .map(String::from)
        .collect(),
        "hybrid" => vec![
            "mklabel",
            "gpt",
            "mkpart",
            "ESP",
            "fat32",
            "8MiB",
            &b,
            "set",
            "1",
            "boot",
            "on",
            "mkpart",
            "no-fs",
            "0",
            "1024KiB",
            "set",
            "2",
            "bios_grub",
            "on",
            "mkpart",
            "primary",
            "ext4",
            &b,
            "100%",
        ]
        .into_iter()
        .map(String::from)
        .collect(),
        other => panic!("not a gpt layout: {other}"),
    };
    run(parted().arg("--script").arg(&img).arg("--").args(&script));
    let p2 = if layout == "efi" { root_gpuid } else { "970C694F-AFD0-4B99-B750-CDB7A329AB6F" };
    let mut cmd = sgdisk();
    cmd.arg("--disk-guid=97FD5997-D90B-4AA3-8D16-C1723AEA73C")
        .arg("--partition-guid=1:1C06F03B-704E-4657-B9CD-681A087A2FDC")
        .arg(format!("--partition-guid=2:{p2}"));
    if layout != "efi" {
        cmd.arg(format!("--partition-guid=3:{root_gpuid}"));
    }
    // On legacy+gpt this names a partition 3 that does not exist; sgdisk accepts it and
    // leaves partition 2 with 970C694F-..., as the seed's images have it.
    run(cmd.arg(&img));
    img
}

/// Recomputes the entry array CRC and the header CRC of the GPT header at `lba` (512-byte
/// sectors), as a tool writing damaged values on purpose would. Out-of-range fields leave
/// the array CRC alone; never panics on any input of at least `lba * 512 + 92` bytes.
pub fn restamp(img: &mut [u8], lba: usize) {
    let h = lba * 512;
    let Some(hdr) = img.get(h..h + 92) else {
        return;
    };
    let arr = u64::from_le_bytes(hdr[0x48..0x50].try_into().expect("8 bytes"));
    let n = u32::from_le_bytes(hdr[0x50..0x54].try_into().expect("4 bytes")) as usize;
    let sz = u32::from_le_bytes(hdr[0x54..0x58].try_into().expect("4 bytes")) as usize;
    let span = usize::try_from(arr)
        .ok()
        .and_then(|a| a.checked_mul(512))
        .and_then(|s| Some(s..s.checked_add(n.checked_mul(sz)?)?));
    if let Some(a) = span.and_then(|r| img.get(r)) {
        let crc = crc32fast::hash(a);
        img[h + 0x58..h + 0x5c].copy_from_slice(&crc.to_le_bytes());
    }
    img[h + 0x10..h + 0x14].fill(0);
    let crc = crc32fast::hash(&img[h..h + 92]);
    img[h + 0x10..h + 0x14].copy_from_slice(&crc.to_le_bytes());
}
