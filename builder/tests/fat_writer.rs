//! The FAT writer's output read back by the reference tools (fsck.fat, blkid, minfo, mdir,
//! mcopy) and by the verifier's own FAT reader, for each FAT type, plus a proptest over
//! random small trees.

mod common;

use proptest::prelude::*;
use reprodisk::fs::fat::{self, FatOptions, FatTree, FatType, FileData};
use reprodisk_verifier::fat::Fat;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

fn opts(hidden: u32) -> FatOptions {
    FatOptions { label: "ESP".into(), volume_id: 0x49f6_82e7, hidden_sectors: hidden, time: 1_700_000_001 }
}

/// Writes `tree` as a FAT filesystem of `mib` MiB into a sparse file.
fn write_fat(tree: &FatTree, mib: u64, path: &Path) -> fat::FatPlan {
    let plan = fat::plan(tree, mib << 20, &opts(2048)).unwrap();
    let f = std::fs::File::create(path).unwrap();
    f.set_len(mib << 20).unwrap();
    let mut w = std::io::BufWriter::new(f);
    plan.write(&mut w, 0, &mut |_| {}).unwrap();
    drop(w);
    plan
}

fn mtools(tool: &str, args: &[&str]) -> std::process::Output {
    common::tool("mtools", "mtools", &["--version"]);
    Command::new(tool).args(args).env("MTOOLS_SKIP_CHECK", "1").output().unwrap()
}

