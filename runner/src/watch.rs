//! What the console says: the text as it arrives, with terminal escape sequences removed,
//! searched for the success pattern and the failure patterns.
//!
//! A pattern is plain text found anywhere in the output, also across reads. Its verdict waits
//! for the end of the line it is on (so the guest's details are kept), unless the line never
//! ends: OVMF's `Shell> ` prompt has no newline, so the runner accepts a pending hit after a
//! short grace time ([`Watcher::pending`]). The earliest match in the output wins.

/// The failures every boot watches for, with what each means.
pub fn default_failures() -> Vec<(String, String)> {
    [
        (crate::GUEST_FAIL, "the fixture guest reports a failed check"),
        ("Shell>", "OVMF dropped to the UEFI shell: no boot option worked"),
        ("to skip startup.nsh", "OVMF is starting the UEFI shell: no boot option worked"),
        ("No bootable device", "SeaBIOS found no bootable device"),
        ("Boot failed", "the firmware could not boot the disk"),
        ("Kernel panic - not syncing", "the guest kernel panicked"),
    ]
    .into_iter()
    .map(|(p, m)| (p.to_string(), m.to_string()))
    .collect()
}

/// A pattern found in the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// `None` for the success pattern, else the failure's meaning.
    pub failure: Option<String>,
    pub pattern: String,
    /// The whole line the pattern is on (as far as it has arrived).
    pub line: String,
}

/// Scans one stream as it arrives.
#[derive(Debug, Clone)]
pub struct Watcher {
    expect: Option<String>,
    fail_on: Vec<(String, String)>,
    text: String,
    scanned: usize,
    hit: Option<(usize, Hit)>,
    escape: Escape,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    Esc,
    Csi,
}

impl Watcher {
    pub fn new(expect: Option<String>, fail_on: Vec<(String, String)>) -> Watcher {
        Watcher { expect, fail_on, text: String::new(), scanned: 0, hit: None, escape: Escape::None }
    }

    /// Everything seen so far, escape sequences and carriage returns removed.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Takes more output; returns the verdict once the line holding the first hit has ended.
    pub fn feed(&mut self, chunk: &str) -> Option<Hit> {
        for c in chunk.chars() {
            self.escape = match (self.escape, c) {
                (Escape::None, '\u{1b}') => Escape::Esc,
                (Escape::None, '\r') => Escape::None,
                (Escape::None, c) => {
                    self.text.push(c);
                    Escape::None
                }
                (Escape::Esc, '[') => Escape::Csi,
                (Escape::Esc, _) => Escape::None,
                // A CSI sequence ends with a byte in 0x40..=0x7e.
                (Escape::Csi, c) if ('\u{40}'..='\u{7e}').contains(&c) => Escape::None,
                (Escape::Csi, _) => Escape::Csi,
            };
        }
        if self.hit.is_none() {
            self.scan();
        }
        self.complete()
    }

    fn scan(&mut self) {
        let longest = self
            .fail_on
            .iter()
            .map(|(p, _)| p.len())
            .chain(self.expect.iter().map(String::len))
            .max()
            .unwrap_or(0);
        let mut from = self.scanned.saturating_sub(longest);
        while !self.text.is_char_boundary(from) {
            from -= 1;
        }
        let hay = &self.text[from..];
        let mut best: Option<(usize, Option<String>, String)> = None;
        let mut consider = |pattern: &str, failure: Option<String>| {
            if let Some(i) = hay.find(pattern)
                && best.as_ref().is_none_or(|(b, _, _)| i < *b)
            {
                best = Some((i, failure, pattern.to_string()));
            }
        };
        if let Some(e) = &self.expect {
            consider(e, None);
        }
        for (p, meaning) in &self.fail_on {
            consider(p, Some(meaning.clone()));
        }
        if let Some((i, failure, pattern)) = best {
            let at = from + i;
            self.hit = Some((at, Hit { failure, pattern, line: String::new() }));
        }
        self.scanned = self.text.len();
    }

    fn line_at(&self, at: usize) -> (&str, bool) {
        let start = self.text[..at].rfind('\n').map_or(0, |i| i + 1);
        match self.text[at..].find('\n') {
            Some(end) => (&self.text[start..at + end], true),
            None => (&self.text[start..], false),
        }
    }

    fn complete(&self) -> Option<Hit> {
        let (at, hit) = self.hit.as_ref()?;
        let (line, ended) = self.line_at(*at);
        ended.then(|| Hit { line: line.trim().to_string(), ..hit.clone() })
    }

    /// The first hit even if its line has not ended yet (for a prompt without a newline).
    pub fn pending(&self) -> Option<Hit> {
        let (at, hit) = self.hit.as_ref()?;
        Some(Hit { line: self.line_at(*at).0.trim().to_string(), ..hit.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest() -> Watcher {
        Watcher::new(Some(crate::GUEST_OK.into()), default_failures())
    }

    #[test]
    fn the_ok_line_is_reported_with_its_details_once_complete() {
        let mut w = guest();
        assert_eq!(w.feed("[ 1.0] booting\nREPRODISK-GU"), None);
        assert_eq!(w.feed("EST ok root=/dev/vda2 con"), None);
        assert!(w.pending().is_some());
        let hit = w.feed("tents=2\n[ 2.0] reboot: Power down\n").unwrap();
        assert_eq!(hit.failure, None);
        assert_eq!(hit.line, "REPRODISK-GUEST ok root=/dev/vda2 contents=2");
    }

    #[test]
    fn the_guest_fail_line_is_a_failure() {
        let hit =
            guest().feed("REPRODISK-GUEST fail contents /etc/motd: owner uid 0, expected 1000\n").unwrap();
        assert_eq!(hit.failure.as_deref(), Some("the fixture guest reports a failed check"));
        assert!(hit.line.ends_with("expected 1000"));
    }

    #[test]
    fn the_uefi_shell_prompt_is_found_through_escape_codes() {
        let mut w = guest();
        let out = "\u{1b}[08;01H\u{1b}[1m\u{1b}[33m\u{1b}[40mShell> \u{1b}[0m\u{1b}[37m\u{1b}[40m";
        assert_eq!(w.feed(out), None, "the prompt has no newline");
        let hit = w.pending().unwrap();
        assert_eq!((hit.pattern.as_str(), hit.line.as_str()), ("Shell>", "Shell>"));
        assert!(!w.text().contains('\u{1b}'));
    }

    #[test]
    fn seabios_dead_end() {
        let mut w = Watcher::new(None, default_failures());
        let hit = w
            .feed("Booting from Hard Disk...\nBoot failed: not a bootable disk\n\nNo bootable device.\n")
            .unwrap();
        assert_eq!(hit.pattern, "Boot failed");
    }

    #[test]
    fn the_earliest_match_wins_and_later_text_does_not_change_it() {
        let mut w = guest();
        let hit = w.feed("REPRODISK-GUEST ok a\nKernel panic - not syncing\n").unwrap();
        assert_eq!(hit.failure, None);
        assert_eq!(w.feed("REPRODISK-GUEST fail b\n").unwrap().line, "REPRODISK-GUEST ok a");
    }

    #[test]
    fn a_user_pattern_replaces_the_guest_line() {
        let mut w = Watcher::new(Some("login:".into()), default_failures());
        assert_eq!(w.feed("Debian GNU/Linux 12 debian ttyS0\n\ndebian login: "), None);
        assert_eq!(w.pending().unwrap().failure, None);
    }
}
