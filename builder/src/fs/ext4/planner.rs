//! The planner: geometry for a block count, metadata placement and block allocation, from a tree's census ([`super::census`]).

use super::bitmap::Bitmap;
use super::census::{Census, Content, census};
use super::extent;
use super::journal::default_journal_blocks;
use super::{BLOCK_SIZE, Ext4Error, Ext4Options, SizeRequest};
use crate::tree::FsTree;

const BPG: u32 = 32768;
const FLEX: u32 = 1 << super::superblock::LOG_GROUPS_PER_FLEX;
const INODES_PER_BLOCK: u32 = (BLOCK_SIZE / 256) as u32;
/// Entries of a 4 KiB block of block numbers (resize inode).
pub const ADDR_PER_BLOCK: u64 = BLOCK_SIZE / 4;
const MIB_BLOCKS: u64 = (1 << 20) / BLOCK_SIZE;

/// The shape of the filesystem for one block count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    pub blocks: u64,
    pub blocks_per_group: u32,
    pub groups: u32,
    pub inodes_per_group: u32,
    pub itable_blocks: u32,
    pub is_64bit: bool,
    pub desc_size: usize,
    pub gdt_blocks: u32,
    pub rsv_gdt_blocks: u32,
    pub journal_blocks: u64,
    pub r_blocks: u64,
}

impl Geometry {
    pub fn inodes_count(&self) -> u32 {
        self.groups * self.inodes_per_group
    }

    pub fn group_start(&self, g: u32) -> u64 {
        g as u64 * BPG as u64
    }

    pub fn group_len(&self, g: u32) -> u64 {
        (self.blocks - self.group_start(g)).min(BPG as u64)
    }

    /// Whether group `g` holds a superblock copy (sparse_super: 0, 1, powers of 3, 5, 7).
    pub fn has_super(g: u32) -> bool {
        if g <= 1 {
            return true;
        }
        [3u32, 5, 7].iter().any(|&p| {
            let mut x = g;
            while x.is_multiple_of(p) {
                x /= p;
            }
            x == 1
        })
    }

    /// Blocks at the start of a group with a superblock copy: superblock, GDT, reserved GDT.
    pub fn super_area(&self) -> u64 {
        1 + self.gdt_blocks as u64 + self.rsv_gdt_blocks as u64
    }
}

enum GeoError {
    TooManyInodes,
    LastGroupTooSmall { rem: u64 },
    TooLarge,
}

