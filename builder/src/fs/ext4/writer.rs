//! The write pass: streams file data (read and hashed on a second thread), then inodes, bitmaps, group descriptors and superblocks.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use sha2::{Digest, Sha256};

use super::bitmap::Bitmap;
use super::census::{Content, LOST_FOUND_BLOCKS, LOST_FOUND_INO, ROOT_INO, dir_entries};
use super::csum::{crc32c_raw, fs_seed, inode_seed, put_u32};
use super::dir;
use super::extent::{self, Extent};
use super::group_descr::{EXT4_BG_INODE_ZEROED, GroupDesc};
use super::inode::{self, EXT4_EXTENTS_FL, EXT4_INDEX_FL, Inode};
use super::journal;
use super::planner::{ADDR_PER_BLOCK, Ext4Plan, Geometry, NodeAlloc};
use super::source::{Folders, Source};
use super::superblock::{self, JOURNAL_INO, SuperCounts};
use super::xattr;
use super::{BLOCK_SIZE, Ext4Error};
use crate::manifest::hash_zeros;
use crate::tree::digest::FileHashes;
use crate::tree::{FsTree, Metadata, NodeKind, Timestamp};

const BS: usize = BLOCK_SIZE as usize;
/// Blocks read and written per step when streaming file data (1 MiB).
const CHUNK_BLOCKS: usize = 256;
const RESIZE_INO: u32 = 7;

/// Positional writes into the output at the filesystem's offset. Writes to consecutive
/// blocks are gathered into one `pwrite` (files laid out back to back are written together);
/// a write elsewhere, [`Out::write_bytes`] and [`Out::flush`] send what is gathered first, so
/// the writes reach the file in the order they were made.
struct Out<'a> {
    file: &'a File,
    offset: u64,
    /// Block the gathered bytes start at, and the bytes (whole blocks).
    pending_at: u64,
    pending: Vec<u8>,
}

/// Gathered bytes are sent once they reach this size (4 MiB).
const GATHER_MAX: usize = 4 << 20;

impl<'a> Out<'a> {
    fn new(file: &'a File, offset: u64) -> Self {
        Out { file, offset, pending_at: 0, pending: Vec::with_capacity(GATHER_MAX) }
    }

    fn write_blocks(&mut self, block: u64, data: &[u8]) -> Result<(), Ext4Error> {
        let follows = !self.pending.is_empty() && self.pending_at + (self.pending.len() / BS) as u64 == block;
        if !follows {
            self.flush()?;
            self.pending_at = block;
        }
        if self.pending.is_empty() && data.len() >= GATHER_MAX {
            return self.send(block * BLOCK_SIZE, data);
        }
        self.pending.extend_from_slice(data);
        if self.pending.len() >= GATHER_MAX {
            self.flush()?;
        }
        Ok(())
    }

    fn write_bytes(&mut self, byte: u64, data: &[u8]) -> Result<(), Ext4Error> {
        self.flush()?;
        self.send(byte, data)
    }

    fn flush(&mut self) -> Result<(), Ext4Error> {
        if !self.pending.is_empty() {
            let at = self.pending_at * BLOCK_SIZE;
            let data = std::mem::take(&mut self.pending);
            let r = self.send(at, &data);
            self.pending = data;
            self.pending.clear();
            r?;
        }
        Ok(())
    }

    fn send(&self, byte: u64, data: &[u8]) -> Result<(), Ext4Error> {
        let at = self.offset + byte;
        self.file.write_all_at(data, at).map_err(|source| Ext4Error::Write { offset: at, source })
    }
}

/// Buffers inode table blocks in inode order and writes each block once it is complete,
/// through an [`Out`] of its own: the tables of a flex group lie back to back, so they are
/// gathered into few writes instead of breaking up the file data's writes every 16 inodes.
struct InodeTables<'a> {
    geo: &'a Geometry,
    plan: &'a Ext4Plan,
    out: Out<'a>,
    block: Option<u64>,
    buf: Vec<u8>,
}

