//! Every identifier an image carries: the seed's fixed GUIDs and `derive(domain, anchor)`.
//!
//! See ARCHITECTURE.md, "Identifiers". A [`Guid`] is kept in RFC 9562 byte order (the order
//! the text form is written in); GPT stores the first three fields little-endian, which
//! [`Guid::to_gpt_bytes`] does. When the spec says `deterministic = false`, [`IdSource::Random`]
//! draws IDs from the operating system's RNG instead, and only then.

use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// A GUID/UUID in RFC 9562 (big-endian) byte order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

/// Why a GUID string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not a GUID: {why} (expected 32 hex digits grouped 8-4-4-4-12, e.g. F222513B-DED1-49FA-B591-20CE86A2FE7F)"
)]
pub struct GuidError {
    pub input: String,
    pub why: &'static str,
}

impl FromStr for Guid {
    type Err = GuidError;

    /// Strict parsing: exactly 8-4-4-4-12 hex digits. sgdisk accepts malformed strings (see
    /// the seed's 31-digit disk GUID); we refuse them so a typo cannot change an ID silently.
    fn from_str(s: &str) -> Result<Self, GuidError> {
        let err = |why| GuidError { input: s.to_string(), why };
        let groups: Vec<&str> = s.split('-').collect();
        if groups.len() != 5 {
            return Err(err("it needs 5 groups separated by `-`"));
        }
        if groups.iter().map(|g| g.len()).ne([8, 4, 4, 4, 12]) {
            return Err(err("its groups must have 8, 4, 4, 4 and 12 hex digits"));
        }
        let hex: String = groups.concat();
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .map_err(|_| err("it holds a character that is not a hex digit"))?;
        }
        Ok(Guid(out))
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
            b[0],
            b[1],
            b[2],
            b[3],
            b[4],
            b[5],
            b[6],
            b[7],
            b[8],
            b[9],
            b[10],
            b[11],
            b[12],
            b[13],
            b[14],
            b[15]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

impl serde::Serialize for Guid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Guid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Guid {
    /// The on-disk GPT byte order: time_low, time_mid and time_hi little-endian, the rest as is.
    pub fn to_gpt_bytes(self) -> [u8; 16] {
        let mut b = self.0;
        b[0..4].reverse();
        b[4..6].reverse();
        b[6..8].reverse();
        b
    }

    /// Inverse of [`Guid::to_gpt_bytes`].
    pub fn from_gpt_bytes(mut b: [u8; 16]) -> Guid {
        b[0..4].reverse();
        b[4..6].reverse();
        b[6..8].reverse();
        Guid(b)
    }