fn geometry(
    blocks: u64,
    opts: &Ext4Options,
    needed_inodes: u64,
    data_blocks: u64,
) -> Result<Geometry, GeoError> {
    if blocks >= 1 << 48 {
        return Err(GeoError::TooLarge);
    }
    let groups = blocks.div_ceil(BPG as u64);
    let is_64bit = opts.force_64bit || blocks > u32::MAX as u64;
    let desc_size = if is_64bit { 64 } else { 32 };
    let descs_per_block = BLOCK_SIZE / desc_size as u64;
    let max_ipg = BPG as u64; // one bitmap block per group
    if needed_inodes > groups * max_ipg
        || groups * max_ipg > u32::MAX as u64 && needed_inodes > u32::MAX as u64
    {
        return Err(GeoError::TooManyInodes);
    }
    // One inode per `inode_ratio` bytes, and at least the tree's inodes plus one per
    // `inode_ratio` bytes of the space the tree leaves free, so a filesystem full of small
    // files still has inodes for what is added later.
    let ratio = opts.inode_ratio.max(1024);
    let by_ratio = blocks * BLOCK_SIZE / ratio;
    let for_free_space = blocks.saturating_sub(data_blocks) * BLOCK_SIZE / ratio;
    let want = by_ratio.max(needed_inodes + for_free_space).min(groups * max_ipg);
    let ipg = want
        .div_ceil(groups)
        .next_multiple_of(INODES_PER_BLOCK as u64)
        .clamp(INODES_PER_BLOCK as u64, max_ipg);
    let ipg = if ipg * groups > u32::MAX as u64 { (u32::MAX as u64 / groups) / 16 * 16 } else { ipg };
    let itable_blocks = ipg / INODES_PER_BLOCK as u64;
    let gdt_blocks = groups.div_ceil(descs_per_block);
    // mke2fs's calc_reserved_gdt_blocks: room to grow 1024-fold (or to 2^32 blocks).
    let max_blocks = if blocks < u32::MAX as u64 / 1024 { blocks * 1024 } else { u32::MAX as u64 };
    let rsv_groups = max_blocks.div_ceil(BPG as u64);
    let rsv_gdt = rsv_groups.div_ceil(descs_per_block).saturating_sub(gdt_blocks).min(ADDR_PER_BLOCK);
    let geo = Geometry {
        blocks,
        blocks_per_group: BPG,
        groups: groups as u32,
        inodes_per_group: ipg as u32,
        itable_blocks: itable_blocks as u32,
        is_64bit,
        desc_size,
        gdt_blocks: gdt_blocks as u32,
        rsv_gdt_blocks: rsv_gdt as u32,
        journal_blocks: default_journal_blocks(blocks),
        r_blocks: blocks * opts.reserved_percent as u64 / 100,
    };
    // mke2fs drops a last group too small for its own metadata plus 50 blocks.
    let rem = blocks % BPG as u64;
    if rem != 0 {
        let last = geo.groups - 1;
        let mut overhead = 2 + itable_blocks;
        if Geometry::has_super(last) {
            overhead += geo.super_area();
        }
        if rem < overhead + 50 {
            return Err(GeoError::LastGroupTooSmall { rem });
        }
    }
    Ok(geo)
}

/// Where one inode's blocks are.
#[derive(Debug, Clone, Default)]
pub struct NodeAlloc {
    pub xattr_block: Option<u64>,
    /// (logical, physical, len) runs for the data, in logical order.
    pub runs: Vec<(u64, u64, u64)>,
    /// Blocks reserved for the extent tree (the dense case's need).
    pub tree_blocks: Vec<u64>,
}

/// Locations of one group's bitmaps and inode table.
#[derive(Debug, Clone, Copy, Default)]
pub struct GroupMeta {
    pub block_bitmap: u64,
    pub inode_bitmap: u64,
    pub inode_table: u64,
}

/// Everything [`Ext4Plan::write`] needs: the geometry, the census and every block's place.
pub struct Ext4Plan {
    pub(crate) opts: Ext4Options,
    pub(crate) geo: Geometry,
    pub(crate) census: Census,
    /// Blocks in use before any inode's data: superblocks, GDTs, bitmaps, inode tables,
    /// the resize inode's block and the journal.
    pub(crate) meta_used: Bitmap,
    /// Every block the plan hands out; its clear bits are space no inode was given.
    pub(crate) never_planned: Bitmap,
    pub(crate) groups: Vec<GroupMeta>,
    pub(crate) resize_dind: u64,
    pub(crate) journal: NodeAlloc,
    pub(crate) allocs: Vec<NodeAlloc>,
    pub(crate) node_count: usize,
}

impl Ext4Plan {
    /// Size of the filesystem in bytes (a multiple of 4096).
    pub fn size_bytes(&self) -> u64 {
        self.geo.blocks * BLOCK_SIZE
    }

    /// The `s_feature_incompat` bits the superblock will carry (boot loaders check them).
    pub fn incompat_features(&self) -> u32 {
        super::superblock::incompat_features(self.geo.is_64bit)
    }

    /// Bytes of file data the write pass reads: the total that its `progress` callback
    /// counts up to.
    pub fn data_bytes(&self) -> u64 {
        self.census
            .items
            .iter()
            .map(|i| match &i.content {
                Content::File { runs } => runs.iter().map(|r| r.1).sum::<u64>() * BLOCK_SIZE,
                _ => 0,
            })
            .sum()
    }

