//! A format-neutral map from byte ranges of an image to the structures that own them.
//!
//! Readers (MBR, GPT, ext4, FAT) describe what they found as [`Region`]s: a byte range, a
//! structured [`Label`] ("partition 2", "ext4 superblock", "s_wtime") and optionally a field
//! [`Layout`] that names every field inside the range. The diff uses the map to explain a
//! differing byte by the innermost region that covers it, down to the exact field.
//!
//! Regions may nest (a partition contains a superblock, which contains a field table). The
//! built [`RegionMap`] flattens them into sorted, disjoint segments, each owned by the
//! shortest region that covers it, so a lookup is a binary search.

use std::collections::BTreeSet;
use std::fmt;

/// What a region is, as a path of names from coarse to fine.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Label {
    /// The partition number (1-based, as `sfdisk` and the GPT count them), or `None` for
    /// structures outside partitions (partition tables, a bare filesystem).
    pub partition: Option<u32>,
    /// The structure: `"ext4 superblock"`, `"gpt entry array (primary)"`, `"file"`.
    pub structure: String,
    /// What part of it: a field name, a file path, `"inode 14 /etc/hostname"`.
    pub detail: Option<String>,
}

impl Label {
    pub fn new(partition: Option<u32>, structure: impl Into<String>) -> Self {
        Label { partition, structure: structure.into(), detail: None }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.partition {
            write!(f, "partition {p} ")?;
        }
        f.write_str(&self.structure)?;
        if let Some(d) = &self.detail {
            write!(f, " {d}")?;
        }
        Ok(())
    }
}

/// How a field's bytes are shown when two images disagree on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A little-endian unsigned integer of the field's length (1, 2, 4 or 8 bytes), in decimal.
    Uint,
    /// A little-endian unsigned integer shown in hex (flags, checksums, magic numbers).
    Hex,
    /// A big-endian unsigned integer (the jbd2 journal), in decimal.
    BeUint,
    /// A big-endian unsigned integer shown in hex.
    BeHex,
    /// A GUID in the UEFI mixed-endian byte order, shown in the canonical uppercase form.
    Guid,
    /// A UUID in RFC 9562 (big-endian) byte order, as ext4 stores it, shown lowercase.
    Uuid,
    /// A NUL- or space-padded byte string (labels, names), shown quoted.
    Text,
    /// A NUL-padded UTF-16LE string (GPT partition names), shown quoted.
    Utf16,
    /// Anything else: shown as hex bytes (truncated when long).
    Bytes,
}

/// One named field of an on-disk structure, at an offset from the structure's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub offset: u64,
    pub len: u64,
    pub name: &'static str,
    pub kind: FieldKind,
}

/// The fields of one on-disk structure, sorted by offset, named as in its specification.
#[derive(Debug, PartialEq, Eq)]
pub struct FieldTable {
    /// The structure's name, e.g. `"ext4 superblock"`.
    pub name: &'static str,
    /// The structure's length in bytes; fields never reach past it.
    pub len: u64,
    pub fields: &'static [Field],
}

impl FieldTable {
    /// The field that holds byte `off` (relative to the structure), if any.
    pub fn field_at(&self, off: u64) -> Option<&'static Field> {
        let i = self.fields.partition_point(|f| f.offset + f.len <= off);
        self.fields.get(i).filter(|f| f.offset <= off)
    }

    /// The fields overlapping `[start, end)` (relative to the structure), in offset order.
    pub fn fields_in(&self, start: u64, end: u64) -> impl Iterator<Item = &'static Field> {
        let first = self.fields.partition_point(|f| f.offset + f.len <= start);
        self.fields[first..].iter().take_while(move |f| f.offset < end)
    }
}

/// How the bytes inside a region are organised, for naming the exact field that differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Unstructured bytes (file data, bitmaps): the label is the finest name.
    Opaque,
    /// One structure whose fields the table names.
    Fields(&'static FieldTable),
    /// An array of structures, each `stride` bytes and laid out by `table`; record `i` is
    /// named `"{what} {first + i}"` (e.g. `"entry 3"`, `"inode 12"`).
    Records { table: &'static FieldTable, stride: u64, first: u64, what: &'static str },
    /// An array of fixed-size entries whose order may differ while their contents do not
    /// (FAT directory entries): the diff checks for a permutation and says "entry order".
    /// `ignore` lists `(offset, len)` byte ranges of an entry left out of the comparison:
    /// pointers such as a FAT entry's first cluster, which follow the order files were
    /// written in.
    Entries { size: u64, ignore: &'static [(u64, u64)] },
}

/// How the records of an array are laid out and numbered, for [`Region::array`].
#[derive(Debug, Clone, Copy)]
pub struct Records {
    pub table: &'static FieldTable,
    /// The number of the first record (1 for GPT entries and inodes, 0 for groups).
    pub first: u64,
    /// What a record is called: `"entry"`, `"inode"`, `"group"`.
    pub what: &'static str,
}

/// One labelled byte range `[start, end)` of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    pub label: Label,
    pub layout: Layout,
}

