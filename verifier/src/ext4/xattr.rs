//! Extended attributes: the in-inode area after `i_extra_isize` and the external xattr
//! block (`ext4_xattr_header`, magic 0xEA020000, with its checksum).

use super::Ext4;
use super::crc::crc32c_raw;
use super::inode::Inode;
use crate::bytes::{Le, ReadAt};
use crate::error::{Error, Result};
use serde::Serialize;

/// `h_magic` of an xattr block and of the in-inode xattr area.
pub const EXT4_XATTR_MAGIC: u32 = 0xEA02_0000;

/// One extended attribute with its full name (`user.foo`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Xattr {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

fn prefix(index: u8) -> Option<&'static [u8]> {
    Some(match index {
        0 => b"",
        1 => b"user.",
        2 => b"system.posix_acl_access",
        3 => b"system.posix_acl_default",
        4 => b"trusted.",
        6 => b"security.",
        7 => b"system.",
        8 => b"system.richacl",
        _ => return None,
    })
}

/// Parses the entries starting at `entries` in `area`; values are at `value_base + e_value_offs`.
fn parse_entries(
    area: &[u8],
    entries: usize,
    value_base: usize,
    name: &str,
    off: Option<u64>,
    out: &mut Vec<Xattr>,
) -> Result<()> {
    let b = Le(area);
    let mut pos = entries;
    loop {
        if pos + 4 > area.len() {
            return Err(Error::corrupt(name, off, format!("the entry list runs past the end at byte {pos}")));
        }
        if b.u32(pos) == 0 {
            return Ok(());
        }
        if pos + 16 > area.len() {
            return Err(Error::corrupt(name, off, format!("entry at byte {pos} is cut short")));
        }
        let e_name_len = usize::from(b.u8(pos));
        let e_name_index = b.u8(pos + 1);
        let e_value_offs = usize::from(b.u16(pos + 2));
        let e_value_inum = b.u32(pos + 4);
        let e_value_size = b.u32(pos + 8) as usize;
        let entry_len = (16 + e_name_len + 3) & !3;
        if pos + 16 + e_name_len > area.len() {
            return Err(Error::corrupt(
                name,
                off,
                format!("entry at byte {pos}: name of {e_name_len} bytes runs past the end"),
            ));
        }
        if e_value_inum != 0 {
            return Err(Error::unsupported(name, off, "values stored in separate inodes (ea_inode)"));
        }
        let Some(p) = prefix(e_name_index) else {
            return Err(Error::corrupt(
                name,
                off,
                format!("entry at byte {pos}: unknown e_name_index {e_name_index}"),
            ));
        };
        let vstart = value_base + e_value_offs;
        let value = area.get(vstart..vstart.saturating_add(e_value_size)).ok_or_else(|| {
            Error::corrupt(
                name,
                off,
                format!("entry at byte {pos}: value {e_value_offs}+{e_value_size} runs past the end"),
            )
        })?;
        let mut full = p.to_vec();
        full.extend_from_slice(b.bytes(pos + 16, e_name_len));
        out.push(Xattr { name: full, value: value.to_vec() });
        pos += entry_len;
    }
}

impl<R: ReadAt> Ext4<R> {
    /// Fails unless the `h_refcount` of the xattr block at `block` is `users`, the number
    /// of inodes whose `i_file_acl` names it (the block is shared by inodes with the same
    /// attributes and freed when the count drops to 0).
    pub(crate) fn check_xattr_refcount(&self, block: u64, users: u64) -> Result<()> {
        let name = format!("ext4 xattr block {block}");
        let raw = self.read_block(block, &name)?;
        let refcount = Le(&raw).u32(4);
        if u64::from(refcount) != users {
            let noun = if users == 1 { "inode names" } else { "inodes name" };
            return Err(Error::corrupt(
                name,
                Some(block * self.sb.block_size() + 4),
                format!("h_refcount is {refcount}, but {users} {noun} it"),
            ));
        }
        Ok(())
    }

    /// Every extended attribute of `inode`, in-inode ones first, then those of its xattr
    /// block, checking the block's magic, refcount and checksum.
    pub fn xattrs(&self, inode: &Inode) -> Result<Vec<Xattr>> {
        let mut out = Vec::new();
        let body = &inode.ibody;
        if body.len() >= 4 && Le(body).u32(0) == EXT4_XATTR_MAGIC {
            let name = format!("ext4 inode {} in-inode xattrs", inode.ino);
            parse_entries(body, 4, 4, &name, Some(inode.offset), &mut out)?;
        }
        if inode.i_file_acl != 0 {
            let block = inode.i_file_acl;
            let name = format!("ext4 xattr block {block} of inode {}", inode.ino);
            self.check_block(block, &name)?;
            let raw = self.read_block(block, &name)?;
            let off = Some(block * self.sb.block_size());
            let b = Le(&raw);
            if b.u32(0) != EXT4_XATTR_MAGIC {
                return Err(Error::corrupt(
                    name,
                    off,
                    format!("h_magic is {:#010x}, expected {EXT4_XATTR_MAGIC:#010x}", b.u32(0)),
                ));
            }
            if b.u32(8) != 1 {
                return Err(Error::corrupt(name, off, format!("h_blocks is {}, expected 1", b.u32(8))));
            }
            if self.sb.features.has_metadata_csum() {
                let stored = b.u32(0x10);
                let mut c = crc32c_raw(self.sb.csum_seed(), &block.to_le_bytes());
                c = crc32c_raw(c, &raw[..0x10]);
                c = crc32c_raw(c, &[0; 4]);
                c = crc32c_raw(c, &raw[0x14..]);
                if stored != c {
                    return Err(Error::corrupt(
                        name,
                        off,
                        format!("h_checksum mismatch: stored {stored:#010x}, computed {c:#010x}"),
                    ));
                }
            }
            parse_entries(&raw, 0x20, 0, &name, off, &mut out)?;
        }
        Ok(out)
    }
}
