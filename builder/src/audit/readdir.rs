//! The readdir variation: every folder a child build lists, it gets in the opposite order,
//! because the audit answers the build's `getdents64` calls itself.
//!
//! ## How
//!
//! The build is started through a hidden subcommand of this binary, [`SUBCOMMAND`]:
//! `reprodisk audit-readdir-child NAME -- reprodisk build ...`. It connects to the audit's
//! abstract Unix socket NAME, installs a seccomp filter that turns every `getdents64` of
//! the process (its threads and anything it starts, through exec) into a user notification
//! ([`reprodisk_seccomp::install`]), sends the filter's listener over the socket and execs the
//! build. The audit accepts the connection only from the process it started (`SO_PEERCRED`:
//! every step of the chain, `unshare`, `sh`, `setpriv`, `env`, execs, so the pid is the
//! child's), and a [`Supervisor`] thread answers each call:
//!
//! - It takes a duplicate of the caller's file descriptor (`pidfd_getfd`): the same open
//!   file, so the same position.
//! - At position 0 (a new listing, or a rewind) it reads the whole folder itself, keeps the
//!   entries in reverse order (`.` and `..` included: they come last) under a new token `T`,
//!   and answers from index 0.
//! - At position `T << 32 | i` it answers from entry `i` of listing `T`: as many whole
//!   records as the caller's buffer holds, each with `d_off = T << 32 | i + 1`, written into
//!   the caller's memory through `/proc/PID/mem`. It then moves the shared position to just
//!   past them, so the caller's next call (and `telldir`/`seekdir`) goes on from there. At
//!   the end it answers 0. The latest [`KEPT_LISTINGS`] listings are kept, so `seekdir` back
//!   into one works after its end too, and memory stays bounded.
//! - A position it did not make (a build that seeks on its own), and a folder whose position
//!   cannot be set, are left to the kernel (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`) and counted
//!   in [`Stats::passed`]. Errors the kernel would give (`EBADF`, `ENOTDIR`, a buffer too small
//!   for one record: `EINVAL`, an unwritable buffer: `EFAULT`) are given.
//!
//! This replaces reversed copies of the inputs bind-mounted over them: those cost a copy of
//! every input file (about 2 s of CPU and 640 MB of memory for /usr/share, on every audit),
//! needed a mount namespace and room in /dev/shm, and reversed only the folders the spec
//! names. Here nothing is copied, the files the build reads are the inputs themselves, and
//! every folder the build lists, wherever it is, is reversed.
//!
//! Needs Linux 5.6 (`pidfd_getfd`) and seccomp user notification; [`probe`] checks that a
//! child really sees a folder reversed before an audit counts on it.

use reprodisk_seccomp::{Answer, Call, GETDENTS64};
use rustix::event::{PollFd, PollFlags, poll};
use rustix::fs::{FileType, RawDir, SeekFrom, seek};
use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, pidfd_getfd, pidfd_open};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::FileExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The hidden subcommand that installs the filter in a child build (see the module doc).
pub const SUBCOMMAND: &str = "audit-readdir-child";

/// At most this much of a caller's buffer is filled per call.
const MAX_ANSWER: usize = 1 << 20;

/// Listings kept for later calls; the oldest is forgotten beyond this many (a seek into a
/// forgotten one goes to the kernel, and is counted in [`Stats::passed`]).
const KEPT_LISTINGS: usize = 1024;

/// What a supervisor did for one build.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Listings answered in reverse order.
    pub listings: u64,
    /// Of those, listings of two or more entries besides `.` and `..`, whose order changed.
    pub reordered: u64,
    /// Calls left to the kernel, in its own order (see the module doc).
    pub passed: u64,
}

