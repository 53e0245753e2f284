//! The `efi-vars.fd` writer against the verifier's independent reader and against
//! virt-fw-vars (PyPI package virt-firmware), on Debian's OVMF templates: an empty one
//! (`OVMF_VARS_4M.fd`) and a used one with deleted variables (`OVMF_VARS_4M.ms.fd`).

mod common;

use proptest::prelude::*;
use reprodisk::boot::efivars::{self, BootEntry, EfiVarsError};
use reprodisk::ids::Guid;
use reprodisk_verifier::efivars::devpath::{HdSignature, Node};
use reprodisk_verifier::efivars::{self as reader, VarState};
use reprodisk_verifier::guid::Guid as RGuid;

#[path = "../../verifier/tests/ovmf_support/mod.rs"]
mod ovmf_support;
use ovmf_support::{ovmf, virt_fw_vars, virt_fw_vars_json};

fn entry() -> BootEntry {
    BootEntry {
        description: "Linux Boot Manager".into(),
        partition_number: 1,
        start_lba: 0x4000,
        size_lba: 0x7c000,
        partition_guid: "1C06F03B-704E-4657-B9CD-681A087A2FDC".parse().unwrap(),
        loader_path: r"\EFI\systemd\systemd-bootx64.efi".into(),
    }
}

const GLOBAL: &str = "8BE4DF61-93CA-11D2-AA0D-00E098032B8C";

fn rguid(s: &str) -> RGuid {
    RGuid::parse(s).unwrap()
}

#[test]
fn round_trip_on_the_empty_template() {
    let t = ovmf("OVMF_VARS_4M.fd");
    let out = efivars::write(&t, &entry()).unwrap();
    assert_eq!(out.len(), t.len());
    // Only the variable area changed.
    assert_eq!(out[..0x64], t[..0x64]);
    assert_eq!(out[0x40000..], t[0x40000..]);

    let s = reader::parse(&out).unwrap();
    assert_eq!(s.not_erased_at, None);
    assert_eq!(s.variables.len(), 2);
    let boot = s.get("Boot0000", rguid(GLOBAL)).unwrap();
    assert_eq!(
        (boot.state, boot.attributes, boot.monotonic_count, boot.timestamp),
        (VarState::Added, 7, 0, [0; 16])
    );
    let o = reader::devpath::parse_load_option(&boot.data).unwrap();
    assert!(o.active());
    assert_eq!(o.description, "Linux Boot Manager");
    assert_eq!(
        o.path_text,
        r"HD(1,GPT,1C06F03B-704E-4657-B9CD-681A087A2FDC,0x4000,0x7C000)/\EFI\systemd\systemd-bootx64.efi"
    );
    assert!(o.optional_data.is_empty());
    let order = s.get("BootOrder", rguid(GLOBAL)).unwrap();
    assert_eq!((order.attributes, order.data.as_slice()), (7, &[0u8, 0][..]));
}

#[test]
fn used_template_keeps_live_variables_and_drops_deleted_ones() {
    let t = ovmf("OVMF_VARS_4M.ms.fd");
    let before = reader::parse(&t).unwrap();
    let out = efivars::write(&t, &entry()).unwrap();
    let after = reader::parse(&out).unwrap();
    assert!(after.variables.iter().all(|v| v.state == VarState::Added));
    let live_before: Vec<_> = before
        .variables
        .iter()
        .filter(|v| v.is_live(&before.variables) && !(v.name == "Boot0000" && v.guid == rguid(GLOBAL)))
        .map(|v| (v.name.clone(), v.guid, v.attributes, v.data.clone(), v.timestamp))
        .collect();
    let kept: Vec<_> = after.variables[..after.variables.len() - 2]
        .iter()
        .map(|v| (v.name.clone(), v.guid, v.attributes, v.data.clone(), v.timestamp))
        .collect();
    assert_eq!(kept, live_before);
    let names: Vec<&str> = after.variables.iter().rev().take(2).map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["BootOrder", "Boot0000"]);
    // The template's Boot0000 (UiApp) was replaced, Boot0001 and Boot0002 are kept.
    let o = reader::devpath::parse_load_option(&after.get("Boot0000", rguid(GLOBAL)).unwrap().data).unwrap();
    assert_eq!(o.description, "Linux Boot Manager");
    assert!(after.get("Boot0002", rguid(GLOBAL)).is_some());
    assert!(after.free_bytes > before.free_bytes);
}

