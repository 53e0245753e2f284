//! reprodisk's verifier: independent readers for every on-disk structure, checks, determinism
//! lints and a structural diff.
//!
//! **Architecture invariant:** this crate never depends on the builder. Every reader here was
//! written from the specifications, not from the writers, so a writer's bug shows up as a
//! disagreement instead of being mirrored.
//!
//! Readers never panic and never allocate without bound on any input: corrupt input gives an
//! [`Error`] that names the structure and where it is.
#![forbid(unsafe_code)]

pub mod bootcode;
pub mod bytes;
pub mod diff;
pub mod disk;
pub mod efivars;
pub mod error;
pub mod expect;
pub mod ext4;
pub mod fat;
pub mod fields;
pub mod files;
pub mod glue;
pub mod gpt;
pub mod guid;
pub mod ids;
pub mod lints;
pub mod mbr;
pub mod regions;
pub mod report;
pub mod shown;

pub use error::{Error, Result};
