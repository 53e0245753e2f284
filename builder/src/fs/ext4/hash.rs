//! The half_md4 directory hash of ext4's htree (`ext2fs_dirhash` with signed name bytes).

/// Hash of `name` with the 16-byte `s_hash_seed`: the 32-bit major hash with bit 0 cleared,
/// as stored in dx_entry keys.
pub fn half_md4(name: &[u8], seed: &[u8; 16]) -> u32 {
    let mut buf = [0u32; 4];
    for (i, w) in buf.iter_mut().enumerate() {
        *w = u32::from_le_bytes([seed[4 * i], seed[4 * i + 1], seed[4 * i + 2], seed[4 * i + 3]]);
    }
    if buf == [0; 4] {
        buf = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    }
    let mut p = name;
    // An empty name still runs no transform, as in e2fsprogs (names are never empty here).
    while !p.is_empty() {
        let input = str2hashbuf(p, 8);
        half_md4_transform(&mut buf, &input);
        p = if p.len() > 32 { &p[32..] } else { &[] };
    }
    let hash = buf[1] & !1;
    if hash == 0x7FFF_FFFF << 1 { (0x7FFF_FFFF - 1) << 1 } else { hash }
}

/// Packs up to `num * 4` bytes of `msg` into words, padding with the remaining length.
fn str2hashbuf(msg: &[u8], num: usize) -> [u32; 8] {
    let mut out = [0u32; 8];
    let len = msg.len() as u32;
    let mut pad = len | (len << 8);
    pad |= pad << 16;
    let mut val = pad;
    let n = msg.len().min(num * 4);
    let mut w = 0;
    for (i, &c) in msg[..n].iter().enumerate() {
        if i % 4 == 0 {
            val = pad;
        }
        // Signed hash (EXT2_FLAGS_SIGNED_HASH): bytes are sign-extended as x86's `char`.
        val = (c as i8 as i32 as u32).wrapping_add(val << 8);
        if i % 4 == 3 {
            out[w] = val;
            w += 1;
            val = pad;
        }
    }
    if w < num {
        out[w] = val;
        w += 1;
    }
    while w < num {
        out[w] = pad;
        w += 1;
    }
    out
}

fn half_md4_transform(buf: &mut [u32; 4], x: &[u32; 8]) {
    fn f(x: u32, y: u32, z: u32) -> u32 {
        z ^ (x & (y ^ z))
    }
    fn g(x: u32, y: u32, z: u32) -> u32 {
        (x & y).wrapping_add((x ^ y) & z)
    }
    fn h(x: u32, y: u32, z: u32) -> u32 {
        x ^ y ^ z
    }
    const K2: u32 = 0o13240474631;
    const K3: u32 = 0o15666365641;
    let [mut a, mut b, mut c, mut d] = *buf;
    macro_rules! round {
        ($f:ident, $a:ident, $b:ident, $c:ident, $d:ident, $x:expr, $s:expr) => {
            $a = $a.wrapping_add($f($b, $c, $d)).wrapping_add($x).rotate_left($s);
        };
    }
    round!(f, a, b, c, d, x[0], 3);
    round!(f, d, a, b, c, x[1], 7);
    round!(f, c, d, a, b, x[2], 11);
    round!(f, b, c, d, a, x[3], 19);
    round!(f, a, b, c, d, x[4], 3);
    round!(f, d, a, b, c, x[5], 7);
    round!(f, c, d, a, b, x[6], 11);
    round!(f, b, c, d, a, x[7], 19);
    round!(g, a, b, c, d, x[1].wrapping_add(K2), 3);
    round!(g, d, a, b, c, x[3].wrapping_add(K2), 5);
    round!(g, c, d, a, b, x[5].wrapping_add(K2), 9);
    round!(g, b, c, d, a, x[7].wrapping_add(K2), 13);
    round!(g, a, b, c, d, x[0].wrapping_add(K2), 3);
    round!(g, d, a, b, c, x[2].wrapping_add(K2), 5);
    round!(g, c, d, a, b, x[4].wrapping_add(K2), 9);
    round!(g, b, c, d, a, x[6].wrapping_add(K2), 13);
    round!(h, a, b, c, d, x[3].wrapping_add(K3), 3);
    round!(h, d, a, b, c, x[7].wrapping_add(K3), 9);
    round!(h, c, d, a, b, x[2].wrapping_add(K3), 11);
    round!(h, b, c, d, a, x[6].wrapping_add(K3), 15);
    round!(h, a, b, c, d, x[1].wrapping_add(K3), 3);
    round!(h, d, a, b, c, x[5].wrapping_add(K3), 9);
    round!(h, c, d, a, b, x[0].wrapping_add(K3), 11);
    round!(h, b, c, d, a, x[4].wrapping_add(K3), 15);
    buf[0] = buf[0].wrapping_add(a);
    buf[1] = buf[1].wrapping_add(b);
    buf[2] = buf[2].wrapping_add(c);
    buf[3] = buf[3].wrapping_add(d);
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
    const HIGH: u32 = 0x14a7_d0be;
    const LONG: u32 = 0x7eb7_36bc;

    #[test]
    fn matches_debugfs_dx_hash() {
        // `debugfs -R "dx_hash -h half_md4 -s 00000000-0000-0000-0000-000000000000 hello"`
        // prints 0x1746da32 (an all-zero seed means the default MD4 constants).
        assert_eq!(half_md4(b"hello", &[0; 16]), 0x1746_da32);
        // Non-ASCII bytes, long names and a seed (values from debugfs `dx_hash -s`).
        assert_eq!(half_md4(&[0xC3, 0xA9, b't', 0xE9], &[0; 16]), HIGH);
        assert_eq!(half_md4(&[0xC3, 0xA9, b't', 0xE9], &SEED), 0xe7ce_3138);
        assert_eq!(half_md4(&[b'n'; 100], &SEED), LONG);
    }
}
