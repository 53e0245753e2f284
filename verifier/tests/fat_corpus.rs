//! The FAT reader on util-linux's blkid test images: every image opens, and UUID, LABEL,
//! LABEL_FATBOOT, VERSION and SEC_TYPE equal the `.expected` files field by field.

mod fat_support;

use fat_support::{blkid_enc, check_fsck, corpus_image, udev_map};
use reprodisk_verifier::bytes::ImageFile;
use reprodisk_verifier::fat::{Fat, FatType};

const IMAGES: &[&str] = &[
    "fat",
    "fat16_noheads",
    "fat32_cp850_O_tilde",
    "fat32_label_64MB",
    "fat32_mkdosfs_label1",
    "fat32_mkdosfs_label1_dosfslabel_NO_NAME",
    "fat32_mkdosfs_label1_dosfslabel_empty",
    "fat32_mkdosfs_label1_dosfslabel_label2",
    "fat32_mkdosfs_label1_mlabel_NO_NAME",
    "fat32_mkdosfs_label1_mlabel_erase",
    "fat32_mkdosfs_label1_xp_erase",
    "fat32_mkdosfs_label1_xp_label2",
    "fat32_mkdosfs_none",
    "fat32_mkdosfs_none_dosfslabel_NO_NAME",
    "fat32_mkdosfs_none_dosfslabel_label1",
    "fat32_mkdosfs_none_dosfslabel_label1_xp_label2",
    "fat32_mkdosfs_none_xp_label1",
    "fat32_mkdosfs_none_xp_label1_dosfslabel_label2",
    "fat32_xp_label1",
    "fat32_xp_none",
    "fat32_xp_none_dosfslabel_label1",
    "fat32_xp_none_mlabel_label1",
    "small-fat32",
];

fn check(name: &str) {
    let dir = tempfile::tempdir().expect("a tempdir");
    let path = corpus_image(dir.path(), name);
    let expected_text = std::fs::read_to_string(format!("/work/shared/corpus/util-linux/fs/{name}.expected"))
        .expect("every corpus image has its .expected file");
    let want = udev_map(&expected_text);
    let img = ImageFile::open(&path).expect("the decompressed image opens");
    let fat = Fat::open(&img).unwrap_or_else(|e| panic!("{name}: {e}"));

    let mut got = std::collections::BTreeMap::new();
    got.insert("ID_FS_VERSION".to_string(), fat.geometry.fat_type.name().to_string());
    let uuid = fat.boot.volume_id_string();
    got.insert("ID_FS_UUID".into(), uuid.clone());
    got.insert("ID_FS_UUID_ENC".into(), uuid);
    if fat.geometry.fat_type != FatType::Fat32 {
        got.insert("ID_FS_SEC_TYPE".into(), "msdos".into());
    }
    if let Some(l) = fat.root_label().unwrap_or_else(|e| panic!("{name}: root label: {e}"))
        && !l.trimmed().is_empty()
    {
        got.insert("ID_FS_LABEL_ENC".into(), blkid_enc(l.trimmed()));
    }
    // The whole tree reads, except on fat16_noheads, whose data area runs past the end of
    // the image: there the walk must stop with a truncation error, not garbage.
    let tree = fat.walk();
    if name == "fat16_noheads" {
        assert!(matches!(tree, Err(reprodisk_verifier::Error::Truncated { .. }) | Ok(_)), "{name}: {tree:?}");
    } else {
        let tree = tree.as_ref().unwrap_or_else(|e| panic!("{name}: walk failed: {e}"));
        // fsck.fat -n -v agrees on the boot sector, the geometry and the counts.
        let says = check_fsck(path.to_str().expect("tempdir paths are UTF-8"), &fat, tree, false);
        // fsck.fat's label complaints match ours: the two labels differ...
        let fsck_differ = [
            "and different",
            "but there is no volume label in root directory",
            "There is no label in boot sector",
        ]
        .iter()
        .any(|m| says.contains(m));
        let we_differ = tree
            .findings
            .iter()
            .any(|f| f.structure == "fat volume label" && f.what.contains("BS_VolLab is"));
        assert_eq!(we_differ, fsck_differ, "{name}: label mismatch: {says}");
        // ...and the root label is not valid. fsck.fat 4.2 compares label bytes as signed
        // chars, so it rejects every byte above 0x7f, which the spec allows: only labels of
        // ASCII bytes are compared.
        if let Some(l) = &tree.root_label
            && l.raw.is_ascii()
        {
            let we_invalid = tree.findings.iter().any(|f| f.what.contains("label is not valid"));
            assert_eq!(
                we_invalid,
                says.contains("stored in root directory is not valid"),
                "{name}: label validity: {says}"
            );
        }
    }
    let summary = fat.summary(tree.as_ref().ok());
    // The walk flags a root label that disagrees with BS_VolLab exactly when blkid's two
    // labels differ (blkid hides "NO NAME" in the boot sector, so absent means "NO NAME").
    if let Ok(tree) = &tree {
        let no_name = "NO\\x20NAME".to_string();
        let root = want.get("ID_FS_LABEL_ENC").unwrap_or(&no_name);
        let boot = want.get("ID_FS_LABEL_FATBOOT_ENC").unwrap_or(&no_name);
        let flagged = tree
            .findings
            .iter()
            .any(|f| f.structure == "fat volume label" && f.what.contains("BS_VolLab is"));
        assert_eq!(flagged, root != boot, "{name}: label finding: {:?}", tree.findings);
    }
    if let Some(l) = fat.boot.boot_label() {
        got.insert("ID_FS_LABEL_FATBOOT_ENC".into(), blkid_enc(l));
    }
    // The report's text fields agree with the raw ones.
    assert_eq!(summary.label_fatboot.is_some(), fat.boot.boot_label().is_some(), "{name}");
    assert_eq!(summary.volume_id.as_deref(), Some(fat.boot.volume_id_string().as_str()), "{name}");
    for key in [
        "ID_FS_VERSION",
        "ID_FS_UUID",
        "ID_FS_UUID_ENC",
        "ID_FS_SEC_TYPE",
        "ID_FS_LABEL_ENC",
        "ID_FS_LABEL_FATBOOT_ENC",
    ] {
        assert_eq!(got.get(key), want.get(key), "{name}: {key}");
    }
    // FSSIZE is the volume size the boot sector describes.
    if let Some(size) = want.get("ID_FS_FSSIZE") {
        assert_eq!(fat.geometry.volume_bytes().to_string(), *size, "{name}: ID_FS_FSSIZE");
    }
}

