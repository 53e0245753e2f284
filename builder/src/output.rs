//! The output set of a build (image, efi-vars.fd, nix-support/, manifest.json), staged and committed all or nothing.
//!
//! Every file of the set is written into a stage folder inside the output folder,
//! `OUT/.reprodisk-stage-XXXXXX/`, under its final relative name ([`Stage::path_for`]). Only
//! when every file is complete does [`Stage::commit`] move the set into `OUT`. The stage is
//! on the same filesystem as its targets, so each move is one `rename(2)`, which replaces a
//! name atomically: a reader of one name sees the old file or the new one, never a part.
//!
//! POSIX has no rename of several names at once, so "old set or new set" is defined through
//! `manifest.json`, the commit marker: it lists every other file of its set with its sha256
//! (`files`). The commit (under an flock of `OUT` itself, so two builds into one folder
//! commit one after the other) runs:
//! 1. checks: every staged file exists, nothing in `OUT` is in the way (a folder where a
//!    file goes, a file where `nix-support/` goes). A failure here changes nothing in `OUT`;
//! 2. moves the old `manifest.json` into the stage (from now on no set is committed), then
//!    every file of the old set (the names its manifest lists) and every file the new set
//!    replaces;
//! 3. moves the new files in, fsyncs their folders, and moves the new `manifest.json` in
//!    last, then fsyncs `OUT`.
//!
//! If a step of 2 or 3 fails, the moves done so far are undone in reverse order, so `OUT`
//! holds the old set again. Hence at every instant, whenever `OUT/manifest.json` exists,
//! every file it lists is in `OUT` with the recorded content: a reader that opens the
//! manifest, then the files, then checks that `manifest.json` is still the same inode, has
//! read one consistent set. Between steps 2 and 3 there is no manifest (a few renames long);
//! only a SIGKILL or a power cut in that window leaves a folder without a manifest, which is
//! not a valid set, and the next build replaces it. Files in `OUT` that no set lists are
//! never touched.
//!
//! Clean-up: the stage registers with [`crate::cleanup`], so SIGINT, SIGTERM and SIGHUP
//! remove it, and it is removed when a [`Stage`] is dropped uncommitted (any error). A build
//! holds an flock on its stage folder for its whole life; [`Stage::begin`] removes every
//! `OUT/.reprodisk-stage-*` folder whose lock it can take, i.e. the leftovers of builds that
//! were killed with SIGKILL, and leaves alone those of builds still running.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::cleanup;

