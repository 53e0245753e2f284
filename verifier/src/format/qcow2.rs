//! qcow2 reader (versions 2 and 3, `docs/interop/qcow2.txt`): header and extensions, L1 and
//! L2 tables, refcount table and blocks, plain, zero and deflate-compressed clusters.
//!
//! Opening checks the whole file: every table entry's reserved bits, alignment and bounds;
//! every host cluster's refcount against the references actually found (metadata and plain
//! data clusters must be referenced exactly once, compressed data counts each compressed
//! cluster whose sector range touches the host cluster, as qemu counts); no leaked cluster
//! (a refcount without a reference); the COPIED flag exactly on references whose refcount
//! is 1. Unsupported: backing files, encryption, snapshots, external data files, extended
//! L2 entries and zstd compression.

use super::{Be, Kind, Summary};
use crate::bytes::ReadAt;
use crate::error::{Error, Location, Result};
use std::sync::Mutex;

pub const MAGIC: &[u8; 4] = b"QFI\xfb";
const COPIED: u64 = 1 << 63;
const COMPRESSED: u64 = 1 << 62;
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// Incompatible feature bits: dirty, corrupt, external data file, compression type,
/// extended L2.
const INCOMPAT_DIRTY: u64 = 1;
const INCOMPAT_CORRUPT: u64 = 2;
const INCOMPAT_COMPRESSION: u64 = 8;

fn corrupt(structure: impl Into<String>, offset: u64, what: impl Into<String>) -> Error {
    Error::corrupt(structure, Some(offset), what)
}

/// How one virtual cluster is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cluster {
    /// Reads as zeros (unallocated, or the zero flag).
    Zero,
    Plain {
        host: u64,
    },
    Compressed {
        host: u64,
        sectors: u64,
    },
}

/// The header fields a reader needs, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub cluster_bits: u32,
    pub size: u64,
    pub l1_size: u32,
    pub l1_table_offset: u64,
    pub refcount_table_offset: u64,
    pub refcount_table_clusters: u32,
    pub incompatible_features: u64,
    pub compatible_features: u64,
    pub autoclear_features: u64,
    pub refcount_order: u32,
    pub header_length: u32,
    /// Header extension types found, in order (the end marker excluded).
    pub extensions: Vec<u32>,
}

pub struct Qcow2<R: ReadAt> {
    file: R,
    pub header: Header,
    cluster: u64,
    /// Every virtual cluster that is not [`Cluster::Zero`], sorted.
    map: Vec<(u64, Cluster)>,
    /// The last compressed cluster inflated, as `(virtual cluster, bytes)`.
    cache: Mutex<Option<(u64, Vec<u8>)>>,
}

