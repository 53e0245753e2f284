//! Temporary paths a build must not leave behind, removed on SIGINT, SIGTERM and SIGHUP.
//!
//! A build registers every temporary path it creates (the output stage folder, the scratch
//! file of a compressed archive) with [`register`] and drops the returned [`Guard`] when the
//! path is gone or has been committed. [`install_signal_handlers`] starts one thread that
//! waits for the three signals (through `signal-hook`'s safe iterator, so the builder stays
//! free of `unsafe`); on a signal it takes the registry's lock, removes every registered path
//! and exits with 128 + the signal number (130, 143, 129), as a shell reports a process
//! killed by that signal.
//!
//! Child processes that create temporary paths of their own (the audit's builds) are
//! registered with [`register_child`]: on a signal they are sent SIGTERM and waited for
//! (SIGKILL after [`CHILD_GRACE`]) before any path is removed, so a child still running cannot
//! create a folder again inside one the clean-up has just removed.
//!
//! The lock is also what makes a commit of the output set atomic with respect to signals:
//! [`crate::output::Stage::commit`] holds it ([`hold`]) while it renames files into place, so
//! a signal is acted on either before the first rename (the stage is removed, the old set
//! stays) or after the last (the new set is in place). SIGKILL cannot be caught; what it
//! leaves is removed by the next build in the same folder (see `output.rs`).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Registered paths, by registration number (so a guard removes exactly its own entry).
static REGISTRY: Mutex<Vec<(u64, PathBuf)>> = Mutex::new(Vec::new());
static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Registered child processes, by registration number.
static CHILDREN: Mutex<Vec<(u64, u32)>> = Mutex::new(Vec::new());

/// How long a registered child gets to clean up after SIGTERM before it is killed.
pub const CHILD_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Keeps a child process registered for termination on a signal until dropped.
#[derive(Debug)]
pub struct ChildGuard {
    id: u64,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        children().retain(|(id, _)| *id != self.id);
    }
}

fn children() -> MutexGuard<'static, Vec<(u64, u32)>> {
    CHILDREN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Registers a child process of this one to stop (and reap) before the clean-up removes paths.
pub fn register_child(pid: u32) -> ChildGuard {
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    children().push((id, pid));
    ChildGuard { id }
}

/// Sends SIGTERM to every registered child and reaps each, killing those that outlive the grace.
fn stop_children() {
    use rustix::process::{Pid, Signal, WaitOptions, kill_process, waitpid};
    let pids: Vec<Pid> =
        children().iter().filter_map(|(_, pid)| i32::try_from(*pid).ok().and_then(Pid::from_raw)).collect();
    for &pid in &pids {
        // An error means the child is already gone; nothing to stop.
        let _ = kill_process(pid, Signal::TERM);
    }
    let deadline = std::time::Instant::now() + CHILD_GRACE;
    for &pid in &pids {
        loop {
            match waitpid(Some(pid), WaitOptions::NOHANG) {
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = kill_process(pid, Signal::KILL);
                    let _ = waitpid(Some(pid), WaitOptions::empty());
                    break;
                }
                // Reaped now, or already reaped by its own waiter (ECHILD).
                Ok(Some(_)) | Err(_) => break,
            }
        }
    }
}

/// Keeps `path` registered for removal on a signal until dropped.
#[derive(Debug)]
pub struct Guard {
    id: u64,
}

impl Drop for Guard {
    fn drop(&mut self) {
        lock().retain(|(id, _)| *id != self.id);
    }
}

fn lock() -> MutexGuard<'static, Vec<(u64, PathBuf)>> {
    // A panic while holding the lock leaves a list that is still valid: keep using it.
    REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Registers a file or folder to remove if the process is interrupted.
pub fn register(path: &Path) -> Guard {
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    lock().push((id, path.to_path_buf()));
    Guard { id }
}

/// Holds off signal clean-up while the returned guard lives (for a commit of renames).
pub fn hold() -> MutexGuard<'static, Vec<(u64, PathBuf)>> {
    lock()
}

/// Removes a registered path: a folder with everything in it, or a file.
fn remove(path: &Path) {
    let result = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => Ok(()),
    };
    if let Err(e) = result {
        eprintln!("reprodisk: could not remove `{}`: {e}", path.display());
    }
}

/// Starts the thread that cleans up and exits on SIGINT, SIGTERM or SIGHUP. Call it once,
/// from the binary; library users keep their own signal handling.
pub fn install_signal_handlers() -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new().name("reprodisk-signals".into()).spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let registry = lock();
            stop_children();
            for (_, path) in registry.iter().rev() {
                remove(path);
            }
            let name = match sig {
                SIGINT => "SIGINT",
                SIGTERM => "SIGTERM",
                _ => "SIGHUP",
            };
            eprintln!("\nreprodisk: interrupted by {name}; temporary files removed");
            // Exit while still holding the lock, so no commit can start after the clean-up.
            std::process::exit(128 + sig);
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_unregister_only_their_path() {
        let a = register(Path::new("/nonexistent/a"));
        let b = register(Path::new("/nonexistent/b"));
        drop(a);
        let names: Vec<PathBuf> = hold().iter().map(|(_, p)| p.clone()).collect();
        assert!(names.contains(&PathBuf::from("/nonexistent/b")));
        assert!(!names.contains(&PathBuf::from("/nonexistent/a")));
        drop(b);
    }
}