#[test]
fn existing_boot_order_entries_follow_ours() {
    let t = ovmf("OVMF_VARS_4M.fd");
    let once = efivars::write(&t, &entry()).unwrap();
    // Make the template's BootOrder [0003, 0000, 0001] by editing ours in place.
    let s = reader::parse(&once).unwrap();
    let bo = s.get("BootOrder", rguid(GLOBAL)).unwrap();
    let mut t2 = once.clone();
    let at = bo.offset as usize + 0x3c + 20;
    t2[at + 2..at + 6].fill(0xaa); // room check: not used, the size field says 2 bytes
    let size_at = bo.offset as usize + 0x28;
    t2[size_at..size_at + 4].copy_from_slice(&6u32.to_le_bytes());
    t2[at..at + 6].copy_from_slice(&[3, 0, 0, 0, 1, 0]);
    let out = efivars::write(&t2, &entry()).unwrap();
    let s = reader::parse(&out).unwrap();
    assert_eq!(s.get("BootOrder", rguid(GLOBAL)).unwrap().data, [0, 0, 3, 0, 1, 0]);
}

#[test]
fn output_depends_only_on_live_variables() {
    let t = ovmf("OVMF_VARS_4M.fd");
    let want = efivars::write(&t, &entry()).unwrap();
    // Idempotent: writing into our own output gives the same bytes.
    assert_eq!(efivars::write(&want, &entry()).unwrap(), want);
    // A template holding a deleted Boot0000 with another entry gives the same bytes too.
    let mut other = entry();
    other.loader_path = r"\EFI\BOOT\BOOTX64.EFI".into();
    let mut t2 = efivars::write(&t, &other).unwrap();
    let s = reader::parse(&t2).unwrap();
    t2[s.get("Boot0000", rguid(GLOBAL)).unwrap().offset as usize + 2] = 0x3c;
    assert_eq!(efivars::write(&t2, &entry()).unwrap(), want);
}

#[test]
fn in_transition_survivor_is_kept_as_added() {
    let mut t = ovmf("OVMF_VARS_4M.ms.fd");
    let s = reader::parse(&t).unwrap();
    let timeout = s.get("Timeout", rguid(GLOBAL)).unwrap().clone();
    t[timeout.offset as usize + 2] = 0x3e;
    let out = efivars::write(&t, &entry()).unwrap();
    let v = reader::parse(&out).unwrap();
    let kept = v.get("Timeout", rguid(GLOBAL)).unwrap();
    assert_eq!((kept.state, &kept.data), (VarState::Added, &timeout.data));
}

fn refused(t: &[u8]) -> EfiVarsError {
    efivars::write(t, &entry()).expect_err("a broken template must be refused")
}

#[test]
fn one_byte_corruptions_are_refused_with_the_exact_error() {
    let t = ovmf("OVMF_VARS_4M.fd");
    let flip = |at: usize, value: u8| {
        let mut c = t.clone();
        c[at] = value;
        c
    };
    assert_eq!(refused(&flip(0x28, b'X')), EfiVarsError::FvSignature { found: *b"XFVH" });
    // A byte of the zero vector: only the checksum notices.
    let sum = 0x0001u16;
    assert_eq!(refused(&flip(0x00, 0x01)), EfiVarsError::FvChecksum { sum });
    assert!(matches!(refused(&flip(0x10, 0x00)), EfiVarsError::FvFileSystem { .. }));
    assert!(matches!(refused(&flip(0x48, 0x79)), EfiVarsError::StoreSignature { offset: 0x48, .. }));
    assert_eq!(refused(&flip(0x5c, 0x00)), EfiVarsError::StoreFormat { found: 0 });
    assert_eq!(refused(&flip(0x5d, 0xff)), EfiVarsError::StoreState { found: 0xff });
    assert!(matches!(refused(&flip(0x5b, 0x01)), EfiVarsError::StoreSize { offset: 0x48, .. }));
    assert_eq!(refused(&t[..0x30]), EfiVarsError::TooShort { len: 0x30 });
}

