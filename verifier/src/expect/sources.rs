//! The files `contents` and `configFile` put into the image, resolved on the host as the
//! seed's copy loop sees them, each with the sha256 of its source, so that `verify --spec`
//! can compare them with the files in the image.
//!
//! The seed's loop (make-disk-image.nix, read from its text): a source with `*` is a shell
//! glob, and every match is copied into the target folder under its own name (`rsync -a
//! match target/`: a matching folder arrives whole, as `target/name/...`); a folder source
//! is copied *as* the target (`rsync -a source/ target`); a file source becomes the target.
//! `rsync -a` copies symlinks as links, so only regular files are hashed, and a folder is
//! walked without following the links inside it (the source folder itself is followed, as
//! `[ -d source ]` and the trailing slash do). `configFile` lands at
//! `/etc/nixos/configuration.nix` after the contents. Relative sources resolve against the
//! spec's folder; a glob's `*` and `?` skip names that start with a dot, as bash does.

use super::Expectations;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where `configFile` lands in the image.
pub const CONFIG_FILE_TARGET: &str = "/etc/nixos/configuration.nix";

/// One regular file the image must hold with the bytes of a host file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Absolute path in the root filesystem.
    pub target: String,
    /// The host file whose bytes it must hold.
    pub source: PathBuf,
    /// The spec entry it comes from: `contents target /etc/motd` or `configFile`.
    pub entry: String,
    /// Whether the file is the entry's target itself (a file source, `configFile`), not a
    /// file below it.
    pub is_target: bool,
}

/// A source that could not be read on the host, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub entry: String,
    pub what: String,
}

impl Expectations {
    /// Every regular file `contents` and `configFile` put into the image, by target path (a
    /// later entry that writes the same path wins, as a later copy does), and the sources
    /// that could not be read. Empty for a spec not read from a file ([`Expectations::spec_dir`]
    /// unset): its relative paths have nothing to resolve against.
    pub fn source_files(&self) -> (Vec<SourceFile>, Vec<Unreadable>) {
        let Some(dir) = &self.spec_dir else { return (Vec::new(), Vec::new()) };
        let mut files: BTreeMap<String, SourceFile> = BTreeMap::new();
        let mut bad = Vec::new();
        let mut add = |target: String, source: PathBuf, entry: &str, is_target: bool| {
            files.insert(target.clone(), SourceFile { target, source, entry: entry.to_string(), is_target });
        };
        for c in &self.contents {
            let target = format!("/{}", c.target.trim_matches('/'));
            let entry = format!("contents target {target}");
            let mut found = Vec::new();
            let result = if c.is_glob() {
                glob(&dir.join(&c.source)).and_then(|matches| {
                    if matches.is_empty() {
                        return Err(format!("the glob `{}` matches nothing", c.source));
                    }
                    for m in matches {
                        let name =
                            m.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                        let at = format!("{}/{name}", target.trim_end_matches('/'));
                        copied(&m, &at, false, &mut found)?;
                    }
                    Ok(())
                })
            } else {
                copied(&dir.join(&c.source), &target, true, &mut found)
            };
            match result {
                Ok(()) => found.into_iter().for_each(|(t, s)| {
                    let is_target = t == target;
                    add(t, s, &entry, is_target)
                }),
                Err(what) => bad.push(Unreadable { entry, what }),
            }
        }
        if let Some(cfg) = &self.config_file {
            let source = dir.join(cfg);
            match std::fs::metadata(&source) {
                Ok(m) if m.is_file() => add(CONFIG_FILE_TARGET.to_string(), source, "configFile", true),
                Ok(_) => bad.push(Unreadable {
                    entry: "configFile".into(),
                    what: format!("`{}` is not a regular file", source.display()),
                }),
                Err(e) => bad.push(Unreadable {
                    entry: "configFile".into(),
                    what: format!("cannot read `{}`: {}", source.display(), e),
                }),
            }
        }
        (files.into_values().collect(), bad)
    }
}

/// The regular files an `rsync -a` of `source` to `target` makes: a file becomes `target`;
/// a folder's files land under `target` by their relative paths. `follow` follows `source`
/// itself when it is a symlink (a plain folder source); links below are never followed.
fn copied(source: &Path, target: &str, follow: bool, out: &mut Vec<(String, PathBuf)>) -> Result<(), String> {
    let meta = if follow { std::fs::metadata(source) } else { std::fs::symlink_metadata(source) };
    let meta = meta.map_err(|e| format!("cannot read `{}`: {}", source.display(), e))?;
    if meta.is_file() {
        out.push((target.to_string(), source.to_path_buf()));
        return Ok(());
    }
    if !meta.is_dir() {
        return Ok(()); // a symlink or a special file: no bytes to compare
    }
    let mut stack = vec![(source.to_path_buf(), target.trim_end_matches('/').to_string())];
    while let Some((dir, at)) = stack.pop() {
        let read = std::fs::read_dir(&dir).map_err(|e| format!("cannot list `{}`: {}", dir.display(), e))?;
        for entry in read {
            let entry = entry.map_err(|e| format!("cannot list `{}`: {}", dir.display(), e))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type().map_err(|e| format!("cannot read `{}`: {}", path.display(), e))?;
            if kind.is_dir() {
                stack.push((path, format!("{at}/{name}")));
            } else if kind.is_file() {
                out.push((format!("{at}/{name}"), path));
            }
        }
    }
    Ok(())
}

