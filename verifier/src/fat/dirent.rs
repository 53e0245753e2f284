//! 32-byte FAT directory entries (fatgen103 sections 6 and 7): the 8.3 short entry and the
//! long-file-name entry with its checksum and UCS-2 name pieces.

use super::Level;
use super::time::FatTime;
use crate::bytes::Le;
use serde::Serialize;

pub const ATTR_READ_ONLY: u8 = 0x01;
pub const ATTR_HIDDEN: u8 = 0x02;
pub const ATTR_SYSTEM: u8 = 0x04;
pub const ATTR_VOLUME_ID: u8 = 0x08;
pub const ATTR_DIRECTORY: u8 = 0x10;
pub const ATTR_ARCHIVE: u8 = 0x20;
pub const ATTR_LONG_NAME: u8 = 0x0F;
pub const ATTR_LONG_NAME_MASK: u8 = 0x3F;
/// `DIR_NTRes` bit: the base name is shown in lower case (Windows NT and Linux).
pub const NT_LOWER_BASE: u8 = 0x08;
/// `DIR_NTRes` bit: the extension is shown in lower case.
pub const NT_LOWER_EXT: u8 = 0x10;

/// `DIR_NTRes` bit Linux sets (with a long name) on an entry that has no 8.3 name of its own.
pub const NT_NO_83_NAME: u8 = 0x20;

/// `DIR_Name[0]` of a free (deleted) entry.
pub const DIR_FREE: u8 = 0xE5;
/// `DIR_Name[0]` standing for a real 0xE5 first byte (a KANJI lead byte).
pub const DIR_KANJI_E5: u8 = 0x05;

/// A short (8.3) directory entry, fields named as in fatgen103.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShortEntry {
    /// 0x00: base name (8) and extension (3), space padded, as stored.
    pub dir_name: [u8; 11],
    /// 0x0B
    pub dir_attr: u8,
    /// 0x0C: Windows NT case bits.
    pub dir_nt_res: u8,
    /// 0x0D: 10 ms units, 0..=199, refining `DIR_CrtTime`.
    pub dir_crt_time_tenth: u8,
    /// 0x0E
    pub dir_crt_time: u16,
    /// 0x10
    pub dir_crt_date: u16,
    /// 0x12
    pub dir_lst_acc_date: u16,
    /// 0x14: high 16 bits of the first cluster (0 on FAT12/16).
    pub dir_fst_clus_hi: u16,
    /// 0x16
    pub dir_wrt_time: u16,
    /// 0x18
    pub dir_wrt_date: u16,
    /// 0x1A
    pub dir_fst_clus_lo: u16,
    /// 0x1C
    pub dir_file_size: u32,
}

/// A long-file-name entry (attribute 0x0F), fields named as in fatgen103.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LfnEntry {
    /// 0x00: sequence number 1..=20, 0x40 set on the last (first stored) entry.
    pub ldir_ord: u8,
    /// 0x0D: checksum of the short name this long name belongs to.
    pub ldir_chksum: u8,
    /// 0x0C: must be 0.
    pub ldir_type: u8,
    /// 0x1A: must be 0.
    pub ldir_fst_clus_lo: u16,
    /// The 13 UCS-2 units of `LDIR_Name1` (0x01), `LDIR_Name2` (0x0E), `LDIR_Name3` (0x1C).
    pub units: [u16; 13],
}

/// One decoded 32-byte slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// `DIR_Name[0] == 0`: this and every later slot are free.
    End,
    /// `DIR_Name[0] == 0xE5`.
    Free,
    Long(LfnEntry),
    Short(ShortEntry),
}

impl Slot {
    /// Decodes one slot; `raw` must be 32 bytes (shorter input reads as zeros, i.e. `End`).
    pub fn parse(raw: &[u8]) -> Slot {
        let b = Le(raw);
        let first = b.u8(0);
        if first == 0 {
            return Slot::End;
        }
        if first == DIR_FREE {
            return Slot::Free;
        }
        let attr = b.u8(0x0B);
        if attr & ATTR_LONG_NAME_MASK == ATTR_LONG_NAME {
            let mut units = [0u16; 13];
            let offs = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
            for (u, off) in units.iter_mut().zip(offs) {
                *u = b.u16(off);
            }
            return Slot::Long(LfnEntry {
                ldir_ord: first,
                ldir_type: b.u8(0x0C),
                ldir_chksum: b.u8(0x0D),
                ldir_fst_clus_lo: b.u16(0x1A),
                units,
            });
        }
        Slot::Short(ShortEntry {
            dir_name: b.array(0),
            dir_attr: attr,
            dir_nt_res: b.u8(0x0C),
            dir_crt_time_tenth: b.u8(0x0D),
            dir_crt_time: b.u16(0x0E),
            dir_crt_date: b.u16(0x10),
            dir_lst_acc_date: b.u16(0x12),
            dir_fst_clus_hi: b.u16(0x14),
            dir_wrt_time: b.u16(0x16),
            dir_wrt_date: b.u16(0x18),
            dir_fst_clus_lo: b.u16(0x1A),
            dir_file_size: b.u32(0x1C),
        })
    }
}

