//! The whole pass on images made by the reference tools (mkfs.vfat, mtools, sgdisk, mke2fs).

use super::*;
use crate::bytes::ImageFile;
use crate::expect::{SEED_DISK_GUID, SEED_PART1_GUID, SEED_ROOT_GUID};
use crate::ext4::section::parse_accounts;
use crate::fat::section::runs;
use std::path::Path;
use std::process::Command;

const MIB: u64 = 1 << 20;

#[test]
fn cluster_runs() {
    assert_eq!(runs(&[5, 6, 7, 9, 10, 3]), [(5, 3), (9, 2), (3, 1)]);
    assert!(runs(&[]).is_empty());
}

#[test]
fn accounts_files() {
    let m = parse_accounts(
        b"root:x:0:0:root:/root:/bin/sh\n# comment\nnobody:x:65534:65534::/:/bin/false\nbad\n",
    );
    assert_eq!(m.get("root"), Some(&0));
    assert_eq!(m.get("nobody"), Some(&65534));
    assert_eq!(m.len(), 2);
}

/// An mtools command with its clock pinned (mtools honours SOURCE_DATE_EPOCH), so that two
/// images written one after the other get the same entry times.
fn mtools(tool: &str) -> Command {
    let mut c = Command::new(tool);
    c.env("SOURCE_DATE_EPOCH", "315532800");
    c
}

fn run(cmd: &mut Command, package: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?} (install {package}): {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// An `efi` image as the seed makes it (parted, sgdisk with the seed's GUIDs, mkfs.vfat
/// and mkfs.ext4 at the partition offsets), 64 MiB with bootSize 24M (ESP 8..25 MiB).
fn seed_efi_image(dir: &Path) -> std::path::PathBuf {
    let img = dir.join("efi.img");
    std::fs::File::create(&img).and_then(|f| f.set_len(64 * MIB)).expect("scratch image");
    let script = "mklabel gpt mkpart ESP fat32 8MiB 25MiB set 1 boot on mkpart primary ext4 25MiB 100%";
    run(Command::new("parted").arg("--script").arg(&img).arg("--").args(script.split(' ')), "parted");
    run(
        Command::new("sgdisk")
            .arg(format!("--disk-guid={SEED_DISK_GUID}"))
            .arg(format!("--partition-guid=1:{SEED_PART1_GUID}"))
            .arg(format!("--partition-guid=2:{SEED_ROOT_GUID}"))
            .arg(&img),
        "gdisk",
    );
    run(Command::new("mkfs.vfat").args(["-n", "ESP", "--offset=16384"]).arg(&img).arg("17408"), "dosfstools");
    let src = dir.join("loader.conf");
    std::fs::write(&src, "timeout 3\n").expect("scratch file");
    let esp = format!("{}@@{}", img.display(), 8 * MIB);
    run(mtools("mmd").args(["-i", &esp, "::/loader"]), "mtools");
    run(mtools("mcopy").args(["-i", &esp]).arg(&src).arg("::/loader/loader.conf"), "mtools");
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("etc")).expect("scratch tree");
    std::fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").expect("scratch tree");
    std::fs::write(root.join("etc/group"), "root:x:0:\nwheel:x:10:\n").expect("scratch tree");
    std::fs::write(root.join("etc/motd"), "hello\n").expect("scratch tree");
    run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-b", "4096", "-L", "nixos", "-U", SEED_ROOT_GUID, "-d"])
            .arg(&root)
            .arg("-E")
            .arg(format!("offset={}", 25 * MIB))
            .arg(&img)
            .arg(format!("{}K", 38 * 1024)),
        "e2fsprogs",
    );
    img
}

fn spec() -> Expectations {
    Expectations::from_toml_str(
        "partitionTableType = \"efi\"\ndiskSize = 64\nbootSize = \"24M\"\n\
         [[contents]]\nsource = \"motd\"\ntarget = \"/etc/motd\"\n",
    )
    .expect("valid spec")
}

