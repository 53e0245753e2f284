//! FAT directories and the tree walk: long names assembled and checked against their short
//! entry, `.`/`..`, the root volume label, sizes against cluster chains, cross-linked and lost
//! clusters, directory loops, and reading a file by path.

use super::boot::FatType;
use super::dirent::{ShortEntry, Slot, decode_long_name, lfn_checksum};
use super::{Fat, Finding, fat_err};
use crate::bytes::ReadAt;
use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::HashSet;

/// The most 32-byte entries a directory may hold (fatgen103 section 6).
pub const MAX_DIR_ENTRIES: u64 = 65536;

/// One file or directory (not `.`, `..` or a volume label).
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// Absolute path, `/` separated, built from long names where present, else short names
    /// with the `DIR_NTRes` case bits applied (as Linux and mtools show them).
    pub path: String,
    /// The last path component.
    pub name: String,
    /// The long name, when the entry has valid LFN entries.
    pub long_name: Option<String>,
    /// `NAME.EXT` as stored, without case bits.
    pub short_name: String,
    /// The short directory entry with every field.
    pub entry: ShortEntry,
    /// Position among its directory's live entries (0-based, `.`/`..` and labels excluded):
    /// the on-disk entry order.
    pub order: usize,
    /// Index of the short entry's 32-byte slot in the directory.
    pub slot: u64,
    /// Image offset of the short entry.
    pub offset: u64,
    /// Number of LFN slots before the short entry.
    pub lfn_slots: usize,
    /// The cluster chain (empty for an empty file).
    pub clusters: Vec<u32>,
}

impl Node {
    pub fn is_dir(&self) -> bool {
        self.entry.is_dir()
    }
}

/// The volume label entry of the root directory.
#[derive(Debug, Clone, Serialize)]
pub struct RootLabel {
    /// `DIR_Name` with a leading 0x05 turned into 0xE5.
    pub raw: [u8; 11],
    pub entry: ShortEntry,
    /// Image offset of the entry.
    pub offset: u64,
}

impl RootLabel {
    /// The label bytes without trailing spaces, as blkid reports them.
    pub fn trimmed(&self) -> &[u8] {
        trim_label(&self.raw)
    }
}

/// Why an 11-byte volume label breaks the short-name rules the spec sets for `DIR_Name`
/// (fatgen103 section 6.1), or `None`. Lower case is accepted: mkfs.fat and Linux write it.
pub fn invalid_label(raw: &[u8; 11]) -> Option<String> {
    if raw.iter().all(|&c| c == b' ') {
        return Some("it is blank".into());
    }
    if raw[0] == b' ' {
        return Some("it starts with a space".into());
    }
    raw.iter()
        .find(|&&c| c < 0x20 || b"\"*+,./:;<=>?[\\]|".contains(&c))
        .map(|c| format!("byte {c:#04x} is not allowed"))
}

/// `raw` without trailing spaces and NULs.
pub fn trim_label(raw: &[u8]) -> &[u8] {
    let end = raw.iter().rposition(|&c| c != b' ' && c != 0).map_or(0, |p| p + 1);
    &raw[..end]
}

/// The result of a walk: every file and directory in order, and what was found wrong.
#[derive(Debug, Clone, Serialize)]
pub struct Tree {
    /// Depth first: a directory's entries in on-disk order, then each of its subdirectories.
    pub nodes: Vec<Node>,
    /// The root directory's volume label entry (the first one, as blkid picks it).
    pub root_label: Option<RootLabel>,
    /// The root directory's clusters (FAT32; empty on FAT12/16).
    pub root_clusters: Vec<u32>,
    /// Clusters allocated in the FAT but owned by no file or directory.
    pub lost_clusters: Vec<u32>,
    pub findings: Vec<Finding>,
}

/// A live entry of one directory.
struct Item {
    entry: ShortEntry,
    long_name: Option<String>,
    slot: u64,
    offset: u64,
    lfn_slots: usize,
}