fn read_header<R: ReadAt + ?Sized>(file: &R) -> Result<Header> {
    let raw = file.read_vec(0, 72, "qcow2 header")?;
    let b = Be(&raw);
    if raw[..4] != *MAGIC {
        return Err(corrupt("qcow2 header", 0, "magic is not QFI\\xfb"));
    }
    let version = b.u32(4);
    if version != 2 && version != 3 {
        return Err(Error::unsupported("qcow2 header", Some(4), format!("version {version}")));
    }
    let mut h = Header {
        version,
        cluster_bits: b.u32(20),
        size: b.u64(24),
        l1_size: b.u32(36),
        l1_table_offset: b.u64(40),
        refcount_table_offset: b.u64(48),
        refcount_table_clusters: b.u32(56),
        incompatible_features: 0,
        compatible_features: 0,
        autoclear_features: 0,
        refcount_order: 4,
        header_length: 72,
        extensions: Vec::new(),
    };
    if b.u64(8) != 0 {
        return Err(Error::unsupported("qcow2 header", Some(8), "a backing file"));
    }
    if !(9..=21).contains(&h.cluster_bits) {
        return Err(corrupt(
            "qcow2 header",
            20,
            format!("cluster_bits is {}, expected 9..=21", h.cluster_bits),
        ));
    }
    if b.u32(32) != 0 {
        return Err(Error::unsupported("qcow2 header", Some(32), "encryption"));
    }
    if b.u32(60) != 0 {
        return Err(Error::unsupported("qcow2 header", Some(60), "internal snapshots"));
    }
    let cluster = 1u64 << h.cluster_bits;
    if version == 3 {
        let v3 = file.read_vec(0, 104, "qcow2 header (version 3)")?;
        let b = Be(&v3);
        h.incompatible_features = b.u64(72);
        h.compatible_features = b.u64(80);
        h.autoclear_features = b.u64(88);
        h.refcount_order = b.u32(96);
        h.header_length = b.u32(100);
        if h.header_length < 104 || u64::from(h.header_length) > cluster || !h.header_length.is_multiple_of(8)
        {
            return Err(corrupt(
                "qcow2 header",
                100,
                format!(
                    "header_length is {}, expected a multiple of 8 from 104 to the cluster size",
                    h.header_length
                ),
            ));
        }
        if h.refcount_order > 6 {
            return Err(corrupt(
                "qcow2 header",
                96,
                format!("refcount_order is {}, expected 0..=6", h.refcount_order),
            ));
        }
        if h.incompatible_features & INCOMPAT_DIRTY != 0 {
            return Err(corrupt(
                "qcow2 header",
                72,
                "the dirty bit is set: refcounts may be stale (run qemu-img check -r all)",
            ));
        }
        if h.incompatible_features & INCOMPAT_CORRUPT != 0 {
            return Err(corrupt("qcow2 header", 72, "the corrupt bit is set"));
        }
        let unknown = h.incompatible_features & !INCOMPAT_COMPRESSION;
        if unknown != 0 {
            return Err(Error::unsupported(
                "qcow2 header",
                Some(72),
                format!("incompatible features {unknown:#x}"),
            ));
        }
        if h.incompatible_features & INCOMPAT_COMPRESSION != 0 {
            let t = file.read_vec(104, 1, "qcow2 header compression_type")?[0];
            if h.header_length < 105 || t != 0 {
                return Err(Error::unsupported("qcow2 header", Some(104), format!("compression type {t}")));
            }
        }
        // Header extensions: type, length, data padded to 8 bytes, up to the end marker.
        let mut at = u64::from(h.header_length);
        loop {
            if at + 8 > cluster {
                return Err(corrupt(
                    "qcow2 header extensions",
                    at,
                    "no end-of-extensions marker in the first cluster",
                ));
            }
            let e = file.read_vec(at, 8, "qcow2 header extension")?;
            let (t, len) = (Be(&e).u32(0), u64::from(Be(&e).u32(4)));
            if t == 0 {
                break;
            }
            if t == 0x4441_5441 {
                return Err(Error::unsupported("qcow2 header extension", Some(at), "an external data file"));
            }
            h.extensions.push(t);
            at += 8 + len.next_multiple_of(8);
        }
    }
    if h.refcount_order != 4 && version == 2 {
        return Err(corrupt("qcow2 header", 96, "version 2 has 16-bit refcounts only"));
    }
    Ok(h)
}

