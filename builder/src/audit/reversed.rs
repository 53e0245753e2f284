//! The readdir variation's reversed copies of directory inputs: same bytes, modes, owners,
//! times, xattrs and hard links, created in the opposite order.

use super::runner::{remove_build, room};
use super::variations::Prepared;
use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// How a filesystem orders `readdir` relative to the order entries were created in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DirOrder {
    Creation,
    NewestFirst,
    Other,
}

fn probe_dir_order(dir: &Path) -> std::io::Result<DirOrder> {
    let probe = dir.join("order-probe");
    std::fs::create_dir(&probe)?;
    let names = ["m", "c", "x", "a"];
    for n in names {
        std::fs::write(probe.join(n), b"")?;
    }
    let seen: Vec<String> = std::fs::read_dir(&probe)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into())
        .collect();
    std::fs::remove_dir_all(&probe)?;
    let mut rev = names.to_vec();
    rev.reverse();
    Ok(if seen == names {
        DirOrder::Creation
    } else if seen == rev {
        DirOrder::NewestFirst
    } else {
        DirOrder::Other
    })
}

/// The readdir variation's copies: for every directory input, a copy whose `readdir` order is
/// the opposite of the original's, with the same modes, owners, times, xattrs and hard links.
#[derive(Debug, Clone)]
pub struct ReversedCopies {
    pub prepared: Prepared,
    /// Folders with at least two entries, and how many of them list in another order.
    pub dirs: u64,
    pub reordered: u64,
    pub staged_in: PathBuf,
    /// Removes the copies on SIGINT, SIGTERM and SIGHUP.
    pub _signals: std::sync::Arc<crate::cleanup::Guard>,
}

/// Copies each of `inputs` (folders) into `work` (or a tmpfs, where creation order decides
/// `readdir` order, when one has room) in reversed order.
pub fn reversed_copies(inputs: &[PathBuf], work: &Path) -> Result<ReversedCopies, String> {
    let size: u64 = inputs.iter().map(|p| tree_bytes(p)).sum();
    let shm = Path::new("/dev/shm");
    let stage_root = if shm.is_dir() && room(shm) > size.saturating_mul(2) + (256 << 20) {
        tempfile::Builder::new()
            .prefix("reprodisk-audit-readdir-")
            .tempdir_in(shm)
            .map(|t| t.keep())
            .map_err(|e| format!("creating a folder in /dev/shm: {e}"))?
    } else {
        let p = work.join("readdir-copies");
        std::fs::create_dir_all(&p).map_err(|e| format!("creating `{}`: {e}", p.display()))?;
        p
    };
    let signals = std::sync::Arc::new(crate::cleanup::register(&stage_root));
    std::fs::set_permissions(&stage_root, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("opening up `{}`: {e}", stage_root.display()))?;
    let copy_all = || -> Result<(Copier, Vec<(PathBuf, PathBuf)>), String> {
        let order = probe_dir_order(&stage_root).map_err(|e| format!("probing readdir order: {e}"))?;
        let ids = created_ids(&stage_root).map_err(|e| format!("probing file ownership: {e}"))?;
        let mut copier = Copier { order, links: HashMap::new(), dirs: 0, reordered: 0, ids };
        let mut binds = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            let dst = stage_root.join(format!("input-{i}"));
            copier
                .copy(input, &dst)
                .map_err(|e| format!("copying `{}` in reverse order: {e}", input.display()))?;
            binds.push((dst, input.clone()));
        }
        Ok((copier, binds))
    };
    let (copier, mut binds) = match copy_all() {
        Ok(done) => done,
        Err(e) => {
            remove_build(&stage_root);
            return Err(e);
        }
    };
    // Outer folders first, so that a nested input's copy is mounted over the outer copy.
    binds.sort_by_key(|(_, orig)| orig.components().count());
    Ok(ReversedCopies {
        prepared: Prepared { faketime: None, binds },
        dirs: copier.dirs,
        reordered: copier.reordered,
        staged_in: stage_root,
        _signals: signals,
    })
}

/// Who owns what this process creates in `dir` (its euid, and its egid unless the mount or
/// a set-gid folder gives the folder's group).
fn created_ids(dir: &Path) -> std::io::Result<(u32, u32)> {
    let probe = dir.join("owner-probe");
    std::fs::write(&probe, b"")?;
    let meta = std::fs::symlink_metadata(&probe);
    std::fs::remove_file(&probe)?;
    let meta = meta?;
    Ok((meta.uid(), meta.gid()))
}

