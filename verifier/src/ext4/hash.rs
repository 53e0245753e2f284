//! Directory index hashes (`dx_hash`): legacy, half MD4 and TEA, each in a signed and an
//! unsigned-char variant, as htree directories use them to place names in leaf blocks.

/// The hash the index stores for end-of-directory; a real name never hashes to it.
const EXT4_HTREE_EOF_32BIT: u32 = 0x7FFF_FFFF;

/// Packs up to `num` words of `msg` the way the directory hash does: bytes are shifted in
/// big-end first, the tail is padded with a word made of the length.
fn str2hashbuf(msg: &[u8], len: usize, num: usize, signed: bool) -> Vec<u32> {
    let mut pad = (len as u32) | ((len as u32) << 8);
    pad |= pad << 16;
    let mut val = pad;
    let take = len.min(num * 4);
    let mut out = Vec::with_capacity(num);
    for (i, &b) in msg.iter().take(take).enumerate() {
        let c = if signed { i32::from(b as i8) as u32 } else { u32::from(b) };
        val = c.wrapping_add(val << 8);
        if i % 4 == 3 {
            out.push(val);
            val = pad;
        }
    }
    if out.len() < num {
        out.push(val);
    }
    out.resize(num, pad);
    out
}

fn half_md4(buf: &mut [u32; 4], inp: &[u32]) {
    let f = |x: u32, y: u32, z: u32| z ^ (x & (y ^ z));
    let g = |x: u32, y: u32, z: u32| (x & y).wrapping_add((x ^ y) & z);
    let h = |x: u32, y: u32, z: u32| x ^ y ^ z;
    let [mut a, mut b, mut c, mut d] = *buf;
    macro_rules! round {
        ($f:expr, $a:ident, $b:ident, $c:ident, $d:ident, $x:expr, $s:expr) => {
            $a = $a.wrapping_add($f($b, $c, $d)).wrapping_add($x).rotate_left($s);
        };
    }
    let k2 = 0x5A82_7999u32;
    let k3 = 0x6ED9_EBA1u32;
    round!(f, a, b, c, d, inp[0], 3);
    round!(f, d, a, b, c, inp[1], 7);
    round!(f, c, d, a, b, inp[2], 11);
    round!(f, b, c, d, a, inp[3], 19);
    round!(f, a, b, c, d, inp[4], 3);
    round!(f, d, a, b, c, inp[5], 7);
    round!(f, c, d, a, b, inp[6], 11);
    round!(f, b, c, d, a, inp[7], 19);
    round!(g, a, b, c, d, inp[1].wrapping_add(k2), 3);
    round!(g, d, a, b, c, inp[3].wrapping_add(k2), 5);
    round!(g, c, d, a, b, inp[5].wrapping_add(k2), 9);
    round!(g, b, c, d, a, inp[7].wrapping_add(k2), 13);
    round!(g, a, b, c, d, inp[0].wrapping_add(k2), 3);
    round!(g, d, a, b, c, inp[2].wrapping_add(k2), 5);
    round!(g, c, d, a, b, inp[4].wrapping_add(k2), 9);
    round!(g, b, c, d, a, inp[6].wrapping_add(k2), 13);
    round!(h, a, b, c, d, inp[3].wrapping_add(k3), 3);
    round!(h, d, a, b, c, inp[7].wrapping_add(k3), 9);
    round!(h, c, d, a, b, inp[2].wrapping_add(k3), 11);
    round!(h, b, c, d, a, inp[6].wrapping_add(k3), 15);
    round!(h, a, b, c, d, inp[1].wrapping_add(k3), 3);
    round!(h, d, a, b, c, inp[5].wrapping_add(k3), 9);
    round!(h, c, d, a, b, inp[0].wrapping_add(k3), 11);
    round!(h, b, c, d, a, inp[4].wrapping_add(k3), 15);
    buf[0] = buf[0].wrapping_add(a);
    buf[1] = buf[1].wrapping_add(b);
    buf[2] = buf[2].wrapping_add(c);
    buf[3] = buf[3].wrapping_add(d);
}

fn tea(buf: &mut [u32; 4], inp: &[u32]) {
    const DELTA: u32 = 0x9E37_79B9;
    let (mut b0, mut b1) = (buf[0], buf[1]);
    let (a, b, c, d) = (inp[0], inp[1], inp[2], inp[3]);
    let mut sum = 0u32;
    for _ in 0..16 {
        sum = sum.wrapping_add(DELTA);
        b0 =
            b0.wrapping_add(((b1 << 4).wrapping_add(a)) ^ b1.wrapping_add(sum) ^ ((b1 >> 5).wrapping_add(b)));
        b1 =
            b1.wrapping_add(((b0 << 4).wrapping_add(c)) ^ b0.wrapping_add(sum) ^ ((b0 >> 5).wrapping_add(d)));
    }
    buf[0] = buf[0].wrapping_add(b0);
    buf[1] = buf[1].wrapping_add(b1);
}

fn legacy(name: &[u8], signed: bool) -> u32 {
    let (mut h0, mut h1) = (0x12A3_FE2Du32, 0x37AB_E8F9u32);
    for &b in name {
        let c = if signed { i32::from(b as i8) as u32 } else { u32::from(b) };
        let mut h = h1.wrapping_add(h0 ^ c.wrapping_mul(7_152_373));
        if h & 0x8000_0000 != 0 {
            h = h.wrapping_sub(0x7FFF_FFFF);
        }
        h1 = h0;
        h0 = h;
    }
    h0 << 1
}

/// Feeds `name` to `transform` in chunks of `words` 32-bit words, as packed by
/// [`str2hashbuf`] from the remaining bytes.
fn rounds(name: &[u8], words: usize, signed: bool, transform: &mut dyn FnMut(&[u32])) {
    let mut rest = name;
    loop {
        transform(&str2hashbuf(rest, rest.len(), words, signed));
        if rest.len() <= words * 4 {
            break;
        }
        rest = &rest[words * 4..];
    }
}

/// The major hash of `name` for hash version `version` (0..=5, the unsigned variants being
/// 3..=5) with the superblock's `seed`; `None` for versions this reader does not compute.
pub fn dx_hash(name: &[u8], version: u8, seed: &[u8; 16]) -> Option<u32> {
    let seed_words: [u32; 4] = std::array::from_fn(|i| {
        u32::from_le_bytes([seed[4 * i], seed[4 * i + 1], seed[4 * i + 2], seed[4 * i + 3]])
    });
    let mut buf = [0x6745_2301u32, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476];
    if seed_words.iter().any(|&w| w != 0) {
        buf = seed_words;
    }
    let signed = version <= 2;
    let hash = match version {
        0 | 3 => legacy(name, signed),
        1 | 4 => {
            rounds(name, 8, signed, &mut |inp| half_md4(&mut buf, inp));
            buf[1]
        }
        2 | 5 => {
            rounds(name, 4, signed, &mut |inp| tea(&mut buf, inp));
            buf[0]
        }
        _ => return None,
    };
    let hash = hash & !1;
    Some(if hash == EXT4_HTREE_EOF_32BIT << 1 { (EXT4_HTREE_EOF_32BIT - 1) << 1 } else { hash })
}
