//! Writes the partition tables of a [`Plan`]: GPT (protective MBR, primary and backup headers
//! and arrays, CRCs) or MBR, through gptman and mbrman.
//!
//! Every ID is passed in from the plan, so nothing random comes from those crates. CHS fields
//! of MBR entries use the conventional 255-head, 63-sector geometry (capped at 1023/254/63);
//! parted derives its own geometry from the file size, and no modern reader uses CHS.

use crate::layout::{Plan, SECTOR, TableKind};
use std::io::{Read, Seek, Write};

#[derive(Debug, thiserror::Error)]
pub enum PtableError {
    #[error("writing the GPT: {0}")]
    Gpt(#[from] gptman::Error),
    #[error("writing the MBR: {0}")]
    Mbr(#[from] mbrman::Error),
    #[error("partition {number} does not fit an MBR entry (sectors {start}..={end})")]
    MbrRange { number: u32, start: u64, end: u64 },
    #[error("the plan has a GPT but no disk GUID")]
    NoDiskGuid,
}

/// Writes the table `plan` describes into `w`, which must already be `plan.disk_bytes` long.
pub fn write_tables<W: Read + Write + Seek>(plan: &Plan, w: &mut W) -> Result<(), PtableError> {
    match plan.table {
        TableKind::None => Ok(()),
        TableKind::Gpt => write_gpt(plan, w),
        TableKind::Mbr => write_mbr(plan, w),
    }
}

fn write_gpt<W: Read + Write + Seek>(plan: &Plan, w: &mut W) -> Result<(), PtableError> {
    let disk_guid = plan.disk_guid.ok_or(PtableError::NoDiskGuid)?;
    let mut gpt = gptman::GPT::new_from(w, SECTOR, disk_guid.to_gpt_bytes())?;
    for p in &plan.partitions {
        let Some(e) = &p.gpt else { continue };
        gpt[p.number] = gptman::GPTPartitionEntry {
            partition_type_guid: e.type_guid.to_gpt_bytes(),
            unique_partition_guid: e.partition_guid.to_gpt_bytes(),
            starting_lba: p.start_lba,
            ending_lba: p.end_lba,
            attribute_bits: e.attributes,
            partition_name: e.name.into(),
        };
    }
    gpt.write_into(w)?;
    gptman::GPT::write_protective_mbr_into(w, SECTOR)?;
    Ok(())
}

/// LBA to CHS with 255 heads and 63 sectors per track, saturating at the largest CHS.
fn chs(lba: u64) -> mbrman::CHS {
    let (heads, sectors) = (255u64, 63u64);
    let cylinder = lba / (heads * sectors);
    if cylinder > 1023 {
        return mbrman::CHS::new(1023, 254, 63);
    }
    let head = (lba / sectors) % heads;
    let sector = lba % sectors + 1;
    // Casts cannot truncate: cylinder <= 1023, head < 255, sector <= 63.
    mbrman::CHS::new(cylinder as u16, head as u8, sector as u8)
}

fn write_mbr<W: Read + Write + Seek>(plan: &Plan, w: &mut W) -> Result<(), PtableError> {
    let signature = plan.mbr_disk_signature.unwrap_or(0).to_le_bytes();
    let mut mbr = mbrman::MBR::new_from(w, SECTOR as u32, signature)?;
    for p in &plan.partitions {
        let Some(e) = &p.mbr else { continue };
        let range = || PtableError::MbrRange { number: p.number, start: p.start_lba, end: p.end_lba };
        let start = u32::try_from(p.start_lba).map_err(|_| range())?;
        let sectors = u32::try_from(p.sectors()).map_err(|_| range())?;
        mbr[p.number as usize] = mbrman::MBRPartitionEntry {
            boot: if e.bootable { mbrman::BOOT_ACTIVE } else { mbrman::BOOT_INACTIVE },
            first_chs: chs(p.start_lba),
            sys: e.system_id,
            last_chs: chs(p.end_lba),
            starting_lba: start,
            sectors,
        };
    }
    mbr.write_into(w)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chs_conventional() {
        assert_eq!(chs(0), mbrman::CHS::new(0, 0, 1));
        assert_eq!(chs(2048), mbrman::CHS::new(0, 32, 33));
        assert_eq!(chs(u64::from(u32::MAX)), mbrman::CHS::new(1023, 254, 63));
    }
}
