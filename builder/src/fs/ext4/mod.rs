//! Pure-Rust ext4 writer: plans a whole filesystem from an [`FsTree`], then writes it in one pass.
//!
//! # On-disk layout (what [`plan`] decides and [`Ext4Plan::write`] writes)
//!
//! **Geometry.** 4 KiB blocks, `s_first_data_block = 0`, 32768 blocks per group, 256-byte
//! inodes. Inode count: the larger of one inode per `inode_ratio` bytes (mke2fs default
//! 16384) and the tree's inodes plus one per `inode_ratio` bytes of the space the tree
//! leaves free; inodes per group rounded up to a multiple of 16 (one inode-table block),
//! at most 32768. The `64bit` feature (64-byte group descriptors) is set only when the block
//! count does not fit 32 bits (or when [`Ext4Options::force_64bit`] asks for it). Like mke2fs,
//! a last group smaller than its own metadata plus 50 blocks is not used: an exact size drops
//! it, an automatic size grows to the next MiB that gives a usable last group.
//!
//! **Features.** compat: has_journal, ext_attr, resize_inode, dir_index; incompat: filetype,
//! extents, flex_bg (+ 64bit when needed), nothing else, so GRUB 2.06 reads the filesystem;
//! ro_compat: sparse_super, large_file, huge_file, dir_nlink, extra_isize, metadata_csum.
//! Directory hashes are half_md4 with `s_hash_seed = opts.hash_seed` and the *signed* hash
//! flag, the variant mke2fs writes on x86 (fixed here, whatever the host's `char`).
//!
//! **Fixed metadata.** Group 0 holds the superblock (byte 1024), the group descriptor
//! table and `s_reserved_gdt_blocks` reserved GDT blocks (mke2fs's rule: room to grow to
//! 1024 times the size, at most 1024 blocks); sparse_super groups (1 and powers of 3, 5, 7)
//! hold backups of all three. Groups are packed 16 to a flex group: the 16 block bitmaps,
//! then the 16 inode bitmaps, then the 16 inode tables of a flex group are placed first-fit
//! from the first block of the flex group's first group. All unused-by-design space stays
//! zero and is never written (the output is pre-sized sparse).
//!
//! **Allocation order.** After the fixed metadata, one bump allocator hands out blocks in
//! block order, skipping used blocks: first the resize inode's double-indirect block, then
//! the journal (mke2fs's `ext2fs_default_journal_size`, at least 1024 blocks), then for
//! every inode in inode-number order: its xattr block, its directory blocks or file data,
//! and its extent tree blocks. A file's data gets physical blocks for every logical block
//! that may hold data (see **Sizing**), logical block i of a run at physical start + i. Holes are
//! content-defined: a block that turns out all-zero when the data is streamed becomes a
//! hole and its block stays free, so the plan is an upper bound by at most those blocks.
//! Extent-tree blocks that holes make necessary are taken from that same file's freed
//! blocks, so the write never needs space the plan did not reserve.
//!
//! **Inode numbers.** 1-10 are reserved (7 is the resize inode, 8 the journal), the root is
//! 2, `lost+found` is 11 (as mke2fs makes it: 16 KiB, mode 0700, owned by root, times from
//! `opts.time`), and the other nodes follow [`FsTree::preorder`] from 12 on (hard links
//! share their node's inode). A tree whose root already has a `lost+found` directory uses
//! that directory as inode 11 (with its own metadata and entries, at least 16 KiB); a
//! `lost+found` that is not a directory is refused. Inode bitmaps mark 1..=last used inode;
//! every group is flagged ITABLE_ZEROED with an exact `bg_itable_unused`, no UNINIT flags.
//!
//! **Journal.** An empty, clean jbd2 journal (superblock v2, `s_start = 0`, sequence 1,
//! one user, the filesystem UUID) in extents right after the resize inode's block. Like
//! mke2fs 1.47 on a fresh filesystem, no journal checksum feature is set (mke2fs sets
//! `journal_checksum_v3` only when asked; `dumpe2fs` shows "Journal features: (none)").
//! `s_jnl_blocks` backs up the journal inode's extent root.
//!
//! **Resize inode.** Inode 7 maps, through its double-indirect block, the primary reserved
//! GDT blocks; each of those lists its copies in the backup groups (the layout
//! `ext2fs_create_resize_inode` makes and e2fsck checks), so resize2fs can grow the
//! filesystem offline and the kernel online.
//!
//! **Inodes.** 256 bytes, `i_extra_isize = 32`, nanosecond times and crtime; times outside
//! ext4's range (1901..2446) are clamped to it. Note that e2fsck calls times after 2310
//! "likely pre-1970", so ingestion should keep times before that. Generation numbers are 0.
//! Devices use the old encoding when major and minor are below 256, the new one otherwise.
//! Symlinks under 60 bytes are fast (target in `i_block`), longer ones (at most 4095 bytes)
//! take one block. Xattrs go into the inode's 96 free bytes in on-disk order (name index,
//! name length, name) while they fit, the rest into one xattr block (refcount 1, never
//! shared); POSIX ACLs are converted to ext4's on-disk ACL format.
//!
//! **Directories.** Entries sorted bytewise. A directory that fits one block (with the
//! 12-byte checksum tail) is linear; a bigger one is an htree: block 0 the dx_root, then
//! the leaves (entries in hash order, a run of equal hashes never split), with one level of
//! dx_node blocks when the leaves do not fit the root.
//!
//! **Sizing.** [`SizeRequest::Exact`] uses the given bytes (rounded down to a block, and
//! without a too-small last group, so [`Ext4Plan::size_bytes`] can be a little less) and
//! fails with [`Ext4Error::TooSmall`] (saying how many MiB are missing) if the planned
//! contents plus `reserved_percent` of the blocks do not fit, or with
//! [`Ext4Error::TooManyInodes`] if the tree needs more inodes than 32768 per group.
//! The plan reserves a file's blocks by the rule of `source.rs`, which depends on its bytes
//! only: a file of 1 MiB or more is scanned while planning and costs only its blocks that
//! hold a non-zero byte (host holes and sparse-map holes are skipped, not read, so a 10 GiB
//! sparse file with little data costs little); a smaller file is planned at its full size
//! and its all-zero blocks, found while streaming, are left free, so the filesystem can be a
//! little larger than strictly needed (never smaller).
//! [`SizeRequest::Auto`] finds the smallest multiple of 1 MiB where everything fits
//! (including the reserved blocks), adds `extra_bytes` and rounds up to 1 MiB again.
//!
//! **Write pass.** Positional writes (`write_at`) at `offset` into a region that must read
//! as zeros; all-zero blocks are never written. Writes to consecutive blocks (files laid out
//! back to back, directories between them) are gathered into one `pwrite` of up to 4 MiB.
//! Inode-table blocks are written as they fill; bitmaps, descriptors and superblocks last.
//!
//! **Threads and buffers.** Two threads: a reader walks the regular files in inode order (the
//! order the write pass takes them), reads each file's planned runs in chunks of at most
//! 1 MiB, hashes the file's bytes (sha256, holes of a sparse map as zeros, returned as
//! [`crate::tree::digest::FileHashes`] for the manifest) and sends the chunks over a bounded
//! queue (16 chunks); the write pass finds the all-zero blocks (holes), writes the rest and
//! sends each buffer back to the reader to be used again, so no buffer is allocated or zeroed
//! per file. Each file is read once (files of 1 MiB or more once more while planning). The reader
//! only fetches bytes: what is written, and where, is decided by the write pass alone, so the
//! image does not depend on thread timing. The first error on either side stops both; it is
//! the one reported. Memory: the plan keeps per-inode block runs and one bit per filesystem
//! block; the queue holds at most 16 chunks of 1 MiB, the pool of spare buffers as many, and
//! the gathered writes 4 MiB: under 40 MiB whatever the file data size.
//!
//! **Determinism.** No clock, no RNG: every time is `opts.time` or the tree's, UUID and hash
//! seed come from `opts`, the journal has sequence 1 and the filesystem UUID, generation
//! numbers are 0, `s_mtime = 0`, `s_mnt_count = 0`, `s_max_mnt_count = -1`,
//! `s_kbytes_written = 0`.

