//! GRUB BIOS in a build: which layouts get it, the files it adds to the /boot filesystem's
//! tree (before that filesystem is planned, so sizes are exact), and the boot code written
//! into sector 0 and the embedding region once the partition tables are on disk.
//!
//! grub.cfg is added to the tree with its final length before the IDs are known and its text
//! set afterwards ([`BiosGrub::finish_config`]); the ext4 plan depends on file sizes only.

use super::core::{self, CoreConfig, CoreImage, FsKind, PartMap, SECTOR};
use super::files::GrubFiles;
use super::setup::{self, Region};
use super::{DIR, GrubBiosError, PACKAGE, runtime};
use crate::layout::{Layout, Plan};
use crate::tree::{DataSource, FileContent, FsTree, Metadata, Node, NodeId, NodeKind, TreeError};
use serde::Serialize;
use std::cell::RefCell;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;

/// The filesystem GRUB for BIOS reads /boot from, when a build installs GRUB for BIOS: a
/// system to boot, `installBootLoader`, and a BIOS layout whose /boot is on the ext4 root
/// (legacy, legacy+gpt, hybrid). legacy+boot's FAT /boot is not done yet.
pub fn bios_fs(spec: &crate::spec::Spec) -> Option<FsKind> {
    if !spec.install_boot_loader || spec.system.is_none() {
        return None;
    }
    match spec.partition_table_type {
        Layout::Legacy | Layout::LegacyGpt | Layout::Hybrid => Some(FsKind::Ext4),
        _ => None,
    }
}

/// Whether `layout` boots on BIOS through GRUB.
pub fn is_bios_layout(layout: Layout) -> bool {
    matches!(layout, Layout::Legacy | Layout::LegacyBoot | Layout::LegacyGpt | Layout::Hybrid)
}

/// The partition map GRUB reads on `layout`.
pub fn part_map(layout: Layout) -> PartMap {
    match layout {
        Layout::Legacy | Layout::LegacyBoot => PartMap::Msdos,
        _ => PartMap::Gpt,
    }
}

/// GRUB's i386-pc files from the first package root that has them, each file read recorded
/// with its sha256 for the manifest.
#[derive(Debug)]
pub struct PackageRootFiles {
    roots: Vec<PathBuf>,
    used: RefCell<Vec<GrubInput>>,
}

/// One GRUB file a build used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrubInput {
    pub path: PathBuf,
    pub package: &'static str,
    pub sha256: String,
}

impl PackageRootFiles {
    pub fn new(roots: Vec<PathBuf>) -> Self {
        PackageRootFiles { roots, used: RefCell::new(Vec::new()) }
    }

    /// Every file read so far, first read first, each once.
    pub fn used(&self) -> Vec<GrubInput> {
        self.used.borrow().clone()
    }
}

impl GrubFiles for PackageRootFiles {
    fn read(&self, name: &str) -> Result<Vec<u8>, GrubBiosError> {
        for root in &self.roots {
            let path = root.join(DIR).join(name);
            match std::fs::read(&path) {
                Ok(bytes) => {
                    let mut used = self.used.borrow_mut();
                    if !used.iter().any(|u| u.path == path) {
                        let sha256 = crate::manifest::sha256_reader(&bytes[..], |_| {})
                            .map_err(|error| GrubBiosError::Io { path: path.clone(), error })?;
                        used.push(GrubInput { path, package: PACKAGE, sha256 });
                    }
                    return Ok(bytes);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => return Err(GrubBiosError::Io { path, error }),
            }
        }
        let searched = self.roots.iter().map(|r| format!("`{}`", r.join(DIR).display())).collect::<Vec<_>>();
        Err(GrubBiosError::Missing { name: name.to_string(), searched: searched.join(", ") })
    }
}

/// What the manifest records about GRUB BIOS.
#[derive(Debug, Clone, Serialize)]
pub struct GrubBiosRecord {
    /// Where core.img is: `the bios_grub partition` or `the gap ...`, and its sectors.
    pub region: String,
    pub region_first: u64,
    pub region_last: u64,
    pub kernel_sector: u64,
    pub core_sectors: u64,
    pub core_sha256: String,
    pub modules: Vec<String>,
    pub early_config: String,
    /// The folder of the rest of GRUB on the /boot filesystem.
    pub grub_dir: String,
    pub inputs: Vec<GrubInput>,
}

/// A file by path and its bytes.
pub type NamedFile = (String, Vec<u8>);

/// GRUB BIOS for one build, between tree planning and writing.
#[derive(Debug)]
pub struct BiosGrub {
    pub fs: FsKind,
    pub part_map: PartMap,
    /// grub.cfg's node in the /boot tree, to set once IDs are known.
    /// GRUB's folder on that filesystem (the prefix without a device).
    grub_dir: String,
    /// grub.cfg's node in the root tree when GRUB BIOS keeps its own (ext4 /boot), with its
    /// planned length; `None` when it shares GRUB EFI's on the ESP.
    cfg: Option<(NodeId, usize)>,
    files: PackageRootFiles,
}

/// `mkdir -p` of `path` (bytes, `/`-separated) in `tree`; new folders get `meta`.
fn mkdir_p(tree: &mut FsTree, path: &str, meta: &Metadata) -> Result<NodeId, TreeError> {
    let mut cur = NodeId::ROOT;
    let mut at = String::new();
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        let next = match &tree.node(cur).kind {
            NodeKind::Dir(entries) => entries.get(comp.as_bytes()).copied(),
            _ => return Err(TreeError::NotADirectory(at.clone())),
        };
        cur = match next {
            Some(id) => id,
            None => {
                let id = tree.add(Node { kind: NodeKind::Dir(Default::default()), meta: meta.clone() })?;
                tree.link(cur, comp.as_bytes(), id, if at.is_empty() { "/" } else { &at })?;
                id
            }
        };
        at.push('/');
        at.push_str(comp);
    }
    Ok(cur)
}

