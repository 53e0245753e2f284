//! How names read from an image are shown to people: lossy UTF-8, control bytes (NUL
//! included) escaped as `\xNN`, and long paths shortened from the front, so that a report
//! line stays readable and a label's size stays bounded whatever the tree's depth.

/// The longest path shown, in bytes; longer ones keep their last part after `…`.
pub const MAX_SHOWN: usize = 120;

/// `bytes` as text for a report: never a raw control byte, at most about [`MAX_SHOWN`] bytes.
pub fn shown(bytes: &[u8]) -> String {
    let tail = if bytes.len() > MAX_SHOWN { &bytes[bytes.len() - MAX_SHOWN..] } else { bytes };
    let mut out = String::with_capacity(tail.len() + 4);
    if tail.len() < bytes.len() {
        out.push('…');
    }
    for c in String::from_utf8_lossy(tail).chars() {
        if c.is_control() {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_shortens() {
        assert_eq!(shown(b"/etc/motd"), "/etc/motd");
        assert_eq!(shown(b"/a\0b\n"), "/a\\x00b\\x0a");
        let long = b"/a".repeat(1000);
        let s = shown(&long);
        assert!(s.starts_with('…') && s.ends_with("/a") && s.len() <= MAX_SHOWN + 3, "{s}");
    }
}
