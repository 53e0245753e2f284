//! Fuzz target: the edk2 variable store reader on arbitrary bytes: parse, the `verify`
//! listing (load options, device paths, BootOrder) as text and JSON, and the load option and
//! device path decoders on the raw input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reprodisk_verifier::efivars::{self, devpath, report::EfiVarsReport};

fuzz_target!(|data: &[u8]| {
    let _ = efivars::parse(data);
    let r = EfiVarsReport::inspect(data, None);
    let _ = r.render_text();
    let _ = r.to_json();
    let _ = devpath::parse_load_option(data);
    if let Ok(nodes) = devpath::parse_path(data) {
        let _ = devpath::path_text(&nodes);
    }
});