    /// Inodes the filesystem has, and the highest inode number the tree uses.
    pub fn inode_counts(&self) -> (u32, u32) {
        (self.geo.inodes_count(), self.census.max_ino)
    }
}

/// A simple first-fit allocator over a bitmap, moving forward.
struct Alloc<'a> {
    used: &'a mut Bitmap,
    cursor: u64,
    len: u64,
}

impl Alloc<'_> {
    /// The next free run of at most `max` blocks.
    fn run(&mut self, max: u64) -> Option<(u64, u64)> {
        let start = self.used.next_clear(self.cursor)?;
        let mut end = start + 1;
        while end < self.len && end - start < max && !self.used.get(end) {
            end += 1;
        }
        self.used.set_range(start, end - start);
        self.cursor = end;
        Some((start, end - start))
    }

    /// Physical runs for `len` blocks starting at logical block `logical`.
    fn runs(&mut self, logical: u64, len: u64, out: &mut Vec<(u64, u64, u64)>) -> Option<()> {
        let mut done = 0;
        while done < len {
            let (p, l) = self.run(len - done)?;
            out.push((logical + done, p, l));
            done += l;
        }
        Some(())
    }

    fn blocks(&mut self, n: usize) -> Option<Vec<u64>> {
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            let (p, l) = self.run((n - v.len()) as u64)?;
            v.extend(p..p + l);
        }
        Some(v)
    }
}

/// First free block at or after `goal`, wrapping to the start.
fn first_free(used: &Bitmap, goal: u64) -> Option<u64> {
    used.next_clear(goal).or_else(|| used.next_clear(0))
}

/// First run of `n` free blocks at or after `goal`, wrapping to the start.
fn first_free_run(used: &Bitmap, goal: u64, n: u64, len: u64) -> Option<u64> {
    for from in [goal, 0] {
        let mut s = from;
        while let Some(start) = used.next_clear(s) {
            if start + n > len {
                break;
            }
            match (start..start + n).find(|&i| used.get(i)) {
                None => return Some(start),
                Some(busy) => s = busy + 1,
            }
        }
    }
    None
}

