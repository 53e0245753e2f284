//! VHD reader (qemu's `vpc`; Microsoft's VHD specification): footer, dynamic header, block
//! allocation table, sector bitmaps; fixed and dynamic disks.
//!
//! Opening checks both checksums, that the footer copy at the start of a dynamic disk equals
//! the footer at its end, that every block and its bitmap lie between the table and the
//! footer without overlapping another block, and reports the CHS geometry against the size.
//! The disk's size is `current_size`; a geometry whose product differs is a note, since qemu
//! would then size the disk by its geometry for some creator applications.

use super::{Be, Kind, Summary, UnitMap};
use crate::bytes::ReadAt;
use crate::error::{Error, Location, Result};

pub const COOKIE: &[u8; 8] = b"conectix";
const DYN_COOKIE: &[u8; 8] = b"cxsparse";
const VHD_EPOCH: i64 = 946_684_800;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footer {
    pub features: u32,
    pub version: u32,
    pub data_offset: u64,
    pub timestamp: u32,
    pub creator_app: [u8; 4],
    pub creator_version: u32,
    pub creator_host_os: [u8; 4],
    pub original_size: u64,
    pub current_size: u64,
    pub cylinders: u16,
    pub heads: u8,
    pub sectors: u8,
    pub disk_type: u32,
    pub unique_id: [u8; 16],
    pub saved_state: u8,
}

pub struct Vpc<R: ReadAt> {
    file: R,
    pub footer: Footer,
    /// Dynamic disks: block size and blocks allocated.
    pub block_size: Option<u64>,
    allocated: u64,
    /// Fixed disks map one unit: the whole disk at offset 0.
    map: UnitMap,
    /// Per allocated block, the sectors its bitmap marks absent (read as zeros).
    absent: Vec<(u64, Vec<u8>)>,
}

/// One's complement of the byte sum with the checksum field taken as zero.
fn checksum(b: &[u8], field: usize) -> u32 {
    let sum = b
        .iter()
        .enumerate()
        .filter(|(i, _)| !(field..field + 4).contains(i))
        .fold(0u32, |s, (_, &x)| s.wrapping_add(u32::from(x)));
    !sum
}

fn parse_footer(raw: &[u8], at: u64, structure: &str) -> Result<Footer> {
    let b = Be(raw);
    if raw[..8] != *COOKIE {
        return Err(Error::corrupt(structure, Some(at), "cookie is not conectix"));
    }
    let want = checksum(raw, 64);
    if b.u32(64) != want {
        return Err(Error::corrupt(
            structure,
            Some(at + 64),
            format!("checksum is {:#010x}, the bytes give {want:#010x}", b.u32(64)),
        ));
    }
    let arr = |o: usize| -> [u8; 4] { [raw[o], raw[o + 1], raw[o + 2], raw[o + 3]] };
    let f = Footer {
        features: b.u32(8),
        version: b.u32(12),
        data_offset: b.u64(16),
        timestamp: b.u32(24),
        creator_app: arr(28),
        creator_version: b.u32(32),
        creator_host_os: arr(36),
        original_size: b.u64(40),
        current_size: b.u64(48),
        cylinders: b.u16(56),
        heads: raw[58],
        sectors: raw[59],
        disk_type: b.u32(60),
        unique_id: raw[68..84].try_into().unwrap_or([0; 16]),
        saved_state: raw[84],
    };
    if f.version >> 16 != 1 {
        return Err(Error::unsupported(
            structure,
            Some(at + 12),
            format!("file format version {:#x}", f.version),
        ));
    }
    match f.disk_type {
        2 | 3 => Ok(f),
        4 => Err(Error::unsupported(structure, Some(at + 60), "a differencing disk")),
        t => Err(Error::corrupt(
            structure,
            Some(at + 60),
            format!("disk type is {t}, expected 2 (fixed) or 3 (dynamic)"),
        )),
    }
}

