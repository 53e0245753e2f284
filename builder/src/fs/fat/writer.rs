//! Planning (cluster allocation, directory entries) and writing of one FAT filesystem; the layout is the module doc of `fs/fat/mod.rs`.

use super::geometry::{self, FatType, Geometry, MEDIA, NUM_FATS, SECTOR};
use super::name;
use super::time::FatTime;
use super::{FatError, FatNode, FatOptions, FatTree, FileData};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};

const ATTR_DIR: u8 = 0x10;
const ATTR_ARCHIVE: u8 = 0x20;
const ATTR_VOLUME: u8 = 0x08;
const MIB: u64 = 1 << 20;

/// A planned directory: where it lives and what it holds.
#[derive(Debug, Clone)]
struct PDir {
    /// First cluster; 0 for the fixed FAT12/16 root directory.
    first: u32,
    clusters: u32,
    entries: Vec<PEntry>,
}

#[derive(Debug, Clone)]
struct PEntry {
    name: String,
    short: [u8; 11],
    lfn: bool,
    node: PNode,
}

#[derive(Debug, Clone)]
enum PNode {
    Dir(PDir),
    File { data: FileData, first: u32, clusters: u32 },
}

/// A FAT filesystem ready to be written.
#[derive(Debug, Clone)]
pub struct FatPlan {
    pub geometry: Geometry,
    pub label: [u8; 11],
    pub volume_id: u32,
    /// Clusters in use (directories and files).
    pub used_clusters: u32,
    time: FatTime,
    root: PDir,
}

impl FatPlan {
    pub fn free_clusters(&self) -> u32 {
        self.geometry.clusters - self.used_clusters
    }
    pub fn size_bytes(&self) -> u64 {
        self.geometry.total_sectors as u64 * SECTOR
    }
}

/// Slots one entry takes in its directory.
fn entry_slots(e: &PEntry) -> u64 {
    1 + if e.lfn { name::lfn_slots(&e.name) as u64 } else { 0 }
}

/// The entries of `map` with their short names, not yet allocated.
fn entries(map: &BTreeMap<String, FatNode>) -> Vec<(String, [u8; 11], bool, &FatNode)> {
    let shorts = name::short_names(map.keys().map(String::as_str));
    map.iter().zip(shorts).map(|((n, node), (s, lfn))| (n.clone(), s, lfn, node)).collect()
}

struct Alloc {
    next: u64,
    cluster_bytes: u64,
}

impl Alloc {
    fn take(&mut self, bytes: u64, at_least_one: bool) -> (u32, u32) {
        let n = bytes.div_ceil(self.cluster_bytes).max(u64::from(at_least_one));
        if n == 0 {
            return (0, 0);
        }
        let first = self.next;
        self.next += n;
        // Cluster numbers beyond u32 only arise for trees that do not fit; the caller
        // compares `next` with the geometry and reports TooSmall before using them.
        (first.min(u32::MAX as u64) as u32, n.min(u32::MAX as u64) as u32)
    }
}

/// Allocates a directory (`.` and `..` included) and then, in order, its children.
fn build_dir(map: &BTreeMap<String, FatNode>, alloc: &mut Alloc) -> PDir {
    let list = entries(map);
    let slots: u64 = 2 + list
        .iter()
        .map(|(n, _, lfn, _)| 1 + if *lfn { name::lfn_slots(n) as u64 } else { 0 })
        .sum::<u64>();
    let (first, clusters) = alloc.take(slots * 32, true);
    let entries = build_children(list, alloc);
    PDir { first, clusters, entries }
}

fn build_children(list: Vec<(String, [u8; 11], bool, &FatNode)>, alloc: &mut Alloc) -> Vec<PEntry> {
    list.into_iter()
        .map(|(name, short, lfn, node)| {
            let node = match node {
                FatNode::Dir(sub) => PNode::Dir(build_dir(sub, alloc)),
                FatNode::File(data) => {
                    let (first, clusters) = alloc.take(data.len(), false);
                    PNode::File { data: data.clone(), first, clusters }
                }
            };
            PEntry { name, short, lfn, node }
        })
        .collect()
}

