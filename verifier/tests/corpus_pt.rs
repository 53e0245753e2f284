//! util-linux's partition-table test images (shared/corpus/util-linux/pt): the GPT and DOS
//! ones parse and match libblkid's expected output field by field; the tables the verifier
//! does not read (Atari, BSD, DASD, SGI, Sun) come out as "no table" without an error.

#[path = "disk_support.rs"]
mod support;

use reprodisk_verifier::disk::{self, Layout};
use reprodisk_verifier::guid::Guid;
use reprodisk_verifier::{gpt, mbr};
use std::path::PathBuf;
use support::*;

fn corpus_dir() -> PathBuf {
    // verifier/ -> the worktree -> its parent, beside which shared/ is laid out; CI and
    // sessions also have it at /work/shared.
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        here.join("../../shared/corpus/util-linux/pt"),
        here.join("../../../shared/corpus/util-linux/pt"),
        PathBuf::from("/work/shared/corpus/util-linux/pt"),
    ];
    candidates
        .iter()
        .find(|p| p.is_dir())
        .cloned()
        .unwrap_or_else(|| panic!("the util-linux corpus is missing; looked in {candidates:?}"))
}

/// One line of libblkid's `sample-partitions` output.
#[derive(Debug)]
struct Expected {
    size: u64,
    pt: String,
    offset: u64,
    id: Option<String>,
    parts: Vec<ExpectedPart>,
}

#[derive(Debug)]
struct ExpectedPart {
    number: u32,
    start: u64,
    size: u64,
    type_byte: u8,
    nested: bool,
    attrs: std::collections::BTreeMap<String, String>,
}

fn parse_expected(text: &str) -> Expected {
    let head = text.lines().next().expect("a header line");
    let get = |key: &str| -> &str {
        head.split(", ")
            .find_map(|kv| kv.strip_prefix(key))
            .unwrap_or_else(|| panic!("{key} in {head}"))
            .trim()
    };
    let size = get("size: ").parse().expect("size");
    let pt = get("PT: ").to_string();
    let offset = get("offset: ").parse().expect("offset");
    let id = Some(get("id=").to_string()).filter(|s| s != "(null)");
    let parts = text
        .lines()
        .skip_while(|l| *l != "---")
        .skip(1)
        .map(|l| {
            let (num, rest) = l.split_once(':').expect("#N:");
            let t: Vec<&str> = rest.split_whitespace().collect();
            let mut attrs = std::collections::BTreeMap::new();
            for (k, v) in rest.split(" ").filter_map(|w| w.split_once("='")) {
                attrs.insert(k.to_string(), v.trim_end_matches('\'').to_string());
            }
            ExpectedPart {
                number: num.trim_start_matches('#').parse().expect("number"),
                start: t[0].parse().expect("start"),
                size: t[1].parse().expect("size"),
                type_byte: u8::from_str_radix(t[2].trim_start_matches("0x"), 16).expect("type"),
                nested: rest.contains("(freebsd)"),
                attrs,
            }
        })
        .collect();
    Expected { size, pt, offset, id, parts }
}

fn load(name: &str) -> (PathBuf, Expected, tempfile::TempDir) {
    let dir = tempdir();
    let src = corpus_dir().join(format!("{name}.img.xz"));
    let img = unxz(&src, dir.path());
    let text = std::fs::read_to_string(corpus_dir().join(format!("{name}.expected"))).expect("expected file");
    (img, parse_expected(&text), dir)
}

#[test]
fn gpt_image_matches_libblkid() {
    let (img, exp, _dir) = load("gpt");
    let r = image(&img);
    let d = disk::open(&r).expect("gpt.img opens");
    assert_eq!(d.size, exp.size);
    assert_eq!((d.layout, exp.pt.as_str()), (Layout::Gpt, "gpt"));
    let g = d.gpt.as_ref().expect("a gpt");
    assert_eq!(g.primary_offset(), exp.offset);
    assert_eq!(exp.id.as_deref().map(Guid::parse), Some(Ok(g.primary.disk_guid)));
    assert_eq!(g.entries.len(), exp.parts.len());
    for (e, x) in g.entries.iter().zip(&exp.parts) {
        assert_eq!(e.index, x.number);
        assert_eq!(e.starting_lba, x.start);
        assert_eq!(e.sectors(), x.size);
        assert_eq!(x.type_byte, 0);
        assert_eq!(Some(&e.partition_name), x.attrs.get("name"));
        assert_eq!(x.attrs.get("uuid").map(|u| Guid::parse(u)), Some(Ok(e.unique_partition_guid)));
        assert_eq!(x.attrs.get("type").map(|u| Guid::parse(u)), Some(Ok(e.partition_type_guid)));
        assert_eq!(e.type_name, Some("Microsoft basic data"));
    }
    let p1 = d.partition(1).expect("partition 1");
    assert_eq!((p1.start, p1.len), (34 * 512, 2014 * 512));
}

#[test]
fn dos_bsd_image_matches_libblkid_for_the_dos_partitions() {
    let (img, exp, _dir) = load("dos+bsd");
    let r = image(&img);
    let d = disk::open(&r).expect("dos+bsd.img opens");
    assert_eq!(d.size, exp.size);
    assert_eq!((d.layout, exp.pt.as_str()), (Layout::Mbr, "dos"));
    let m = d.mbr.as_ref().expect("an mbr");
    assert_eq!(exp.offset, mbr::OFF_PARTITION_RECORD as u64);
    assert_eq!(exp.id, Some(format!("{:08x}", m.unique_mbr_disk_signature)));
    assert_eq!(d.report().ptuuid, exp.id);
    // The freebsd disklabel nested in partition 2 is not read by this verifier.
    let dos: Vec<&ExpectedPart> = exp.parts.iter().filter(|p| !p.nested).collect();
    let ours: Vec<_> = m.partitions().collect();
    assert_eq!(ours.len(), dos.len());
    for (p, x) in ours.iter().zip(&dos) {
        assert_eq!(p.number, x.number);
        assert_eq!(p.starting_lba, x.start);
        assert_eq!(u64::from(p.size_in_lba), x.size);
        assert_eq!(p.os_type, x.type_byte);
        // libblkid's partition uuid of a dos table: signature-NN.
        assert_eq!(
            x.attrs.get("uuid"),
            Some(&format!("{:08x}-{:02x}", m.unique_mbr_disk_signature, p.number))
        );
    }
}

#[test]
fn other_table_types_are_no_mbr_and_no_gpt() {
    for name in ["atari-primary", "atari-xgm", "bsd", "dasd-cdl", "dasd-ldl", "sgi", "sun"] {
        let (img, exp, _dir) = load(name);
        assert_ne!(exp.pt, "dos");
        assert_ne!(exp.pt, "gpt");
        let r = image(&img);
        let d = disk::open(&r).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(d.layout, Layout::None, "{name}");
        assert_eq!(d.size, exp.size, "{name}");
        assert_eq!(d.partitions.len(), 1, "{name}: the whole image, as partition 0");
        assert!(gpt::read(&r).is_err(), "{name}");
        assert!(matches!(mbr::read(&r), Err(reprodisk_verifier::Error::Corrupt { .. })), "{name}");
    }
}
