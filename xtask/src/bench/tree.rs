//! The generated trees of small files the bench measures (fixed seed, so every run and machine gets the same bytes).

use anyhow::Context;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The seed of every generated bench tree.
pub const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// xorshift64*: deterministic, dependency-free, good enough for sizes and bytes. The same
/// generator as `builder/tests/speed_pins.rs`, which pins images of these trees.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Writes `files` files of 1–8 KiB, `per_dir` to a folder (`dNNNN/fNNNNNN`), modes 0644 and
/// 0755 set explicitly so the umask does not change the tree.
pub fn generate(out: &Path, files: u32, per_dir: u32, seed: u64) -> anyhow::Result<()> {
    let mut rng = Rng(seed);
    let mode = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m))
            .with_context(|| format!("setting the mode of `{}`", p.display()))
    };
    std::fs::create_dir_all(out).with_context(|| format!("creating `{}`", out.display()))?;
    for i in 0..files {
        let dir = out.join(format!("d{:04}", i / per_dir.max(1)));
        if i % per_dir.max(1) == 0 {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating `{}`", dir.display()))?;
            mode(&dir, 0o755)?;
        }
        let len = 1024 + (rng.next() % (7 * 1024 + 1)) as usize;
        let byte = (rng.next() % 251) as u8;
        let data: Vec<u8> = (0..len).map(|k| byte.wrapping_add(k as u8)).collect();
        let path = dir.join(format!("f{i:06}"));
        std::fs::write(&path, data).with_context(|| format!("writing `{}`", path.display()))?;
        mode(&path, 0o644)?;
    }
    mode(out, 0o755)
}

/// `generate` into `out` unless a complete tree is already there (a `.complete` marker
/// outside it names the parameters), so repeated bench runs reuse it.
pub fn cached(out: &Path, files: u32, per_dir: u32) -> anyhow::Result<()> {
    let marker = out.with_extension("complete");
    let want = format!("{files} {per_dir} {SEED:x}\n");
    if out.exists() && std::fs::read_to_string(&marker).is_ok_and(|m| m == want) {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(out);
    eprintln!("generating {files} files of 1-8 KiB, {per_dir} to a folder, in {}", out.display());
    generate(out, files, per_dir, SEED)?;
    std::fs::write(&marker, want).with_context(|| format!("writing `{}`", marker.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tree_is_deterministic() {
        let base = std::env::temp_dir().join(format!("xtask-bench-tree-{}", std::process::id()));
        let (a, b) = (base.join("a"), base.join("b"));
        generate(&a, 250, 100, SEED).unwrap();
        generate(&b, 250, 100, SEED).unwrap();
        for rel in ["d0000/f000000", "d0002/f000249"] {
            let x = std::fs::read(a.join(rel)).unwrap();
            assert_eq!(x, std::fs::read(b.join(rel)).unwrap());
            assert!((1024..=8192).contains(&x.len()), "{rel}: {} bytes", x.len());
        }
        assert_eq!(std::fs::read_dir(a.join("d0002")).unwrap().count(), 50);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
