//! Images the verifier cannot read anything from are errors, never a pass: an empty file,
//! all zeros, random bytes, and partitions whose type names ext4 (MBR 0x83, GPT "Linux
//! filesystem") or FAT but which hold no such filesystem.

#[path = "disk_support.rs"]
mod support;

use reprodisk_verifier::glue;
use reprodisk_verifier::report::Severity;
use support::*;

/// `(code, location, message)` of every error `verify` reports for `img`.
fn errors(img: &[u8]) -> Vec<(String, String, String)> {
    glue::verify(&img, None, None, None)
        .findings
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| (f.code, f.location.unwrap_or_default(), f.message))
        .collect()
}

fn assert_error(img: &[u8], code: &str, location: &str, says: &str) {
    let e = errors(img);
    assert!(
        e.iter().any(|(c, l, m)| c == code && l == location && m.contains(says)),
        "expected {code} at {location} saying `{says}`, got {e:#?}"
    );
}

/// Bytes from a fixed xorshift sequence: random-looking, the same on every run.
fn noise(n: usize) -> Vec<u8> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn an_empty_file_is_an_error() {
    assert_error(&[], "nothing-recognised", "image", "the image is empty: nothing to verify");
}

#[test]
fn all_zeros_is_an_error() {
    assert_error(&vec![0u8; 4 << 20], "nothing-recognised", "image", "the image starts with zeros");
}

#[test]
fn random_bytes_are_an_error() {
    for n in [512, 4096, 1 << 20] {
        assert_error(&noise(n), "nothing-recognised", "image", "hold no partition table and no ext4 or FAT");
    }
}

#[test]
fn an_mbr_linux_partition_without_ext4_is_an_error() {
    let dir = tempdir();
    let img = sparse(dir.path(), "m.img", 8 << 20);
    run_with_input(sfdisk().arg("-q").arg(&img), "label: dos\n2048,4096,83\n6144,,c\n");
    let mut bytes = read_bytes(&img);
    assert_error(&bytes, "fs-unrecognised", "partition 1", "its type says ext4, but it is all zeros");
    assert_error(&bytes, "fs-unrecognised", "partition 2", "its type says vfat, but it is all zeros");
    let start = 2048 * 512;
    bytes[start..start + (1 << 20)].copy_from_slice(&noise(1 << 20));
    assert_error(&bytes, "fs-unrecognised", "partition 1", "holds no filesystem we recognise");
}

#[test]
fn a_gpt_linux_filesystem_partition_without_ext4_is_an_error() {
    let dir = tempdir();
    let img = sparse(dir.path(), "g.img", 8 << 20);
    run(sgdisk().args(["-n", "1:2048:6143", "-t", "1:8300", "-n", "2:6144:0", "-t", "2:ef00"]).arg(&img));
    let bytes = read_bytes(&img);
    assert_error(&bytes, "fs-unrecognised", "partition 1", "its type says ext4, but it is all zeros");
    assert_error(&bytes, "fs-unrecognised", "partition 2", "but it is all zeros");
}