/// The checksum of an 11-byte short name that every LFN entry of the name carries
/// (fatgen103 section 7, `ChkSum`): rotate right by one, add the next byte.
pub fn lfn_checksum(name: &[u8; 11]) -> u8 {
    name.iter().fold(0u8, |sum, &c| ((sum & 1) << 7).wrapping_add(sum >> 1).wrapping_add(c))
}

impl ShortEntry {
    /// `DIR_Name` with a leading 0x05 turned back into 0xE5.
    pub fn name_bytes(&self) -> [u8; 11] {
        let mut n = self.dir_name;
        if n[0] == DIR_KANJI_E5 {
            n[0] = DIR_FREE;
        }
        n
    }

    /// The first cluster (`DIR_FstClusHI:DIR_FstClusLO`).
    pub fn first_cluster(&self) -> u32 {
        (u32::from(self.dir_fst_clus_hi) << 16) | u32::from(self.dir_fst_clus_lo)
    }

    /// The first cluster as a volume of type `fat_type` reads it: FAT12/16 have no high word
    /// (fatgen103 says `DIR_FstClusHI` is 0 there; Linux and fsck.fat ignore it).
    pub fn cluster(&self, fat_type: super::FatType) -> u32 {
        if fat_type == super::FatType::Fat32 { self.first_cluster() } else { u32::from(self.dir_fst_clus_lo) }
    }

    pub fn is_dir(&self) -> bool {
        self.dir_attr & ATTR_DIRECTORY != 0
    }

    pub fn is_volume_label(&self) -> bool {
        self.dir_attr & (ATTR_VOLUME_ID | ATTR_DIRECTORY) == ATTR_VOLUME_ID
    }

    /// `NAME.EXT` as stored (no case bits applied), trailing spaces dropped, no dot when the
    /// extension is empty. Bytes above 0x7F are OEM code-page characters; they are shown
    /// as U+FFFD because the code page is not recorded on disk, and so are control bytes
    /// (a corrupt name), so that no path printed holds a raw NUL or escape.
    pub fn short_name(&self) -> String {
        self.format(false)
    }

    /// The name Linux and mtools show for an entry without a long name: [`short_name`]
    /// with the `DIR_NTRes` lower-case bits applied.
    ///
    /// [`short_name`]: Self::short_name
    pub fn display_name(&self) -> String {
        self.format(true)
    }

    fn format(&self, apply_case: bool) -> String {
        let n = self.name_bytes();
        let part = |bytes: &[u8], lower: bool| -> String {
            let end = bytes.iter().rposition(|&c| c != b' ').map_or(0, |p| p + 1);
            bytes[..end]
                .iter()
                .map(|&c| {
                    if c.is_ascii() && !c.is_ascii_control() {
                        let c = c as char;
                        if lower { c.to_ascii_lowercase() } else { c }
                    } else {
                        char::REPLACEMENT_CHARACTER
                    }
                })
                .collect()
        };
        let base = part(&n[..8], apply_case && self.dir_nt_res & NT_LOWER_BASE != 0);
        let ext = part(&n[8..], apply_case && self.dir_nt_res & NT_LOWER_EXT != 0);
        if ext.is_empty() { base } else { format!("{base}.{ext}") }
    }

    pub fn created(&self) -> FatTime {
        FatTime::new(self.dir_crt_date, self.dir_crt_time, self.dir_crt_time_tenth)
    }
    pub fn modified(&self) -> FatTime {
        FatTime::new(self.dir_wrt_date, self.dir_wrt_time, 0)
    }
    pub fn accessed(&self) -> FatTime {
        FatTime::new(self.dir_lst_acc_date, 0, 0)
    }

