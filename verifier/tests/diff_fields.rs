//! The diff names ext4 fields on every block size: a `tune2fs -U` change is `s_uuid: A vs B`
//! whether the superblock shares its block with the boot sector (4 KiB) or fills it (1 KiB).

mod ext4_util;

use reprodisk_verifier::bytes::ImageFile;
use reprodisk_verifier::glue;

#[test]
fn tune2fs_uuid_change_is_named_s_uuid_on_every_block_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (bs, mib) in [(1024, 8), (2048, 8), (4096, 16), (65536, 128)] {
        let a = ext4_util::mkfs(dir.path(), &format!("a{bs}.img"), mib, &["-b", &bs.to_string()], None);
        let b = dir.path().join(format!("b{bs}.img"));
        std::fs::copy(&a, &b).expect("copy");
        let new = "11111111-2222-4333-8444-555555555555";
        ext4_util::run_ok("tune2fs", &["-U", new, b.to_str().expect("UTF-8")]);
        let d = glue::diff_images(&ImageFile::open(&a).expect("a"), &ImageFile::open(&b).expect("b"))
            .expect("diff runs");
        let text = d.render_text();
        let uuid = d
            .groups
            .iter()
            .find(|g| g.structure == "ext4 superblock" && g.field.as_deref() == Some("s_uuid"))
            .unwrap_or_else(|| panic!("{bs}-byte blocks: no s_uuid group:\n{text}"));
        assert_eq!(uuid.b.as_deref(), Some(new), "{bs}: {text}");
        // Every superblock byte that changed is named by a field.
        assert!(
            !d.groups.iter().any(|g| g.structure == "ext4 superblock" && g.field.is_none()),
            "{bs}-byte blocks: an unnamed superblock change:\n{text}"
        );
        assert!(text.contains("s_uuid: "), "{bs}: {text}");
    }
}