pub fn tree_bytes(p: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

struct Copier {
    order: DirOrder,
    links: HashMap<(u64, u64), PathBuf>,
    dirs: u64,
    reordered: u64,
    /// Who owns what the copier creates (see [`created_ids`]). Every folder of a copy gets
    /// its mode, set-gid bit included, only after its entries are made, so this holds for all.
    ids: (u32, u32),
}

impl Copier {
    fn copy(&mut self, src: &Path, dst: &Path) -> std::io::Result<()> {
        let meta = std::fs::symlink_metadata(src)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            std::fs::create_dir(dst)?;
            let original: Vec<_> =
                std::fs::read_dir(src)?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
            // Create in the order that makes this filesystem list the opposite of `original`.
            let mut create = original.clone();
            if self.order != DirOrder::NewestFirst {
                create.reverse();
            }
            for name in &create {
                self.copy(&src.join(name), &dst.join(name))?;
            }
            if original.len() >= 2 {
                self.dirs += 1;
                let copied: Vec<_> =
                    std::fs::read_dir(dst)?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
                if copied != original {
                    self.reordered += 1;
                }
            }
        } else if ft.is_file() {
            let key = (meta.dev(), meta.ino());
            if meta.nlink() > 1 {
                if let Some(first) = self.links.get(&key) {
                    return std::fs::hard_link(first, dst);
                }
                self.links.insert(key, dst.to_path_buf());
            }
            std::fs::copy(src, dst)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(src)?, dst)?;
        } else {
            // FIFOs, sockets and devices: GNU cp makes them like the original.
            let o = Command::new("cp").arg("-a").arg(src).arg(dst).output()?;
            if !o.status.success() {
                return Err(std::io::Error::other(String::from_utf8_lossy(&o.stderr).trim().to_string()));
            }
        }
        // The copy is ours: chown only when the original's owner is someone else (a
        // system tree copied as root mostly is not), saving a system call per file.
        let chowned = (meta.uid(), meta.gid()) != self.ids;
        if chowned {
            std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()))?;
        }
        // `std::fs::copy` gave a file the original's mode; a folder or a chown (which
        // clears set-id bits) needs it set again.
        if !ft.is_symlink() && (chowned || !ft.is_file()) {
            std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
        for name in xattr::list(src)? {
            if let Some(value) = xattr::get(src, &name)? {
                xattr::set(dst, &name, &value)?;
            }
        }
        let ts = |s: i64, ns: i64| rustix::fs::Timespec { tv_sec: s, tv_nsec: ns as _ };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            dst,
            &rustix::fs::Timestamps {
                last_access: ts(meta.atime(), meta.atime_nsec()),
                last_modification: ts(meta.mtime(), meta.mtime_nsec()),
            },
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reversed_copy_keeps_everything_but_order() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("d")).unwrap();
        for n in ["b", "a", "c", "d/z", "d/y"] {
            std::fs::write(src.join(n), n).unwrap();
        }
        std::fs::hard_link(src.join("a"), src.join("d/a-link")).unwrap();
        std::fs::set_permissions(src.join("b"), std::fs::Permissions::from_mode(0o4751)).unwrap();
        std::os::unix::fs::symlink("a", src.join("s")).unwrap();
        // Another owner (root can give one): the copy is chowned, and keeps the set-id bits.
        let root = rustix::process::geteuid().is_root();
        if root {
            std::os::unix::fs::lchown(src.join("c"), Some(1234), Some(4321)).unwrap();
            std::fs::set_permissions(src.join("c"), std::fs::Permissions::from_mode(0o6755)).unwrap();
            std::os::unix::fs::lchown(src.join("d"), Some(1234), Some(4321)).unwrap();
        }
        let c = reversed_copies(std::slice::from_ref(&src), t.path()).unwrap();
        let (copy, orig) = &c.prepared.binds[0];
        assert_eq!(orig, &src);
        for n in ["b", "a", "c", "d/z", "d/y", "d/a-link", "d"] {
            let (m1, m2) =
                (std::fs::metadata(src.join(n)).unwrap(), std::fs::metadata(copy.join(n)).unwrap());
            if m1.is_file() {
                assert_eq!(std::fs::read(src.join(n)).unwrap(), std::fs::read(copy.join(n)).unwrap());
            }
            assert_eq!(
                (m1.mode(), m1.uid(), m1.gid(), m1.mtime(), m1.mtime_nsec()),
                (m2.mode(), m2.uid(), m2.gid(), m2.mtime(), m2.mtime_nsec()),
                "{n}"
            );
        }
        if root {
            assert_eq!(std::fs::metadata(copy.join("c")).unwrap().mode() & 0o7777, 0o6755);
        }
        assert_eq!(std::fs::read_link(copy.join("s")).unwrap(), Path::new("a"));
        assert_eq!(
            std::fs::metadata(copy.join("a")).unwrap().ino(),
            std::fs::metadata(copy.join("d/a-link")).unwrap().ino()
        );
        assert_eq!(c.dirs, 2);
        std::fs::remove_dir_all(&c.staged_in).unwrap();
    }
}
