//! The ext4 (and ext2/ext3) reader, written from the kernel's on-disk format documentation
//! (Documentation/filesystems/ext4/): superblock, group descriptors, bitmaps, inodes, extent
//! trees and block maps, directories (linear and htree), extended attributes, the jbd2
//! journal superblock, a walk of the tree and a map of which structure owns each block.
//!
//! [`Ext4::open`] checks the superblock, every group descriptor and the journal superblock.
//! Everything else is read on demand, so reading only metadata of a large sparse image is
//! fast. Every count that sizes an allocation is bounded by the image size first.
//!
//! [`Ext4::check`] runs every check: the walk (directory entries, `.`/`..`, file types,
//! link counts, `i_blocks` (of reserved inodes too), a regular file's `i_size` against its
//! block map, extent trees and block maps, htree index and name hashes, xattrs and each
//! xattr block's `h_refcount`, the inline-data flag against the feature, every
//! metadata_csum/gdt_csum checksum met on the way), the ownership map (no block owned
//! twice), the bitmaps (with their padding set past the group's end) against both and
//! against the free counts of the group descriptors and the superblock, and the superblock
//! and descriptor backups. Each check follows what `e2fsck -fn` rejects, no stricter, so a
//! clean mkfs.ext4 image passes.
//!
//! Byte offsets in errors are relative to the reader given to [`Ext4::open`]; for a
//! filesystem inside a partition, [`rebase`] turns them into image offsets.
//!
//! Not implemented (reported as [`Error::Unsupported`]): bigalloc, inline data, xattr
//! values in separate inodes (ea_inode). Journal transactions are not replayed or parsed;
//! only the journal superblock is read.

pub mod backup;
pub mod bitmap;
pub mod crc;
pub mod dir;
pub mod extent;
pub mod features;
pub mod group;
pub mod hash;
pub mod inode;
pub mod journal;
pub mod locate;
pub mod owner;
pub mod report;
pub mod section;
pub mod summary;
pub mod superblock;
pub mod walk;
pub mod xattr;

pub use dir::DirEntry;
pub use extent::{BlockMap, Extent};
pub use features::Features;
pub use group::GroupDesc;
pub use inode::{FileType, Inode, Timestamp};
pub use journal::JournalSuperblock;
pub use owner::{Owner, OwnerMap};
pub use summary::Summary;
pub use superblock::Superblock;
pub use walk::{Entry, paths_by_inode};
pub use xattr::Xattr;

use crate::bytes::ReadAt;
use crate::error::{Error, Result};

/// Inode number of the root directory.
pub const EXT4_ROOT_INO: u32 = 2;
/// Inode number of the resize inode (reserved GDT blocks).
pub const EXT4_RESIZE_INO: u32 = 7;

/// An opened ext4 filesystem over any random-access reader (a whole image or a partition
/// [`crate::bytes::Slice`]).
pub struct Ext4<R: ReadAt> {
    r: R,
    /// The primary superblock.
    pub sb: Superblock,
    /// One descriptor per block group.
    pub groups: Vec<GroupDesc>,
    /// The journal superblock, when the filesystem has an internal journal.
    pub journal: Option<JournalSuperblock>,
    /// [`Superblock::gdt_locations`], computed once.
    gdt: Vec<Vec<(u64, u64)>>,
}