/// Reference counting while the tables are walked.
struct Refs {
    cluster: u64,
    counts: Vec<u32>,
    /// What references each cluster first, and whether that user must be alone.
    users: Vec<Option<(&'static str, bool)>>,
}

impl Refs {
    fn add(&mut self, host: u64, len: u64, user: &'static str, exclusive: bool) -> Result<()> {
        let Some(end) = host.checked_add(len) else {
            return Err(corrupt(format!("qcow2 {user}"), host, "offset overflows"));
        };
        for c in host / self.cluster..end.div_ceil(self.cluster) {
            let Some(n) = self.counts.get_mut(c as usize) else {
                return Err(Error::Truncated {
                    at: Location { structure: format!("qcow2 {user}"), offset: Some(host) },
                    needed: end,
                    available: self.counts.len() as u64 * self.cluster,
                });
            };
            *n += 1;
            let u = &mut self.users[c as usize];
            match *u {
                None => *u = Some((user, exclusive)),
                Some((first, first_exclusive)) if first_exclusive || exclusive => {
                    return Err(corrupt(
                        format!("qcow2 {user}"),
                        c * self.cluster,
                        format!("host cluster {c} is also used by the {first}: clusters overlap"),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

impl<R: ReadAt> Qcow2<R> {
    pub fn open(file: R) -> Result<Self> {
        let header = read_header(&file)?;
        let cb = header.cluster_bits;
        let cluster = 1u64 << cb;
        let file_clusters = file.len().div_ceil(cluster);
        // One count per host cluster of the file: bounded by the input's size.
        let mut refs = Refs {
            cluster,
            counts: vec![0; file_clusters as usize],
            users: vec![None; file_clusters as usize],
        };
        refs.add(0, cluster, "header", true)?;

        let l2_entries = cluster / 8;
        let vclusters = header.size.div_ceil(cluster);
        let needed_l1 = vclusters.div_ceil(l2_entries);
        if u64::from(header.l1_size) < needed_l1 {
            return Err(corrupt(
                "qcow2 header",
                36,
                format!("l1_size is {}, the virtual size needs {needed_l1}", header.l1_size),
            ));
        }
        let l1_off = header.l1_table_offset;
        if !l1_off.is_multiple_of(cluster) {
            return Err(corrupt("qcow2 L1 table", l1_off, "not cluster-aligned"));
        }
        let l1_bytes = u64::from(header.l1_size) * 8;
        if l1_off.checked_add(l1_bytes).is_none_or(|e| e > file.len()) {
            return Err(Error::Truncated {
                at: Location { structure: "qcow2 L1 table".into(), offset: Some(l1_off) },
                needed: l1_off.saturating_add(l1_bytes),
                available: file.len(),
            });
        }
        let l1 = file.read_vec(l1_off, l1_bytes as usize, "qcow2 L1 table")?;
        if l1_bytes > 0 {
            refs.add(l1_off, l1_bytes, "L1 table", true)?;
        }

        // Refcount table and blocks.
        let rt_off = header.refcount_table_offset;
        let rt_bytes = u64::from(header.refcount_table_clusters) * cluster;
        if !rt_off.is_multiple_of(cluster) || header.refcount_table_clusters == 0 {
            return Err(corrupt("qcow2 refcount table", rt_off, "not cluster-aligned or empty"));
        }
        if rt_off.checked_add(rt_bytes).is_none_or(|e| e > file.len()) {
            return Err(Error::Truncated {
                at: Location { structure: "qcow2 refcount table".into(), offset: Some(rt_off) },
                needed: rt_off.saturating_add(rt_bytes),
                available: file.len(),
            });
        }
        let rt = file.read_vec(rt_off, rt_bytes as usize, "qcow2 refcount table")?;
        refs.add(rt_off, rt_bytes, "refcount table", true)?;
        let bits = 1u64 << header.refcount_order;
        let per_block = cluster * 8 / bits;
        let mut stored: Vec<u64> = vec![0; file_clusters as usize];
        for (i, e) in rt.chunks_exact(8).enumerate() {
            let e = Be(e).u64(0);
            let at = rt_off + i as u64 * 8;
            if e & 0x1ff != 0 {
                return Err(corrupt(format!("qcow2 refcount table entry {i}"), at, "reserved bits set"));
            }
            if e == 0 {
                continue;
            }
            if !e.is_multiple_of(cluster) {
                return Err(corrupt(
                    format!("qcow2 refcount table entry {i}"),
                    at,
                    "refcount block not cluster-aligned",
                ));
            }
            refs.add(e, cluster, "refcount block", true)?;
            let block = file.read_vec(e, cluster as usize, "qcow2 refcount block")?;
            for j in 0..per_block {
                let host = i as u64 * per_block + j;
                let bit = j * bits;
                let v = match bits {
                    8 | 16 | 32 | 64 => {
                        let n = (bits / 8) as usize;
                        let s = &block[(bit / 8) as usize..(bit / 8) as usize + n];
                        s.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x))
                    }
                    _ => {
                        let byte = block[(bit / 8) as usize];
                        (u64::from(byte) >> (bit % 8)) & ((1 << bits) - 1)
                    }
                };
                match stored.get_mut(host as usize) {
                    Some(s) => *s = v,
                    None if v != 0 => {
                        return Err(corrupt(
                            format!("qcow2 refcount block {i}"),
                            e,
                            format!("host cluster {host} past the end of the file has refcount {v}"),
                        ));
                    }
                    None => {}
                }
            }
        }

        // L1 and L2 tables.
        let x = 62 - (cb - 8);
        let mut map = Vec::new();
        let mut copied_checks: Vec<(String, u64, u64, bool)> = Vec::new();
        for (i, e) in l1.chunks_exact(8).enumerate() {
            let e = Be(e).u64(0);
            let at = l1_off + i as u64 * 8;
            let name = || format!("qcow2 L1 entry {i}");
            if e & !(OFFSET_MASK | COPIED) != 0 {
                return Err(corrupt(name(), at, format!("reserved bits set in {e:#018x}")));
            }
            let l2_off = e & OFFSET_MASK;
            if l2_off == 0 {
                if e & COPIED != 0 {
                    return Err(corrupt(name(), at, "COPIED set on an unallocated entry"));
                }
                continue;
            }
            if i as u64 >= needed_l1 {
                return Err(corrupt(name(), at, "maps clusters past the virtual size"));
            }
            if !l2_off.is_multiple_of(cluster) {
                return Err(corrupt(name(), at, "L2 table not cluster-aligned"));
            }
            refs.add(l2_off, cluster, "L2 table", true)?;
            copied_checks.push((name(), at, l2_off, e & COPIED != 0));
            let l2 = file.read_vec(l2_off, cluster as usize, "qcow2 L2 table")?;
            for (j, e) in l2.chunks_exact(8).enumerate() {
                let e = Be(e).u64(0);
                if e == 0 {
                    continue;
                }
                let vc = i as u64 * l2_entries + j as u64;
                let at = l2_off + j as u64 * 8;
                let name = || format!("qcow2 L2 entry {j} of L1 entry {i} (virtual cluster {vc})");
                if vc >= vclusters {
                    return Err(corrupt(name(), at, "maps a cluster past the virtual size"));
                }
                if e & COMPRESSED != 0 {
                    if e & COPIED != 0 {
                        return Err(corrupt(name(), at, "COPIED set on a compressed cluster"));
                    }
                    let host = e & ((1u64 << x) - 1);
                    let sectors = ((e & !COMPRESSED) >> x) + 1;
                    let end = (host / 512 + sectors) * 512;
                    refs.add(host, end - host, "compressed data", false)?;
                    map.push((vc, Cluster::Compressed { host, sectors }));
                } else {
                    if e & !(OFFSET_MASK | COPIED | 1) != 0 {
                        return Err(corrupt(name(), at, format!("reserved bits set in {e:#018x}")));
                    }
                    let host = e & OFFSET_MASK;
                    if e & 1 != 0 && version_allows_zero(&header) {
                        if host != 0 {
                            refs.add(host, cluster, "data cluster", true)?;
                            copied_checks.push((name(), at, host, e & COPIED != 0));
                        }
                        continue;
                    }
                    if host == 0 {
                        if e & COPIED != 0 {
                            return Err(corrupt(name(), at, "COPIED set on an unallocated cluster"));
                        }
                        continue;
                    }
                    if !host.is_multiple_of(cluster) {
                        return Err(corrupt(name(), at, "data cluster not cluster-aligned"));
                    }
                    refs.add(host, cluster, "data cluster", true)?;
                    copied_checks.push((name(), at, host, e & COPIED != 0));
                    map.push((vc, Cluster::Plain { host }));
                }
            }
        }

        // Stored refcounts against the references found.
        for (c, (&found, &have)) in refs.counts.iter().zip(&stored).enumerate() {
            if u64::from(found) != have {
                let what = match (found, have) {
                    (0, _) => format!("refcount is {have} but nothing references it: a leaked cluster"),
                    (_, 0) => format!("referenced {found} times but its refcount is 0"),
                    _ => format!("refcount is {have}, references found: {found}"),
                };
                return Err(corrupt(format!("qcow2 refcount of host cluster {c}"), c as u64 * cluster, what));
            }
        }
        for (name, at, host, copied) in copied_checks {
            let rc = stored[(host / cluster) as usize];
            if copied != (rc == 1) {
                return Err(corrupt(
                    name,
                    at,
                    format!("COPIED is {copied} but the refcount of the cluster it points to is {rc}"),
                ));
            }
        }
        Ok(Qcow2 { file, header, cluster, map, cache: Mutex::new(None) })
    }

    pub fn cluster_size(&self) -> u64 {
        self.cluster
    }

    /// How virtual cluster `vc` is stored.
    pub fn cluster_at(&self, vc: u64) -> Cluster {
        match self.map.binary_search_by_key(&vc, |(v, _)| *v) {
            Ok(i) => self.map[i].1,
            Err(_) => Cluster::Zero,
        }
    }

    fn inflate(&self, vc: u64, host: u64, sectors: u64) -> std::io::Result<Vec<u8>> {
        use miniz_oxide::inflate::TINFLStatus;
        use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};
        let len = (sectors * 512 - host % 512).min(self.file.len().saturating_sub(host));
        let mut input = vec![0u8; len as usize];
        self.file.read_exact_at(&mut input, host)?;
        let mut out = vec![0u8; self.cluster as usize];
        let mut d = DecompressorOxide::new();
        let (status, _, produced) =
            decompress(&mut d, &input, &mut out, 0, inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF);
        let ok = matches!(status, TINFLStatus::Done | TINFLStatus::HasMoreOutput) && produced == out.len();
        if !ok {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "qcow2 compressed cluster {vc} at byte {host:#x}: corrupt: inflates to {produced} bytes ({status:?}), expected {}",
                    self.cluster
                ),
            ));
        }
        Ok(out)
    }

    /// Inflates every compressed cluster once, so a corrupt stream is reported at open time
    /// by callers that want the whole check (`verify`).
    pub fn check_compressed(&self) -> Result<u64> {
        let mut n = 0;
        for &(vc, c) in &self.map {
            if let Cluster::Compressed { host, sectors } = c {
                self.inflate(vc, host, sectors)
                    .map_err(|e| corrupt(format!("qcow2 compressed cluster {vc}"), host, e.to_string()))?;
                n += 1;
            }
        }
        Ok(n)
    }

    pub fn summary(&self) -> Summary {
        let compressed = self.map.iter().filter(|(_, c)| matches!(c, Cluster::Compressed { .. })).count();
        let mut notes = vec![format!(
            "version {}, {} byte clusters, {}-bit refcounts",
            self.header.version,
            self.cluster,
            1u32 << self.header.refcount_order
        )];
        if !self.header.extensions.is_empty() {
            let t: Vec<String> = self.header.extensions.iter().map(|t| format!("{t:#010x}")).collect();
            notes.push(format!("header extensions: {}", t.join(", ")));
        }
        Summary {
            format: Kind::Qcow2,
            virtual_size: self.header.size,
            allocated_units: Some(self.map.len() as u64),
            compressed_units: Some(compressed as u64),
            unit_bytes: Some(self.cluster),
            ids: Vec::new(),
            notes,
        }
    }
}

fn version_allows_zero(h: &Header) -> bool {
    h.version >= 3
}

impl<R: ReadAt> ReadAt for Qcow2<R> {
    fn len(&self) -> u64 {
        self.header.size
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        if offset.checked_add(buf.len() as u64).is_none_or(|e| e > self.header.size) {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let vc = pos / self.cluster;
            let within = pos % self.cluster;
            let n = ((self.cluster - within) as usize).min(buf.len() - done);
            let dst = &mut buf[done..done + n];
            match self.cluster_at(vc) {
                Cluster::Zero => dst.fill(0),
                Cluster::Plain { host } => self.file.read_exact_at(dst, host + within)?,
                Cluster::Compressed { host, sectors } => {
                    let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                    if cache.as_ref().is_none_or(|(c, _)| *c != vc) {
                        *cache = Some((vc, self.inflate(vc, host, sectors)?));
                    }
                    let (_, data) = cache.as_ref().expect("filled just above");
                    dst.copy_from_slice(&data[within as usize..within as usize + n]);
                }
            }
            done += n;
        }
        Ok(())
    }

    fn next_data(&self, offset: u64) -> std::io::Result<Option<(u64, u64)>> {
        if offset >= self.header.size {
            return Ok(None);
        }
        let vc = offset / self.cluster;
        let i = self.map.partition_point(|(v, _)| *v < vc);
        let Some(&(first, _)) = self.map.get(i) else { return Ok(None) };
        let mut last = first;
        for &(v, _) in &self.map[i + 1..] {
            if v != last + 1 {
                break;
            }
            last = v;
        }
        let start = (first * self.cluster).max(offset);
        let end = ((last + 1) * self.cluster).min(self.header.size);
        Ok((start < end).then_some((start, end)))
    }
}
