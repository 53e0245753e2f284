//! Commands as data: built, printed and unit-tested before they are run.

use anyhow::{Context, bail};
use std::fmt;
use std::process::Command;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Cmd {
    pub fn new(program: &str, args: &[&str]) -> Self {
        Cmd {
            program: program.to_string(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
        }
    }

    pub fn cargo(args: &[&str]) -> Self {
        Cmd::new(&std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()), args)
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs the command with inherited output; fails with the full command line.
    pub fn run(&self) -> anyhow::Result<()> {
        eprintln!("$ {self}");
        let status = self.command().status().with_context(|| format!("starting `{self}`"))?;
        if !status.success() {
            bail!("`{self}` failed with {status}");
        }
        Ok(())
    }

    /// Runs the command and returns its standard output; fails with the full command line.
    pub fn output(&self) -> anyhow::Result<String> {
        let out = self.command().output().with_context(|| format!("starting `{self}`"))?;
        if !out.status.success() {
            bail!("`{self}` failed with {}: {}", out.status, String::from_utf8_lossy(&out.stderr));
        }
        String::from_utf8(out.stdout).with_context(|| format!("`{self}` printed non-UTF-8 output"))
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, v) in &self.env {
            write!(f, "{k}={v} ")?;
        }
        write!(f, "{}", self.program)?;
        for a in &self.args {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'') {
                write!(f, " '{}'", a.replace('\'', "'\\''"))?;
            } else {
                write!(f, " {a}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_what_the_shell_would_split() {
        let c = Cmd::new("echo", &["a b", "it's", "", "plain"]).env("CI", "true");
        assert_eq!(c.to_string(), "CI=true echo 'a b' 'it'\\''s' '' plain");
    }

    #[test]
    fn failures_name_the_command() {
        let err = Cmd::new("false", &[]).run().unwrap_err();
        assert!(err.to_string().starts_with("`false` failed with"), "{err}");
        assert_eq!(Cmd::new("echo", &["hi"]).output().unwrap(), "hi\n");
    }
}
