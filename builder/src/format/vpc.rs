//! VHD (qemu's `vpc`) writer: dynamic (2 MiB blocks) and fixed, laid out as `format/mod.rs`
//! describes, with a geometry that keeps the disk size exact.

use super::scan::{RawDisk, write_nonzero_at};
use super::{FormatParams, FormatRecord, VpcSubformat, format_id};
use serde::Serialize;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

pub const BLOCK: u64 = 2 << 20;
const SECTOR: u64 = 512;
/// Seconds from 1970-01-01 to 2000-01-01, the VHD epoch.
const VHD_EPOCH: i64 = 946_684_800;
pub const CREATOR_APP: &[u8; 4] = b"rpdk";
pub const CREATOR_VERSION: u32 = 0x0001_0000;
pub const CREATOR_HOST_OS: &[u8; 4] = b"Wi2k";
pub const UNIQUE_ID_DOMAIN: &str = "vhd-unique-id";
const TABLE_OFFSET: u64 = 1536;
/// The largest geometry: readers take `current_size` instead of the CHS product.
pub const MAX_GEOMETRY: Geometry = Geometry { cylinders: 65535, heads: 16, sectors: 255 };

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Geometry {
    pub cylinders: u16,
    pub heads: u8,
    pub sectors: u8,
}

/// What the manifest records about a VHD.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VpcRecord {
    pub subformat: VpcSubformat,
    pub unique_id: String,
    pub timestamp: u32,
    pub geometry: Geometry,
    /// Why this geometry: whether its product is the exact size.
    pub geometry_reason: String,
}

/// A geometry whose product is exactly `size` (16 heads and the most sectors per track that
/// divide, so MiB-multiple disks up to 64 GiB get 16 x 128), else [`MAX_GEOMETRY`].
pub fn geometry(size: u64) -> (Geometry, String) {
    let total = size / SECTOR;
    if size.is_multiple_of(SECTOR) {
        for heads in (1..=16u64).rev() {
            for sectors in (1..=255u64).rev() {
                let per_cyl = heads * sectors;
                if total.is_multiple_of(per_cyl) && total / per_cyl <= 65535 && total > 0 {
                    let g = Geometry {
                        cylinders: (total / per_cyl) as u16,
                        heads: heads as u8,
                        sectors: sectors as u8,
                    };
                    return (
                        g,
                        format!(
                            "{}x{}x{} sectors is exactly the disk size, so readers that size a VHD by its geometry (Virtual PC, qemu for creator `vpc `/`qemu`) and readers that use current_size (Hyper-V, Azure, qemu) agree",
                            g.cylinders, g.heads, g.sectors
                        ),
                    );
                }
            }
        }
    }
    (
        MAX_GEOMETRY,
        "no geometry of at most 65535x16x255 is exactly the disk size; the maximum geometry makes qemu, Hyper-V and Azure use current_size, the exact size".into(),
    )
}

fn checksum(b: &[u8]) -> u32 {
    !b.iter().fold(0u32, |s, &x| s.wrapping_add(u32::from(x)))
}

fn timestamp(source_date_epoch: i64) -> u32 {
    (source_date_epoch - VHD_EPOCH).clamp(0, i64::from(u32::MAX)) as u32
}

fn footer(size: u64, subformat: VpcSubformat, params: &FormatParams) -> io::Result<([u8; 512], VpcRecord)> {
    let (g, reason) = geometry(size);
    let id = format_id(params, UNIQUE_ID_DOMAIN)?;
    let ts = timestamp(params.source_date_epoch);
    let mut f = [0u8; 512];
    let mut put = |at: usize, b: &[u8]| f[at..at + b.len()].copy_from_slice(b);
    put(0, b"conectix");
    put(8, &2u32.to_be_bytes()); // features: reserved bit
    put(12, &0x0001_0000u32.to_be_bytes());
    let data_offset = match subformat {
        VpcSubformat::Dynamic => SECTOR,
        VpcSubformat::Fixed => u64::MAX,
    };
    put(16, &data_offset.to_be_bytes());
    put(24, &ts.to_be_bytes());
    put(28, CREATOR_APP);
    put(32, &CREATOR_VERSION.to_be_bytes());
    put(36, CREATOR_HOST_OS);
    put(40, &size.to_be_bytes()); // original size
    put(48, &size.to_be_bytes()); // current size
    put(56, &g.cylinders.to_be_bytes());
    put(58, &[g.heads, g.sectors]);
    let disk_type: u32 = match subformat {
        VpcSubformat::Dynamic => 3,
        VpcSubformat::Fixed => 2,
    };
    put(60, &disk_type.to_be_bytes());
    put(68, &id.0);
    let sum = checksum(&f);
    f[64..68].copy_from_slice(&sum.to_be_bytes());
    let rec = VpcRecord {
        subformat,
        unique_id: id.to_string(),
        timestamp: ts,
        geometry: g,
        geometry_reason: reason,
    };
    Ok((f, rec))
}