fn add_bytes(
    tree: &mut FsTree,
    dir: NodeId,
    dir_path: &str,
    name: &str,
    bytes: Vec<u8>,
    meta: &Metadata,
) -> Result<NodeId, TreeError> {
    let content = FileContent { size: bytes.len() as u64, source: DataSource::Bytes(Arc::from(bytes)) };
    let id = tree.add(Node { kind: NodeKind::File(content), meta: meta.clone() })?;
    tree.link(dir, name.as_bytes(), id, dir_path)?;
    Ok(id)
}

impl BiosGrub {
    /// Adds `<grub_dir>/i386-pc/*` and a grub.cfg of `cfg_len` bytes (zeros until
    /// [`finish_config`](Self::finish_config)) to `tree`, the tree of the /boot filesystem.
    /// `grub_dir` is `/boot/grub` in an ext4 root, `/grub` on a FAT /boot.
    pub fn add_to_tree(
        layout: Layout,
        fs: FsKind,
        tree: &mut FsTree,
        files: PackageRootFiles,
        cfg_len: usize,
        dir_meta: &Metadata,
        file_meta: &Metadata,
    ) -> Result<BiosGrub, InstallError> {
        let grub_dir = match fs {
            FsKind::Ext4 => "/boot/grub",
            FsKind::Fat => "/grub",
        };
        let i386 = format!("{grub_dir}/i386-pc");
        let dir = mkdir_p(tree, &i386, dir_meta)?;
        for (name, bytes) in runtime::files(&files)? {
            add_bytes(tree, dir, &i386, &name, bytes, file_meta)?;
        }
        let gdir = mkdir_p(tree, grub_dir, dir_meta)?;
        let cfg_node = add_bytes(tree, gdir, grub_dir, "grub.cfg", vec![0; cfg_len], file_meta)?;
        let grub_dir = grub_dir.to_string();
        Ok(BiosGrub { fs, part_map: part_map(layout), grub_dir, cfg: Some((cfg_node, cfg_len)), files })
    }

    /// GRUB BIOS on hybrid's ESP beside GRUB EFI: the rest of GRUB goes to
    /// `<esp_grub_dir>/i386-pc/` on the ESP (the returned files, ESP paths), and core.img's
    /// prefix is that folder, so BIOS GRUB reads the very grub.cfg GRUB EFI reads.
    pub fn on_esp(
        layout: Layout,
        esp_grub_dir: &str,
        files: PackageRootFiles,
    ) -> Result<(BiosGrub, Vec<NamedFile>), InstallError> {
        let esp_files = runtime::files(&files)?
            .into_iter()
            .map(|(name, bytes)| (format!("{esp_grub_dir}/i386-pc/{name}"), bytes))
            .collect();
        let grub = BiosGrub {
            fs: FsKind::Fat,
            part_map: part_map(layout),
            grub_dir: esp_grub_dir.to_string(),
            cfg: None,
            files,
        };
        Ok((grub, esp_files))
    }

