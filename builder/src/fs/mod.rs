//! The filesystems the builder writes straight into a partition's byte range of the image.
//!
//! One room per filesystem: [`ext4`] for the root filesystem, [`fat`] for the boot partitions. Each plans the whole
//! filesystem before writing a byte, so sizes are known and errors come before output.

pub mod ext4;
pub mod fat;
