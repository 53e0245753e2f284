//! The perturbations an audit builds under, after reprotest's: each one changes one piece of
//! host state the builder must not read, and [`Variation::apply`] says how a child build's
//! command line and environment change for it.
//!
//! The control build runs with fixed values for everything varied here (cwd in the work
//! folder, `TZ=UTC`, `LANG=LC_ALL=C.UTF-8`, umask 022, the real clock, the inputs as they are,
//! the caller's uid and hostname, the caller's environment). A varied build changes one of
//! them (or all of them at once, in the `all` build):
//!
//! | name | what changes |
//! | --- | --- |
//! | `build-path` | a deeper build folder with a space and non-ASCII in its name, as cwd, and `--out` given relative to it |
//! | `tz` | `TZ=Pacific/Kiritimati` (UTC+14) |
//! | `locale` | `LANG` and `LC_ALL` = `fr_CH.UTF-8`, `LANGUAGE=fr` |
//! | `umask` | 077 instead of 022 |
//! | `clock` | the wall clock 10 years ahead (libfaketime, `FAKETIME=+3650d`); SOURCE_DATE_EPOCH unchanged |
//! | `readdir` | every folder the build lists comes in the opposite order: the audit answers its `getdents64` calls (seccomp user notification, see [`super::readdir`]) |
//! | `uid` | the build runs as `nobody` (65534), when it can read every input |
//! | `hostname` | another hostname, in a new UTS namespace (as root only: a user namespace would show other owners on the inputs) |
//! | `env` | another HOME and TMPDIR, and extra variables |
//!
//! What cannot run here (no faketime, not root, no namespaces, inputs not readable as
//! `nobody`) is reported as not run with the reason, never skipped in silence.

use std::path::PathBuf;

/// One perturbation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variation {
    BuildPath,
    Tz,
    Locale,
    Umask,
    Clock,
    Readdir,
    Uid,
    Hostname,
    Env,
}

/// The clock shift of the `clock` variation, in libfaketime's `FAKETIME` syntax.
pub const CLOCK_SHIFT: &str = "+3650d";
/// The time zone of the `tz` variation: UTC+14, as far from UTC as a zone gets.
pub const VARIED_TZ: &str = "Pacific/Kiritimati";
pub const VARIED_LOCALE: &str = "fr_CH.UTF-8";
pub const VARIED_UMASK: u32 = 0o077;
pub const CONTROL_UMASK: u32 = 0o022;
pub const VARIED_HOSTNAME: &str = "reprodisk-audit-elsewhere";
/// `nobody` on Debian.
pub const NOBODY: u32 = 65534;

impl Variation {
    pub const ALL: [Variation; 9] = [
        Variation::BuildPath,
        Variation::Tz,
        Variation::Locale,
        Variation::Umask,
        Variation::Clock,
        Variation::Readdir,
        Variation::Uid,
        Variation::Hostname,
        Variation::Env,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variation::BuildPath => "build-path",
            Variation::Tz => "tz",
            Variation::Locale => "locale",
            Variation::Umask => "umask",
            Variation::Clock => "clock",
            Variation::Readdir => "readdir",
            Variation::Uid => "uid",
            Variation::Hostname => "hostname",
            Variation::Env => "env",
        }
    }

    /// What the variation does, for the report.
    pub fn describe(self) -> String {
        match self {
            Variation::BuildPath => "build folder and cwd: a deeper folder, `--out` relative to it".into(),
            Variation::Tz => format!("TZ={VARIED_TZ}"),
            Variation::Locale => format!("LANG=LC_ALL={VARIED_LOCALE}"),
            Variation::Umask => format!("umask {VARIED_UMASK:03o}"),
            Variation::Clock => format!("wall clock shifted {CLOCK_SHIFT} (libfaketime)"),
            Variation::Readdir => {
                "every folder listed in the opposite order (getdents64 answered by the audit)".into()
            }
            Variation::Uid => format!("run as nobody (uid {NOBODY})"),
            Variation::Hostname => format!("hostname {VARIED_HOSTNAME} (UTS namespace)"),
            Variation::Env => "HOME, TMPDIR and extra environment variables".into(),
        }
    }

    pub fn from_name(s: &str) -> Option<Variation> {
        Variation::ALL.into_iter().find(|v| v.name() == s)
    }

    /// Changes `inv` for this variation; `ctx` holds what was prepared for it.
    pub fn apply(self, inv: &mut Invocation, ctx: &Prepared) {
        match self {
            Variation::BuildPath => {
                inv.cwd = inv.root.join("build path/de\u{0308}eper/x");
                inv.out_arg = PathBuf::from("../out");
                inv.out_abs = inv.root.join("build path/de\u{0308}eper/out");
            }
            Variation::Tz => inv.set("TZ", VARIED_TZ),
            Variation::Locale => {
                inv.set("LANG", VARIED_LOCALE);
                inv.set("LC_ALL", VARIED_LOCALE);
                inv.set("LANGUAGE", "fr");
            }
            Variation::Umask => inv.umask = VARIED_UMASK,
            Variation::Clock => inv.faketime = ctx.faketime.clone(),
            Variation::Readdir => inv.readdir = true,
            Variation::Uid => inv.uid = Some(NOBODY),
            Variation::Hostname => inv.hostname = Some(VARIED_HOSTNAME.into()),
            Variation::Env => {
                let home = inv.root.join("noise-home");
                let tmp = inv.root.join("noise-tmp");
                inv.set("HOME", &home.display().to_string());
                inv.set("TMPDIR", &tmp.display().to_string());
                inv.set("REPRODISK_AUDIT_NOISE", "\u{1F3B2} noise");
                inv.set("COLUMNS", "37");
                inv.set("EDITOR", "/bin/false");
                inv.set("SHLVL", "9");
                inv.mkdirs.extend([home, tmp]);
            }
        }
    }
}

