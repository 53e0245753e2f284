//! VDI reader (VirtualBox format 1.1, dynamic and fixed images, as qemu's `block/vdi.c`
//! describes the header): header, block map, allocation.
//!
//! Opening checks the header fields, that the block map and every data block lie inside the
//! file, that each allocated block index is used by exactly one virtual block (no overlaps)
//! and that every block counted as allocated is used (no leaks).

use super::{Kind, Summary, UnitMap};
use crate::bytes::{Le, ReadAt, need};
use crate::error::{Error, Location, Result};

pub const SIGNATURE: u32 = 0xbeda_107f;
const UNALLOCATED: u32 = 0xffff_ffff;
const DISCARDED: u32 = 0xffff_fffe;
const HEADER: &str = "vdi header";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub header_size: u32,
    pub image_type: u32,
    pub image_flags: u32,
    pub offset_bmap: u32,
    pub offset_data: u32,
    pub disk_size: u64,
    pub block_size: u32,
    pub block_extra: u32,
    pub blocks_in_image: u32,
    pub blocks_allocated: u32,
    /// In the GUID byte order VirtualBox uses (first three fields little-endian).
    pub uuid_image: [u8; 16],
    pub uuid_last_snap: [u8; 16],
    pub uuid_link: [u8; 16],
    pub uuid_parent: [u8; 16],
}

pub struct Vdi<R: ReadAt> {
    file: R,
    pub header: Header,
    map: UnitMap,
}

fn corrupt(at: u64, what: impl Into<String>) -> Error {
    Error::corrupt(HEADER, Some(at), what)
}

/// A VDI UUID as text (GUID byte order).
pub fn uuid_text(b: &[u8; 16]) -> String {
    let le = |r: std::ops::Range<usize>| b[r].iter().rev().map(|x| format!("{x:02X}")).collect::<String>();
    let be = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02X}")).collect::<String>();
    format!("{}-{}-{}-{}-{}", le(0..4), le(4..6), le(6..8), be(8..10), be(10..16))
}