/// Name prefix of stage folders in the output folder.
pub const STAGE_PREFIX: &str = ".reprodisk-stage-";
/// The commit marker of an output set.
pub const MANIFEST: &str = "manifest.json";
/// The Hydra products file make-disk-image writes beside the image.
pub const HYDRA_PRODUCTS: &str = "nix-support/hydra-build-products";
/// Where the old set is kept inside the stage while a commit runs.
const OLD: &str = ".old";

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{action} `{}`: {error}", path.display())]
    Io { action: &'static str, path: PathBuf, error: io::Error },
    #[error("`{}` is in the way of the output: it is {what}; remove or rename it", path.display())]
    InTheWay { path: PathBuf, what: &'static str },
    #[error("output name `{name}` must be a relative path of plain names inside the output folder")]
    BadName { name: String },
    #[error("`{name}` is part of the output set but was not written into the stage")]
    NotWritten { name: String },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> OutputError {
    let path = path.to_path_buf();
    move |error| OutputError::Io { action, path, error }
}

/// A build's stage folder; see the module docs.
#[derive(Debug)]
pub struct Stage {
    out_dir: PathBuf,
    dir: PathBuf,
    names: BTreeSet<String>,
    created_out: bool,
    committed: bool,
    /// The flock on the stage folder, held while the stage lives.
    _lock: File,
    _guard: cleanup::Guard,
}

impl Stage {
    /// Creates `out_dir` if missing, removes stale stages of killed builds in it and creates
    /// a fresh, locked stage folder.
    pub fn begin(out_dir: &Path) -> Result<Stage, OutputError> {
        let created_out = match std::fs::metadata(out_dir) {
            Ok(m) if m.is_dir() => false,
            Ok(_) => return Err(OutputError::InTheWay { path: out_dir.to_path_buf(), what: "not a folder" }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(out_dir).map_err(io_err("creating", out_dir))?;
                true
            }
            Err(e) => return Err(io_err("reading", out_dir)(e)),
        };
        let result = Self::make(out_dir, created_out);
        if result.is_err() && created_out {
            let _ = std::fs::remove_dir(out_dir);
        }
        result
    }

    fn make(out_dir: &Path, created_out: bool) -> Result<Stage, OutputError> {
        remove_stale(out_dir)?;
        loop {
            let dir = tempfile::Builder::new()
                .prefix(STAGE_PREFIX)
                .tempdir_in(out_dir)
                .map_err(io_err("creating a stage folder in", out_dir))?
                .keep();
            let lock = File::open(&dir).map_err(io_err("opening", &dir))?;
            lock.lock().map_err(io_err("locking", &dir))?;
            // Another build's clean-up may have taken the lock between mkdir and flock and
            // removed the folder: then make a new one.
            let same = std::fs::symlink_metadata(&dir)
                .ok()
                .zip(lock.metadata().ok())
                .is_some_and(|(a, b)| a.ino() == b.ino() && a.dev() == b.dev());
            if !same {
                continue;
            }
            let guard = cleanup::register(&dir);
            return Ok(Stage {
                out_dir: out_dir.to_path_buf(),
                dir,
                names: BTreeSet::new(),
                created_out,
                committed: false,
                _lock: lock,
                _guard: guard,
            });
        }
    }

    /// The stage folder (for scratch files that must go away with the stage).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Adds `name` (relative to the output folder, e.g. `efi-vars.fd` or
    /// `nix-support/hydra-build-products`) to the set and returns where to write it in the
    /// stage; its parent folders in the stage are created.
    pub fn path_for(&mut self, name: &str) -> Result<PathBuf, OutputError> {
        let comps = check_name(name)?;
        let mut p = self.dir.clone();
        for c in &comps[..comps.len() - 1] {
            p.push(c);
            // Not create_dir_all: a stage removed by a signal must not be re-created.
            match std::fs::create_dir(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err("creating", &p)(e)),
            }
        }
        p.push(comps[comps.len() - 1]);
        self.names.insert(comps.join("/"));
        Ok(p)
    }

    /// The names of the set so far, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// Moves the set into the output folder (see the module docs) and returns the final
    /// paths, [`MANIFEST`] last. `manifest.json` must be part of the set.
    pub fn commit(mut self) -> Result<Vec<PathBuf>, OutputError> {
        let out = self.out_dir.clone();
        let out_lock = File::open(&out).map_err(io_err("opening", &out))?;
        out_lock.lock().map_err(io_err("locking", &out))?;
        let signals_held = cleanup::hold();
        let result = self.commit_locked();
        drop(signals_held);
        if result.is_ok() {
            self.committed = true;
        }
        result
    }

    fn commit_locked(&self) -> Result<Vec<PathBuf>, OutputError> {
        if !self.names.contains(MANIFEST) {
            return Err(OutputError::NotWritten { name: MANIFEST.to_string() });
        }
        // 1. Checks; nothing in `out` changes until they pass.
        let mut dirs_to_make = BTreeSet::new();
        for name in &self.names {
            let staged = self.dir.join(name);
            if !std::fs::symlink_metadata(&staged).is_ok_and(|m| m.is_file()) {
                return Err(OutputError::NotWritten { name: name.clone() });
            }
            let target = self.out_dir.join(name);
            let mut parent = target.parent();
            while let Some(p) = parent.filter(|p| *p != self.out_dir) {
                match std::fs::metadata(p) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        return Err(OutputError::InTheWay { path: p.to_path_buf(), what: "not a folder" });
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        dirs_to_make.insert(p.to_path_buf());
                    }
                    Err(e) => return Err(io_err("reading", p)(e)),
                }
                parent = p.parent();
            }
            if std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                return Err(OutputError::InTheWay { path: target, what: "a folder" });
            }
        }
        let mut replaced: BTreeSet<String> = old_set(&self.out_dir);
        replaced.extend(self.names.iter().cloned());
        replaced.remove(MANIFEST);

        let mut undo = Undo { moves: Vec::new(), dirs: Vec::new() };
        let result = self.swap(&replaced, &dirs_to_make, &mut undo);
        if result.is_err() {
            undo.run();
        }
        result
    }

    fn swap(
        &self,
        replaced: &BTreeSet<String>,
        dirs_to_make: &BTreeSet<PathBuf>,
        undo: &mut Undo,
    ) -> Result<Vec<PathBuf>, OutputError> {
        let old = self.dir.join(OLD);
        std::fs::create_dir(&old).map_err(io_err("creating", &old))?;
        // 2. Uncommit the old set, then move it (and whatever the new set replaces) aside.
        let old_manifest = self.out_dir.join(MANIFEST);
        if std::fs::symlink_metadata(&old_manifest).is_ok() {
            undo.rename(&old_manifest, &old.join(MANIFEST))?;
        }
        for (i, name) in replaced.iter().enumerate() {
            let target = self.out_dir.join(name);
            if std::fs::symlink_metadata(&target).is_ok_and(|m| !m.is_dir()) {
                undo.rename(&target, &old.join(i.to_string()))?;
            }
        }
        // 3. The new set, the manifest last.
        for d in dirs_to_make {
            std::fs::create_dir(d).map_err(io_err("creating", d))?;
            undo.dirs.push(d.clone());
        }
        let mut finals = Vec::new();
        let mut folders = BTreeSet::new();
        for name in self.names.iter().filter(|n| *n != MANIFEST) {
            let target = self.out_dir.join(name);
            undo.rename(&self.dir.join(name), &target)?;
            folders.insert(target.parent().map(Path::to_path_buf).unwrap_or_default());
            finals.push(target);
        }
        for f in &folders {
            sync_dir(f)?;
        }
        let manifest = self.out_dir.join(MANIFEST);
        undo.rename(&self.dir.join(MANIFEST), &manifest)?;
        sync_dir(&self.out_dir)?;
        finals.push(manifest);
        Ok(finals)
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        // After a commit only the old set's files and empty folders are left in the stage.
        let _ = std::fs::remove_dir_all(&self.dir);
        if !self.committed && self.created_out {
            // Only succeeds when the folder is empty: nothing of anyone else is removed.
            let _ = std::fs::remove_dir(&self.out_dir);
        }
    }
}

