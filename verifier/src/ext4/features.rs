//! The superblock's three feature sets, decoded by the names e2fsprogs uses.

use serde::{Serialize, Serializer};

/// `s_feature_compat`, `s_feature_incompat` and `s_feature_ro_compat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    pub compat: u32,
    pub incompat: u32,
    pub ro_compat: u32,
}

const COMPAT: &[(u32, &str)] = &[
    (0x1, "dir_prealloc"),
    (0x2, "imagic_inodes"),
    (0x4, "has_journal"),
    (0x8, "ext_attr"),
    (0x10, "resize_inode"),
    (0x20, "dir_index"),
    (0x40, "lazy_bg"),
    (0x80, "snapshot_bitmap"),
    (0x200, "sparse_super2"),
    (0x400, "fast_commit"),
    (0x800, "stable_inodes"),
    (0x1000, "orphan_file"),
];

const INCOMPAT: &[(u32, &str)] = &[
    (0x1, "compression"),
    (0x2, "filetype"),
    (0x4, "needs_recovery"),
    (0x8, "journal_dev"),
    (0x10, "meta_bg"),
    (0x40, "extent"),
    (0x80, "64bit"),
    (0x100, "mmp"),
    (0x200, "flex_bg"),
    (0x400, "ea_inode"),
    (0x1000, "dirdata"),
    (0x2000, "metadata_csum_seed"),
    (0x4000, "large_dir"),
    (0x8000, "inline_data"),
    (0x10000, "encrypt"),
    (0x20000, "casefold"),
];

const RO_COMPAT: &[(u32, &str)] = &[
    (0x1, "sparse_super"),
    (0x2, "large_file"),
    (0x4, "btree_dir"),
    (0x8, "huge_file"),
    (0x10, "uninit_bg"),
    (0x20, "dir_nlink"),
    (0x40, "extra_isize"),
    (0x80, "snapshot"),
    (0x100, "quota"),
    (0x200, "bigalloc"),
    (0x400, "metadata_csum"),
    (0x800, "replica"),
    (0x1000, "read-only"),
    (0x2000, "project"),
    (0x4000, "shared_blocks"),
    (0x8000, "verity"),
    (0x10000, "orphan_present"),
];

/// Names of the bits set in `mask`, bit by bit upwards; bits without a name are written as
/// e2fsprogs writes them (`FEATURE_C12`).
pub(crate) fn names(mask: u32, table: &[(u32, &str)], letter: char, out: &mut Vec<String>) {
    for bit in 0..32 {
        let m = 1u32 << bit;
        if mask & m != 0 {
            match table.iter().find(|(v, _)| *v == m) {
                Some((_, n)) => out.push((*n).to_string()),
                None => out.push(format!("FEATURE_{letter}{bit}")),
            }
        }
    }
}

impl Features {
    /// All feature names in dumpe2fs order: compat, incompat, ro_compat, each by bit.
    pub fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        names(self.compat, COMPAT, 'C', &mut out);
        names(self.incompat, INCOMPAT, 'I', &mut out);
        names(self.ro_compat, RO_COMPAT, 'R', &mut out);
        out
    }
    pub fn has_journal(&self) -> bool {
        self.compat & 0x4 != 0
    }
    pub fn ext_attr(&self) -> bool {
        self.compat & 0x8 != 0
    }
    pub fn resize_inode(&self) -> bool {
        self.compat & 0x10 != 0
    }
    pub fn sparse_super2(&self) -> bool {
        self.compat & 0x200 != 0
    }
    pub fn filetype(&self) -> bool {
        self.incompat & 0x2 != 0
    }
    pub fn needs_recovery(&self) -> bool {
        self.incompat & 0x4 != 0
    }
    pub fn meta_bg(&self) -> bool {
        self.incompat & 0x10 != 0
    }
    pub fn extent(&self) -> bool {
        self.incompat & 0x40 != 0
    }
    pub fn is_64bit(&self) -> bool {
        self.incompat & 0x80 != 0
    }
    pub fn flex_bg(&self) -> bool {
        self.incompat & 0x200 != 0
    }
    pub fn metadata_csum_seed(&self) -> bool {
        self.incompat & 0x2000 != 0
    }
    pub fn large_dir(&self) -> bool {
        self.incompat & 0x4000 != 0
    }
    pub fn inline_data(&self) -> bool {
        self.incompat & 0x8000 != 0
    }
    pub fn sparse_super(&self) -> bool {
        self.ro_compat & 0x1 != 0
    }
    pub fn huge_file(&self) -> bool {
        self.ro_compat & 0x8 != 0
    }
    pub fn gdt_csum(&self) -> bool {
        self.ro_compat & 0x10 != 0
    }
    pub fn bigalloc(&self) -> bool {
        self.ro_compat & 0x200 != 0
    }
    pub fn has_metadata_csum(&self) -> bool {
        self.ro_compat & 0x400 != 0
    }
}

impl Serialize for Features {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.names().serialize(s)
    }
}
