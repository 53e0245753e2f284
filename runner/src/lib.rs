//! reprodisk's QEMU runner: boots a disk image under SeaBIOS, OVMF or a direct kernel boot
//! and waits for a line the guest prints itself.
//!
//! - [`qemu`]: the QEMU command line, built as data ([`qemu::Boot::args`]) and unit-tested
//!   without QEMU.
//! - [`accel`]: TCG or KVM (KVM only where it is known to work; `REPRODISK_ACCEL` forces either).
//! - [`watch`]: what a console line means (success, the guest's failure, a firmware dead end),
//!   pure logic over the text as it arrives.
//! - [`run`]: runs QEMU on tokio, reads the serial console and the firmware's debug port as
//!   they arrive, kills QEMU on every path and keeps the command line and logs as an artifact.
//!
//! Silence is failure: a boot succeeds only on its success pattern (by default the fixture
//! guest's [`GUEST_OK`] line), and every boot has a timeout.
#![forbid(unsafe_code)]

pub mod accel;
pub mod qemu;
pub mod run;
pub mod watch;

pub use accel::Accel;
pub use qemu::{Boot, DirectKernel, Firmware, ImageFormat};
pub use run::{Error, Report, Verdict, boot, boot_blocking};

/// The fixture guest's success line starts with this (see `fixtures/src/guest/check.sh`).
pub const GUEST_OK: &str = "REPRODISK-GUEST ok";
/// The fixture guest's failure line starts with this.
pub const GUEST_FAIL: &str = "REPRODISK-GUEST fail";