/// Renames done during a commit, to undo in reverse order if a later step fails.
struct Undo {
    moves: Vec<(PathBuf, PathBuf)>,
    dirs: Vec<PathBuf>,
}

impl Undo {
    fn rename(&mut self, from: &Path, to: &Path) -> Result<(), OutputError> {
        std::fs::rename(from, to).map_err(io_err("moving into place", to))?;
        self.moves.push((from.to_path_buf(), to.to_path_buf()));
        Ok(())
    }

    fn run(self) {
        for (from, to) in self.moves.iter().rev() {
            if let Err(e) = std::fs::rename(to, from) {
                eprintln!("reprodisk: could not move `{}` back to `{}`: {e}", to.display(), from.display());
            }
        }
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), OutputError> {
    File::open(dir).and_then(|f| f.sync_all()).map_err(io_err("syncing", dir))
}

/// The components of an output name, or an error if it could leave the output folder.
fn check_name(name: &str) -> Result<Vec<&str>, OutputError> {
    let bad = || OutputError::BadName { name: name.to_string() };
    let comps: Vec<&str> = Path::new(name)
        .components()
        .map(|c| match c {
            Component::Normal(s) => s.to_str().ok_or_else(bad),
            _ => Err(bad()),
        })
        .collect::<Result<_, _>>()?;
    if comps.is_empty() || comps[0].starts_with(STAGE_PREFIX) {
        return Err(bad());
    }
    Ok(comps)
}

/// The files of the set committed in `out`: the names its manifest lists under `files`
/// and `output.file` (older manifests). Nothing when there is no readable manifest.
fn old_set(out: &Path) -> BTreeSet<String> {
    let Ok(bytes) = std::fs::read(out.join(MANIFEST)) else { return BTreeSet::new() };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return BTreeSet::new() };
    let listed = v["files"].as_array().into_iter().flatten().filter_map(|f| f["name"].as_str());
    listed.chain(v["output"]["file"].as_str()).filter(|n| check_name(n).is_ok()).map(String::from).collect()
}