/// A seed-made image passes every layout, label and GUID check, and the lints name
/// exactly what mkfs leaves random: times, the hash seed, the FAT volume ID.
#[test]
fn verify_a_seed_made_efi_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = seed_efi_image(dir.path());
    let r = ImageFile::open(&img).expect("open image");
    let rep = verify(&r, Some("efi.img"), Some(&spec()), None);
    let text = rep.render_text();
    let errors: Vec<&str> =
        rep.findings.iter().filter(|f| f.severity == Severity::Error).map(|f| f.code.as_str()).collect();
    for code in &errors {
        assert!(
            [
                "time-not-epoch",
                "last-write-time",
                "id-not-derived",
                "file-time-after-epoch",
                "ext4-kbytes-written"
            ]
            .contains(code),
            "unexpected {code}:\n{text}"
        );
    }
    assert!(errors.contains(&"id-not-derived"), "{text}");
    assert!(errors.contains(&"time-not-epoch"), "{text}");
    assert_eq!(rep.table.disk_guid.as_deref(), Some(SEED_DISK_GUID));
    assert_eq!(rep.layout, Some(crate::expect::LayoutName::Efi));
    assert_eq!(rep.table.boot_code.as_deref(), Some("empty"));
    let p: Vec<(u64, u64)> = rep.table.partitions.iter().map(|p| (p.start_lba, p.sectors)).collect();
    // On a 64 MiB disk parted ends `100%` at the last usable sector (see expect.rs).
    assert_eq!(p, [(16384, 34816), (51200, 79839)]);
    let fs: Vec<(Option<u32>, FsType, &str)> =
        rep.filesystems.iter().map(|f| (f.partition, f.fs_type, f.label.as_str())).collect();
    assert_eq!(fs, [(Some(1), FsType::Fat16, "ESP"), (Some(2), FsType::Ext4, "nixos")]);
    assert_eq!(rep.filesystems[1].uuid.as_deref(), Some(SEED_ROOT_GUID.to_lowercase().as_str()));
    assert_eq!(rep.filesystems[1].users.get("root"), Some(&0));
    assert!(rep.filesystems[0].files.find("/loader/loader.conf").is_some(), "{text}");
}

/// A `legacy` (MBR) image and a bare `none` filesystem, as the seed makes them: the table,
/// the root filesystem and the derived-ID lints (the MBR signature parted left random).
#[test]
fn verify_seed_made_legacy_and_none_images() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("legacy.img");
    std::fs::File::create(&img).and_then(|f| f.set_len(48 * MIB)).expect("scratch image");
    let script = "mklabel msdos mkpart primary ext4 1MiB 100%";
    run(Command::new("parted").arg("--script").arg(&img).arg("--").args(script.split(' ')), "parted");
    let mkfs = |target: &Path, offset: u64, kib: u64| {
        run(
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-b", "4096", "-L", "nixos", "-U", SEED_ROOT_GUID])
                .arg("-E")
                .arg(format!("offset={offset}"))
                .arg(target)
                .arg(format!("{kib}K")),
            "e2fsprogs",
        )
    };
    mkfs(&img, MIB, 47 * 1024);
    let spec = Expectations::from_toml_str("partitionTableType = \"legacy\"\ndiskSize = 48").expect("valid");
    let rep = verify(&ImageFile::open(&img).expect("open"), None, Some(&spec), None);
    let text = rep.render_text();
    assert_eq!(rep.layout, Some(crate::expect::LayoutName::Legacy), "{text}");
    assert_eq!(rep.table.partitions.len(), 1, "{text}");
    assert_eq!((rep.table.partitions[0].start_lba, rep.table.partitions[0].sectors), (2048, 96256));
    assert_eq!(rep.table.partitions[0].type_id, "0x83");
    let codes: Vec<&str> = rep.findings.iter().map(|f| f.code.as_str()).collect();
    for forbidden in
        ["partition-start", "partition-size", "partition-type", "fs-missing", "fs-label", "fs-uuid"]
    {
        assert!(!codes.contains(&forbidden), "{forbidden}:\n{text}");
    }
    let sig = rep.ids.iter().find(|i| i.what == "mbr disk signature").expect(&text);
    assert_eq!(sig.matches(), Some(false), "parted writes a random signature:\n{text}");

    let bare = dir.path().join("none.img");
    std::fs::File::create(&bare).and_then(|f| f.set_len(16 * MIB)).expect("scratch image");
    mkfs(&bare, 0, 16 * 1024);
    let spec = Expectations::from_toml_str("partitionTableType = \"none\"").expect("valid");
    let rep = verify(&ImageFile::open(&bare).expect("open"), None, Some(&spec), None);
    let text = rep.render_text();
    assert_eq!(rep.layout, Some(crate::expect::LayoutName::None), "{text}");
    assert!(rep.table.partitions.is_empty(), "{text}");
    assert_eq!(rep.filesystems.len(), 1, "{text}");
    assert_eq!((rep.filesystems[0].partition, rep.filesystems[0].label.as_str()), (None, "nixos"));
    let codes: Vec<&str> = rep.findings.iter().map(|f| f.code.as_str()).collect();
    assert!(!codes.contains(&"fs-missing") && !codes.contains(&"fs-uuid"), "{text}");
}