impl InodeTables<'_> {
    fn put(&mut self, ino: u32, bytes: &[u8; 256]) -> Result<(), Ext4Error> {
        let idx = ino - 1;
        let g = idx / self.geo.inodes_per_group;
        let i = idx % self.geo.inodes_per_group;
        let blk = self.plan.groups[g as usize].inode_table + (i / 16) as u64;
        if self.block != Some(blk) {
            self.end_block()?;
            self.block = Some(blk);
        }
        let o = (i % 16) as usize * 256;
        self.buf[o..o + 256].copy_from_slice(bytes);
        Ok(())
    }

    fn end_block(&mut self) -> Result<(), Ext4Error> {
        if let Some(b) = self.block.take() {
            if !super::is_zero(&self.buf) {
                self.out.write_blocks(b, &self.buf)?;
            }
            self.buf.fill(0);
        }
        Ok(())
    }

    /// Writes the last block and everything gathered.
    fn flush(&mut self) -> Result<(), Ext4Error> {
        self.end_block()?;
        self.out.flush()
    }
}

fn metadata_inode(meta: &Metadata, mode: u16, links: u32) -> Inode {
    Inode {
        mode: mode | (meta.perm & 0o7777),
        uid: meta.uid,
        gid: meta.gid,
        atime: meta.atime,
        ctime: meta.ctime,
        mtime: meta.mtime,
        crtime: meta.crtime,
        // dir_nlink: a directory with more links than ext4 counts says 1.
        links: if links > 65000 { 1 } else { links as u16 },
        ..Inode::default()
    }
}

fn fixed_inode(mode: u16, t: Timestamp) -> Inode {
    Inode { mode, atime: t, ctime: t, mtime: t, crtime: t, links: 1, ..Inode::default() }
}

/// State shared by the whole pass.
struct Pass<'a> {
    never_planned: &'a Bitmap,
    spare_cursor: u64,
    out: Out<'a>,
    used: Bitmap,
    seed: u32,
}

impl Pass<'_> {
    fn mark(&mut self, start: u64, len: u64) {
        self.used.set_range(start, len);
    }

    /// Writes an extent tree for `extents`, taking tree blocks from `supply` in order.
    fn extent_tree(
        &mut self,
        ino: u32,
        extents: &[Extent],
        supply: &[u64],
    ) -> Result<([u8; 60], u64), Ext4Error> {
        let need = extent::tree_blocks(extents.len());
        let mut blocks: Vec<u64> = supply.iter().copied().take(need).collect();
        // Holes free at least one block per extra extent, but a split that adds a tree level
        // can need one more than a one-block hole gives: take it from space no inode was
        // planned to use (deterministic: the lowest such block).
        while blocks.len() < need {
            let b = (self.spare_cursor..self.never_planned.len())
                .find(|&b| !self.never_planned.get(b) && !self.used.get(b))
                .ok_or(Ext4Error::NoSpaceForExtentTree { ino })?;
            self.spare_cursor = b + 1;
            blocks.push(b);
        }
        let (root, tree) = extent::build(extents, &blocks, inode_seed(self.seed, ino, 0));
        for (b, data) in &tree {
            self.mark(*b, 1);
            self.out.write_blocks(*b, data)?;
        }
        Ok((root, need as u64))
    }

    /// Writes logical blocks given as `data` over the runs of `al` (dense, e.g. directories).
    fn dense(&mut self, ino: u32, al: &NodeAlloc, data: &[Vec<u8>]) -> Result<([u8; 60], u64), Ext4Error> {
        for &(l, p, n) in &al.runs {
            let mut buf = Vec::with_capacity(n as usize * BS);
            for k in 0..n {
                buf.extend_from_slice(&data[(l + k) as usize]);
            }
            self.mark(p, n);
            self.out.write_blocks(p, &buf)?;
        }
        let extents = extent::from_runs(al.runs.iter().copied());
        let (root, t) = self.extent_tree(ino, &extents, &al.tree_blocks)?;
        Ok((root, data.len() as u64 + t))
    }

    /// Writes a regular file from the chunks the reader thread sends (see [`Feed`]); all-zero
    /// blocks become holes. Returns i_block and blocks used.
    fn file(
        &mut self,
        ino: u32,
        al: &NodeAlloc,
        feed: &mut Feed,
        progress: &mut dyn FnMut(u64),
        done: &mut u64,
    ) -> Result<([u8; 60], u64), Ext4Error> {
        let mut data_runs: Vec<(u64, u64, u64)> = Vec::new();
        // Hole blocks that may hold extent-tree blocks: a few per run of holes is enough
        // (each run adds at most one extent), so memory follows the extent count, not the
        // amount of zeros.
        let mut holes: Vec<u64> = Vec::new();
        let (mut last_zero, mut run_len): (Option<u64>, u64) = (None, 0);
        for &(l0, p0, n) in &al.runs {
            let mut k = 0;
            while k < n {
                let m = (n - k).min(CHUNK_BLOCKS as u64) as usize;
                let chunk = feed.next(m * BS)?;
                let mut i = 0;
                while i < m {
                    let zero = |j: usize| super::is_zero(&chunk[j * BS..(j + 1) * BS]);
                    if zero(i) {
                        let p = p0 + k + i as u64;
                        run_len = if last_zero == Some(p.wrapping_sub(1)) { run_len + 1 } else { 0 };
                        last_zero = Some(p);
                        if run_len < 4 {
                            holes.push(p);
                        }
                        i += 1;
                        continue;
                    }
                    let s = i;
                    while i < m && !zero(i) {
                        i += 1;
                    }
                    let (l, p, len) = (l0 + k + s as u64, p0 + k + s as u64, (i - s) as u64);
                    self.out.write_blocks(p, &chunk[s * BS..i * BS])?;
                    self.mark(p, len);
                    data_runs.push((l, p, len));
                }
                *done += (m * BS) as u64;
                progress(*done);
                k += m as u64;
            }
        }
        let extents = extent::from_runs(data_runs.iter().copied());
        let data_blocks: u64 = data_runs.iter().map(|r| r.2).sum();
        // Tree blocks: the planned ones first, then blocks that turned out to be holes.
        let mut supply = al.tree_blocks.clone();
        supply.extend(holes);
        let (root, t) = self.extent_tree(ino, &extents, &supply)?;
        Ok((root, data_blocks + t))
    }
}