impl Region {
    /// An opaque region of `len` bytes at `start`.
    pub fn new(start: u64, len: u64, label: Label) -> Self {
        Region { start, end: start.saturating_add(len), label, layout: Layout::Opaque }
    }

    /// A region holding one structure laid out by `table` (its length is the table's).
    pub fn structure(start: u64, partition: Option<u32>, table: &'static FieldTable) -> Self {
        Region {
            start,
            end: start.saturating_add(table.len),
            label: Label::new(partition, table.name),
            layout: Layout::Fields(table),
        }
    }

    /// An array of `count` records of `stride` bytes at `start`, each laid out by `table` and
    /// named `"{what} {first + i}"`.
    pub fn array(start: u64, count: u64, stride: u64, label: Label, records: Records) -> Self {
        Region::new(start, count.saturating_mul(stride), label).with_layout(Layout::Records {
            table: records.table,
            stride,
            first: records.first,
            what: records.what,
        })
    }

    pub fn with_label(mut self, label: Label) -> Self {
        self.label = label;
        self
    }

    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// The named fields overlapping the absolute range `[start, end)`, each with its
    /// absolute offset. Empty for [`Layout::Opaque`] and [`Layout::Entries`].
    pub fn fields_in(&self, start: u64, end: u64) -> Vec<FieldRef> {
        let start = start.max(self.start);
        let end = end.min(self.end);
        let mut out = Vec::new();
        if start >= end {
            return out;
        }
        match self.layout {
            Layout::Opaque | Layout::Entries { .. } => {}
            Layout::Fields(table) => {
                for f in table.fields_in(start - self.start, end - self.start) {
                    let offset = self.start + f.offset;
                    out.push(FieldRef {
                        offset,
                        end: (offset + f.len).min(self.end),
                        field: f,
                        record: None,
                    });
                }
            }
            Layout::Records { table, stride, first, what } if stride > 0 => {
                let mut rec = (start - self.start) / stride;
                loop {
                    let rec_start = self.start + rec * stride;
                    if rec_start >= end {
                        break;
                    }
                    let lo = start.max(rec_start) - rec_start;
                    let hi = end.min(rec_start + stride) - rec_start;
                    for f in table.fields_in(lo, hi) {
                        let offset = rec_start + f.offset;
                        out.push(FieldRef {
                            offset,
                            // A table longer than the stride must not name the next record's bytes.
                            end: (offset + f.len).min(rec_start + stride).min(self.end),
                            field: f,
                            record: Some(format!("{what} {}", first + rec)),
                        });
                    }
                    rec += 1;
                }
            }
            Layout::Records { .. } => {}
        }
        out
    }
}

/// A field found at an absolute offset, with the record it belongs to in an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRef {
    pub offset: u64,
    /// Where the field's bytes end inside its record and region (exclusive).
    pub end: u64,
    pub field: &'static Field,
    /// `"entry 3"` when the field is inside record 3 of a [`Layout::Records`] region.
    pub record: Option<String>,
}

impl FieldRef {
    /// `"entry 3 StartingLBA"` or `"s_wtime"`.
    pub fn name(&self) -> String {
        match &self.record {
            Some(r) => format!("{r} {}", self.field.name),
            None => self.field.name.to_string(),
        }
    }
}

/// A disjoint piece of the map: the bytes `[start, end)` owned by region `region`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub start: u64,
    pub end: u64,
    region: usize,
    /// The innermost [`Layout::Entries`] region around the owner, if the owner is not one.
    entries: Option<usize>,
}

/// Collects regions in any order; [`RegionMapBuilder::build`] flattens them.
#[derive(Debug, Default, Clone)]
pub struct RegionMapBuilder {
    regions: Vec<Region>,
}

