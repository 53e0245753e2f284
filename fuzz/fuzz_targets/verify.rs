//! Fuzz target: the whole `reprodisk verify` path on arbitrary bytes, as the CLI runs it:
//! the image through `format::VirtualDisk` (format detection and its reader), then
//! `glue::verify_built` with a spec (every report section: table, filesystems, IDs, times,
//! and the checks against the spec's layout, geometry, IDs and contents), the image format's
//! ID lints, `efivars::report::inspect` (an `efi-vars.fd` given as the image), and both
//! renderings. Inputs: a mode byte, then the image. Mode bits 0..3 pick the spec's layout (of
//! the seven; 7 means no spec), bit 3 makes it non-deterministic, bit 4 gives a `contents`
//! entry and a manifest's `not_written` line, bits 5..8 zero-pad the image to that many
//! MiB times 8 (so a disk image is stored without its empty tail).
#![no_main]

#[path = "common/padded.rs"]
mod padded;

use libfuzzer_sys::fuzz_target;
use padded::Padded;
use reprodisk_verifier::expect::Expectations;
use reprodisk_verifier::format::VirtualDisk;
use reprodisk_verifier::glue;

const LAYOUTS: [&str; 7] = ["legacy", "legacy+boot", "legacy+gpt", "efi", "efixbootldr", "hybrid", "none"];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let len = u64::from(mode >> 5) << 23;
    let img = Padded::new(rest, len);
    let spec = LAYOUTS.get(usize::from(mode & 7)).map(|layout| {
        let mut t = format!("partitionTableType = \"{layout}\"\ndeterministic = {}\n", mode & 8 == 0);
        if mode & 16 != 0 {
            t += "[[contents]]\nsource = \"motd\"\ntarget = \"/etc/motd\"\nmode = \"0644\"\nuser = \"root\"\ngroup = \"root\"\n";
        }
        t
    });
    // Every spec above is valid: a failure to read one is a bug worth a crash.
    let expect = spec.map(|t| Expectations::from_toml_str(&t).expect("the fuzz target's spec is valid"));
    let not_written: Vec<String> = if mode & 16 != 0 {
        vec!["partition 1: boot partition (FAT) not written".into()]
    } else {
        Vec::new()
    };
    // The CLI lists a variable store instead when the file looks like one.
    if reprodisk_verifier::efivars::looks_like(rest) {
        let vars = reprodisk_verifier::efivars::report::EfiVarsReport::inspect(rest, Some("efi-vars.fd"));
        let _ = (vars.render_text(), vars.to_json(), vars.failed());
    }
    let Ok(disk) = VirtualDisk::open(img) else { return };
    let report = glue::verify_built(&disk, Some("fuzz.img"), expect.as_ref(), Some(0), &not_written);
    let _ = report.to_json();
    let _ = report.render_text();
    let _ = report.failed();
    if let Some(e) = &expect
        && let Ok(g) = reprodisk_verifier::guid::Guid::parse(&e.root_gpuid)
    {
        let _ = disk.lint_ids(g);
    }
    let _ = disk.summary();
});
