//! reprodisk's ID rule, implemented from ARCHITECTURE.md "Identifiers" (not shared with the
//! builder, so a builder bug shows up as a lint instead of being mirrored).

use crate::guid::{Guid, g};
use sha2::{Digest, Sha256};

/// GPT partition 1 in every GPT layout (seed).
pub const SEED_PARTITION_1: Guid = g("1C06F03B-704E-4657-B9CD-681A087A2FDC");
/// GPT partition 2 when it is not the root partition (seed).
pub const SEED_PARTITION_2: Guid = g("970C694F-AFD0-4B99-B750-CDB7A329AB6F");
/// The disk GUID sgdisk really writes for the seed's 31-digit `--disk-guid` string.
pub const DISK_GUID: Guid = g("97FD5997-F390-0B4A-A3F8-D106C1723AEA");
/// The seed's default `rootGPUID` (and so `rootFSUID`).
pub const DEFAULT_ROOT_GPUID: Guid = g("F222513B-DED1-49FA-B591-20CE86A2FE7F");
/// The malformed string the seed passes to sgdisk (31 hex digits).
pub const SEED_DISK_GUID_STRING: &str = "97FD5997-D90B-4AA3-8D16-C1723AEA73C";

/// `derive(domain, anchor)`: the first 16 bytes of SHA-256 over `reprodisk:` + domain + NUL
/// + the anchor's 16 bytes in RFC 9562 (text) order.
pub fn derive(domain: &str, anchor: Guid) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(b"reprodisk:");
    h.update(domain.as_bytes());
    h.update([0u8]);
    h.update(anchor.as_bytes());
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// [`derive`] used as a GUID: version nibble 8, variant bits `10` (RFC 9562 version 8).
pub fn derive_guid(domain: &str, anchor: Guid) -> Guid {
    let mut b = derive(domain, anchor);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    Guid(b)
}

/// The MBR disk signature: the first 4 bytes little-endian; a zero result uses bytes 4..8.
pub fn mbr_disk_signature(root_gpuid: Guid) -> u32 {
    let d = derive("mbr-disk-signature", root_gpuid);
    let first = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
    if first != 0 { first } else { u32::from_le_bytes([d[4], d[5], d[6], d[7]]) }
}

/// The FAT volume ID of partition `n` (1-based).
pub fn fat_volume_id(n: u32, root_gpuid: Guid) -> u32 {
    let d = derive(&format!("fat-volume-id:{n}"), root_gpuid);
    u32::from_le_bytes([d[0], d[1], d[2], d[3]])
}

/// The ext4 directory hash seed (raw 16 bytes, not a versioned UUID).
pub fn ext4_hash_seed(root_fsuid: Guid) -> [u8; 16] {
    derive("ext4-hash-seed", root_fsuid)
}

/// The seven layouts of `partitionTableType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum LayoutName {
    #[serde(rename = "legacy")]
    Legacy,
    #[serde(rename = "legacy+boot")]
    LegacyBoot,
    #[serde(rename = "legacy+gpt")]
    LegacyGpt,
    #[serde(rename = "efi")]
    Efi,
    #[serde(rename = "efixbootldr")]
    Efixbootldr,
    #[serde(rename = "hybrid")]
    Hybrid,
    #[serde(rename = "none")]
    None,
}

