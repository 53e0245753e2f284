//! Output formats: how the finished disk lands in the output file (raw, qcow2, vdi, vpc).
//!
//! # How the build feeds a format
//!
//! The pipeline always writes the disk as a sparse raw temporary file through [`raw`]: the
//! ext4 writer and the partition tables write at random offsets, and a raw file is the one
//! place where that costs nothing. Zero writes become holes, so the temporary file takes only
//! as much disk space as the disk holds data (plus filesystem metadata), never the virtual
//! size. When the chosen format is not raw, [`convert`] then streams that file into the
//! format: it asks the filesystem for the data ranges (`SEEK_DATA`/`SEEK_HOLE`, so holes are
//! never read), reads only those, skips every unit (cluster or block) that is all zeros, and
//! writes the allocated units in disk order. Inside an allocated unit, 4 KiB pieces that are
//! all zeros are not written either (the output file is written once, front to back, so they
//! read as zeros): the output keeps the raw disk's holes, its bytes are the same. Reading and
//! writing overlap: a second thread reads the next units ahead ([`scan::RawDisk::each_nonzero_unit`];
//! compressed qcow2 has its own pipeline, see [`qcow2`]). Another thread gets the
//! output to disk while it is written ([`raw::BackgroundWriteback`]), so that writing the
//! file to disk overlaps with converting it. The temporary raw file is deleted afterwards, on
//! a third thread while this one waits for the output's last data to reach the disk.
//!
//! Why convert instead of writing each format directly from the writers: a direct writer
//! would need a random-access "virtual disk" writer under ext4, FAT and the partition tables
//! (allocating clusters as they are first touched), and compressed qcow2 cannot be updated in
//! place at all. The converted output is also a function of the disk's *bytes* only: two
//! builds that produce the same raw disk produce the same qcow2/vdi/vhd, whatever order the
//! writers happened to write in. The cost is one extra read of the data (from the page cache
//! right after it was written) and a peak disk use of twice the data size, not twice the
//! virtual size, which is what the issue rules out. `vpc` with `vpc_subformat = "fixed"` is
//! the raw disk plus a 512-byte footer: the footer is appended to the raw file itself, no
//! conversion.
//!
//! Allocation depends on content only, never on where the host filesystem reports holes
//! (that differs between filesystems): a unit is stored iff it holds a non-zero byte.
//!
//! # Layouts (all offsets from the start of the output file)
//!
//! **qcow2** (version 3, `docs/interop/qcow2.txt`), 64 KiB clusters, 16-bit refcounts, in
//! this order, each structure cluster-aligned:
//! 1. cluster 0: the header (104 bytes + compression type byte + padding = 112, big-endian),
//!    then the end-of-extensions marker (8 zero bytes). No other header extension: no
//!    feature table, no backing file, no bitmaps, nothing from the host.
//! 2. the L1 table (`l1_size` = virtual size / 512 MiB rounded up, 8 bytes each), from
//!    cluster 1.
//! 3. the data clusters, in virtual-disk order, only for clusters holding a non-zero byte.
//!    In `qcow2-compressed`, the data area holds each cluster's raw deflate stream (window
//!    bits 12, as qemu's `qcow2_compress` writes, level 6) packed byte after byte; a cluster
//!    whose stream is not shorter than a cluster is stored plain at the next cluster boundary.
//! 4. the L2 tables (8192 entries each), one per 512 MiB of virtual disk that holds data, in
//!    L1 order.
//! 5. the refcount table, then the refcount blocks (32768 clusters each), sized so they count
//!    themselves.
//!
//! Header fields: magic `QFI\xfb`, version 3, no backing file, `cluster_bits` 16, `size` the
//! virtual size, `crypt_method` 0, `l1_size`, `l1_table_offset` 0x10000,
//! `refcount_table_offset`/`refcount_table_clusters` as laid out, no snapshots, every feature
//! bitmap 0 (no dirty bit, no lazy refcounts), `refcount_order` 4, `header_length` 112,
//! `compression_type` 0 (deflate). Every reference to a cluster whose refcount is 1 carries
//! the COPIED flag (bit 63); compressed descriptors never do. A plain cluster's refcount is 1;
//! a host cluster holding compressed data counts every compressed cluster whose sector range
//! (offset to the end of its last 512-byte sector, the range qemu counts) touches it.
//!
//! **vdi** (qemu `block/vdi.c`, VirtualBox format 1.1), dynamic, 1 MiB blocks, little-endian:
//! a 512-byte header at 0 (text `<<< Oracle VM VirtualBox Disk Image >>>\n`, signature
//! 0xbeda107f, version 1.1, header size 0x180, type 1 = dynamic, flags 0, empty description,
//! block map at 0x200, data after the block map rounded up to 512 bytes, legacy geometry 0,
//! sector size 512, disk size, block size 1 MiB, no block extra, block count, allocated
//! block count, image UUID `derive("vdi-image-uuid", rootGPUID)`, last-snapshot UUID
//! `derive("vdi-last-snapshot-uuid", rootGPUID)`, link and parent UUIDs zero). The block map
//! holds one u32 per block: its index among the data blocks, or 0xffffffff (unallocated,
//! reads as zero) for blocks that are all zero. Data blocks follow in disk order. UUIDs are
//! stored in the GUID byte order (first three fields little-endian), as VirtualBox does.
//!
//! **vpc** (Microsoft's VHD specification), big-endian. The 512-byte footer: cookie
//! `conectix`, features 2, version 1.0, data offset (512 for dynamic, all ones for fixed),
//! timestamp = SOURCE_DATE_EPOCH in seconds since 2000-01-01 (clamped to 0..u32::MAX),
//! creator application `rpdk`, creator version 1.0, creator host OS `Wi2k`, original and
//! current size = the exact virtual size, the CHS geometry of [`vpc::geometry`], disk type
//! (2 fixed, 3 dynamic), checksum, unique ID `derive("vhd-unique-id", rootGPUID)` (RFC 9562
//! byte order), saved state 0. Dynamic images: footer copy at 0, dynamic header at 512
//! (`cxsparse`, table offset 1536, version 1.0, block count, 2 MiB blocks, no parent), the
//! block allocation table at 1536 (u32 sector offsets, 0xffffffff = unallocated, padded to
//! 512 bytes), then each allocated block in disk order as a 512-byte sector bitmap (all ones)
//! and its 2 MiB of data, then the footer. Fixed images: the raw disk, then the footer.
//!
//! The geometry: qemu reads the size from the CHS product when the creator is `vpc ` or
//! `qemu` (all versions) and, before qemu 10.0, for every creator except `win `, `qem2`,
//! `d2v `, `CTXS` and `tap\0`; Hyper-V and Azure read `current_size`. So reprodisk picks a
//! geometry whose product is exactly the disk size whenever one exists (every MiB-multiple
//! disk up to 64 GiB has one: 16 heads, 128 sectors), and otherwise the maximum geometry
//! 65535/16/255, for which every reader uses `current_size`. The manifest records the choice.

