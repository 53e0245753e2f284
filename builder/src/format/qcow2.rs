//! qcow2 version 3 writer (plain and deflate-compressed clusters), laid out as `format/mod.rs`
//! describes: header, L1, data in disk order, L2 tables, refcount table and blocks.
//!
//! # Compression: a pipeline, output order fixed
//!
//! [`compress_data`]: this thread scans the raw disk (holes skipped by `SEEK_DATA`, zero
//! clusters never compressed) and writes in disk order; one worker per core compresses
//! clusters from a bounded queue. Results carry a sequence number and are written in that
//! order, so the bytes depend on neither the number of workers nor on timing (tested with 1,
//! 2, 3 and 7 workers). About `8 x workers` clusters are in flight, each with a recycled
//! input and output buffer: memory stays a few MiB whatever the disk size (plus 16 bytes of
//! L2 entry and 2 bytes of refcount per stored cluster, the metadata the file carries
//! anyway). A worker that panics fails the conversion with an error naming the cluster; the
//! only plain cluster in a compressed image is one whose stream is not shorter than a
//! cluster, as qemu stores it.
//!
//! # Why zlib-rs' deflate does not depend on the CPU
//!
//! flate2 runs zlib-rs (pinned by Cargo.lock), which picks some kernels at run time. Read in
//! zlib-rs 0.6.8 (`src/cpu_features.rs` and its callers), the deflate side has exactly two:
//! - `deflate/compare256.rs` `compare256`: `avx2::compare256` (x86_64 with AVX2 and BMI1/2,
//!   `is_enabled_avx2_and_bmi2`) or `rust::compare256`. Both return the number of equal
//!   leading bytes of the same two 256-byte arrays (the first mismatch, or 256): one function,
//!   whatever the bytes, so `longest_match` and `quick` choose the same matches. The AVX-512
//!   variant is compiled only with zlib-rs' `avx512` feature and the compile-time target
//!   features, neither of which this build enables.
//! - `deflate/slide_hash.rs` `slide_hash_chain`: the AVX2 path is the same generic
//!   `saturating_sub(wsize)` over the table, compiled with other target features.
//!
//! The match finder's hash is not CPU-dependent: `deflate/hash_calc.rs` has no CRC32-based
//! hash (zlib-ng's `HASH_CALC` with SSE4.2 is absent); `StandardHashCalc` is a multiply,
//! `RollHashCalc` is taken only for `max_chain_length > 1024` (level 9). The checksum
//! kernels (`adler32`, `crc32` with AVX2, PCLMULQDQ, NEON) run only for the zlib and gzip
//! wrappers (`deflate.rs` `read_buf_window`, `wrap == 1 | 2`); qcow2 streams are raw
//! deflate (`wrap == 0`) and carry no checksum. The window copy (`window.rs`) is a plain
//! copy. So the bytes are a function of the input and zlib-rs' version only, and
//! `tests::compressed_bytes_are_pinned` catches any change of backend or version that
//! alters them.

use super::FormatRecord;
use super::scan::{RawDisk, write_nonzero_at};
use std::fs::File;
use std::io;
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
/// Clusters read ahead of the one being written, per worker: enough that a worker always
/// finds a queued cluster, few enough that the buffers (two clusters each) stay under a few
/// MiB whatever the disk size.
const IN_FLIGHT_PER_WORKER: usize = 8;
/// Compressed bytes gathered before one write.
const PENDING_FLUSH: usize = 1 << 20;

/// Compresses one cluster into `out` (at least `CLUSTER - 1` bytes) and returns the stream's
/// length, or `None` when the stream would not be shorter than a cluster (the cluster is then
/// stored plain, as qemu does).
pub(crate) type CompressFn = dyn Fn(&[u8], &mut [u8]) -> Option<usize> + Sync;

/// Raw deflate (window bits 12, as qemu's `qcow2_compress`) at the default level into
/// `out[..CLUSTER - 1]`: the length of the finished stream, or `None` when it does not fit.
///
/// Every cluster gets a fresh compressor: a reused one (`reset`) may carry state from the
/// clusters it compressed before (zlib-ng had such a bug), and which clusters a worker
/// compressed before depends on the number of cores and on timing, so reuse could make the
/// bytes depend on the machine. A fresh state costs an allocation and about 200 KiB of
/// zeroing per cluster, a few percent of deflating it.
fn compress_into(data: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut c = compressor();
    let out = &mut out[..CLUSTER as usize - 1];
    match c.compress(data, out, flate2::FlushCompress::Finish) {
        Ok(flate2::Status::StreamEnd) => Some(c.total_out() as usize),
        _ => None,
    }
}

#[cfg(test)]
fn compress(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![0u8; CLUSTER as usize];
    compress_into(data, &mut out).map(|n| out[..n].to_vec())
}