impl LayoutName {
    pub const ALL: [LayoutName; 7] = [
        LayoutName::Legacy,
        LayoutName::LegacyBoot,
        LayoutName::LegacyGpt,
        LayoutName::Efi,
        LayoutName::Efixbootldr,
        LayoutName::Hybrid,
        LayoutName::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LayoutName::Legacy => "legacy",
            LayoutName::LegacyBoot => "legacy+boot",
            LayoutName::LegacyGpt => "legacy+gpt",
            LayoutName::Efi => "efi",
            LayoutName::Efixbootldr => "efixbootldr",
            LayoutName::Hybrid => "hybrid",
            LayoutName::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<LayoutName> {
        LayoutName::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// The 1-based number of the root partition (the seed's `rootPartition`); `None` for
    /// the bare-filesystem layout.
    pub fn root_partition(self) -> Option<u32> {
        match self {
            LayoutName::Legacy => Some(1),
            LayoutName::LegacyBoot | LayoutName::LegacyGpt | LayoutName::Efi => Some(2),
            LayoutName::Efixbootldr | LayoutName::Hybrid => Some(3),
            LayoutName::None => None,
        }
    }

    pub fn table(self) -> crate::expect::TableKind {
        use crate::expect::TableKind;
        match self {
            LayoutName::Legacy | LayoutName::LegacyBoot => TableKind::Mbr,
            LayoutName::None => TableKind::None,
            _ => TableKind::Gpt,
        }
    }

    pub fn is_gpt(self) -> bool {
        self.table() == crate::expect::TableKind::Gpt
    }

    /// Without a spec, the GPT partition count tells the GUID rule apart: 2 partitions
    /// (legacy+gpt, efi) and 3 (efixbootldr, hybrid) give the same GUIDs.
    pub fn infer_gpt(partitions: usize) -> Option<LayoutName> {
        match partitions {
            2 => Some(LayoutName::Efi),
            3 => Some(LayoutName::Hybrid),
            _ => None,
        }
    }
}

/// The IDs an image of a layout must carry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExpectedIds {
    pub disk_guid: Option<Guid>,
    /// (1-based partition number, unique partition GUID), GPT layouts only.
    pub partition_guids: Vec<(u32, Guid)>,
    /// The MBR disk signature, MBR layouts only (a protective MBR may hold 0 or this).
    pub mbr_signature: Option<u32>,
}

/// The documented IDs of `layout`: partition 1 and a non-root partition 2 keep the seed's
/// GUIDs, the root partition gets `root_gpuid` on every layout (legacy+gpt included, the
/// one deliberate difference from the seed), the disk GUID is [`DISK_GUID`] unless
/// overridden.
pub fn expected_ids(layout: LayoutName, root_gpuid: Guid, disk_guid: Option<Guid>) -> ExpectedIds {
    let root = layout.root_partition();
    if !layout.is_gpt() {
        let mbr_signature = root.map(|_| mbr_disk_signature(root_gpuid));
        return ExpectedIds { disk_guid: None, partition_guids: Vec::new(), mbr_signature };
    }
    let root = root.unwrap_or(0);
    let partition_guids = (1..=root)
        .map(|i| {
            let g = if i == root {
                root_gpuid
            } else if i == 1 {
                SEED_PARTITION_1
            } else {
                SEED_PARTITION_2
            };
            (i, g)
        })
        .collect();
    ExpectedIds { disk_guid: Some(disk_guid.unwrap_or(DISK_GUID)), partition_guids, mbr_signature: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_are_the_documented_strings() {
        assert_eq!(SEED_PARTITION_1.to_string(), "1C06F03B-704E-4657-B9CD-681A087A2FDC");
        assert_eq!(SEED_PARTITION_2.to_string(), "970C694F-AFD0-4B99-B750-CDB7A329AB6F");
        assert_eq!(DISK_GUID.to_string(), "97FD5997-F390-0B4A-A3F8-D106C1723AEA");
        assert_eq!(DEFAULT_ROOT_GPUID.to_string(), "F222513B-DED1-49FA-B591-20CE86A2FE7F");
    }

    #[test]
    fn derive_guid_sets_version_8_and_the_rfc_variant() {
        // The digest itself is checked against sha256sum in tests/disk_lints.rs; here the
        // version 8 GUID built from it.
        let g = derive_guid("x", DEFAULT_ROOT_GPUID);
        assert_eq!(g.0[6] >> 4, 8);
        assert_eq!(g.0[8] >> 6, 0b10);
        let raw = derive("x", DEFAULT_ROOT_GPUID);
        assert_eq!(&g.0[..6], &raw[..6]);
        assert_eq!(g.0[6] & 0x0f, raw[6] & 0x0f);
        assert_eq!(g.0[8] & 0x3f, raw[8] & 0x3f);
        assert_eq!(&g.0[9..], &raw[9..]);
    }

    #[test]
    fn expected_ids_per_layout() {
        let r = DEFAULT_ROOT_GPUID;
        let p = |l| expected_ids(l, r, None).partition_guids;
        assert_eq!(p(LayoutName::LegacyGpt), vec![(1, SEED_PARTITION_1), (2, r)]);
        assert_eq!(p(LayoutName::Efi), vec![(1, SEED_PARTITION_1), (2, r)]);
        assert_eq!(p(LayoutName::Hybrid), vec![(1, SEED_PARTITION_1), (2, SEED_PARTITION_2), (3, r)]);
        assert_eq!(p(LayoutName::Efixbootldr), p(LayoutName::Hybrid));
        assert_eq!(expected_ids(LayoutName::Legacy, r, None).mbr_signature, Some(mbr_disk_signature(r)));
        assert_eq!(
            expected_ids(LayoutName::None, r, None),
            ExpectedIds { disk_guid: None, partition_guids: vec![], mbr_signature: None }
        );
    }
}