/// File data in flight between the reader thread and the write pass, in batches: a batch
/// holds the chunks of one or more files back to back (each chunk at most [`CHUNK_BLOCKS`]
/// blocks, never split between batches), so a tree of small files costs one hand-over per
/// [`BATCH_BYTES`], not one per file. At most [`QUEUE_BATCHES`] are queued, and their buffers
/// go back to the reader to be used again, so memory does not grow with the data.
const QUEUE_BATCHES: usize = 16;
const BATCH_BYTES: usize = CHUNK_BLOCKS * BS;

/// The write pass's end of the queue.
struct Feed {
    batches: Receiver<Result<Vec<u8>, Ext4Error>>,
    spent: SyncSender<Vec<u8>>,
    /// The batch being taken apart and how much of it is used.
    cur: Vec<u8>,
    pos: usize,
}

impl Feed {
    /// The next chunk, which must be `len` bytes: the reader walks the same runs.
    fn next(&mut self, len: usize) -> Result<&[u8], Ext4Error> {
        while self.pos == self.cur.len() {
            let spent = std::mem::take(&mut self.cur);
            // A full pool or a finished reader just drops the buffer.
            let _ = self.spent.try_send(spent);
            self.pos = 0;
            self.cur = match self.batches.recv() {
                Ok(Ok(buf)) => buf,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(Ext4Error::TreeMismatch("file data stream")),
            };
        }
        let start = self.pos;
        if self.cur.len() - start < len {
            return Err(Ext4Error::TreeMismatch("file data stream"));
        }
        self.pos += len;
        Ok(&self.cur[start..start + len])
    }
}

/// The reader thread's end of the queue: fills a batch and sends it once the next chunk
/// does not fit.
struct Batcher {
    batches: SyncSender<Result<Vec<u8>, Ext4Error>>,
    spent: Receiver<Vec<u8>>,
    cur: Vec<u8>,
}