    /// Sets the RFC 9562 version nibble to 8 ("custom") and the variant bits to `10`.
    fn into_v8(mut self) -> Guid {
        self.0[6] = (self.0[6] & 0x0f) | 0x80;
        self.0[8] = (self.0[8] & 0x3f) | 0x80;
        self
    }
}

/// Builds one of the constants below; a unit test checks each against its text form.
const fn guid(bytes: [u8; 16]) -> Guid {
    Guid(bytes)
}

/// The seed's GUID for GPT partition 1 (bios_grub on legacy+gpt, the ESP elsewhere).
pub const SEED_PARTITION1_GUID: Guid =
    guid([0x1C, 0x06, 0xF0, 0x3B, 0x70, 0x4E, 0x46, 0x57, 0xB9, 0xCD, 0x68, 0x1A, 0x08, 0x7A, 0x2F, 0xDC]);
/// The seed's GUID for GPT partition 2 when it is not the root partition.
pub const SEED_PARTITION2_GUID: Guid =
    guid([0x97, 0x0C, 0x69, 0x4F, 0xAF, 0xD0, 0x4B, 0x99, 0xB7, 0x50, 0xCD, 0xB7, 0xA3, 0x29, 0xAB, 0x6F]);
/// The seed's default `rootGPUID` (and so `rootFSUID`).
pub const SEED_ROOT_GPUID: Guid =
    guid([0xF2, 0x22, 0x51, 0x3B, 0xDE, 0xD1, 0x49, 0xFA, 0xB5, 0x91, 0x20, 0xCE, 0x86, 0xA2, 0xFE, 0x7F]);
/// The disk GUID sgdisk really writes when given the seed's 31-digit
/// `97FD5997-D90B-4AA3-8D16-C1723AEA73C` (measured with gdisk 1.0.9).
pub const SEED_DISK_GUID: Guid =
    guid([0x97, 0xFD, 0x59, 0x97, 0xF3, 0x90, 0x0B, 0x4A, 0xA3, 0xF8, 0xD1, 0x06, 0xC1, 0x72, 0x3A, 0xEA]);
/// The malformed disk GUID string the seed passes to sgdisk, kept for messages and lints.
pub const SEED_DISK_GUID_TEXT: &str = "97FD5997-D90B-4AA3-8D16-C1723AEA73C";

/// `derive(domain, anchor)`: the first 16 bytes of SHA-256 over
/// `"reprodisk:" + domain + "\0" + anchor` (anchor in RFC 9562 byte order).
pub fn derive(domain: &str, anchor: Guid) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(b"reprodisk:");
    h.update(domain.as_bytes());
    h.update([0u8]);
    h.update(anchor.0);
    let digest = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// [`derive`] used as a GUID: RFC 9562 version 8, variant `10`.
pub fn derive_guid(domain: &str, anchor: Guid) -> Guid {
    Guid(derive(domain, anchor)).into_v8()
}

/// The first 4 bytes of `derive(domain, anchor)` little-endian; if they are zero, bytes 4..8.
fn derive_u32_nonzero(domain: &str, anchor: Guid) -> u32 {
    let d = derive(domain, anchor);
    let first = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
    if first != 0 { first } else { u32::from_le_bytes([d[4], d[5], d[6], d[7]]) }
}

/// Where IDs come from: the documented derivation, or the OS RNG when `deterministic = false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSource {
    Deterministic,
    Random,
}

/// The RNG failed; only possible with `deterministic = false`.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(String);

fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| RandomError(e.to_string()))?;
    Ok(b)
}

impl IdSource {
    pub fn from_deterministic(deterministic: bool) -> Self {
        if deterministic { IdSource::Deterministic } else { IdSource::Random }
    }

    /// `fixed` when deterministic, else a random version 4 GUID.
    pub fn guid(self, fixed: Guid) -> Result<Guid, RandomError> {
        match self {
            IdSource::Deterministic => Ok(fixed),
            IdSource::Random => {
                let mut g = Guid(random_bytes()?);
                g.0[6] = (g.0[6] & 0x0f) | 0x40;
                g.0[8] = (g.0[8] & 0x3f) | 0x80;
                Ok(g)
            }
        }
    }

    /// The MBR disk signature: `derive("mbr-disk-signature", rootGPUID)` or random.
    pub fn mbr_disk_signature(self, root_gpuid: Guid) -> Result<u32, RandomError> {
        match self {
            IdSource::Deterministic => Ok(derive_u32_nonzero("mbr-disk-signature", root_gpuid)),
            IdSource::Random => loop {
                let v = u32::from_le_bytes(random_bytes()?);
                if v != 0 {
                    return Ok(v);
                }
            },
        }
    }

    /// The FAT volume ID of partition `n`: `derive("fat-volume-id:N", rootGPUID)` or random.
    pub fn fat_volume_id(self, partition: u32, root_gpuid: Guid) -> Result<u32, RandomError> {
        match self {
            IdSource::Deterministic => {
                let d = derive(&format!("fat-volume-id:{partition}"), root_gpuid);
                Ok(u32::from_le_bytes([d[0], d[1], d[2], d[3]]))
            }
            IdSource::Random => Ok(u32::from_le_bytes(random_bytes()?)),
        }
    }