pub mod qcow2;
pub mod raw;
pub mod scan;
pub mod vdi;
pub mod vpc;

use crate::ids::{Guid, derive_guid};
use crate::spec::Format;
use serde::Serialize;
use std::fs::File;
use std::io;

/// `vpc_subformat`: the VHD disk type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum VpcSubformat {
    /// Sparse: a block allocation table and only the blocks that hold data (qemu's default).
    #[default]
    Dynamic,
    /// The raw disk followed by the footer (what Azure requires).
    Fixed,
}

/// What the output file depends on besides the disk's bytes.
#[derive(Debug, Clone, Copy)]
pub struct FormatParams {
    pub format: Format,
    pub vpc_subformat: VpcSubformat,
    /// Anchor of the format's derived IDs (rootGPUID).
    pub anchor: Guid,
    pub source_date_epoch: i64,
    /// `deterministic = false`: IDs are random as the seed's qemu-img makes them.
    pub random_ids: bool,
}

/// What the manifest records about the output format.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FormatRecord {
    pub format: &'static str,
    /// The disk the file holds, in bytes.
    pub virtual_size: u64,
    /// Clusters or blocks stored (plain and compressed), for qcow2, vdi and dynamic vpc.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocated_units: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compressed_units: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vdi: Option<vdi::VdiIds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc: Option<vpc::VpcRecord>,
}

