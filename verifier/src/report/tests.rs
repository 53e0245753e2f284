//! The report's checks, lints and renderings on hand-made reports.

use super::render::human_size;
use super::*;
use crate::expect::{
    SEED_DISK_GUID, SEED_PART1_GUID, SEED_ROOT_GUID, TYPE_BIOS_BOOT, TYPE_ESP, TYPE_LINUX_DATA, TYPE_XBOOTLDR,
};

const MIB: u64 = 1 << 20;
const EPOCH: i64 = 315_532_800;

fn spec(extra: &str) -> Expectations {
    Expectations::from_toml_str(&format!(
        "partitionTableType = \"efi\"\ndiskSize = 1024\n{extra}\n\
         [[contents]]\nsource = \"motd\"\ntarget = \"/etc/motd\"\nmode = \"0644\"\nuser = \"root\"\ngroup = \"wheel\"\n"
    ))
    .expect("valid spec")
}

/// A report as the readers would fill it for a good `efi` image built from [`spec`].
fn good() -> VerifyReport {
    let mut r = VerifyReport {
        image: ImageInfo { path: Some("nixos.img".into()), size: 1024 * MIB },
        table: TableInfo {
            kind: TableKind::Gpt,
            boot_code: Some("empty".into()),
            disk_guid: Some(SEED_DISK_GUID.into()),
            mbr_signature: Some(0),
            first_usable_lba: Some(34),
            last_usable_lba: Some(2_097_118),
            partitions: vec![
                PartitionInfo {
                    number: 1,
                    start_lba: 16384,
                    sectors: 509_952,
                    type_id: TYPE_ESP.into(),
                    type_name: "EFI System".into(),
                    name: Some("ESP".into()),
                    guid: Some(SEED_PART1_GUID.into()),
                    bootable: false,
                    attributes: 0,
                },
                PartitionInfo {
                    number: 2,
                    start_lba: 526_336,
                    sectors: 1_568_768,
                    type_id: TYPE_LINUX_DATA.into(),
                    type_name: "Linux filesystem".into(),
                    name: Some("primary".into()),
                    guid: Some(SEED_ROOT_GUID.into()),
                    bootable: false,
                    attributes: 0,
                },
            ],
        },
        ..Default::default()
    };
    let mut esp = FsInfo::new(Some(1), FsType::Fat32);
    esp.label = "ESP        ".into();
    esp.volume_id = Some(0x1234_ABCD);
    esp.size_bytes = 509_952 * 512;
    esp.block_size = 512;
    esp.file_count = 3;
    let mut root = FsInfo::new(Some(2), FsType::Ext4);
    root.label = "nixos".into();
    root.uuid = Some(SEED_ROOT_GUID.to_lowercase());
    root.size_bytes = 1_568_768 * 512;
    root.block_size = 4096;
    root.ext4 = Some(Ext4Info {
        hash_seed: "5f1e8c0a-1b2c-8d3e-9f40-112233445566".into(),
        state: 1,
        journal_clean: Some(true),
        features: vec!["has_journal".into(), "extents".into()],
        ..Default::default()
    });
    root.files =
        FileTree::from_paths([("/", 0o40755, 0, 0), ("/etc", 0o40755, 0, 0), ("/etc/motd", 0o100644, 0, 10)]);
    root.file_count = 3;
    root.users.insert("root".into(), 0);
    root.groups.insert("wheel".into(), 10);
    r.filesystems = vec![esp, root];
    for (class, rule) in [
        ("ext4 superblock s_mkfs_time", TimeRule::Epoch),
        ("ext4 superblock s_wtime", TimeRule::LastWrite),
        ("ext4 superblock s_lastcheck", TimeRule::ZeroOrEpoch),
    ] {
        r.add_time(Some(2), class, rule, EPOCH, "superblock");
    }
    r.add_time(Some(2), "ext4 superblock s_mtime", TimeRule::LastMount, 0, "superblock");
    r.add_time(Some(2), "ext4 inode i_mtime", TimeRule::File, EPOCH, "/");
    r.add_time(Some(2), "ext4 inode i_mtime", TimeRule::File, 1000, "/etc/motd");
    r
}

fn derived() -> DerivedIds {
    let mut d = DerivedIds::default();
    d.ext4_hash_seed.insert(Some(2), "5f1e8c0a-1b2c-8d3e-9f40-112233445566".into());
    d.fat_volume_ids.insert(1, 0x1234_ABCD);
    d
}

fn codes(r: &VerifyReport) -> Vec<String> {
    r.findings.iter().map(|f| format!("{}:{}", f.severity.as_str(), f.code)).collect()
}

#[test]
fn a_good_image_passes() {
    let mut r = good();
    r.check(Some(&spec("")), None, &derived());
    assert_eq!(codes(&r), Vec::<String>::new(), "{}", r.render_text());
    assert!(!r.failed());
    assert_eq!(r.exit_code(), 0);
}

#[test]
fn layout_ids_labels_and_contents_are_checked() {
    let mut r = good();
    r.table.partitions[1].start_lba += 2048;
    r.table.partitions[0].attributes = 1 << 2;
    r.table.partitions[1].guid = Some("00000000-0000-0000-0000-000000000001".into());
    r.table.disk_guid = Some("97FD5997-D90B-4AA3-8D16-C1723AEA73C0".into());
    r.filesystems[0].label = "BOOT".into();
    r.filesystems[1].uuid = Some("11111111-1111-1111-1111-111111111111".into());
    if let Some(motd) = r.filesystems[1].files.get_mut(2) {
        motd.mode = 0o100600;
        motd.gid = 0;
    }
    r.check(Some(&spec("")), None, &derived());
    assert_eq!(
        codes(&r),
        [
            "error:content-mode",
            "error:content-owner",
            "error:disk-guid",
            "error:fs-label",
            "error:fs-uuid",
            "error:partition-attributes",
            "error:partition-guid",
            "error:partition-start",
        ]
    );
    assert!(r.failed());
    let owner = r.findings.iter().find(|f| f.code == "content-owner").expect("listed above");
    assert!(owner.message.contains("/etc/motd by 0:0"), "{}", owner.message);
}

