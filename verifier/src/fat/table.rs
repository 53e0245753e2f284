//! The file allocation table (fatgen103 sections 4 and 6.7): entry decoding for 12, 16 and 32
//! bit FATs, the reserved entries `FAT[0]` and `FAT[1]`, and cluster chains with loop detection.

use super::boot::{FatType, Geometry};
use super::{Finding, fat_err};
use crate::error::Result;

/// What one FAT entry says about its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cluster {
    Free,
    /// The next cluster of the chain.
    Next(u32),
    /// The chain ends here (EOC, any value from the type's EOC threshold up).
    End,
    /// Marked bad (0xFF7, 0xFFF7, 0x0FFFFFF7).
    Bad,
    /// A reserved value (1, or between the largest cluster and the bad mark).
    Reserved(u32),
}

/// One FAT copy decoded into one `u32` per cluster number, `0..=max_cluster`. FAT32 entries
/// keep only their low 28 bits, as the spec says.
#[derive(Debug, Clone)]
pub struct FatTable {
    pub fat_type: FatType,
    pub entries: Vec<u32>,
}

/// Bytes FAT entries `0..count` occupy.
pub fn fat_bytes(fat_type: FatType, count: u32) -> usize {
    (u64::from(count) * u64::from(fat_type.bits())).div_ceil(8) as usize
}

impl FatTable {
    /// Decodes the first `count` entries of `raw`, which must hold [`fat_bytes`] bytes.
    pub fn decode(fat_type: FatType, raw: &[u8], count: u32) -> FatTable {
        let n = count as usize;
        let mut entries = Vec::with_capacity(n.min(raw.len() * 2));
        let at = |i: usize| raw.get(i).copied().unwrap_or(0);
        for i in 0..n {
            let v = match fat_type {
                FatType::Fat12 => {
                    let off = i + i / 2;
                    let w = u16::from_le_bytes([at(off), at(off + 1)]);
                    u32::from(if i % 2 == 1 { w >> 4 } else { w & 0x0FFF })
                }
                FatType::Fat16 => u32::from(u16::from_le_bytes([at(2 * i), at(2 * i + 1)])),
                FatType::Fat32 => {
                    u32::from_le_bytes([at(4 * i), at(4 * i + 1), at(4 * i + 2), at(4 * i + 3)]) & 0x0FFF_FFFF
                }
            };
            entries.push(v);
        }
        FatTable { fat_type, entries }
    }

    /// The raw entry of cluster `n`, or `None` past the table.
    pub fn raw(&self, n: u32) -> Option<u32> {
        self.entries.get(n as usize).copied()
    }

    /// The bad-cluster mark of this FAT type.
    pub fn bad_mark(&self) -> u32 {
        match self.fat_type {
            FatType::Fat12 => 0xFF7,
            FatType::Fat16 => 0xFFF7,
            FatType::Fat32 => 0x0FFF_FFF7,
        }
    }

    /// Classifies entry `n`.
    pub fn get(&self, n: u32) -> Cluster {
        let v = self.raw(n).unwrap_or(0);
        let bad = self.bad_mark();
        let max = (self.entries.len() as u32).saturating_sub(1);
        match v {
            0 => Cluster::Free,
            v if v > bad => Cluster::End,
            v if v == bad => Cluster::Bad,
            v if (2..=max).contains(&v) => Cluster::Next(v),
            v => Cluster::Reserved(v),
        }
    }

    /// Free clusters among `2..entries.len()`.
    pub fn free_count(&self) -> u32 {
        self.entries.iter().skip(2).filter(|&&v| v == 0).count() as u32
    }

    /// Allocated (neither free nor bad) clusters among `2..entries.len()`.
    pub fn used_count(&self) -> u32 {
        let bad = self.bad_mark();
        self.entries.iter().skip(2).filter(|&&v| v != 0 && v != bad).count() as u32
    }

