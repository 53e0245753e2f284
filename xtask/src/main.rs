//! `cargo xtask`: project automation (verify, bench, fixtures); this file only dispatches.

mod bench;
mod cmd;
mod flags;
mod summary;
mod verify;

use std::process::ExitCode;

fn main() -> ExitCode {
    let flags = match flags::parse(std::env::args().skip(1)) {
        Ok(f) => f,
        Err(msg) => {
            eprintln!("error: {msg}\n\n{}", flags::USAGE);
            return ExitCode::from(2);
        }
    };
    let result = match flags {
        flags::Flags::Help => {
            println!("{}", flags::USAGE);
            Ok(())
        }
        flags::Flags::Verify(opts) => verify::run(&opts),
        flags::Flags::Summary => verify::summary(),
        flags::Flags::Bench(opts) => bench::run(&opts),
        flags::Flags::Fixtures(opts) => bench::generate_small_files(&opts.out, opts.count).map(|_| ()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
