//! The qcow2, vdi and vpc readers against images qemu-img writes (the reference tool): each
//! reads back exactly the raw disk qemu-img converted, reports only allocated ranges as
//! data, and one corrupted field gives the error naming that structure.

use reprodisk_verifier::bytes::{ImageFile, ReadAt};
use reprodisk_verifier::error::Error;
use reprodisk_verifier::format::{Kind, VirtualDisk};
use std::path::{Path, PathBuf};
use std::process::Command;

const DISK: u64 = 20 << 20;

fn qemu_img(args: &[&str]) {
    let o = match Command::new("qemu-img").args(args).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("`qemu-img` is not installed: install the Debian package `qemu-utils`")
        }
        Err(e) => panic!("running qemu-img: {e}"),
    };
    assert!(o.status.success(), "qemu-img {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// A sparse raw disk with text, noise (incompressible) and a last partial block of data.
fn raw_disk(dir: &Path) -> (PathBuf, Vec<u8>) {
    let mut d = vec![0u8; DISK as usize];
    let text = b"reprodisk format reader test ".repeat(4000);
    d[0x1000..0x1000 + text.len()].copy_from_slice(&text);
    let mut x = 0x9e37_79b9u32;
    for b in &mut d[(5 << 20)..(5 << 20) + 300_000] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    d[(DISK - 10) as usize..].copy_from_slice(b"last bytes");
    let p = dir.join("disk.raw");
    std::fs::write(&p, &d).unwrap();
    qemu_img(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "raw",
        "-S",
        "4k",
        p.to_str().unwrap(),
        dir.join("sparse.raw").to_str().unwrap(),
    ]);
    (dir.join("sparse.raw"), d)
}

fn convert(dir: &Path, raw: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut a = vec!["convert", "-f", "raw"];
    a.extend_from_slice(args);
    a.push(raw.to_str().unwrap());
    a.push(out.to_str().unwrap());
    qemu_img(&a);
    out
}

fn open(p: &Path) -> VirtualDisk<ImageFile> {
    VirtualDisk::open(ImageFile::open(p).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn read_all(d: &impl ReadAt) -> Vec<u8> {
    let mut v = vec![0u8; d.len() as usize];
    // Odd-sized reads cross cluster and block boundaries.
    for (i, chunk) in v.chunks_mut(100_003).enumerate() {
        d.read_exact_at(chunk, i as u64 * 100_003).unwrap();
    }
    v
}

/// Every byte outside the ranges `next_data` reports must be zero.
fn holes_are_zero(d: &impl ReadAt, disk: &[u8]) {
    let mut pos = 0;
    while let Some((s, e)) = d.next_data(pos).unwrap() {
        assert!(
            disk[pos as usize..s as usize].iter().all(|&b| b == 0),
            "data in a reported hole at {pos:#x}"
        );
        pos = e;
    }
    assert!(disk[pos as usize..].iter().all(|&b| b == 0));
}

#[test]
fn reads_what_qemu_img_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, disk) = raw_disk(dir.path());
    for (name, args, kind) in [
        ("a.qcow2", &["-O", "qcow2"][..], Kind::Qcow2),
        ("c.qcow2", &["-O", "qcow2", "-c"][..], Kind::Qcow2),
        ("v2.qcow2", &["-O", "qcow2", "-o", "compat=0.10"][..], Kind::Qcow2),
        ("small.qcow2", &["-O", "qcow2", "-c", "-o", "cluster_size=4096,refcount_bits=1"][..], Kind::Qcow2),
        ("wide.qcow2", &["-O", "qcow2", "-o", "cluster_size=2M,refcount_bits=64"][..], Kind::Qcow2),
        ("a.vdi", &["-O", "vdi"][..], Kind::Vdi),
        ("f.vdi", &["-O", "vdi", "-o", "static=on"][..], Kind::Vdi),
        ("a.vhd", &["-O", "vpc", "-o", "force_size=on"][..], Kind::Vpc),
        ("f.vhd", &["-O", "vpc", "-o", "subformat=fixed,force_size=on"][..], Kind::Vpc),
    ] {
        let img = convert(dir.path(), &raw, name, args);
        let d = open(&img);
        assert_eq!(d.kind(), kind, "{name}");
        assert_eq!(d.len(), DISK, "{name}");
        assert!(read_all(&d) == disk, "{name}: the disk read back differs from the raw disk");
        holes_are_zero(&d, &disk);
        let s = d.summary();
        if name == "c.qcow2" {
            assert!(s.compressed_units.unwrap() > 0, "{name}: {s:?}");
            let VirtualDisk::Qcow2(q) = &d else { unreachable!() };
            assert!(q.check_compressed().unwrap() > 0);
        }
    }
}

#[test]
fn qemu_img_vhd_without_force_size_rounds_the_size_up() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, _) = raw_disk(dir.path());
    let d = open(&convert(dir.path(), &raw, "r.vhd", &["-O", "vpc"]));
    // qemu-img's geometry rounding: current_size is the CHS product, not the disk.
    assert!(d.len() > DISK, "{}", d.len());
}

fn expect_corrupt(img: &Path, structure: &str, what: &str) {
    match VirtualDisk::open(ImageFile::open(img).unwrap()) {
        Err(Error::Corrupt { at, what: w }) => {
            assert!(
                at.structure.contains(structure),
                "{}: structure {:?}, expected {structure}",
                img.display(),
                at.structure
            );
            assert!(w.contains(what), "{}: {w}", img.display());
        }
        Err(e) => panic!("{}: expected a corrupt {structure}, got {e}", img.display()),
        Ok(_) => panic!("{}: expected a corrupt {structure}, it opened", img.display()),
    }
}