/// The paths a shell glob `pattern` (absolute) matches, sorted; `*` and `?` in any component.
fn glob(pattern: &Path) -> Result<Vec<PathBuf>, String> {
    let mut paths = vec![PathBuf::from("/")];
    for comp in pattern.components() {
        let part = comp.as_os_str().to_string_lossy();
        if matches!(comp, std::path::Component::RootDir) {
            continue;
        }
        if !part.contains(['*', '?']) {
            paths =
                paths.into_iter().map(|p| p.join(&*part)).filter(|p| p.symlink_metadata().is_ok()).collect();
            continue;
        }
        let mut next = Vec::new();
        for dir in paths.iter().filter(|p| p.is_dir()) {
            let read =
                std::fs::read_dir(dir).map_err(|e| format!("cannot list `{}`: {}", dir.display(), e))?;
            let mut names: Vec<String> =
                read.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
            names.sort();
            next.extend(
                names
                    .into_iter()
                    .filter(|n| !n.starts_with('.') && wildcard(part.as_bytes(), n.as_bytes()))
                    .map(|n| dir.join(n)),
            );
        }
        paths = next;
    }
    Ok(paths)
}

/// Whether `name` matches `pat`, where `*` is any run of bytes and `?` any one byte.
fn wildcard(pat: &[u8], name: &[u8]) -> bool {
    // Greedy with one backtrack point: the last `*` seen and where it started matching.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// The sha256 of a host file, streamed, as lowercase hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_as_bash_matches_them() {
        for (p, n, want) in [
            ("*", "abc", true),
            ("*.conf", "a.conf", true),
            ("*.conf", "a.confx", false),
            ("a?c", "abc", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("", "", true),
            ("x", "", false),
        ] {
            assert_eq!(wildcard(p.as_bytes(), n.as_bytes()), want, "{p} ~ {n}");
        }
    }

    #[test]
    fn sources_resolve_as_the_seeds_loop_copies_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir_all(d.join("tree/sub")).expect("tree");
        std::fs::write(d.join("motd"), "hi\n").expect("file");
        std::fs::write(d.join("tree/a"), "a").expect("file");
        std::fs::write(d.join("tree/sub/b"), "b").expect("file");
        std::fs::write(d.join("tree/.hidden"), "h").expect("file");
        std::fs::write(d.join("configuration.nix"), "{ }").expect("file");
        std::os::unix::fs::symlink("a", d.join("tree/link")).expect("symlink");
        let spec = "configFile = \"configuration.nix\"\n\
            [[contents]]\nsource = \"motd\"\ntarget = \"/etc/motd\"\n\
            [[contents]]\nsource = \"tree\"\ntarget = \"/srv/t\"\n\
            [[contents]]\nsource = \"tree/*\"\ntarget = \"/g\"\n\
            [[contents]]\nsource = \"nope\"\ntarget = \"/x\"\n";
        std::fs::write(d.join("s.toml"), spec).expect("spec");
        let e = Expectations::from_path(&d.join("s.toml")).expect("valid spec");
        let (files, bad) = e.source_files();
        let got: Vec<(&str, &str)> = files
            .iter()
            .map(|f| {
                (
                    f.target.as_str(),
                    f.source.strip_prefix(d).expect("under the spec's folder").to_str().expect("UTF-8"),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("/etc/motd", "motd"),
                ("/etc/nixos/configuration.nix", "configuration.nix"),
                ("/g/a", "tree/a"),
                ("/g/sub/b", "tree/sub/b"),
                ("/srv/t/.hidden", "tree/.hidden"),
                ("/srv/t/a", "tree/a"),
                ("/srv/t/sub/b", "tree/sub/b"),
            ]
        );
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(bad[0].entry, "contents target /x");
        assert_eq!(
            sha256_file(&d.join("motd")).expect("hash"),
            "98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4"
        );
        // A spec read from text has no folder to resolve against.
        assert_eq!(
            Expectations::from_toml_str(spec).expect("valid").source_files(),
            (Vec::new(), Vec::new())
        );
    }
}