/// Places metadata and every block for `geo`; `Err(missing)` estimates how many blocks
/// are short.
fn layout(geo: Geometry, census: &Census, opts: &Ext4Options, node_count: usize) -> Result<Ext4Plan, u64> {
    let mut used = Bitmap::new(geo.blocks);
    for g in 0..geo.groups {
        if Geometry::has_super(g) {
            used.set_range(geo.group_start(g), geo.super_area().min(geo.group_len(g)));
        }
    }
    let mut groups = vec![GroupMeta::default(); geo.groups as usize];
    for f in 0..geo.groups.div_ceil(FLEX) {
        let goal = geo.group_start(f * FLEX);
        let members = f * FLEX..((f + 1) * FLEX).min(geo.groups);
        for g in members.clone() {
            let b = first_free(&used, goal).ok_or(MIB_BLOCKS)?;
            used.set(b);
            groups[g as usize].block_bitmap = b;
        }
        for g in members.clone() {
            let b = first_free(&used, goal).ok_or(MIB_BLOCKS)?;
            used.set(b);
            groups[g as usize].inode_bitmap = b;
        }
        for g in members {
            let n = geo.itable_blocks as u64;
            let b = first_free_run(&used, goal, n, geo.blocks).ok_or(n)?;
            used.set_range(b, n);
            groups[g as usize].inode_table = b;
        }
    }
    let fixed_used = used.count_ones();
    let journal_tree = extent::tree_blocks((geo.journal_blocks / extent::MAX_EXTENT_LEN + 2) as usize) as u64;
    let need = fixed_used + 1 + geo.journal_blocks + journal_tree + census.total_blocks + geo.r_blocks;
    if need > geo.blocks {
        return Err(need - geo.blocks);
    }
    let len = geo.blocks;
    let mut a = Alloc { used: &mut used, cursor: 0, len };
    let resize_dind = a.blocks(1).ok_or(MIB_BLOCKS)?[0];
    let mut journal = NodeAlloc::default();
    a.runs(0, geo.journal_blocks, &mut journal.runs).ok_or(MIB_BLOCKS)?;
    let n = extent::from_runs(journal.runs.iter().copied()).len();
    journal.tree_blocks = a.blocks(extent::tree_blocks(n)).ok_or(MIB_BLOCKS)?;
    let meta_used = a.used.clone();
    let mut allocs = Vec::with_capacity(census.items.len());
    for item in &census.items {
        let mut al = NodeAlloc::default();
        if !item.block_attrs.is_empty() {
            al.xattr_block = Some(a.blocks(1).ok_or(MIB_BLOCKS)?[0]);
        }
        match &item.content {
            Content::Dir { blocks, .. } => a.runs(0, *blocks, &mut al.runs).ok_or(MIB_BLOCKS)?,
            Content::File { runs } => {
                for &(l, n) in runs {
                    a.runs(l, n, &mut al.runs).ok_or(MIB_BLOCKS)?;
                }
            }
            Content::SlowSymlink => a.runs(0, 1, &mut al.runs).ok_or(MIB_BLOCKS)?,
            _ => {}
        }
        if !matches!(item.content, Content::SlowSymlink) {
            let n = extent::from_runs(al.runs.iter().copied()).len();
            al.tree_blocks = a.blocks(extent::tree_blocks(n)).ok_or(MIB_BLOCKS)?;
        }
        allocs.push(al);
    }
    let used_total = a.used.count_ones();
    if used_total + geo.r_blocks > len {
        return Err(used_total + geo.r_blocks - len);
    }
    Ok(Ext4Plan {
        opts: opts.clone(),
        geo,
        census: Census {
            items: Vec::new(),
            ino_of: Vec::new(),
            parent_ino: Vec::new(),
            tree_lost_found: None,
            total_blocks: 0,
            max_ino: 0,
        },
        meta_used,
        never_planned: a.used.clone(),
        groups,
        resize_dind,
        journal,
        allocs,
        node_count,
    })
}

enum Attempt {
    Fits(Box<Ext4Plan>),
    /// Not enough room: grow by at least this many blocks.
    Short(u64),
    /// This block count cannot be used (the last group is too small): `rem` blocks too many.
    BadLastGroup(u64),
}

fn attempt(
    blocks: u64,
    census: &Census,
    opts: &Ext4Options,
    node_count: usize,
) -> Result<Attempt, Ext4Error> {
    let needed_inodes = census.max_ino as u64;
    match geometry(blocks, opts, needed_inodes, census.total_blocks) {
        Ok(geo) => Ok(match layout(geo, census, opts, node_count) {
            Ok(p) => Attempt::Fits(Box::new(p)),
            Err(missing) => Attempt::Short(missing.max(1)),
        }),
        Err(GeoError::LastGroupTooSmall { rem }) => Ok(Attempt::BadLastGroup(rem)),
        Err(GeoError::TooManyInodes) => {
            let groups = needed_inodes.div_ceil(BPG as u64);
            Ok(Attempt::Short((groups * BPG as u64).saturating_sub(blocks).max(1)))
        }
        Err(GeoError::TooLarge) => Err(Ext4Error::TooLarge { blocks }),
    }
}

/// The smallest block count (a multiple of 1 MiB, at least `from`) where everything fits.
fn smallest_fit(
    from: u64,
    census: &Census,
    opts: &Ext4Options,
    node_count: usize,
) -> Result<Ext4Plan, Ext4Error> {
    let mut blocks = from.next_multiple_of(MIB_BLOCKS).max(4 * MIB_BLOCKS);
    loop {
        match attempt(blocks, census, opts, node_count)? {
            Attempt::Fits(p) => return Ok(*p),
            Attempt::Short(missing) => blocks += missing.next_multiple_of(MIB_BLOCKS),
            Attempt::BadLastGroup(_) => blocks += MIB_BLOCKS,
        }
    }
}

