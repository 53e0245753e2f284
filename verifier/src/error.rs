//! The verifier's error type: I/O, unsupported features, and corruption located by structure.

use std::fmt;

/// Where in an image a problem was found: a structure name and a byte offset in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The structure, as a path of names: `"gpt header (primary)"`, `"ext4 group descriptor 3"`,
    /// `"fat directory /EFI/BOOT"`.
    pub structure: String,
    /// Byte offset from the start of the image (not the partition), when known.
    pub offset: Option<u64>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(o) => write!(f, "{} at byte {o:#x}", self.structure),
            None => write!(f, "{}", self.structure),
        }
    }
}

/// Everything a reader can fail with.
///
/// No variant names a `source`: each says its cause in its own message (a finding shows
/// `{e}` alone), so a caller that prints the chain (`{e:#}`) must not see it twice.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the image: {0}")]
    Io(std::io::Error),
    /// A valid structure using a feature this reader does not implement.
    #[error("{at}: unsupported: {what}")]
    Unsupported { at: Location, what: String },
    /// A structure that contradicts its specification.
    #[error("{at}: corrupt: {what}")]
    Corrupt { at: Location, what: String },
    /// The image ends before a structure it refers to.
    #[error("{at}: truncated: needs {needed} bytes, the image has {available}")]
    Truncated { at: Location, needed: u64, available: u64 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl Error {
    pub fn corrupt(structure: impl Into<String>, offset: Option<u64>, what: impl Into<String>) -> Self {
        Error::Corrupt { at: Location { structure: structure.into(), offset }, what: what.into() }
    }

    pub fn unsupported(structure: impl Into<String>, offset: Option<u64>, what: impl Into<String>) -> Self {
        Error::Unsupported { at: Location { structure: structure.into(), offset }, what: what.into() }
    }
}