impl Batcher {
    /// Room for `len` more bytes at the end of the batch (sending the batch first when it
    /// is full); `None` when the write pass has hung up.
    fn room(&mut self, len: usize) -> Option<&mut [u8]> {
        if !self.cur.is_empty() && self.cur.len() + len > BATCH_BYTES && !self.send() {
            return None;
        }
        let start = self.cur.len();
        self.cur.resize(start + len, 0);
        Some(&mut self.cur[start..])
    }

    /// Sends the batch, if any, and takes a spent buffer for the next; false when the write
    /// pass has hung up.
    fn send(&mut self) -> bool {
        if self.cur.is_empty() {
            return true;
        }
        let next = self.spent.try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH_BYTES));
        let full = std::mem::replace(&mut self.cur, next);
        self.cur.clear();
        self.batches.send(Ok(full)).is_ok()
    }
}

/// The reader thread: reads every regular file's planned runs in inode order, hashes the
/// bytes and sends them in batches to the write pass. It stops at the first error (sent to
/// the write pass after the data read before it) or when the write pass hangs up.
fn read_files(
    plan: &Ext4Plan,
    tree: &FsTree,
    batches: SyncSender<Result<Vec<u8>, Ext4Error>>,
    spent: Receiver<Vec<u8>>,
) -> FileHashes {
    let mut hashes = FileHashes::new();
    let mut out = Batcher { batches, spent, cur: Vec::with_capacity(BATCH_BYTES) };
    let mut folders = Folders::default();
    for (item, al) in plan.census.items.iter().zip(&plan.allocs) {
        let (Some(id), Content::File { .. }) = (item.node, &item.content) else { continue };
        let NodeKind::File(f) = &tree.node(id).kind else { continue };
        let sent = (|| -> Result<Option<[u8; 32]>, Ext4Error> {
            let src = Source::open(&f.source, f.size, &mut folders)?;
            let mut h = Sha256::new();
            let mut hashed = 0u64;
            for &(l0, _, n) in &al.runs {
                let mut k = 0;
                while k < n {
                    let m = (n - k).min(CHUNK_BLOCKS as u64) as usize;
                    let Some(buf) = out.room(m * BS) else { return Ok(None) };
                    let at = (l0 + k) * BLOCK_SIZE;
                    if let Err(e) = src.read(at, buf) {
                        // The failing chunk is not sent: the error stands in its place.
                        out.cur.truncate(out.cur.len() - m * BS);
                        return Err(e);
                    }
                    let end = (at + buf.len() as u64).min(f.size);
                    if at < end {
                        hash_zeros(&mut h, at.saturating_sub(hashed));
                        h.update(&buf[(hashed.max(at) - at) as usize..(end - at) as usize]);
                        hashed = end;
                    }
                    k += m as u64;
                }
            }
            hash_zeros(&mut h, f.size.saturating_sub(hashed));
            Ok(Some(h.finalize().into()))
        })();
        match sent {
            Ok(Some(sha)) => {
                hashes.insert(f.clone(), sha);
            }
            Ok(None) => return hashes,
            Err(e) => {
                // The chunks read before the failing one go first: the write pass takes
                // them, then meets the error where the failing file's data should be.
                if out.send() {
                    let _ = out.batches.send(Err(e));
                }
                return hashes;
            }
        }
    }
    out.send();
    hashes
}

impl Ext4Plan {
    /// Writes the planned filesystem into `out` at byte `offset`. The region must read as
    /// zeros (a fresh sparse file); all-zero blocks are not written. Returns the sha256 of
    /// every regular file's bytes as read (holes of a sparse map as zeros), so the manifest
    /// needs no second read.
    pub fn write(
        &self,
        tree: &FsTree,
        out: &File,
        offset: u64,
        progress: &mut dyn FnMut(u64),
    ) -> Result<FileHashes, Ext4Error> {
        if tree.nodes.len() != self.node_count {
            return Err(Ext4Error::TreeMismatch("node count"));
        }
        let (batches_tx, batches) = sync_channel(QUEUE_BATCHES);
        let (spent, spent_rx) = sync_channel(QUEUE_BATCHES);
        std::thread::scope(|scope| {
            let reader = scope.spawn(move || read_files(self, tree, batches_tx, spent_rx));
            let mut feed = Feed { batches, spent, cur: Vec::new(), pos: 0 };
            let written = self.write_pass(tree, out, offset, &mut feed, progress);
            // Hang up first, so a reader still sending sees the write pass has stopped.
            drop(feed);
            let hashes = reader.join().map_err(|_| Ext4Error::TreeMismatch("reader thread"))?;
            written.map(|()| hashes)
        })
    }

