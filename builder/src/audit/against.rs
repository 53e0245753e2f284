//! `reprodisk audit --against IMAGE SPEC`: the independent rebuilder's check. The manifest
//! beside IMAGE says what the image was built from; each input it lists is checked by sha256
//! first (so a difference can be blamed on the input that changed), then SPEC is rebuilt in a
//! temporary folder and its output set compared with the folder IMAGE is in: IMAGE itself
//! (whatever it is called now), and every other file the rebuild writes (manifest.json,
//! nix-support/hydra-build-products, efi-vars.fd, ...).

use super::outputs::{OutputSet, digest};
use super::report::{AuditReport, BuildResult, BuildStatus, InputCheck, InputStatus, Reference};
use super::runner::{self, BuildEnd, WorkDir};
use super::variations::Invocation;
use super::{AuditError, Side, control_image};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub struct AgainstOptions {
    pub image: PathBuf,
    pub spec: PathBuf,
    pub out: Option<PathBuf>,
    pub disk_map: bool,
}

/// Checks the inputs IMAGE's manifest lists, rebuilds and compares.
pub fn against(opts: &AgainstOptions) -> Result<AuditReport, AuditError> {
    let started = Instant::now();
    let image = opts.image.canonicalize().map_err(AuditError::io("opening image", &opts.image))?;
    let folder = image.parent().map(Path::to_path_buf).unwrap_or_default();
    let manifest_path = folder.join("manifest.json");
    let manifest: serde_json::Value = std::fs::read(&manifest_path)
        .map_err(|e| {
            AuditError::BadInput(format!(
                "reading `{}`: {e}: --against needs the manifest.json that `reprodisk build` wrote beside the image",
                manifest_path.display()
            ))
        })
        .and_then(|b| {
            serde_json::from_slice(&b).map_err(|e| {
                AuditError::BadInput(format!("`{}` is not a reprodisk manifest: {e}", manifest_path.display()))
            })
        })?;
    let spec = crate::spec::Spec::load(&opts.spec).map_err(|e| AuditError::BadInput(format!("spec: {e}")))?;

    let mut inputs = check_inputs(&manifest, &spec);
    if let Some(recorded) = manifest.pointer("/spec/sha256").and_then(|v| v.as_str()) {
        let actual = crate::manifest::sha256_file(&spec.path).ok();
        if actual.as_deref() != Some(recorded) {
            inputs.insert(
                0,
                InputCheck {
                    path: opts.spec.display().to_string(),
                    status: InputStatus::Changed,
                    recorded_sha256: Some(recorded.to_string()),
                    sha256: actual,
                    note: Some("the spec itself differs from the one the image was built from".into()),
                },
            );
        }
    }

    // The image's folder as the reference: the image under its own name, and every file the
    // rebuild also writes (the folder may hold other things that are not ours).
    let image_name = image.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let work = WorkDir::new(opts.out.as_deref(), None)?;
    let exe =
        std::env::current_exe().map_err(AuditError::io("finding", Path::new("the reprodisk binary")))?;
    let inv = Invocation::control(work.path.join("rebuild"));
    let spec_path = std::path::absolute(&opts.spec).map_err(AuditError::io("resolving", &opts.spec))?;
    let t = Instant::now();
    let (end, _) = runner::run_build(&exe, &spec_path, &inv, &super::base_env(), runner::Outputs::Hashed);
    let seconds = t.elapsed().as_secs_f64();
    let rebuilt = match end {
        BuildEnd::Built(set) => set,
        BuildEnd::Failed(e) | BuildEnd::NotRun(e) => {
            return Err(AuditError::BadInput(format!("the rebuild failed: {e}")));
        }
    };
    let rebuilt_image = control_image(&rebuilt);
    let mut files = BTreeMap::new();
    for rel in rebuilt.files.keys() {
        let name = if Some(rel) == rebuilt_image.as_ref() { image_name.clone() } else { rel.clone() };
        let p = folder.join(&name);
        if p.is_file() {
            files.insert(name, digest(&p, &folder).map_err(AuditError::io("hashing", &p))?);
        }
    }
    let reference = OutputSet { dir: folder.clone(), files };
    let compared = super::compare::compare(
        &Side { set: &reference, image: Some(&image_name) },
        &Side { set: &rebuilt, image: rebuilt_image.as_deref() },
    );
    let differs = compared.iter().any(|f| super::is_difference(f.status));
    let changed: Vec<&InputCheck> =
        inputs.iter().filter(|i| matches!(i.status, InputStatus::Changed | InputStatus::Missing)).collect();
    let mut notes = Vec::new();
    if differs && !changed.is_empty() {
        notes.push(format!(
            "the inputs changed since the image was built ({}): the differences below are expected from that",
            changed.iter().map(|i| format!("`{}`", i.path)).collect::<Vec<_>>().join(", ")
        ));
    }
    let result = BuildResult {
        name: "rebuild".into(),
        variations: Vec::new(),
        description: format!("rebuild of `{}` compared with `{}`", opts.spec.display(), folder.display()),
        status: if differs { BuildStatus::Differs } else { BuildStatus::Reproduced },
        reason: None,
        seconds,
        files: compared,
        notes,
    };
    let disk_map = opts.disk_map.then(|| super::report::diskmap::DiskMap::of(&image));
    Ok(AuditReport {
        mode: "against",
        spec: opts.spec.display().to_string(),
        against: Some(opts.image.display().to_string()),
        reproducible: !differs && changed.is_empty(),
        seconds: started.elapsed().as_secs_f64(),
        parallel: 1,
        reference: Reference { what: folder.display().to_string(), seconds, files: reference.files.clone() },
        inputs,
        results: vec![result],
        kept: work.kept().then(|| work.path.display().to_string()),
        notes: Vec::new(),
        disk_map,
    })
}