fn compressor() -> flate2::Compress {
    flate2::Compress::new_with_window_bits(flate2::Compression::new(6), false, 12)
}

/// One cluster on its way through the compression pipeline; its buffers are recycled.
struct Job {
    /// Position in disk order among the stored clusters: the order of the output.
    seq: u64,
    index: u64,
    data: Vec<u8>,
    out: Vec<u8>,
    /// The compressed length, `None`: store plain.
    packed: Option<usize>,
}

impl Job {
    fn new() -> Job {
        Job { seq: 0, index: 0, data: Vec::new(), out: vec![0u8; CLUSTER as usize], packed: None }
    }
}

/// What a panicking worker left: the panic's message.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

const WORKERS_GONE: &str = "every qcow2 compression worker stopped before the data was written; this is a bug in reprodisk, please report it";

/// The compressed data area: this thread scans the disk and writes in disk order while one
/// worker per core compresses. Clusters go to the workers through a bounded queue, come
/// back in any order and are written by their sequence number, so the output never depends
/// on the number of workers or on timing. A worker that panics fails the conversion (the
/// caller's temporary file is then removed): a cluster is stored plain only when its stream
/// is not shorter than a cluster, never because compressing it went wrong.
fn compress_data(
    disk: &RawDisk<'_>,
    area: &mut DataArea<'_>,
    compress: &CompressFn,
    workers: usize,
    on_progress: &(dyn Fn(u64) + Sync),
) -> io::Result<()> {
    use std::sync::{Mutex, mpsc};
    let max_in_flight = workers * IN_FLIGHT_PER_WORKER;
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(max_in_flight);
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<Result<Job, (u64, String)>>();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let (job_rx, done_tx) = (&job_rx, done_tx.clone());
            s.spawn(move || {
                loop {
                    // The lock is only held around `recv`, which does not panic.
                    let next = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(mut job) = next else { return };
                    let index = job.index;
                    let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        job.packed = compress(&job.data, &mut job.out);
                        job
                    }))
                    .map_err(|p| (index, panic_message(&*p)));
                    if done_tx.send(done).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        let mut units = disk.nonzero_units(CLUSTER);
        let mut free: Vec<Job> = Vec::new();
        let mut waiting = std::collections::BTreeMap::new();
        let (mut seq, mut next_write, mut in_flight, mut eof) = (0u64, 0u64, 0usize, false);
        let result = (|| {
            loop {
                while !eof && in_flight < max_in_flight {
                    let mut job = free.pop().unwrap_or_else(Job::new);
                    let Some(index) = units.next_into(&mut job.data)? else {
                        eof = true;
                        break;
                    };
                    on_progress(CLUSTER);
                    (job.seq, job.index) = (seq, index);
                    seq += 1;
                    in_flight += 1;
                    job_tx.send(job).map_err(|_| io::Error::other(WORKERS_GONE))?;
                }
                if in_flight == 0 {
                    return Ok(());
                }
                let job = done_rx.recv().map_err(|_| io::Error::other(WORKERS_GONE))?.map_err(
                    |(index, msg)| {
                        io::Error::other(format!(
                            "a compression worker panicked on qcow2 cluster {index} ({msg}); this is a bug in reprodisk, please report it"
                        ))
                    },
                )?;
                waiting.insert(job.seq, job);
                while let Some(job) = waiting.remove(&next_write) {
                    match job.packed {
                        Some(n) => area.put_compressed(job.index, &job.out[..n])?,
                        None => area.put_plain(job.index, &job.data)?,
                    }
                    next_write += 1;
                    in_flight -= 1;
                    free.push(job);
                }
            }
        })();
        // Workers see the closed queue and stop once the few clusters still queued are done.
        drop(job_tx);
        result
    })
}

/// Appends data clusters at the end of the data area and remembers where each went.
struct DataArea<'a> {
    out: &'a File,
    /// Byte position of the next cluster or stream, from the start of the file.
    pos: u64,
    /// Compressed streams not yet written; they end at `pos`.
    pending: Vec<u8>,
    /// L2 entries of the stored clusters, by increasing virtual cluster index.
    l2: Vec<(u64, u64)>,
    /// Refcount of every host cluster from `first` on.
    refcounts: Vec<u16>,
    first: u64,
    compressed: u64,
}

