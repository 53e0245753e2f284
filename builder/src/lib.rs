//! reprodisk's builder: turns an image spec into a bit-for-bit reproducible disk image.
//!
//! The pipeline is spec -> plan -> image: [`spec`] parses and validates the user's TOML or
//! JSON, [`layout`] computes the partition geometry and every ID, [`tree`] merges the source
//! trees into one in-memory file tree, [`ext4`] writes the root filesystem, [`ptable`] writes
//! the partition tables, and [`build`] ties them together and writes the output atomically.
#![forbid(unsafe_code)]

pub mod build;
pub mod cli;
pub mod ext4;
pub mod ids;
pub mod image;
pub mod layout;
pub mod manifest;
pub mod progress;
pub mod ptable;
pub mod rootfs;
pub mod size;
pub mod spec;
pub mod tree;
