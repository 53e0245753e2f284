//! Progress reporting: indicatif bars on a terminal, plain lines otherwise.
//!
//! Plain lines are used when stderr is not a terminal, when `CI` is set, or with `--json`
//! (whose stdout must hold JSON only); every report goes to stderr.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bars,
    Lines,
    Quiet,
}

/// Where a build reports what it is doing.
#[derive(Debug, Clone)]
pub struct Progress {
    mode: Mode,
}

impl Progress {
    pub fn new(mode: Mode) -> Self {
        Progress { mode }
    }

    /// Bars only when a person is watching: stderr is a terminal, not CI, not `--json`.
    pub fn auto(json: bool) -> Self {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
        let mode = if !json && !ci && std::io::stderr().is_terminal() { Mode::Bars } else { Mode::Lines };
        Progress { mode }
    }

    pub fn quiet() -> Self {
        Progress { mode: Mode::Quiet }
    }

    /// Reports the start of a step.
    pub fn stage(&self, message: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Lines | Mode::Bars => eprintln!("reprodisk: {message}"),
        }
    }

    /// A step that processes `total` bytes.
    pub fn bytes(&self, message: &str, total: u64) -> Task {
        match self.mode {
            Mode::Bars => {
                let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
                // The template is a literal known to be valid; fall back to the default style anyway.
                if let Ok(style) = ProgressStyle::with_template(
                    "reprodisk: {msg:28} [{bar:40}] {bytes}/{total_bytes} ({eta})",
                ) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.set_message(message.to_string());
                Task { bar: Some(bar) }
            }
            Mode::Lines => {
                eprintln!("reprodisk: {message} ({total} bytes)");
                Task { bar: None }
            }
            Mode::Quiet => Task { bar: None },
        }
    }
}

/// One step with a byte count.
pub struct Task {
    bar: Option<ProgressBar>,
}

impl Task {
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Ends the step at 100% (a writer's byte counts may stop short of the total: free
    /// space is never written) and leaves the finished bar on screen.
    pub fn finish(self) {
        if let Some(b) = self.bar {
            if let Some(total) = b.length() {
                b.set_position(total);
            }
            b.finish();
        }
    }
}