/// Appends the fixed-disk footer to the raw disk file (`len` bytes).
pub fn append_fixed_footer(disk: &mut File, len: u64, params: &FormatParams) -> io::Result<FormatRecord> {
    let (f, vpc) = footer(len, VpcSubformat::Fixed, params)?;
    disk.write_all_at(&f, len)?;
    let mut rec = FormatRecord::new("vpc", len);
    rec.vpc = Some(vpc);
    Ok(rec)
}

/// Writes a dynamic VHD of `disk` into `out`.
pub fn write_dynamic(
    disk: &RawDisk<'_>,
    out: &mut File,
    params: &FormatParams,
    on_progress: &(dyn Fn(u64) + Sync),
) -> io::Result<FormatRecord> {
    let size = disk.len();
    let blocks = size.div_ceil(BLOCK);
    let blocks32 = u32::try_from(blocks).map_err(|_| io::Error::other("the disk is too large for vpc"))?;
    let data_start = (TABLE_OFFSET + blocks * 4).next_multiple_of(SECTOR);
    let bitmap = vec![0xffu8; SECTOR as usize];
    let mut bat = vec![0xffu8; (data_start - TABLE_OFFSET) as usize];
    let mut pos = data_start;
    let mut allocated = 0u64;
    disk.each_nonzero_unit(BLOCK, |index, data| {
        on_progress(BLOCK);
        let sector =
            u32::try_from(pos / SECTOR).map_err(|_| io::Error::other("the vpc file is too large"))?;
        bat[index as usize * 4..index as usize * 4 + 4].copy_from_slice(&sector.to_be_bytes());
        out.write_all_at(&bitmap, pos)?;
        // Zero pieces of a block stay unwritten: the footer, written last, extends the file.
        write_nonzero_at(out, data, pos + SECTOR)?;
        pos += SECTOR + BLOCK;
        allocated += 1;
        Ok(())
    })?;
    let (foot, vpc) = footer(size, VpcSubformat::Dynamic, params)?;
    out.write_all_at(&foot, pos)?;

    let mut dyn_header = [0u8; 1024];
    let mut put = |at: usize, b: &[u8]| dyn_header[at..at + b.len()].copy_from_slice(b);
    put(0, b"cxsparse");
    put(8, &u64::MAX.to_be_bytes()); // data offset: unused
    put(16, &TABLE_OFFSET.to_be_bytes());
    put(24, &0x0001_0000u32.to_be_bytes());
    put(28, &blocks32.to_be_bytes());
    put(32, &(BLOCK as u32).to_be_bytes());
    let sum = checksum(&dyn_header);
    dyn_header[36..40].copy_from_slice(&sum.to_be_bytes());
    let mut head = Vec::with_capacity(data_start as usize);
    head.extend_from_slice(&foot);
    head.extend_from_slice(&dyn_header);
    head.extend_from_slice(&bat);
    out.write_all_at(&head, 0)?;

    let mut rec = FormatRecord::new("vpc", size);
    rec.allocated_units = Some(allocated);
    rec.vpc = Some(vpc);
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mib_disks_get_an_exact_geometry() {
        for mib in [1u64, 20, 257, 2048, 65535] {
            let (g, _) = geometry(mib << 20);
            assert_eq!(
                u64::from(g.cylinders) * u64::from(g.heads) * u64::from(g.sectors) * 512,
                mib << 20,
                "{mib} MiB"
            );
        }
        assert_eq!(geometry(1 << 40).0, MAX_GEOMETRY);
    }

    #[test]
    fn timestamps_before_2000_clamp_to_the_vhd_epoch() {
        assert_eq!(timestamp(315_532_800), 0);
        assert_eq!(timestamp(VHD_EPOCH + 5), 5);
    }

    #[test]
    fn footer_checksum_verifies() {
        let p = FormatParams {
            format: crate::spec::Format::Vpc,
            vpc_subformat: VpcSubformat::Fixed,
            anchor: crate::ids::SEED_ROOT_GPUID,
            source_date_epoch: VHD_EPOCH + 1,
            random_ids: false,
        };
        let (f, rec) = footer(20 << 20, VpcSubformat::Fixed, &p).unwrap();
        let mut z = f;
        z[64..68].fill(0);
        assert_eq!(u32::from_be_bytes(f[64..68].try_into().unwrap()), checksum(&z));
        assert_eq!(rec.timestamp, 1);
    }
}