impl<R: ReadAt> Vdi<R> {
    pub fn open(file: R) -> Result<Self> {
        let raw = file.read_vec(0, 0x200.min(file.len() as usize), HEADER)?;
        need(&raw, 0x1c8, HEADER, Some(0))?;
        let b = Le(&raw);
        if b.u32(0x40) != SIGNATURE {
            return Err(corrupt(0x40, format!("signature is {:#x}, expected {SIGNATURE:#x}", b.u32(0x40))));
        }
        let h = Header {
            version: b.u32(0x44),
            header_size: b.u32(0x48),
            image_type: b.u32(0x4c),
            image_flags: b.u32(0x50),
            offset_bmap: b.u32(0x154),
            offset_data: b.u32(0x158),
            disk_size: b.u64(0x170),
            block_size: b.u32(0x178),
            block_extra: b.u32(0x17c),
            blocks_in_image: b.u32(0x180),
            blocks_allocated: b.u32(0x184),
            uuid_image: b.array(0x188),
            uuid_last_snap: b.array(0x198),
            uuid_link: b.array(0x1a8),
            uuid_parent: b.array(0x1b8),
        };
        if h.version != 0x0001_0001 {
            return Err(Error::unsupported(
                HEADER,
                Some(0x44),
                format!("version {:#x} (only 1.1)", h.version),
            ));
        }
        if h.header_size < 0x180 {
            return Err(corrupt(
                0x48,
                format!("header size is {:#x}, expected at least 0x180", h.header_size),
            ));
        }
        if h.image_type != 1 && h.image_type != 2 {
            return Err(Error::unsupported(HEADER, Some(0x4c), format!("image type {}", h.image_type)));
        }
        if b.u32(0x168) != 512 {
            return Err(corrupt(0x168, format!("sector size is {}, expected 512", b.u32(0x168))));
        }
        if h.block_size == 0 || !h.block_size.is_power_of_two() || h.block_size < 512 {
            return Err(corrupt(
                0x178,
                format!("block size is {}, expected a power of two >= 512", h.block_size),
            ));
        }
        if h.block_extra != 0 {
            return Err(Error::unsupported(
                HEADER,
                Some(0x17c),
                format!("block extra data of {} bytes", h.block_extra),
            ));
        }
        if !h.offset_bmap.is_multiple_of(512) || !h.offset_data.is_multiple_of(512) || h.offset_bmap < 0x200 {
            return Err(corrupt(0x154, "block map or data offset is not sector-aligned after the header"));
        }
        let bs = u64::from(h.block_size);
        if u64::from(h.blocks_in_image) * bs < h.disk_size {
            return Err(corrupt(
                0x180,
                format!(
                    "{} blocks of {} bytes hold less than the disk size {}",
                    h.blocks_in_image, h.block_size, h.disk_size
                ),
            ));
        }
        if h.blocks_allocated > h.blocks_in_image {
            return Err(corrupt(0x184, "more blocks allocated than the image has"));
        }
        if h.uuid_parent != [0; 16] {
            return Err(Error::unsupported(HEADER, Some(0x1b8), "a differencing image (parent UUID set)"));
        }
        let bmap_len = u64::from(h.blocks_in_image) * 4;
        let bmap_end = u64::from(h.offset_bmap) + bmap_len;
        if bmap_end > u64::from(h.offset_data) {
            return Err(corrupt(0x158, "the block map overlaps the data area"));
        }
        if bmap_end > file.len() {
            return Err(Error::Truncated {
                at: Location { structure: "vdi block map".into(), offset: Some(u64::from(h.offset_bmap)) },
                needed: bmap_end,
                available: file.len(),
            });
        }
        let bmap = file.read_vec(u64::from(h.offset_bmap), bmap_len as usize, "vdi block map")?;
        let mut used = vec![false; h.blocks_allocated as usize];
        let mut units = Vec::with_capacity(h.blocks_in_image as usize);
        for (i, e) in bmap.chunks_exact(4).enumerate() {
            let e = Le(e).u32(0);
            let at = u64::from(h.offset_bmap) + i as u64 * 4;
            let name = || format!("vdi block map entry {i}");
            if e == UNALLOCATED || e == DISCARDED {
                units.push(None);
                continue;
            }
            let Some(u) = used.get_mut(e as usize) else {
                return Err(Error::corrupt(
                    name(),
                    Some(at),
                    format!("points at data block {e}, only {} are allocated", h.blocks_allocated),
                ));
            };
            if *u {
                return Err(Error::corrupt(
                    name(),
                    Some(at),
                    format!("data block {e} is used twice: blocks overlap"),
                ));
            }
            *u = true;
            let data = u64::from(h.offset_data) + u64::from(e) * bs;
            if data + bs > file.len() {
                return Err(Error::Truncated {
                    at: Location { structure: format!("vdi data block {e}"), offset: Some(data) },
                    needed: data + bs,
                    available: file.len(),
                });
            }
            units.push(Some(data));
        }
        if let Some(n) = used.iter().position(|u| !u) {
            return Err(corrupt(
                0x184,
                format!(
                    "{} blocks are counted as allocated but data block {n} is not used: leaked",
                    h.blocks_allocated
                ),
            ));
        }
        let map = UnitMap { unit: bs, size: h.disk_size, units };
        Ok(Vdi { file, header: h, map })
    }

    pub fn summary(&self) -> Summary {
        let h = &self.header;
        Summary {
            format: Kind::Vdi,
            virtual_size: h.disk_size,
            allocated_units: Some(u64::from(h.blocks_allocated)),
            compressed_units: None,
            unit_bytes: Some(u64::from(h.block_size)),
            ids: vec![
                ("uuid_image".into(), uuid_text(&h.uuid_image)),
                ("uuid_last_snap".into(), uuid_text(&h.uuid_last_snap)),
                ("uuid_link".into(), uuid_text(&h.uuid_link)),
            ],
            notes: vec![if h.image_type == 1 { "dynamic".into() } else { "fixed".into() }],
        }
    }
}

impl<R: ReadAt> ReadAt for Vdi<R> {
    fn len(&self) -> u64 {
        self.map.size
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.map.read_exact_at(&self.file, buf, offset)
    }
    fn next_data(&self, offset: u64) -> std::io::Result<Option<(u64, u64)>> {
        Ok(self.map.next_data(offset))
    }
}
