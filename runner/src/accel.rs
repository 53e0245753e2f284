//! The accelerator: KVM only where it is known to work, else TCG.
//!
//! The project's machines have a `/dev/kvm` that cannot run guests (a nested software
//! hypervisor), so `/dev/kvm` alone proves nothing. KVM is chosen only when the CPU advertises
//! vmx or svm in /proc/cpuinfo, /dev/kvm exists, and a probe guest (a 512-byte boot sector
//! that writes to QEMU's isa-debug-exit port) actually runs to its exit under KVM within a few
//! seconds. `REPRODISK_ACCEL=tcg` or `REPRODISK_ACCEL=kvm` forces either.

use std::path::Path;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

/// The environment variable that forces the accelerator.
pub const ENV: &str = "REPRODISK_ACCEL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Tcg,
    Kvm,
}

impl Accel {
    /// The value of QEMU's `-accel` option.
    pub fn qemu_name(self) -> &'static str {
        match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        }
    }

    /// `REPRODISK_ACCEL` when set (an unknown value is an error), else [`Accel::detect`],
    /// decided once per process.
    pub fn from_env(qemu: &Path) -> Result<Accel, String> {
        match std::env::var(ENV) {
            Ok(v) => parse(&v).ok_or_else(|| format!("{ENV} is `{v}`: use `tcg` or `kvm`")),
            Err(_) => {
                static DETECTED: OnceLock<Accel> = OnceLock::new();
                Ok(*DETECTED.get_or_init(|| Accel::detect(qemu)))
            }
        }
    }

    /// KVM when the CPU flags, /dev/kvm and a probe guest all say it works, else TCG.
    pub fn detect(qemu: &Path) -> Accel {
        let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        if cpu_has_virtualization(&flags) && Path::new("/dev/kvm").exists() && kvm_probe(qemu) {
            Accel::Kvm
        } else {
            Accel::Tcg
        }
    }
}

fn parse(v: &str) -> Option<Accel> {
    match v.trim() {
        "tcg" => Some(Accel::Tcg),
        "kvm" => Some(Accel::Kvm),
        _ => None,
    }
}

/// Whether a `flags` line of /proc/cpuinfo names vmx (Intel VT-x) or svm (AMD-V).
pub fn cpu_has_virtualization(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"))
}

/// A boot sector that writes 0x10 to port 0xf4 (isa-debug-exit), so QEMU exits with status
/// (0x10 << 1) | 1 = 33: `mov al, 0x10; out 0xf4, al; hlt; jmp $-1`, then the 0x55aa signature.
pub fn probe_sector() -> Vec<u8> {
    let mut s = vec![0u8; 512];
    s[..7].copy_from_slice(&[0xb0, 0x10, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd]);
    s[510] = 0x55;
    s[511] = 0xaa;
    s
}

/// The exit status QEMU reports when the probe guest ran.
pub const PROBE_EXIT: i32 = 33;

fn kvm_probe(qemu: &Path) -> bool {
    let dir = std::env::temp_dir().join(format!("reprodisk-kvm-probe-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err() {
        return false;
    }
    let disk = dir.join("probe.img");
    let ok = std::fs::write(&disk, probe_sector()).is_ok() && {
        let child = std::process::Command::new(qemu)
            .args(["-accel", "kvm", "-nodefaults", "-display", "none", "-no-reboot", "-machine", "q35"])
            .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-drive"])
            .arg(format!("file={},format=raw,if=virtio,snapshot=on", disk.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match child {
            Ok(mut c) => {
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                let status = loop {
                    match c.try_wait() {
                        Ok(Some(s)) => break Some(s),
                        Ok(None) if std::time::Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(50))
                        }
                        _ => break None,
                    }
                };
                if status.is_none() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                status.and_then(|s| s.code()) == Some(PROBE_EXIT)
            }
            Err(_) => false,
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_flags_decide_whether_kvm_is_worth_probing() {
        assert!(cpu_has_virtualization("processor : 0\nflags\t\t: fpu vme vmx sse\n"));
        assert!(cpu_has_virtualization("flags : fpu svm\n"));
        assert!(!cpu_has_virtualization("flags : fpu vme sse hypervisor\nvmx flags : ept\n"));
    }

    #[test]
    fn env_values() {
        assert_eq!(parse("tcg"), Some(Accel::Tcg));
        assert_eq!(parse("kvm\n"), Some(Accel::Kvm));
        assert_eq!(parse("hvf"), None);
    }

    #[test]
    fn probe_sector_is_a_boot_sector() {
        let s = probe_sector();
        assert_eq!((s.len(), s[510], s[511]), (512, 0x55, 0xaa));
    }
}
