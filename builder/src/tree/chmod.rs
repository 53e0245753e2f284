//! rsync's `--chmod` mode strings, as the seed applies a `contents` entry's `mode` with `rsync -a --chmod=MODE`.
//!
//! The grammar is rsync's (its `chmod.c`), which differs from chmod(1) in places:
//! - comma-separated clauses; each may start with `D` (directories only) or `F` (everything
//!   but directories), not both;
//! - a clause is octal (`644`, `0644`, `D2775`; at most `7777`, and it sets all twelve bits),
//!   or `[ugoa]*` followed by exactly one of `+`, `-`, `=` and any of `rwxXst`;
//! - without `ugoa`, the clause means `a` masked by the umask; rsync reads the umask of the
//!   process, which is host state, so we use `022`, the umask of the Nix build sandbox the
//!   seed runs rsync in;
//! - `X` sets execute bits only on directories and on files that had an execute bit before
//!   the whole mode string was applied (rsync decides that once, not per clause);
//! - `=` clears setuid/setgid only when the clause names `s` (for `u`/`g`), and keeps them
//!   otherwise; `s` without `u`, `g` or `a` sets setuid and drops a `t` named before it in
//!   the same clause (`+ts` is `+s`, `+st` sets both);
//! - newer rsync (3.5, the reference here) also takes chmod(1)'s permission copies
//!   `[ugoa]*[+-=][ugo]` (`g=u`, `go+u`): the named class's bits, read before the clause,
//!   are copied (masked by the umask when no class is named); a copying `=` also clears each
//!   target class's own special bit (setuid, setgid, sticky). A copy letter cannot be mixed
//!   with `rwxXst`. `a` counts as `ug` for `s` (`a+s` sets both setuid and setgid).
//!
//! Symlinks are never changed (rsync does not tweak their mode). Checked against real rsync
//! on a table of mode strings and on generated ones, accepted and rejected alike.

/// The umask rsync ran under in the seed's build sandbox.
pub const SEED_UMASK: u16 = 0o022;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Only {
    All,
    Dirs,
    Files,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Clause {
    and: u16,
    or: u16,
    only: Only,
    /// `X`: execute bits only for directories and already-executable files.
    x_keep: bool,
    /// Permission copy: the source class (`0o100`, `0o010`, `0o001`, or 0 for none), the
    /// target classes, the mask for the copied bits, and the operator.
    copy_src: u16,
    copy_dst: u16,
    copy_and: u16,
    op: u8,
}

/// A parsed `--chmod` string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChmodSpec {
    clauses: Vec<Clause>,
}

impl ChmodSpec {
    /// Parses `s` as rsync does with the given umask; `None` when rsync would reject it.
    pub fn parse_with_umask(s: &str, umask: u16) -> Option<ChmodSpec> {
        let mut clauses = Vec::new();
        for part in s.split(',') {
            clauses.push(parse_clause(part.as_bytes(), umask)?);
        }
        Some(ChmodSpec { clauses })
    }

    /// Parses `s` with the seed's umask ([`SEED_UMASK`]).
    pub fn parse(s: &str) -> Option<ChmodSpec> {
        Self::parse_with_umask(s, SEED_UMASK)
    }

    /// The permission bits (`0o7777`) that `perm` becomes for a directory or a non-directory.
    pub fn apply(&self, perm: u16, is_dir: bool) -> u16 {
        let was_x = perm & 0o111 != 0;
        let mut mode = perm & 0o7777;
        for c in &self.clauses {
            match c.only {
                Only::Dirs if !is_dir => continue,
                Only::Files if is_dir => continue,
                _ => {}
            }
            let copied = if c.copy_src != 0 {
                let class = (mode >> c.copy_src.trailing_zeros()) & 7;
                (c.copy_dst * class) & c.copy_and
            } else {
                0
            };
            mode &= c.and;
            if c.op == b'-' {
                mode &= !copied;
            } else {
                mode |= copied;
            }
            if c.x_keep && !was_x && !is_dir {
                mode |= c.or & !0o111;
            } else {
                mode |= c.or;
            }
        }
        mode
    }
}