    /// The write pass proper, fed with file data by [`read_files`].
    fn write_pass(
        &self,
        tree: &FsTree,
        out: &File,
        offset: u64,
        feed: &mut Feed,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), Ext4Error> {
        let geo = &self.geo;
        let seed = fs_seed(&self.opts.uuid);
        let mut pass = Pass {
            never_planned: &self.never_planned,
            spare_cursor: 0,
            out: Out::new(out, offset),
            used: self.meta_used.clone(),
            seed,
        };
        let mut itables =
            InodeTables { geo, plan: self, out: Out::new(out, offset), block: None, buf: vec![0; BS] };
        let links = tree.link_counts();
        let mut used_dirs = vec![0u32; geo.groups as usize];
        let mut done = 0u64;
        let t = self.opts.time;

        // Reserved inodes in number order: the resize inode (7) and the journal (8).
        let (resize, jnl, jnl_blocks) = self.special_inodes(&mut pass)?;
        // Inode 2 (root) must go before 7 and 8 so the inode table fills in order.
        let mut pending = vec![(RESIZE_INO, resize), (JOURNAL_INO, jnl)];
        for (item, al) in self.census.items.iter().zip(&self.allocs) {
            while pending.first().is_some_and(|(i, _)| *i < item.ino) {
                let (i, ino) = pending.remove(0);
                itables.put(i, &ino.to_bytes(i, seed))?;
            }
            let ino_no = item.ino;
            let meta_owned;
            let meta: &Metadata = match item.node {
                Some(id) => &tree.node(id).meta,
                None => {
                    meta_owned = Metadata::new(0o700, 0, 0, t);
                    &meta_owned
                }
            };
            let nlinks = match item.node {
                Some(id) => {
                    links[id.0 as usize] + (id.0 == 0 && self.census.tree_lost_found.is_none()) as u32
                }
                None => 2,
            };
            let kind = item.node.map(|id| &tree.node(id).kind);
            let mut xattr_blocks = 0;
            let mut ino;
            match (kind, &item.content) {
                (None | Some(NodeKind::Dir(_)), Content::Dir { indexed, .. }) => {
                    ino = metadata_inode(meta, inode::S_IFDIR, nlinks);
                    let entries = dir_entries(tree, &self.census, item.node);
                    let parent = match item.node {
                        Some(id) => self.census.parent_ino[id.0 as usize],
                        None => ROOT_INO,
                    };
                    let min = if ino_no == LOST_FOUND_INO { LOST_FOUND_BLOCKS } else { 1 };
                    let d = dir::build(
                        ino_no,
                        parent,
                        &entries,
                        &self.opts.hash_seed,
                        min,
                        inode_seed(seed, ino_no, 0),
                    )
                    .map_err(|()| Ext4Error::TreeMismatch("directory layout"))?;
                    if d.blocks.len() as u64 != al.runs.iter().map(|r| r.2).sum::<u64>()
                        || d.indexed != *indexed
                    {
                        return Err(Ext4Error::TreeMismatch("directory size"));
                    }
                    let (root, blocks) = pass.dense(ino_no, al, &d.blocks)?;
                    ino.i_block = root;
                    ino.size = d.blocks.len() as u64 * BLOCK_SIZE;
                    ino.blocks_512 = blocks * 8;
                    ino.flags = EXT4_EXTENTS_FL | if d.indexed { EXT4_INDEX_FL } else { 0 };
                    used_dirs[((ino_no - 1) / geo.inodes_per_group) as usize] += 1;
                }
                (Some(NodeKind::File(f)), Content::File { .. }) => {
                    ino = metadata_inode(meta, inode::S_IFREG, nlinks);
                    let (root, blocks) = pass.file(ino_no, al, feed, progress, &mut done)?;
                    ino.i_block = root;
                    ino.size = f.size;
                    ino.blocks_512 = blocks * 8;
                    ino.flags = EXT4_EXTENTS_FL;
                }
                (Some(NodeKind::Symlink(target)), Content::FastSymlink) => {
                    ino = metadata_inode(meta, inode::S_IFLNK, nlinks);
                    ino.i_block[..target.len()].copy_from_slice(target);
                    ino.size = target.len() as u64;
                }
                (Some(NodeKind::Symlink(target)), Content::SlowSymlink) => {
                    ino = metadata_inode(meta, inode::S_IFLNK, nlinks);
                    let mut blk = vec![0u8; BS];
                    blk[..target.len()].copy_from_slice(target);
                    let (root, blocks) = pass.dense(ino_no, al, &[blk])?;
                    ino.i_block = root;
                    ino.size = target.len() as u64;
                    ino.blocks_512 = blocks * 8;
                    ino.flags = EXT4_EXTENTS_FL;
                }
                (Some(k), Content::Special) => {
                    let (mode, dev) = match k {
                        NodeKind::CharDevice { major, minor } => (inode::S_IFCHR, Some((*major, *minor))),
                        NodeKind::BlockDevice { major, minor } => (inode::S_IFBLK, Some((*major, *minor))),
                        NodeKind::Fifo => (inode::S_IFIFO, None),
                        _ => (inode::S_IFSOCK, None),
                    };
                    ino = metadata_inode(meta, mode, nlinks);
                    if let Some((major, minor)) = dev {
                        if major < 256 && minor < 256 {
                            put_u32(&mut ino.i_block, 0, (major << 8) | minor);
                        } else {
                            put_u32(
                                &mut ino.i_block,
                                4,
                                (minor & 0xFF) | (major << 8) | ((minor & !0xFF) << 12),
                            );
                        }
                    }
                }
                _ => return Err(Ext4Error::TreeMismatch("node kind")),
            }
            if let Some(b) = al.xattr_block {
                pass.mark(b, 1);
                pass.out.write_blocks(b, &xattr::block(&item.block_attrs, b, seed))?;
                ino.file_acl = b;
                xattr_blocks = 1;
            }
            ino.blocks_512 += xattr_blocks * 8;
            ino.ibody_xattrs = xattr::ibody(&item.ibody_attrs);
            itables.put(ino_no, &ino.to_bytes(ino_no, seed))?;
        }
        for (i, ino) in pending {
            itables.put(i, &ino.to_bytes(i, seed))?;
        }
        itables.flush()?;
        self.finish(&mut pass, &used_dirs, jnl_blocks)?;
        pass.out.flush()
    }