macro_rules! corpus_tests {
    ($($t:ident => $n:literal),* $(,)?) => {$(
        #[test]
        fn $t() { check($n); }
    )*};
}

corpus_tests!(
    fat12 => "fat",
    fat16_noheads => "fat16_noheads",
    cp850_o_tilde => "fat32_cp850_O_tilde",
    label_64mb => "fat32_label_64MB",
    mkdosfs_label1 => "fat32_mkdosfs_label1",
    mkdosfs_label1_dosfslabel_no_name => "fat32_mkdosfs_label1_dosfslabel_NO_NAME",
    mkdosfs_label1_dosfslabel_empty => "fat32_mkdosfs_label1_dosfslabel_empty",
    mkdosfs_label1_dosfslabel_label2 => "fat32_mkdosfs_label1_dosfslabel_label2",
    mkdosfs_label1_mlabel_no_name => "fat32_mkdosfs_label1_mlabel_NO_NAME",
    mkdosfs_label1_mlabel_erase => "fat32_mkdosfs_label1_mlabel_erase",
    mkdosfs_label1_xp_erase => "fat32_mkdosfs_label1_xp_erase",
    mkdosfs_label1_xp_label2 => "fat32_mkdosfs_label1_xp_label2",
    mkdosfs_none => "fat32_mkdosfs_none",
    mkdosfs_none_dosfslabel_no_name => "fat32_mkdosfs_none_dosfslabel_NO_NAME",
    mkdosfs_none_dosfslabel_label1 => "fat32_mkdosfs_none_dosfslabel_label1",
    mkdosfs_none_dosfslabel_label1_xp_label2 => "fat32_mkdosfs_none_dosfslabel_label1_xp_label2",
    mkdosfs_none_xp_label1 => "fat32_mkdosfs_none_xp_label1",
    mkdosfs_none_xp_label1_dosfslabel_label2 => "fat32_mkdosfs_none_xp_label1_dosfslabel_label2",
    xp_label1 => "fat32_xp_label1",
    xp_none => "fat32_xp_none",
    xp_none_dosfslabel_label1 => "fat32_xp_none_dosfslabel_label1",
    xp_none_mlabel_label1 => "fat32_xp_none_mlabel_label1",
    small_fat32 => "small-fat32",
);

#[test]
fn the_list_covers_every_fat_image_of_the_corpus() {
    let mut on_disk: Vec<String> = std::fs::read_dir("/work/shared/corpus/util-linux/fs")
        .expect("the corpus directory exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".img.xz").map(str::to_string))
        .filter(|n| n.contains("fat"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = IMAGES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

/// The JSON report of two fixed images, reviewed by hand: any change to what the summary
/// says about them shows up as a snapshot diff.
#[test]
fn summary_snapshots_of_fixed_images() {
    for name in ["fat", "small-fat32"] {
        let dir = tempfile::tempdir().expect("a tempdir");
        let path = corpus_image(dir.path(), name);
        let img = ImageFile::open(&path).expect("the decompressed image opens");
        let fat = Fat::open(&img).unwrap_or_else(|e| panic!("{name}: {e}"));
        let tree = fat.walk().unwrap_or_else(|e| panic!("{name}: {e}"));
        let paths: Vec<String> = tree
            .nodes
            .iter()
            .map(|n| {
                format!("{} {:#04x} {} {:?}", n.path, n.entry.dir_attr, n.entry.dir_file_size, n.clusters)
            })
            .collect();
        insta::assert_json_snapshot!(name, (fat.summary(Some(&tree)), paths));
    }
}