/// Two images that differ in one superblock field: the diff names exactly that field.
#[test]
fn diff_names_the_one_changed_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = seed_efi_image(dir.path());
    let other = dir.path().join("other.img");
    std::fs::copy(&img, &other).expect("copy image");
    let at = 25 * MIB + 1024 + 0x30;
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&other).expect("open copy");
        f.write_all_at(&1_732_550_400u32.to_le_bytes(), at).expect("write s_wtime");
    }
    let a = ImageFile::open(&img).expect("open a");
    let b = ImageFile::open(&other).expect("open b");
    let d = diff_images(&a, &b).expect("diff");
    assert_eq!(d.groups.len(), 1, "{}", d.render_text());
    assert_eq!(d.groups[0].name, "partition 2 ext4 superblock s_wtime");
    assert_eq!(d.groups[0].b.as_deref(), Some("1732550400"));
    assert_eq!(d.unexplained.ranges, 0);
}

/// A file changed through mtools and a label changed through tune2fs are named by file and
/// by field.
#[test]
fn diff_names_files_and_tool_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = seed_efi_image(dir.path());
    let other = dir.path().join("other.img");
    std::fs::copy(&img, &other).expect("copy image");
    let src = dir.path().join("loader.conf");
    std::fs::write(&src, "timeout 5\n").expect("scratch file");
    let esp = format!("{}@@{}", other.display(), 8 * MIB);
    run(mtools("mcopy").args(["-o", "-i", &esp]).arg(&src).arg("::/loader/loader.conf"), "mtools");
    let a = ImageFile::open(&img).expect("open a");
    let b = ImageFile::open(&other).expect("open b");
    let d = diff_images(&a, &b).expect("diff");
    let names: Vec<&str> = d.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["partition 1 file /loader/loader.conf data"], "{}", d.render_text());

    // tune2fs rewrites the label in the primary superblock (and its checksum).
    run(
        Command::new("tune2fs").args(["-L", "other"]).arg(format!("{}?offset={}", other.display(), 25 * MIB)),
        "e2fsprogs",
    );
    let b = ImageFile::open(&other).expect("open b");
    let d = diff_images(&a, &b).expect("diff");
    let text = d.render_text();
    let g = d.groups.iter().find(|g| g.field.as_deref() == Some("s_volume_name")).expect(&text);
    assert_eq!((g.a.as_deref(), g.b.as_deref()), (Some("\"nixos\""), Some("\"other\"")), "{text}");
    assert!(d.groups.iter().any(|g| g.field.as_deref() == Some("s_checksum")), "{text}");
    assert_eq!(d.unexplained.ranges, 0, "{text}");
}

/// The same two files copied into a FAT directory in two orders: the directory's entries
/// are named a reorder.
#[test]
fn diff_names_a_fat_directory_reorder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = seed_efi_image(dir.path());
    let other = dir.path().join("other.img");
    std::fs::copy(&img, &other).expect("copy image");
    for (name, text) in [("a.conf", "title a\n"), ("b.conf", "title b\n")] {
        std::fs::write(dir.path().join(name), text).expect("scratch file");
    }
    for (image, order) in [(&img, ["a.conf", "b.conf"]), (&other, ["b.conf", "a.conf"])] {
        let esp = format!("{}@@{}", image.display(), 8 * MIB);
        run(mtools("mmd").args(["-i", &esp, "::/entries"]), "mtools");
        for name in order {
            let src = dir.path().join(name);
            run(mtools("mcopy").args(["-i", &esp]).arg(&src).arg(format!("::/entries/{name}")), "mtools");
        }
    }
    let a = ImageFile::open(&img).expect("open a");
    let b = ImageFile::open(&other).expect("open b");
    let d = diff_images(&a, &b).expect("diff");
    let text = d.render_text();
    assert!(d.groups.iter().any(|g| g.name == "partition 1 FAT directory /entries entry order"), "{text}");
    assert_eq!(d.unexplained.ranges, 0, "{text}");
}