fn fsck_clean(img: &Path) {
    let o = common::tool("fsck.fat", "dosfstools", &["-n", "-V", img.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "fsck.fat -n -V {}: {out}", img.display());
    let noise: Vec<&str> = out
        .lines()
        .filter(|l| {
            !(l.starts_with("fsck.fat ")
                || l.contains(" files, ")
                || l.starts_with("Starting ")
                || l.starts_with("Checking we can access"))
        })
        .collect();
    assert!(noise.is_empty(), "fsck.fat found something: {out}");
}

fn sample_tree(big: usize) -> FatTree {
    let mut t = FatTree::new();
    let bytes = |n: usize, seed: u8| {
        FileData::Bytes(Arc::from(
            (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect::<Vec<u8>>(),
        ))
    };
    t.add_file("/EFI/BOOT/BOOTX64.EFI", bytes(140_891, 1)).unwrap();
    t.add_file("/EFI/systemd/systemd-bootx64.efi", bytes(140_891, 1)).unwrap();
    t.add_file("/loader/loader.conf", "timeout 1\n".into()).unwrap();
    t.add_file("/loader/entries/reprodisk.conf", "title x\n".into()).unwrap();
    t.add_file("/vmlinuz-6.1.0-50-amd64", bytes(big, 2)).unwrap();
    t.add_file("/vmlinuz-6.1.0-9-amd64", bytes(4096, 3)).unwrap();
    t.add_file("/empty", FileData::Bytes(Arc::from(&b""[..]))).unwrap();
    t.add_file("/Ünïcödé name with a long tail.txt", bytes(13, 4)).unwrap();
    t.add_dir("/deep/er/still/deeper").unwrap();
    for i in 0..40 {
        t.add_file(&format!("/many/file-{i:02}.data"), bytes(i * 100, i as u8)).unwrap();
    }
    t
}

#[test]
fn reference_tools_read_what_we_write() {
    let dir = tempfile::tempdir().unwrap();
    for (mib, ty) in [(2, FatType::Fat12), (92, FatType::Fat16), (600, FatType::Fat32)] {
        let img = dir.path().join(format!("fat{mib}.img"));
        let tree = sample_tree(if mib == 2 { 300_000 } else { 3_000_000 });
        let plan = write_fat(&tree, mib, &img);
        assert_eq!(plan.geometry.fat_type, ty);
        let s = img.to_str().unwrap();
        fsck_clean(&img);

        let o = common::tool("blkid", "util-linux", &["-p", "-o", "export", s]);
        let b = String::from_utf8_lossy(&o.stdout);
        for want in [
            "TYPE=vfat",
            "LABEL=ESP",
            "LABEL_FATBOOT=ESP",
            "UUID=49F6-82E7",
            &format!("VERSION={}", ty.name()),
        ] {
            assert!(b.lines().any(|l| l == want), "{mib} MiB: blkid lacks {want}: {b}");
        }

        let o = mtools("minfo", &["-i", s, "::"]);
        let m = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{m}");
        assert!(m.contains(&format!("cluster size: {} sectors", plan.geometry.sectors_per_cluster)), "{m}");
        assert!(m.contains("serial number: 49F682E7"), "{m}");

        // The verifier's reader: no findings, the same files, the same free count.
        let bytes = std::fs::read(&img).unwrap();
        let fat = Fat::open(&bytes).unwrap();
        let walked = fat.walk().unwrap();
        let summary = fat.summary(Some(&walked));
        assert!(
            fat.findings.is_empty() && walked.findings.is_empty(),
            "{:?} {:?}",
            fat.findings,
            walked.findings
        );
        assert_eq!(summary.free_clusters, plan.free_clusters());
        assert_eq!(summary.bytes_per_cluster as u64, plan.geometry.cluster_bytes());
        if ty == FatType::Fat32 {
            assert_eq!(summary.fsinfo_free_count, Some(plan.free_clusters()));
        }
        assert_eq!(summary.label.as_deref(), Some("ESP"));

        let o = mtools("mdir", &["-/", "-b", "-i", s, "::"]);
        let listed = String::from_utf8_lossy(&o.stdout);
        for (path, data) in tree.files() {
            assert!(
                listed.lines().any(|l| l == format!("::{path}")),
                "{mib} MiB: mdir lacks {path}: {listed}"
            );
            let FileData::Bytes(want) = data else { unreachable!() };
            let got = fat.read_file(&path, 1 << 30).unwrap();
            assert_eq!(&got[..], &want[..], "verifier read of {path}");
            let out = dir.path().join("copy");
            let _ = std::fs::remove_file(&out);
            let o = mtools("mcopy", &["-n", "-i", s, &format!("::{path}"), out.to_str().unwrap()]);
            assert!(o.status.success(), "mcopy {path}: {}", String::from_utf8_lossy(&o.stderr));
            assert_eq!(std::fs::read(&out).unwrap(), &want[..], "mcopy read of {path}");
        }
    }
}

#[test]
fn too_many_files_say_how_much_is_missing() {
    let mut t = FatTree::new();
    t.add_file("/big", FileData::Bytes(Arc::from(vec![1u8; 3 << 20]))).unwrap();
    let e = fat::plan(&t, 2 << 20, &opts(2048)).unwrap_err().to_string();
    assert!(e.contains("MiB missing"), "{e}");
    assert_eq!(fat::min_mib(&t, &opts(2048), 64), Some(4));
}

#[test]
fn names_differing_in_case_are_refused() {
    let mut t = FatTree::new();
    t.add_file("/EFI/a", "x".into()).unwrap();
    assert!(t.add_file("/efi/b", "x".into()).is_err());
    assert!(t.add_file("/EFI/A", "x".into()).is_err());
}

fn name_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Z0-9]{1,8}",
        "[A-Z0-9]{1,8}\\.[A-Z]{1,3}",
        "[a-zA-Z0-9 ._+-]{1,40}",
        "[a-z]{1,6}é[a-z]{0,6}",
    ]
    .prop_filter("valid FAT long names", |n| fat::name::check_long(n).is_ok())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_trees_are_fsck_clean(
        files in prop::collection::vec((prop::collection::vec(name_strategy(), 1..4), 0usize..9000, any::<u8>()), 1..30),
        mib in prop_oneof![Just(4u64), Just(40u64)],
    ) {
        let mut tree = FatTree::new();
        let mut added = Vec::new();
        for (comps, size, seed) in files {
            let path = format!("/{}", comps.join("/"));
            let data: Vec<u8> = (0..size).map(|i| (i as u8) ^ seed).collect();
            if tree.add_file(&path, FileData::Bytes(Arc::from(data.clone()))).is_ok() {
                added.push((path, data));
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("p.img");
        write_fat(&tree, mib, &img);
        fsck_clean(&img);
        let bytes = std::fs::read(&img).unwrap();
        let fat = Fat::open(&bytes).unwrap();
        let walked = fat.walk().unwrap();
        prop_assert!(walked.findings.is_empty(), "{:?}", walked.findings);
        for (path, data) in added {
            prop_assert_eq!(fat.read_file(&path, 1 << 20).unwrap(), data, "{}", path);
        }
    }
}