/// Each input the manifest lists, against the file the spec names now.
fn check_inputs(manifest: &serde_json::Value, spec: &crate::spec::Spec) -> Vec<InputCheck> {
    let current = spec.input_files();
    let Some(list) = manifest["inputs"].as_array() else { return Vec::new() };
    // Folders are recorded by their `tree-v1` digest, which only an ingestion of the spec's
    // sources computes (as the build does); it runs once, and only when a folder is listed.
    let mut folders: Option<Result<std::collections::BTreeMap<std::path::PathBuf, String>, String>> = None;
    let mut folder_digest = |path: &std::path::Path| -> Result<Option<String>, String> {
        let all = folders.get_or_insert_with(|| {
            crate::rootfs::ingest(spec, None)
                .and_then(|t| t.digests(&Default::default()))
                .map_err(|e| e.to_string())
        });
        all.as_ref().map(|d| d.get(path).cloned()).map_err(Clone::clone)
    };
    list.iter()
        .filter_map(|i| {
            let written = i["path"].as_str()?;
            let recorded = i["sha256"].as_str().map(str::to_string);
            let resolved = current
                .iter()
                .find(|p| p.written == written)
                .map(|p| p.resolved.clone())
                .unwrap_or_else(|| spec.base_dir.join(written));
            let mut c = InputCheck {
                path: written.to_string(),
                status: InputStatus::NotChecked,
                recorded_sha256: recorded.clone(),
                sha256: None,
                note: None,
            };
            match recorded {
                None => {
                    c.note = Some(format!(
                        "{}: the manifest holds no digest for it",
                        i["kind"].as_str().unwrap_or("folder")
                    ))
                }
                Some(r) => match if matches!(i["digest"].as_str(), Some("tree-v1" | "glob-v1")) {
                    folder_digest(&resolved)
                        .and_then(|d| d.ok_or_else(|| "not among the sources the spec reads now".to_string()))
                } else {
                    crate::manifest::sha256_file(&resolved).map_err(|e| e.to_string())
                } {
                    Ok(h) => {
                        c.status = if h == r { InputStatus::Unchanged } else { InputStatus::Changed };
                        if c.status == InputStatus::Changed {
                            c.note = Some(format!("digest was {r}, is {h}"));
                        }
                        c.sha256 = Some(h);
                    }
                    Err(e) => {
                        c.status = InputStatus::Missing;
                        c.note = Some(format!("`{}`: {e}", resolved.display()));
                    }
                },
            }
            Some(c)
        })
        .collect()
}
