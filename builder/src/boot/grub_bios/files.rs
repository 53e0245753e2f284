//! Where GRUB's i386-pc files come from: a source the caller chooses (the package root list
//! in a build, a plain folder in tests), with every file read reported so the manifest can
//! record it.

use super::{DIR, GrubBiosError};
use std::cell::RefCell;
use std::path::{Path, PathBuf};

/// A source of GRUB's i386-pc files (`boot.img`, `*.mod`, `moddep.lst`, ...), by bare name.
pub trait GrubFiles {
    /// The bytes of `name`, or [`GrubBiosError::Missing`] naming the package.
    fn read(&self, name: &str) -> Result<Vec<u8>, GrubBiosError>;
}

/// GRUB's files from one folder (e.g. `<root>/usr/lib/grub/i386-pc`), remembering every path
/// read, in order, so that a caller can hash them into its manifest.
#[derive(Debug)]
pub struct DirFiles {
    dir: PathBuf,
    read: RefCell<Vec<PathBuf>>,
}

impl DirFiles {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DirFiles { dir: dir.into(), read: RefCell::new(Vec::new()) }
    }

    /// The i386-pc folder under a package root (a folder laid out like `/`).
    pub fn under_root(root: &Path) -> Self {
        Self::new(root.join(DIR))
    }

    /// Every path read so far, first read first, each once.
    pub fn paths_read(&self) -> Vec<PathBuf> {
        self.read.borrow().clone()
    }
}

impl GrubFiles for DirFiles {
    fn read(&self, name: &str) -> Result<Vec<u8>, GrubBiosError> {
        let path = self.dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let mut read = self.read.borrow_mut();
                if !read.contains(&path) {
                    read.push(path);
                }
                Ok(bytes)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(GrubBiosError::Missing {
                name: name.to_string(),
                searched: format!("`{}`", self.dir.display()),
            }),
            Err(error) => Err(GrubBiosError::Io { path, error }),
        }
    }
}