mod bitmap;
mod census;
mod csum;
mod dir;
mod extent;
mod group_descr;
mod hash;
mod inode;
mod journal;
mod planner;
mod source;
mod superblock;
mod writer;
mod xattr;

use std::path::PathBuf;

use crate::tree::{FsTree, Timestamp};

pub use planner::{Ext4Plan, TreeCensus};

/// Block size of every filesystem this writer makes.
pub const BLOCK_SIZE: u64 = 4096;

/// Whether `block` (at most one block long) is all zeros; a slice compare is a memcmp,
/// fast even in unoptimised builds.
pub(crate) fn is_zero(block: &[u8]) -> bool {
    static ZERO: [u8; BLOCK_SIZE as usize] = [0; BLOCK_SIZE as usize];
    block == &ZERO[..block.len()]
}

/// What the caller decides about the filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ext4Options {
    /// Volume label, at most 16 bytes.
    pub label: Vec<u8>,
    pub uuid: [u8; 16],
    pub hash_seed: [u8; 16],
    /// SOURCE_DATE_EPOCH: superblock times and lost+found.
    pub time: Timestamp,
    /// Blocks reserved for root, in percent of the block count (mke2fs default 5).
    pub reserved_percent: u8,
    /// Bytes of filesystem per inode (mke2fs default 16384); more inodes are made when the
    /// tree needs them.
    pub inode_ratio: u64,
    /// Set the 64bit feature even when the size does not need it.
    pub force_64bit: bool,
}

