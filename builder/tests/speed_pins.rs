//! Pins the sha256 of images built from scaled-down bench trees, so a speed change that moves a byte fails here.
//!
//! The trees are the shapes `cargo xtask bench` measures, made small: a generated tree of
//! small files (fixed seed) as 20 folders of 100 and as 2 folders of 1000, the same as a tar
//! root (plain and zstd), and a sparse `efi` disk with a small tree. The first tree also holds
//! what the writer's fast paths must not change: a file over 16 MiB with an all-zero stretch
//! (holes), a `contents` file over 16 MiB (streamed, not read into memory), a symlink, a hard
//! link and empty files. Every time becomes SOURCE_DATE_EPOCH and every owner root, so the
//! bytes do not depend on when or by whom the tree was made.
//!
//! The pinned values were computed by the code on main before any speed change. A change that
//! means to move bytes must say why and update them in a commit of its own. Moved once: the
//! tree-100 and tar images, when holes became decided by a file's bytes alone (the big file's
//! all-zero stretch no longer costs blocks, however the source stores it).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// xorshift64*: the same generator as the bench's tree (`xtask/src/bench/tree.rs`).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// `files` files of 1–8 KiB, `per_dir` to a folder, with modes set (the umask does not leak).
fn small_files(root: &Path, files: u32, per_dir: u32, seed: u64) {
    let mut rng = Rng(seed);
    std::fs::create_dir_all(root).unwrap();
    for i in 0..files {
        let dir = root.join(format!("d{:04}", i / per_dir));
        if i % per_dir == 0 {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let len = 1024 + (rng.next() % (7 * 1024 + 1)) as usize;
        let byte = (rng.next() % 251) as u8;
        let data: Vec<u8> = (0..len).map(|k| byte.wrapping_add(k as u8)).collect();
        let path = dir.join(format!("f{i:06}"));
        std::fs::write(&path, data).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// 20 MiB: 8 MiB of pattern, 4 MiB of zeros (holes in the image), 8 MiB of pattern, 3 bytes.
fn big_file(path: &Path, salt: u8) {
    let mut data = vec![0u8; (20 << 20) + 3];
    for (k, b) in data.iter_mut().enumerate() {
        let in_hole = (8 << 20..12 << 20).contains(&k);
        *b = if in_hole { 0 } else { (k as u8).wrapping_mul(31).wrapping_add(salt) | 1 };
    }
    std::fs::write(path, data).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// The 100-per-folder tree with the extras the writer's fast paths must keep.
fn tree_100(root: &Path) {
    small_files(root, 2000, 100, 0x9E37_79B9_7F4A_7C15);
    let x = root.join("extras");
    std::fs::create_dir(&x).unwrap();
    std::fs::set_permissions(&x, std::fs::Permissions::from_mode(0o755)).unwrap();
    big_file(&x.join("big.bin"), 7);
    std::fs::write(x.join("empty"), b"").unwrap();
    std::fs::set_permissions(x.join("empty"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink("../d0000/f000000", x.join("link")).unwrap();
    std::fs::hard_link(x.join("big.bin"), x.join("big-again.bin")).unwrap();
}

/// A tar of `root` made with the tar crate: sorted names, fixed times, owners 0:0.
fn tar_of(root: &Path, archive: &Path) {
    let mut b = tar::Builder::new(std::fs::File::create(archive).unwrap());
    let mut paths = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p.clone());
            }
            paths.push(p);
        }
    }
    paths.sort();
    for p in paths {
        let rel = p.strip_prefix(root).unwrap();
        let md = std::fs::symlink_metadata(&p).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_mode(md.permissions().mode() & 0o7777);
        h.set_mtime(1_000_000_000);
        h.set_uid(0);
        h.set_gid(0);
        if md.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, rel, std::io::empty()).unwrap();
        } else if md.file_type().is_symlink() {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, rel, std::fs::read_link(&p).unwrap()).unwrap();
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(md.len());
            b.append_data(&mut h, rel, std::fs::File::open(&p).unwrap()).unwrap();
        }
    }
    b.into_inner().unwrap();
}

