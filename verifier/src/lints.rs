//! Findings (what a check or lint reports) and the determinism lints on partition-table IDs.
//!
//! A [`Finding`] is a problem that does not stop reading: an unaligned partition, a stale
//! backup header, an ID that does not follow reprodisk's derivation rule. Hard corruption
//! that makes a structure unreadable is an [`crate::Error`] instead. Every module reports
//! findings with this one type; `code` is a stable, dotted string that tests and users can
//! match on (`"gpt.disk-guid.not-derived"`).

use crate::disk::{Disk, Layout};
use crate::error::Location;
use crate::guid::Guid;
use crate::ids::{self, LayoutName};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing, not wrong (a BIOS boot partition below 1 MiB).
    Info,
    /// Legal but not what a reproducible image should hold (a random ID).
    Warning,
    /// Contradicts a specification (a bad CRC in a backup header, overlapping partitions).
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable dotted identifier: `<structure>.<field>.<problem>`.
    pub code: &'static str,
    pub message: String,
    #[serde(serialize_with = "ser_location")]
    pub location: Location,
}

impl Finding {
    pub fn new(
        severity: Severity,
        code: &'static str,
        structure: impl Into<String>,
        offset: Option<u64>,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            severity,
            code,
            message: message.into(),
            location: Location { structure: structure.into(), offset },
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{sev}[{}]: {}: {}", self.code, self.location, self.message)
    }
}

fn ser_location<S: serde::Serializer>(l: &Location, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut st = s.serialize_struct("Location", 2)?;
    st.serialize_field("structure", &l.structure)?;
    st.serialize_field("offset", &l.offset)?;
    st.end()
}

/// The most findings of one code a reader keeps; the rest are counted in one summary
/// finding, so a table of 32768 overlapping entries reports in bounded memory.
pub const MAX_FINDINGS_PER_CODE: usize = 64;

/// Keeps the first `max` findings of each code, in order, and replaces the rest of a code
/// with one finding saying how many were left out.
pub fn cap_per_code(findings: Vec<Finding>, max: usize) -> Vec<Finding> {
    let mut seen: std::collections::BTreeMap<&'static str, usize> = Default::default();
    let mut out = Vec::new();
    for f in findings {
        let n = seen.entry(f.code).or_default();
        *n += 1;
        if *n <= max {
            out.push(f);
        }
    }
    for (code, n) in seen.into_iter().filter(|(_, n)| *n > max) {
        let first = out.iter().find(|f| f.code == code).map(|f| (f.severity, f.location.structure.clone()));
        // A code over the cap had at least one finding kept, so `first` is always Some.
        let (severity, structure) = first.unwrap_or((Severity::Error, String::new()));
        out.push(Finding::new(
            severity,
            code,
            structure,
            None,
            format!("{} more findings of this kind were left out", n - max),
        ));
    }
    out
}

/// What the image is expected to be, from a spec. Without one, the lints infer what they
/// can from the image itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expectation {
    pub layout: Option<LayoutName>,
    /// The spec's `rootGPUID`; the anchor of every derived ID of the partition table.
    pub root_gpuid: Option<Guid>,
    /// The spec's `rootFSUID` (used by the filesystem lints).
    pub root_fsuid: Option<Guid>,
    /// The spec's `disk_guid` override, if any.
    pub disk_guid: Option<Guid>,
}

