//! reprodisk's builder: turns an image spec into a bit-for-bit reproducible disk image.
//!
//! The pipeline is spec -> plan -> image: [`spec`] parses and validates the user's TOML or
//! JSON, [`layout`] computes the partition geometry and every ID, [`tree`] merges the source
//! trees into one in-memory file tree, [`fs`] holds the filesystem writers (ext4, FAT), [`boot`] the boot loaders, [`ptable`]
//! writes the partition tables, [`format`] the output file, and [`build`] ties them together.
#![forbid(unsafe_code)]

pub mod boot;
pub mod build;
pub mod cleanup;
pub mod cli;
pub mod cli_boot;
pub mod format;
pub mod fs;
pub mod ids;
pub mod layout;
pub mod manifest;
pub mod output;
pub mod progress;
pub mod ptable;
pub mod rootfs;
pub mod spec;
pub mod tree;