impl<R: ReadAt> Vpc<R> {
    pub fn open(file: R) -> Result<Self> {
        let len = file.len();
        if len < 512 {
            return Err(Error::Truncated {
                at: Location { structure: "vhd footer".into(), offset: Some(0) },
                needed: 512,
                available: len,
            });
        }
        let tail = file.read_vec(len - 512, 512, "vhd footer")?;
        let footer = parse_footer(&tail, len - 512, "vhd footer")?;
        if footer.disk_type == 2 {
            if footer.current_size != len - 512 {
                return Err(Error::corrupt(
                    "vhd footer",
                    Some(len - 512 + 48),
                    format!(
                        "a fixed disk of {} bytes in a file holding {} bytes before its footer",
                        footer.current_size,
                        len - 512
                    ),
                ));
            }
            let map = UnitMap { unit: (len - 512).max(1), size: len - 512, units: vec![Some(0)] };
            return Ok(Vpc { file, footer, block_size: None, allocated: 0, map, absent: Vec::new() });
        }
        let head = file.read_vec(0, 512, "vhd footer copy")?;
        if head != tail {
            return Err(Error::corrupt(
                "vhd footer copy",
                Some(0),
                "differs from the footer at the end of the file",
            ));
        }
        let dh_at = footer.data_offset;
        let dh = file.read_vec(dh_at, 1024, "vhd dynamic header")?;
        let b = Be(&dh);
        if dh[..8] != *DYN_COOKIE {
            return Err(Error::corrupt("vhd dynamic header", Some(dh_at), "cookie is not cxsparse"));
        }
        let want = checksum(&dh, 36);
        if b.u32(36) != want {
            return Err(Error::corrupt(
                "vhd dynamic header",
                Some(dh_at + 36),
                format!("checksum is {:#010x}, the bytes give {want:#010x}", b.u32(36)),
            ));
        }
        let table = b.u64(16);
        let entries = u64::from(b.u32(28));
        let bs = u64::from(b.u32(32));
        if bs < 512 || !bs.is_power_of_two() || bs > 1 << 28 {
            return Err(Error::corrupt(
                "vhd dynamic header",
                Some(dh_at + 32),
                format!("block size is {bs}"),
            ));
        }
        if entries * bs < footer.current_size {
            return Err(Error::corrupt(
                "vhd dynamic header",
                Some(dh_at + 28),
                format!("{entries} blocks of {bs} bytes hold less than current_size {}", footer.current_size),
            ));
        }
        if dh[40..56] != [0; 16] {
            return Err(Error::unsupported("vhd dynamic header", Some(dh_at + 40), "a parent disk"));
        }
        let table_end = table.checked_add(entries * 4).filter(|&e| e <= len - 512);
        let Some(table_end) = table_end else {
            return Err(Error::Truncated {
                at: Location { structure: "vhd block allocation table".into(), offset: Some(table) },
                needed: table.saturating_add(entries * 4),
                available: len - 512,
            });
        };
        if table < dh_at + 1024 {
            return Err(Error::corrupt(
                "vhd block allocation table",
                Some(table),
                "overlaps the dynamic header",
            ));
        }
        let bat = file.read_vec(table, (entries * 4) as usize, "vhd block allocation table")?;
        let bitmap = (bs / 512).div_ceil(8).next_multiple_of(512);
        let mut units = Vec::with_capacity(entries as usize);
        let mut spans: Vec<(u64, u64, usize)> = Vec::new();
        let mut absent = Vec::new();
        for (i, e) in bat.chunks_exact(4).enumerate() {
            let e = Be(e).u32(0);
            if e == u32::MAX {
                units.push(None);
                continue;
            }
            let at = u64::from(e) * 512;
            let end = at + bitmap + bs;
            let name = format!("vhd block {i}");
            if at < table_end.next_multiple_of(512) || end > len - 512 {
                return Err(Error::corrupt(
                    name,
                    Some(table + i as u64 * 4),
                    format!(
                        "lies at bytes {at:#x}..{end:#x}, outside the data area {table_end:#x}..{:#x}",
                        len - 512
                    ),
                ));
            }
            spans.push((at, end, i));
            let bits = file.read_vec(at, bitmap as usize, "vhd sector bitmap")?;
            if bits.iter().take((bs / 512 / 8) as usize).any(|&x| x != 0xff) {
                absent.push((i as u64, bits));
            }
            units.push(Some(at + bitmap));
        }
        spans.sort_unstable();
        for w in spans.windows(2) {
            if w[1].0 < w[0].1 {
                return Err(Error::corrupt(
                    format!("vhd block {}", w[1].2),
                    Some(w[1].0),
                    format!("overlaps block {}", w[0].2),
                ));
            }
        }
        let allocated = spans.len() as u64;
        let map = UnitMap { unit: bs, size: footer.current_size, units };
        Ok(Vpc { file, footer, block_size: Some(bs), allocated, map, absent })
    }

    /// The disk size the CHS geometry gives (what qemu uses for creators `vpc ` and `qemu`).
    pub fn chs_size(&self) -> u64 {
        u64::from(self.footer.cylinders) * u64::from(self.footer.heads) * u64::from(self.footer.sectors) * 512
    }

    pub fn summary(&self) -> Summary {
        let f = &self.footer;
        let mut notes = vec![format!(
            "{}, creator {:?} version {:#x} on {:?}, geometry {}x{}x{}",
            if f.disk_type == 2 { "fixed" } else { "dynamic" },
            String::from_utf8_lossy(&f.creator_app),
            f.creator_version,
            String::from_utf8_lossy(&f.creator_host_os),
            f.cylinders,
            f.heads,
            f.sectors
        )];
        let max = (f.cylinders, f.heads, f.sectors) == (65535, 16, 255);
        if self.chs_size() != f.current_size && !max {
            notes.push(format!(
                "the geometry gives {} bytes, not current_size {}: readers that size a VHD by its geometry see a different disk",
                self.chs_size(),
                f.current_size
            ));
        }
        Summary {
            format: Kind::Vpc,
            virtual_size: f.current_size,
            allocated_units: self.block_size.map(|_| self.allocated),
            compressed_units: None,
            unit_bytes: self.block_size,
            ids: vec![
                ("unique_id".into(), f.unique_id.iter().map(|b| format!("{b:02x}")).collect()),
                ("timestamp".into(), (i64::from(f.timestamp) + VHD_EPOCH).to_string()),
            ],
            notes,
        }
    }
}

impl<R: ReadAt> ReadAt for Vpc<R> {
    fn len(&self) -> u64 {
        self.map.size
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.map.read_exact_at(&self.file, buf, offset)?;
        // Sectors a bitmap marks absent read as zeros whatever the block holds.
        let Some(bs) = self.block_size else { return Ok(()) };
        let end = offset + buf.len() as u64;
        for (block, bits) in &self.absent {
            let (bstart, bend) = (block * bs, (block + 1) * bs);
            if bend <= offset || bstart >= end {
                continue;
            }
            for s in (offset.max(bstart) / 512)..end.min(bend).div_ceil(512) {
                let k = (s - bstart / 512) as usize;
                if bits[k / 8] & (0x80 >> (k % 8)) == 0 {
                    let (a, b) = ((s * 512).max(offset), ((s + 1) * 512).min(end));
                    buf[(a - offset) as usize..(b - offset) as usize].fill(0);
                }
            }
        }
        Ok(())
    }
    fn next_data(&self, offset: u64) -> std::io::Result<Option<(u64, u64)>> {
        Ok(self.map.next_data(offset))
    }
}