impl RegionMapBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a region; empty ranges are ignored. Later regions win ties with earlier ones of
    /// the same length, so a reader can refine what another labelled.
    pub fn add(&mut self, region: Region) -> &mut Self {
        if !region.is_empty() {
            self.regions.push(region);
        }
        self
    }

    /// Adds every region of `other`, shifted by `base` bytes (a partition's offset).
    pub fn extend_shifted(&mut self, other: RegionMapBuilder, base: u64) -> &mut Self {
        for mut r in other.regions {
            r.start = r.start.saturating_add(base);
            r.end = r.end.saturating_add(base);
            self.add(r);
        }
        self
    }

    /// Flattens the regions into disjoint segments owned by the innermost (shortest)
    /// covering region, merging neighbours that carry the same opaque label.
    pub fn build(self) -> RegionMap {
        let regions = self.regions;
        // Sweep over every boundary; the active set is ordered by (length, newest first) so
        // its first element is the innermost region covering the current piece.
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(regions.len() * 2);
        for (i, r) in regions.iter().enumerate() {
            events.push((r.start, true, i));
            events.push((r.end, false, i));
        }
        events.sort_unstable_by_key(|&(at, _, i)| (at, i));
        let mut active: BTreeSet<(u64, std::cmp::Reverse<usize>)> = BTreeSet::new();
        let mut segments: Vec<Segment> = Vec::new();
        let mut k = 0;
        while k < events.len() {
            let at = events[k].0;
            while k < events.len() && events[k].0 == at {
                let (_, open, i) = events[k];
                let key = (regions[i].len(), std::cmp::Reverse(i));
                if open {
                    active.insert(key);
                } else {
                    active.remove(&key);
                }
                k += 1;
            }
            let Some(&(_, std::cmp::Reverse(owner))) = active.first() else { continue };
            let Some(&(next, _, _)) = events.get(k) else { break };
            // A FAT directory entry inside a directory whose entries were only reordered is
            // explained by the order, not by its fields: remember the enclosing entry array.
            let entries = active
                .iter()
                .skip(1)
                .map(|&(_, std::cmp::Reverse(i))| i)
                .find(|&i| matches!(regions[i].layout, Layout::Entries { .. }));
            push_segment(&mut segments, &regions, Segment { start: at, end: next, region: owner, entries });
        }
        RegionMap { regions, segments }
    }
}

fn push_segment(segments: &mut Vec<Segment>, regions: &[Region], seg: Segment) {
    if let Some(last) = segments.last_mut()
        && last.end == seg.start
    {
        let (a, b) = (&regions[last.region], &regions[seg.region]);
        let same_region = last.region == seg.region && last.entries == seg.entries;
        let same_opaque = a.layout == Layout::Opaque
            && b.layout == Layout::Opaque
            && a.label == b.label
            && last.entries == seg.entries;
        if same_region || same_opaque {
            last.end = seg.end;
            return;
        }
    }
    segments.push(seg);
}

/// A sorted, disjoint labelling of an image's bytes.
#[derive(Debug, Default, Clone)]
pub struct RegionMap {
    regions: Vec<Region>,
    segments: Vec<Segment>,
}

/// One piece of a looked-up range and the region that owns it.
#[derive(Debug, Clone, Copy)]
pub struct Piece<'a> {
    pub start: u64,
    pub end: u64,
    pub region: &'a Region,
    /// The innermost entry array ([`Layout::Entries`]) enclosing `region`, if any.
    pub entries: Option<&'a Region>,
}

impl RegionMap {
    pub fn builder() -> RegionMapBuilder {
        RegionMapBuilder::new()
    }

