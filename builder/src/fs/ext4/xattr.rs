//! Extended attributes: name-index prefixes, the in-inode area and the xattr block, with hashes.

use std::collections::BTreeMap;

use super::csum::{crc32c_raw, put_u16, put_u32};
use super::inode::{INODE_BYTES, XATTR_IBODY_OFFSET};

pub const XATTR_MAGIC: u32 = 0xEA02_0000;
const BS: usize = 4096;
/// The in-inode area: from the end of the extra fields to the end of the inode.
const IBODY_SPACE: usize = INODE_BYTES - XATTR_IBODY_OFFSET;

/// One attribute as stored: name index, name suffix, value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Attr {
    pub index: u8,
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

const PREFIXES: [(&[u8], u8); 4] = [(b"user.", 1), (b"trusted.", 4), (b"security.", 6), (b"system.", 7)];

/// Splits a full attribute name into ext4's name index and suffix.
fn split_name(full: &[u8]) -> (u8, &[u8]) {
    match full {
        b"system.posix_acl_access" => return (2, b""),
        b"system.posix_acl_default" => return (3, b""),
        _ => {}
    }
    for (p, idx) in PREFIXES {
        if let Some(rest) = full.strip_prefix(p) {
            return (idx, rest);
        }
    }
    (0, full)
}

/// Converts a POSIX ACL from the xattr interface format (version 2, 8-byte entries) to
/// ext4's on-disk format (version 1, 4-byte entries for the owner/group/mask/other tags).
/// A value that is not a well-formed ACL is stored as it is.
fn acl_to_disk(v: &[u8]) -> Vec<u8> {
    if v.len() < 4 || !(v.len() - 4).is_multiple_of(8) || v[..4] != 2u32.to_le_bytes() {
        return v.to_vec();
    }
    let mut out = 1u32.to_le_bytes().to_vec();
    for e in v[4..].chunks(8) {
        let tag = u16::from_le_bytes([e[0], e[1]]);
        out.extend_from_slice(&e[0..4]);
        // ACL_USER (2) and ACL_GROUP (8) carry an id; the others do not.
        if tag == 2 || tag == 8 {
            out.extend_from_slice(&e[4..8]);
        }
    }
    out
}

/// The attributes of one inode in on-disk order (index, name length, name).
pub fn attrs(xattrs: &BTreeMap<Vec<u8>, Vec<u8>>) -> Vec<Attr> {
    let mut v: Vec<Attr> = xattrs
        .iter()
        .map(|(k, val)| {
            let (index, name) = split_name(k);
            let value = if index == 2 || index == 3 { acl_to_disk(val) } else { val.clone() };
            Attr { index, name: name.to_vec(), value }
        })
        .collect();
    v.sort_by(|a, b| (a.index, a.name.len(), &a.name).cmp(&(b.index, b.name.len(), &b.name)));
    v
}

fn entry_len(a: &Attr) -> usize {
    (16 + a.name.len() + 3) & !3
}

fn value_len(a: &Attr) -> usize {
    (a.value.len() + 3) & !3
}

/// e2fsprogs's `ext2fs_ext_attr_hash_entry` (name bytes unsigned).
pub fn entry_hash(a: &Attr) -> u32 {
    let mut h: u32 = 0;
    for &c in &a.name {
        h = (h << 5) ^ (h >> 27) ^ c as u32;
    }
    let mut padded = a.value.clone();
    padded.resize(value_len(a), 0);
    for w in padded.chunks(4) {
        h = (h << 16) ^ (h >> 16) ^ u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
    }
    h
}

/// Where each attribute goes: the in-inode area takes attributes in order while they fit,
/// the rest go to the block.
pub struct Split {
    pub ibody: Vec<Attr>,
    pub block: Vec<Attr>,
}

pub fn split(all: Vec<Attr>) -> Result<Split, usize> {
    let mut used = 8; // magic + terminating zero entry
    let mut ibody = Vec::new();
    let mut block = Vec::new();
    for a in all {
        let need = entry_len(&a) + value_len(&a);
        if used + need <= IBODY_SPACE {
            used += need;
            ibody.push(a);
        } else {
            block.push(a);
        }
    }
    let block_need = 32 + 4 + block.iter().map(|a| entry_len(a) + value_len(a)).sum::<usize>();
    if !block.is_empty() && block_need > BS {
        return Err(block_need);
    }
    Ok(Split { ibody, block })
}

/// Writes entries at `entries_at` and values downward from `end`; value offsets are
/// relative to `base`. Returns the entry hashes.
fn write_entries(b: &mut [u8], attrs: &[Attr], entries_at: usize, end: usize, base: usize) -> Vec<u32> {
    let mut pos = entries_at;
    let mut vend = end;
    let mut hashes = Vec::new();
    for a in attrs {
        let offs = if a.value.is_empty() {
            0
        } else {
            vend -= value_len(a);
            b[vend..vend + a.value.len()].copy_from_slice(&a.value);
            vend - base
        };
        let h = entry_hash(a);
        b[pos] = a.name.len() as u8;
        b[pos + 1] = a.index;
        put_u16(b, pos + 2, offs as u16);
        put_u32(b, pos + 4, 0); // e_value_inum
        put_u32(b, pos + 8, a.value.len() as u32);
        put_u32(b, pos + 12, h);
        b[pos + 16..pos + 16 + a.name.len()].copy_from_slice(&a.name);
        pos += entry_len(a);
        hashes.push(h);
    }
    hashes
}

/// The in-inode area (to be copied at [`XATTR_IBODY_OFFSET`]), empty when there is nothing.
pub fn ibody(attrs: &[Attr]) -> Vec<u8> {
    if attrs.is_empty() {
        return Vec::new();
    }
    let mut b = vec![0u8; IBODY_SPACE];
    put_u32(&mut b, 0, XATTR_MAGIC);
    write_entries(&mut b, attrs, 4, IBODY_SPACE, 4);
    b
}

/// An xattr block stored at physical block `blocknr`, with its hash and checksum.
pub fn block(attrs: &[Attr], blocknr: u64, fs_seed: u32) -> Vec<u8> {
    let mut b = vec![0u8; BS];
    put_u32(&mut b, 0x0, XATTR_MAGIC);
    put_u32(&mut b, 0x4, 1); // h_refcount
    put_u32(&mut b, 0x8, 1); // h_blocks
    let hashes = write_entries(&mut b, attrs, 32, BS, 0);
    let mut h: u32 = 0;
    for eh in hashes {
        if eh == 0 {
            h = 0;
            break;
        }
        h = (h << 16) ^ (h >> 16) ^ eh;
    }
    put_u32(&mut b, 0xC, h);
    let c = crc32c_raw(crc32c_raw(fs_seed, &blocknr.to_le_bytes()), &b);
    put_u32(&mut b, 0x10, c);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_indexes_and_acls_shrink() {
        assert_eq!(split_name(b"user.a"), (1, &b"a"[..]));
        assert_eq!(split_name(b"security.capability"), (6, &b"capability"[..]));
        assert_eq!(split_name(b"system.posix_acl_access"), (2, &b""[..]));
        // user::rw-, group::r--, other::r-- in xattr format -> 4 + 3*4 bytes on disk.
        let mut v = 2u32.to_le_bytes().to_vec();
        for (tag, perm) in [(1u16, 6u16), (4, 4), (0x20, 4)] {
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&perm.to_le_bytes());
            v.extend_from_slice(&u32::MAX.to_le_bytes());
        }
        assert_eq!(acl_to_disk(&v).len(), 16);
    }
}
