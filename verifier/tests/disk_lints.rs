//! The ID rule and the determinism lints: `derive` against sha256sum on the documented
//! message, and the lints on tables made by the seed's own parted/sgdisk commands.

#[path = "disk_support.rs"]
mod support;

use reprodisk_verifier::disk;
use reprodisk_verifier::guid::Guid;
use reprodisk_verifier::ids::{self, LayoutName};
use reprodisk_verifier::lints::{Expectation, Finding, Severity, lint_ids};
use support::*;

const ROOT: &str = "F222513B-DED1-49FA-B591-20CE86A2FE7F";

/// sha256sum over `reprodisk:` + domain + NUL + the anchor's bytes, built by the shell
/// from the GUID's text (`xxd -r -p` of its hex digits: RFC 9562 order).
fn sha256sum_of_rule(domain: &str, anchor: &str) -> String {
    let dir = tempdir();
    let f = dir.path().join("msg");
    let script = format!(
        "printf 'reprodisk:%s\\0' '{domain}' > '{f}' && printf '%s' '{}' | xxd -r -p >> '{f}' && sha256sum '{f}'",
        anchor.replace('-', ""),
        f = f.display()
    );
    let out = run(tool("sh", "dash").args(["-c", &script]));
    out.split_whitespace().next().expect("a digest").to_string()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn derive_matches_sha256sum_of_the_documented_message() {
    tool("xxd", "xxd");
    for (domain, anchor) in [
        ("mbr-disk-signature", ROOT),
        ("ext4-hash-seed", "0FC63DAF-8483-4772-8E79-3D69D8477DE4"),
        ("fat-volume-id:1", ROOT),
    ] {
        let want = sha256sum_of_rule(domain, anchor);
        let anchor = Guid::parse(anchor).expect("valid");
        assert_eq!(hex(&ids::derive(domain, anchor)), want[..32], "{domain}");
    }
    let digest = sha256sum_of_rule("mbr-disk-signature", ROOT);
    let first4 = u32::from_str_radix(&digest[..8], 16).expect("hex");
    // "first 4 bytes, little-endian": the digest's first byte is the least significant.
    assert_eq!(ids::mbr_disk_signature(Guid::parse(ROOT).expect("valid")), first4.swap_bytes());
    let fat = u32::from_str_radix(&sha256sum_of_rule("fat-volume-id:2", ROOT)[..8], 16).expect("hex");
    assert_eq!(ids::fat_volume_id(2, Guid::parse(ROOT).expect("valid")), fat.swap_bytes());
}

fn lint_codes(findings: &[Finding]) -> Vec<(&'static str, String)> {
    findings.iter().map(|f| (f.code, f.location.structure.clone())).collect()
}

fn expect(layout: LayoutName, root: &str) -> Expectation {
    Expectation {
        layout: Some(layout),
        root_gpuid: Some(Guid::parse(root).expect("valid")),
        ..Default::default()
    }
}

#[test]
fn seed_gpt_layouts_pass_except_legacy_gpt_root() {
    let dir = tempdir();
    for (layout, name) in [
        (LayoutName::Efi, "efi"),
        (LayoutName::Efixbootldr, "efixbootldr"),
        (LayoutName::Hybrid, "hybrid"),
        (LayoutName::LegacyGpt, "legacy+gpt"),
    ] {
        let img = seed_gpt_layout(dir.path(), name, 160, 129, ROOT);
        let r = image(&img);
        let d = disk::open(&r).expect("opens");
        let mut bytes = read_bytes(&img);
        let got = lint_codes(&lint_ids(&d, Some(&expect(layout, ROOT))));
        if layout == LayoutName::LegacyGpt {
            // The seed's bug: rootGPUID goes to a partition 3 that does not exist, so the
            // root partition keeps 970C694F-...; reprodisk's rule gives it rootGPUID.
            assert_eq!(got, [("gpt.partition-guid.not-fixed", "gpt entry 2".to_string())], "{name}");
        } else {
            assert_eq!(got, [], "{name}");
        }
        // parted writes a zero signature into the protective MBR; a random one is flagged,
        // zero or the derived value is not.
        bytes[0x1b8..0x1bc].copy_from_slice(&0x1234_5678u32.to_le_bytes());
        let d = disk::open(&bytes).expect("opens");
        let got = lint_codes(&lint_ids(&d, Some(&expect(layout, ROOT))));
        assert!(got.contains(&("mbr.signature.not-derived", "mbr".to_string())), "{name}: {got:?}");
        let derived = ids::mbr_disk_signature(Guid::parse(ROOT).expect("valid"));
        bytes[0x1b8..0x1bc].copy_from_slice(&derived.to_le_bytes());
        let d = disk::open(&bytes).expect("opens");
        let got = lint_codes(&lint_ids(&d, Some(&expect(layout, ROOT))));
        assert!(!got.iter().any(|(c, _)| c.starts_with("mbr.")), "{name}: {got:?}");
    }
}

#[test]
fn random_guids_from_plain_parted_are_flagged() {
    let dir = tempdir();
    let img = sparse(dir.path(), "r.img", 64 << 20);
    run(parted().arg("--script").arg(&img).args([
        "--", "mklabel", "gpt", "mkpart", "ESP", "fat32", "8MiB", "33MiB", "mkpart", "primary", "ext4",
        "33MiB", "100%",
    ]));
    let r = image(&img);
    let d = disk::open(&r).expect("opens");
    let with_spec = lint_codes(&lint_ids(&d, Some(&expect(LayoutName::Efi, ROOT))));
    assert_eq!(
        with_spec,
        [
            ("gpt.disk-guid.not-derived", "gpt header (primary)".to_string()),
            ("gpt.partition-guid.not-fixed", "gpt entry 1".to_string()),
            ("gpt.partition-guid.not-fixed", "gpt entry 2".to_string()),
        ]
    );
    // Without a spec the root partition's own GUID is the anchor, so only partition 1 and
    // the disk GUID can be judged.
    let without = lint_codes(&lint_ids(&d, None));
    assert_eq!(
        without,
        [
            ("gpt.disk-guid.not-derived", "gpt header (primary)".to_string()),
            ("gpt.partition-guid.not-fixed", "gpt entry 1".to_string()),
        ]
    );
    // A user's disk_guid override is honoured.
    let dg = d.gpt.as_ref().expect("gpt").primary.disk_guid;
    let mut e = expect(LayoutName::Efi, ROOT);
    e.disk_guid = Some(dg);
    assert!(!lint_codes(&lint_ids(&d, Some(&e))).iter().any(|(c, _)| *c == "gpt.disk-guid.not-derived"));
}

#[test]
fn mbr_signature_lints_on_legacy_layouts() {
    let dir = tempdir();
    let img = sparse(dir.path(), "l.img", 16 << 20);
    run(parted()
        .arg("--script")
        .arg(&img)
        .args(["--", "mklabel", "msdos", "mkpart", "primary", "ext4", "1MiB", "100%"]));
    let derived = ids::mbr_disk_signature(Guid::parse(ROOT).expect("valid"));
    let exp = expect(LayoutName::Legacy, ROOT);
    for (sig, want) in [
        (0u32, vec!["mbr.signature.zero"]),
        (derived ^ 1, vec!["mbr.signature.not-derived"]),
        (derived, vec![]),
    ] {
        run(sfdisk().arg("--disk-id").arg(&img).arg(format!("0x{sig:08x}")));
        let r = image(&img);
        let d = disk::open(&r).expect("opens");
        assert_eq!(d.mbr.as_ref().map(|m| m.unique_mbr_disk_signature), Some(sig));
        // blkid prints no PTUUID for a zero signature; the report does the same.
        assert_eq!(blkid_probe(&img, &[]).get("PTUUID"), d.report().ptuuid.as_ref());
        let got: Vec<&str> = lint_ids(&d, Some(&exp)).iter().map(|f| f.code).collect();
        assert_eq!(got, want, "signature {sig:08x}");
    }
    // Without rootGPUID the derivation cannot be checked, and the lints say so.
    let r = image(&img);
    let d = disk::open(&r).expect("opens");
    let f = lint_ids(&d, None);
    assert_eq!(
        f.iter().map(|f| (f.code, f.severity)).collect::<Vec<_>>(),
        [("lint.anchor.unknown", Severity::Info)]
    );
}
