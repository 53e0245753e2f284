//! The spec's keys: the canonical names with the seed's aliases, their normalisation, and the
//! closest-key suggestion an unknown key's message carries.

use super::SpecError;
use serde_json::{Map, Value};

/// Canonical key, alias (the seed's camelCase name, if different).
pub const TOP_KEYS: &[(&str, Option<&str>)] = &[
    ("partition_table_type", Some("partitionTableType")),
    ("disk_size", Some("diskSize")),
    ("additional_space", Some("additionalSpace")),
    ("boot_size", Some("bootSize")),
    ("contents", None),
    ("install_boot_loader", Some("installBootLoader")),
    ("touch_efi_vars", Some("touchEFIVars")),
    ("efi_firmware", Some("efiFirmware")),
    ("efi_variables", Some("efiVariables")),
    ("fs_type", Some("fsType")),
    ("label", None),
    ("config_file", Some("configFile")),
    ("post_vm", Some("postVM")),
    ("mem_size", Some("memSize")),
    ("only_nix_store", Some("onlyNixStore")),
    ("name", None),
    ("format", None),
    ("base_name", Some("baseName")),
    ("deterministic", None),
    ("root_gpuid", Some("rootGPUID")),
    ("root_fsuid", Some("rootFSUID")),
    ("copy_channel", Some("copyChannel")),
    ("additional_paths", Some("additionalPaths")),
    ("system", None),
    ("source_date_epoch", Some("sourceDateEpoch")),
    ("timestamps", None),
    ("owners", None),
    ("auto_sizing", Some("autoSizing")),
    ("disk_guid", Some("diskGUID")),
    ("vpc_subformat", Some("vpcSubformat")),
    ("package_root", Some("packageRoot")),
];

pub const SYSTEM_KEYS: &[(&str, Option<&str>)] = &[
    ("root", None),
    ("kernel", None),
    ("initrd", None),
    ("kernel_params", Some("kernelParams")),
    ("bootloader", None),
    ("root_device", Some("rootDevice")),
];

pub const CONTENTS_KEYS: &[(&str, Option<&str>)] =
    &[("source", None), ("target", None), ("mode", None), ("user", None), ("group", None)];

/// Levenshtein distance over chars, ignoring ASCII case.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate closest to `word` by [`edit_distance`] (first one on ties).
/// A candidate that contains `word` (ignoring case) wins over edit distance, so `"gpt"`
/// suggests `"legacy+gpt"` rather than `"efi"`.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates.into_iter().min_by_key(|c| (!c.to_ascii_lowercase().contains(&lower), edit_distance(word, c)))
}

/// A table with canonical keys, and for each canonical key the name the spec wrote.
pub(super) type Normalised = (Map<String, Value>, Map<String, Value>);

/// Replaces aliases by canonical keys and rejects unknown or doubled keys.
pub(super) fn normalise(
    map: Map<String, Value>,
    keys: &[(&str, Option<&str>)],
    location: &str,
) -> Result<Normalised, SpecError> {
    let mut out = Map::new();
    let mut written = Map::new();
    for (key, value) in map {
        let canonical = keys.iter().find(|(c, a)| *c == key || *a == Some(key.as_str())).map(|(c, _)| *c);
        let Some(canonical) = canonical else {
            let names = keys.iter().flat_map(|(c, a)| std::iter::once(*c).chain(*a));
            return Err(SpecError::UnknownKey {
                location: location.to_string(),
                suggestion: closest(&key, names).map(str::to_string),
                key,
            });
        };
        if out.contains_key(canonical) {
            let alias = keys.iter().find(|(c, _)| *c == canonical).and_then(|(_, a)| *a).unwrap_or(canonical);
            return Err(SpecError::DuplicateKey {
                location: location.to_string(),
                key: canonical.to_string(),
                alias: alias.to_string(),
            });
        }
        written.insert(canonical.to_string(), Value::String(key));
        out.insert(canonical.to_string(), value);
    }
    Ok((out, written))
}