pub fn plan(tree: &FsTree, opts: &Ext4Options, size: SizeRequest) -> Result<Ext4Plan, Ext4Error> {
    plan_with(TreeCensus::of(tree, opts)?, opts, size)
}

/// The census of a tree for some options: what every plan of that tree needs, computed once
/// (it builds every directory and looks at every file) and reused by the plans of several
/// sizes, as `diskSize = "auto"` makes (the smallest size, then the partition's).
pub struct TreeCensus {
    census: Census,
    node_count: usize,
    opts: Ext4Options,
}

impl TreeCensus {
    pub fn of(tree: &FsTree, opts: &Ext4Options) -> Result<Self, Ext4Error> {
        if opts.label.len() > 16 {
            return Err(Ext4Error::LabelTooLong { len: opts.label.len() });
        }
        Ok(TreeCensus { census: census(tree, opts)?, node_count: tree.nodes.len(), opts: opts.clone() })
    }

    /// The smallest filesystem holding the tree (see [`SizeRequest::Auto`]), without using
    /// up the census.
    pub fn minimal_bytes(&self) -> Result<u64, Ext4Error> {
        let (c, n) = (&self.census, self.node_count);
        Ok(auto_fit(c, &self.opts, n, 0)?.size_bytes())
    }

    /// Whether this census is the one `opts` and a tree of `node_count` nodes would give
    /// (the tree itself must be the one it was taken of).
    pub fn fits(&self, opts: &Ext4Options, node_count: usize) -> bool {
        self.opts == *opts && self.node_count == node_count
    }
}

/// [`SizeRequest::Auto`]: the smallest fit, grown by `extra_bytes` (rounded up to 1 MiB).
fn auto_fit(
    census: &Census,
    opts: &Ext4Options,
    node_count: usize,
    extra_bytes: u64,
) -> Result<Ext4Plan, Ext4Error> {
    let lower = census.total_blocks + census.total_blocks / 64;
    let min = smallest_fit(lower, census, opts, node_count)?;
    let target =
        (min.geo.blocks * BLOCK_SIZE).saturating_add(extra_bytes).next_multiple_of(1 << 20) / BLOCK_SIZE;
    if target == min.geo.blocks { Ok(min) } else { smallest_fit(target, census, opts, node_count) }
}

/// [`plan`] from a census taken with `opts`.
pub fn plan_with(tc: TreeCensus, opts: &Ext4Options, size: SizeRequest) -> Result<Ext4Plan, Ext4Error> {
    if !tc.fits(opts, tc.node_count) {
        return Err(Ext4Error::TreeMismatch("census options"));
    }
    let TreeCensus { census, node_count, .. } = tc;
    let mut plan = match size {
        SizeRequest::Auto { extra_bytes } => auto_fit(&census, opts, node_count, extra_bytes)?,
        SizeRequest::Exact(bytes) => {
            let mut blocks = bytes / BLOCK_SIZE;
            let too_small = |census: &Census| -> Result<Ext4Error, Ext4Error> {
                let lower = census.total_blocks + census.total_blocks / 64;
                let min = smallest_fit(lower, census, opts, node_count)?;
                Ok(Ext4Error::TooSmall { needed_bytes: min.geo.blocks * BLOCK_SIZE, available_bytes: bytes })
            };
            loop {
                if blocks < 4 * MIB_BLOCKS {
                    return Err(too_small(&census)?);
                }
                match attempt(blocks, &census, opts, node_count)? {
                    Attempt::Fits(p) => break *p,
                    Attempt::BadLastGroup(rem) => blocks -= rem,
                    Attempt::Short(_) => {
                        if census.max_ino as u64 > blocks.div_ceil(BPG as u64) * BPG as u64 {
                            return Err(Ext4Error::TooManyInodes {
                                needed: census.max_ino as u64,
                                max: blocks.div_ceil(BPG as u64) * BPG as u64,
                                size_bytes: bytes,
                            });
                        }
                        return Err(too_small(&census)?);
                    }
                }
            }
        }
    };
    plan.census = census;
    Ok(plan)
}