/// Parses `--vary`: names separated by commas; `all` (the default) selects every variation.
pub fn parse_list(s: &str) -> Result<Vec<Variation>, String> {
    let mut out = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name == "all" {
            return Ok(Variation::ALL.to_vec());
        }
        match Variation::from_name(name) {
            Some(v) if !out.contains(&v) => out.push(v),
            Some(_) => {}
            None => {
                let names: Vec<_> = Variation::ALL.iter().map(|v| v.name()).collect();
                return Err(format!("unknown variation `{name}`: choose from {}, or all", names.join(", ")));
            }
        }
    }
    if out.is_empty() {
        return Err("`--vary` names no variation: give a comma-separated list, or all".into());
    }
    Ok(out)
}

/// How a variation that needs preparation was prepared, shared by its builds.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// `FAKETIME` wrapper: the libfaketime library to preload and the shift.
    pub faketime: Option<Faketime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Faketime {
    pub library: PathBuf,
    pub shift: String,
}

/// Everything about one child build that a variation may change.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// This build's own folder inside the audit's work folder.
    pub root: PathBuf,
    pub cwd: PathBuf,
    /// `--out` as passed to the child (relative to `cwd` or absolute).
    pub out_arg: PathBuf,
    /// The same folder as an absolute path.
    pub out_abs: PathBuf,
    /// Variables set on top of the inherited environment.
    pub env: Vec<(String, String)>,
    pub umask: u32,
    pub faketime: Option<Faketime>,
    /// The build's folder listings are answered in reverse order ([`super::readdir`]).
    pub readdir: bool,
    pub uid: Option<u32>,
    pub hostname: Option<String>,
    /// Folders to create before the build (and hand to `uid` when it is set).
    pub mkdirs: Vec<PathBuf>,
}

impl Invocation {
    /// The control build's invocation in `root`.
    pub fn control(root: PathBuf) -> Self {
        Invocation {
            // `--out` relative to a cwd inside the build's folder: once the audit has removed
            // that folder (an interrupt), a build still starting cannot create it again.
            cwd: root.join("cwd"),
            out_arg: PathBuf::from("../out"),
            out_abs: root.join("out"),
            root,
            env: vec![
                ("TZ".into(), "UTC".into()),
                ("LANG".into(), "C.UTF-8".into()),
                ("LC_ALL".into(), "C.UTF-8".into()),
                ("CI".into(), "true".into()),
            ],
            umask: CONTROL_UMASK,
            faketime: None,
            readdir: false,
            uid: None,
            hostname: None,
            mkdirs: Vec::new(),
        }
    }

    pub fn set(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists() {
        assert_eq!(parse_list("tz, umask").unwrap(), vec![Variation::Tz, Variation::Umask]);
        assert_eq!(parse_list("all").unwrap().len(), 9);
        assert!(parse_list("tz,moon").unwrap_err().contains("unknown variation `moon`"));
        assert!(parse_list(",").is_err());
    }

    #[test]
    fn names_round_trip() {
        for v in Variation::ALL {
            assert_eq!(Variation::from_name(v.name()), Some(v));
            assert_eq!(serde_json::to_value(v).unwrap(), v.name());
        }
    }
}