/// The child side, run by [`SUBCOMMAND`]: connects to `socket`, installs the filter, hands
/// the listener over and execs `command`. Returns only on error.
pub fn child_main(socket: &str, command: &[OsString]) -> anyhow::Error {
    let run = || -> anyhow::Result<std::convert::Infallible> {
        let Some((program, args)) = command.split_first() else {
            anyhow::bail!("no command to run after `--`");
        };
        let addr = SocketAddr::from_abstract_name(socket.as_bytes())?;
        let stream = UnixStream::connect_addr(&addr)
            .map_err(|e| anyhow::anyhow!("connecting to the audit's socket `{socket}`: {e}"))?;
        let listener = reprodisk_seccomp::install().map_err(|e| {
            anyhow::anyhow!("installing the seccomp filter (Linux 5.6 or later is needed): {e}")
        })?;
        // From here until the audit holds the listener, listing a folder would block: send
        // it first, then exec (neither lists one).
        let fds = [listener.as_fd()];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
        control.push(rustix::net::SendAncillaryMessage::ScmRights(&fds));
        rustix::net::sendmsg(
            &stream,
            &[std::io::IoSlice::new(b"L")],
            &mut control,
            rustix::net::SendFlags::empty(),
        )
        .map_err(|e| anyhow::anyhow!("handing the listener to the audit: {e}"))?;
        drop(listener);
        // The audit answers once it holds the listener. Without that answer the build's
        // first listing would wait forever; with it, a failure is an error here instead.
        let mut ack = [0u8; 1];
        std::io::Read::read_exact(&mut &stream, &mut ack)
            .map_err(|e| anyhow::anyhow!("waiting for the audit to take the listener: {e}"))?;
        drop(stream);
        Err(std::process::Command::new(program).args(args).exec().into())
    };
    match run() {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

/// The audit's side for one child build: its socket, then its supervisor.
pub struct Supervisor {
    name: String,
    socket: UnixListener,
}

impl Supervisor {
    /// A new abstract socket, named after this process and a counter.
    pub fn new() -> std::io::Result<Supervisor> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "reprodisk-audit-readdir-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let socket = UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes())?)?;
        socket.set_nonblocking(true)?;
        Ok(Supervisor { name, socket })
    }

    /// The socket's name, for the child's command line.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Answers the listing calls of process `pid` (the child as started) until it has
    /// exited or `done` is set (the child has been waited for).
    pub fn serve(self, pid: u32, done: &AtomicBool) -> Result<Stats, String> {
        let listener = self.accept(pid, done)?;
        let mut state = State::default();
        let tick = rustix::event::Timespec { tv_sec: 0, tv_nsec: 100_000_000 };
        loop {
            let mut fds = [PollFd::new(&listener, PollFlags::IN)];
            match poll(&mut fds, Some(&tick)) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(format!("waiting for the build's calls: {e}")),
            }
            let revents = fds[0].revents();
            if revents.contains(PollFlags::IN) {
                let call = match reprodisk_seccomp::receive(listener.as_fd()) {
                    Ok(c) => c,
                    // The caller was interrupted before we took its call.
                    Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOENT.raw_os_error()) => continue,
                    Err(e) => return Err(format!("receiving the build's call: {e}")),
                };
                if let Some(answer) = state.answer(&listener, &call) {
                    // ENOENT: the caller is gone; nothing waits for the answer.
                    let _ = reprodisk_seccomp::respond(listener.as_fd(), call.id, answer);
                }
            } else if revents.intersects(PollFlags::HUP | PollFlags::ERR) || done.load(Ordering::Acquire) {
                // HUP: no process uses the filter any more.
                return Ok(state.stats);
            }
        }
    }

    /// Takes the listener from the child, refusing any other process that connects.
    fn accept(&self, pid: u32, done: &AtomicBool) -> Result<OwnedFd, String> {
        let tick = rustix::event::Timespec { tv_sec: 0, tv_nsec: 50_000_000 };
        loop {
            match self.socket.accept() {
                Ok((stream, _)) => {
                    let peer = rustix::net::sockopt::socket_peercred(&stream).map_err(|e| e.to_string())?;
                    if peer.pid.as_raw_nonzero().get() as u32 != pid {
                        continue;
                    }
                    return take_listener(&stream);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if done.load(Ordering::Acquire) {
                        return Err("the build ended before it handed over its listings".into());
                    }
                    let mut fds = [PollFd::new(&self.socket, PollFlags::IN)];
                    let _ = poll(&mut fds, Some(&tick));
                }
                Err(e) => return Err(format!("accepting the build's connection: {e}")),
            }
        }
    }
}