#[test]
fn missing_things_are_errors() {
    let mut r = good();
    r.filesystems[1].files = FileTree::from_paths([("/", 0o40755, 0, 0), ("/etc", 0o40755, 0, 0)]);
    r.filesystems.remove(0);
    r.table.partitions.pop();
    r.check(Some(&spec("")), None, &derived());
    assert_eq!(
        codes(&r),
        ["error:content-missing", "error:fs-missing", "error:partition-count", "error:partition-missing"]
    );
    let mut r = good();
    r.table.kind = TableKind::Mbr;
    r.check(Some(&spec("")), None, &derived());
    assert!(codes(&r).contains(&"error:layout-table".to_string()));
}

#[test]
fn determinism_lints() {
    let mut r = good();
    if let Some(x) = &mut r.filesystems[1].ext4 {
        x.mount_count = 3;
        x.kbytes_written = 1234;
        x.last_mounted = "/mnt".into();
        x.journal_clean = Some(false);
    }
    r.filesystems[0].volume_id = Some(0xDEAD_BEEF);
    r.add_time(Some(2), "ext4 superblock s_mtime", TimeRule::LastMount, 1_732_550_400, "superblock");
    r.add_time(Some(2), "ext4 superblock s_wtime", TimeRule::LastWrite, 1_732_550_400, "superblock");
    r.add_time(Some(2), "ext4 inode i_mtime", TimeRule::File, 1_732_550_400, "/etc/hostname");
    r.check(Some(&spec("")), None, &derived());
    assert_eq!(
        codes(&r),
        [
            "error:ext4-journal-dirty",
            "error:ext4-kbytes-written",
            "error:ext4-last-mounted",
            "error:ext4-mount-count",
            "error:file-time-after-epoch",
            "error:id-not-derived",
            "error:last-mount-time",
            "error:last-write-time",
        ]
    );
    let f = r.findings.iter().find(|f| f.code == "file-time-after-epoch").expect("listed above");
    assert!(f.message.contains("1732550400 at /etc/hostname"), "{}", f.message);
}

#[test]
fn lints_follow_the_time_policy_and_the_deterministic_flag() {
    let mut r = good();
    r.check(Some(&spec("timestamps = \"source-date-epoch\"")), None, &derived());
    assert_eq!(codes(&r), ["error:time-not-epoch"]);
    let mut r = good();
    r.check(Some(&spec("source_date_epoch = 1000\ntimestamps = \"keep\"")), None, &derived());
    assert_eq!(codes(&r), ["error:last-write-time", "error:time-not-epoch", "error:time-not-epoch"]);
    let mut r = good();
    if let Some(x) = &mut r.filesystems[1].ext4 {
        x.hash_seed = "00000000-0000-0000-0000-000000000000".into();
    }
    r.check(Some(&spec("deterministic = false")), None, &derived());
    assert_eq!(codes(&r), ["info:ext4-hash-seed-zero"]);
    assert!(!r.failed());
}

#[test]
fn without_a_spec_lints_warn_and_the_epoch_is_inferred() {
    let mut r = good();
    r.add_time(Some(2), "ext4 superblock s_mkfs_time", TimeRule::Epoch, 1_732_550_400, "superblock");
    r.check(None, None, &DerivedIds::default());
    assert_eq!(codes(&r), ["warning:time-not-epoch", "info:epoch-inferred"]);
    assert!(!r.failed());
}

#[test]
fn malformed_spec_guids_fail_verification() {
    let mut r = good();
    r.check(Some(&spec("rootGPUID = \"F222513B-DED1-49FA-B591-20CE86A2FE7\"")), None, &derived());
    assert!(codes(&r).contains(&"error:spec-malformed-guid".to_string()));
}

#[test]
fn renderings() {
    let mut r = good();
    if let Some(x) = &mut r.filesystems[1].ext4 {
        x.mount_count = 1;
    }
    r.check(Some(&spec("")), None, &derived());
    insta::assert_snapshot!("verify_text", r.render_text());
    insta::assert_snapshot!("verify_json", r.to_json());
}

#[test]
fn layouts_are_recognised_from_the_table() {
    let mut t = good().table;
    assert_eq!(infer_layout(&t), Some(LayoutName::Efi));
    t.partitions.insert(1, PartitionInfo { type_id: TYPE_BIOS_BOOT.to_lowercase(), ..Default::default() });
    assert_eq!(infer_layout(&t), Some(LayoutName::Hybrid));
    t.partitions[1].type_id = TYPE_XBOOTLDR.into();
    assert_eq!(infer_layout(&t), Some(LayoutName::Efixbootldr));
    t.partitions.remove(0);
    assert_eq!(infer_layout(&t), None);
    t.partitions[0].type_id = TYPE_BIOS_BOOT.into();
    assert_eq!(infer_layout(&t), Some(LayoutName::LegacyGpt));
    t.kind = TableKind::Mbr;
    t.partitions[0].bootable = true;
    assert_eq!(infer_layout(&t), Some(LayoutName::LegacyBoot));
    t.partitions.pop();
    assert_eq!(infer_layout(&t), Some(LayoutName::Legacy));
}

#[test]
fn sizes_read_well() {
    assert_eq!(human_size(512), "512 B");
    assert_eq!(human_size(257 * MIB), "257 MiB");
    assert_eq!(human_size(1536 * MIB), "1.5 GiB");
}
