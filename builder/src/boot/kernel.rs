//! The kernel, the initrd and the kernel command line of the `system` table, found in the root tree or on the host.
//!
//! Rules (README, "system table"):
//! - `system.kernel` / `system.initrd` given: an absolute path that names a regular file in
//!   the root tree (symlinks followed inside the image) is taken from the tree; otherwise the
//!   path is a host file, relative paths starting at the spec's folder. Neither is an error.
//! - Not given: the newest `/boot/vmlinuz-<version>` of the root tree by Debian version order
//!   (dpkg's `verrevcmp`), else Debian's `/vmlinuz` or `/boot/vmlinuz` symlinks. The initrd
//!   is then `/boot/initrd.img-<version>` of that version, or `/initrd.img` beside `/vmlinuz`;
//!   a kernel without one boots without an initrd.
//! - The command line is `root=...` from the deterministic IDs (`root=UUID=<rootFSUID>`, or
//!   with `system.root_device = "partuuid"` `root=PARTUUID=<rootGPUID>` on GPT and
//!   `root=PARTUUID=<signature>-<nn>` on MBR), then `system.kernel_params` in order.
//!
//! The root tree's `/boot` is never changed: the files found are copied, not moved.

use crate::fs::fat::FileData;
use crate::layout::{Plan, TableKind};
use crate::manifest;
use crate::spec::{RootDevice, Spec, System};
use crate::tree::passwd::resolve;
use crate::tree::tar::read_archive_range;
use crate::tree::{DataSource, FsTree, NodeKind};
use serde::Serialize;
use std::cmp::Ordering;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(
        "no kernel found in the root tree: looked for /boot/vmlinuz-* and the /vmlinuz and /boot/vmlinuz links; install a kernel in the root tree or set system.kernel"
    )]
    NoKernel,
    #[error(
        "system.{key} = \"{written}\" does not exist: it is not a regular file in the root tree and not a host file at `{host}`; fix the path"
    )]
    Missing { key: &'static str, written: String, host: PathBuf },
    #[error("reading {what} `{path}`: {error}")]
    Read { what: &'static str, path: String, error: std::io::Error },
    #[error(
        "system.root_device = \"partuuid\" needs a partition table: layout \"none\" has no partition to name"
    )]
    NoPartition,
}

/// One boot file (kernel or initrd) with where it came from.
#[derive(Debug, Clone)]
pub struct BootFile {
    /// The file name to give its copy (`vmlinuz-6.1.0-50-amd64`).
    pub name: String,
    /// Its path in the root tree (links resolved as written, e.g. `/boot/vmlinuz-6.1.0-50-amd64`),
    /// or `None` for a host file.
    pub tree_path: Option<String>,
    /// The host file, for host files.
    pub host_path: Option<PathBuf>,
    pub data: FileData,
    pub sha256: String,
}

/// What the manifest records about a boot file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootFileRecord {
    pub name: String,
    pub from: String,
    pub bytes: u64,
    pub sha256: String,
}

impl BootFile {
    pub fn record(&self) -> BootFileRecord {
        let from = match (&self.tree_path, &self.host_path) {
            (Some(t), _) => format!("root tree {t}"),
            (None, Some(h)) => format!("host {}", h.display()),
            (None, None) => String::new(),
        };
        BootFileRecord { name: self.name.clone(), from, bytes: self.data.len(), sha256: self.sha256.clone() }
    }
}

/// The kernel set of a bootable image.
#[derive(Debug, Clone)]
pub struct KernelSet {
    pub kernel: BootFile,
    pub initrd: Option<BootFile>,
    /// `<version>` of `vmlinuz-<version>`, when the name has that form.
    pub version: Option<String>,
    /// The whole kernel command line, `root=` first.
    pub params: Vec<String>,
}

impl KernelSet {
    pub fn cmdline(&self) -> String {
        self.params.join(" ")
    }
}

/// The `root=` parameter for `plan`.
pub fn root_param(system: &System, plan: &Plan) -> Result<String, KernelError> {
    match system.root_device {
        RootDevice::Uuid => {
            // rootFSUID is always set for deterministic builds (a spec assertion); the
            // random case sets it in the plan too.
            let uuid = plan.root_fs_uuid.map(|u| u.to_string().to_ascii_lowercase()).unwrap_or_default();
            Ok(format!("root=UUID={uuid}"))
        }
        RootDevice::Partuuid => {
            let root = plan.root().ok_or(KernelError::NoPartition)?;
            match (plan.table, &root.gpt, plan.mbr_disk_signature) {
                (TableKind::Gpt, Some(g), _) => {
                    Ok(format!("root=PARTUUID={}", g.partition_guid.to_string().to_ascii_lowercase()))
                }
                (TableKind::Mbr, _, Some(sig)) => Ok(format!("root=PARTUUID={sig:08x}-{:02}", root.number)),
                _ => Err(KernelError::NoPartition),
            }
        }
    }
}