    /// Checks the reserved entries: `FAT[0]` carries `BPB_Media` in its low byte with all other
    /// bits set, `FAT[1]` is an EOC mark (whose top bits on FAT16/32 are the clean-shutdown and
    /// no-hard-error flags).
    pub fn check_reserved(&self, media: u8, fat_offset: u64, findings: &mut Vec<Finding>) {
        let mask = match self.fat_type {
            FatType::Fat12 => 0x0FFF,
            FatType::Fat16 => 0xFFFF,
            FatType::Fat32 => 0x0FFF_FFFF,
        };
        let want0 = (mask & !0xFF) | u32::from(media);
        let f0 = self.raw(0).unwrap_or(0);
        if f0 != want0 {
            findings.push(Finding::warning(
                "fat 0 entry 0",
                Some(fat_offset),
                format!(
                    "expected {want0:#x} (BPB_Media {media:#04x} with the other bits set), found {f0:#x}"
                ),
            ));
        }
        let f1 = self.raw(1).unwrap_or(0);
        // FAT16 bits 15 and 14, FAT32 bits 27 and 26: "clean shutdown" and "no disk error".
        let (clean, no_err) = match self.fat_type {
            FatType::Fat12 => (0, 0),
            FatType::Fat16 => (0x8000, 0x4000),
            FatType::Fat32 => (0x0800_0000, 0x0400_0000),
        };
        let off1 = fat_offset + u64::from(self.fat_type.bits()) / 8;
        if (f1 | clean | no_err) <= self.bad_mark() {
            findings.push(Finding::warning(
                "fat 0 entry 1",
                Some(off1),
                format!("expected an end-of-chain mark, found {f1:#x}"),
            ));
        }
        if clean != 0 && f1 & clean == 0 {
            findings.push(Finding::error(
                "fat 0 entry 1",
                Some(off1),
                "the clean-shutdown bit is clear: the volume was not unmounted cleanly".to_string(),
            ));
        }
        if no_err != 0 && f1 & no_err == 0 {
            findings.push(Finding::warning(
                "fat 0 entry 1",
                Some(off1),
                "the hard-error bit is clear: a disk error was recorded".to_string(),
            ));
        }
    }

    /// Follows the chain starting at `first` and returns its clusters. Stops with an error at
    /// a loop, a free or bad or reserved entry inside the chain, or a cluster number out of
    /// range; `what` names the owner for the message. A chain longer than the cluster count
    /// is a loop, so this ends on every input.
    pub fn chain(&self, first: u32, what: &str, geo: &Geometry) -> Result<Vec<u32>> {
        let max = geo.max_cluster();
        let structure = format!("fat cluster chain of {what}");
        if first < 2 || first > max {
            return Err(fat_err(
                &structure,
                geo.fat_offset,
                format!("first cluster {first} is outside 2..={max}"),
            ));
        }
        let mut out = vec![first];
        let mut cur = first;
        loop {
            let entry_off = geo.fat_offset + u64::from(cur) * u64::from(self.fat_type.bits()) / 8;
            match self.get(cur) {
                Cluster::End => return Ok(out),
                Cluster::Next(n) => {
                    if out.len() > geo.cluster_count as usize {
                        return Err(fat_err(
                            &structure,
                            entry_off,
                            format!(
                                "the chain loops: cluster {cur} points to {n}, more clusters than the volume has"
                            ),
                        ));
                    }
                    out.push(n);
                    cur = n;
                }
                Cluster::Free => {
                    return Err(fat_err(
                        &structure,
                        entry_off,
                        format!("cluster {cur} is in the chain but marked free"),
                    ));
                }
                Cluster::Bad => {
                    return Err(fat_err(
                        &structure,
                        entry_off,
                        format!("cluster {cur} is in the chain but marked bad"),
                    ));
                }
                Cluster::Reserved(v) => {
                    return Err(fat_err(
                        &structure,
                        entry_off,
                        format!("cluster {cur} points to {v:#x}, which is neither a cluster nor an end mark"),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fat12_packs_two_entries_in_three_bytes() {
        let t = FatTable::decode(FatType::Fat12, &[0xF8, 0xFF, 0xFF, 0x03, 0x40, 0x00], 4);
        assert_eq!(t.entries, vec![0xFF8, 0xFFF, 0x003, 0x004]);
    }

    #[test]
    fn fat32_ignores_the_top_four_bits() {
        let t = FatTable::decode(FatType::Fat32, &[0xFF, 0xFF, 0xFF, 0xFF], 1);
        assert_eq!(t.entries, vec![0x0FFF_FFFF]);
    }
}
