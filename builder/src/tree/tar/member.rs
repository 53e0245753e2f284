//! The member being read: its metadata from the header and pax records, and its sparse map
//! (GNU `S` headers, pax sparse 0.0, 0.1 and 1.0).

use super::*;

/// The member being read: its header, its pax records and its stored size.
pub(super) struct Member<'a> {
    pub(super) start: u64,
    pub(super) h: &'a Header,
    pub(super) pax: Pax<'a>,
    pub(super) size: u64,
}

impl Member<'_> {
    pub(super) fn meta(&self, r: &Reader, opts: &IngestOptions) -> Result<Metadata, IngestError> {
        let id = |key: &[u8], off| match self.pax.get(key) {
            Some(v) => parse_decimal(v),
            None => self.h.num(off, 8),
        };
        let uid = id(b"uid", 108)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| r.err(self.start, "bad uid"))?;
        let gid = id(b"gid", 116)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| r.err(self.start, "bad gid"))?;
        let mode = self.h.num(100, 8).ok_or_else(|| r.err(self.start, "bad mode field"))?;
        let mtime = match self.pax.get(b"mtime") {
            Some(v) => parse_pax_time(v).ok_or_else(|| r.err(self.start, "bad pax `mtime`"))?,
            None => {
                Timestamp::from_secs(self.h.num(136, 12).ok_or_else(|| r.err(self.start, "bad mtime field"))?)
            }
        };
        let mut meta = opts.meta((mode & 0o7777) as u16, uid, gid, mtime);
        let records =
            self.pax.with_prefix(b"SCHILY.xattr.").chain(self.pax.with_prefix(b"LIBARCHIVE.xattr."));
        for (k, v) in records {
            let xattr = if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
                Some((schily_decode(name), v.to_vec()))
            } else if let Some(name) = k.strip_prefix(b"LIBARCHIVE.xattr.") {
                let bad = || r.err(self.start, "bad LIBARCHIVE.xattr record");
                Some((url_decode(name).ok_or_else(bad)?, base64_decode(v).ok_or_else(bad)?))
            } else {
                None
            };
            if let Some((name, value)) = xattr {
                // The first record wins: the last local one, else the global one.
                if keep_xattr(&name) {
                    meta.xattrs.entry(name).or_insert(value);
                }
            }
        }
        Ok(meta)
    }

    /// A GNU `S` member: the map is in the header and its extension blocks, data follows.
    pub(super) fn gnu_sparse(&self, r: &mut Reader) -> Result<(u64, SparseMap), IngestError> {
        let mut runs = Vec::new();
        let push = |runs: &mut Vec<(u64, u64)>, block: &[u8]| -> Option<()> {
            if block.iter().all(|&b| b == 0) {
                return Some(());
            }
            let off = u64::try_from(parse_number(&block[..12])?).ok()?;
            let len = u64::try_from(parse_number(&block[12..24])?).ok()?;
            runs.push((off, len));
            Some(())
        };
        let bad = |r: &Reader| r.err(self.start, "bad GNU sparse map");
        for i in 0..4 {
            push(&mut runs, &self.h.0[386 + 24 * i..410 + 24 * i]).ok_or_else(|| bad(r))?;
        }
        let mut extended = self.h.0[482] != 0;
        while extended {
            let b = r.read_block()?.ok_or_else(|| bad(r))?;
            for i in 0..21 {
                push(&mut runs, &b[24 * i..24 * i + 24]).ok_or_else(|| bad(r))?;
            }
            extended = b[504] != 0;
        }
        let real = self.h.num(483, 12).and_then(|v| u64::try_from(v).ok()).ok_or_else(|| bad(r))?;
        sparse_map(r, self.start, runs, real, self.size)
    }

    /// A pax sparse member (0.0, 0.1 or 1.0). Returns the real size, the map and how many
    /// data bytes follow (after the in-data map of format 1.0).
    pub(super) fn pax_sparse(&self, r: &mut Reader) -> Result<(u64, SparseMap, u64), IngestError> {
        let bad = |r: &Reader, what: &str| r.err(self.start, &format!("bad pax sparse member: {what}"));
        let num = |v: &[u8]| parse_decimal(v).and_then(|v| u64::try_from(v).ok());
        let real_key = if self.pax.get(b"GNU.sparse.realsize").is_some() {
            &b"GNU.sparse.realsize"[..]
        } else {
            b"GNU.sparse.size"
        };
        let real = self.pax.get(real_key).and_then(num).ok_or_else(|| bad(r, "no real size"))?;
        if self.pax.get(b"GNU.sparse.major") == Some(b"1") {
            // Format 1.0: a decimal map (count, then offset/length pairs, one per line) fills
            // whole blocks at the start of the data.
            let map_start = r.pos;
            let mut numbers = Vec::new();
            let mut line = Vec::new();
            let mut count = None;
            let mut consumed = 0u64;
            while count.is_none_or(|c: u64| (numbers.len() as u64) < 2 * c) {
                let block = r.read_block()?.ok_or_else(|| bad(r, "truncated map"))?;
                consumed += 512;
                for &b in &block {
                    if count.is_some_and(|c| (numbers.len() as u64) >= 2 * c) {
                        break;
                    }
                    if b == b'\n' {
                        let v = num(&line).ok_or_else(|| bad(r, "map number"))?;
                        line.clear();
                        match count {
                            // Each pair takes at least four bytes of the member.
                            None if v.saturating_mul(4) > self.size => return Err(bad(r, "map too long")),
                            None => count = Some(v),
                            Some(_) => numbers.push(v),
                        }
                    } else {
                        line.push(b);
                    }
                }
            }
            let runs = numbers.chunks(2).map(|p| (p[0], p[1])).collect();
            let stored = self.size.checked_sub(consumed).ok_or_else(|| bad(r, "map larger than member"))?;
            debug_assert_eq!(r.pos, map_start + consumed);
            let (real, map) = sparse_map(r, self.start, runs, real, stored)?;
            return Ok((real, map, stored));
        }
        let runs = if let Some(map) = self.pax.get(b"GNU.sparse.map") {
            let v: Vec<u64> =
                map.split(|&b| b == b',').map(num).collect::<Option<_>>().ok_or_else(|| bad(r, "map"))?;
            if !v.len().is_multiple_of(2) {
                return Err(bad(r, "odd map"));
            }
            v.chunks(2).map(|p| (p[0], p[1])).collect()
        } else {
            let offs = self.pax.local.iter().filter(|(k, _)| k == b"GNU.sparse.offset").map(|(_, v)| num(v));
            let lens =
                self.pax.local.iter().filter(|(k, _)| k == b"GNU.sparse.numbytes").map(|(_, v)| num(v));
            offs.zip(lens)
                .map(|(o, l)| Some((o?, l?)))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad(r, "map"))?
        };
        let (real, map) = sparse_map(r, self.start, runs, real, self.size)?;
        Ok((real, map, self.size))
    }
}

/// A sparse member's map: `None` when one run covers the whole file.
pub(super) type SparseMap = Option<Arc<[(u64, u64)]>>;

/// Checks a sparse map (sorted, inside the file, stored bytes adding up); returns the real
/// size and the map.
pub(super) fn sparse_map(
    r: &Reader,
    start: u64,
    runs: Vec<(u64, u64)>,
    real: u64,
    stored: u64,
) -> Result<(u64, SparseMap), IngestError> {
    let runs: Vec<(u64, u64)> = runs.into_iter().filter(|&(_, l)| l > 0).collect();
    let mut end = 0u64;
    let mut total = 0u64;
    for &(off, len) in &runs {
        let run_end = off.checked_add(len).filter(|&e| off >= end && e <= real);
        end = run_end
            .ok_or_else(|| r.err(start, "sparse map runs overlap, are unsorted or pass the file size"))?;
        total = total.saturating_add(len);
    }
    if total != stored || r.pos.saturating_add(stored) > r.len {
        return Err(r.err(start, &format!("sparse map holds {total} bytes but the member stores {stored}")));
    }
    let map = if runs == [(0, real)] { None } else { Some(Arc::from(runs)) };
    Ok((real, map))
}
