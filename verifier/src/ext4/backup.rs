//! Superblock and group descriptor backups: each copy must parse, carry its checksum, name
//! its own group, and agree with the primary on identity and geometry.

use super::Ext4;
use super::group::GroupDesc;
use super::superblock::{SUPERBLOCK_SIZE, Superblock};
use crate::bytes::ReadAt;
use crate::error::{Error, Result};

impl<R: ReadAt> Ext4<R> {
    /// Checks every backup superblock and group descriptor table against the primary.
    /// Free counts, times and mount state are allowed to differ: the kernel updates only
    /// the primary.
    pub fn check_backups(&self) -> Result<u32> {
        let sb = &self.sb;
        let bs = sb.block_size();
        let mut checked = 0;
        for g in 1..sb.group_count() {
            if !sb.group_has_super(g) {
                continue;
            }
            let first = sb.group_first_block(g);
            let name = format!("ext4 superblock backup in group {g}");
            let raw = self.reader().read_vec(first * bs, SUPERBLOCK_SIZE, &name)?;
            let b = Superblock::parse(&raw, first * bs).map_err(|e| rename(e, &name))?;
            let fields: [(&str, u64, u64); 14] = [
                ("s_inodes_count", sb.s_inodes_count.into(), b.s_inodes_count.into()),
                ("s_blocks_count", sb.s_blocks_count, b.s_blocks_count),
                ("s_first_data_block", sb.s_first_data_block.into(), b.s_first_data_block.into()),
                ("s_log_block_size", sb.s_log_block_size.into(), b.s_log_block_size.into()),
                ("s_blocks_per_group", sb.s_blocks_per_group.into(), b.s_blocks_per_group.into()),
                ("s_inodes_per_group", sb.s_inodes_per_group.into(), b.s_inodes_per_group.into()),
                ("s_inode_size", sb.s_inode_size.into(), b.s_inode_size.into()),
                ("s_first_ino", sb.s_first_ino.into(), b.s_first_ino.into()),
                ("s_feature_compat", sb.features.compat.into(), b.features.compat.into()),
                ("s_feature_incompat", sb.features.incompat.into(), b.features.incompat.into()),
                ("s_feature_ro_compat", sb.features.ro_compat.into(), b.features.ro_compat.into()),
                ("s_reserved_gdt_blocks", sb.s_reserved_gdt_blocks.into(), b.s_reserved_gdt_blocks.into()),
                ("s_desc_size", sb.s_desc_size.into(), b.s_desc_size.into()),
                ("s_block_group_nr", g.min(0xFFFF), b.s_block_group_nr.into()),
            ];
            for (field, want, got) in fields {
                if want != got {
                    return Err(Error::corrupt(
                        &name,
                        Some(first * bs),
                        format!("{field} is {got}, the primary says {want}"),
                    ));
                }
            }
            if b.s_uuid != sb.s_uuid || b.s_hash_seed != sb.s_hash_seed {
                return Err(Error::corrupt(
                    &name,
                    Some(first * bs),
                    "s_uuid or s_hash_seed differs from the primary superblock",
                ));
            }
            checked += 1;
        }
        let ds = sb.desc_size();
        let dpb = sb.descs_per_block();
        for (i, copies) in self.gdt_locations().iter().enumerate() {
            for &(g, block) in &copies[1..] {
                let raw = self.reader().read_vec(
                    block * bs,
                    bs as usize,
                    &format!("ext4 group descriptor table backup in group {g}"),
                )?;
                for k in 0..dpb {
                    let index = i as u64 * dpb + k;
                    let Some(primary) = self.groups.get(index as usize) else {
                        break;
                    };
                    let at = (k * ds) as usize;
                    let off = block * bs + at as u64;
                    let dname = format!("ext4 group descriptor {index} backup in group {g}");
                    let d = GroupDesc::parse(sb, index as u32, &raw[at..at + ds as usize], off)
                        .map_err(|e| rename(e, &dname))?;
                    let here = (d.bg_block_bitmap, d.bg_inode_bitmap, d.bg_inode_table);
                    let there = (primary.bg_block_bitmap, primary.bg_inode_bitmap, primary.bg_inode_table);
                    if here != there {
                        return Err(Error::corrupt(
                            &dname,
                            Some(off),
                            format!("bitmaps/inode table at {here:?}, the primary says {there:?}"),
                        ));
                    }
                }
            }
        }
        Ok(checked)
    }
}

/// Names the backup copy in an error raised by the primary's parser.
fn rename(e: Error, name: &str) -> Error {
    match e {
        Error::Corrupt { mut at, what } => {
            at.structure = name.to_string();
            Error::Corrupt { at, what }
        }
        Error::Unsupported { mut at, what } => {
            at.structure = name.to_string();
            Error::Unsupported { at, what }
        }
        other => other,
    }
}
