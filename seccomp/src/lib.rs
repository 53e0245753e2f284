//! Seccomp user notification for one system call, behind a safe API: the only `unsafe` code
//! of the project, kept here so that the builder, the verifier and the runner stay
//! `#![forbid(unsafe_code)]`.
//!
//! `reprodisk audit`'s readdir variation answers a child build's `getdents64` calls itself,
//! in reverse order (see the builder's `audit/readdir.rs`). That takes four kernel
//! interfaces that neither the standard library nor rustix wraps:
//! - [`install`]: `prctl(PR_SET_NO_NEW_PRIVS)` and `seccomp(SECCOMP_SET_MODE_FILTER,
//!   SECCOMP_FILTER_FLAG_NEW_LISTENER)` with a six-instruction BPF program that sends
//!   `getdents64` (of the native architecture) to the listener and allows everything else;
//! - [`receive`], [`respond`] and [`still_waiting`]: the `SECCOMP_IOCTL_NOTIF_RECV`,
//!   `_SEND` and `_ID_VALID` ioctls on that listener.
//!
//! Everything else the supervisor does (fetching the caller's file with `pidfd_getfd`,
//! reading the folder, writing into the caller's memory through `/proc/PID/mem`) is safe
//! code in the builder. Needs Linux 5.5 or later (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The `AUDIT_ARCH_*` value of the architecture this crate is built for: a call made
/// through another ABI (a 32-bit one, say) has other numbers and is not intercepted.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;
#[cfg(target_arch = "riscv64")]
const AUDIT_ARCH: u32 = 0xc000_00f3;

/// The intercepted system call.
pub const GETDENTS64: i32 = libc::SYS_getdents64 as i32;

// Offsets into `struct seccomp_data` (linux/seccomp.h): `int nr; __u32 arch; ...`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter { code: code as u16, jt: 0, jf: 0, k }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code: code as u16, jt, jf, k }
}

/// The filter: `getdents64` of the native ABI goes to the listener, everything else runs.
fn program() -> [libc::sock_filter; 6] {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    [
        stmt(BPF_LD | BPF_W | BPF_ABS, DATA_ARCH),
        jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH, 0, 3),
        stmt(BPF_LD | BPF_W | BPF_ABS, DATA_NR),
        jump(BPF_JMP | BPF_JEQ | BPF_K, GETDENTS64 as u32, 0, 1),
        stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_USER_NOTIF),
        stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW),
    ]
}

/// Installs the filter on the calling thread (and so on every thread and process it starts
/// afterwards, and on what it execs), and returns the listener, close-on-exec. Sets
/// no_new_privs, which the kernel requires of a process without CAP_SYS_ADMIN and which a
/// build does not notice. Call it while the process has one thread.
///
/// From this call until the listener is served, a `getdents64` of this process blocks: hand
/// the listener over before listing any folder.
pub fn install() -> io::Result<OwnedFd> {
    let prog = program();
    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr().cast_mut() };
    // SAFETY: prctl with these integer arguments reads and writes no memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fprog` points at `prog`, both alive across the call; the kernel copies the
    // program and keeps no pointer into it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new file descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: fcntl on a descriptor we own, with integer arguments.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// One intercepted call: who made it and with what arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// The notification's cookie, for [`respond`] and [`still_waiting`].
    pub id: u64,
    /// The thread that made the call (a thread id, in the listener's pid namespace).
    pub tid: u32,
    /// The system call number ([`GETDENTS64`]).
    pub nr: i32,
    pub args: [u64; 6],
}

/// The three listener ioctls, each with the one argument type its request number encodes.
enum Ioctl<'a> {
    Receive(&'a mut libc::seccomp_notif),
    Send(&'a mut libc::seccomp_notif_resp),
    IdValid(&'a mut u64),
}

fn ioctl(listener: BorrowedFd, call: Ioctl) -> io::Result<()> {
    let fd = listener.as_raw_fd();
    // SAFETY: each request is given a pointer to the type it reads or writes (see
    // linux/seccomp.h: RECV writes a seccomp_notif, SEND reads a seccomp_notif_resp,
    // ID_VALID reads a u64), borrowed mutably for the length of the call.
    let r = unsafe {
        match call {
            Ioctl::Receive(p) => {
                libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, p as *mut libc::seccomp_notif)
            }
            Ioctl::Send(p) => {
                libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND, p as *mut libc::seccomp_notif_resp)
            }
            Ioctl::IdValid(p) => libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_ID_VALID, p as *mut u64),
        }
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits for the next intercepted call. `ENOENT` means the caller went away (a signal)
/// between the notification and this call: wait again.
pub fn receive(listener: BorrowedFd) -> io::Result<Call> {
    // SAFETY: seccomp_notif is plain integers; all-zero is valid, and the kernel requires
    // the buffer zeroed.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    ioctl(listener, Ioctl::Receive(&mut req))?;
    Ok(Call { id: req.id, tid: req.pid, nr: req.data.nr, args: req.data.args })
}

/// How an intercepted call ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// It returns this value.
    Value(i64),
    /// It fails with this errno.
    Error(i32),
    /// The kernel runs it as if it had not been intercepted.
    Continue,
}

/// Ends the call `id` as `answer` says. `ENOENT`: the caller is gone (nothing to do).
pub fn respond(listener: BorrowedFd, id: u64, answer: Answer) -> io::Result<()> {
    let (val, error, flags) = match answer {
        Answer::Value(v) => (v, 0, 0),
        Answer::Error(e) => (0, -e.abs(), 0),
        Answer::Continue => (0, 0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32),
    };
    ioctl(listener, Ioctl::Send(&mut libc::seccomp_notif_resp { id, val, error, flags }))
}

/// Whether call `id` is still waiting for its answer: checked after looking the caller up
/// by its thread id, so that the lookup cannot have found another process that took the
/// id over.
pub fn still_waiting(listener: BorrowedFd, id: u64) -> bool {
    ioctl(listener, Ioctl::IdValid(&mut { id })).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_sends_only_native_getdents64_to_the_listener() {
        let p = program();
        // A tiny interpreter of the instructions used, run on a few calls.
        let run = |arch: u32, nr: u32| -> u32 {
            let mut pc = 0usize;
            let mut acc = 0u32;
            loop {
                let i = p[pc];
                match i.code as u32 {
                    c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                        acc = if i.k == DATA_ARCH { arch } else { nr };
                        pc += 1;
                    }
                    c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => {
                        pc += 1 + if acc == i.k { i.jt } else { i.jf } as usize;
                    }
                    c if c == libc::BPF_RET | libc::BPF_K => return i.k,
                    c => panic!("unexpected instruction {c:#x}"),
                }
            }
        };
        assert_eq!(run(AUDIT_ARCH, GETDENTS64 as u32), libc::SECCOMP_RET_USER_NOTIF);
        assert_eq!(run(AUDIT_ARCH, libc::SYS_openat as u32), libc::SECCOMP_RET_ALLOW);
        assert_eq!(run(0x4000_0003, GETDENTS64 as u32), libc::SECCOMP_RET_ALLOW);
    }
}
