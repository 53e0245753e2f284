//! The FAT geometry reprodisk picks equals what `mkfs.vfat` 4.2 picks, over a sweep of partition sizes.
//!
//! For each size, mkfs.vfat runs on a sparse file of that size (hidden sectors given with
//! `-h`, as when it runs on a partition device) and every BPB field that depends on the size
//! is compared with `fs::fat::mkfs_geometry`, plus the cluster count mkfs.vfat reports.

mod common;

use reprodisk::fs::fat::{FatType, mkfs_geometry};

fn le16(b: &[u8], o: usize) -> u32 {
    u16::from_le_bytes([b[o], b[o + 1]]) as u32
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

#[test]
fn geometry_matches_mkfs_vfat() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("fat.img");
    let mut sizes: Vec<u64> = (1..=96).collect();
    sizes.extend((97..=2100).step_by(29));
    sizes.extend([
        100, 127, 128, 129, 249, 255, 256, 257, 259, 260, 261, 262, 511, 512, 513, 1023, 1024, 1025,
    ]);
    sizes.extend([4096, 8191, 8192, 8193, 16385, 32769, 33000]);
    sizes.sort();
    sizes.dedup();
    let hidden = 16384u32;
    let mut checked = 0;
    for mib in sizes {
        let f = std::fs::File::create(&img).unwrap();
        f.set_len(mib << 20).unwrap();
        drop(f);
        let o = common::tool(
            "mkfs.vfat",
            "dosfstools",
            &["-v", "-n", "ESP", "-i", "49F682E7", "-h", &hidden.to_string(), img.to_str().unwrap()],
        );
        let ours = mkfs_geometry(mib << 20, hidden);
        if !o.status.success() {
            assert!(
                ours.is_err(),
                "{mib} MiB: mkfs.vfat refused ({}) but we planned {ours:?}",
                String::from_utf8_lossy(&o.stderr)
            );
            continue;
        }
        let g = ours.unwrap_or_else(|e| panic!("{mib} MiB: mkfs.vfat made a filesystem, we refused: {e}"));
        let mut b = vec![0u8; 512];
        use std::io::Read;
        std::fs::File::open(&img).unwrap().read_exact(&mut b).unwrap();
        let fat32 = le16(&b, 22) == 0;
        let total = if le16(&b, 19) != 0 { le16(&b, 19) } else { le32(&b, 32) };
        let fs_type = if fat32 { &b[82..90] } else { &b[54..62] };
        let theirs = (
            String::from_utf8_lossy(fs_type).trim().to_string(),
            b[13] as u32,
            le16(&b, 14),
            if fat32 { le32(&b, 36) } else { le16(&b, 22) },
            le16(&b, 17),
            total,
            le16(&b, 24),
            le16(&b, 26),
            le32(&b, 28),
            b[21],
        );
        let mine = (
            g.fat_type.name().to_string(),
            g.sectors_per_cluster,
            g.reserved_sectors,
            g.fat_sectors,
            g.root_entries,
            g.total_sectors,
            g.sectors_per_track as u32,
            g.heads as u32,
            g.hidden_sectors,
            0xf8u8,
        );
        assert_eq!(
            mine, theirs,
            "{mib} MiB: (type, spc, reserved, fat sectors, root entries, sectors, spt, heads, hidden, media)"
        );
        let text = String::from_utf8_lossy(&o.stdout);
        let clusters: u32 = text
            .split("provides ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("mkfs.vfat -v output without a cluster count: {text}"));
        assert_eq!(g.clusters, clusters, "{mib} MiB: cluster count");
        checked += 1;
    }
    assert!(checked > 150, "only {checked} sizes compared");
    // The brief's measurements, as a plain reminder of what the sweep covers.
    assert_eq!(mkfs_geometry(600 << 20, 0).unwrap().fat_type, FatType::Fat32);
}
