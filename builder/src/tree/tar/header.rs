//! One tar header block and the encodings inside headers and pax records: octal and base-256
//! numbers, pax records and times, and the xattr name and value escapes.

use super::*;

/// The pax records of one member: its local (`x`) ones, then the current global state.
#[derive(Clone, Copy)]
pub(super) struct Pax<'a> {
    pub(super) local: &'a [(Vec<u8>, Vec<u8>)],
    pub(super) global: &'a BTreeMap<Vec<u8>, Vec<u8>>,
}

impl<'a> Pax<'a> {
    /// A keyword's value: the last local record of it (an empty one removes the keyword),
    /// else the global one.
    pub(super) fn get(&self, key: &[u8]) -> Option<&'a [u8]> {
        match self.local.iter().rev().find(|(k, _)| k == key) {
            Some((_, v)) if v.is_empty() => None,
            Some((_, v)) => Some(v),
            None => self.global.get(key).map(Vec::as_slice),
        }
    }

    /// The records whose keyword starts with `prefix`, in the order a first-wins reader
    /// needs: local ones from the last, then global ones (found by range, so a large global
    /// state costs nothing per member).
    pub(super) fn with_prefix(&self, prefix: &'a [u8]) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        let local = self.local.iter().rev().filter(move |(k, _)| k.starts_with(prefix));
        let global = self.global.range(prefix.to_vec()..).take_while(move |(k, _)| k.starts_with(prefix));
        local
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .chain(global.map(|(k, v)| (k.as_slice(), v.as_slice())))
    }
}

/// One 512-byte header block.
pub(super) struct Header(pub(super) [u8; 512]);

impl Header {
    pub(super) fn field(&self, off: usize, len: usize) -> &[u8] {
        trim_nul(&self.0[off..off + len])
    }

    pub(super) fn typeflag(&self) -> u8 {
        self.0[156]
    }

    pub(super) fn is_ustar(&self) -> bool {
        &self.0[257..263] == b"ustar\0"
    }

    /// name, with the ustar prefix when the header is POSIX ustar (GNU headers use that area
    /// for other fields).
    pub(super) fn path(&self) -> Vec<u8> {
        let name = self.field(0, 100);
        let prefix = self.field(345, 155);
        if self.is_ustar() && !prefix.is_empty() {
            let mut p = prefix.to_vec();
            p.push(b'/');
            p.extend_from_slice(name);
            p
        } else {
            name.to_vec()
        }
    }

    /// A numeric field: octal text, or GNU base-256 when the top bit of the first byte is set.
    pub(super) fn num(&self, off: usize, len: usize) -> Option<i64> {
        parse_number(&self.0[off..off + len])
    }
}

pub(super) fn parse_number(f: &[u8]) -> Option<i64> {
    if f.first().is_some_and(|&b| b & 0x80 != 0) {
        let negative = f[0] & 0x40 != 0;
        let mut v: i128 = if negative { -1 } else { 0 };
        for (i, &b) in f.iter().enumerate() {
            let b = if i == 0 { if negative { b | 0x80 } else { b & 0x7f } } else { b };
            v = (v << 8) | i128::from(b);
            if v.unsigned_abs() > u128::from(u64::MAX) {
                return None;
            }
        }
        return i64::try_from(v).ok();
    }
    let text: Vec<u8> =
        f.iter().copied().skip_while(|&b| b == b' ' || b == 0).take_while(|&b| b != b' ' && b != 0).collect();
    if text.is_empty() {
        return Some(0);
    }
    let mut v: i64 = 0;
    for b in text {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        v = v.checked_mul(8)?.checked_add(i64::from(b - b'0'))?;
    }
    Some(v)
}

pub(super) fn trim_nul(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
    &b[..end]
}

pub(super) fn parse_decimal(v: &[u8]) -> Option<i64> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