    /// The resize and journal inodes, with their blocks written.
    fn special_inodes(&self, pass: &mut Pass) -> Result<(Inode, Inode, [u32; 17]), Ext4Error> {
        let geo = &self.geo;
        let t = self.opts.time;
        // Journal: superblock in its first block, the rest stays zero.
        let first = self.journal.runs[0].1;
        pass.out.write_blocks(
            first,
            &journal::superblock(geo.journal_blocks as u32, &self.opts.uuid, BLOCK_SIZE as u32),
        )?;
        let extents = extent::from_runs(self.journal.runs.iter().copied());
        let (root, tree) = pass.extent_tree(JOURNAL_INO, &extents, &self.journal.tree_blocks)?;
        let mut jnl = fixed_inode(inode::S_IFREG | 0o600, t);
        jnl.i_block = root;
        jnl.size = geo.journal_blocks * BLOCK_SIZE;
        jnl.blocks_512 = (geo.journal_blocks + tree) * 8;
        jnl.flags = EXT4_EXTENTS_FL;
        let mut jnl_blocks = [0u32; 17];
        for (k, w) in jnl.i_block.chunks(4).enumerate() {
            jnl_blocks[k] = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        }
        jnl_blocks[15] = (jnl.size >> 32) as u32;
        jnl_blocks[16] = jnl.size as u32;

        // Resize inode: a double-indirect block listing the primary reserved GDT blocks;
        // each of those lists its copies in the backup groups.
        let mut resize = fixed_inode(inode::S_IFREG | 0o600, t);
        let mut dind = vec![0u8; BS];
        let backups: Vec<u32> = (1..geo.groups).filter(|&g| Geometry::has_super(g)).collect();
        let mut blocks = 1u64;
        for j in 0..geo.rsv_gdt_blocks as u64 {
            let gdt_blk = 1 + geo.gdt_blocks as u64 + j;
            let slot = ((geo.gdt_blocks as u64 + j) % ADDR_PER_BLOCK) as usize;
            put_u32(&mut dind, slot * 4, gdt_blk as u32);
            let mut list = vec![0u8; BS];
            for (k, &g) in backups.iter().enumerate() {
                put_u32(&mut list, k * 4, (gdt_blk + geo.group_start(g)) as u32);
            }
            blocks += 1 + backups.len() as u64;
            if !backups.is_empty() {
                pass.out.write_blocks(gdt_blk, &list)?;
            }
        }
        pass.out.write_blocks(self.resize_dind, &dind)?;
        put_u32(&mut resize.i_block, 13 * 4, self.resize_dind as u32);
        resize.blocks_512 = blocks * 8;
        resize.size = (ADDR_PER_BLOCK * ADDR_PER_BLOCK + ADDR_PER_BLOCK + 12) * BLOCK_SIZE;
        Ok((resize, jnl, jnl_blocks))
    }

