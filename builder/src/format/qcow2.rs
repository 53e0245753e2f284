//! qcow2 version 3 writer (plain and deflate-compressed clusters), laid out as `format/mod.rs`
//! describes: header, L1, data in disk order, L2 tables, refcount table and blocks.

use super::FormatRecord;
use super::scan::RawDisk;
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

pub const CLUSTER_BITS: u32 = 16;
pub const CLUSTER: u64 = 1 << CLUSTER_BITS;
const L2_ENTRIES: u64 = CLUSTER / 8;
/// 16-bit refcounts (`refcount_order` 4), qemu's default.
const REFCOUNT_ORDER: u32 = 4;
const REFCOUNTS_PER_BLOCK: u64 = CLUSTER * 8 / (1 << REFCOUNT_ORDER);
const HEADER_LENGTH: u32 = 112;
const COPIED: u64 = 1 << 63;
const COMPRESSED: u64 = 1 << 62;
/// Bits of a compressed descriptor that hold the host offset: `62 - (cluster_bits - 8)`.
const COMPRESSED_OFFSET_BITS: u32 = 62 - (CLUSTER_BITS - 8);
/// Clusters compressed per parallel batch: enough to keep every core busy, bounded memory.
const BATCH: usize = 512;

/// How one virtual cluster is stored.
enum Stored {
    Plain(Vec<u8>),
    Compressed(Vec<u8>),
}

/// Raw deflate (window bits 12, as qemu's `qcow2_compress`) at the default level, or `None`
/// when the stream would not be shorter than a cluster (qemu then stores the cluster plain).
///
/// Every cluster gets a fresh compressor: a reused one (`reset`) may carry state from the
/// clusters it compressed before (zlib-ng had such a bug), and which clusters a worker
/// compressed before depends on the number of cores, so reuse could make the bytes depend on
/// the machine.
fn compress(data: &[u8]) -> Option<Vec<u8>> {
    let mut c = compressor();
    let mut out = Vec::with_capacity(CLUSTER as usize - 1);
    match c.compress_vec(data, &mut out, flate2::FlushCompress::Finish) {
        Ok(flate2::Status::StreamEnd) => Some(out),
        _ => None,
    }
}

fn compressor() -> flate2::Compress {
    flate2::Compress::new_with_window_bits(flate2::Compression::new(6), false, 12)
}