impl<R: ReadAt> Ext4<R> {
    /// Reads and checks the superblock, the group descriptor table and the journal
    /// superblock.
    pub fn open(r: R) -> Result<Self> {
        let sb = Superblock::read(&r)?;
        let bs = sb.block_size();
        let need = sb.s_blocks_count * bs;
        if need > r.len() {
            return Err(Error::Truncated {
                at: crate::error::Location {
                    structure: "ext4 filesystem (s_blocks_count)".into(),
                    offset: Some(superblock::SUPERBLOCK_OFFSET),
                },
                needed: need,
                available: r.len(),
            });
        }
        let count = sb.group_count();
        let ds = sb.desc_size();
        let dpb = sb.descs_per_block();
        // group_count is bounded by s_blocks_count, bounded above by the image length, so
        // this allocation is a small fraction of the image.
        let mut groups = Vec::with_capacity(count as usize);
        let gdt = sb.gdt_locations();
        for (i, copies) in gdt.iter().enumerate() {
            let block = copies[0].1;
            let raw = r.read_vec(block * bs, bs as usize, "ext4 group descriptor table")?;
            for k in 0..dpb {
                let g = i as u64 * dpb + k;
                if g >= count {
                    break;
                }
                let at = (k * ds) as usize;
                groups.push(GroupDesc::parse(
                    &sb,
                    g as u32,
                    &raw[at..at + ds as usize],
                    block * bs + at as u64,
                )?);
            }
        }
        let mut fs = Ext4 { r, sb, groups, journal: None, gdt };
        fs.journal = fs.read_journal_superblock()?;
        Ok(fs)
    }

    /// Where each group descriptor block and its copies live (see
    /// [`Superblock::gdt_locations`]).
    pub fn gdt_locations(&self) -> &[Vec<(u64, u64)>] {
        &self.gdt
    }

    /// The underlying reader.
    pub fn reader(&self) -> &R {
        &self.r
    }

    /// Fails unless `block` is inside the filesystem.
    pub fn check_block(&self, block: u64, what: &str) -> Result<()> {
        if block < u64::from(self.sb.s_first_data_block) {
            return Err(self.outside(block, what));
        }
        self.read_block_check(block, what)
    }

    /// Block 0 may be read (it holds the superblock with large blocks) but not pointed at.
    fn read_block_check(&self, block: u64, what: &str) -> Result<()> {
        if block >= self.sb.s_blocks_count {
            return Err(self.outside(block, what));
        }
        Ok(())
    }

    fn outside(&self, block: u64, what: &str) -> Error {
        let n = self.sb.s_blocks_count;
        Error::corrupt(what, None, format!("block {block} lies outside the filesystem's {n} blocks"))
    }

    /// Reads one filesystem block, naming `what` in errors.
    pub fn read_block(&self, block: u64, what: &str) -> Result<Vec<u8>> {
        self.read_block_check(block, what)?;
        let bs = self.sb.block_size();
        self.r.read_vec(block * bs, bs as usize, what)
    }

    /// Reads and checks inode `ino` (1-based).
    pub fn inode(&self, ino: u32) -> Result<Inode> {
        if ino == 0 || ino > self.sb.s_inodes_count {
            return Err(Error::corrupt(
                format!("ext4 inode {ino}"),
                None,
                format!("inode number out of range 1..={}", self.sb.s_inodes_count),
            ));
        }
        let group = (ino - 1) / self.sb.s_inodes_per_group;
        let index = (ino - 1) % self.sb.s_inodes_per_group;
        let gd = &self.groups[group as usize];
        let isz = u64::from(self.sb.s_inode_size);
        let off = gd.bg_inode_table * self.sb.block_size() + u64::from(index) * isz;
        let raw = self.r.read_vec(off, isz as usize, &format!("ext4 inode {ino}"))?;
        Inode::parse(&self.sb, ino, &raw, off)
    }

    /// The contents of a regular file, symlink or directory: `i_size` bytes, holes and
    /// unwritten extents read as zeros. Fails when `i_size` exceeds `max_size`.
    pub fn read_file(&self, ino: u32, max_size: u64) -> Result<Vec<u8>> {
        let inode = self.inode(ino)?;
        self.read_inode_data(&inode, max_size)
    }