/// Receives the listener sent on `stream` and acknowledges it.
fn take_listener(stream: &UnixStream) -> Result<OwnedFd, String> {
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    rustix::net::recvmsg(
        stream,
        &mut [std::io::IoSliceMut::new(&mut byte)],
        &mut control,
        rustix::net::RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(|e| format!("receiving the build's listener: {e}"))?;
    let listener = control
        .drain()
        .find_map(|m| match m {
            rustix::net::RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
            _ => None,
        })
        .ok_or("the build sent no listener")?;
    std::io::Write::write_all(&mut &*stream, b"A").map_err(|e| format!("acknowledging the listener: {e}"))?;
    Ok(listener)
}

/// One entry of a listing, as `getdents64` gives it.
struct Entry {
    ino: u64,
    kind: u8,
    name: Vec<u8>,
}

/// A process whose calls were answered: a handle on it and its memory.
struct Process {
    pidfd: OwnedFd,
    mem: File,
}

#[derive(Default)]
struct State {
    /// Listings by token, in the order they are answered (reversed).
    listings: HashMap<u32, Vec<Entry>>,
    /// Their tokens, oldest first.
    order: std::collections::VecDeque<u32>,
    next: u32,
    processes: HashMap<u32, Process>,
    stats: Stats,
}

fn position(token: u32, index: usize) -> u64 {
    (u64::from(token) << 32) | index as u64
}

impl State {
    /// The answer to `call`, or `None` when the caller is gone.
    fn answer(&mut self, listener: &OwnedFd, call: &Call) -> Option<Answer> {
        if call.nr != GETDENTS64 {
            return Some(Answer::Continue);
        }
        let Ok(tgid) = thread_group(call.tid) else { return Some(self.pass()) };
        let process = match self.processes.entry(tgid) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => match open_process(tgid) {
                Ok(p) => v.insert(p),
                Err(_) => {
                    self.stats.passed += 1;
                    return Some(Answer::Continue);
                }
            },
        };
        let mut got = pidfd_getfd(&process.pidfd, call.args[0] as i32, PidfdGetfdFlags::empty());
        if matches!(got, Err(rustix::io::Errno::SRCH)) {
            // The process we knew by this id has ended and another took the id over.
            match open_process(tgid) {
                Ok(p) => {
                    *process = p;
                    got = pidfd_getfd(&process.pidfd, call.args[0] as i32, PidfdGetfdFlags::empty());
                }
                Err(_) => return Some(self.pass()),
            }
        }
        let fd = match got {
            Ok(fd) => fd,
            Err(rustix::io::Errno::BADF) => {
                return Some(Answer::Error(rustix::io::Errno::BADF.raw_os_error()));
            }
            Err(_) => return Some(self.pass()),
        };
        // The thread id was looked up after the call was made: make sure it is still ours.
        if !reprodisk_seccomp::still_waiting(listener.as_fd(), call.id) {
            return None;
        }
        let Ok(pos) = seek(&fd, SeekFrom::Current(0)) else { return Some(self.pass()) };
        let (token, from) = if pos == 0 {
            let mut entries = match read_all(&fd) {
                Ok(e) => e,
                Err(e) => {
                    let _ = seek(&fd, SeekFrom::Start(0));
                    return Some(Answer::Error(e.raw_os_error()));
                }
            };
            entries.reverse();
            self.next += 1;
            let token = self.next;
            self.listings.insert(token, entries);
            // Kept after the end too (a caller may seekdir back into it), but only the latest
            // few: memory stays bounded however many folders a build lists.
            self.order.push_back(token);
            if self.order.len() > KEPT_LISTINGS
                && let Some(old) = self.order.pop_front()
            {
                self.listings.remove(&old);
            }
            (token, 0)
        } else {
            let token = (pos >> 32) as u32;
            let from = (pos & 0xffff_ffff) as usize;
            match self.listings.get(&token) {
                Some(l) if from <= l.len() => (token, from),
                _ => return Some(self.pass()),
            }
        };
        let entries = &self.listings[&token];
        let room = (call.args[2] as usize).min(MAX_ANSWER);
        let mut out = Vec::new();
        let mut next = from;
        while let Some(e) = entries.get(next) {
            let record = record(e, position(token, next + 1));
            if out.len() + record.len() > room {
                break;
            }
            out.extend_from_slice(&record);
            next += 1;
        }
        if out.is_empty() && next < entries.len() {
            return Some(Answer::Error(rustix::io::Errno::INVAL.raw_os_error()));
        }
        if seek(&fd, SeekFrom::Start(position(token, next))).is_err() {
            // This folder's position cannot be ours: let the kernel list it, from the start.
            let _ = seek(&fd, SeekFrom::Start(pos));
            return Some(self.pass());
        }
        if self.processes[&tgid].mem.write_all_at(&out, call.args[1]).is_err() {
            // /proc/PID/mem says EIO for an address the caller cannot write; the kernel's
            // getdents64 says EFAULT.
            let _ = seek(&fd, SeekFrom::Start(pos));
            return Some(Answer::Error(rustix::io::Errno::FAULT.raw_os_error()));
        }
        if from == 0 && pos == 0 {
            // A listing answered in reverse from its start: counted once it really was.
            self.stats.listings += 1;
            if entries.iter().filter(|e| e.name != b"." && e.name != b"..").count() >= 2 {
                self.stats.reordered += 1;
            }
        }
        Some(Answer::Value(out.len() as i64))
    }

    fn pass(&mut self) -> Answer {
        self.stats.passed += 1;
        Answer::Continue
    }
}