/// Removes the stage folders of killed builds: those whose flock can be taken.
fn remove_stale(out: &Path) -> Result<(), OutputError> {
    for entry in std::fs::read_dir(out).map_err(io_err("listing", out))? {
        let entry = entry.map_err(io_err("listing", out))?;
        if !entry.file_name().as_encoded_bytes().starts_with(STAGE_PREFIX.as_bytes()) {
            continue;
        }
        let path = entry.path();
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let Ok(lock) = File::open(&path) else { continue };
        if lock.try_lock().is_ok() {
            std::fs::remove_dir_all(&path).map_err(io_err("removing the stale stage", &path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    fn stage_set(out: &Path, files: &[(&str, &str)]) -> Stage {
        let mut s = Stage::begin(out).unwrap();
        for (name, text) in files {
            std::fs::write(s.path_for(name).unwrap(), text).unwrap();
        }
        s
    }

    #[test]
    fn commit_replaces_the_set_and_leaves_no_stage() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        stage_set(
            &out,
            &[("a.img", "1"), ("nix-support/p", "1"), (MANIFEST, r#"{"files":[{"name":"a.img"}]}"#)],
        )
        .commit()
        .unwrap();
        std::fs::write(out.join("user-file"), "mine").unwrap();
        // The new set has another image name: the old image goes, the user's file stays.
        let finals =
            stage_set(&out, &[("b.img", "2"), ("nix-support/p", "2"), (MANIFEST, "{}")]).commit().unwrap();
        assert_eq!(finals.last().unwrap(), &out.join(MANIFEST));
        assert_eq!(names(&out), ["b.img", "manifest.json", "nix-support", "user-file"]);
        assert_eq!(std::fs::read_to_string(out.join("nix-support/p")).unwrap(), "2");
    }

    #[test]
    fn something_in_the_way_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        std::fs::write(out.join("nix-support"), "").unwrap();
        let err =
            stage_set(out, &[("a.img", "1"), ("nix-support/p", "1"), (MANIFEST, "{}")]).commit().unwrap_err();
        assert!(matches!(&err, OutputError::InTheWay { path, .. } if path.ends_with("nix-support")), "{err}");
        assert_eq!(names(out), ["nix-support"]);
    }

    #[test]
    fn a_missing_file_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        stage_set(out, &[("a.img", "old"), (MANIFEST, r#"{"files":[{"name":"a.img"}]}"#)]).commit().unwrap();
        let mut s = stage_set(out, &[("a.img", "new"), (MANIFEST, "{}")]);
        // Announced but never written: the check refuses before anything moves.
        s.path_for("efi-vars.fd").unwrap();
        assert!(matches!(s.commit(), Err(OutputError::NotWritten { .. })));
        assert_eq!(std::fs::read_to_string(out.join("a.img")).unwrap(), "old");
        assert_eq!(names(out), ["a.img", "manifest.json"]);
    }

    #[test]
    fn undo_moves_back_in_reverse() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
        std::fs::write(&a, "a").unwrap();
        let mut undo = Undo { moves: Vec::new(), dirs: vec![] };
        undo.rename(&a, &b).unwrap();
        undo.rename(&b, &c).unwrap();
        assert!(undo.rename(&a, &b).is_err());
        undo.run();
        assert_eq!(names(dir.path()), ["a"]);
    }

    #[test]
    fn stale_stages_go_and_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let stale = out.join(format!("{STAGE_PREFIX}dead"));
        std::fs::create_dir(&stale).unwrap();
        std::fs::write(stale.join("x.img"), "x").unwrap();
        let live = Stage::begin(out).unwrap();
        assert!(!stale.exists());
        let other = Stage::begin(out).unwrap();
        assert!(live.dir().exists() && other.dir().exists());
        drop(live);
        drop(other);
        assert!(names(out).is_empty());
    }

    #[test]
    fn names_stay_inside() {
        for bad in ["", "/etc/x", "../x", "a/../b", ".reprodisk-stage-x/y"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(check_name("nix-support/p").unwrap(), ["nix-support", "p"]);
    }

    #[test]
    fn a_created_output_folder_goes_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("new");
        drop(Stage::begin(&out).unwrap());
        assert!(!out.exists());
    }
}
