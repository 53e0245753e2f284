//! `verify --spec`'s byte check of `contents` and `configFile`: the sha256 of every file
//! they put into the image, read by our own ext4 reader from the root filesystem, against
//! the sha256 of its source on the host ([`crate::expect::sources`]).

use crate::bytes::{ReadAt, Slice};
use crate::disk;
use crate::expect::Expectations;
use crate::expect::sources::{hex, sha256_file};
use crate::ext4::{Ext4, FileType};
use crate::report::{Finding, Severity};
use crate::shown::shown;
use sha2::{Digest, Sha256};

/// A `Write` that hashes what it is given.
struct Hashing(Sha256);

impl std::io::Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A host path as a report shows it (control bytes escaped).
fn host(p: &std::path::Path) -> String {
    shown(p.as_os_str().as_encoded_bytes())
}

/// The findings of the byte check. Nothing when the spec names no files or the root
/// filesystem cannot be read (the report already says why).
pub(super) fn findings(r: &dyn ReadAt, e: &Expectations) -> Vec<Finding> {
    let (files, unreadable) = e.source_files();
    let mut out: Vec<Finding> = unreadable
        .into_iter()
        .map(|u| {
            Finding::new(
                Severity::Warning,
                "content-source-unreadable",
                format!("{}: its bytes are not compared", u.what),
                Some(u.entry),
            )
        })
        .collect();
    if files.is_empty() {
        return out;
    }
    let root = e.layout.root_partition();
    let Ok(d) = disk::open(r) else { return out };
    let Some(p) = d.partitions.iter().find(|p| (p.number != 0).then_some(p.number) == root) else {
        return out;
    };
    let Ok(fs) = Ext4::open(Slice { inner: r, start: p.start, len: p.len }) else { return out };
    let Ok(entries) = fs.walk() else { return out };
    for f in files {
        // A file source is its entry's target; a folder's or a glob's files lie below it.
        let loc = Some(if f.is_target {
            f.entry.clone()
        } else {
            format!("{} file {}", f.entry, shown(f.target.as_bytes()))
        });
        let Some(i) = crate::ext4::walk::find(&entries, f.target.as_bytes()) else {
            // A `contents` entry's own target missing is `content-missing` already.
            if !f.is_target || f.entry == "configFile" {
                out.push(Finding::new(
                    Severity::Error,
                    "content-missing",
                    format!(
                        "{} (from {}) is not in the root filesystem",
                        shown(f.target.as_bytes()),
                        host(&f.source)
                    ),
                    loc,
                ));
            }
            continue;
        };
        let entry = &entries[i];
        if entry.file_type != FileType::Regular {
            out.push(Finding::new(
                Severity::Error,
                "content-type",
                format!(
                    "{} is a {} in the image, its source {} is a regular file",
                    shown(f.target.as_bytes()),
                    entry.file_type.as_str(),
                    host(&f.source)
                ),
                loc,
            ));
            continue;
        }
        let want = match sha256_file(&f.source) {
            Ok(h) => h,
            Err(err) => {
                out.push(Finding::new(
                    Severity::Warning,
                    "content-source-unreadable",
                    format!("cannot read `{}`: {err}: its bytes are not compared", host(&f.source)),
                    loc,
                ));
                continue;
            }
        };
        let mut h = Hashing(Sha256::new());
        if let Err(err) = fs.copy_file(entry.ino, &mut h) {
            out.push(crate::glue::read_error(&format!("{} file {}", f.entry, f.target), &err));
            continue;
        }
        let got = hex(&h.0.finalize());
        if got != want {
            out.push(Finding::new(
                Severity::Error,
                "content-sha256",
                format!(
                    "{} has sha256 {got} in the image, its source {} has {want}",
                    shown(f.target.as_bytes()),
                    host(&f.source)
                ),
                loc,
            ));
        }
    }
    out
}