impl DataArea<'_> {
    fn count(&mut self, from: u64, to_excl: u64) {
        for c in from / CLUSTER..to_excl.div_ceil(CLUSTER) {
            let i = (c - self.first) as usize;
            if self.refcounts.len() <= i {
                self.refcounts.resize(i + 1, 0);
            }
            self.refcounts[i] += 1;
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let at = self.pos - self.pending.len() as u64;
        self.out.write_all_at(&self.pending, at)?;
        self.pending.clear();
        Ok(())
    }

    /// Moves to the next cluster boundary. The padding is never written: the file is
    /// extended past it later, so it reads as zeros.
    fn pad_to_cluster(&mut self) -> io::Result<()> {
        self.flush()?;
        self.pos = self.pos.next_multiple_of(CLUSTER);
        Ok(())
    }

    fn put_plain(&mut self, index: u64, data: &[u8]) -> io::Result<()> {
        self.pad_to_cluster()?;
        self.l2.push((index, self.pos | COPIED));
        self.count(self.pos, self.pos + CLUSTER);
        write_nonzero_at(self.out, data, self.pos)?;
        self.pos += CLUSTER;
        Ok(())
    }

    fn put_compressed(&mut self, index: u64, data: &[u8]) -> io::Result<()> {
        let off = self.pos;
        let len = data.len() as u64;
        let extra_sectors = (off + len - 1) / 512 - off / 512;
        self.l2.push((index, COMPRESSED | (extra_sectors << COMPRESSED_OFFSET_BITS) | off));
        // qemu counts the descriptor's whole sector range, so the refcounts do too.
        self.count(off, (off / 512 + extra_sectors + 1) * 512);
        self.pending.extend_from_slice(data);
        self.pos += len;
        self.compressed += 1;
        if self.pending.len() >= PENDING_FLUSH {
            self.flush()?;
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
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let compress: Option<&CompressFn> = if compressed { Some(&compress_into) } else { None };
    write_with(disk, out, compress, workers, on_progress)
}

/// [`write`] with the cluster compressor (`None`: plain qcow2) and the number of workers as
/// parameters, so tests can make a worker panic and vary the workers.
fn write_with(
    disk: &RawDisk<'_>,
    out: &File,
    compress: Option<&CompressFn>,
    workers: usize,
    on_progress: &(dyn Fn(u64) + Sync),
) -> io::Result<FormatRecord> {
    let compressed = compress.is_some();
    let size = disk.len();
    let clusters = size.div_ceil(CLUSTER);
    let l1_size = clusters.div_ceil(L2_ENTRIES);
    let l1_clusters = (l1_size * 8).div_ceil(CLUSTER).max(1);
    let data_start = (1 + l1_clusters) * CLUSTER;

    let mut area = DataArea {
        out,
        pos: data_start,
        pending: Vec::with_capacity(PENDING_FLUSH + CLUSTER as usize),
        l2: Vec::new(),
        refcounts: Vec::new(),
        first: data_start / CLUSTER,
        compressed: 0,
    };
    match compress {
        Some(f) => compress_data(disk, &mut area, f, workers.max(1), on_progress)?,
        None => disk.each_nonzero_unit(CLUSTER, |index, data| {
            on_progress(CLUSTER);
            area.put_plain(index, data)
        })?,
    }
    area.pad_to_cluster()?;

    // L2 tables, one per L1 entry that maps data, in L1 order.
    let mut l1 = vec![0u64; l1_size as usize];
    let l2_first = area.pos / CLUSTER;
    let mut tables = 0u64;
    let mut table = vec![0u8; CLUSTER as usize];
    let mut entries = area.l2.iter().peekable();
    while let Some(&&(first_index, _)) = entries.peek() {
        let l1_index = first_index / L2_ENTRIES;
        table.fill(0);
        while let Some(&(index, entry)) = entries.next_if(|(i, _)| i / L2_ENTRIES == l1_index) {
            let at = ((index % L2_ENTRIES) * 8) as usize;
            table[at..at + 8].copy_from_slice(&entry.to_be_bytes());
        }
        let at = (l2_first + tables) * CLUSTER;
        l1[l1_index as usize] = at | COPIED;
        out.write_all_at(&table, at)?;
        tables += 1;
    }
    let allocated = area.l2.len() as u64;
    let compressed_count = area.compressed;
    let used = l2_first + tables;

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
    let mut rt = vec![0u8; (rtable * CLUSTER) as usize];
    for b in 0..rblocks {
        let at = (b * 8) as usize;
        rt[at..at + 8].copy_from_slice(&((rblocks_at + b) * CLUSTER).to_be_bytes());
    }
    out.write_all_at(&rt, rtable_at * CLUSTER)?;
    let mut block = Vec::with_capacity((rblocks * CLUSTER) as usize);
    for c in &counts {
        block.extend_from_slice(&c.to_be_bytes());
    }
    block.resize((rblocks * CLUSTER) as usize, 0);
    out.write_all_at(&block, rblocks_at * CLUSTER)?;

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

    /// A cluster of xorshift32 noise (does not compress).
    fn noise(mut x: u32) -> Vec<u8> {
        (0..CLUSTER)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    /// A cluster of text that compresses well.
    fn text() -> Vec<u8> {
        (0..CLUSTER).map(|i| b"reprodisk qcow2 "[(i % 16) as usize] ^ (i / 977) as u8).collect()
    }

    #[test]
    fn compression_falls_back_to_plain_for_random_data() {
        assert!(compress(&noise(0x1234_5678)).is_none());
        assert!(compress(&vec![7u8; CLUSTER as usize]).is_some_and(|v| v.len() < 1000));
    }

    #[test]
    fn a_cluster_compresses_the_same_whatever_came_before() {
        let text = text();
        let alone = compress(&text);
        assert!(alone.is_some());
        let _ = compress(&vec![3u8; CLUSTER as usize]);
        assert_eq!(compress(&text), alone);
    }

    /// A small disk with every kind of cluster: text (compresses), noise (stored plain), a
    /// cluster that is zero but for one byte, a hole, and a partial last cluster.
    fn sample_disk() -> File {
        let f = tempfile::tempfile().unwrap();
        let len = (4 << 20) + 1024;
        f.set_len(len).unwrap();
        let text = text();
        f.write_all_at(&text, 0).unwrap();
        f.write_all_at(&noise(0x9e37_79b9), 3 * CLUSTER).unwrap();
        f.write_all_at(b"!", 5 * CLUSTER + 4097).unwrap();
        f.write_all_at(&text[..CLUSTER as usize / 2], 20 * CLUSTER + 100).unwrap();
        f.write_all_at(&text[..900], len - 900).unwrap();
        f
    }

    fn qcow2_of(disk: &File, compress: Option<&CompressFn>, workers: usize) -> io::Result<Vec<u8>> {
        let len = disk.metadata().unwrap().len();
        let out = tempfile::tempfile().unwrap();
        write_with(&RawDisk::new(disk, len), &out, compress, workers, &|_| {})?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut &out, &mut bytes).unwrap();
        Ok(bytes)
    }

    fn sha256(b: &[u8]) -> String {
        use sha2::Digest;
        crate::manifest::hex(&sha2::Sha256::digest(b))
    }

    /// The compressor's bytes are pinned: a change of flate2, of its backend or of the
    /// backend's algorithm that alters a single byte fails here (see the module doc for why
    /// zlib-rs' output does not depend on the CPU it runs on). Checked when pinned:
    /// `qemu-img check` clean and `qemu-img compare` identical to the raw disk.
    #[test]
    fn compressed_bytes_are_pinned() {
        let disk = sample_disk();
        let packed = qcow2_of(&disk, Some(&compress_into), 2).unwrap();
        assert_eq!(sha256(&packed), "fe3dee2b24a3446047400bb017b8f81a36128dce5f9abb0f4fc968e9c2d5a1b6");
        let plain = qcow2_of(&disk, None, 1).unwrap();
        assert_eq!(sha256(&plain), "cd37a4b49c1aa5d22a6637b46f90c47769f816d84823f4ff23313467eca8a1a5");
    }

    #[test]
    fn output_is_the_same_for_any_number_of_workers() {
        let disk = sample_disk();
        let one = qcow2_of(&disk, Some(&compress_into), 1).unwrap();
        for workers in [2, 3, 7] {
            assert!(qcow2_of(&disk, Some(&compress_into), workers).unwrap() == one, "{workers} workers");
        }
    }

    #[test]
    fn a_panicking_worker_fails_the_conversion_and_leaves_nothing() {
        let disk = sample_disk();
        let panics_on_noise = |data: &[u8], out: &mut [u8]| {
            if compress_into(data, out).is_none() {
                panic!("compressor failed on purpose");
            }
            compress_into(data, out)
        };
        let err = qcow2_of(&disk, Some(&panics_on_noise), 2).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("a compression worker panicked on qcow2 cluster 3 (compressor failed on purpose)"),
            "{msg}"
        );
        // Through the output file as the build uses it: nothing under the final name.
        let dir = tempfile::tempdir().unwrap();
        let mut img = super::super::raw::Image::create(&dir.path().join("x.qcow2"), 0).unwrap();
        let len = disk.metadata().unwrap().len();
        assert!(
            write_with(&RawDisk::new(&disk, len), img.file(), Some(&panics_on_noise), 2, &|_| {}).is_err()
        );
        drop(img);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn plain_and_compressed_clusters_land_where_the_layout_says() {
        let disk = sample_disk();
        let plain = qcow2_of(&disk, None, 1).unwrap();
        let packed = qcow2_of(&disk, Some(&compress_into), 2).unwrap();
        assert!(packed.len() < plain.len());
        // Data area from cluster 2: plain qcow2 stores clusters 0, 3, 5, 20 and the last one.
        assert_eq!(&plain[2 * CLUSTER as usize..][..16], b"reprodisk qcow2 ");
    }
}
