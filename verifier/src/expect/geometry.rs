//! The partitions the seed's parted and sgdisk commands make for each layout, and where
//! parted ends a partition at `100%`.

use super::{
    Expectations, ExpectedFs, ExpectedPartition, FsKind, LayoutName, MIB, SEED_PART1_GUID, SEED_PART2_GUID,
    TYPE_BIOS_BOOT, TYPE_ESP, TYPE_LINUX_DATA, TYPE_XBOOTLDR, TableKind,
};

const SECTOR: u64 = 512;
/// parted's alignment grain: 1 MiB in 512-byte sectors.
const GRAIN: u64 = MIB / SECTOR;

impl Expectations {
    /// The partitions of an image of `disk_bytes` bytes, as the seed's parted commands make
    /// them: fixed starts, `bootSize` ends, and the root partition up to parted's `100%`,
    /// which parted aligns down to a whole MiB.
    pub fn partitions(&self, disk_bytes: u64) -> Vec<ExpectedPartition> {
        let total = disk_bytes / SECTOR;
        let boot = self.boot_end / SECTOR;
        let det = self.deterministic;
        let guid = |g: &str| det.then(|| g.to_string());
        let root_guid = guid(&self.root_gpuid);
        let vfat = |label: &str| Some(ExpectedFs { kind: FsKind::Vfat, label: label.into(), uuid: None });
        let root_fs = Some(self.root_fs());
        let gpt = |number, start: u64, end: u64, ty, name, guid, filesystem| ExpectedPartition {
            number,
            start_lba: start,
            sectors: end.saturating_sub(start),
            gpt_type: Some(ty),
            mbr_type: None,
            name: Some(name),
            guid,
            bootable: false,
            attributes: 0,
            filesystem,
        };
        let mbr = |number, start: u64, end: u64, ty, bootable, filesystem| ExpectedPartition {
            number,
            start_lba: start,
            sectors: end.saturating_sub(start),
            gpt_type: None,
            mbr_type: Some(ty),
            name: None,
            guid: None,
            bootable,
            attributes: 0,
            filesystem,
        };
        let end = match self.table() {
            TableKind::Mbr => parted_end_of_100_percent(total, total.saturating_sub(1)),
            TableKind::Gpt => parted_end_of_100_percent(total, total.saturating_sub(34)),
            TableKind::None => total,
        };
        let (p1, p2) = (guid(SEED_PART1_GUID), guid(SEED_PART2_GUID));
        match self.layout {
            LayoutName::Legacy => vec![mbr(1, GRAIN, end, 0x83, false, root_fs)],
            LayoutName::LegacyBoot => {
                vec![mbr(1, GRAIN, boot, 0x0c, true, vfat("BOOT")), mbr(2, boot, end, 0x83, false, root_fs)]
            }
            LayoutName::LegacyGpt => vec![
                gpt(1, GRAIN, 2 * GRAIN, TYPE_BIOS_BOOT, "no-fs", p1, None),
                gpt(2, 2 * GRAIN, end, TYPE_LINUX_DATA, "primary", root_guid, root_fs),
            ],
            LayoutName::Efi => vec![
                gpt(1, 8 * GRAIN, boot, TYPE_ESP, "ESP", p1, vfat("ESP")),
                gpt(2, boot, end, TYPE_LINUX_DATA, "primary", root_guid, root_fs),
            ],
            LayoutName::Efixbootldr => vec![
                gpt(1, 8 * GRAIN, 100 * GRAIN, TYPE_ESP, "ESP", p1, vfat("ESP")),
                gpt(2, 100 * GRAIN, boot, TYPE_XBOOTLDR, "BOOT", p2, vfat("BOOT")),
                gpt(3, boot, end, TYPE_LINUX_DATA, "ROOT", root_guid, root_fs),
            ],
            // `mkpart no-fs 0 1024KiB`: parted moves the start to the first usable LBA and,
            // as the end is not rounded to a grain, keeps sector 2048 itself (34..=2048).
            LayoutName::Hybrid => vec![
                gpt(1, 8 * GRAIN, boot, TYPE_ESP, "ESP", p1, vfat("ESP")),
                gpt(2, 34, GRAIN + 1, TYPE_BIOS_BOOT, "no-fs", p2, None),
                gpt(3, boot, end, TYPE_LINUX_DATA, "primary", root_guid, root_fs),
            ],
            LayoutName::None => Vec::new(),
        }
    }
}

