//! Where boot-loader inputs come from: files of Debian packages found in a package root list, each recorded with its sha256.
//!
//! The builder never uses what happens to be installed on the host unless nothing else is
//! given: a file such as `usr/lib/systemd/boot/efi/systemd-bootx64.efi` is looked up, in
//! order, under
//! 1. the spec's `package_root` (a folder laid out like `/`, e.g. a `dpkg -x` of the packages),
//! 2. `$REPRODISK_CACHE/root` (default `${XDG_CACHE_HOME:-$HOME/.cache}/reprodisk/root`),
//!    which `.ci/fetch-packages` fills with `apt-get download` + `dpkg -x`,
//! 3. `/`.
//!
//! The first root holding the file wins. A file found nowhere is an error naming the file,
//! the Debian package that ships it and `.ci/fetch-packages`. Every file used is hashed
//! once and recorded ([`UsedInput`]) so the manifest lists it; the image holds its bytes
//! unchanged, so the manifest's sha256 is all a rebuilder needs to compare inputs.
//!
//! Reading `REPRODISK_CACHE`, `XDG_CACHE_HOME` and `HOME` is the one place the builder looks
//! at the environment for boot inputs: it only chooses where to look, and the manifest
//! records which root each file came from and its digest.

use crate::manifest;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A file a boot loader needs, named by its path inside a package root and its package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackageFile {
    /// Relative to a package root, e.g. `usr/lib/systemd/boot/efi/systemd-bootx64.efi`.
    pub path: &'static str,
    /// The Debian package shipping it, e.g. `systemd-boot-efi`.
    pub package: &'static str,
}

pub const SYSTEMD_BOOT_EFI: PackageFile =
    PackageFile { path: "usr/lib/systemd/boot/efi/systemd-bootx64.efi", package: "systemd-boot-efi" };
pub const GRUB_EFI_MONOLITHIC: PackageFile =
    PackageFile { path: "usr/lib/grub/x86_64-efi/monolithic/grubx64.efi", package: "grub-efi-amd64-bin" };

/// One package root and why it is in the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageRoot {
    pub path: PathBuf,
    /// `spec` (`package_root`), `cache` (`$REPRODISK_CACHE/root`) or `host` (`/`).
    pub origin: &'static str,
}

/// A file that was used, for the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsedInput {
    /// Relative to the package root it came from.
    pub path: String,
    pub package: String,
    /// The package root it was found in.
    pub root: PathBuf,
    pub sha256: String,
    pub bytes: u64,
}

impl UsedInput {
    /// The file on the host.
    pub fn host_path(&self) -> PathBuf {
        self.root.join(&self.path)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(
        "boot-loader input `{path}` (Debian package {package}) is not in any package root (looked in {looked}): run `.ci/fetch-packages` to fetch it into the package cache, or set `package_root` to a folder holding `{path}`"
    )]
    Missing { path: String, package: String, looked: String },
    #[error("reading boot-loader input `{path}`: {error}")]
    Read { path: PathBuf, error: std::io::Error },
}

/// The ordered package roots of one build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRoots {
    pub roots: Vec<PackageRoot>,
}

/// `$REPRODISK_CACHE`, else `${XDG_CACHE_HOME:-$HOME/.cache}/reprodisk`; `None` without a home.
pub fn cache_dir(var: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |k: &str| var(k).filter(|v| !v.is_empty());
    if let Some(c) = set("REPRODISK_CACHE") {
        return Some(PathBuf::from(c));
    }
    let base = match set("XDG_CACHE_HOME") {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(set("HOME")?).join(".cache"),
    };
    Some(base.join("reprodisk"))
}

impl PackageRoots {
    /// The roots for a spec's `package_root`, reading the cache location from the environment.
    pub fn new(package_root: Option<&Path>) -> Self {
        Self::with_cache(package_root, cache_dir(|k| std::env::var(k).ok()))
    }

    /// The roots with the cache folder given (for tests).
    pub fn with_cache(package_root: Option<&Path>, cache: Option<PathBuf>) -> Self {
        let mut roots = Vec::new();
        if let Some(p) = package_root {
            roots.push(PackageRoot { path: p.to_path_buf(), origin: "spec" });
        }
        if let Some(c) = cache {
            roots.push(PackageRoot { path: c.join("root"), origin: "cache" });
        }
        roots.push(PackageRoot { path: PathBuf::from("/"), origin: "host" });
        PackageRoots { roots }
    }

    /// Finds `file` in the first root that holds it as a regular file (links followed) and
    /// hashes it.
    pub fn find(&self, file: PackageFile) -> Result<UsedInput, InputError> {
        for root in &self.roots {
            let p = root.path.join(file.path);
            if p.is_file() {
                let read = |error| InputError::Read { path: p.clone(), error };
                let bytes = std::fs::metadata(&p).map_err(read)?.len();
                let sha256 = manifest::sha256_file(&p).map_err(read)?;
                return Ok(UsedInput {
                    path: file.path.to_string(),
                    package: file.package.to_string(),
                    root: root.path.clone(),
                    sha256,
                    bytes,
                });
            }
        }
        let looked: Vec<String> =
            self.roots.iter().map(|r| format!("`{}` ({})", r.path.display(), r.origin)).collect();
        Err(InputError::Missing {
            path: file.path.to_string(),
            package: file.package.to_string(),
            looked: looked.join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dir_follows_the_convention() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert_eq!(cache_dir(env(&[("REPRODISK_CACHE", "/c"), ("HOME", "/h")])), Some("/c".into()));
        assert_eq!(cache_dir(env(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")])), Some("/x/reprodisk".into()));
        assert_eq!(cache_dir(env(&[("HOME", "/h")])), Some("/h/.cache/reprodisk".into()));
        assert_eq!(
            cache_dir(env(&[("REPRODISK_CACHE", ""), ("HOME", "/h")])),
            Some("/h/.cache/reprodisk".into())
        );
        assert_eq!(cache_dir(env(&[])), None);
    }

    #[test]
    fn first_root_wins_and_missing_names_the_package() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let f = PackageFile { path: "usr/lib/x/loader.efi", package: "loader-pkg" };
        for (d, body) in [(&a, &b"from spec"[..]), (&b, b"from cache")] {
            std::fs::create_dir_all(d.path().join("usr/lib/x")).unwrap();
            std::fs::write(d.path().join(f.path), body).unwrap();
        }
        let roots = PackageRoots::with_cache(Some(a.path()), Some(b.path().parent().unwrap().join("nope")));
        let used = roots.find(f).unwrap();
        assert_eq!(used.root, a.path());
        assert_eq!(std::fs::read(used.host_path()).unwrap(), b"from spec");
        assert_eq!(used.bytes, 9);
        assert_eq!(used.sha256, manifest::sha256_reader(&b"from spec"[..], |_| {}).unwrap());

        let missing = PackageFile { path: "usr/lib/x/absent-reprodisk-test.efi", package: "absent-pkg" };
        let e = roots.find(missing).unwrap_err().to_string();
        assert!(e.contains("absent-pkg") && e.contains(".ci/fetch-packages") && e.contains("(spec)"), "{e}");
    }
}
