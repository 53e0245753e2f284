//! The variable store reader on Debian's OVMF templates, checked against what virt-fw-vars
//! (PyPI package virt-firmware) lists, and one-byte corruptions with their exact errors.

use reprodisk_verifier::efivars::devpath::{self, DevPathError, HdSignature, Node};
use reprodisk_verifier::efivars::report::EfiVarsReport;
use reprodisk_verifier::efivars::{self, GLOBAL_VARIABLE, VarState, VarsError};
use reprodisk_verifier::guid::Guid;

#[path = "ovmf_support/mod.rs"]
mod ovmf_support;
use ovmf_support::{ovmf, virt_fw_vars_json};

#[test]
fn empty_template_has_no_variables() {
    let s = efivars::parse(&ovmf("OVMF_VARS_4M.fd")).unwrap();
    assert_eq!((s.fv.fv_length, s.fv.header_length, s.fv.revision), (0x84000, 0x48, 2));
    assert_eq!(s.fv.block_map, [(0x84, 0x1000)]);
    assert_eq!((s.store.offset, s.store.size, s.store.authenticated), (0x48, 0x3ffb8, true));
    assert!(s.variables.is_empty());
    assert_eq!((s.end_of_variables, s.free_bytes, s.not_erased_at), (0x64, 0x40000 - 0x64, None));
}

