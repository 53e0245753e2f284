//! GUIDs: the UEFI mixed-endian on-disk form, strict parsing, canonical formatting and the
//! table of partition type GUIDs the verifier names.
//!
//! UEFI spec, appendix A: a GUID is `Data1` (u32), `Data2` (u16), `Data3` (u16) stored
//! little-endian, then `Data4` (8 bytes) stored as is. Its text form `XXXXXXXX-XXXX-XXXX-XXXX-
//! XXXXXXXXXXXX` prints the three integers most significant digit first. [`Guid`] keeps the
//! 16 bytes in that text (RFC 9562 big-endian) order; [`Guid::from_disk`] and
//! [`Guid::to_disk`] convert.

use std::fmt;
use std::str::FromStr;

/// A GUID (or UUID) held in RFC 9562 byte order: the order its text form is written in.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Guid(pub [u8; 16]);

/// Why a GUID string was rejected. Every variant says what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuidParseError {
    #[error("guid `{text}` has {digits} hex digits, a guid has 32 (8-4-4-4-12)")]
    DigitCount { text: String, digits: usize },
    #[error("guid `{text}`: group {group} has {digits} hex digits, expected {expected} (8-4-4-4-12)")]
    GroupLength { text: String, group: usize, digits: usize, expected: usize },
    #[error("guid `{text}` has {groups} hyphen-separated groups, expected 5 (8-4-4-4-12)")]
    GroupCount { text: String, groups: usize },
    #[error("guid `{text}`: character {ch:?} at position {position} is not a hex digit")]
    BadCharacter { text: String, ch: char, position: usize },
}

const GROUP_LENGTHS: [usize; 5] = [8, 4, 4, 4, 12];

impl Guid {
    pub const NIL: Guid = Guid([0; 16]);

    /// Converts the 16 bytes as stored in GPT headers and entries (mixed-endian).
    pub const fn from_disk(b: [u8; 16]) -> Guid {
        Guid([
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
            b[15],
        ])
    }

    /// The 16 bytes as GPT stores them (mixed-endian).
    pub const fn to_disk(&self) -> [u8; 16] {
        // The swap is its own inverse.
        Guid::from_disk(self.0).0
    }

    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }

    /// Parses the canonical text form `8-4-4-4-12`, either case. Nothing else is accepted:
    /// no braces, no missing or extra digits. sgdisk, for one, quietly accepts a 31-digit
    /// string and writes a different GUID, so a wrong string must be an error here.
    pub fn parse(text: &str) -> Result<Guid, GuidParseError> {
        let owned = || text.to_string();
        for (position, ch) in text.chars().enumerate() {
            if ch != '-' && !ch.is_ascii_hexdigit() {
                return Err(GuidParseError::BadCharacter { text: owned(), ch, position });
            }
        }
        let digits = text.chars().filter(|c| c.is_ascii_hexdigit()).count();
        if digits != 32 {
            return Err(GuidParseError::DigitCount { text: owned(), digits });
        }
        let groups: Vec<&str> = text.split('-').collect();
        if groups.len() != 5 {
            return Err(GuidParseError::GroupCount { text: owned(), groups: groups.len() });
        }
        for (i, (g, want)) in groups.iter().zip(GROUP_LENGTHS).enumerate() {
            if g.len() != want {
                return Err(GuidParseError::GroupLength {
                    text: owned(),
                    group: i + 1,
                    digits: g.len(),
                    expected: want,
                });
            }
        }
        let hex: Vec<u8> = text.bytes().filter(|b| *b != b'-').collect();
        let mut out = [0u8; 16];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            out[i] = (nibble(pair[0]) << 4) | nibble(pair[1]);
        }
        Ok(Guid(out))
    }

    /// The name of a known partition type GUID.
    pub fn type_name(&self) -> Option<&'static str> {
        known_type(self).map(|k| k.name)
    }
}

fn nibble(c: u8) -> u8 {
    // Only called on bytes already checked with `is_ascii_hexdigit`, so the 0 never shows.
    char::from(c).to_digit(16).unwrap_or(0) as u8
}

impl FromStr for Guid {
    type Err = GuidParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Guid::parse(s)
    }
}

