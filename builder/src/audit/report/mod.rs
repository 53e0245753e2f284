//! The audit's findings as data ([`AuditReport`]), rendered three ways: a terminal table
//! ([`text`]), JSON for machines ([`json`]) and one self-contained HTML page with an SVG map
//! of the disk ([`html`], the map's data from [`diskmap`]).

pub mod diskmap;
pub mod html;
pub mod json;
pub mod text;

use super::outputs::FileDigest;
use super::variations::Variation;
use reprodisk_verifier::diff::DiffReport;
use serde::Serialize;
use std::collections::BTreeMap;

/// Everything an audit found.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// `"variations"` (builds under perturbations) or `"against"` (a rebuilder's check).
    pub mode: &'static str,
    pub spec: String,
    /// The image checked with `--against`.
    pub against: Option<String>,
    /// Every build that ran reproduced the reference, and (with `--against`) no input changed.
    pub reproducible: bool,
    /// Wall-clock time of the whole audit.
    pub seconds: f64,
    /// Builds run at once.
    pub parallel: usize,
    /// The reference: the control build (or the image checked `--against`).
    pub reference: Reference,
    /// With `--against`: each input the image's manifest lists, checked by sha256.
    pub inputs: Vec<InputCheck>,
    pub results: Vec<BuildResult>,
    /// Where the builds were kept (`--out`), if they were.
    pub kept: Option<String>,
    pub notes: Vec<String>,
    /// The disk map for the HTML page (only computed when one is asked for).
    #[serde(skip)]
    pub disk_map: Option<diskmap::DiskMap>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Reference {
    /// `"control build"` or the image's folder.
    pub what: String,
    pub seconds: f64,
    pub files: BTreeMap<String, FileDigest>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuildStatus {
    /// Every output file is identical to the reference.
    Reproduced,
    /// At least one output file differs.
    Differs,
    /// The build failed under this variation, though the control build succeeded.
    Failed,
    /// The variation could not be applied on this machine; `reason` says why.
    NotRun,
}

impl BuildStatus {
    pub fn word(self) -> &'static str {
        match self {
            BuildStatus::Reproduced => "reproduced",
            BuildStatus::Differs => "DIFFERS",
            BuildStatus::Failed => "FAILED",
            BuildStatus::NotRun => "not run",
        }
    }
}

/// One build and how its outputs compare with the reference.
#[derive(Debug, Clone, Serialize)]
pub struct BuildResult {
    /// `"tz"`, `"all"`, or `"rebuild"` for `--against`.
    pub name: String,
    pub variations: Vec<Variation>,
    pub description: String,
    pub status: BuildStatus,
    /// Why it did not run or failed.
    pub reason: Option<String>,
    pub seconds: f64,
    /// Every output file (identical ones too).
    pub files: Vec<FileResult>,
    pub notes: Vec<String>,
}

impl BuildResult {
    /// The table's last column: why it did not run or failed, else the first difference.
    pub fn first_line(&self) -> String {
        match self.status {
            BuildStatus::NotRun | BuildStatus::Failed => self.reason.clone().unwrap_or_default(),
            // The image's structural diff says most; then the other files.
            _ => {
                let mut files: Vec<&FileResult> = self.differing().collect();
                files.sort_by_key(|f| f.diff.is_none());
                files.iter().find_map(|f| f.first.clone()).unwrap_or_default()
            }
        }
    }

    pub fn differing(&self) -> impl Iterator<Item = &FileResult> {
        self.files.iter().filter(|f| !matches!(f.status, FileStatus::Same | FileStatus::SameNormalised))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileStatus {
    Same,
    /// Equal once the output folder's path and the spec's path as given are normalised.
    SameNormalised,
    Differs,
    /// In the reference, not written by this build.
    Missing,
    /// Written by this build only.
    Extra,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileResult {
    pub path: String,
    pub status: FileStatus,
    pub reference_sha256: Option<String>,
    pub sha256: Option<String>,
    /// The first difference, in one line: `partition 2 ext4 superblock s_uuid: a vs b`.
    pub first: Option<String>,
    /// The explanation: the structural diff's lines, JSON pointers or text lines.
    pub lines: Vec<String>,
    /// The structural diff, for binary files.
    pub diff: Option<DiffReport>,
}

impl FileResult {
    pub fn new(path: &str, status: FileStatus, a: Option<&FileDigest>, b: Option<&FileDigest>) -> Self {
        FileResult {
            path: path.to_string(),
            status,
            reference_sha256: a.map(|d| d.sha256.clone()),
            sha256: b.map(|d| d.sha256.clone()),
            first: None,
            lines: Vec::new(),
            diff: None,
        }
    }

    pub fn with_lines(mut self, lines: Vec<String>) -> Self {
        if self.first.is_none() && self.status != FileStatus::SameNormalised {
            self.first = lines.first().cloned();
        }
        self.lines = lines;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputStatus {
    Unchanged,
    Changed,
    Missing,
    /// Folders and globs: the manifest holds no digest for them.
    NotChecked,
}

impl InputStatus {
    pub fn word(self) -> &'static str {
        match self {
            InputStatus::Unchanged => "unchanged",
            InputStatus::Changed => "CHANGED",
            InputStatus::Missing => "MISSING",
            InputStatus::NotChecked => "not checked",
        }
    }
}

/// One input of `--against`, by the manifest's record.
#[derive(Debug, Clone, Serialize)]
pub struct InputCheck {
    pub path: String,
    pub status: InputStatus,
    pub recorded_sha256: Option<String>,
    pub sha256: Option<String>,
    pub note: Option<String>,
}

/// Time as people read it: `850 ms`, `12.3 s`, `2 min 05 s`.
pub fn duration(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.0} ms", seconds * 1000.0)
    } else if seconds < 120.0 {
        format!("{seconds:.1} s")
    } else {
        let s = seconds.round() as u64;
        format!("{} min {:02} s", s / 60, s % 60)
    }
}
