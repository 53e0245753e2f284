//! The `reprodisk` command line built inside the test package, so the harness can run it by path.

fn main() -> std::process::ExitCode {
    reprodisk::cli::main()
}
