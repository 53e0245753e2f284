//! The writer's geometry matches what mke2fs 1.47 makes for the same size and features.

mod ext4_support;

use ext4_support::*;
use reprodisk::fs::ext4::SizeRequest;
use reprodisk::tree::NodeId;

fn field<'a>(dump: &'a str, key: &str) -> &'a str {
    dump.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("`{key}` missing from:\n{dump}"))
        [key.len()..]
        .trim()
}

#[test]
fn geometry_matches_mke2fs() {
    let mut b = TreeBuilder::new();
    b.file(NodeId::ROOT, b"f", b"x".to_vec());
    let tmp = tempfile::tempdir().unwrap();
    // The odd size leaves a last group of 10 blocks, which both drop.
    for bytes in [512u64 << 20, 3 << 30, 20 << 30, (1 << 30) + (40 << 10)] {
        let mib = bytes >> 20;
        let ours = build(&b.tree, SizeRequest::Exact(bytes), tmp.path(), &format!("ours{bytes}"));
        let theirs = tmp.path().join(format!("mke2fs{bytes}.img"));
        std::fs::File::create(&theirs).unwrap().set_len(bytes).unwrap();
        let (code, out) = run_tool(
            "mke2fs",
            &[
                "-q",
                "-F",
                "-t",
                "ext4",
                "-b",
                "4096",
                "-O",
                "^64bit,^metadata_csum_seed,^orphan_file",
                theirs.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "mke2fs: {out}");
        let (a, m) = (dumpe2fs_h(&ours), dumpe2fs_h(&theirs));
        for key in [
            "Filesystem features:",
            "Block count:",
            "Reserved block count:",
            "Reserved GDT blocks:",
            "Blocks per group:",
            "Flex block group size:",
            "Inode size:",
            "Required extra isize:",
            "Desired extra isize:",
            "Default mount options:",
            "Default directory hash:",
            "Journal backup:",
            "Checksum type:",
            "Journal features:",
            "Total journal size:",
            "Total journal blocks:",
            "Journal sequence:",
            "Journal start:",
            "Maximum mount count:",
            "Check interval:",
            "Errors behavior:",
            "Filesystem state:",
            "First inode:",
        ] {
            // When mke2fs drops a last group it scales the reserved count it had computed
            // for the larger size (floor(floor(n * 5%) * kept / n)); we take 5% of the kept
            // blocks, which can be one block more.
            if key == "Reserved block count:" && bytes % (1 << 20) != 0 {
                let (x, y) = (field(&a, key).parse::<i64>().unwrap(), field(&m, key).parse::<i64>().unwrap());
                assert!((x - y).abs() <= 1, "{key} for {bytes} bytes: {x} vs {y}");
                continue;
            }
            assert_eq!(field(&a, key), field(&m, key), "{key} for {mib} MiB");
        }
        // mke2fs rounds inodes per group its own way; ours holds at least as many.
        let count = |d: &str| field(d, "Inode count:").parse::<u64>().unwrap();
        assert!(count(&a) >= count(&m), "inode count for {mib} MiB: {} < {}", count(&a), count(&m));
    }
}
