//! GRUB BIOS in a build: which layouts get it, the files it adds to the /boot filesystem's
//! tree (before that filesystem is planned, so sizes are exact), and the boot code written
//! into sector 0 and the embedding region once the partition tables are on disk.
//!
//! Where the rest of GRUB and grub.cfg go, per layout:
//! - `legacy`, `legacy+gpt`, `hybrid` with systemd-boot: the ext4 root, `/boot/grub/`
//!   ([`BiosGrub::add_to_tree`]). grub.cfg is added to the tree with its final length before
//!   the IDs are known and its text set afterwards ([`BiosGrub::finish_config`]); the ext4
//!   plan depends on file sizes only.
//! - `legacy+boot`: the FAT /boot partition (mounted at /boot, as the seed mounts it), `/grub/`
//!   on it beside the kernel and initrd at its root ([`BiosGrub::on_fat`]; `boot::esp` writes
//!   grub.cfg and the kernel there). A FAT partition has a fixed size, so nothing waits for IDs.
//! - `hybrid` with GRUB EFI: the ESP, GRUB EFI's `/EFI/debian/`, sharing its grub.cfg.
//!
//! All of GRUB's files come from one package root: the first that has GRUB's i386-pc folder
//! (its `moddep.lst`). Modules of two GRUB builds do not load into each other's kernel, so a
//! file missing there is an error, never looked up in the next root.

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

/// The filesystem GRUB for BIOS reads /boot from, when a build installs GRUB for BIOS (a
/// system to boot, `installBootLoader`, a BIOS layout): the ext4 root on legacy, legacy+gpt
/// and hybrid (the build moves it to the ESP when hybrid has GRUB EFI), the FAT /boot on
/// legacy+boot.
pub fn bios_fs(spec: &crate::spec::Spec) -> Option<FsKind> {
    if !spec.install_boot_loader || spec.system.is_none() {
        return None;
    }
    match spec.partition_table_type {
        Layout::Legacy | Layout::LegacyGpt | Layout::Hybrid => Some(FsKind::Ext4),
        Layout::LegacyBoot => Some(FsKind::Fat),
        _ => None,
    }
}

/// GRUB's folder on legacy+boot's FAT /boot (`/boot/grub` once mounted), as `grub-install
/// --boot-directory=/boot` lays it out.
pub const FAT_BOOT_GRUB_DIR: &str = "/grub";

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

/// GRUB's i386-pc files from the first package root that has GRUB's i386-pc folder (its
/// `moddep.lst`), each file read recorded with its sha256 for the manifest.
#[derive(Debug)]
pub struct PackageRootFiles {
    roots: Vec<PathBuf>,
    used: RefCell<Vec<GrubInput>>,
}

/// The file whose presence makes a package root the one GRUB's files come from.
const MARKER: &str = "moddep.lst";

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
        let Some(root) = self.roots.iter().find(|r| r.join(DIR).join(MARKER).is_file()) else {
            let searched =
                self.roots.iter().map(|r| format!("`{}`", r.join(DIR).display())).collect::<Vec<_>>();
            return Err(GrubBiosError::Missing { name: name.to_string(), searched: searched.join(", ") });
        };
        let path = root.join(DIR).join(name);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let mut used = self.used.borrow_mut();
                if !used.iter().any(|u| u.path == path) {
                    let sha256 = crate::manifest::sha256_reader(&bytes[..], |_| {})
                        .map_err(|error| GrubBiosError::Io { path: path.clone(), error })?;
                    used.push(GrubInput { path, package: PACKAGE, sha256 });
                }
                Ok(bytes)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(GrubBiosError::MissingInRoot { name: name.to_string(), dir: root.join(DIR) })
            }
            Err(error) => Err(GrubBiosError::Io { path, error }),
        }
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
    /// GRUB's folder on that filesystem (the prefix without a device).
    grub_dir: String,
    /// grub.cfg's node in the root tree when GRUB BIOS keeps its own (ext4 /boot), with its
    /// planned length; `None` on a FAT partition, where `boot::esp` writes it.
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

    /// GRUB BIOS reading a FAT partition: the rest of GRUB goes to `<grub_dir>/i386-pc/` on
    /// it (the returned files, paths on that FAT) and core.img's prefix is `grub_dir`. On
    /// hybrid's ESP that is GRUB EFI's folder, so BIOS GRUB reads the very grub.cfg GRUB EFI
    /// reads; on legacy+boot's FAT /boot it is [`FAT_BOOT_GRUB_DIR`]. `boot::esp` writes
    /// grub.cfg either way.
    pub fn on_fat(
        layout: Layout,
        grub_dir: &str,
        files: PackageRootFiles,
    ) -> Result<(BiosGrub, Vec<NamedFile>), InstallError> {
        let fat_files = runtime::files(&files)?
            .into_iter()
            .map(|(name, bytes)| (format!("{grub_dir}/i386-pc/{name}"), bytes))
            .collect();
        let grub = BiosGrub {
            fs: FsKind::Fat,
            part_map: part_map(layout),
            grub_dir: grub_dir.to_string(),
            cfg: None,
            files,
        };
        Ok((grub, fat_files))
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
