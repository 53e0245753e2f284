//! VDI 1.1 dynamic image writer (1 MiB blocks), laid out as `format/mod.rs` describes.

use super::scan::{RawDisk, write_nonzero_at};
use super::{FormatParams, FormatRecord, format_id};
use serde::Serialize;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

pub const BLOCK: u64 = 1 << 20;
pub const HEADER_TEXT: &[u8] = b"<<< Oracle VM VirtualBox Disk Image >>>\n";
pub const SIGNATURE: u32 = 0xbeda_107f;
const UNALLOCATED: u32 = 0xffff_ffff;
const BMAP_OFFSET: u64 = 0x200;
/// Domains of the two UUIDs, anchored on rootGPUID (ARCHITECTURE.md, Identifiers).
pub const IMAGE_UUID_DOMAIN: &str = "vdi-image-uuid";
pub const LAST_SNAPSHOT_UUID_DOMAIN: &str = "vdi-last-snapshot-uuid";

/// The UUIDs the header carries, for the manifest.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VdiIds {
    pub image_uuid: String,
    pub last_snapshot_uuid: String,
}

pub fn write(
    disk: &RawDisk<'_>,
    out: &mut File,
    params: &FormatParams,
    on_progress: &(dyn Fn(u64) + Sync),
) -> io::Result<FormatRecord> {
    let size = disk.len();
    let blocks = size.div_ceil(BLOCK);
    let blocks32 = u32::try_from(blocks).map_err(|_| io::Error::other("the disk is too large for vdi"))?;
    let data_offset = (BMAP_OFFSET + blocks * 4).next_multiple_of(512);
    let mut bmap = vec![UNALLOCATED; blocks as usize];
    let mut allocated = 0u32;
    disk.each_nonzero_unit(BLOCK, |index, data| {
        on_progress(BLOCK);
        bmap[index as usize] = allocated;
        write_nonzero_at(out, data, data_offset + u64::from(allocated) * BLOCK)?;
        allocated += 1;
        Ok(())
    })?;

    let image = format_id(params, IMAGE_UUID_DOMAIN)?;
    let snap = format_id(params, LAST_SNAPSHOT_UUID_DOMAIN)?;
    let mut head = vec![0u8; data_offset as usize];
    head[..HEADER_TEXT.len()].copy_from_slice(HEADER_TEXT);
    let mut put = |at: usize, b: &[u8]| head[at..at + b.len()].copy_from_slice(b);
    put(0x40, &SIGNATURE.to_le_bytes());
    put(0x44, &0x0001_0001u32.to_le_bytes()); // version 1.1
    put(0x48, &0x180u32.to_le_bytes()); // header size
    put(0x4c, &1u32.to_le_bytes()); // image type: dynamic
    put(0x50, &0u32.to_le_bytes()); // image flags
    // 0x54..0x154: description, empty.
    put(0x154, &(BMAP_OFFSET as u32).to_le_bytes());
    put(0x158, &(data_offset as u32).to_le_bytes());
    // 0x15c..0x168: legacy geometry (cylinders, heads, sectors), 0 = none.
    put(0x168, &512u32.to_le_bytes()); // sector size
    put(0x170, &size.to_le_bytes());
    put(0x178, &(BLOCK as u32).to_le_bytes());
    put(0x17c, &0u32.to_le_bytes()); // block extra
    put(0x180, &blocks32.to_le_bytes());
    put(0x184, &allocated.to_le_bytes());
    put(0x188, &image.to_gpt_bytes());
    put(0x198, &snap.to_gpt_bytes());
    // 0x1a8 link UUID, 0x1b8 parent UUID: zero (no parent).
    for (i, e) in bmap.iter().enumerate() {
        put(BMAP_OFFSET as usize + i * 4, &e.to_le_bytes());
    }
    out.write_all_at(&head, 0)?;
    out.set_len(data_offset + u64::from(allocated) * BLOCK)?;

    let mut rec = FormatRecord::new("vdi", size);
    rec.allocated_units = Some(u64::from(allocated));
    rec.vdi = Some(VdiIds { image_uuid: image.to_string(), last_snapshot_uuid: snap.to_string() });
    Ok(rec)
}