/// The process a thread belongs to, from `/proc/TID/status`.
fn thread_group(tid: u32) -> std::io::Result<u32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("no Tgid line"))
}

fn open_process(tgid: u32) -> std::io::Result<Process> {
    let pid = Pid::from_raw(tgid as i32).ok_or_else(|| std::io::Error::other("pid 0"))?;
    let pidfd = pidfd_open(pid, PidfdFlags::empty())?;
    let mem = std::fs::OpenOptions::new().read(true).write(true).open(format!("/proc/{tgid}/mem"))?;
    Ok(Process { pidfd, mem })
}

/// Every entry of the folder open as `fd`, from its start, in the kernel's order.
fn read_all(fd: &OwnedFd) -> Result<Vec<Entry>, rustix::io::Errno> {
    let mut buf = vec![MaybeUninit::<u8>::uninit(); 64 << 10];
    let mut dir = RawDir::new(fd, &mut buf);
    let mut out = Vec::new();
    while let Some(e) = dir.next() {
        let e = e?;
        out.push(Entry {
            ino: e.ino(),
            kind: dirent_type(e.file_type()),
            name: e.file_name().to_bytes().to_vec(),
        });
    }
    Ok(out)
}

/// The `d_type` of a `getdents64` record.
fn dirent_type(t: FileType) -> u8 {
    match t {
        FileType::Fifo => 1,
        FileType::CharacterDevice => 2,
        FileType::Directory => 4,
        FileType::BlockDevice => 6,
        FileType::RegularFile => 8,
        FileType::Symlink => 10,
        FileType::Socket => 12,
        _ => 0,
    }
}