impl Ext4Options {
    /// Options with mke2fs's defaults for everything but the identity and time.
    pub fn new(uuid: [u8; 16], hash_seed: [u8; 16], time: Timestamp) -> Self {
        Ext4Options {
            label: Vec::new(),
            uuid,
            hash_seed,
            time,
            reserved_percent: 5,
            inode_ratio: 16384,
            force_64bit: false,
        }
    }
}

/// How big the filesystem must be.
///
/// An exact size is used as given except that, like mke2fs, a last block group too small
/// for its own metadata is left out, so the filesystem may end a little before the end of
/// the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeRequest {
    /// Bytes of the partition; the filesystem uses whole blocks of it.
    Exact(u64),
    /// The smallest filesystem holding the tree, plus `extra_bytes`, rounded up to 1 MiB.
    Auto { extra_bytes: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum Ext4Error {
    #[error(
        "the ext4 filesystem needs {needed_bytes} bytes but only {available_bytes} are available: {} MiB missing; increase diskSize or use \"auto\"",
        needed_bytes.saturating_sub(*available_bytes).div_ceil(1 << 20)
    )]
    TooSmall { needed_bytes: u64, available_bytes: u64 },
    #[error(
        "the tree has {needed} inodes but a filesystem of {size_bytes} bytes can hold at most {max}; increase diskSize"
    )]
    TooManyInodes { needed: u64, max: u64, size_bytes: u64 },
    #[error("reading `{}`: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("`{}` changed while the image was written: expected {expected} bytes, found {actual}", path.display())]
    SourceChanged { path: PathBuf, expected: u64, actual: u64 },
    #[error("writing the ext4 filesystem at byte {offset}: {source}")]
    Write { offset: u64, source: std::io::Error },
    #[error("label is {len} bytes, ext4 allows at most 16")]
    LabelTooLong { len: usize },
    #[error("symlink `{path}` has a {len}-byte target, ext4 allows at most 4095")]
    SymlinkTooLong { path: String, len: usize },
    #[error(
        "extended attributes of `{path}` need {needed} bytes, more than fit an inode and one 4096-byte block"
    )]
    XattrsTooLarge { path: String, needed: usize },
    #[error("directory `{path}` has too many entries for a two-level htree")]
    DirectoryTooLarge { path: String },
    #[error("the filesystem would need {blocks} blocks, more than ext4 supports")]
    TooLarge { blocks: u64 },
    #[error(
        "`/lost+found` in the tree is not a directory; e2fsck needs it to be one, so remove or rename it"
    )]
    LostFoundNotADirectory,
    #[error("`{path}` has {links} hard links, ext4 allows at most 65000")]
    TooManyLinks { path: String, links: u32 },
    #[error("directory `{path}` is linked more than once; directories cannot be hard links")]
    DirectoryHardLink { path: String },
    #[error("symlink `{path}` has an empty target, which ext4 cannot store")]
    EmptySymlink { path: String },
    #[error("no free block left for the extent tree of inode {ino}; give the filesystem a little more space")]
    NoSpaceForExtentTree { ino: u32 },
    #[error("the tree given to write differs from the planned one ({0})")]
    TreeMismatch(&'static str),
}

/// Plans the filesystem for `tree`: geometry, every inode number and every block.
pub fn plan(tree: &FsTree, opts: &Ext4Options, size: SizeRequest) -> Result<Ext4Plan, Ext4Error> {
    planner::plan(tree, opts, size)
}

/// [`plan`] from a census already taken of the tree with `opts` ([`TreeCensus::of`]).
pub fn plan_with(census: TreeCensus, opts: &Ext4Options, size: SizeRequest) -> Result<Ext4Plan, Ext4Error> {
    planner::plan_with(census, opts, size)
}
