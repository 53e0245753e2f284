//! Writes one FAT filesystem with the builder's FAT writer, for timing against `mkfs.vfat` + `mcopy`.
//!
//! Usage: `fat_bench OUT.img MIB FILE...`: creates OUT.img as a sparse file of MIB MiB and
//! writes a FAT filesystem holding each FILE at its root (labelled ESP, hidden sectors 16384,
//! as an ESP from 8 MiB), then fsyncs it, so the figure includes getting the bytes to disk.

use reprodisk::fs::fat::{self, FatOptions, FatTree, FileData};
use std::path::Path;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, mib, files @ ..] = args.as_slice() else {
        anyhow::bail!("usage: fat_bench OUT.img MIB FILE...");
    };
    let mib: u64 = mib.parse()?;
    let mut tree = FatTree::new();
    for f in files {
        let p = Path::new(f);
        let name =
            p.file_name().and_then(|n| n.to_str()).ok_or_else(|| anyhow::anyhow!("bad file name {f}"))?;
        tree.add_file(
            &format!("/{name}"),
            FileData::Host { path: p.to_path_buf(), size: std::fs::metadata(p)?.len() },
        )?;
    }
    let opts =
        FatOptions { label: "ESP".into(), volume_id: 0x49f6_82e7, hidden_sectors: 16384, time: 315_532_800 };
    let plan = fat::plan(&tree, mib << 20, &opts)?;
    let file = std::fs::File::create(out)?;
    file.set_len(mib << 20)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, &file);
    plan.write(&mut w, 0, &mut |_| {})?;
    drop(w);
    file.sync_all()?;
    Ok(())
}