impl Item {
    fn display_name(&self) -> String {
        self.long_name.clone().unwrap_or_else(|| self.entry.display_name())
    }
    fn is_dot(&self) -> bool {
        matches!(&self.entry.dir_name, b".          " | b"..         ")
    }
}

/// Where a directory's entries are.
enum DirLoc {
    /// The FAT12/16 root directory region.
    FixedRoot,
    Chain(Vec<u32>),
}

/// The root directory: the fixed region on FAT12/16, the chain from `BPB_RootClus` on FAT32.
fn root_loc<R: ReadAt + ?Sized>(fat: &Fat<'_, R>) -> Result<DirLoc> {
    Ok(if fat.geometry.fat_type == FatType::Fat32 {
        DirLoc::Chain(fat.table.chain(fat.boot.bpb_root_clus, "the root directory", &fat.geometry)?)
    } else {
        DirLoc::FixedRoot
    })
}

struct Listing {
    items: Vec<Item>,
    labels: Vec<(ShortEntry, u64)>,
}

/// Reads every slot of a directory, assembling long names. Findings about LFN entries are
/// pushed under `structure`.
fn list_dir<R: ReadAt + ?Sized>(
    fat: &Fat<'_, R>,
    loc: &DirLoc,
    structure: &str,
    findings: &mut Vec<Finding>,
) -> Result<Listing> {
    let geo = &fat.geometry;
    let reader = fat.reader;
    let mut chunks: Vec<(u64, usize)> = Vec::new();
    match loc {
        DirLoc::FixedRoot => {
            chunks.push((geo.root_dir_offset, usize::from(fat.boot.bpb_root_ent_cnt) * 32));
        }
        DirLoc::Chain(c) => {
            let bytes = c.len() as u64 * u64::from(geo.bytes_per_cluster);
            if bytes / 32 > MAX_DIR_ENTRIES {
                return Err(fat_err(
                    structure,
                    geo.cluster_offset(c[0]),
                    format!(
                        "{} clusters hold {} entries, more than the {MAX_DIR_ENTRIES} a directory may have",
                        c.len(),
                        bytes / 32
                    ),
                ));
            }
            chunks.extend(c.iter().map(|&n| (geo.cluster_offset(n), geo.bytes_per_cluster as usize)));
        }
    }
    let mut out = Listing { items: Vec::new(), labels: Vec::new() };
    // Pending LFN entries, highest sequence number first, with the slot of the first.
    let mut pending: Vec<super::dirent::LfnEntry> = Vec::new();
    let mut pending_off = 0u64;
    let mut slot_index = 0u64;
    let base = fat.base;
    let orphan = |findings: &mut Vec<Finding>, off: u64, why: &str| {
        findings.push(Finding::warning(
            structure,
            Some(base + off),
            format!("long name entries ignored: {why}"),
        ));
    };
    // After the end mark every slot is free by the spec, but Linux and fsck.fat read on to
    // the end of the directory and take any slot whose first byte is neither 0x00 nor 0xE5
    // for an entry, so such a slot makes readers disagree.
    let mut ended: Option<u64> = None;
    // The first error and the first warning (a stray label) after the end mark are reported.
    let mut after_end_reported = [false; 2];
    for (off, len) in chunks {
        let buf = reader.read_vec(off, len, structure)?;
        for (i, raw) in buf.chunks_exact(32).enumerate() {
            let soff = off + i as u64 * 32;
            let slot = slot_index;
            slot_index += 1;
            if let Some(end_slot) = ended {
                if raw[0] != 0 && raw[0] != super::dirent::DIR_FREE {
                    // A stray volume label names no clusters and fsck.fat accepts it.
                    let label = matches!(Slot::parse(raw), Slot::Short(e) if e.is_volume_label());
                    let seen = &mut after_end_reported[usize::from(label)];
                    if !*seen {
                        *seen = true;
                        let f = if label { Finding::warning } else { Finding::error };
                        findings.push(f(
                            structure,
                            Some(base + soff),
                            format!(
                                "entry {slot} is not free (DIR_Name[0] {:#04x}) but follows the end-of-directory mark at entry {end_slot}; the spec ignores it, Linux and fsck.fat read it",
                                raw[0]
                            ),
                        ));
                    }
                }
                continue;
            }
            match Slot::parse(raw) {
                Slot::End => {
                    if !pending.is_empty() {
                        orphan(findings, pending_off, "no short entry follows them");
                    }
                    ended = Some(slot);
                }
                Slot::Free => {
                    if !pending.is_empty() {
                        orphan(findings, pending_off, "a deleted entry follows them");
                        pending.clear();
                    }
                }
                Slot::Long(l) => {
                    if l.ldir_type != 0 || l.ldir_fst_clus_lo != 0 {
                        findings.push(Finding::error(
                            structure,
                            Some(base + soff),
                            format!(
                                "long name entry: LDIR_Type {} and LDIR_FstClusLO {} must be 0",
                                l.ldir_type, l.ldir_fst_clus_lo
                            ),
                        ));
                    }
                    if l.is_last() {
                        if !pending.is_empty() {
                            orphan(findings, pending_off, "a new long name starts before their short entry");
                        }
                        pending.clear();
                        if l.seq() == 0 || l.seq() > 20 {
                            orphan(findings, soff, &format!("sequence number {} is outside 1..=20", l.seq()));
                            continue;
                        }
                        pending_off = soff;
                        pending.push(l);
                    } else {
                        match pending.last() {
                            Some(p) if p.seq() == l.seq() + 1 && p.ldir_chksum == l.ldir_chksum => {
                                pending.push(l)
                            }
                            Some(p) if p.seq() == l.seq() + 1 => {
                                let why = format!(
                                    "LDIR_Chksum {:#04x} differs from the {:#04x} of the entries before it",
                                    l.ldir_chksum, p.ldir_chksum
                                );
                                orphan(findings, soff, &why);
                                pending.clear();
                            }
                            _ => {
                                let why = format!("entry with sequence number {} is out of order", l.seq());
                                orphan(findings, soff, &why);
                                pending.clear();
                            }
                        }
                    }
                }
                Slot::Short(e) => {
                    let mut long_name = None;
                    let lfn_slots = pending.len();
                    if !pending.is_empty() {
                        let sum = lfn_checksum(&e.dir_name);
                        let complete = pending.last().is_some_and(|p| p.seq() == 1);
                        if !complete {
                            orphan(findings, pending_off, "the sequence does not reach 1");
                        } else if pending[0].ldir_chksum != sum {
                            orphan(
                                findings,
                                pending_off,
                                &format!(
                                    "LDIR_Chksum {:#04x} does not match the short name's checksum {sum:#04x}",
                                    pending[0].ldir_chksum
                                ),
                            );
                        } else if e.is_volume_label() {
                            orphan(findings, pending_off, "they precede a volume label");
                        } else {
                            let units: Vec<u16> = pending.iter().rev().flat_map(|p| p.units).collect();
                            let (name, problem) = decode_long_name(&units);
                            if let Some(p) = problem {
                                findings.push(Finding::warning(
                                    structure,
                                    Some(base + pending_off),
                                    format!("long name {name:?}: {p}"),
                                ));
                            }
                            if name.is_empty() {
                                orphan(findings, pending_off, "the long name is empty");
                            } else {
                                long_name = Some(name);
                            }
                        }
                        pending.clear();
                    }
                    if e.is_volume_label() {
                        out.labels.push((e, soff));
                    } else {
                        out.items.push(Item { entry: e, long_name, slot, offset: soff, lfn_slots });
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Cluster ownership for cross-link and lost-cluster detection.
struct Owners {
    owner: Vec<u32>,
}

const ROOT_OWNER: u32 = u32::MAX;
const LABEL_OWNER: u32 = u32::MAX - 1;

impl Owners {
    fn claim(
        &mut self,
        clusters: &[u32],
        who: u32,
        name: &dyn Fn(u32) -> String,
        findings: &mut Vec<Finding>,
        fat_offset: u64,
    ) {
        for &c in clusters {
            let Some(slot) = self.owner.get_mut(c as usize) else { continue };
            if *slot != 0 && *slot != who {
                findings.push(Finding::error(
                    "fat",
                    Some(fat_offset),
                    format!("cluster {c} is cross-linked: it belongs to {} and {}", name(*slot), name(who)),
                ));
            } else {
                *slot = who;
            }
        }
    }
}

pub(super) fn walk<R: ReadAt + ?Sized>(fat: &Fat<'_, R>) -> Result<Tree> {
    let geo = &fat.geometry;
    let table = &fat.table;
    let base = fat.base;
    let mut findings = Vec::new();
    let mut nodes: Vec<Node> = Vec::new();
    let mut owners = Owners { owner: vec![0; table.entries.len()] };
    let fat_off = base + geo.fat_offset;

    let root_loc = root_loc(fat)?;
    let root_clusters = match &root_loc {
        DirLoc::Chain(c) => c.clone(),
        DirLoc::FixedRoot => Vec::new(),
    };
    let name_of = |nodes: &Vec<Node>, who: u32| -> String {
        if who == ROOT_OWNER {
            "the root directory".into()
        } else if who == LABEL_OWNER {
            "the volume label entry".into()
        } else {
            (who as usize)
                .checked_sub(1)
                .and_then(|i| nodes.get(i))
                .map_or_else(String::new, |n| n.path.clone())
        }
    };
    owners.claim(&root_clusters, ROOT_OWNER, &|w| name_of(&nodes, w), &mut findings, fat_off);

    let root_first = fat.boot.bpb_root_clus;
    let mut visited: HashSet<u32> = HashSet::new();
    if geo.fat_type == FatType::Fat32 {
        visited.insert(root_first);
    }
    // (path, location, own first cluster, parent's first cluster; 0 = root)
    let mut stack: Vec<(String, DirLoc, u32, u32)> = vec![(String::new(), root_loc, 0, 0)];
    let mut root_label = None;
    while let Some((path, loc, own, parent)) = stack.pop() {
        let structure = format!("fat directory {}", if path.is_empty() { "/" } else { &path });
        let listing = list_dir(fat, &loc, &structure, &mut findings)?;
        let is_root = path.is_empty();
        for (e, off) in &listing.labels {
            if !is_root {
                findings.push(Finding::error(
                    &structure,
                    Some(base + off),
                    "a volume label entry outside the root directory",
                ));
            } else if e.cluster(geo.fat_type) != 0 {
                // fsck.fat accepts this and counts the chain as the entry's, so its clusters
                // are owned (not lost) when the chain is sound.
                let first = e.cluster(geo.fat_type);
                findings.push(Finding::warning(
                    &structure,
                    Some(base + off),
                    format!("volume label entry has first cluster {first}, expected 0; ignored"),
                ));
                match table.chain(first, "the volume label entry", geo) {
                    Ok(c) => owners.claim(&c, LABEL_OWNER, &|w| name_of(&nodes, w), &mut findings, fat_off),
                    Err(err) => findings.push(Finding::error(&structure, Some(base + off), err.to_string())),
                }
            } else if root_label.is_none() {
                root_label = Some(RootLabel { raw: e.name_bytes(), entry: e.clone(), offset: base + off });
            } else {
                findings.push(Finding::warning(
                    &structure,
                    Some(base + off),
                    "a second volume label entry in the root directory",
                ));
            }
        }
        let mut subdirs = Vec::new();
        let mut order = 0;
        let mut dots = 0;
        // FAT names are unique per directory, short names exactly, long names ignoring case.
        let mut seen_short: HashSet<[u8; 11]> = HashSet::new();
        let mut seen_long: HashSet<String> = HashSet::new();
        for (idx, item) in listing.items.into_iter().enumerate() {
            let e = &item.entry;
            if item.is_dot() {
                let dot = e.dir_name[1] == b' ';
                let (want_idx, want_cluster, label) = if dot { (0, own, ".") } else { (1, parent, "..") };
                if is_root {
                    findings.push(Finding::error(
                        &structure,
                        Some(base + item.offset),
                        format!("a `{label}` entry in the root directory"),
                    ));
                } else {
                    dots += 1;
                    if idx != want_idx {
                        findings.push(Finding::error(
                            &structure,
                            Some(base + item.offset),
                            format!("`{label}` is entry {idx}, expected entry {want_idx}"),
                        ));
                    }
                    // `..` of a directory in the root points to cluster 0 (fatgen103 6.8);
                    // Linux also accepts the FAT32 root cluster there.
                    let ok = e.cluster(geo.fat_type) == want_cluster
                        || (!dot
                            && want_cluster == 0
                            && geo.fat_type == FatType::Fat32
                            && e.cluster(geo.fat_type) == root_first);
                    if !ok {
                        findings.push(Finding::error(
                            &structure,
                            Some(base + item.offset),
                            format!(
                                "`{label}` points to cluster {}, expected {want_cluster}",
                                e.cluster(geo.fat_type)
                            ),
                        ));
                    }
                    if !e.is_dir() {
                        findings.push(Finding::error(
                            &structure,
                            Some(base + item.offset),
                            format!("`{label}` lacks ATTR_DIRECTORY"),
                        ));
                    }
                }
                continue;
            }
            let name = item.display_name();
            let child = format!("{path}/{name}");
            let at = Some(base + item.offset);
            if !seen_short.insert(e.dir_name) {
                findings.push(Finding::error(
                    &structure,
                    at,
                    format!("short name {:?} of {child} appears twice", e.short_name()),
                ));
            }
            if let Some(l) = &item.long_name
                && !seen_long.insert(l.to_lowercase())
            {
                findings.push(Finding::error(
                    &structure,
                    at,
                    format!("long name {l:?} appears twice (ignoring case)"),
                ));
            }
            if e.dir_nt_res & super::dirent::NT_NO_83_NAME != 0 && item.long_name.is_none() {
                findings.push(Finding::error(
                    &structure,
                    at,
                    format!(
                        "{child} DIR_NTRes {:#04x} has bit 0x20 set (no 8.3 name, Linux's extension) but no long name precedes the entry, so it has no name",
                        e.dir_nt_res
                    ),
                ));
            }
            if let Some((level, why)) = e.invalid_name() {
                findings.push(Finding {
                    level,
                    ..Finding::error(
                        &structure,
                        at,
                        format!("short name {:?} of {child}: {why}", e.short_name()),
                    )
                });
            }
            if let Some(why) = e.modified().invalid() {
                findings.push(Finding::warning(
                    &structure,
                    at,
                    format!("{child} DIR_WrtDate/DIR_WrtTime: {why}"),
                ));
            }
            if e.dir_crt_date != 0
                && let Some(why) = e.created().invalid()
            {
                findings.push(Finding::warning(
                    &structure,
                    at,
                    format!("{child} DIR_CrtDate/DIR_CrtTime: {why}"),
                ));
            }
            if e.dir_lst_acc_date != 0
                && let Some(why) = e.accessed().invalid()
            {
                findings.push(Finding::warning(&structure, at, format!("{child} DIR_LstAccDate: {why}")));
            }
            if geo.fat_type != FatType::Fat32 && e.dir_fst_clus_hi != 0 {
                findings.push(Finding::warning(
                    &structure,
                    at,
                    format!("{child} DIR_FstClusHI is {}, must be 0 on fat12/16; ignored, as Linux and fsck.fat do", e.dir_fst_clus_hi),
                ));
            }
            let first = e.cluster(geo.fat_type);
            let what = format!("{child} (directory entry at byte {:#x})", base + item.offset);
            let clusters = if e.is_dir() {
                if first == 0 {
                    return Err(fat_err(
                        &structure,
                        item.offset,
                        format!("directory {child} has first cluster 0"),
                    ));
                }
                if e.dir_file_size != 0 {
                    findings.push(Finding::error(
                        &structure,
                        at,
                        format!("directory {child} has DIR_FileSize {}, expected 0", e.dir_file_size),
                    ));
                }
                table.chain(first, &what, geo)?
            } else if first == 0 {
                if e.dir_file_size != 0 {
                    findings.push(Finding::error(
                        &structure,
                        at,
                        format!("{child} has DIR_FileSize {} but no clusters", e.dir_file_size),
                    ));
                }
                Vec::new()
            } else {
                let c = table.chain(first, &what, geo)?;
                let want = u64::from(e.dir_file_size).div_ceil(u64::from(geo.bytes_per_cluster));
                if want != c.len() as u64 {
                    findings.push(Finding::error(
                        &structure,
                        at,
                        format!(
                            "{child} DIR_FileSize {} needs {want} clusters, its chain has {}",
                            e.dir_file_size,
                            c.len()
                        ),
                    ));
                }
                c
            };
            let who = nodes.len() as u32 + 1;
            owners.claim(
                &clusters,
                who,
                &|w| if w == who { child.clone() } else { name_of(&nodes, w) },
                &mut findings,
                fat_off,
            );
            if e.is_dir() {
                if !visited.insert(first) {
                    return Err(fat_err(
                        &structure,
                        item.offset,
                        format!(
                            "directory loop: {child} starts at cluster {first}, which is already a directory on the path walked"
                        ),
                    ));
                }
                subdirs.push((
                    child.clone(),
                    DirLoc::Chain(clusters.clone()),
                    first,
                    if is_root { 0 } else { own },
                ));
            }
            nodes.push(Node {
                path: child,
                name,
                long_name: item.long_name,
                short_name: e.short_name(),
                entry: item.entry,
                order,
                slot: item.slot,
                offset: base + item.offset,
                lfn_slots: item.lfn_slots,
                clusters,
            });
            order += 1;
        }
        if !is_root && dots < 2 {
            findings.push(Finding::error(&structure, None, "the directory lacks its `.` or `..` entry"));
        }
        stack.extend(subdirs.into_iter().rev());
    }

    if let Some(l) = &root_label
        && let Some(why) = invalid_label(&l.raw)
    {
        findings.push(Finding::error(
            "fat volume label",
            Some(l.offset),
            format!("the root directory label is not valid: {why}"),
        ));
    }
    // The two labels agree when they hold the same text, an absent or blank one counting as
    // the placeholder "NO NAME" that mkfs.fat and Windows write for "no label".
    let no_name: &[u8] = b"NO NAME";
    let root_text = root_label.as_ref().map(|l| l.trimmed()).filter(|l| !l.is_empty()).unwrap_or(no_name);
    // Without the extended boot signature there is no BS_VolLab, which fsck.fat reads as blank.
    let boot_text = Some(trim_label(&fat.boot.bs_vol_lab))
        .filter(|l| !l.is_empty() && fat.boot.has_extended_sig())
        .unwrap_or(no_name);
    if root_text != boot_text {
        let show = |l: &[u8]| format!("{:?}", String::from_utf8_lossy(l));
        findings.push(Finding::error(
            "fat volume label",
            root_label
                .as_ref()
                .map(|l| l.offset)
                .or(Some(base + if geo.fat_type == FatType::Fat32 { 0x47 } else { 0x2B })),
            format!(
                "the root directory label is {}, BS_VolLab is {}{}",
                show(root_text),
                show(boot_text),
                if fat.boot.has_extended_sig() { "" } else { " (absent: BS_BootSig is not 0x29)" }
            ),
        ));
    }

    let bad = table.bad_mark();
    let lost: Vec<u32> = (2..table.entries.len() as u32)
        .filter(|&n| {
            let v = table.entries[n as usize];
            v != 0 && v != bad && owners.owner[n as usize] == 0
        })
        .collect();
    if !lost.is_empty() {
        let shown: Vec<String> = lost.iter().take(8).map(u32::to_string).collect();
        findings.push(Finding::error(
            "fat",
            Some(fat_off),
            format!(
                "{} lost clusters: allocated but owned by no file or directory (first: {}{})",
                lost.len(),
                shown.join(", "),
                if lost.len() > 8 { ", ..." } else { "" }
            ),
        ));
    }
    Ok(Tree { nodes, root_label, root_clusters, lost_clusters: lost, findings })
}

pub(super) fn read_file<R: ReadAt + ?Sized>(fat: &Fat<'_, R>, path: &str, cap: u64) -> Result<Vec<u8>> {
    let geo = &fat.geometry;
    let mut loc = root_loc(fat)?;
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let not_found = |what: &str| {
        Error::Io(std::io::Error::new(std::io::ErrorKind::NotFound, format!("fat path {path}: {what}")))
    };
    let mut sink = Vec::new();
    let mut walked = String::new();
    for (i, part) in parts.iter().enumerate() {
        walked.push('/');
        walked.push_str(part);
        let listing = list_dir(fat, &loc, &format!("fat directory {walked}"), &mut sink)?;
        let found = listing
            .items
            .iter()
            .filter(|it| !it.is_dot())
            .find(|it| it.long_name.as_deref() == Some(part))
            .or_else(|| {
                listing.items.iter().filter(|it| !it.is_dot()).find(|it| {
                    it.long_name.as_deref().is_some_and(|l| l.eq_ignore_ascii_case(part))
                        || it.entry.short_name().eq_ignore_ascii_case(part)
                })
            })
            .ok_or_else(|| not_found(&format!("{walked} does not exist")))?;
        let e = &found.entry;
        let what = format!("{walked} (directory entry at byte {:#x})", fat.base + found.offset);
        let last = i + 1 == parts.len();
        if !last {
            if !e.is_dir() {
                return Err(not_found(&format!("{walked} is not a directory")));
            }
            loc = DirLoc::Chain(fat.table.chain(e.cluster(geo.fat_type), &what, geo)?);
            continue;
        }
        if e.is_dir() {
            return Err(not_found(&format!("{walked} is a directory")));
        }
        let size = u64::from(e.dir_file_size);
        if size > cap {
            return Err(Error::unsupported(
                format!("fat file {walked}"),
                Some(fat.base + found.offset),
                format!("the file has {size} bytes, more than the {cap}-byte cap; raise the cap to read it"),
            ));
        }
        if size == 0 {
            return Ok(Vec::new());
        }
        let chain = fat.table.chain(e.cluster(geo.fat_type), &what, geo)?;
        let bpc = u64::from(geo.bytes_per_cluster);
        if (chain.len() as u64) * bpc < size {
            return Err(fat_err(
                &format!("fat file {walked}"),
                found.offset,
                format!("DIR_FileSize {size} is more than its {} clusters hold", chain.len()),
            ));
        }
        let mut out = Vec::with_capacity(size as usize);
        for &c in &chain {
            let take = (size - out.len() as u64).min(bpc);
            if take == 0 {
                break;
            }
            out.extend(fat.reader.read_vec(
                geo.cluster_offset(c),
                take as usize,
                &format!("fat file {walked} cluster {c}"),
            )?);
        }
        return Ok(out);
    }
    Err(not_found("the root directory is not a file"))
}

/// The root directory's volume label entry alone (what blkid reports as `LABEL`), reading only
/// the root directory: works on images whose data area is truncated after the root.
pub(super) fn root_label<R: ReadAt + ?Sized>(fat: &Fat<'_, R>) -> Result<Option<RootLabel>> {
    let loc = root_loc(fat)?;
    let listing = list_dir(fat, &loc, "fat directory /", &mut Vec::new())?;
    Ok(listing
        .labels
        .into_iter()
        .find(|(e, _)| e.cluster(fat.geometry.fat_type) == 0)
        .map(|(e, off)| RootLabel { raw: e.name_bytes(), entry: e, offset: fat.base + off }))
}