/// Builds `spec` (JSON) from `dir` and returns the image's sha256 and the manifest's inputs.
fn build(dir: &Path, name: &str, spec: &str) -> (String, Vec<(String, String)>) {
    let spec = common::write(dir, &format!("{name}.json"), spec);
    let out = dir.join(format!("{name}-out"));
    let image = common::build(&spec, &out);
    let sha = common::sha256(&image);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["output"]["sha256"], sha.as_str(), "the manifest names the image's sha256");
    let inputs = m["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["path"].as_str().unwrap().to_string(), i["sha256"].as_str().unwrap_or("").to_string()))
        .collect();
    std::fs::remove_dir_all(&out).unwrap();
    (sha, inputs)
}

fn root_spec(root: &Path, extra: &str) -> String {
    format!(
        r#"{{"partitionTableType": "none", "diskSize": "auto", "installBootLoader": false,
            "source_date_epoch": 315532800, "timestamps": "source-date-epoch", "owners": "root",
            "system": {{"root": {root:?}}}{extra}}}"#
    )
}

fn pins(got: &[(&str, String)], want: &[(&str, &str)]) {
    let got: Vec<(&str, &str)> = got.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(got, want, "an image or digest moved: speed changes must not change a byte");
}

#[test]
fn small_files_in_both_shapes_and_as_tar() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let a = w.join("tree-100");
    tree_100(&a);
    let contents_big = w.join("contents-big.bin");
    big_file(&contents_big, 11);
    let contents = format!(
        r#", "contents": [{{"source": {:?}, "target": "/opt/big.bin", "mode": "0644", "user": "root", "group": "root"}}]"#,
        contents_big.display().to_string()
    );
    let (img_a, inputs_a) = build(w, "tree-100", &root_spec(&a, &contents));
    let b = w.join("tree-1000");
    small_files(&b, 2000, 1000, 0x9E37_79B9_7F4A_7C15);
    let (img_b, _) = build(w, "tree-1000", &root_spec(&b, ""));

    let archive = w.join("root.tar");
    tar_of(&a, &archive);
    let (img_tar, _) = build(w, "tar", &root_spec(&archive, ""));
    let o = common::tool("zstd", "zstd", &["-q", "-3", archive.to_str().unwrap()]);
    assert!(o.status.success(), "zstd: {}", String::from_utf8_lossy(&o.stderr));
    let (img_zst, _) =
        build(w, "tar-zst", &root_spec(&PathBuf::from(format!("{}.zst", archive.display())), ""));

    let digests: Vec<String> = inputs_a.into_iter().map(|(_, d)| d).collect();
    pins(
        &[
            ("tree-100 image", img_a),
            ("tree-100 root digest", digests[0].clone()),
            ("tree-100 contents digest", digests[1].clone()),
            ("tree-1000 image", img_b),
            ("tar image", img_tar),
            ("tar.zst image", img_zst),
        ],
        &[
            ("tree-100 image", "e0d9d9ba600a01123a6df58a315de07c3bb15cd11d0b6007c894f6b212c4468d"),
            ("tree-100 root digest", "fc43dd5fa01d30d2ae4c24b547798bfe763ddfedb1cdfbc0131e60895fef7417"),
            ("tree-100 contents digest", "bef12926e9ec33d1077ebe475c51d209c5939b5d3295a56264eb868ce5176b9e"),
            ("tree-1000 image", "2dc0981043d811588bf24e8608e06c8401563bd69637a8a296ec80ddf53561d9"),
            ("tar image", "65fc27cd64e096cb2ccaa2b409dbc06a6d8a64800d265a79a0c93a858988aea1"),
            ("tar.zst image", "65fc27cd64e096cb2ccaa2b409dbc06a6d8a64800d265a79a0c93a858988aea1"),
        ],
    );
}

#[test]
fn sparse_efi_image() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let root = w.join("small");
    small_files(&root, 50, 25, 42);
    let spec = format!(
        r#"{{"partitionTableType": "efi", "diskSize": 4096, "bootSize": "32M", "installBootLoader": false,
            "source_date_epoch": 315532800, "timestamps": "source-date-epoch", "owners": "root",
            "system": {{"root": {:?}}}}}"#,
        root.display().to_string()
    );
    let (img, _) = build(w, "efi", &spec);
    pins(
        &[("efi 4 GiB image", img)],
        &[("efi 4 GiB image", "cafdbd052cc07c93e328c16210981badde9110d356ab3a28e4a419c7de116cac")],
    );
}