fn parse_clause(s: &[u8], umask: u16) -> Option<Clause> {
    let mut only = Only::All;
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        match (c, only) {
            (b'D', Only::All | Only::Dirs) => only = Only::Dirs,
            (b'F', Only::All | Only::Files) => only = Only::Files,
            _ => break,
        }
        i += 1;
    }
    let rest = &s[i..];
    if rest.first().is_some_and(|c| (b'0'..=b'7').contains(c)) {
        let mut v: u32 = 0;
        for &c in rest {
            if !(b'0'..=b'7').contains(&c) {
                return None;
            }
            v = v * 8 + u32::from(c - b'0');
            if v > 0o7777 {
                return None;
            }
        }
        // Checked above: at most 0o7777.
        return Some(Clause {
            and: 0,
            or: v as u16,
            only,
            x_keep: false,
            copy_src: 0,
            copy_dst: 0,
            copy_and: 0,
            op: b'0',
        });
    }
    let mut where_: u16 = 0;
    let mut topbits: u16 = 0;
    let mut j = 0;
    let op = loop {
        match rest.get(j)? {
            b'u' => {
                where_ |= 0o100;
                topbits |= 0o4000;
            }
            b'g' => {
                where_ |= 0o010;
                topbits |= 0o2000;
            }
            b'o' => where_ |= 0o001,
            b'a' => {
                where_ |= 0o111;
                topbits |= 0o6000;
            }
            &op @ (b'+' | b'-' | b'=') => break op,
            _ => return None,
        }
        j += 1;
    };
    let (mut what, mut topoct, mut x_keep, mut copy_src) = (0u16, 0u16, false, 0u16);
    for &c in &rest[j + 1..] {
        match c {
            b'r' | b'w' | b'x' | b'X' | b's' | b't' if copy_src != 0 => return None,
            b'u' | b'g' | b'o' if what != 0 || topoct != 0 || copy_src != 0 => return None,
            b'u' => copy_src = 0o100,
            b'g' => copy_src = 0o010,
            b'o' => copy_src = 0o001,
            b'r' => what |= 4,
            b'w' => what |= 2,
            b'x' => what |= 1,
            b'X' => {
                what |= 1;
                x_keep = true;
            }
            // rsync assigns here when no `u`/`g`/`a` was named, dropping an earlier `t`.
            b's' if topbits == 0 => topoct = 0o4000,
            b's' => topoct |= topbits,
            b't' => topoct |= 0o1000,
            _ => return None,
        }
    }
    let (bits, copy_and) = if where_ != 0 {
        (where_ * what, 0o7777)
    } else {
        where_ = 0o111;
        ((where_ * what) & !umask, !umask & 0o7777)
    };
    let (and, or) = match op {
        b'+' => (0o7777, bits | topoct),
        b'-' => (0o7777 & !(bits | topoct), 0),
        _ => {
            let special = if topoct != 0 { topbits } else { 0 };
            let copy_special = if copy_src != 0 { dest_special_bits(where_) } else { 0 };
            (0o7777 & !(where_ * 7) & !special & !copy_special, bits | topoct)
        }
    };
    Some(Clause { and, or, only, x_keep, copy_src, copy_dst: where_, copy_and, op })
}

/// The special bit each target class owns: setuid for `u`, setgid for `g`, sticky for `o`.
fn dest_special_bits(where_: u16) -> u16 {
    let mut bits = 0;
    if where_ & 0o100 != 0 {
        bits |= 0o4000;
    }
    if where_ & 0o010 != 0 {
        bits |= 0o2000;
    }
    if where_ & 0o001 != 0 {
        bits |= 0o1000;
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (mode string, input perm, is_dir, expected): cases from rsync's manual page and
    /// chmod(1)'s documented meaning; the integration test compares many more with rsync.
    const CASES: &[(&str, u16, bool, u16)] = &[
        ("0644", 0o755, false, 0o644),
        ("755", 0o600, true, 0o755),
        ("D755,F644", 0o700, true, 0o755),
        ("D755,F644", 0o700, false, 0o644),
        ("D2775,F664", 0o600, true, 0o2775),
        ("u+rwX,go=rX", 0o600, false, 0o644),
        ("u+rwX,go=rX", 0o700, false, 0o755),
        ("u+rwX,go=rX", 0o700, true, 0o755),
        ("Dg+s,ug+w,Fo-w,+X", 0o664, false, 0o664),
        ("Dg+s,ug+w,Fo-w,+X", 0o700, true, 0o2731),
        ("+x", 0o644, false, 0o755),
        ("a-w", 0o666, false, 0o444),
        ("u=rw", 0o4755, false, 0o4655),
        ("u=rws", 0o4755, false, 0o4655),
        ("go=", 0o777, false, 0o700),
        ("o+t", 0o777, true, 0o1777),
        ("g+s", 0o755, true, 0o2755),
        ("+s", 0o755, false, 0o4755),
        ("7777", 0, false, 0o7777),
        ("u=g", 0o4754, false, 0o554),
        ("u=u", 0o4754, false, 0o754),
        ("+u", 0o754, false, 0o755),
        ("o=u,u-g", 0o640, false, 0o246),
        ("a+s", 0o754, false, 0o6754),
        ("+ts", 0o644, false, 0o4644),
        ("+st", 0o644, false, 0o5644),
    ];

    #[test]
    fn documented_cases() {
        for &(spec, perm, is_dir, want) in CASES {
            let got =
                ChmodSpec::parse(spec).unwrap_or_else(|| panic!("{spec} should parse")).apply(perm, is_dir);
            assert_eq!(got, want, "{spec} on {perm:o} (dir: {is_dir}): got {got:o}, want {want:o}");
        }
    }

    #[test]
    fn rejected_like_rsync() {
        for bad in [
            "", "u", "8", "10000", "u+r-w", "DF755", "u+q", "u+rg", "u=gx", "u=go", "644x", "u+r,", ",u+r",
            "D",
        ] {
            assert_eq!(ChmodSpec::parse(bad), None, "{bad:?}");
        }
    }
}
