//! What `grub-bios-setup` does, on bytes: choose where core.img goes (the MBR gap or the
//! bios_grub partition), patch its blocklist, and merge boot.img into sector 0 around the
//! partition table the table writer already wrote.

use super::GrubBiosError;
use super::core::{BLOCKLIST_OFFSET, CoreImage, SECTOR};
use crate::layout::{Plan, Role, TableKind};

/// boot.img field offsets (`include/grub/i386/pc/boot.h`).
pub const BPB_START: usize = 0x03;
pub const BPB_END: usize = 0x5a;
pub const KERNEL_SECTOR_AT: usize = 0x5c;
pub const BOOT_DRIVE_AT: usize = 0x64;
pub const DRIVE_CHECK_AT: usize = 0x66;
pub const WINDOWS_NT_MAGIC: usize = 0x1b8;
pub const PART_END: usize = 0x1fe;

/// Sectors core.img may use, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub first: u64,
    pub last: u64,
    /// What it is, for messages and the manifest.
    pub what: &'static str,
}

impl Region {
    pub fn sectors(&self) -> u64 {
        self.last + 1 - self.first
    }
}

/// Where core.img goes on `plan`'s disk: the bios_grub partition on GPT, the sectors between
/// the MBR and the first partition on MBR.
pub fn region(plan: &Plan) -> Result<Region, GrubBiosError> {
    let layout = plan.layout.name();
    match plan.table {
        TableKind::Gpt => {
            let p =
                plan.partitions.iter().find(|p| p.role == Role::BiosBoot).ok_or(GrubBiosError::NoRegion {
                    layout,
                    why: "its GPT has no bios_grub partition (use legacy+gpt or hybrid for BIOS boot on GPT)",
                })?;
            Ok(Region { first: p.start_lba, last: p.end_lba, what: "the bios_grub partition" })
        }
        TableKind::Mbr => {
            let first = plan.partitions.iter().map(|p| p.start_lba).min().unwrap_or(plan.total_sectors());
            if first < 2 {
                return Err(GrubBiosError::NoRegion {
                    layout,
                    why: "the first partition starts right after the MBR",
                });
            }
            Ok(Region { first: 1, last: first - 1, what: "the gap between the MBR and the first partition" })
        }
        TableKind::None => {
            Err(GrubBiosError::NoRegion { layout, why: "it has no partition table and so no MBR" })
        }
    }
}

/// core.img with its blocklist pointing at the sectors after its first, placed at
/// `region.first`; an error if it does not fit.
pub fn place_core(core: &CoreImage, region: &Region) -> Result<Vec<u8>, GrubBiosError> {
    let needed = core.sectors();
    if needed > region.sectors() {
        return Err(GrubBiosError::NoRoom {
            needed,
            region: region.what.to_string(),
            available: region.sectors(),
            first: region.first,
            last: region.last,
        });
    }
    let mut bytes = core.bytes.clone();
    let start = region.first + 1;
    bytes[BLOCKLIST_OFFSET..BLOCKLIST_OFFSET + 8].copy_from_slice(&start.to_le_bytes());
    // core.img is at most 0xffff sectors (checked by assemble through the 0x78000 limit).
    let len = (needed - 1) as u16;
    bytes[BLOCKLIST_OFFSET + 8..BLOCKLIST_OFFSET + 10].copy_from_slice(&len.to_le_bytes());
    Ok(bytes)
}

/// Sector 0 with GRUB's boot code: boot.img's bytes, except the BPB area and everything from
/// the disk signature on, which stay as `existing` has them; `kernel_sector` patched, the boot
/// drive set to 0xff and the floppy drive check turned into NOPs, as `grub-bios-setup` does
/// for a hard disk.
pub fn boot_sector(
    boot_img: &[u8],
    existing: &[u8; SECTOR],
    kernel_sector: u64,
) -> Result<[u8; SECTOR], GrubBiosError> {
    let bad = |what: String| GrubBiosError::Malformed { name: "boot.img".into(), what };
    if boot_img.len() != SECTOR {
        return Err(bad(format!("{} bytes, expected {SECTOR}", boot_img.len())));
    }
    if boot_img[0] != 0xeb || boot_img[DRIVE_CHECK_AT] != 0xeb {
        return Err(bad(format!(
            "bytes {:#04x} at 0 and {:#04x} at {DRIVE_CHECK_AT:#x}, expected the jumps of GRUB 2.06's boot.S (0xeb)",
            boot_img[0], boot_img[DRIVE_CHECK_AT]
        )));
    }
    let mut s = [0u8; SECTOR];
    s.copy_from_slice(boot_img);
    s[BPB_START..BPB_END].copy_from_slice(&existing[BPB_START..BPB_END]);
    s[WINDOWS_NT_MAGIC..].copy_from_slice(&existing[WINDOWS_NT_MAGIC..]);
    s[KERNEL_SECTOR_AT..KERNEL_SECTOR_AT + 8].copy_from_slice(&kernel_sector.to_le_bytes());
    s[BOOT_DRIVE_AT] = 0xff;
    s[DRIVE_CHECK_AT] = 0x90;
    s[DRIVE_CHECK_AT + 1] = 0x90;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_boot_img() -> Vec<u8> {
        let mut b = vec![0x11u8; SECTOR];
        b[0] = 0xeb;
        b[DRIVE_CHECK_AT] = 0xeb;
        b
    }

    #[test]
    fn boot_sector_keeps_table_and_bpb() {
        let mut existing = [0u8; SECTOR];
        existing[0x10] = 0xaa;
        existing[0x1b8] = 0x12;
        existing[0x1c0] = 0x34;
        existing[0x1fe] = 0x55;
        existing[0x1ff] = 0xaa;
        let s = boot_sector(&fake_boot_img(), &existing, 2048).unwrap();
        assert_eq!(s[0x10], 0xaa);
        assert_eq!(&s[0x1b8..], &existing[0x1b8..]);
        assert_eq!(u64::from_le_bytes(s[0x5c..0x64].try_into().unwrap()), 2048);
        assert_eq!((s[0x64], s[0x66], s[0x67]), (0xff, 0x90, 0x90));
        assert_eq!(s[0x65], 0x11);
    }

    #[test]
    fn place_core_patches_blocklist_and_checks_room() {
        let core = CoreImage {
            bytes: vec![0; 3 * SECTOR],
            modules: vec![],
            uncompressed: 0,
            compressed: 0,
            inputs: vec![],
        };
        let r = Region { first: 34, last: 2048, what: "the bios_grub partition" };
        let b = place_core(&core, &r).unwrap();
        assert_eq!(u64::from_le_bytes(b[0x1f4..0x1fc].try_into().unwrap()), 35);
        assert_eq!(u16::from_le_bytes(b[0x1fc..0x1fe].try_into().unwrap()), 2);
        let small = Region { first: 1, last: 2, what: "the gap" };
        assert!(matches!(
            place_core(&core, &small),
            Err(GrubBiosError::NoRoom { needed: 3, available: 2, .. })
        ));
    }
}
