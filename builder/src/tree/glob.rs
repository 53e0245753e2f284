//! Host path globbing for `contents` sources, as the seed's `for fn in $source` expands them in bash.
//!
//! Decisions (bash's defaults: no `dotglob`, no `globstar`, no `nullglob`):
//! - `*`, `?` and bracket expressions `[abc]`, `[a-z]`, `[!x]`/`[^x]` match within one path
//!   component, in any component; `\` quotes the next character; `**` is `*`. Byte ranges
//!   (the C locale); no character classes (`[:alpha:]`). Unclosed brackets behave as in
//!   bash: checked against bash's own matcher on thousands of generated patterns.
//! - A name starting with `.` is matched only by a pattern component starting with a
//!   literal `.`; `.` and `..` are never matched.
//! - Results are sorted bytewise (bash sorts by the locale's collation, which is host state).
//! - Directories on the way are read with the host's path resolution (a symlinked directory
//!   on the way is entered, as bash does); the matches themselves are returned as paths and
//!   copied without following.
//! - A pattern that matches nothing yields no path; the caller reports it (bash would pass the
//!   pattern on literally and rsync would then fail on it).

use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Whether a component holds an unquoted glob metacharacter.
fn has_magic(comp: &[u8]) -> bool {
    let mut i = 0;
    while i < comp.len() {
        match comp[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// Removes the `\` quoting from a literal component.
fn unquote(comp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(comp.len());
    let mut i = 0;
    while i < comp.len() {
        if comp[i] == b'\\' && i + 1 < comp.len() {
            i += 1;
        }
        out.push(comp[i]);
        i += 1;
    }
    out
}

/// Whether `name` matches the one-component pattern `pat` (bytewise).
pub fn matches(pat: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'.') && pat.first() != Some(&b'.') {
        return false;
    }
    match_from(pat, name)
}

fn match_from(pat: &[u8], name: &[u8]) -> bool {
    // Iterative matcher with one backtrack point for the last `*`, as fnmatch implementations do.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pat.get(p) {
            Some(b'*') => {
                while pat.get(p) == Some(&b'*') {
                    p += 1;
                }
                star = Some((p, n));
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => bracket(&pat[p..], name[n]).map(|len| p + len),
            Some(b'\\') if p + 1 < pat.len() => (pat[p + 1] == name[n]).then_some(p + 2),
            Some(&c) => (c == name[n]).then_some(p + 1),
            None => None,
        };
        match step {
            Some(np) => {
                p = np;
                n += 1;
            }
            None => match star {
                Some((sp, sn)) => {
                    p = sp;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// Matches byte `c` against the bracket expression at the start of `pat`; returns the length
/// of pattern consumed when `c` matches. As bash does: a `[` without its `]` matches a literal
/// `[` (and nothing else), while a range or `\` cut off by the end of the pattern matches
/// nothing.
fn bracket(pat: &[u8], c: u8) -> Option<usize> {
    let unclosed = || (c == b'[').then_some(1);
    let mut i = 1;
    let negate = matches!(pat.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut first = true;
    loop {
        let Some(&member) = pat.get(i) else { return unclosed() };
        if member == b']' && !first {
            return negate.then_some(i + 1);
        }
        first = false;
        let lo = if member == b'\\' {
            i += 1;
            *pat.get(i)?
        } else {
            member
        };
        i += 1;
        let hit = if pat.get(i) == Some(&b'-') && pat.get(i + 1) != Some(&b']') {
            let mut hi = *pat.get(i + 1)?;
            i += 2;
            if hi == b'\\' {
                hi = *pat.get(i)?;
                i += 1;
            }
            lo <= c && c <= hi
        } else {
            lo == c
        };
        if hit {
            // The rest of the expression is only skipped, not parsed (so a cut-off range
            // there does not matter), up to its `]`.
            loop {
                match pat.get(i) {
                    None => return unclosed(),
                    Some(b']') => return (!negate).then_some(i + 1),
                    Some(b'\\') => {
                        pat.get(i + 1)?;
                        i += 2;
                    }
                    Some(_) => i += 1,
                }
            }
        }
    }
}

/// Expands `pattern` on the host; matches sorted bytewise.
pub fn expand(pattern: &Path) -> Vec<PathBuf> {
    let bytes = pattern.as_os_str().as_bytes();
    let absolute = bytes.first() == Some(&b'/');
    let mut found: Vec<Vec<u8>> = vec![if absolute { b"/".to_vec() } else { Vec::new() }];
    for comp in bytes.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        for base in &found {
            let join = |name: &[u8]| {
                let mut p = base.clone();
                if !p.is_empty() && !p.ends_with(b"/") {
                    p.push(b'/');
                }
                p.extend_from_slice(name);
                p
            };
            if !has_magic(comp) {
                next.push(join(&unquote(comp)));
                continue;
            }
            let dir = if base.is_empty() {
                PathBuf::from(".")
            } else {
                PathBuf::from(std::ffi::OsString::from_vec(base.clone()))
            };
            let Ok(rd) = std::fs::read_dir(&dir) else { continue };
            for entry in rd.flatten() {
                let name = entry.file_name();
                if matches(comp, name.as_bytes()) {
                    next.push(join(name.as_bytes()));
                }
            }
        }
        found = next;
    }
    let mut out: Vec<PathBuf> = found
        .into_iter()
        .map(|p| PathBuf::from(std::ffi::OsString::from_vec(p)))
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .collect();
    out.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matcher_cases() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "abc", true),
            ("*", ".hidden", false),
            (".*", ".hidden", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbbd", false),
            ("*.conf", "x.conf", true),
            ("*.conf", "x.conf.bak", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("[ab]x", "bx", true),
            ("[!ab]x", "bx", false),
            ("[^ab]x", "cx", true),
            ("[a-c]", "b", true),
            ("[a-c]", "d", false),
            ("[]]", "]", true),
            ("[a-]", "-", true),
            ("a[", "a[", true),
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("**x", "yyx", true),
            ("*a*b", "xaxxb", true),
            ("*a*b", "xaxxbc", false),
        ];
        for &(p, n, want) in cases {
            assert_eq!(matches(p.as_bytes(), n.as_bytes()), want, "{p} vs {n}");
        }
    }
}