/// The exclusive end sector parted gives `mkpart ... 100%` on a disk of `total` sectors whose
/// last usable sector is `last`. libparted reads a location in percent as `100 * unit` bytes,
/// where a unit is 1% of the disk rounded down to a byte, give or take a radius of half a
/// unit (`ceil(unit / sector) / 2 - 1` sectors). With optimal alignment it ends the partition
/// on the last sector before a whole MiB when that lies inside the range; else at the last
/// usable sector. Checked against parted itself over a sweep of disk sizes in the tests.
fn parted_end_of_100_percent(total: u64, last: u64) -> u64 {
    let unit = total.saturating_mul(SECTOR) / 100;
    let radius = (unit.div_ceil(SECTOR) / 2).saturating_sub(1);
    let wanted = unit.saturating_mul(100) / SECTOR;
    // The inclusive end on a MiB boundary at or below the last usable sector.
    match ((last + 1) / GRAIN * GRAIN).checked_sub(1) {
        Some(aligned) if aligned.saturating_add(radius) >= wanted => aligned + 1,
        _ => last + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::SEED_ROOT_GUID;
    use serde_json::Value;
    use std::process::Command;

    /// The seed's own parted command for a layout, with its `$bootSizeMiB`.
    fn seed_parted(layout: LayoutName, boot_mib: u64) -> Vec<String> {
        let script = match layout {
            LayoutName::Legacy => "mklabel msdos mkpart primary ext4 1MiB 100%",
            LayoutName::LegacyBoot => {
                "mklabel msdos mkpart primary fat32 1MiB $b set 1 boot on mkpart primary ext4 $b 100%"
            }
            LayoutName::LegacyGpt => {
                "mklabel gpt mkpart no-fs 1MiB 2MiB set 1 bios_grub on \
                 mkpart primary ext4 2MiB 100% align-check optimal 2"
            }
            LayoutName::Efi => {
                "mklabel gpt mkpart ESP fat32 8MiB $b set 1 boot on align-check optimal 1 \
                 mkpart primary ext4 $b 100% align-check optimal 2"
            }
            LayoutName::Efixbootldr => {
                "mklabel gpt mkpart ESP fat32 8MiB 100MiB set 1 boot on align-check optimal 1 \
                 mkpart BOOT fat32 100MiB $b set 2 bls_boot on align-check optimal 2 \
                 mkpart ROOT ext4 $b 100% align-check optimal 3"
            }
            LayoutName::Hybrid => {
                "mklabel gpt mkpart ESP fat32 8MiB $b set 1 boot on align-check optimal 1 \
                 mkpart no-fs 0 1024KiB set 2 bios_grub on \
                 mkpart primary ext4 $b 100% align-check optimal 3"
            }
            LayoutName::None => "",
        };
        let b = format!("{boot_mib}MiB");
        script.split_whitespace().map(|w| if w == "$b" { b.clone() } else { w.to_string() }).collect()
    }

    fn run(cmd: &mut Command, package: &str) -> std::process::Output {
        let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?} (install {package}): {e}"));
        assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    /// `parted_end_of_100_percent` against parted itself: every MiB from 20 to 400 and a few
    /// large disks (sparse files), GPT and MBR, `mkpart ... 100%` read back with `print`.
    #[test]
    fn end_of_100_percent_matches_parted_over_a_sweep() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sizes: Vec<u64> = (20..=400).map(|m| m * MIB).collect();
        sizes.extend([1024 * MIB + 5 * SECTOR, 10 << 30, (100 << 30) + 3 * SECTOR, 2 << 40]);
        let work: Vec<(u64, bool)> = sizes.iter().flat_map(|&b| [(b, true), (b, false)]).collect();
        let mismatches = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for chunk in work.chunks(work.len().div_ceil(2)) {
                let (dir, mismatches) = (dir.path(), &mismatches);
                s.spawn(move || {
                    for &(bytes, gpt) in chunk {
                        let img = dir.join(format!("{bytes}-{gpt}.img"));
                        std::fs::File::create(&img).and_then(|f| f.set_len(bytes)).expect("scratch image");
                        let (label, start) = if gpt { ("gpt", "2MiB") } else { ("msdos", "1MiB") };
                        let out = run(
                            Command::new("parted").arg("-m").arg("--script").arg(&img).arg("--").args([
                                "mklabel", label, "mkpart", "primary", "ext4", start, "100%", "unit", "s",
                                "print",
                            ]),
                            "parted",
                        );
                        std::fs::remove_file(&img).expect("scratch image removed");
                        let text = String::from_utf8_lossy(&out.stdout).into_owned();
                        let end: u64 = text
                            .lines()
                            .find(|l| l.starts_with("1:"))
                            .and_then(|l| l.split(':').nth(2))
                            .and_then(|e| e.trim_end_matches('s').parse().ok())
                            .unwrap_or_else(|| panic!("no partition 1 in parted's print: {text}"));
                        let total = bytes / SECTOR;
                        let last = if gpt { total - 34 } else { total - 1 };
                        let ours = parted_end_of_100_percent(total, last);
                        if ours != end + 1 {
                            mismatches.lock().expect("not poisoned").push((bytes, label, end + 1, ours));
                        }
                    }
                });
            }
        });
        let m = mismatches.into_inner().expect("not poisoned");
        assert!(m.is_empty(), "(disk bytes, label, parted's end, ours): {m:?}");
    }

    /// Runs the seed's parted command for every layout on sparse scratch disks (one a whole
    /// number of MiB as the seed makes them, one not) and compares `sfdisk --json` with
    /// [`Expectations::partitions`] field by field.
    #[test]
    fn geometry_matches_the_seeds_parted_for_every_layout() {
        let dir = tempfile::tempdir().expect("tempdir");
        for layout in LayoutName::ALL {
            // Whole MiB as the seed makes them, not whole MiB, and disks under 100 MiB where
            // parted cannot align the end of `100%` (efixbootldr needs more than 100 MiB).
            let mut sizes = vec![(300 * MIB, "256M"), (1024 * MIB + 5 * SECTOR, "100M"), (600 * MIB, "300M")];
            if layout != LayoutName::Efixbootldr {
                sizes.extend([
                    (64 * MIB, "24M"),
                    (90 * MIB + 7 * SECTOR, "40M"),
                    (101 * MIB, "64M"),
                    (210 * MIB, "64M"),
                ]);
            }
            for (disk_bytes, boot) in sizes {
                let spec = format!("partitionTableType = \"{}\"\nbootSize = \"{boot}\"", layout.as_str());
                let e = Expectations::from_toml_str(&spec).expect("valid spec");
                let expected = e.partitions(disk_bytes);
                if layout == LayoutName::None {
                    assert!(expected.is_empty());
                    continue;
                }
                let img = dir.path().join(format!("{}-{disk_bytes}.img", layout.as_str().replace('+', "_")));
                std::fs::File::create(&img).and_then(|f| f.set_len(disk_bytes)).expect("scratch image");
                let args = seed_parted(layout, e.boot_end / MIB);
                run(Command::new("parted").arg("--script").arg(&img).arg("--").args(&args), "parted");
                let out = run(Command::new("sfdisk").arg("--json").arg(&img), "fdisk (sfdisk)");
                let v: Value = serde_json::from_slice(&out.stdout).expect("sfdisk prints JSON");
                let table = &v["partitiontable"];
                assert_eq!(table["label"], if e.table() == TableKind::Gpt { "gpt" } else { "dos" });
                let parts = table["partitions"].as_array().expect("partitions");
                let ctx = format!("{} on {disk_bytes} bytes", layout.as_str());
                assert_eq!(parts.len(), expected.len(), "{ctx}");
                for (p, x) in parts.iter().zip(&expected) {
                    let ctx = format!("{ctx}, partition {}", x.number);
                    let node = p["node"].as_str().expect("node");
                    assert!(node.ends_with(&x.number.to_string()), "{ctx}: {node}");
                    assert_eq!(p["start"].as_u64(), Some(x.start_lba), "{ctx}: start");
                    assert_eq!(p["size"].as_u64(), Some(x.sectors), "{ctx}: size");
                    match (x.gpt_type, x.mbr_type) {
                        (Some(t), _) => {
                            assert_eq!(p["type"].as_str(), Some(t), "{ctx}: type");
                            assert_eq!(p["name"].as_str(), x.name, "{ctx}: name");
                            assert!(
                                p.get("attrs").is_none() && x.attributes == 0,
                                "{ctx}: attributes {:?}",
                                p.get("attrs")
                            );
                        }
                        (None, Some(t)) => {
                            assert_eq!(p["type"].as_str(), Some(format!("{t:x}").as_str()), "{ctx}: type");
                            assert_eq!(
                                p["bootable"].as_bool().unwrap_or(false),
                                x.bootable,
                                "{ctx}: boot flag"
                            );
                        }
                        (None, None) => panic!("{ctx}: neither a GPT nor an MBR type"),
                    }
                }
            }
        }
    }

    #[test]
    fn deterministic_guids_per_layout() {
        let guids = |layout: &str| {
            let e =
                Expectations::from_toml_str(&format!("partitionTableType = \"{layout}\"")).expect("valid");
            e.partitions(1024 * MIB).into_iter().map(|p| p.guid).collect::<Vec<_>>()
        };
        let g = |s: &str| Some(s.to_string());
        assert_eq!(guids("efi"), [g(SEED_PART1_GUID), g(SEED_ROOT_GUID)]);
        // The seed gives rootGPUID to a partition 3 that does not exist; reprodisk gives it to
        // the root partition (ARCHITECTURE.md).
        assert_eq!(guids("legacy+gpt"), [g(SEED_PART1_GUID), g(SEED_ROOT_GUID)]);
        assert_eq!(guids("hybrid"), [g(SEED_PART1_GUID), g(SEED_PART2_GUID), g(SEED_ROOT_GUID)]);
        assert_eq!(guids("efixbootldr"), [g(SEED_PART1_GUID), g(SEED_PART2_GUID), g(SEED_ROOT_GUID)]);
        assert_eq!(guids("legacy"), [None]);
        let random = Expectations::from_toml_str("partitionTableType = \"efi\"\ndeterministic = false")
            .expect("valid");
        assert!(random.partitions(1024 * MIB).iter().all(|p| p.guid.is_none()));
        assert_eq!(random.expected_disk_guid(), None);
        assert_eq!(random.root_fs().uuid, None);
    }
}