pub fn plan(tree: &FatTree, bytes: u64, opts: &FatOptions) -> Result<FatPlan, FatError> {
    let label = opts.label_bytes()?;
    let g = geometry::mkfs_geometry(bytes, opts.hidden_sectors)?;
    let mut alloc = Alloc { next: 2, cluster_bytes: g.cluster_bytes() };
    let list = entries(&tree.root);
    let root_slots: u64 = 1 + list
        .iter()
        .map(|(n, _, lfn, _)| 1 + if *lfn { name::lfn_slots(n) as u64 } else { 0 })
        .sum::<u64>();
    let root = if g.fat_type == FatType::Fat32 {
        let (first, clusters) = alloc.take(root_slots * 32, true);
        PDir { first, clusters, entries: build_children(list, &mut alloc) }
    } else {
        if root_slots > g.root_entries as u64 {
            return Err(FatError::RootFull {
                label: opts.label.clone(),
                slots: root_slots,
                max: g.root_entries as u64,
            });
        }
        PDir { first: 0, clusters: 0, entries: build_children(list, &mut alloc) }
    };
    let used = alloc.next - 2;
    if used > g.clusters as u64 {
        let cb = g.cluster_bytes();
        let (needed, free) = (used * cb, g.clusters as u64 * cb);
        return Err(FatError::TooSmall {
            label: opts.label.clone(),
            needed,
            available: bytes,
            free,
            missing_mib: (needed - free).div_ceil(MIB),
        });
    }
    Ok(FatPlan {
        geometry: g,
        label,
        volume_id: opts.volume_id,
        used_clusters: used as u32,
        time: FatTime::from_unix(opts.time),
        root,
    })
}

fn short_entry(name: &[u8; 11], attr: u8, first: u32, size: u32, t: FatTime) -> [u8; 32] {
    let mut e = [0u8; 32];
    e[..11].copy_from_slice(name);
    e[11] = attr;
    e[13] = t.tenths;
    e[14..16].copy_from_slice(&t.time.to_le_bytes());
    e[16..18].copy_from_slice(&t.date.to_le_bytes());
    e[18..20].copy_from_slice(&t.date.to_le_bytes());
    e[20..22].copy_from_slice(&((first >> 16) as u16).to_le_bytes());
    e[22..24].copy_from_slice(&t.time.to_le_bytes());
    e[24..26].copy_from_slice(&t.date.to_le_bytes());
    e[26..28].copy_from_slice(&(first as u16).to_le_bytes());
    e[28..32].copy_from_slice(&size.to_le_bytes());
    e
}

impl FatPlan {
    /// The encoded entries of `dir` (`parent` is the cluster `..` names; `None` for the root).
    fn dir_bytes(&self, dir: &PDir, parent: Option<u32>) -> Vec<u8> {
        let t = self.time;
        let mut out = Vec::new();
        match parent {
            None => out.extend_from_slice(&short_entry(&self.label, ATTR_VOLUME, 0, 0, t)),
            Some(p) => {
                out.extend_from_slice(&short_entry(b".          ", ATTR_DIR, dir.first, 0, t));
                out.extend_from_slice(&short_entry(b"..         ", ATTR_DIR, p, 0, t));
            }
        }
        for e in &dir.entries {
            if e.lfn {
                for slot in name::lfn_entries(&e.name, &e.short) {
                    out.extend_from_slice(&slot);
                }
            }
            let (attr, first, size) = match &e.node {
                PNode::Dir(d) => (ATTR_DIR, d.first, 0),
                // Sizes fit: a FAT file holds at most 4 GiB - 1, checked when planning the boot files.
                PNode::File { data, first, .. } => {
                    (ATTR_ARCHIVE, *first, data.len().min(u32::MAX as u64) as u32)
                }
            };
            out.extend_from_slice(&short_entry(&e.short, attr, first, size, t));
        }
        debug_assert_eq!(
            out.len() as u64 / 32,
            if parent.is_none() { 1 } else { 2 } + dir.entries.iter().map(entry_slots).sum::<u64>()
        );
        out
    }

