//! FAT names: which names need long-name (VFAT LFN) entries, the deterministic 8.3 short names, LFN slots and their checksum.
//!
//! Rules (fatgen103 section 7 and Microsoft's LFN description, our choices where they leave room):
//! - A name that already is an upper-case 8.3 name (`EFI`, `BOOTX64.EFI`) is stored as a
//!   short entry only.
//! - Every other name gets LFN slots holding it in UTF-16 and a generated short name: its
//!   upper-cased form when that is a valid 8.3 name not taken in the directory (`loader` ->
//!   `LOADER`), else the basis name (upper case, characters not allowed in short names
//!   become `_`, dots and spaces dropped, 8 + 3 characters) with the lowest `~N` tail that
//!   is free. Names are processed in the directory's fixed entry order, after reserving the
//!   short-only names, so the result depends on the names alone.

use super::FatError;

/// Characters allowed in a short name besides `A-Z` and `0-9`.
const SHORT_SPECIAL: &[u8] = b"!#$%&'()-@^_`{}~";

fn short_char_ok(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || SHORT_SPECIAL.contains(&c)
}

/// The 11-byte short name if `name` is exactly an upper-case 8.3 name.
pub fn exact_short(name: &str) -> Option<[u8; 11]> {
    let b = name.as_bytes();
    let (base, ext) = match name.rsplit_once('.') {
        Some((base, ext)) => (base.as_bytes(), ext.as_bytes()),
        None => (b, &b""[..]),
    };
    if base.is_empty() || base.len() > 8 || ext.len() > 3 || (name.contains('.') && ext.is_empty()) {
        return None;
    }
    if !base.iter().chain(ext).all(|&c| short_char_ok(c)) {
        return None;
    }
    let mut out = [b' '; 11];
    out[..base.len()].copy_from_slice(base);
    out[8..8 + ext.len()].copy_from_slice(ext);
    Some(out)
}

/// Checks a long name: 1..=255 UTF-16 units, no control characters, none of `"*/:<>?\|`,
/// no trailing dot or space, not `.` or `..`.
pub fn check_long(name: &str) -> Result<(), FatError> {
    let bad = |why: &'static str| Err(FatError::BadName { name: name.to_string(), why });
    if name.is_empty() || name == "." || name == ".." {
        return bad("empty, `.` and `..` are not file names");
    }
    if name.encode_utf16().count() > 255 {
        return bad("FAT long names hold at most 255 UTF-16 units");
    }
    if name.chars().any(|c| (c as u32) < 0x20 || "\"*/:<>?\\|".contains(c)) {
        return bad("FAT names cannot hold control characters or any of \"*/:<>?\\|");
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return bad("FAT names cannot end with a dot or a space");
    }
    Ok(())
}

/// The basis name of fatgen103's generation algorithm, as (base, extension).
fn basis(name: &str) -> (Vec<u8>, Vec<u8>) {
    let map = |s: &str| -> Vec<u8> {
        s.chars()
            .filter(|&c| c != ' ' && c != '.')
            .map(|c| {
                let u = c.to_ascii_uppercase();
                if u.is_ascii() && short_char_ok(u as u8) { u as u8 } else { b'_' }
            })
            .collect()
    };
    let trimmed = name.trim_start_matches('.');
    let (base, ext) = match trimmed.rsplit_once('.') {
        Some((b, e)) => (map(b), map(e)),
        None => (map(trimmed), Vec::new()),
    };
    let mut base: Vec<u8> = base.into_iter().take(8).collect();
    if base.is_empty() {
        base.push(b'_');
    }
    (base, ext.into_iter().take(3).collect())
}

fn pack(base: &[u8], ext: &[u8]) -> [u8; 11] {
    let mut out = [b' '; 11];
    out[..base.len()].copy_from_slice(base);
    out[8..8 + ext.len()].copy_from_slice(ext);
    out
}

/// Short names for one directory's names, in order; `true` where LFN slots are needed.
pub fn short_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<([u8; 11], bool)> {
    let names: Vec<&str> = names.into_iter().collect();
    let mut taken: std::collections::HashSet<[u8; 11]> =
        names.iter().filter_map(|n| exact_short(n)).collect();
    names
        .iter()
        .map(|n| {
            if let Some(s) = exact_short(n) {
                return (s, false);
            }
            if let Some(s) = exact_short(&n.to_ascii_uppercase()).filter(|_| n.is_ascii())
                && taken.insert(s)
            {
                return (s, true);
            }
            let (base, ext) = basis(n);
            for i in 1u32.. {
                let tail = format!("~{i}");
                let keep = base.len().min(8 - tail.len());
                let mut b = base[..keep].to_vec();
                b.extend_from_slice(tail.as_bytes());
                let s = pack(&b, &ext);
                if taken.insert(s) {
                    return (s, true);
                }
            }
            unreachable!("a directory holds fewer than 10^7 names with one basis")
        })
        .collect()
}

