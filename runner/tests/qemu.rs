//! The runner against real QEMU with tiny hand-made disks: every way a boot can end, fast.
//!
//! Needs `qemu-system-x86_64` (Debian package `qemu-system-x86`) and OVMF (package `ovmf`);
//! without them these tests fail naming the package.

use reprodisk_runner::{Boot, Firmware, ImageFormat, Verdict, accel, boot_blocking};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A 1 MiB raw disk whose first sector is `code` followed by the boot signature.
fn disk(dir: &Path, name: &str, code: &[u8]) -> PathBuf {
    let mut d = vec![0u8; 1 << 20];
    if !code.is_empty() {
        d[..code.len()].copy_from_slice(code);
        d[510] = 0x55;
        d[511] = 0xaa;
    }
    let p = dir.join(name);
    std::fs::write(&p, d).unwrap();
    p
}

fn sha(p: &Path) -> Vec<u8> {
    // The disks are small: comparing the bytes is as strong as comparing digests.
    std::fs::read(p).unwrap()
}

fn run(b: &Boot) -> reprodisk_runner::Report {
    let before = sha(&b.image);
    let r = boot_blocking(b).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sha(&b.image), before, "the boot changed the image");
    assert!(r.log.is_file());
    r
}

#[test]
fn seabios_with_nothing_bootable_fails_fast_on_its_debug_port() {
    let dir = tempfile::tempdir().unwrap();
    let b = Boot::new(
        disk(dir.path(), "empty.img", &[]),
        ImageFormat::Raw,
        Firmware::SeaBios,
        dir.path().join("run"),
    );
    let r = run(&b);
    assert!(
        matches!(&r.verdict, Verdict::Failure { meaning, .. } if meaning.contains("could not boot")),
        "{}",
        r.explain()
    );
    assert!(r.elapsed < Duration::from_secs(30), "{}", r.summary());
    let log = std::fs::read_to_string(&r.log).unwrap();
    assert!(log.starts_with("command: qemu-system-x86_64 ") && log.contains("Boot failed"), "{log}");
}

#[test]
fn ovmf_with_nothing_bootable_fails_on_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let vars = dir.path().join("vars.fd");
    std::fs::copy(reprodisk_runner::qemu::OVMF_VARS, &vars)
        .expect("OVMF is not installed: install the Debian package `ovmf`");
    let b = Boot::new(
        disk(dir.path(), "empty.img", &[]),
        ImageFormat::Raw,
        Firmware::ovmf(Some(vars.clone())),
        dir.path().join("run"),
    );
    let before = sha(&vars);
    let r = run(&b);
    assert!(
        matches!(&r.verdict, Verdict::Failure { meaning, .. } if meaning.contains("UEFI shell")),
        "{}",
        r.explain()
    );
    assert_eq!(sha(&vars), before, "the given variable store changed");
}

#[test]
fn qemu_exiting_first_is_a_failure_with_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let image = disk(dir.path(), "exit.img", &accel::probe_sector()[..7]);
    let mut b = Boot::new(image, ImageFormat::Raw, Firmware::SeaBios, dir.path().join("run"));
    b.extra = vec!["-device".into(), "isa-debug-exit,iobase=0xf4,iosize=0x04".into()];
    let r = run(&b);
    assert!(matches!(&r.verdict, Verdict::Exited { status } if status.contains("33")), "{}", r.explain());
    assert!(r.explain().contains("QEMU exited"), "{}", r.explain());
}

#[test]
fn silence_is_a_timeout_and_qemu_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    // `jmp $`: the guest spins forever and prints nothing.
    let image = disk(dir.path(), "spin.img", &[0xeb, 0xfe]);
    let mut b = Boot::new(image, ImageFormat::Raw, Firmware::SeaBios, dir.path().join("run"));
    b.timeout = Duration::from_secs(3);
    let r = run(&b);
    assert_eq!(r.verdict, Verdict::Timeout { after: Duration::from_secs(3) }, "{}", r.explain());
    assert!(r.explain().contains("timed out after 3 s"));
    assert!(r.elapsed < Duration::from_secs(10), "{}", r.summary());
}

#[test]
fn a_missing_image_or_qemu_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let b =
        Boot::new(dir.path().join("nope.img"), ImageFormat::Raw, Firmware::SeaBios, dir.path().join("run"));
    assert!(boot_blocking(&b).unwrap_err().to_string().contains("nope.img` does not exist"));
    let b = Boot {
        qemu: "qemu-system-nonexistent".into(),
        ..Boot::new(
            disk(dir.path(), "e.img", &[]),
            ImageFormat::Raw,
            Firmware::SeaBios,
            dir.path().join("run"),
        )
    };
    assert!(
        boot_blocking(&b).unwrap_err().to_string().contains("install the Debian package `qemu-system-x86`")
    );
}