    fn boot_sector(&self) -> [u8; 512] {
        let g = &self.geometry;
        let mut b = [0u8; 512];
        let fat32 = g.fat_type == FatType::Fat32;
        b[0..3].copy_from_slice(if fat32 { &[0xeb, 0x58, 0x90] } else { &[0xeb, 0x3c, 0x90] });
        b[3..11].copy_from_slice(b"MSWIN4.1");
        b[11..13].copy_from_slice(&(SECTOR as u16).to_le_bytes());
        b[13] = g.sectors_per_cluster as u8;
        b[14..16].copy_from_slice(&(g.reserved_sectors as u16).to_le_bytes());
        b[16] = NUM_FATS as u8;
        b[17..19].copy_from_slice(&(g.root_entries as u16).to_le_bytes());
        if g.total_sectors < 65536 {
            b[19..21].copy_from_slice(&(g.total_sectors as u16).to_le_bytes());
        } else {
            b[32..36].copy_from_slice(&g.total_sectors.to_le_bytes());
        }
        b[21] = MEDIA;
        if !fat32 {
            b[22..24].copy_from_slice(&(g.fat_sectors as u16).to_le_bytes());
        }
        b[24..26].copy_from_slice(&g.sectors_per_track.to_le_bytes());
        b[26..28].copy_from_slice(&g.heads.to_le_bytes());
        b[28..32].copy_from_slice(&g.hidden_sectors.to_le_bytes());
        let vi = if fat32 {
            b[36..40].copy_from_slice(&g.fat_sectors.to_le_bytes());
            b[44..48].copy_from_slice(&self.root.first.to_le_bytes());
            b[48..50].copy_from_slice(&1u16.to_le_bytes());
            b[50..52].copy_from_slice(&6u16.to_le_bytes());
            64
        } else {
            36
        };
        b[vi] = 0x80;
        b[vi + 2] = 0x29;
        b[vi + 3..vi + 7].copy_from_slice(&self.volume_id.to_le_bytes());
        b[vi + 7..vi + 18].copy_from_slice(&self.label);
        b[vi + 18..vi + 26].copy_from_slice(format!("{:<8}", g.fat_type.name()).as_bytes());
        // Boot stub: `int 18h` (no bootable disk: let the BIOS try the next one), then halt.
        b[vi + 26..vi + 31].copy_from_slice(&[0xcd, 0x18, 0xf4, 0xeb, 0xfd]);
        b[510] = 0x55;
        b[511] = 0xaa;
        b
    }

    fn fsinfo(&self) -> [u8; 512] {
        let mut s = [0u8; 512];
        s[0..4].copy_from_slice(b"RRaA");
        s[484..488].copy_from_slice(b"rrAa");
        s[488..492].copy_from_slice(&self.free_clusters().to_le_bytes());
        let next = if self.free_clusters() > 0 { 2 + self.used_clusters } else { u32::MAX };
        s[492..496].copy_from_slice(&next.to_le_bytes());
        s[510] = 0x55;
        s[511] = 0xaa;
        s
    }

    fn fat_table(&self) -> Vec<u8> {
        let g = &self.geometry;
        let mut fat = vec![0u8; g.fat_sectors as usize * SECTOR as usize];
        let set = |fat: &mut [u8], c: u32, v: u32| match g.fat_type {
            FatType::Fat12 => {
                let o = (c as usize * 3) / 2;
                let v = v & 0xfff;
                if c.is_multiple_of(2) {
                    fat[o] = v as u8;
                    fat[o + 1] = (fat[o + 1] & 0xf0) | (v >> 8) as u8;
                } else {
                    fat[o] = (fat[o] & 0x0f) | ((v & 0xf) << 4) as u8;
                    fat[o + 1] = (v >> 4) as u8;
                }
            }
            FatType::Fat16 => {
                fat[c as usize * 2..c as usize * 2 + 2].copy_from_slice(&(v as u16).to_le_bytes())
            }
            FatType::Fat32 => {
                fat[c as usize * 4..c as usize * 4 + 4].copy_from_slice(&(v & 0x0fff_ffff).to_le_bytes())
            }
        };
        set(&mut fat, 0, 0x0fff_ff00 | MEDIA as u32);
        set(&mut fat, 1, 0x0fff_ffff);
        let mut chain = |first: u32, n: u32| {
            for c in first..first + n {
                set(&mut fat, c, if c + 1 == first + n { 0x0fff_fff8 } else { c + 1 });
            }
        };
        fn walk(d: &PDir, chain: &mut dyn FnMut(u32, u32)) {
            if d.clusters > 0 {
                chain(d.first, d.clusters);
            }
            for e in &d.entries {
                match &e.node {
                    PNode::Dir(sub) => walk(sub, chain),
                    PNode::File { first, clusters, .. } if *clusters > 0 => chain(*first, *clusters),
                    PNode::File { .. } => {}
                }
            }
        }
        walk(&self.root, &mut chain);
        fat
    }