/// The live variables virt-fw-vars lists, as (name, guid, attributes, data hex).
fn virt_fw_vars_vars(file: &[u8]) -> Vec<(String, String, u64, String)> {
    let j = virt_fw_vars_json(file);
    let mut v: Vec<_> = j["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                v["guid"].as_str().unwrap().to_uppercase(),
                v["attr"].as_u64().unwrap(),
                v["data"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn used_template_agrees_with_virt_fw_vars() {
    let t = ovmf("OVMF_VARS_4M.ms.fd");
    let s = efivars::parse(&t).unwrap();
    let mut ours: Vec<_> = s
        .variables
        .iter()
        .filter(|v| v.is_live(&s.variables))
        .map(|v| {
            let hex: String = v.data.iter().map(|b| format!("{b:02x}")).collect();
            (v.name.clone(), v.guid.to_string(), u64::from(v.attributes), hex)
        })
        .collect();
    ours.sort();
    assert_eq!(ours, virt_fw_vars_vars(&t));
    assert!(s.variables.iter().any(|v| v.state == VarState::Deleted));
    assert!(s.get("BootOrder", GLOBAL_VARIABLE).is_none(), "every BootOrder of this template is deleted");
}

#[test]
fn load_options_of_the_used_template_decode() {
    let s = efivars::parse(&ovmf("OVMF_VARS_4M.ms.fd")).unwrap();
    let o = devpath::parse_load_option(&s.get("Boot0002", GLOBAL_VARIABLE).unwrap().data).unwrap();
    assert_eq!(o.description, "EFI Internal Shell");
    assert_eq!(
        o.path_text,
        "Path(4,7,C9BDB87CEBF8344FAAEA3EE4AF6516A1)/Path(4,6,83A5047C3E9E1C4FAD65E05268D0B4D1)"
    );
    let r = EfiVarsReport::inspect(&ovmf("OVMF_VARS_4M.ms.fd"), None);
    assert!(!r.failed(), "{}", r.render_text());
}

fn corrupt(at: usize, value: u8) -> VarsError {
    let mut t = ovmf("OVMF_VARS_4M.ms.fd");
    t[at] = value;
    efivars::parse(&t).expect_err("corrupt store must be refused")
}

#[test]
fn one_byte_corruptions_give_exact_errors() {
    assert_eq!(corrupt(0x29, b'X'), VarsError::FvSignature { found: *b"_XVH" });
    assert_eq!(corrupt(0x05, 0x01), VarsError::FvChecksum { sum: 0x0100 });
    assert_eq!(corrupt(0x30, 0x47), VarsError::FvHeaderLength { value: 0x47 });
    assert_eq!(corrupt(0x5c, 0x5b), VarsError::StoreFormat { found: 0x5b });
    assert_eq!(corrupt(0x5d, 0x00), VarsError::StoreState { found: 0x00 });
    assert!(matches!(corrupt(0x50, 0x00), VarsError::StoreSignature { offset: 0x48, .. }));
    // The first variable (CustomMode, deleted) at 0x64: its state, then its name's NUL.
    assert_eq!(corrupt(0x66, 0x5a), VarsError::VariableState { offset: 0x64, state: 0x5a });
    assert_eq!(corrupt(0x64 + 0x3c + 20, b'!'), VarsError::VariableName { offset: 0x64 });
    assert_eq!(
        corrupt(0x64 + 0x2b, 0x10),
        VarsError::VariableOverrun {
            offset: 0x64,
            name_size: 22,
            data_size: 0x1000_0001,
            store_end: 0x40000
        }
    );
    let short = &ovmf("OVMF_VARS_4M.fd")[..0x40];
    assert_eq!(efivars::parse(short), Err(VarsError::Truncated { len: 0x40, needed: 0x48 }));
}

#[test]
fn fault_tolerant_write_queue_is_read() {
    let mut t = ovmf("OVMF_VARS_4M.fd");
    let s = efivars::parse(&t).unwrap();
    assert_eq!(s.ftw, Some(efivars::FtwState { offset: 0x41000, writes: 0, pending_at: None }));
    t[0x41020] = 0xfe;
    assert_eq!(efivars::parse(&t).unwrap().ftw.unwrap().pending_at, Some(0x41020));
    let r = EfiVarsReport::inspect(&t, None);
    assert!(r.failed() && r.problems[0].code == "efivars.ftw-pending", "{}", r.render_text());
}

#[test]
fn a_corrupt_store_fails_verify() {
    let mut t = ovmf("OVMF_VARS_4M.fd");
    t[0x5d] = 0x00;
    let r = EfiVarsReport::inspect(&t, Some("efi-vars.fd"));
    assert!(r.failed());
    assert!(r.render_text().contains("store state is 0x00, expected 0xfe"), "{}", r.render_text());
}

#[test]
fn device_paths_print_in_the_uefi_text_form() {
    let guid = Guid::parse("1C06F03B-704E-4657-B9CD-681A087A2FDC").unwrap();
    let mut p = vec![4, 1, 42, 0, 1, 0, 0, 0];
    p.extend_from_slice(&0x4000u64.to_le_bytes());
    p.extend_from_slice(&0x7c000u64.to_le_bytes());
    p.extend_from_slice(&guid.to_disk());
    p.extend_from_slice(&[2, 2]);
    let file: Vec<u8> = "\\EFI\\BOOT\\BOOTX64.EFI\0".encode_utf16().flat_map(u16::to_le_bytes).collect();
    p.extend_from_slice(&[4, 4, (4 + file.len()) as u8, 0]);
    p.extend_from_slice(&file);
    p.extend_from_slice(&[0x7f, 0xff, 4, 0]);
    let nodes = devpath::parse_path(&p).unwrap();
    assert_eq!(
        nodes[0],
        Node::HardDrive { partition: 1, start: 0x4000, size: 0x7c000, signature: HdSignature::Gpt { guid } }
    );
    assert_eq!(
        devpath::path_text(&nodes),
        r"HD(1,GPT,1C06F03B-704E-4657-B9CD-681A087A2FDC,0x4000,0x7C000)/\EFI\BOOT\BOOTX64.EFI"
    );
    // Corruptions of the path.
    let mut bad = p.clone();
    bad[2] = 41;
    assert_eq!(
        devpath::parse_path(&bad),
        Err(DevPathError::NodeSize { at: 0, kind: "hard drive", len: 41, expected: "42" })
    );
    assert_eq!(devpath::parse_path(&p[..p.len() - 4]), Err(DevPathError::NoEnd));
    let mut long = p.clone();
    long.push(0);
    assert_eq!(devpath::parse_path(&long), Err(DevPathError::TrailingBytes { extra: 1 }));
    let mut zero = p.clone();
    zero[2] = 0;
    assert_eq!(devpath::parse_path(&zero), Err(DevPathError::NodeLength { at: 0, len: 0 }));
}

proptest::proptest! {
    /// Any bytes changed anywhere in the headers and the first variables: an error or a
    /// listing, never a panic.
    #[test]
    fn mutations_never_panic(flips in proptest::collection::vec((0usize..0x2000, proptest::num::u8::ANY), 1..8)) {
        let mut t = used_template();
        for (at, v) in flips {
            t[at] = v;
        }
        let r = EfiVarsReport::inspect(&t, None);
        let _ = r.render_text();
        let _ = r.to_json();
    }
}

fn used_template() -> Vec<u8> {
    static T: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    T.get_or_init(|| ovmf("OVMF_VARS_4M.ms.fd")).clone()
}
