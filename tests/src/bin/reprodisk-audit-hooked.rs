//! A deliberately non-reproducible `reprodisk`, for testing `reprodisk audit` only: the real
//! CLI, and after a successful `build`, when `REPRODISK_AUDIT_TEST_INJECT` is `clock` or
//! `readdir`, one byte of the image (offset 0, the MBR's boot code) overwritten with a value
//! from the wall clock (the year) or from the raw readdir order of the spec's root tree.
//!
//! It lives in the test package so that no hook exists in the builder, not even behind a
//! feature (see the `audit` module's doc). An audit started from this binary runs its child
//! builds as this binary too (`current_exe`), so every build carries the injection.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

fn main() -> std::process::ExitCode {
    let code = reprodisk::cli::main();
    let args: Vec<String> = std::env::args().collect();
    if let Ok(what) = std::env::var("REPRODISK_AUDIT_TEST_INJECT")
        && args.get(1).is_some_and(|a| a == "build")
        && let Err(e) = inject(&what, &args)
    {
        eprintln!("error: test injection `{what}`: {e}");
        return std::process::ExitCode::from(2);
    }
    code
}

fn inject(what: &str, args: &[String]) -> Result<(), String> {
    let spec = PathBuf::from(args.get(2).ok_or("no spec")?);
    let out = args.iter().position(|a| a == "--out").and_then(|i| args.get(i + 1)).ok_or("no --out")?;
    let out = Path::new(out);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let image = out.join(manifest["output"]["file"].as_str().ok_or("no output file")?);
    let byte = match what {
        "clock" => {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|e| e.to_string())?
                .as_secs();
            (secs / (365 * 86400)) as u8
        }
        "readdir" => {
            let spec = reprodisk::spec::Spec::load(&spec).map_err(|e| e.to_string())?;
            let root = spec.system.ok_or("the spec has no system.root")?.root.resolved;
            let first = std::fs::read_dir(&root)
                .map_err(|e| e.to_string())?
                .next()
                .ok_or("empty root")?
                .map_err(|e| e.to_string())?;
            first.file_name().as_encoded_bytes()[0]
        }
        other => return Err(format!("unknown injection `{other}`: use clock or readdir")),
    };
    let mut f = std::fs::OpenOptions::new().write(true).open(&image).map_err(|e| e.to_string())?;
    f.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    f.write_all(&[byte]).map_err(|e| e.to_string())
}
