//! Times the ext4 writer on a host directory: `cargo run --release -p reprodisk-builder --example ext4_bench -- DIR OUT.img`.
//!
//! The tree is read with a minimal walker of its own (owner, mode, mtime, symlinks, hard
//! links; no xattrs or devices) so the example measures the writer only. It prints the plan
//! and write times, the image size and the process's peak memory (VmHWM). The timing lives
//! here, not in the library: the builder never reads the clock.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

use reprodisk::fs::ext4::{self, Ext4Options, SizeRequest};
use reprodisk::tree::{DataSource, FileContent, FsTree, Metadata, Node, NodeId, NodeKind, Timestamp};

fn walk(
    t: &mut FsTree,
    dir: NodeId,
    path: &Path,
    seen: &mut BTreeMap<(u64, u64), NodeId>,
) -> std::io::Result<()> {
    let mut names: Vec<_> =
        std::fs::read_dir(path)?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let p = path.join(&name);
        let md = std::fs::symlink_metadata(&p)?;
        let ft = md.file_type();
        if let Some(&id) = seen.get(&(md.dev(), md.ino())).filter(|_| ft.is_file() && md.nlink() > 1) {
            t.link(dir, name.as_bytes(), id, "/").map_err(std::io::Error::other)?;
            continue;
        }
        let kind = if ft.is_dir() {
            NodeKind::Dir(BTreeMap::new())
        } else if ft.is_symlink() {
            NodeKind::Symlink(std::fs::read_link(&p)?.as_os_str().as_bytes().to_vec())
        } else if ft.is_file() {
            NodeKind::File(FileContent {
                size: md.len(),
                source: DataSource::Host { path: p.clone(), allocated: md.blocks() * 512 },
            })
        } else {
            continue;
        };
        let mtime = Timestamp { secs: md.mtime(), nanos: md.mtime_nsec() as u32 };
        let mut meta = Metadata::new((md.mode() & 0o7777) as u16, md.uid(), md.gid(), mtime);
        meta.ctime = Timestamp { secs: md.ctime(), nanos: md.ctime_nsec() as u32 };
        let id = t.add(Node { kind, meta }).map_err(std::io::Error::other)?;
        t.link(dir, name.as_bytes(), id, "/").map_err(std::io::Error::other)?;
        if ft.is_file() && md.nlink() > 1 {
            seen.insert((md.dev(), md.ino()), id);
        }
        if ft.is_dir() {
            walk(t, id, &p, seen)?;
        }
    }
    Ok(())
}

fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(src), Some(out)) = (args.get(1), args.get(2)) else {
        return Err("usage: ext4_bench DIR OUT.img".into());
    };
    let t0 = Instant::now();
    let mut tree = FsTree::new(Metadata::new(0o755, 0, 0, Timestamp::from_secs(315_532_800)));
    walk(&mut tree, NodeId::ROOT, Path::new(src), &mut BTreeMap::new())?;
    let t1 = Instant::now();
    let opts = Ext4Options::new([0x11; 16], [0x22; 16], Timestamp::from_secs(315_532_800));
    let plan = ext4::plan(&tree, &opts, SizeRequest::Auto { extra_bytes: 0 })?;
    let t2 = Instant::now();
    let file = std::fs::File::create(out)?;
    file.set_len(plan.size_bytes())?;
    plan.write(&tree, &file, 0, &mut |_| {})?;
    file.sync_all()?;
    let t3 = Instant::now();
    println!(
        "nodes {} | tree {:.3}s | plan {:.3}s | write {:.3}s (incl. fsync) | image {} MiB | data {} MiB | peak RSS {} MiB",
        tree.nodes.len(),
        (t1 - t0).as_secs_f64(),
        (t2 - t1).as_secs_f64(),
        (t3 - t2).as_secs_f64(),
        plan.size_bytes() >> 20,
        plan.data_bytes() >> 20,
        peak_rss_kib().unwrap_or(0) >> 10,
    );
    Ok(())
}