    /// Bitmaps, group descriptors and superblocks, once every block is known.
    fn finish(&self, pass: &mut Pass, used_dirs: &[u32], jnl_blocks: [u32; 17]) -> Result<(), Ext4Error> {
        let geo = &self.geo;
        let seed = pass.seed;
        let ipg = geo.inodes_per_group as u64;
        let max_ino = self.census.max_ino as u64;
        let mut inodes = Bitmap::new(geo.inodes_count() as u64);
        inodes.set_range(0, max_ino);
        let mut descs = vec![0u8; geo.gdt_blocks as usize * BS];
        let (mut free_blocks, mut free_inodes) = (0u64, 0u64);
        for g in 0..geo.groups {
            let gm = self.groups[g as usize];
            let start = geo.group_start(g);
            let len = geo.group_len(g);
            let bb = pass.used.block(start, len, BS);
            let ib = inodes.block(g as u64 * ipg, ipg, BS);
            pass.out.write_blocks(gm.block_bitmap, &bb)?;
            pass.out.write_blocks(gm.inode_bitmap, &ib)?;
            let used_b = pass.used.count_range(start, len);
            let used_i = inodes.count_range(g as u64 * ipg, ipg);
            let d = GroupDesc {
                block_bitmap: gm.block_bitmap,
                inode_bitmap: gm.inode_bitmap,
                inode_table: gm.inode_table,
                free_blocks: (len - used_b) as u32,
                free_inodes: (ipg - used_i) as u32,
                used_dirs: used_dirs[g as usize],
                flags: EXT4_BG_INODE_ZEROED,
                block_bitmap_csum: crc32c_raw(seed, &bb[..(geo.blocks_per_group / 8) as usize]),
                inode_bitmap_csum: crc32c_raw(seed, &ib[..(ipg / 8) as usize]),
                itable_unused: (ipg - used_i) as u32,
            };
            free_blocks += len - used_b;
            free_inodes += ipg - used_i;
            let o = g as usize * geo.desc_size;
            d.write(&mut descs[o..o + geo.desc_size], g, seed);
        }
        let counts = SuperCounts { free_blocks, free_inodes: free_inodes as u32, jnl_blocks };
        for g in 0..geo.groups {
            if !Geometry::has_super(g) {
                continue;
            }
            let sb = superblock::build(geo, &self.opts, &counts, g);
            let start = geo.group_start(g);
            if g == 0 {
                pass.out.write_bytes(1024, &sb)?;
            } else {
                pass.out.write_blocks(start, &sb)?;
            }
            pass.out.write_blocks(start + 1, &descs)?;
        }
        Ok(())
    }
}