    /// An empty map: every byte is unexplained.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Every region as added (nested ones included).
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// The disjoint segments after flattening and merging.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    pub fn region_of(&self, seg: &Segment) -> &Region {
        &self.regions[seg.region]
    }

    /// Index of the first segment that ends after `offset`.
    pub fn segment_index(&self, offset: u64) -> usize {
        self.segments.partition_point(|s| s.end <= offset)
    }

    /// The innermost region holding byte `offset`.
    pub fn region_at(&self, offset: u64) -> Option<&Region> {
        let s = self.segments.get(self.segment_index(offset))?;
        (s.start <= offset).then(|| &self.regions[s.region])
    }

    /// The label of the innermost region holding byte `offset`.
    pub fn label_at(&self, offset: u64) -> Option<&Label> {
        self.region_at(offset).map(|r| &r.label)
    }

    /// The labelled pieces of `[start, end)`, in order; unlabelled gaps are left out.
    pub fn pieces(&self, start: u64, end: u64) -> Vec<Piece<'_>> {
        let mut out = Vec::new();
        for s in &self.segments[self.segment_index(start)..] {
            if s.start >= end {
                break;
            }
            out.push(Piece {
                start: s.start.max(start),
                end: s.end.min(end),
                region: &self.regions[s.region],
                entries: s.entries.map(|i| &self.regions[i]),
            });
        }
        out
    }

    /// The distinct labels covering any byte of `[start, end)`, in order.
    pub fn labels_covering(&self, start: u64, end: u64) -> Vec<&Label> {
        let mut out: Vec<&Label> = Vec::new();
        for p in self.pieces(start, end) {
            if out.last() != Some(&&p.region.label) {
                out.push(&p.region.label);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::{EXT4_SUPERBLOCK, GPT_ENTRY};

    fn label(s: &str) -> Label {
        Label::new(Some(2), s)
    }

    #[test]
    fn innermost_region_wins_and_gaps_stay_unlabelled() {
        let mut b = RegionMap::builder();
        b.add(Region::new(1000, 9000, label("partition data")));
        b.add(Region::structure(2024, Some(2), &EXT4_SUPERBLOCK));
        b.add(Region::new(20_000, 10, label("file")));
        let map = b.build();
        assert_eq!(map.label_at(1000).map(|l| l.structure.as_str()), Some("partition data"));
        assert_eq!(map.label_at(2024 + 0x30).map(|l| l.structure.as_str()), Some("ext4 superblock"));
        assert_eq!(map.label_at(3048).map(|l| l.structure.as_str()), Some("partition data"));
        assert_eq!(map.label_at(999), None);
        assert_eq!(map.label_at(10_000), None);
        let labels: Vec<_> = map.labels_covering(0, 30_000).iter().map(|l| l.structure.clone()).collect();
        assert_eq!(labels, ["partition data", "ext4 superblock", "partition data", "file"]);
    }

    #[test]
    fn adjacent_opaque_regions_with_one_label_merge() {
        let mut b = RegionMap::builder();
        b.add(Region::new(0, 4096, label("file /a data")));
        b.add(Region::new(4096, 4096, label("file /a data")));
        b.add(Region::new(8192, 4096, label("file /b data")));
        let map = b.build();
        assert_eq!(map.segments().len(), 2);
        assert_eq!((map.segments()[0].start, map.segments()[0].end), (0, 8192));
    }

    #[test]
    fn field_tables_name_fields_and_records() {
        let sb = Region::structure(1024, None, &EXT4_SUPERBLOCK);
        let names: Vec<_> = sb.fields_in(1024 + 0x2e, 1024 + 0x32).iter().map(FieldRef::name).collect();
        assert_eq!(names, ["s_mtime", "s_wtime"]);
        let arr = Region::new(1024, 128 * 4, label("gpt entry array")).with_layout(Layout::Records {
            table: &GPT_ENTRY,
            stride: 128,
            first: 1,
            what: "entry",
        });
        let names: Vec<_> =
            arr.fields_in(1024 + 128 + 32, 1024 + 128 + 33).iter().map(FieldRef::name).collect();
        assert_eq!(names, ["entry 2 StartingLBA"]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Every byte's label is the shortest region holding it (the latest of equal ones),
        /// checked against a brute-force search.
        #[test]
        fn lookup_matches_brute_force(spans in proptest::collection::vec((0u64..200, 1u64..60), 0..12)) {
            let mut b = RegionMap::builder();
            let regions: Vec<Region> = spans
                .iter()
                .enumerate()
                .map(|(i, &(start, len))| Region::new(start, len, label(&format!("r{i}"))))
                .collect();
            for r in &regions {
                b.add(r.clone());
            }
            let map = b.build();
            for x in 0..270u64 {
                let want = regions
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.start <= x && x < r.end)
                    .min_by_key(|(i, r)| (r.len(), std::cmp::Reverse(*i)))
                    .map(|(_, r)| r.label.structure.clone());
                proptest::prop_assert_eq!(map.label_at(x).map(|l| l.structure.clone()), want, "byte {}", x);
            }
        }
    }

    #[test]
    fn fields_outside_the_region_are_none() {
        let sb = Region::structure(1024, None, &EXT4_SUPERBLOCK);
        assert!(sb.fields_in(0, 100).is_empty());
        assert!(sb.fields_in(5000, 6000).is_empty());
    }

    #[test]
    fn overlapping_regions_of_equal_length_prefer_the_later() {
        let mut b = RegionMap::builder();
        b.add(Region::new(0, 10, label("first")));
        b.add(Region::new(0, 10, label("second")));
        let map = b.build();
        assert_eq!(map.label_at(5).map(|l| l.structure.as_str()), Some("second"));
    }
}