/// Finds the kernel and initrd of `system` and builds the command line.
pub fn find(spec: &Spec, system: &System, tree: &FsTree, plan: &Plan) -> Result<KernelSet, KernelError> {
    let (kernel, initrd_guess) = match &system.kernel {
        Some(k) => (explicit(spec, tree, "kernel", k)?, None),
        None => auto_kernel(tree)?,
    };
    let initrd = match &system.initrd {
        Some(i) => Some(explicit(spec, tree, "initrd", i)?),
        None => match initrd_guess {
            Some(p) => Some(from_tree(tree, &p, "initrd")?),
            None => None,
        },
    };
    let version = kernel.name.strip_prefix("vmlinuz-").map(str::to_string);
    let mut params = vec![root_param(system, plan)?];
    params.extend(system.kernel_params.iter().cloned());
    Ok(KernelSet { kernel, initrd, version, params })
}

/// A regular file of the tree at `path` (links resolved inside the image), if there is one.
fn tree_file(tree: &FsTree, path: &str) -> bool {
    resolve(tree, path.as_bytes()).is_some_and(|id| matches!(tree.node(id).kind, NodeKind::File(_)))
}

fn explicit(spec: &Spec, tree: &FsTree, key: &'static str, written: &str) -> Result<BootFile, KernelError> {
    if written.starts_with('/') && tree_file(tree, written) {
        return from_tree(tree, written, key);
    }
    let host = spec.base_dir.join(written);
    if !host.is_file() {
        return Err(KernelError::Missing { key, written: written.to_string(), host });
    }
    let read = |error| KernelError::Read { what: key, path: host.display().to_string(), error };
    let size = std::fs::metadata(&host).map_err(read)?.len();
    let sha256 = manifest::sha256_file(&host).map_err(read)?;
    Ok(BootFile {
        name: file_name(written),
        tree_path: None,
        host_path: Some(host.clone()),
        data: FileData::Host { path: host, size },
        sha256,
    })
}

fn file_name(path: &str) -> String {
    path.rsplit('/').find(|c| !c.is_empty()).unwrap_or(path).to_string()
}

/// The file at `path` in the tree. The copy is named after the link's target when `path`
/// is a link (`/vmlinuz` -> `vmlinuz-6.1.0-50-amd64`).
fn from_tree(tree: &FsTree, path: &str, what: &'static str) -> Result<BootFile, KernelError> {
    let id = resolve(tree, path.as_bytes())
        .filter(|id| matches!(tree.node(*id).kind, NodeKind::File(_)))
        .ok_or_else(|| KernelError::Missing { key: what, written: path.to_string(), host: PathBuf::new() })?;
    let NodeKind::File(c) = &tree.node(id).kind else { unreachable!("filtered to files above") };
    let read = |error| KernelError::Read { what, path: path.to_string(), error };
    let data = match &c.source {
        DataSource::Host { path: p, .. } => FileData::Host { path: p.clone(), size: c.size },
        DataSource::Archive { path: a, offset, map } => {
            FileData::Bytes(Arc::from(read_archive_range(a, *offset, c.size, map.as_deref()).map_err(read)?))
        }
        DataSource::Bytes(b) => FileData::Bytes(b.clone()),
    };
    let sha256 = data.sha256().map_err(read)?;
    let name = match link_target_name(tree, path) {
        Some(n) => n,
        None => file_name(path),
    };
    Ok(BootFile { name, tree_path: Some(path.to_string()), host_path: None, data, sha256 })
}

/// The last component of a symlink's target, when `path` itself is a symlink.
fn link_target_name(tree: &FsTree, path: &str) -> Option<String> {
    let (dir, base) = path.rsplit_once('/')?;
    let dir = resolve(tree, if dir.is_empty() { b"/" } else { dir.as_bytes() })?;
    let NodeKind::Dir(entries) = &tree.node(dir).kind else { return None };
    match &tree.node(*entries.get(base.as_bytes())?).kind {
        NodeKind::Symlink(t) => Some(file_name(&String::from_utf8_lossy(t))),
        _ => None,
    }
}