    /// Why `DIR_Name` breaks the 8.3 rules (fatgen103 section 6.1), or `None`, with how bad
    /// it is. Control bytes, 0x7F, a leading space and the characters no system accepts in a
    /// name (`"*./:<>?\|`) make the entry unusable: an [`Level::Error`], as fsck.fat renames
    /// such entries. The spec also forbids `+,;=[]` and lower case, but Windows and Linux
    /// read them, so they are a [`Level::Warning`].
    pub fn invalid_name(&self) -> Option<(Level, String)> {
        let n = self.name_bytes();
        if n == *b".          " || n == *b"..         " {
            return None;
        }
        if n[0] == b' ' {
            return Some((Level::Error, "the name starts with a space".into()));
        }
        if let Some(c) = n.iter().find(|&&c| c < 0x20 || c == 0x7F || b"\"*./:<>?\\|".contains(&c)) {
            return Some((Level::Error, format!("byte {c:#04x} is not allowed in a short name")));
        }
        n.iter()
            .find(|&&c| b"+,;=[]".contains(&c) || c.is_ascii_lowercase())
            .map(|c| (Level::Warning, format!("byte {c:#04x} is not allowed in a short name by the spec")))
    }
}

impl LfnEntry {
    pub fn is_last(&self) -> bool {
        self.ldir_ord & 0x40 != 0
    }
    /// The sequence number without the "last" flag.
    pub fn seq(&self) -> u8 {
        self.ldir_ord & 0x3F
    }
}

/// Joins the UCS-2 pieces of a long name (in order 1, 2, ...) into UTF-8. The name ends at a
/// 0x0000 unit, after which only 0xFFFF padding may follow. Returns the name and a problem
/// description if the units are malformed (bad padding, an unpaired surrogate).
pub fn decode_long_name(units: &[u16]) -> (String, Option<String>) {
    let len = units.iter().position(|&u| u == 0).unwrap_or(units.len());
    let mut problem = None;
    if let Some(tail) = units.get(len + 1..)
        && tail.iter().any(|&u| u != 0xFFFF)
    {
        problem = Some("units after the terminating 0x0000 are not 0xffff padding".to_string());
    }
    let mut name = String::with_capacity(len);
    for r in char::decode_utf16(units[..len].iter().copied()) {
        match r {
            Ok(c) if c.is_control() => {
                problem = Some(format!("control character {:#06x}", u32::from(c)));
                name.push(char::REPLACEMENT_CHARACTER);
            }
            Ok(c) => name.push(c),
            Err(e) => {
                problem = Some(format!("unpaired surrogate {:#06x}", e.unpaired_surrogate()));
                name.push(char::REPLACEMENT_CHARACTER);
            }
        }
    }
    (name, problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_the_spec_algorithm_on_known_names() {
        // "FOO     BAR": a worked value computed by hand with the spec's loop.
        let mut sum: u8 = 0;
        for &c in b"FOO     BAR" {
            sum = (if sum & 1 != 0 { 0x80u8 } else { 0 }).wrapping_add(sum >> 1).wrapping_add(c);
        }
        assert_eq!(lfn_checksum(b"FOO     BAR"), sum);
    }

    #[test]
    fn short_names_apply_case_bits_and_kanji_escape() {
        let mut raw = [0u8; 32];
        raw[..11].copy_from_slice(b"README  TXT");
        raw[0x0B] = ATTR_ARCHIVE;
        raw[0x0C] = NT_LOWER_BASE | NT_LOWER_EXT;
        let Slot::Short(e) = Slot::parse(&raw) else { panic!("a short entry") };
        assert_eq!(e.short_name(), "README.TXT");
        assert_eq!(e.display_name(), "readme.txt");
        raw[0] = DIR_KANJI_E5;
        let Slot::Short(e) = Slot::parse(&raw) else { panic!("a short entry") };
        assert_eq!(e.name_bytes()[0], 0xE5);
    }

    #[test]
    fn long_names_stop_at_nul_and_check_padding() {
        let units = [b'a' as u16, 0x2605, 0, 0xFFFF, 0xFFFF];
        assert_eq!(decode_long_name(&units), ("a★".to_string(), None));
        assert!(decode_long_name(&[b'a' as u16, 0, 0x41]).1.is_some());
        assert!(decode_long_name(&[0xD800, 0]).1.is_some());
    }
}