impl FormatRecord {
    fn new(format: &'static str, virtual_size: u64) -> Self {
        FormatRecord {
            format,
            virtual_size,
            allocated_units: None,
            compressed_units: None,
            vdi: None,
            vpc: None,
        }
    }
}

/// The identifier of `domain`: derived from the anchor, or random without `deterministic`.
pub(crate) fn format_id(params: &FormatParams, domain: &str) -> io::Result<Guid> {
    let source = crate::ids::IdSource::from_deterministic(!params.random_ids);
    source.guid(derive_guid(domain, params.anchor)).map_err(io::Error::other)
}

/// Writes the raw disk `disk` (a sparse file of `len` bytes) into `out` in `params.format`.
/// `out` is empty and positioned at 0. Raw and fixed vpc are not converted (see
/// [`needs_conversion`]).
pub fn convert(
    disk: &File,
    len: u64,
    out: &mut File,
    params: &FormatParams,
    on_progress: &(dyn Fn(u64) + Sync),
) -> io::Result<FormatRecord> {
    let src = scan::RawDisk::new(disk, len);
    match params.format {
        Format::Qcow2 => qcow2::write(&src, out, false, on_progress),
        Format::Qcow2Compressed => qcow2::write(&src, out, true, on_progress),
        Format::Vdi => vdi::write(&src, out, params, on_progress),
        Format::Vpc => vpc::write_dynamic(&src, out, params, on_progress),
        Format::Raw => Ok(FormatRecord::new("raw", len)),
    }
}

/// Whether `params` needs a second output file ([`convert`]) or is finished in place
/// ([`finish_in_place`]).
pub fn needs_conversion(params: &FormatParams) -> bool {
    match params.format {
        Format::Raw => false,
        Format::Vpc => params.vpc_subformat == VpcSubformat::Dynamic,
        _ => true,
    }
}

/// Finishes a raw disk file that is its own output: nothing for raw, the footer for a fixed
/// vpc (appended at `len`).
pub fn finish_in_place(disk: &mut File, len: u64, params: &FormatParams) -> io::Result<FormatRecord> {
    match params.format {
        Format::Vpc => vpc::append_fixed_footer(disk, len, params),
        _ => Ok(FormatRecord::new("raw", len)),
    }
}

impl FormatParams {
    /// The format parameters of `spec`.
    pub fn of(spec: &crate::spec::Spec) -> Self {
        FormatParams {
            format: spec.format,
            vpc_subformat: spec.vpc_subformat,
            anchor: spec.root_gpuid,
            source_date_epoch: spec.source_date_epoch.value,
            random_ids: !spec.deterministic,
        }
    }
}

/// Turns the finished raw disk (`len` bytes) into the output file of `params.format`: the
/// same temporary file for raw and fixed vpc, else a new temporary file beside it (the raw
/// one is deleted). Nothing is under the final name until the caller commits.
pub fn finish(
    mut disk: raw::Image,
    len: u64,
    params: &FormatParams,
) -> io::Result<(raw::Image, FormatRecord)> {
    if !needs_conversion(params) {
        let rec = finish_in_place(disk.file(), len, params)?;
        return Ok((disk, rec));
    }
    let mut out = raw::Image::create(disk.final_path(), 0)?;
    let writeback = raw::BackgroundWriteback::start(out.file())?;
    let rec = convert(disk.file(), len, out.file(), params, &|_| {})?;
    writeback.finish()?;
    // Deleting the raw file frees its page cache, which takes the kernel a while (0.6 s
    // for 700 MB of data); it runs while this thread waits for the output's data to reach
    // the disk, which commit would wait for anyway.
    let discard = std::thread::spawn(move || drop(disk));
    let synced = out.file().sync_data();
    discard.join().map_err(|_| io::Error::other("deleting the temporary raw disk failed"))?;
    synced?;
    Ok((out, rec))
}
