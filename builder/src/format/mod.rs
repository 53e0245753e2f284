//! Output formats: how the finished disk lands in the output file.
//!
//! [`raw`] is the sparse raw image and the atomic temporary-file-then-rename output every
//! format goes through.

pub mod raw;