/// Determinism lints on the IDs of the partition table that `disk` read.
///
/// - `gpt.disk-guid.not-derived`: the disk GUID is not the documented one (or the override).
/// - `gpt.partition-guid.not-fixed`: a partition GUID is neither the seed's fixed GUID for
///   its place nor rootGPUID on the root partition.
/// - `mbr.signature.zero`, `mbr.signature.not-derived`: the MBR disk signature of an MBR
///   layout is zero or not `derive("mbr-disk-signature", rootGPUID)`; on a GPT layout the
///   protective MBR may hold zero or the derived value.
/// - `lint.anchor.unknown`: without rootGPUID (no expectation, MBR table) the derivation
///   cannot be checked; said once as info so silence never means "checked".
pub fn lint_ids<R: crate::bytes::ReadAt + ?Sized>(
    disk: &Disk<'_, R>,
    exp: Option<&Expectation>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let exp = exp.cloned().unwrap_or_default();
    match disk.layout {
        Layout::Gpt => {
            let Some(gpt) = &disk.gpt else { return out };
            let n = gpt.entries.len();
            // Root is the last partition in every reprodisk layout; without a spec its GUID
            // is the anchor.
            let anchor = exp.root_gpuid.or_else(|| gpt.entries.last().map(|e| e.unique_partition_guid));
            let layout = exp.layout.or_else(|| LayoutName::infer_gpt(n));
            let want_disk = exp.disk_guid.unwrap_or(ids::DISK_GUID);
            if gpt.primary.disk_guid != want_disk {
                out.push(Finding::new(
                    Severity::Warning,
                    "gpt.disk-guid.not-derived",
                    "gpt header (primary)",
                    Some(gpt.primary_offset() + 0x38),
                    format!(
                        "disk guid is {}, reprodisk's documented disk guid is {want_disk}; set it to that (or to the spec's disk_guid)",
                        gpt.primary.disk_guid
                    ),
                ));
            }
            if let (Some(layout), Some(anchor)) = (layout, anchor) {
                let expected = ids::expected_ids(layout, anchor, Some(want_disk));
                for e in &gpt.entries {
                    let want = expected.partition_guids.iter().find(|(i, _)| *i == e.index).map(|(_, g)| *g);
                    if want != Some(e.unique_partition_guid) {
                        let want_s = want.map_or("no partition at this index".to_string(), |g| g.to_string());
                        out.push(Finding::new(
                            Severity::Warning,
                            "gpt.partition-guid.not-fixed",
                            format!("gpt entry {}", e.index),
                            Some(e.offset + 0x10),
                            format!(
                                "partition {} guid is {}, the {} layout gives it {want_s}",
                                e.index,
                                e.unique_partition_guid,
                                layout.as_str()
                            ),
                        ));
                    }
                }
            }
            if let Some(mbr) = &disk.mbr {
                let sig = mbr.unique_mbr_disk_signature;
                if let Some(anchor) = anchor
                    && sig != 0
                    && sig != ids::mbr_disk_signature(anchor)
                {
                    out.push(sig_not_derived(sig, anchor));
                }
            }
        }
        Layout::Mbr => {
            let Some(mbr) = &disk.mbr else { return out };
            let sig = mbr.unique_mbr_disk_signature;
            if sig == 0 {
                out.push(Finding::new(
                    Severity::Warning,
                    "mbr.signature.zero",
                    "mbr",
                    Some(0x1b8),
                    "the mbr disk signature is zero; reprodisk derives it from rootGPUID",
                ));
            } else if let Some(anchor) = exp.root_gpuid {
                if sig != ids::mbr_disk_signature(anchor) {
                    out.push(sig_not_derived(sig, anchor));
                }
            } else {
                out.push(Finding::new(
                    Severity::Info,
                    "lint.anchor.unknown",
                    "mbr",
                    Some(0x1b8),
                    "without rootGPUID the mbr disk signature's derivation is not checked; pass the spec",
                ));
            }
        }
        Layout::None => {}
    }
    out
}

fn sig_not_derived(sig: u32, anchor: Guid) -> Finding {
    Finding::new(
        Severity::Warning,
        "mbr.signature.not-derived",
        "mbr",
        Some(0x1b8),
        format!(
            "the mbr disk signature is {sig:08x}, derive(\"mbr-disk-signature\", {anchor}) gives {:08x}",
            ids::mbr_disk_signature(anchor)
        ),
    )
}

/// Lints a GUID string from a spec (`disk_guid`, `rootGPUID`, ...): `spec.guid.malformed`
/// when [`Guid::parse`] rejects it, with the parser's account of what is wrong. sgdisk
/// accepts the seed's 31-digit disk GUID and writes something else, so this is an error.
pub fn lint_guid_string(field: &str, text: &str) -> Option<Finding> {
    Guid::parse(text).err().map(|e| {
        Finding::new(
            Severity::Error,
            "spec.guid.malformed",
            format!("spec field {field}"),
            None,
            format!("{e}; write it as 8-4-4-4-12 hex digits"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_spec_guids_are_errors() {
        let f =
            lint_guid_string("disk_guid", crate::ids::SEED_DISK_GUID_STRING).expect("31 digits is malformed");
        assert_eq!((f.code, f.severity), ("spec.guid.malformed", Severity::Error));
        assert!(f.message.contains("has 31 hex digits"), "{}", f.message);
        assert_eq!(lint_guid_string("rootGPUID", "F222513B-DED1-49FA-B591-20CE86A2FE7F"), None);
    }

    #[test]
    fn findings_serialize_with_their_location() {
        let f = Finding::new(Severity::Warning, "x.y.z", "mbr", Some(0x1b8), "m");
        let v = serde_json::to_value(&f).expect("serializes");
        assert_eq!(
            v,
            serde_json::json!({"severity": "warning", "code": "x.y.z", "message": "m",
                "location": {"structure": "mbr", "offset": 440}})
        );
    }
}
