//! The collector: differing byte runs explained by the region maps and grouped by label and
//! field.

use super::value::{format_pair, hex};
use super::*;

pub(super) struct Collector<'a> {
    a: &'a dyn ReadAt,
    b: &'a dyn ReadAt,
    map_a: &'a RegionMap,
    map_b: &'a RegionMap,
    groups: BTreeMap<String, DiffGroup>,
    /// The field (absolute offset) last counted per group, so that two runs inside one
    /// field count as one range.
    last_field: HashMap<String, u64>,
    /// Per entry-array region (side, start): whether A and B hold the same entries.
    permutation: HashMap<(bool, u64), bool>,
    unexplained: Unexplained,
    pending: Option<UnexplainedRange>,
    differing_bytes: u64,
    differing_ranges: u64,
}

impl<'a> Collector<'a> {
    pub(super) fn new(
        a: &'a dyn ReadAt,
        b: &'a dyn ReadAt,
        map_a: &'a RegionMap,
        map_b: &'a RegionMap,
    ) -> Self {
        Collector {
            a,
            b,
            map_a,
            map_b,
            groups: BTreeMap::new(),
            last_field: HashMap::new(),
            permutation: HashMap::new(),
            unexplained: Unexplained::default(),
            pending: None,
            differing_bytes: 0,
            differing_ranges: 0,
        }
    }

    pub(super) fn length_group(&mut self, len_a: u64, len_b: u64) {
        let label = Label::new(None, "image").with_detail("length");
        let name = label.to_string();
        self.groups.insert(
            name.clone(),
            DiffGroup {
                class: name.clone(),
                name,
                partition: None,
                structure: label.structure,
                detail: label.detail,
                field: None,
                label_b: None,
                ranges: 1,
                bytes: len_a.abs_diff(len_b),
                first_offset: len_a.min(len_b),
                a: Some(len_a.to_string()),
                b: Some(len_b.to_string()),
            },
        );
    }

    /// Explains the run `[start, end)` of differing bytes.
    pub(super) fn run(&mut self, start: u64, end: u64) -> crate::Result<()> {
        self.differing_bytes += end - start;
        self.differing_ranges += 1;
        let pa = self.map_a.pieces(start, end);
        let pb = self.map_b.pieces(start, end);
        let mut cuts: Vec<u64> = vec![start, end];
        for p in pa.iter().chain(pb.iter()) {
            cuts.push(p.start);
            cuts.push(p.end);
        }
        cuts.sort_unstable();
        cuts.dedup();
        for w in cuts.windows(2) {
            let (x, y) = (w[0], w[1]);
            let ra = pa.iter().find(|p| p.start <= x && x < p.end);
            let rb = pb.iter().find(|p| p.start <= x && x < p.end);
            let (piece, other, in_a) = match (ra, rb) {
                (None, None) => {
                    self.unexplained(x, y)?;
                    continue;
                }
                (Some(p), other) => (p, other.map(|o| o.region), true),
                (None, Some(p)) => (p, None, false),
            };
            // Inside an entry array that holds the same entries in another order, the order
            // is the explanation, whatever fields of the entry at this slot changed.
            if let Some(arr) = piece.entries
                && let Layout::Entries { size, ignore } = arr.layout
                && self.same_entries(arr, in_a, size, ignore)?
            {
                self.count(&arr.label, Some(FieldName::same("entry order")), None, x, y - x, None);
                continue;
            }
            self.explain(piece.region, other, in_a, x, y)?;
        }
        Ok(())
    }

    fn explain(
        &mut self,
        r: &Region,
        other: Option<&Region>,
        in_a: bool,
        x: u64,
        y: u64,
    ) -> crate::Result<()> {
        let label_b = other.filter(|o| o.label != r.label).map(|o| o.label.to_string());
        match r.layout {
            Layout::Opaque => self.count(&r.label, None, label_b, x, y - x, None),
            Layout::Entries { size, ignore } => {
                let same_entries = self.same_entries(r, in_a, size, ignore)?;
                let field = if same_entries { "entry order" } else { "entries" };
                self.count(&r.label, Some(FieldName::same(field)), label_b, x, y - x, None);
            }
            Layout::Fields(_) | Layout::Records { .. } => {
                let fields = r.fields_in(x, y);
                let mut named = 0;
                for fr in &fields {
                    let lo = fr.offset.max(x);
                    let hi = fr.end.min(y);
                    named += hi - lo;
                    let values = self.values(fr)?;
                    let name = FieldName { full: fr.name(), class: fr.field.name.to_string() };
                    self.count(&r.label, Some(name), label_b.clone(), fr.offset, hi - lo, Some(values));
                }
                if named < y - x {
                    let field = Some(FieldName::same("(bytes outside named fields)"));
                    self.count(&r.label, field, label_b, x, y - x - named, None);
                }
            }
        }
        Ok(())
    }