    /// Streams the contents of a regular file, symlink or directory to `out` with bounded
    /// memory (at most 1 MiB at a time): `i_size` bytes, holes and unwritten extents as
    /// zeros. Returns the number of bytes written.
    pub fn copy_file(&self, ino: u32, out: &mut dyn std::io::Write) -> Result<u64> {
        const CHUNK: u64 = 1 << 20;
        let inode = self.inode(ino)?;
        if inode.is_fast_symlink()
            || !matches!(inode.file_type(), Some(FileType::Regular | FileType::Directory | FileType::Symlink))
        {
            let data = self.read_inode_data(&inode, 60)?;
            out.write_all(&data)?;
            return Ok(data.len() as u64);
        }
        let map = self.block_map(&inode)?;
        let bs = self.sb.block_size();
        let size = inode.i_size;
        let zeros = vec![0u8; CHUNK as usize];
        let mut pos = 0u64;
        let emit_zeros = |from: u64, to: u64, out: &mut dyn std::io::Write| -> Result<()> {
            let mut p = from;
            while p < to {
                let n = (to - p).min(CHUNK);
                out.write_all(&zeros[..n as usize])?;
                p += n;
            }
            Ok(())
        };
        for e in map.extents.iter().filter(|e| !e.unwritten) {
            let Some(start) = e.logical.checked_mul(bs) else {
                break;
            };
            if start >= size {
                break;
            }
            emit_zeros(pos, start, out)?;
            let end = start.saturating_add(e.len * bs).min(size);
            let mut p = start;
            while p < end {
                let n = (end - p).min(CHUNK);
                let buf = self.r.read_vec(
                    e.physical * bs + (p - start),
                    n as usize,
                    &format!("ext4 inode {ino} data"),
                )?;
                out.write_all(&buf)?;
                p += n;
            }
            pos = end;
        }
        emit_zeros(pos, size, out)?;
        Ok(size)
    }

    /// Like [`Ext4::read_file`] for an inode already read.
    pub fn read_inode_data(&self, inode: &Inode, max_size: u64) -> Result<Vec<u8>> {
        let name = format!("ext4 inode {}", inode.ino);
        if inode.is_fast_symlink() {
            return Ok(inode.i_block[..inode.i_size as usize].to_vec());
        }
        match inode.file_type() {
            Some(FileType::Regular | FileType::Directory | FileType::Symlink) => {}
            _ => return Ok(Vec::new()),
        }
        if inode.i_size > max_size {
            return Err(Error::corrupt(
                &name,
                Some(inode.offset),
                format!("i_size {} exceeds the size cap of {max_size} bytes", inode.i_size),
            ));
        }
        let map = self.block_map(inode)?;
        let bs = self.sb.block_size();
        // The cap above bounds this allocation; data past i_size is ignored.
        let mut out = vec![0u8; inode.i_size as usize];
        for e in &map.extents {
            if e.unwritten {
                continue;
            }
            let Some(start) = e.logical.checked_mul(bs) else {
                continue;
            };
            if start >= inode.i_size {
                continue;
            }
            let n = (inode.i_size - start).min(e.len * bs) as usize;
            let s = start as usize;
            self.r.read_exact_at(&mut out[s..s + n], e.physical * bs)?;
        }
        Ok(out)
    }
}

/// Adds `base` (the filesystem's offset in the image) to the offset an error names.
pub fn rebase(e: Error, base: u64) -> Error {
    let shift = |mut at: crate::error::Location| {
        at.offset = at.offset.map(|o| o + base);
        at
    };
    match e {
        Error::Corrupt { at, what } => Error::Corrupt { at: shift(at), what },
        Error::Unsupported { at, what } => Error::Unsupported { at: shift(at), what },
        Error::Truncated { at, needed, available } => Error::Truncated { at: shift(at), needed, available },
        other => other,
    }
}

/// Everything [`Ext4::check`] found: the walk, the ownership map and the bitmap totals.
#[derive(Debug, Clone)]
pub struct Checked {
    pub entries: Vec<Entry>,
    pub owners: OwnerMap,
    pub totals: bitmap::BitmapTotals,
    /// Number of superblock backups checked.
    pub backups: u32,
}

impl<R: ReadAt> Ext4<R> {
    /// Runs every check: the walk (directories, inodes, block maps, xattrs, link counts),
    /// the ownership map (no block owned twice), the bitmaps against both, and the backups.
    pub fn check(&self) -> Result<Checked> {
        let entries = self.walk()?;
        let owners = self.owner_map(&entries)?;
        let totals = self.check_bitmaps(&owners, &entries)?;
        let backups = self.check_backups()?;
        Ok(Checked { entries, owners, totals, backups })
    }
}