/// The checksum of a short name that each LFN slot carries.
pub fn lfn_checksum(short: &[u8; 11]) -> u8 {
    short.iter().fold(0u8, |sum, &c| sum.rotate_right(1).wrapping_add(c))
}

/// Number of 32-byte LFN slots for `name`.
pub fn lfn_slots(name: &str) -> usize {
    name.encode_utf16().count().div_ceil(13)
}

/// The LFN slots of `name` in on-disk order (the last part, flagged 0x40, first).
pub fn lfn_entries(name: &str, short: &[u8; 11]) -> Vec<[u8; 32]> {
    let units: Vec<u16> = name.encode_utf16().collect();
    let n = units.len().div_ceil(13);
    let sum = lfn_checksum(short);
    let mut out = Vec::with_capacity(n);
    for part in (0..n).rev() {
        let mut e = [0u8; 32];
        e[0] = (part as u8 + 1) | if part == n - 1 { 0x40 } else { 0 };
        e[11] = 0x0f;
        e[13] = sum;
        // Units of this part: the name, then one 0x0000 terminator, then 0xFFFF padding.
        let unit = |k: usize| -> u16 {
            let i = part * 13 + k;
            match i.cmp(&units.len()) {
                std::cmp::Ordering::Less => units[i],
                std::cmp::Ordering::Equal => 0,
                std::cmp::Ordering::Greater => 0xffff,
            }
        };
        let offsets = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
        for (k, &o) in offsets.iter().enumerate() {
            e[o..o + 2].copy_from_slice(&unit(k).to_le_bytes());
        }
        out.push(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: &[u8; 11]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    #[test]
    fn short_name_generation() {
        // Dots split at the last one: `vmlinuz-6.1.0-50-amd64` has the extension `0-5`.
        let names = [
            "BOOTX64.EFI",
            "EFI",
            "loader",
            "systemd-bootx64.efi",
            "vmlinuz-6.1.0-50-amd64",
            "vmlinuz-6.1.0-9-amd64",
            "LOADER~1",
            ".hidden",
            "a b.c d",
        ];
        let got: Vec<(String, bool)> = short_names(names).iter().map(|(n, l)| (s(n), *l)).collect();
        assert_eq!(
            got,
            [
                ("BOOTX64 EFI", false),
                ("EFI        ", false),
                ("LOADER     ", true),
                ("SYSTEM~1EFI", true),
                ("VMLINU~10-5", true),
                ("VMLINU~10-9", true),
                ("LOADER~1   ", false),
                ("HIDDEN~1   ", true),
                ("AB~1    CD ", true),
            ]
            .map(|(a, b)| (a.to_string(), b))
        );
    }

    #[test]
    fn checksum_and_slots() {
        // fatgen103's algorithm applied by hand to "SYSTEM~1EFI".
        let short = *b"SYSTEM~1EFI";
        let mut sum = 0u8;
        for c in short {
            sum = (if sum & 1 != 0 { 0x80u8 } else { 0 }).wrapping_add(sum >> 1).wrapping_add(c);
        }
        assert_eq!(lfn_checksum(&short), sum);
        let e = lfn_entries("systemd-bootx64.efi", &short);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0][0], 0x42);
        assert_eq!(e[1][0], 0x01);
        assert_eq!(&e[1][1..3], &[b's', 0]);
        // 19 units: part 2 holds 6 units, then the terminator and 0xFFFF padding.
        assert_eq!(&e[0][1..11], &[b'6', 0, b'4', 0, b'.', 0, b'e', 0, b'f', 0]);
        assert_eq!(&e[0][14..18], &[b'i', 0, 0, 0]);
        assert_eq!(&e[0][18..20], &[0xff, 0xff]);
        assert_eq!(&e[0][28..32], &[0xff; 4]);
        assert!(e.iter().all(|x| x[11] == 0x0f && x[13] == sum));
    }

    #[test]
    fn bad_long_names() {
        for n in ["", ".", "a:b", "tab\t", "dot.", "x".repeat(256).as_str()] {
            assert!(check_long(n).is_err(), "{n:?}");
        }
        check_long("grubx64.efi").unwrap();
    }
}
