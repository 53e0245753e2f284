//! Unit tests of spec parsing: aliases, defaults, the seed's assertions, sizes and paths.

use super::*;
use serde_json::json;

fn spec(v: Value) -> Result<Spec, SpecError> {
    Spec::from_value(v, Path::new("/specs"), None)
}

#[test]
fn seed_json_with_camel_case_works() {
    let s = spec(json!({"partitionTableType":"efi","diskSize":1024,"installBootLoader":false})).unwrap();
    assert_eq!(s.partition_table_type, Layout::Efi);
    assert_eq!(s.disk_size, DiskSize::Mib(1024));
    assert_eq!(spec(json!({"diskSize": "10"})).unwrap().disk_size, DiskSize::Mib(10), "bare digits are MiB");
    assert!(!s.install_boot_loader);
}

#[test]
fn defaults_are_the_seeds() {
    let s = spec(json!({})).unwrap();
    assert_eq!(s.partition_table_type, Layout::Legacy);
    assert_eq!(s.disk_size, DiskSize::Auto);
    assert_eq!(s.additional_space, 512 << 20);
    assert_eq!(s.boot_size, 256 << 20);
    assert_eq!(
        (s.label.as_str(), s.name.as_str(), s.base_name.as_str()),
        ("nixos", "nixos-disk-image", "nixos")
    );
    assert_eq!(s.format, Format::Raw);
    assert!(s.deterministic && s.copy_channel && !s.touch_efi_vars && !s.only_nix_store);
    assert_eq!(s.mem_size, 1024);
    assert_eq!(s.root_gpuid, SEED_ROOT_GPUID);
    assert_eq!(s.root_fsuid, Some(SEED_ROOT_GPUID));
    assert_eq!(s.disk_guid, SEED_DISK_GUID);
    assert_eq!(
        s.source_date_epoch,
        SourceDateEpoch { value: DEFAULT_SOURCE_DATE_EPOCH, origin: EpochOrigin::Default }
    );
    assert_eq!(s.timestamps, Timestamps::Clamp);
    let s = spec(json!({"onlyNixStore": true})).unwrap();
    assert_eq!(s.label, "nix-store");
}

#[test]
fn unknown_keys_name_the_closest() {
    let e = spec(json!({"partitonTableType": "efi"})).unwrap_err().to_string();
    assert_eq!(e, "unknown key `partitonTableType` (did you mean `partitionTableType`?)");
    let e = spec(json!({"system": {"rot": "x"}})).unwrap_err().to_string();
    assert_eq!(e, "unknown key `system.rot` (did you mean `root`?)");
    let e =
        spec(json!({"contents": [{"source": "a", "target": "/a", "gruop": "x"}]})).unwrap_err().to_string();
    assert_eq!(e, "unknown key `contents[0].gruop` (did you mean `group`?)");
}

#[test]
fn alias_and_key_together_fail() {
    assert!(matches!(spec(json!({"disk_size": 5, "diskSize": 5})), Err(SpecError::DuplicateKey { .. })));
}

#[test]
fn seed_assertions() {
    for (v, needle) in [
        (json!({"partitionTableType": "gpt"}), "must be one of"),
        (json!({"rootFSUID": null}), "rootFSUID must be non-null"),
        (json!({"fsType": "btrfs"}), "a partition table needs fsType"),
        (json!({"fsType": "btrfs", "partitionTableType": "none"}), "ext4 root filesystems only"),
        (json!({"touchEFIVars": true, "partitionTableType": "legacy"}), "needs a GPT layout"),
        (json!({"onlyNixStore": true, "contents": [{"source": "a", "target": "/a"}]}), "onlyNixStore"),
        (json!({"contents": [{"source": "a", "target": "/a", "user": "root"}]}), "both of user and group"),
        (json!({"additionalPaths": ["nix/store/x"]}), "is not absolute"),
        (json!({"installBootLoader": true}), "needs a [system] table"),
        (json!({"rootGPUID": "97FD5997-D90B-4AA3-8D16-C1723AEA73C"}), "is not a GUID"),
        (json!({"diskSize": "1.5K"}), "whole number of MiB"),
        (json!({"diskSize": 0}), "positive whole number"),
        (json!({"bootSize": "256MiB"}), "numfmt"),
        (json!({"system": {"root": "r", "kernelParams": ["root=/dev/sda"]}}), "adds root="),
        (json!({"label": "a-label-longer-than-16"}), "at most 16 bytes"),
    ] {
        let e = spec(v.clone()).unwrap_err().to_string();
        assert!(e.contains(needle), "{v}: {e}");
    }
}

#[test]
fn sizes_and_paths() {
    let s = spec(json!({"diskSize": "2G", "bootSize": "1.5M", "additionalSpace": 4096,
        "system": {"root": "root.tar"}, "contents": [{"source": "../motd", "target": "/etc/motd"}]}))
    .unwrap();
    assert_eq!(s.disk_size, DiskSize::Mib(2048));
    assert_eq!(s.boot_size, 1572864);
    assert_eq!(s.additional_space, 4096);
    assert_eq!(s.system.as_ref().unwrap().root.resolved, Path::new("/specs/root.tar"));
    assert_eq!(s.contents[0].source.resolved, Path::new("/specs/../motd"));
    assert!(s.install_boot_loader, "a system table turns the seed's default on");
}

#[test]
fn source_date_epoch_precedence() {
    let s = Spec::from_value(json!({"sourceDateEpoch": 5}), Path::new("."), Some("7")).unwrap();
    assert_eq!(s.source_date_epoch, SourceDateEpoch { value: 5, origin: EpochOrigin::Spec });
    let s = Spec::from_value(json!({}), Path::new("."), Some("7")).unwrap();
    assert_eq!(s.source_date_epoch, SourceDateEpoch { value: 7, origin: EpochOrigin::Environment });
    assert!(Spec::from_value(json!({}), Path::new("."), Some("yesterday")).is_err());
}

#[test]
fn edit_distance_counts_edits() {
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(edit_distance("diskSize", "disksize"), 0);
    assert_eq!(edit_distance("", "abc"), 3);
}