    /// Writes the filesystem into `w` at byte `offset` (the partition's start). The range
    /// must read as zeros (a fresh sparse image); only non-zero structures are written.
    pub fn write<W: Write + Seek>(
        &self,
        w: &mut W,
        offset: u64,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), FatError> {
        let g = self.geometry;
        let mut put = |at: u64, data: &[u8]| -> Result<(), FatError> {
            let pos = offset + at;
            let err = |error| FatError::Write { offset: pos, error };
            w.seek(SeekFrom::Start(pos)).map_err(err)?;
            w.write_all(data).map_err(err)
        };
        let boot = self.boot_sector();
        put(0, &boot)?;
        if g.fat_type == FatType::Fat32 {
            let info = self.fsinfo();
            put(SECTOR, &info)?;
            put(6 * SECTOR, &boot)?;
            put(7 * SECTOR, &info)?;
        }
        let fat = self.fat_table();
        for i in 0..NUM_FATS as u64 {
            put((g.reserved_sectors as u64 + i * g.fat_sectors as u64) * SECTOR, &fat)?;
        }
        let root_at = if g.fat_type == FatType::Fat32 {
            g.cluster_offset(self.root.first)
        } else {
            (g.reserved_sectors + NUM_FATS * g.fat_sectors) as u64 * SECTOR
        };
        put(root_at, &self.dir_bytes(&self.root, None))?;
        // Directories first (small), then file data in allocation order.
        let mut files = Vec::new();
        self.write_dirs(&self.root, &mut put, &mut files)?;
        let mut buf = vec![0u8; 1 << 20];
        for (data, first) in files {
            let mut r = data.open()?;
            let path = match data {
                FileData::Host { path, .. } => path.clone(),
                FileData::Bytes(_) => "<generated file>".into(),
            };
            let mut at = g.cluster_offset(first);
            let mut left = data.len();
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                read_full(&mut r, &mut buf[..n]).map_err(|error| match error.kind() {
                    std::io::ErrorKind::UnexpectedEof => {
                        FatError::SourceChanged { path: path.clone(), expected: data.len() }
                    }
                    _ => FatError::Read { path: path.clone(), error },
                })?;
                put(at, &buf[..n])?;
                at += n as u64;
                left -= n as u64;
                progress(n as u64);
            }
            let mut probe = [0u8; 1];
            if matches!(r.read(&mut probe), Ok(1)) {
                return Err(FatError::SourceChanged { path, expected: data.len() });
            }
        }
        Ok(())
    }

    fn write_dirs<'a>(
        &'a self,
        d: &'a PDir,
        put: &mut Put<'_>,
        files: &mut Vec<(&'a FileData, u32)>,
    ) -> Result<(), FatError> {
        let g = self.geometry;
        // `..` of a top-level directory names cluster 0, also on FAT32.
        let here = if d.first == self.root.first { 0 } else { d.first };
        for e in &d.entries {
            match &e.node {
                PNode::Dir(sub) => {
                    put(g.cluster_offset(sub.first), &self.dir_bytes(sub, Some(here)))?;
                    self.write_dirs(sub, put, files)?;
                }
                PNode::File { data, first, clusters } if *clusters > 0 => files.push((data, *first)),
                PNode::File { .. } => {}
            }
        }
        Ok(())
    }
}

/// Writes bytes at a filesystem offset.
type Put<'a> = dyn FnMut(u64, &[u8]) -> Result<(), FatError> + 'a;

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<()> {
    r.read_exact(buf)
}