/// A `struct linux_dirent64`: `d_ino`, `d_off`, `d_reclen`, `d_type`, the name and its NUL,
/// padded to 8 bytes.
fn record(e: &Entry, off: u64) -> Vec<u8> {
    let len = (8 + 8 + 2 + 1 + e.name.len() + 1).next_multiple_of(8);
    let mut r = Vec::with_capacity(len);
    r.extend_from_slice(&e.ino.to_ne_bytes());
    r.extend_from_slice(&off.to_ne_bytes());
    r.extend_from_slice(&(len as u16).to_ne_bytes());
    r.push(e.kind);
    r.extend_from_slice(&e.name);
    r.resize(len, 0);
    r
}

/// Runs `command` (argv) under a supervisor, as a build would be, and returns its stdout
/// and what the supervisor did.
pub fn run_supervised(exe: &Path, command: &[&std::ffi::OsStr]) -> Result<(Vec<u8>, Stats), String> {
    let sup = Supervisor::new().map_err(|e| format!("creating the audit's socket: {e}"))?;
    let mut c = std::process::Command::new(exe);
    c.arg(SUBCOMMAND).arg(sup.name()).arg("--").args(command);
    c.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = c.spawn().map_err(|e| format!("starting `{}`: {e}", exe.display()))?;
    let pid = child.id();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let served = s.spawn(|| sup.serve(pid, &done));
        let out = child.wait_with_output();
        done.store(true, Ordering::Release);
        let stats = served.join().map_err(|_| "the supervisor panicked".to_string())?;
        let out = out.map_err(|e| format!("waiting for the child: {e}"))?;
        if !out.status.success() {
            return Err(format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok((out.stdout, stats?))
    })
}

/// Checks, once per audit, that a child really lists a folder in reverse: `ls -f` of a
/// folder of four names, supervised, against the kernel's own order.
pub fn probe() -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding the reprodisk binary: {e}"))?;
    let dir = tempfile::tempdir().map_err(|e| format!("creating a probe folder: {e}"))?;
    for n in ["m", "c", "x", "a"] {
        std::fs::write(dir.path().join(n), b"").map_err(|e| format!("creating a probe file: {e}"))?;
    }
    let kernel = {
        let fd = rustix::fs::open(
            dir.path(),
            rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            0.into(),
        )
        .map_err(|e| format!("opening the probe folder: {e}"))?;
        read_all(&fd).map_err(|e| format!("listing the probe folder: {e}"))?
    };
    let (out, _) =
        run_supervised(&exe, &["ls".as_ref(), "-f".as_ref(), dir.path().as_os_str()]).map_err(|e| {
            format!(
                "a supervised `ls -f` failed ({e}): seccomp user notification (Linux 5.6 or later) is needed"
            )
        })?;
    let seen: Vec<&[u8]> = out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    let expected: Vec<&[u8]> = kernel.iter().rev().map(|e| e.name.as_slice()).collect();
    if seen != expected {
        return Err(format!(
            "a supervised `ls -f` listed {:?}, not the reverse of the kernel's order {:?}",
            seen.iter().map(|s| String::from_utf8_lossy(s)).collect::<Vec<_>>(),
            kernel.iter().map(|e| String::from_utf8_lossy(&e.name)).collect::<Vec<_>>()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_aligned_and_carry_their_position() {
        let e = Entry { ino: 7, kind: 8, name: b"abcde".to_vec() };
        let r = record(&e, position(3, 9));
        assert_eq!(r.len(), 32, "8 + 8 + 2 + 1 + 5 + NUL = 25, padded to 32");
        assert_eq!(u64::from_ne_bytes(r[0..8].try_into().unwrap()), 7);
        assert_eq!(u64::from_ne_bytes(r[8..16].try_into().unwrap()), 3 << 32 | 9);
        assert_eq!(u16::from_ne_bytes(r[16..18].try_into().unwrap()), 32);
        assert_eq!(r[18], 8);
        assert_eq!(&r[19..25], b"abcde\0");
        let exact = Entry { ino: 1, kind: 4, name: b"abcd".to_vec() };
        assert_eq!(record(&exact, 1).len(), 24, "19 + 4 + NUL = 24: no padding");
    }
}
