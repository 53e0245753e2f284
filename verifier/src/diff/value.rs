//! Field values as the diff prints them, decoded by their kind.

use crate::regions::FieldKind;

pub(super) fn hex(bytes: &[u8]) -> String {
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(" ")
}

/// Both sides of a field, decoded; long byte fields show the window around the first
/// differing byte.
pub(super) fn format_pair(kind: FieldKind, a: &[u8], b: &[u8]) -> (String, String) {
    if kind == FieldKind::Bytes && a.len() > 16 {
        let first = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(0);
        let end = (first + 8).min(a.len());
        let more = if end < a.len() { " .." } else { "" };
        return (
            format!("+{first:#x}: {}{more}", hex(&a[first..end])),
            format!("+{first:#x}: {}{more}", hex(&b[first..end])),
        );
    }
    (format_value(kind, a), format_value(kind, b))
}

/// One field's bytes, decoded as its kind says.
pub fn format_value(kind: FieldKind, v: &[u8]) -> String {
    let le = || v.iter().rev().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
    let be = || v.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
    match kind {
        FieldKind::Uint if v.len() <= 8 => le().to_string(),
        FieldKind::Hex if v.len() <= 8 => format!("{:#0w$x}", le(), w = v.len() * 2 + 2),
        FieldKind::BeUint if v.len() <= 8 => be().to_string(),
        FieldKind::BeHex if v.len() <= 8 => format!("{:#0w$x}", be(), w = v.len() * 2 + 2),
        FieldKind::Guid if v.len() == 16 => {
            let mut g = [0u8; 16];
            g.copy_from_slice(v);
            for (lo, hi) in [(0, 3), (1, 2), (4, 5), (6, 7)] {
                g.swap(lo, hi);
            }
            uuid_text(&g).to_uppercase()
        }
        FieldKind::Uuid if v.len() == 16 => uuid_text(v),
        FieldKind::Text => {
            let s = String::from_utf8_lossy(v);
            format!("{:?}", s.trim_end_matches(['\0', ' ']))
        }
        FieldKind::Utf16 => {
            let units: Vec<u16> =
                v.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).take_while(|&u| u != 0).collect();
            format!("{:?}", String::from_utf16_lossy(&units))
        }
        _ => hex(v),
    }
}

/// The canonical 8-4-4-4-12 form of 16 bytes taken in order.
fn uuid_text(v: &[u8]) -> String {
    let h: String = v.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}
