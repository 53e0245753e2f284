//! The `reprodisk` command: a thin entry point that hands over to [`reprodisk::cli`].

fn main() -> std::process::ExitCode {
    reprodisk::cli::main()
}
