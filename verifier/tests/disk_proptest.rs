//! Property tests: no input makes the partition-table readers panic, random bytes or
//! damaged real tables (with CRCs recomputed so the damage reaches past the CRC checks).

#[path = "disk_support.rs"]
mod support;

use proptest::prelude::*;
use reprodisk_verifier::{disk, gpt, lints, mbr};
use support::*;

/// A 1 MiB sgdisk image with an extended-looking hybrid MBR: exercises GPT, protective and
/// hybrid paths. Made once per test binary.
fn base() -> Vec<u8> {
    static BASE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let dir = tempdir();
        let img = sparse(dir.path(), "b.img", 1 << 20);
        run(sgdisk().args(["-n", "1:40:+200K", "-n", "2:0:+300K", "-h", "1"]).arg(&img));
        read_bytes(&img)
    })
    .clone()
}

/// Everything a caller may do with an image: nothing may panic.
fn exercise(img: &Vec<u8>) {
    let _ = mbr::read(img);
    let _ = gpt::read(img);
    if let Ok(d) = disk::open(img) {
        let _ = serde_json::to_string(&d.report()).expect("reports serialize");
        let _ = lints::lint_ids(&d, None);
        for p in &d.partitions {
            assert!(p.start + p.len <= img.len() as u64);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
        exercise(&bytes);
    }

    #[test]
    fn random_headers_never_panic(
        fields in proptest::collection::vec(any::<u64>(), 12),
        sig in any::<bool>(),
        records in proptest::collection::vec(any::<u8>(), 64),
    ) {
        let mut img = vec![0u8; 64 * 512];
        img[510] = 0x55;
        img[511] = 0xaa;
        img[0x1be..0x1fe].copy_from_slice(&records);
        img[512..520].copy_from_slice(b"EFI PART");
        for (i, f) in fields.iter().enumerate() {
            // Header fields from 0x08 on, 8 bytes at a time, keeping small values likely.
            let v = if f % 3 == 0 { f % 256 } else { *f };
            img[512 + 8 + 8 * i..512 + 16 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        if sig {
            restamp(&mut img, 1);
        }
        exercise(&img);
    }

    #[test]
    fn damaged_real_tables_never_panic(
        flips in proptest::collection::vec((0usize..34 * 512, any::<u8>()), 1..8),
        tail_flips in proptest::collection::vec((0usize..33 * 512, any::<u8>()), 0..4),
        fix_crcs in any::<bool>(),
        cut in proptest::option::of(0usize..(1 << 20)),
    ) {
        let mut img = base();
        let len = img.len();
        for (off, b) in flips {
            img[off] ^= b;
        }
        for (off, b) in tail_flips {
            img[len - 33 * 512 + off] ^= b;
        }
        if fix_crcs {
            restamp(&mut img, 1);
            restamp(&mut img, len / 512 - 1);
        }
        if let Some(c) = cut {
            img.truncate(c);
        }
        exercise(&img);
    }
}