    /// The ext4 directory hash seed: `derive("ext4-hash-seed", rootFSUID)` raw, or random.
    pub fn ext4_hash_seed(self, root_fsuid: Guid) -> Result<[u8; 16], RandomError> {
        match self {
            IdSource::Deterministic => Ok(derive("ext4-hash-seed", root_fsuid)),
            IdSource::Random => random_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_their_text() {
        for (g, s) in [
            (SEED_PARTITION1_GUID, "1C06F03B-704E-4657-B9CD-681A087A2FDC"),
            (SEED_PARTITION2_GUID, "970C694F-AFD0-4B99-B750-CDB7A329AB6F"),
            (SEED_ROOT_GPUID, "F222513B-DED1-49FA-B591-20CE86A2FE7F"),
            (SEED_DISK_GUID, "97FD5997-F390-0B4A-A3F8-D106C1723AEA"),
        ] {
            assert_eq!(g.to_string(), s);
            assert_eq!(s.parse::<Guid>(), Ok(g));
        }
    }

    #[test]
    fn gpt_byte_order_is_mixed_endian() {
        // The on-disk bytes of the seed's disk GUID as sgdisk wrote them (xxd of LBA 1 at 0x38).
        let on_disk =
            [0x97, 0x59, 0xfd, 0x97, 0x90, 0xf3, 0x4a, 0x0b, 0xa3, 0xf8, 0xd1, 0x06, 0xc1, 0x72, 0x3a, 0xea];
        assert_eq!(SEED_DISK_GUID.to_gpt_bytes(), on_disk);
        assert_eq!(Guid::from_gpt_bytes(on_disk), SEED_DISK_GUID);
    }

    #[test]
    fn malformed_guids_are_rejected() {
        for s in [
            SEED_DISK_GUID_TEXT,
            "",
            "F222513B-DED1-49FA-B591-20CE86A2FE7",
            "G222513B-DED1-49FA-B591-20CE86A2FE7F",
            "F222513BDED149FAB59120CE86A2FE7F",
        ] {
            assert!(s.parse::<Guid>().is_err(), "{s}");
        }
        assert_eq!("f222513b-ded1-49fa-b591-20ce86a2fe7f".parse::<Guid>(), Ok(SEED_ROOT_GPUID));
    }

    #[test]
    fn derive_is_pinned() {
        // sha256(b"reprodisk:mbr-disk-signature\0" + anchor) computed independently with
        // `printf 'reprodisk:mbr-disk-signature\0' | cat - anchor.bin | sha256sum`.
        assert_eq!(hex(&derive("mbr-disk-signature", SEED_ROOT_GPUID)), DERIVE_MBR);
        assert_eq!(hex(&derive("ext4-hash-seed", SEED_ROOT_GPUID)), DERIVE_HASH_SEED);
        assert_eq!(hex(&derive("fat-volume-id:1", SEED_ROOT_GPUID)), DERIVE_FAT1);
        let g = derive_guid("mbr-disk-signature", SEED_ROOT_GPUID);
        assert_eq!(g.0[6] >> 4, 8);
        assert_eq!(g.0[8] >> 6, 0b10);
        let d = derive("mbr-disk-signature", SEED_ROOT_GPUID);
        assert_eq!(
            IdSource::Deterministic.mbr_disk_signature(SEED_ROOT_GPUID).unwrap(),
            u32::from_le_bytes([d[0], d[1], d[2], d[3]])
        );
    }

    #[test]
    fn random_ids_differ() {
        let a = IdSource::Random.guid(SEED_ROOT_GPUID).unwrap();
        let b = IdSource::Random.guid(SEED_ROOT_GPUID).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, SEED_ROOT_GPUID);
        assert_eq!(IdSource::Deterministic.guid(SEED_ROOT_GPUID).unwrap(), SEED_ROOT_GPUID);
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    const DERIVE_MBR: &str = "fb85f2a0132255b75e6945f07cef3798";
    const DERIVE_HASH_SEED: &str = "9233f43486bced2872cbd5a52b80b9a3";
    const DERIVE_FAT1: &str = "e782f6493323f5416ae9077533daff02";
}