#[test]
fn code_file_and_full_store_are_refused() {
    // OVMF_CODE is a firmware volume too, but not a variable store.
    let code = ovmf("OVMF_CODE_4M.fd");
    let e = efivars::write(&code, &entry()).unwrap_err();
    assert!(matches!(e, EfiVarsError::FvSignature { .. } | EfiVarsError::FvFileSystem { .. }), "{e}");
    // A store with room for less than our two variables.
    let mut t = ovmf("OVMF_VARS_4M.fd");
    t[0x58..0x5c].copy_from_slice(&(0x1cu32 + 100).to_le_bytes());
    assert_eq!(refused(&t), EfiVarsError::NoSpace { needed: 0xf0 + 0x54, available: 100 });
    let msg = refused(&t).to_string();
    assert!(msg.contains("free bytes") && !msg.ends_with('.'), "{msg}");
}

#[test]
fn bad_variable_headers_are_refused() {
    let t = efivars::write(&ovmf("OVMF_VARS_4M.fd"), &entry()).unwrap();
    let mut c = t.clone();
    c[0x64 + 0x28..0x64 + 0x2c].copy_from_slice(&0x0100_0000u32.to_le_bytes());
    assert!(matches!(refused(&c), EfiVarsError::VariableOverrun { offset: 0x64, .. }));
    let mut c = t.clone();
    c[0x64 + 0x3c + 16] = b'X'; // the name's NUL
    assert!(matches!(refused(&c), EfiVarsError::VariableName { offset: 0x64, .. }));
}

#[test]
fn virt_fw_vars_reads_our_boot_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("efi-vars.fd");
    let out = efivars::write(&ovmf("OVMF_VARS_4M.fd"), &entry()).unwrap();
    std::fs::write(&path, &out).unwrap();
    let p = path.to_str().unwrap();

    let text = virt_fw_vars(&["-i", p, "--print", "--verbose"]);
    assert!(text.contains("name=Boot0000 guid=guid:EfiGlobalVariable"), "{text}");
    assert!(
        text.contains(
            r#"boot entry: title="Linux Boot Manager" devpath=Partition(nr=1)/FilePath(\EFI\systemd\systemd-bootx64.efi)"#
        ),
        "{text}"
    );
    assert!(text.contains("name=BootOrder guid=guid:EfiGlobalVariable"), "{text}");
    assert!(text.contains("boot order: 0000"), "{text}");

    let j = virt_fw_vars_json(&out);
    let vars = j["variables"].as_array().unwrap();
    let find = |n: &str| vars.iter().find(|v| v["name"] == n).unwrap_or_else(|| panic!("{n} missing: {j}"));
    let boot = find("Boot0000");
    assert_eq!(boot["guid"], "8be4df61-93ca-11d2-aa0d-00e098032b8c");
    assert_eq!(boot["attr"], 7);
    // virt-fw-vars prints only the partition number of an HD() node: check the rest in the
    // bytes it read, laid out by hand from the UEFI spec (not by our writer).
    let desc: String = "Linux Boot Manager\0"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .map(|b| format!("{b:02x}"))
        .collect();
    let hd = [
        "0401",
        "2a00",
        "01000000",
        "0040000000000000",
        "00c0070000000000",
        "3bf0061c4e705746b9cd681a087a2fdc",
        "02",
        "02",
    ]
    .concat();
    let file: String = concat!(r"\EFI\systemd\systemd-bootx64.efi", "\0")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .map(|b| format!("{b:02x}"))
        .collect();
    let node = format!("0404{:02x}00{file}", 4 + file.len() / 2);
    let path = format!("{hd}{node}7fff0400");
    let want = format!("01000000{:02x}00{desc}{path}", path.len() / 2);
    assert_eq!(boot["data"].as_str(), Some(want.as_str()));
    let order = find("BootOrder");
    assert_eq!((order["attr"].as_u64(), order["data"].as_str()), (Some(7), Some("0000")));
}

