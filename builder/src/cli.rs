//! (placeholder, filled in by the foundation work: see ARCHITECTURE.md)

/// Runs the command line and returns the process exit code.
pub fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