/// The newest `/boot/vmlinuz-*`, or Debian's links; with the initrd path to try.
fn auto_kernel(tree: &FsTree) -> Result<(BootFile, Option<String>), KernelError> {
    let mut versions: Vec<String> = Vec::new();
    if let Some(boot) = resolve(tree, b"/boot")
        && let NodeKind::Dir(entries) = &tree.node(boot).kind
    {
        for name in entries.keys() {
            if let Some(v) = std::str::from_utf8(name).ok().and_then(|n| n.strip_prefix("vmlinuz-"))
                && tree_file(tree, &format!("/boot/vmlinuz-{v}"))
            {
                versions.push(v.to_string());
            }
        }
    }
    // Stable on ties: entries come sorted by name, and max_by keeps the last maximum.
    if let Some(v) = versions.iter().max_by(|a, b| debian_version_cmp(a, b)) {
        let k = from_tree(tree, &format!("/boot/vmlinuz-{v}"), "kernel")?;
        let initrd = format!("/boot/initrd.img-{v}");
        return Ok((k, tree_file(tree, &initrd).then_some(initrd)));
    }
    for (k, i) in [("/vmlinuz", "/initrd.img"), ("/boot/vmlinuz", "/boot/initrd.img")] {
        if tree_file(tree, k) {
            let kernel = from_tree(tree, k, "kernel")?;
            let name = kernel.name.clone();
            let by_version = name.strip_prefix("vmlinuz-").map(|v| format!("/boot/initrd.img-{v}"));
            let initrd = [Some(i.to_string()), by_version].into_iter().flatten().find(|p| tree_file(tree, p));
            return Ok((kernel, initrd));
        }
    }
    Err(KernelError::NoKernel)
}

/// dpkg's version order: `[epoch:]upstream[-revision]`, each part compared by `verrevcmp`.
pub fn debian_version_cmp(a: &str, b: &str) -> Ordering {
    fn split(v: &str) -> (u64, &str, &str) {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) if e.bytes().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(0), r),
            _ => (0, v),
        };
        match rest.rsplit_once('-') {
            Some((u, r)) => (epoch, u, r),
            None => (epoch, rest, ""),
        }
    }
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb).then_with(|| verrevcmp(ua, ub)).then_with(|| verrevcmp(ra, rb))
}