proptest! {
    #[test]
    fn reader_decodes_what_the_writer_wrote(
        description in "[ -~]{1,40}",
        partition_number in 1u32..128,
        start_lba in 34u64..1 << 40,
        size_lba in 1u64..1 << 40,
        guid in any::<[u8; 16]>(),
        path in r"(\\[A-Za-z0-9._-]{1,12}){1,4}",
    ) {
        let e = BootEntry { description: description.clone(), partition_number, start_lba, size_lba,
            partition_guid: Guid(guid), loader_path: path.clone() };
        let t = efivars::write(&ovmf_cached(), &e).unwrap();
        let s = reader::parse(&t).unwrap();
        let o = reader::devpath::parse_load_option(&s.get("Boot0000", rguid(GLOBAL)).unwrap().data).unwrap();
        prop_assert_eq!(o.description, description);
        prop_assert_eq!(o.path, vec![
            Node::HardDrive { partition: partition_number, start: start_lba, size: size_lba,
                signature: HdSignature::Gpt { guid: RGuid(guid) } },
            Node::FilePath { path },
        ]);
    }
}

fn ovmf_cached() -> Vec<u8> {
    static T: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    T.get_or_init(|| ovmf("OVMF_VARS_4M.fd")).clone()
}

#[test]
fn an_unfinished_fault_tolerant_write_is_refused() {
    let t = ovmf("OVMF_VARS_4M.fd");
    // The working block is at 0x41000, its queue at 0x41020 (Debian's OVMF_VARS_4M.fd).
    assert_eq!(&t[0x41000..0x41004], &[0x2b, 0x29, 0x58, 0x9e]);
    let mut pending = t.clone();
    pending[0x41020] = 0xfe; // header allocated, writes not, not complete
    assert_eq!(refused(&pending), EfiVarsError::PendingFtwWrite { offset: 0x41020 });
    // A completed write (all three flags set) followed by a pending one after its record.
    let mut done = t.clone();
    done[0x41020] = 0xf8;
    done[0x41038..0x41040].copy_from_slice(&1u64.to_le_bytes());
    done[0x41040..0x41048].copy_from_slice(&0u64.to_le_bytes());
    assert!(efivars::write(&done, &entry()).is_ok());
    done[0x41020 + 0x28 + 0x28] = 0xfc;
    assert_eq!(refused(&done), EfiVarsError::PendingFtwWrite { offset: 0x41070 });
}

/// A spec with `touchEFIVars = true` and an `efiVariables` template, built with the CLI.
fn build_with_template(template: &[u8]) -> (tempfile::TempDir, std::process::Output) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vars.fd"), template).unwrap();
    let spec = common::write(
        dir.path(),
        "spec.json",
        r#"{"partitionTableType": "efi", "diskSize": 300, "touchEFIVars": true, "efiVariables": "vars.fd"}"#,
    );
    let out = dir.path().join("out");
    let o = common::reprodisk(&["build", spec.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    (dir, o)
}

#[test]
fn cli_refuses_a_template_that_is_not_a_variable_store() {
    let (dir, o) = build_with_template(&ovmf("OVMF_CODE_4M.fd"));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("vars.fd") && stderr.contains("efi variable template"), "{stderr}");
    // Nothing under a final name.
    let out = dir.path().join("out");
    assert!(
        !out.join("efi-vars.fd").exists()
            && !out.join("nixos.img").exists()
            && !out.join("manifest.json").exists()
    );
}

#[test]
fn cli_without_a_loader_copies_the_checked_template() {
    // No `system` table: no UEFI loader is installed, so the seed's efi-vars.fd is the template.
    let t = ovmf("OVMF_VARS_4M.ms.fd");
    let (dir, o) = build_with_template(&t);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dir.path().join("out");
    assert_eq!(std::fs::read(out.join("efi-vars.fd")).unwrap(), t);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["efi_vars"]["boot0000"], serde_json::Value::Null);
    assert_eq!(m["efi_vars"]["template"]["origin"], "efiVariables");
    let files: Vec<&str> = m["files"].as_array().unwrap().iter().filter_map(|f| f["name"].as_str()).collect();
    assert!(files.contains(&"efi-vars.fd"), "{files:?}");
    // verify lists the store beside the image.
    let v = common::reprodisk(&["verify", out.join("nixos.img").to_str().unwrap()]);
    let text = String::from_utf8_lossy(&v.stdout);
    assert!(text.contains("efi variable store") && text.contains("Boot0002"), "{text}");
}