    /// Adds `bytes` differing bytes at `at` to the group of (label, field).
    fn count(
        &mut self,
        label: &Label,
        field: Option<FieldName>,
        label_b: Option<String>,
        at: u64,
        bytes: u64,
        values: Option<(String, String)>,
    ) {
        let mut name = label.to_string();
        let mut class = Label { detail: None, ..label.clone() }.to_string();
        if let Some(f) = &field {
            name = format!("{name} {}", f.full);
            class = format!("{class} {}", f.class);
        }
        let field = field.map(|f| f.full);
        let key = match &label_b {
            Some(lb) => format!("{name}\u{0} {lb}"),
            None => name.clone(),
        };
        // A field hit by two runs (say bytes 0 and 2 of a u32) is one range, not two.
        let new_range = field.is_none() || values.is_none() || self.last_field.get(&key) != Some(&at);
        if values.is_some() {
            self.last_field.insert(key.clone(), at);
        }
        let g = self.groups.entry(key).or_insert_with(|| {
            let (a, b) = values.map_or((None, None), |(a, b)| (Some(a), Some(b)));
            DiffGroup {
                name,
                class,
                partition: label.partition,
                structure: label.structure.clone(),
                detail: label.detail.clone(),
                field,
                label_b,
                ranges: 0,
                bytes: 0,
                first_offset: at,
                a,
                b,
            }
        });
        if new_range {
            g.ranges += 1;
        }
        g.bytes += bytes;
        g.first_offset = g.first_offset.min(at);
    }

    /// The field's value in both images, decoded as its table says.
    fn values(&self, fr: &FieldRef) -> crate::Result<(String, String)> {
        let len = fr.field.len as usize;
        let mut va = vec![0u8; len];
        let mut vb = vec![0u8; len];
        read_padded(self.a, &mut va, fr.offset)?;
        read_padded(self.b, &mut vb, fr.offset)?;
        Ok(format_pair(fr.field.kind, &va, &vb))
    }

    /// Whether an entry array holds the same entries in A and B, in any order, comparing each
    /// entry without its `ignore` byte ranges.
    fn same_entries(
        &mut self,
        r: &Region,
        in_a: bool,
        size: u64,
        ignore: &[(u64, u64)],
    ) -> crate::Result<bool> {
        if let Some(&known) = self.permutation.get(&(in_a, r.start)) {
            return Ok(known);
        }
        let ok = size > 0 && r.len() <= MAX_PERMUTATION_CHECK && r.len().is_multiple_of(size) && {
            let mut va = vec![0u8; r.len() as usize];
            let mut vb = vec![0u8; r.len() as usize];
            read_padded(self.a, &mut va, r.start)?;
            read_padded(self.b, &mut vb, r.start)?;
            for v in [&mut va, &mut vb] {
                for entry in v.chunks_mut(size as usize) {
                    for &(off, len) in ignore {
                        if let Some(bytes) = entry.get_mut(off as usize..(off + len) as usize) {
                            bytes.fill(0);
                        }
                    }
                }
            }
            let mut ea: Vec<&[u8]> = va.chunks(size as usize).collect();
            let mut eb: Vec<&[u8]> = vb.chunks(size as usize).collect();
            ea.sort_unstable();
            eb.sort_unstable();
            ea == eb
        };
        self.permutation.insert((in_a, r.start), ok);
        Ok(ok)
    }

    fn unexplained(&mut self, x: u64, y: u64) -> crate::Result<()> {
        self.unexplained.bytes += y - x;
        if let Some(p) = &mut self.pending
            && x <= p.end + MERGE_GAP
        {
            p.end = y;
            p.differing_bytes += y - x;
            return Ok(());
        }
        self.flush_pending()?;
        self.pending = Some(UnexplainedRange {
            start: x,
            end: y,
            differing_bytes: y - x,
            a_hex: String::new(),
            b_hex: String::new(),
        });
        Ok(())
    }

    pub(super) fn flush_pending(&mut self) -> crate::Result<()> {
        if let Some(mut p) = self.pending.take() {
            self.unexplained.ranges += 1;
            if self.unexplained.shown.len() < MAX_SHOWN {
                let n = (p.end - p.start).min(DUMP_LEN) as usize;
                let mut va = vec![0u8; n];
                let mut vb = vec![0u8; n];
                read_padded(self.a, &mut va, p.start)?;
                read_padded(self.b, &mut vb, p.start)?;
                let more = if (p.end - p.start) > DUMP_LEN { " .." } else { "" };
                p.a_hex = format!("{}{more}", hex(&va));
                p.b_hex = format!("{}{more}", hex(&vb));
                self.unexplained.shown.push(p);
            }
        }
        Ok(())
    }

    pub(super) fn finish(mut self, len_a: u64, len_b: u64) -> crate::Result<DiffReport> {
        self.flush_pending()?;
        let mut groups: Vec<DiffGroup> = self.groups.into_values().collect();
        groups.sort_by(|x, y| (x.first_offset, &x.name).cmp(&(y.first_offset, &y.name)));
        let mut classes: BTreeMap<&str, DiffClass> = BTreeMap::new();
        for g in &groups {
            let c = classes.entry(&g.class).or_insert_with(|| DiffClass {
                name: g.class.clone(),
                groups: 0,
                ranges: 0,
                bytes: 0,
            });
            c.groups += 1;
            c.ranges += g.ranges;
            c.bytes += g.bytes;
        }
        let classes = classes.into_values().collect();
        Ok(DiffReport {
            len_a,
            len_b,
            differing_bytes: self.differing_bytes,
            differing_ranges: self.differing_ranges,
            groups,
            classes,
            unexplained: self.unexplained,
        })
    }
}

/// A field's name as shown (`"inode 12 i_mtime"`) and as classed (`"i_mtime"`).
struct FieldName {
    full: String,
    class: String,
}

impl FieldName {
    fn same(name: &str) -> Self {
        FieldName { full: name.to_string(), class: name.to_string() }
    }
}