    /// Sets grub.cfg's text, which must have the length planned.
    pub fn finish_config(&self, tree: &mut FsTree, text: &str) -> Result<(), InstallError> {
        let Some((node, len)) = self.cfg else { return Ok(()) };
        if text.len() != len {
            return Err(InstallError::ConfigLength { planned: len, actual: text.len() });
        }
        let bytes: Arc<[u8]> = Arc::from(text.as_bytes());
        tree.node_mut(node).kind =
            NodeKind::File(FileContent { size: bytes.len() as u64, source: DataSource::Bytes(bytes) });
        Ok(())
    }

    /// Assembles core.img for the /boot filesystem `fs_uuid` and checks that it fits `plan`'s
    /// embedding region, before anything is written.
    pub fn core(&self, plan: &Plan, fs_uuid: &str) -> Result<(CoreImage, CoreConfig, Region), InstallError> {
        let cfg = CoreConfig {
            part_map: self.part_map,
            fs: self.fs,
            fs_uuid: fs_uuid.to_string(),
            prefix: self.grub_dir.clone(),
        };
        let core = core::assemble(&self.files, &cfg)?;
        let region = setup::region(plan)?;
        setup::place_core(&core, &region)?;
        Ok((core, cfg, region))
    }

    /// Writes boot.img into sector 0 (around the table already there) and core.img at the
    /// start of the region; returns what the manifest records.
    pub fn write<W: Read + Write + Seek>(
        &self,
        w: &mut W,
        core: &CoreImage,
        cfg: &CoreConfig,
        region: &Region,
    ) -> Result<GrubBiosRecord, InstallError> {
        let placed = setup::place_core(core, region)?;
        let boot_img = self.files.read("boot.img")?;
        let mut sector0 = [0u8; SECTOR];
        w.seek(SeekFrom::Start(0)).map_err(InstallError::Image)?;
        w.read_exact(&mut sector0).map_err(InstallError::Image)?;
        let boot = setup::boot_sector(&boot_img, &sector0, region.first)?;
        w.seek(SeekFrom::Start(0)).map_err(InstallError::Image)?;
        w.write_all(&boot).map_err(InstallError::Image)?;
        w.seek(SeekFrom::Start(region.first * SECTOR as u64)).map_err(InstallError::Image)?;
        w.write_all(&placed).map_err(InstallError::Image)?;
        let core_sha256 = crate::manifest::sha256_reader(&placed[..], |_| {}).map_err(InstallError::Image)?;
        Ok(GrubBiosRecord {
            region: region.what.to_string(),
            region_first: region.first,
            region_last: region.last,
            kernel_sector: region.first,
            core_sectors: core.sectors(),
            core_sha256,
            modules: core.modules.clone(),
            early_config: cfg.early_config(),
            grub_dir: cfg.prefix().to_string(),
            inputs: self.files.used(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Grub(#[from] GrubBiosError),
    #[error("adding GRUB's files to the /boot tree: {0}")]
    Tree(#[from] TreeError),
    #[error("internal: grub.cfg was planned with {planned} bytes but its text has {actual}")]
    ConfigLength { planned: usize, actual: usize },
    #[error("writing GRUB's boot code into the image: {0}")]
    Image(std::io::Error),
    #[error(
        "GRUB for BIOS reads the {what} from the root filesystem, but system.{what} `{}` is outside the root tree: put it in the root tree (e.g. /boot)", path.display()
    )]
    OutsideTree { what: String, path: PathBuf },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Timestamp;

    #[test]
    fn mkdir_p_reuses_and_creates() {
        let meta = Metadata::new(0o755, 0, 0, Timestamp::from_secs(0));
        let mut t = FsTree::new(meta.clone());
        let a = mkdir_p(&mut t, "/boot/grub", &meta).unwrap();
        let b = mkdir_p(&mut t, "boot/grub/", &meta).unwrap();
        assert_eq!(a, b);
        assert_eq!(t.lookup(b"/boot/grub"), Some(a));
        add_bytes(&mut t, a, "/boot/grub", "x", vec![1], &meta).unwrap();
        assert!(matches!(mkdir_p(&mut t, "/boot/grub/x/y", &meta), Err(TreeError::NotADirectory(_))));
    }
}
