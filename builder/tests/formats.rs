//! Output formats against qemu-img: for every layout and format, `qemu-img check` is clean,
//! `qemu-img compare` with the raw build says identical, `qemu-img info` shows the exact
//! virtual size, two builds are byte-identical and reprodisk's own verifier agrees; and
//! qemu-img's own vdi and vpc of the same raw disk are not reproducible.

mod common;

use common::{build, reprodisk, tool, write};
use std::path::{Path, PathBuf};

/// Every layout, sized small, with a `contents` file so the root filesystem holds data.
const LAYOUTS: &[(&str, &str)] = &[
    ("legacy", r#""diskSize": 32"#),
    ("legacy+boot", r#""diskSize": 48, "bootSize": "16M""#),
    ("legacy+gpt", r#""diskSize": 32"#),
    ("efi", r#""diskSize": 48, "bootSize": "16M""#),
    ("efixbootldr", r#""diskSize": 160, "bootSize": "120M""#),
    ("hybrid", r#""diskSize": 48, "bootSize": "16M""#),
    ("none", r#""diskSize": 32"#),
];

fn spec(dir: &Path, layout: &str, sizes: &str, format: &str, extra: &str) -> PathBuf {
    std::fs::write(dir.join("motd"), "formats test\n".repeat(5000)).unwrap();
    write(
        dir,
        "spec.json",
        &format!(
            r#"{{"partitionTableType": "{layout}", {sizes}, "format": "{format}"{extra},
               "contents": [{{"source": "motd", "target": "/etc/motd"}}]}}"#
        ),
    )
}

fn qemu_img(args: &[&str]) -> std::process::Output {
    tool("qemu-img", "qemu-utils", args)
}

fn virtual_size(img: &Path, fmt: &str) -> u64 {
    let o = qemu_img(&["info", "-f", fmt, "--output=json", img.to_str().unwrap()]);
    assert!(o.status.success(), "qemu-img info: {}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["virtual-size"].as_u64().unwrap()
}

/// Builds every layout in `format` (qemu-img's name `qemu_fmt`) and checks it.
fn check_format(format: &str, qemu_fmt: &str, extra: &str, ext: &str) {
    for (layout, sizes) in LAYOUTS {
        let dir = tempfile::tempdir().unwrap();
        let raw_spec = spec(dir.path(), layout, sizes, "raw", "");
        let raw = build(&raw_spec, &dir.path().join("raw"));
        let disk_bytes = std::fs::metadata(&raw).unwrap().len();
        let s = spec(dir.path(), layout, sizes, format, extra);
        let a = build(&s, &dir.path().join("a"));
        let b = build(&s, &dir.path().join("b"));
        let ctx = format!("{layout} {format}{extra}");
        assert_eq!(a.file_name().unwrap(), format!("nixos.{ext}").as_str(), "{ctx}");
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "{ctx}: two builds differ");
        let (raw_s, a_s) = (raw.to_str().unwrap(), a.to_str().unwrap());
        if qemu_fmt != "vpc" {
            let o = qemu_img(&["check", "-f", qemu_fmt, a_s]);
            let out = String::from_utf8_lossy(&o.stdout);
            assert!(o.status.success() && out.contains("No errors"), "{ctx}: qemu-img check: {out}");
        }
        let o = qemu_img(&["compare", "-f", "raw", "-F", qemu_fmt, raw_s, a_s]);
        assert!(o.status.success(), "{ctx}: qemu-img compare: {}", String::from_utf8_lossy(&o.stdout));
        assert_eq!(virtual_size(&a, qemu_fmt), disk_bytes, "{ctx}: qemu-img info virtual size");
        let o = reprodisk(&["diff", raw_s, a_s]);
        assert!(o.status.success(), "{ctx}: reprodisk diff: {}", String::from_utf8_lossy(&o.stdout));
        let o = reprodisk(&["verify", a_s]);
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.starts_with(&format!("image format: {qemu_fmt} holding a {disk_bytes} byte disk")),
            "{ctx}: {text}"
        );
        let hydra = std::fs::read_to_string(dir.path().join("a/nix-support/hydra-build-products")).unwrap();
        let listed = if qemu_fmt == "vpc" { "vpc" } else { qemu_fmt };
        assert_eq!(
            hydra,
            format!("file {listed}-image {}\n", std::path::absolute(&a).unwrap().display()),
            "{ctx}"
        );
    }
}

#[test]
fn qcow2_every_layout() {
    check_format("qcow2", "qcow2", "", "qcow2");
}

#[test]
fn qcow2_compressed_every_layout() {
    check_format("qcow2-compressed", "qcow2", "", "qcow2");
}

#[test]
fn vdi_every_layout() {
    check_format("vdi", "vdi", "", "vdi");
}

#[test]
fn vpc_dynamic_every_layout() {
    check_format("vpc", "vpc", "", "vhd");
}

#[test]
fn vpc_fixed_every_layout() {
    check_format("vpc", "vpc", r#", "vpc_subformat": "fixed""#, "vhd");
}

#[test]
fn manifest_records_the_vhd_geometry_and_ids() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), "efi", r#""diskSize": 48, "bootSize": "16M""#, "vpc", "");
    build(&s, &dir.path().join("out"));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/manifest.json")).unwrap()).unwrap();
    let f = &m["output"]["file_format"];
    assert_eq!(f["virtual_size"], 48 << 20);
    let g = &f["vpc"]["geometry"];
    let chs = ["cylinders", "heads", "sectors"].iter().map(|k| g[k].as_u64().unwrap()).product::<u64>();
    assert_eq!(chs * 512, 48 << 20, "the geometry is exactly the disk: {g}");
    assert!(f["vpc"]["geometry_reason"].as_str().unwrap().contains("exactly the disk size"));
    assert_eq!(f["vpc"]["timestamp"], 0, "SOURCE_DATE_EPOCH 1980 clamps to the VHD epoch");
}

/// qemu-img's vdi and vpc carry random UUIDs (and a creation time): converting the same raw
/// disk twice gives different files, which is why reprodisk writes them itself.
#[test]
fn qemu_img_vdi_and_vpc_are_not_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let raw = build(&spec(dir.path(), "legacy", r#""diskSize": 32"#, "raw", ""), &dir.path().join("raw"));
    for fmt in ["vdi", "vpc"] {
        let out = |n: &str| dir.path().join(format!("{n}.{fmt}"));
        for n in ["1", "2"] {
            let o = qemu_img(&[
                "convert",
                "-f",
                "raw",
                "-O",
                fmt,
                raw.to_str().unwrap(),
                out(n).to_str().unwrap(),
            ]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        assert_ne!(std::fs::read(out("1")).unwrap(), std::fs::read(out("2")).unwrap(), "qemu-img {fmt}");
    }
}

#[test]
fn a_failing_post_vm_fails_the_build_with_its_code_and_leaves_no_image() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(
        dir.path(),
        "legacy",
        r#""diskSize": 32"#,
        "qcow2",
        r#", "postVM": "test -f \"$diskImage\" && echo \"$out\" > \"$out/seen\" && exit 5""#,
    );
    let out = dir.path().join("out");
    let o = reprodisk(&["build", s.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(5), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("postVM exited with status 5"));
    assert!(!out.join("nixos.qcow2").exists(), "no image stays after a failed postVM");
    assert!(!out.join("manifest.json").exists());
    assert!(!out.join("nix-support/hydra-build-products").exists());
    assert!(!out.join("seen").exists(), "what postVM wrote into the stage is dropped with it");

    let ok = spec(
        dir.path(),
        "legacy",
        r#""diskSize": 32"#,
        "qcow2",
        r#", "postVM": "qemu-img info \"$diskImage\" > \"$out/info.txt\"""#,
    );
    let img = build(&ok, &dir.path().join("ok"));
    assert!(img.exists());
    // A file postVM adds to $out joins the output set and the manifest.
    assert!(std::fs::read_to_string(dir.path().join("ok/info.txt")).unwrap().contains("file format: qcow2"));
    let m = std::fs::read_to_string(dir.path().join("ok/manifest.json")).unwrap();
    assert!(m.contains("\"info.txt\""), "{m}");
}

/// `verify --spec` checks the VDI UUIDs and the VHD unique ID against derive(domain,
/// rootGPUID): reprodisk's pass, qemu-img's random ones are named.
#[test]
fn verify_lints_format_ids_against_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    for (format, ext) in [("vdi", "vdi"), ("vpc", "vhd")] {
        let s = spec(dir.path(), "legacy", r#""diskSize": 32"#, format, "");
        let img = build(&s, &dir.path().join(format));
        let o = reprodisk(&["verify", "--spec", s.to_str().unwrap(), img.to_str().unwrap()]);
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(!text.contains("lint: v"), "{format}: {text}");
        let theirs = dir.path().join(format!("qemu.{ext}"));
        let raw = dir.path().join("disk.raw");
        let o = qemu_img(&["convert", "-O", "raw", img.to_str().unwrap(), raw.to_str().unwrap()]);
        assert!(o.status.success());
        let o = qemu_img(&[
            "convert",
            "-f",
            "raw",
            "-O",
            format,
            raw.to_str().unwrap(),
            theirs.to_str().unwrap(),
        ]);
        assert!(o.status.success());
        let o = reprodisk(&["verify", "--spec", s.to_str().unwrap(), theirs.to_str().unwrap()]);
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("is not derive(\""), "{format}: {text}");
        assert_eq!(o.status.code(), Some(1), "{format}: {text}");
    }
}