fn patch(src: &Path, dst: &Path, at: u64, bytes: &[u8]) -> PathBuf {
    let mut d = std::fs::read(src).unwrap();
    d[at as usize..at as usize + bytes.len()].copy_from_slice(bytes);
    std::fs::write(dst, d).unwrap();
    dst.to_path_buf()
}

fn be64(d: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(d[at..at + 8].try_into().unwrap())
}

#[test]
fn one_corrupt_field_names_its_structure() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let (raw, _) = raw_disk(p);
    let q = convert(p, &raw, "a.qcow2", &["-O", "qcow2"]);
    let qd = std::fs::read(&q).unwrap();
    let rt = be64(&qd, 48) as usize;
    let rb = be64(&qd, rt);
    // Refcount of cluster 0 (the header) raised to 2.
    expect_corrupt(
        &patch(&q, &p.join("rc.qcow2"), rb, &2u16.to_be_bytes()),
        "qcow2 refcount of host cluster 0",
        "refcount is 2",
    );
    // A leaked cluster: one more cluster at the end of the file, counted but unreferenced.
    let clusters = qd.len() as u64 / 65536;
    let mut leaked = qd.clone();
    leaked.resize(qd.len() + 65536, 0);
    leaked[(rb + clusters * 2) as usize..(rb + clusters * 2 + 2) as usize]
        .copy_from_slice(&1u16.to_be_bytes());
    std::fs::write(p.join("leak.qcow2"), leaked).unwrap();
    expect_corrupt(&p.join("leak.qcow2"), &format!("qcow2 refcount of host cluster {clusters}"), "leaked");
    // A reserved bit in the first L1 entry.
    let l1 = be64(&qd, 40);
    let mut e = be64(&qd, l1 as usize);
    e |= 1 << 1;
    expect_corrupt(
        &patch(&q, &p.join("l1.qcow2"), l1, &e.to_be_bytes()),
        "qcow2 L1 entry 0",
        "reserved bits",
    );
    expect_corrupt(
        &patch(&q, &p.join("magic.qcow2"), 20, &30u32.to_be_bytes()),
        "qcow2 header",
        "cluster_bits",
    );

    let v = convert(p, &raw, "a.vdi", &["-O", "vdi"]);
    let vd = std::fs::read(&v).unwrap();
    let bmap = u32::from_le_bytes(vd[0x154..0x158].try_into().unwrap()) as u64;
    let first = vd[bmap as usize..bmap as usize + 4].to_vec();
    // Block 1 points at the same data block as block 0: an overlap.
    expect_corrupt(&patch(&v, &p.join("dup.vdi"), bmap + 4, &first), "vdi block map entry 1", "used twice");
    expect_corrupt(
        &patch(&v, &p.join("sig.vdi"), 0x168, &4096u32.to_le_bytes()),
        "vdi header",
        "sector size",
    );

    let h = convert(p, &raw, "a.vhd", &["-O", "vpc", "-o", "force_size=on"]);
    let len = std::fs::metadata(&h).unwrap().len();
    expect_corrupt(&patch(&h, &p.join("sum.vhd"), len - 512 + 40, &[0xff]), "vhd footer", "checksum");
    expect_corrupt(&patch(&h, &p.join("copy.vhd"), 24, &[0xff, 0xff]), "vhd footer copy", "differs");

    // A truncated qcow2: its refcount blocks lie past the end.
    let mut short = qd.clone();
    short.truncate(65536 * 2);
    let t = p.join("short.qcow2");
    std::fs::write(&t, short).unwrap();
    assert!(matches!(
        VirtualDisk::open(ImageFile::open(&t).unwrap()),
        Err(Error::Truncated { .. } | Error::Corrupt { .. })
    ));
}

/// The fuzz targets' promise on stable: flipping any byte of the metadata of a real image
/// gives an error or a disk that reads without panicking.
#[test]
fn flipped_metadata_bytes_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, _) = raw_disk(dir.path());
    for (name, args) in [
        ("a.qcow2", &["-O", "qcow2"][..]),
        ("c.qcow2", &["-O", "qcow2", "-c"][..]),
        ("a.vdi", &["-O", "vdi"][..]),
        ("a.vhd", &["-O", "vpc", "-o", "force_size=on"][..]),
    ] {
        let mut img = std::fs::read(convert(dir.path(), &raw, name, args)).unwrap();
        // The metadata: qcow2 header, L1 and the tables after the data; vdi header and block
        // map; vhd footer copy, dynamic header, table and the first bitmap; and the tail.
        let tail = img.len().saturating_sub(0x2_0000);
        let offsets =
            (0..0x200).chain((0x200..0x3_0000).step_by(1021)).chain((tail..img.len()).step_by(2039));
        let len = img.len();
        for at in offsets.filter(|&o| o < len) {
            img[at] ^= 0xa5;
            if let Ok(d) = VirtualDisk::open(&img[..]) {
                let _ = d.summary();
                let mut pos = 0;
                let mut buf = vec![0u8; 4096];
                let mut reads = 0;
                while let Ok(Some((s, e))) = d.next_data(pos) {
                    reads += 1;
                    if reads > 8 {
                        break;
                    }
                    let n = (e - s).min(4096);
                    let _ = d.read_exact_at(&mut buf[..n as usize], s);
                    pos = e;
                }
            }
            img[at] ^= 0xa5;
        }
    }
}