/// pax records `LEN KEY=VALUE\n`, in order (the sparse 0.0 format repeats keys).
pub(super) fn parse_pax(data: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() && rest[0] != 0 {
        let sp = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..sp]).ok()?.parse().ok()?;
        if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return None;
        }
        let rec = &rest[sp + 1..len - 1];
        let eq = rec.iter().position(|&b| b == b'=')?;
        out.push((rec[..eq].to_vec(), rec[eq + 1..].to_vec()));
        rest = &rest[len..];
    }
    Some(out)
}

/// A pax time `SECS[.FRACTION]`, possibly negative.
pub(super) fn parse_pax_time(v: &[u8]) -> Option<Timestamp> {
    let s = std::str::from_utf8(v).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let secs: i64 = int.parse().ok()?;
    let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    let nanos: u32 = digits.parse().ok()?;
    Some(match (neg, nanos) {
        (false, _) => Timestamp { secs, nanos },
        (true, 0) => Timestamp { secs: -secs, nanos: 0 },
        (true, n) => Timestamp { secs: -secs - 1, nanos: 1_000_000_000 - n },
    })
}

/// GNU tar escapes `%` and `=` in xattr names as `%25` and `%3D` (a pax keyword cannot hold
/// `=`); other escapes are left as they are, as GNU tar does.
pub(super) fn schily_decode(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        match name.get(i..i + 3) {
            Some(b"%25") => out.push(b'%'),
            Some(b"%3D") => out.push(b'='),
            _ => {
                out.push(name[i]);
                i += 1;
                continue;
            }
        }
        i += 3;
    }
    out
}

pub(super) fn url_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = std::str::from_utf8(s.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

pub(super) fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in s.iter().filter(|&&c| c != b'=' && !c.is_ascii_whitespace()) {
        acc = (acc << 6) | u32::from(val(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_octal_and_base256() {
        assert_eq!(parse_number(b"0000644\0"), Some(0o644));
        assert_eq!(parse_number(b"  755 \0\0"), Some(0o755));
        assert_eq!(parse_number(b"\0\0\0\0"), Some(0));
        assert_eq!(parse_number(b"0009\0"), None);
        assert_eq!(parse_number(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00]), Some(256));
        assert_eq!(parse_number(&[0xff; 12]), Some(-1));
    }

    #[test]
    fn pax_times_with_fractions_and_signs() {
        assert_eq!(
            parse_pax_time(b"1700000000.5"),
            Some(Timestamp { secs: 1_700_000_000, nanos: 500_000_000 })
        );
        assert_eq!(parse_pax_time(b"12"), Some(Timestamp::from_secs(12)));
        assert_eq!(parse_pax_time(b"-1.25"), Some(Timestamp { secs: -2, nanos: 750_000_000 }));
        assert_eq!(parse_pax_time(b"1.1234567891"), Some(Timestamp { secs: 1, nanos: 123_456_789 }));
        assert_eq!(parse_pax_time(b"x"), None);
    }

    #[test]
    fn pax_records_and_libarchive_encodings() {
        let recs = parse_pax(b"20 path=a/b/c/d/e/f\n11 uid=123\n").unwrap();
        let global = BTreeMap::from([(b"uid".to_vec(), b"7".to_vec()), (b"gid".to_vec(), b"8".to_vec())]);
        let pax = Pax { local: &recs, global: &global };
        assert_eq!(pax.get(b"path"), Some(&b"a/b/c/d/e/f"[..]));
        assert_eq!(pax.get(b"uid"), Some(&b"123"[..]));
        assert_eq!(pax.get(b"gid"), Some(&b"8"[..]));
        assert!(parse_pax(b"99 path=x\n").is_none());
        assert_eq!(url_decode(b"user.a%3Db").unwrap(), b"user.a=b");
        assert_eq!(schily_decode(b"user.%25%3D%41%"), b"user.%=%41%");
        assert_eq!(base64_decode(b"aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode(b"AQID").unwrap(), [1, 2, 3]);
    }
}