/// dpkg's ordering of one version part: alternating non-digit and digit runs; in non-digit
/// runs `~` sorts before everything (even the end), letters before other characters.
fn verrevcmp(a: &str, b: &str) -> Ordering {
    fn order(c: Option<u8>) -> i32 {
        match c {
            None => 0,
            Some(b'~') => -1,
            Some(c) if c.is_ascii_digit() => 0,
            Some(c) if c.is_ascii_alphabetic() => c as i32,
            Some(c) => c as i32 + 256,
        }
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let (ca, cb) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ca != cb {
                return ca.cmp(&cb);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if i < a.len() && a[i].is_ascii_digit() {
            return Ordering::Greater;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{FileContent, Metadata, Node, NodeId, Timestamp};
    use std::collections::BTreeMap;

    #[test]
    fn debian_order_matches_dpkg() {
        // Each pair checked with `dpkg --compare-versions A lt B`.
        for (lo, hi) in [
            ("6.1.0-9-amd64", "6.1.0-50-amd64"),
            ("6.1.0-50-amd64", "6.10.0-1-amd64"),
            ("1.0~rc1", "1.0"),
            ("1.0", "1.0a"),
            ("1.0a", "1.0+"),
            ("1:0.1", "2:0.0"),
            ("5.10.0-28-amd64", "6.1.0-50-amd64"),
            ("1.0-1", "1.0-1.1"),
            ("1.001", "1.2"),
        ] {
            assert_eq!(debian_version_cmp(lo, hi), Ordering::Less, "{lo} < {hi}");
            assert_eq!(debian_version_cmp(hi, lo), Ordering::Greater, "{hi} > {lo}");
        }
        assert_eq!(debian_version_cmp("1.01", "1.1"), Ordering::Equal);
    }

    /// A tree with `/boot`, files at `/name` or `/boot/name`, and links at the root.
    fn tree(files: &[(&str, &[u8])], links: &[(&str, &str)]) -> FsTree {
        let meta = Metadata::new(0o755, 0, 0, Timestamp::default());
        let mut t = FsTree::new(meta.clone());
        let boot = t.add(Node { kind: NodeKind::Dir(BTreeMap::new()), meta: meta.clone() }).unwrap();
        t.link(NodeId::ROOT, b"boot", boot, "/").unwrap();
        for (path, body) in files {
            let (dir, name) = path.rsplit_once('/').unwrap();
            let parent = if dir.is_empty() { NodeId::ROOT } else { boot };
            let c = FileContent { size: body.len() as u64, source: DataSource::Bytes(Arc::from(*body)) };
            let id = t.add(Node { kind: NodeKind::File(c), meta: meta.clone() }).unwrap();
            t.link(parent, name.as_bytes(), id, dir).unwrap();
        }
        for (path, target) in links {
            let kind = NodeKind::Symlink(target.as_bytes().to_vec());
            let id = t.add(Node { kind, meta: meta.clone() }).unwrap();
            t.link(NodeId::ROOT, path.trim_start_matches('/').as_bytes(), id, "/").unwrap();
        }
        t
    }

    #[test]
    fn newest_kernel_and_its_initrd() {
        let t = tree(
            &[
                ("/boot/vmlinuz-6.1.0-9-amd64", b"old"),
                ("/boot/vmlinuz-6.1.0-50-amd64", b"new"),
                ("/boot/initrd.img-6.1.0-50-amd64", b"initrd"),
                ("/boot/initrd.img-6.1.0-9-amd64", b"old initrd"),
            ],
            &[],
        );
        let (k, i) = auto_kernel(&t).unwrap();
        assert_eq!(k.name, "vmlinuz-6.1.0-50-amd64");
        assert_eq!(k.data.len(), 3);
        assert_eq!(i.as_deref(), Some("/boot/initrd.img-6.1.0-50-amd64"));
    }

    #[test]
    fn debian_links_are_followed() {
        let t = tree(
            &[("/boot/kernel-a", b"k"), ("/boot/initrd-a", b"i")],
            &[("/vmlinuz", "boot/kernel-a"), ("/initrd.img", "/boot/initrd-a")],
        );
        let (k, i) = auto_kernel(&t).unwrap();
        assert_eq!(k.name, "kernel-a");
        assert_eq!(k.tree_path.as_deref(), Some("/vmlinuz"));
        assert_eq!(i.as_deref(), Some("/initrd.img"));
    }

    #[test]
    fn root_param_forms() {
        let plan_of = |v: serde_json::Value| {
            let spec = Spec::from_value(v, std::path::Path::new("."), None).unwrap();
            let plan = crate::layout::plan(&spec, None).unwrap();
            root_param(spec.system.as_ref().unwrap(), &plan)
        };
        let sys = |dev: &str| serde_json::json!({"root": "r", "root_device": dev});
        assert_eq!(
            plan_of(serde_json::json!({"partitionTableType": "efi", "diskSize": 300, "system": sys("uuid")}))
                .unwrap(),
            "root=UUID=f222513b-ded1-49fa-b591-20ce86a2fe7f"
        );
        assert_eq!(
            plan_of(
                serde_json::json!({"partitionTableType": "efi", "diskSize": 300, "system": sys("partuuid")})
            )
            .unwrap(),
            "root=PARTUUID=f222513b-ded1-49fa-b591-20ce86a2fe7f"
        );
        let mbr = plan_of(
            serde_json::json!({"partitionTableType": "legacy", "diskSize": 64, "system": sys("partuuid")}),
        )
        .unwrap();
        assert!(
            mbr.starts_with("root=PARTUUID=")
                && mbr.ends_with("-01")
                && mbr.len() == "root=PARTUUID=".len() + 11,
            "{mbr}"
        );
        assert!(matches!(
            plan_of(
                serde_json::json!({"partitionTableType": "none", "diskSize": 64, "system": sys("partuuid")})
            ),
            Err(KernelError::NoPartition)
        ));
    }

    #[test]
    fn no_kernel_says_where_it_looked() {
        let t = tree(&[("/boot/config-6.1", b"x")], &[]);
        let e = auto_kernel(&t).unwrap_err().to_string();
        assert!(
            e.contains("/boot/vmlinuz-*") && e.contains("/vmlinuz") && e.contains("system.kernel"),
            "{e}"
        );
    }
}