/// Compresses a batch on every core. Worker `w` takes clusters `w, w + n, ...`, and the
/// results go back in batch order, so the output never depends on the number of cores.
fn compress_batch(batch: Vec<(u64, Vec<u8>)>) -> Vec<(u64, Stored)> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(batch.len().max(1));
    let mut slots: Vec<Option<Stored>> = (0..batch.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let batch = &batch;
                s.spawn(move || {
                    (w..batch.len())
                        .step_by(workers)
                        .map(|i| {
                            let data = &batch[i].1;
                            (
                                i,
                                compress(data)
                                    .map_or_else(|| Stored::Plain(data.clone()), Stored::Compressed),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            // A worker only panics if compression itself panics, which flate2 never does on
            // in-memory buffers; fall back to plain storage rather than propagate.
            if let Ok(done) = h.join() {
                for (i, st) in done {
                    slots[i] = Some(st);
                }
            }
        }
    });
    batch.into_iter().zip(slots).map(|((idx, data), st)| (idx, st.unwrap_or(Stored::Plain(data)))).collect()
}

/// Appends data clusters at the end of the data area and remembers where each went.
struct DataArea<W: Write> {
    out: W,
    /// Byte position of the next write, from the start of the file.
    pos: u64,
    /// L2 entries by virtual cluster index (0 = unallocated).
    l2: std::collections::BTreeMap<u64, u64>,
    /// Refcount of every host cluster from `first` on.
    refcounts: Vec<u16>,
    first: u64,
    compressed: u64,
}

impl<W: Write> DataArea<W> {
    fn count(&mut self, from: u64, to_excl: u64) {
        for c in from / CLUSTER..to_excl.div_ceil(CLUSTER) {
            let i = (c - self.first) as usize;
            if self.refcounts.len() <= i {
                self.refcounts.resize(i + 1, 0);
            }
            self.refcounts[i] += 1;
        }
    }

    fn pad_to_cluster(&mut self) -> io::Result<()> {
        let pad = self.pos.next_multiple_of(CLUSTER) - self.pos;
        self.out.write_all(&vec![0u8; pad as usize])?;
        self.pos += pad;
        Ok(())
    }

    fn put(&mut self, index: u64, stored: Stored) -> io::Result<()> {
        match stored {
            Stored::Plain(data) => {
                self.pad_to_cluster()?;
                self.l2.insert(index, self.pos | COPIED);
                self.count(self.pos, self.pos + CLUSTER);
                self.out.write_all(&data)?;
                self.pos += CLUSTER;
            }
            Stored::Compressed(data) => {
                let off = self.pos;
                let len = data.len() as u64;
                let extra_sectors = (off + len - 1) / 512 - off / 512;
                self.l2.insert(index, COMPRESSED | (extra_sectors << COMPRESSED_OFFSET_BITS) | off);
                // qemu counts the descriptor's whole sector range, so the refcounts do too.
                self.count(off, (off / 512 + extra_sectors + 1) * 512);
                self.out.write_all(&data)?;
                self.pos += len;
                self.compressed += 1;
            }
        }
        Ok(())
    }
}

/// Refcount blocks and table clusters needed so that `used` clusters plus themselves are
/// counted: the smallest fixed point.
fn refcount_clusters(used: u64) -> (u64, u64) {
    let (mut blocks, mut table) = (1, 1);
    loop {
        let b = (used + blocks + table).div_ceil(REFCOUNTS_PER_BLOCK);
        let t = (b * 8).div_ceil(CLUSTER);
        if (b, t) == (blocks, table) {
            return (blocks, table);
        }
        (blocks, table) = (b.max(blocks), t.max(table));
    }
}

/// Writes `disk` as qcow2 into `out` (empty, at position 0).
pub fn write(
    disk: &RawDisk<'_>,
    out: &mut File,
    compressed: bool,
    on_progress: &(dyn Fn(u64) + Sync),
) -> io::Result<FormatRecord> {
    let size = disk.len();
    let clusters = size.div_ceil(CLUSTER);
    let l1_size = clusters.div_ceil(L2_ENTRIES);
    let l1_clusters = (l1_size * 8).div_ceil(CLUSTER).max(1);
    let data_start = (1 + l1_clusters) * CLUSTER;

    out.seek(SeekFrom::Start(data_start))?;
    let mut area = DataArea {
        out: BufWriter::with_capacity(1 << 20, &mut *out),
        pos: data_start,
        l2: Default::default(),
        refcounts: Vec::new(),
        first: data_start / CLUSTER,
        compressed: 0,
    };
    let mut batch = Vec::new();
    for unit in disk.nonzero_units(CLUSTER) {
        let (index, data) = unit?;
        on_progress(CLUSTER);
        if !compressed {
            area.put(index, Stored::Plain(data))?;
            continue;
        }
        batch.push((index, data));
        if batch.len() == BATCH {
            for (i, st) in compress_batch(std::mem::take(&mut batch)) {
                area.put(i, st)?;
            }
        }
    }
    for (i, st) in compress_batch(batch) {
        area.put(i, st)?;
    }
    area.pad_to_cluster()?;

    // L2 tables, one per L1 entry that maps data.
    let mut l1 = vec![0u64; l1_size as usize];
    let l2_first = area.pos / CLUSTER;
    let mut tables: Vec<(u64, Vec<u8>)> = Vec::new();
    for (&index, &entry) in &area.l2 {
        let l1_index = index / L2_ENTRIES;
        if tables.last().is_none_or(|(i, _)| *i != l1_index) {
            tables.push((l1_index, vec![0u8; CLUSTER as usize]));
        }
        let (_, t) = tables.last_mut().expect("pushed just above");
        let at = ((index % L2_ENTRIES) * 8) as usize;
        t[at..at + 8].copy_from_slice(&entry.to_be_bytes());
    }
    for (n, (l1_index, t)) in tables.iter().enumerate() {
        l1[*l1_index as usize] = ((l2_first + n as u64) * CLUSTER) | COPIED;
        area.out.write_all(t)?;
    }
    let allocated = area.l2.len() as u64;
    let compressed_count = area.compressed;
    let used = l2_first + tables.len() as u64;

    // Refcount table, then blocks; every cluster before the data area and every metadata
    // cluster has refcount 1.
    let (rblocks, rtable) = refcount_clusters(used);
    let rtable_at = used;
    let rblocks_at = used + rtable;
    let total = rblocks_at + rblocks;
    let mut counts = vec![0u16; total as usize];
    counts[..area.first as usize].fill(1);
    for (i, &c) in area.refcounts.iter().enumerate() {
        counts[area.first as usize + i] = c;
    }
    counts[l2_first as usize..].fill(1);
    let mut table = vec![0u8; (rtable * CLUSTER) as usize];
    for b in 0..rblocks {
        let at = (b * 8) as usize;
        table[at..at + 8].copy_from_slice(&((rblocks_at + b) * CLUSTER).to_be_bytes());
    }
    area.out.write_all(&table)?;
    let mut block = Vec::with_capacity((rblocks * CLUSTER) as usize);
    for c in &counts {
        block.extend_from_slice(&c.to_be_bytes());
    }
    block.resize((rblocks * CLUSTER) as usize, 0);
    area.out.write_all(&block)?;
    area.out.flush()?;
    drop(area);

    let mut head = vec![0u8; ((1 + l1_clusters) * CLUSTER) as usize];
    head[..HEADER_LENGTH as usize].copy_from_slice(&header(size, l1_size, rtable_at * CLUSTER, rtable));
    // Bytes 112..120 stay zero: the end-of-extensions marker.
    for (i, e) in l1.iter().enumerate() {
        let at = CLUSTER as usize + i * 8;
        head[at..at + 8].copy_from_slice(&e.to_be_bytes());
    }
    out.write_all_at(&head, 0)?;
    out.set_len(total * CLUSTER)?;

    let mut rec = FormatRecord::new(if compressed { "qcow2-compressed" } else { "qcow2" }, size);
    rec.allocated_units = Some(allocated);
    rec.compressed_units = compressed.then_some(compressed_count);
    Ok(rec)
}

/// The 112-byte version 3 header.
fn header(size: u64, l1_size: u64, refcount_table_offset: u64, refcount_table_clusters: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LENGTH as usize);
    h.extend_from_slice(b"QFI\xfb");
    h.extend_from_slice(&3u32.to_be_bytes()); // version
    h.extend_from_slice(&0u64.to_be_bytes()); // backing_file_offset
    h.extend_from_slice(&0u32.to_be_bytes()); // backing_file_size
    h.extend_from_slice(&CLUSTER_BITS.to_be_bytes());
    h.extend_from_slice(&size.to_be_bytes());
    h.extend_from_slice(&0u32.to_be_bytes()); // crypt_method
    h.extend_from_slice(&(l1_size as u32).to_be_bytes());
    h.extend_from_slice(&CLUSTER.to_be_bytes()); // l1_table_offset
    h.extend_from_slice(&refcount_table_offset.to_be_bytes());
    h.extend_from_slice(&(refcount_table_clusters as u32).to_be_bytes());
    h.extend_from_slice(&0u32.to_be_bytes()); // nb_snapshots
    h.extend_from_slice(&0u64.to_be_bytes()); // snapshots_offset
    h.extend_from_slice(&0u64.to_be_bytes()); // incompatible_features
    h.extend_from_slice(&0u64.to_be_bytes()); // compatible_features
    h.extend_from_slice(&0u64.to_be_bytes()); // autoclear_features
    h.extend_from_slice(&REFCOUNT_ORDER.to_be_bytes());
    h.extend_from_slice(&HEADER_LENGTH.to_be_bytes());
    h.push(0); // compression_type: deflate
    h.resize(HEADER_LENGTH as usize, 0);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refcount_structures_count_themselves() {
        assert_eq!(refcount_clusters(10), (1, 1));
        assert_eq!(refcount_clusters(REFCOUNTS_PER_BLOCK - 2), (1, 1));
        assert_eq!(refcount_clusters(REFCOUNTS_PER_BLOCK - 1), (2, 1));
    }

    #[test]
    fn header_is_112_bytes_with_the_fields_at_their_offsets() {
        let h = header(1 << 30, 2, 0x50000, 1);
        assert_eq!(h.len(), 112);
        assert_eq!(&h[20..24], &16u32.to_be_bytes());
        assert_eq!(&h[24..32], &(1u64 << 30).to_be_bytes());
        assert_eq!(&h[96..100], &4u32.to_be_bytes());
        assert_eq!(&h[100..104], &112u32.to_be_bytes());
    }

    #[test]
    fn compression_falls_back_to_plain_for_random_data() {
        let mut x = 0x1234_5678u32;
        let noise: Vec<u8> = (0..CLUSTER)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        assert!(compress(&noise).is_none());
        assert!(compress(&vec![7u8; CLUSTER as usize]).is_some_and(|v| v.len() < 1000));
    }

    #[test]
    fn a_cluster_compresses_the_same_whatever_came_before() {
        let text: Vec<u8> =
            (0..CLUSTER).map(|i| b"reprodisk qcow2 "[(i % 16) as usize] ^ (i / 977) as u8).collect();
        let alone = compress(&text);
        assert!(alone.is_some());
        let _ = compress(&vec![3u8; CLUSTER as usize]);
        assert_eq!(compress(&text), alone);
    }
}