impl fmt::Display for Guid {
    /// Uppercase canonical form, as sgdisk prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
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
        Guid::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A partition type GUID with the name sgdisk gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownType {
    pub guid: Guid,
    /// The name as `sgdisk -i` prints it, so reports read like the reference tool's.
    pub name: &'static str,
}

/// A const parser for GUID literals in source code. It does not validate (a `const fn`
/// cannot report errors usefully): every literal is checked against [`Guid::parse`] in tests.
pub const fn g(text: &str) -> Guid {
    let b = text.as_bytes();
    let mut out = [0u8; 16];
    let mut i = 0;
    let mut j = 0;
    while i < b.len() {
        if b[i] != b'-' {
            let v = match b[i] {
                b'0'..=b'9' => b[i] - b'0',
                b'A'..=b'F' => b[i] - b'A' + 10,
                _ => b[i] - b'a' + 10,
            };
            out[j / 2] |= if j % 2 == 0 { v << 4 } else { v };
            j += 1;
        }
        i += 1;
    }
    Guid(out)
}

pub const ESP: Guid = g("C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
pub const BIOS_BOOT: Guid = g("21686148-6449-6E6F-744E-656564454649");
pub const XBOOTLDR: Guid = g("BC13C2FF-59E6-4262-A352-B275FD6F7172");
pub const LINUX_DATA: Guid = g("0FC63DAF-8483-4772-8E79-3D69D8477DE4");
pub const LINUX_ROOT_X86_64: Guid = g("4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709");
pub const LINUX_ROOT_AARCH64: Guid = g("B921B045-1DF0-41C3-AF44-4C6F280D3FAE");
pub const LINUX_SWAP: Guid = g("0657FD6D-A4AB-43C4-84E5-0933C84B4F4F");
pub const MICROSOFT_BASIC_DATA: Guid = g("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7");

/// Partition type GUIDs the verifier names (UEFI spec table 5.7, the UAPI Discoverable
/// Partitions Specification, and Microsoft's types), named as sgdisk names them.
pub const KNOWN_TYPES: &[KnownType] = &[
    KnownType { guid: ESP, name: "EFI system partition" },
    KnownType { guid: BIOS_BOOT, name: "BIOS boot partition" },
    KnownType { guid: XBOOTLDR, name: "XBOOTLDR partition" },
    KnownType { guid: LINUX_DATA, name: "Linux filesystem" },
    KnownType { guid: LINUX_ROOT_X86_64, name: "Linux x86-64 root (/)" },
    KnownType { guid: LINUX_ROOT_AARCH64, name: "Linux ARM64 root (/)" },
    KnownType { guid: g("44479540-F297-41B2-9AF7-D131D5F0458A"), name: "Linux x86 root (/)" },
    KnownType { guid: g("69DAD710-2CE4-4E3C-B16C-21A1D49ABED3"), name: "Linux ARM32 root (/)" },
    KnownType { guid: LINUX_SWAP, name: "Linux swap" },
    KnownType { guid: g("933AC7E1-2EB4-4F13-B844-0E14E2AEF915"), name: "Linux /home" },
    KnownType { guid: g("3B8F8425-20E0-4F3B-907F-1A25A76F98E8"), name: "Linux /srv" },
    KnownType { guid: g("4D21B016-B534-45C2-A9FB-5C16E091FD2D"), name: "Linux /var" },
    KnownType { guid: g("7EC6F557-3BC5-4ACA-B293-16EF5DF639D1"), name: "Linux /var/tmp" },
    KnownType { guid: g("E6D6D379-F507-44C2-A23C-238F2A3DF928"), name: "Linux LVM" },
    KnownType { guid: g("A19D880F-05FC-4D3B-A006-743F0F84911E"), name: "Linux RAID" },
    KnownType { guid: g("CA7D7CCB-63ED-4C53-861C-1742536059CC"), name: "Linux LUKS" },
    KnownType { guid: g("8DA63339-0007-60C0-C436-083AC8230908"), name: "Linux reserved" },
    KnownType { guid: MICROSOFT_BASIC_DATA, name: "Microsoft basic data" },
    KnownType { guid: g("E3C9E316-0B5C-4DB8-817D-F92DF00215AE"), name: "Microsoft reserved" },
    KnownType { guid: g("DE94BBA4-06D1-4D40-A16A-BFD50179D6AC"), name: "Windows RE" },
];

/// The entry of [`KNOWN_TYPES`] for `guid`, if any.
pub fn known_type(guid: &Guid) -> Option<&'static KnownType> {
    KNOWN_TYPES.iter().find(|k| k.guid == *guid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_order_is_mixed_endian() {
        // UEFI spec example: the ESP GUID's first bytes on disk are 28 73 2A C1.
        let disk = ESP.to_disk();
        assert_eq!(&disk[..8], &[0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11]);
        assert_eq!(&disk[8..], &[0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B]);
        assert_eq!(Guid::from_disk(disk), ESP);
    }

    #[test]
    fn const_literals_match_the_runtime_parser() {
        for k in KNOWN_TYPES {
            assert_eq!(Guid::parse(&k.guid.to_string()), Ok(k.guid), "{}", k.name);
        }
    }

    #[test]
    fn formats_uppercase_and_parses_lowercase() {
        let x = Guid::parse("bc13c2ff-59e6-4262-a352-b275fd6f7172").unwrap();
        assert_eq!(x, XBOOTLDR);
        assert_eq!(x.to_string(), "BC13C2FF-59E6-4262-A352-B275FD6F7172");
    }

    #[test]
    fn the_seeds_31_digit_disk_guid_is_rejected() {
        let err = Guid::parse("97FD5997-D90B-4AA3-8D16-C1723AEA73C").unwrap_err();
        assert_eq!(
            err,
            GuidParseError::DigitCount { text: "97FD5997-D90B-4AA3-8D16-C1723AEA73C".into(), digits: 31 }
        );
        assert!(err.to_string().contains("has 31 hex digits"), "{err}");
    }

    #[test]
    fn malformed_strings_say_what_is_wrong() {
        assert!(matches!(
            Guid::parse("97FD5997D-90B-4AA3-8D16-C1723AEA73C0"),
            Err(GuidParseError::GroupLength { group: 1, digits: 9, expected: 8, .. })
        ));
        assert!(matches!(
            Guid::parse("{97FD5997-D90B-4AA3-8D16-C1723AEA73C0}"),
            Err(GuidParseError::BadCharacter { ch: '{', position: 0, .. })
        ));
        assert!(matches!(
            Guid::parse("97FD5997D90B4AA38D16C1723AEA73C0"),
            Err(GuidParseError::GroupCount { groups: 1, .. })
        ));
        assert!(matches!(
            Guid::parse("97FD5997-D90B-4AA3-8D16-C1723AEA73CG"),
            Err(GuidParseError::BadCharacter { ch: 'G', position: 35, .. })
        ));
    }
}
