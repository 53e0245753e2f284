//! The rsync --chmod grammar checked against real rsync, and host globbing against bash.

mod tree_support;

use std::os::unix::fs::PermissionsExt;

use reprodisk::tree::chmod::ChmodSpec;
use reprodisk::tree::glob::expand;
use tree_support::sh;

const SPECS: &[&str] = &[
    "0644",
    "755",
    "D755,F644",
    "D2775,F664",
    "u+rwX,go=rX",
    "Dg+s,ug+w,Fo-w,+X",
    "+x",
    "-x",
    "+X",
    "=r",
    "=rX",
    "a-w",
    "u=rw",
    "u=rws",
    "g=rs",
    "go=",
    "o+t",
    "g+s",
    "+s",
    "-s",
    "ug-s",
    "u+s,g-x",
    "F+X",
    "Da+X",
    "a=rwx,o-rwx",
    "7777",
    "0",
    "D0700",
    "uo+w",
    "ugo=rwX",
    "u-r,g+t",
    "o=t",
    "=",
    "a+s",
    "a=s",
    "u=g",
    "u=u",
    "g-g",
    "a=o",
    "+u",
    "=g",
    "o=u,u-g",
    "u-u",
    "ug=o",
    "Fg=u",
    "Do+g",
    "-o",
    "o-u",
];

const MODES: &[u32] = &[0o600, 0o644, 0o755, 0o700, 0o4755, 0o2750, 0o1777, 0o000, 0o111, 0o6711];

/// A file `fMODE` and a directory `dMODE` for each mode.
fn make_modes(src: &std::path::Path, modes: &[u32]) {
    for &m in modes {
        let f = src.join(format!("f{m:o}"));
        std::fs::write(&f, b"x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(m)).unwrap();
        let d = src.join(format!("d{m:o}"));
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(m)).unwrap();
    }
}

/// Every entry rsync wrote to `dst` has the mode `spec` gives it here.
fn assert_modes_as_rsync(spec: &str, parsed: &ChmodSpec, dst: &std::path::Path, modes: &[u32]) {
    for &m in modes {
        for (prefix, is_dir) in [("f", false), ("d", true)] {
            let got =
                std::fs::symlink_metadata(dst.join(format!("{prefix}{m:o}"))).unwrap().permissions().mode()
                    & 0o7777;
            let ours = parsed.apply(m as u16, is_dir);
            assert_eq!(u32::from(ours), got, "--chmod={spec} on {prefix}{m:o}: ours {ours:o}, rsync {got:o}");
        }
    }
}

/// A deterministic pseudo-random source (a 64-bit LCG) giving numbers below `n`.
fn lcg(mut state: u64) -> impl FnMut(usize) -> usize {
    move |n| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize % n
    }
}

#[test]
fn chmod_strings_give_what_rsync_gives() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    for (k, spec) in SPECS.iter().enumerate() {
        let (src, dst) = (t.join(format!("s{k}")), t.join(format!("d{k}")));
        std::fs::create_dir(&src).unwrap();
        make_modes(&src, MODES);
        sh(&format!("umask 022; rsync -a --chmod='{spec}' '{}/' '{}'", src.display(), dst.display()));
        let parsed = ChmodSpec::parse(spec).unwrap_or_else(|| panic!("{spec} parses in rsync but not here"));
        assert_modes_as_rsync(spec, &parsed, &dst, MODES);
    }
}

#[test]
fn chmod_strings_rsync_rejects_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("f"), b"x").unwrap();
    for bad in
        ["u", "8", "10000", "u+r-w", "DF755", "u+q", "u+rg", "u=gx", "u=go", "644x", "u+r,", "D", "x+r"]
    {
        let status = std::process::Command::new("rsync")
            .args([&format!("--chmod={bad}"), "-a"])
            .arg(tmp.path().join("f"))
            .arg(tmp.path().join("g"))
            .stderr(std::process::Stdio::null())
            .status()
            .expect("rsync is installed (apt-get install rsync)");
        assert!(!status.success(), "rsync accepted {bad:?}");
        assert_eq!(ChmodSpec::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn globs_expand_like_bash() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().display();
    sh(&format!(
        "cd {d} && mkdir -p etc/a etc/b sub/x sub/y && touch etc/a.conf etc/b.conf etc/.hidden.conf etc/c.txt 'etc/[x]' \
         sub/x/1 sub/y/2 sub/y/3 etc/B.conf etc/a1 etc/a2 && ln -s a.conf etc/link.conf"
    ));
    for pat in [
        "etc/*",
        "etc/*.conf",
        "etc/.*",
        "etc/?.conf",
        "etc/[ab].conf",
        "etc/[!a]*",
        "sub/*/*",
        "*/a*",
        "etc/\\[x]",
        "etc/a[0-9]",
        "none/*",
        "etc/*.none",
    ] {
        let full = format!("{d}/{pat}");
        let bash = sh(&format!(
            "shopt -s nullglob; export LC_ALL=C; for f in {}; do printf '%s\\n' \"$f\"; done",
            full.replace(' ', "\\ ")
        ));
        let mut want: Vec<&str> =
            bash.lines().filter(|l| !l.ends_with("/.") && !l.ends_with("/..")).collect();
        want.sort();
        let ours: Vec<String> =
            expand(std::path::Path::new(&full)).iter().map(|p| p.display().to_string()).collect();
        assert_eq!(ours, want, "pattern {pat}");
    }
}

#[test]
fn glob_matcher_agrees_with_bash_pattern_matching() {
    // Deterministic pseudo-random pairs (a 64-bit LCG), judged by bash's `[[ name == pattern ]]`
    // in the C locale, in one bash run. No `(`: bash enables extglob inside `[[ ]]`.
    let pat_chars = b"ab-.]![^*?\\";
    let name_chars = b"ab-]![^*?.";
    let mut next = lcg(0x2545_f491_4f6c_dd1d);
    let mut pairs = Vec::new();
    for _ in 0..3000 {
        let pat: Vec<u8> = (0..1 + next(6)).map(|_| pat_chars[next(pat_chars.len())]).collect();
        // Half of the names are built to fit the pattern's shape, so both outcomes are common.
        let mut name: Vec<u8> = if next(2) == 0 {
            (0..next(6)).map(|_| name_chars[next(name_chars.len())]).collect()
        } else {
            let mut n = Vec::new();
            for &c in &pat {
                match c {
                    b'*' => (0..next(3)).for_each(|_| n.push(name_chars[next(name_chars.len())])),
                    b'?' => n.push(name_chars[next(name_chars.len())]),
                    b'\\' => {}
                    c => n.push(c),
                }
            }
            n
        };
        if name.first() == Some(&b'.') {
            name[0] = b'a'; // the leading-dot rule is pathname expansion's, not `[[ ]]`'s
        }
        pairs.push((pat, name));
    }
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("pairs");
    let mut text = Vec::new();
    for (p, n) in &pairs {
        text.extend_from_slice(p);
        text.push(b'\t');
        text.extend_from_slice(n);
        text.push(b'\n');
    }
    std::fs::write(&input, text).unwrap();
    let out = sh(&format!(
        "export LC_ALL=C; while IFS=$'\\t' read -r p n; do if [[ $n == $p ]]; then echo 1; else echo 0; fi; done < '{}'",
        input.display()
    ));
    let verdicts: Vec<&str> = out.lines().collect();
    assert_eq!(verdicts.len(), pairs.len());
    let hits = verdicts.iter().filter(|v| **v == "1").count();
    assert!(hits > 300 && hits < pairs.len() - 300, "the pairs exercise both outcomes ({hits} matches)");
    let mut wrong = Vec::new();
    for ((p, n), v) in pairs.iter().zip(verdicts) {
        let ours = reprodisk::tree::glob::matches(p, n);
        if ours != (v == "1") {
            wrong.push(format!(
                "{:?} vs {:?}: bash {v}",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(n)
            ));
        }
    }
    assert!(wrong.is_empty(), "{} disagreements, e.g. {:?}", wrong.len(), &wrong[..wrong.len().min(10)]);
}

#[test]
fn generated_chmod_strings_agree_with_rsync() {
    // Deterministic pseudo-random clause strings from rsync's alphabet, some malformed.
    let mut next = lcg(0x9e37_79b9_7f4a_7c15);
    let pick = |s: &[u8], i: usize| s[i % s.len()] as char;
    let mut specs = Vec::new();
    for _ in 0..150 {
        let mut spec = String::new();
        for c in 0..1 + next(3) {
            if c > 0 {
                spec.push(',');
            }
            match next(10) {
                0 => spec.push('D'),
                1 => spec.push('F'),
                _ => {}
            }
            if next(5) == 0 {
                (0..1 + next(4)).for_each(|_| spec.push(pick(b"01234567", next(8))));
            } else {
                (0..next(3)).for_each(|_| spec.push(pick(b"ugoa", next(4))));
                spec.push(pick(b"+-=", next(3)));
                (0..next(4)).for_each(|_| spec.push(pick(b"rwxXstugo", next(9))));
            }
        }
        specs.push(spec);
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let modes: &[u32] = &[0o644, 0o755, 0o4750, 0o2711, 0o1777, 0o600];
    make_modes(&src, modes);
    let (mut accepted, mut rejected) = (0, 0);
    for (k, spec) in specs.iter().enumerate() {
        let dst = tmp.path().join(format!("d{k}"));
        let status = std::process::Command::new("bash")
            .args(["-c", "umask 022; exec rsync -a --chmod=\"$1\" \"$2/\" \"$3\"", "x", spec])
            .arg(&src)
            .arg(&dst)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("bash and rsync are installed (apt-get install rsync)");
        let ours = ChmodSpec::parse(spec);
        if !status.success() {
            assert_eq!(ours, None, "rsync rejects --chmod={spec}");
            rejected += 1;
            continue;
        }
        accepted += 1;
        let ours = ours.unwrap_or_else(|| panic!("rsync accepts --chmod={spec}, we do not"));
        assert_modes_as_rsync(spec, &ours, &dst, modes);
    }
    assert!(
        accepted > 25 && rejected > 10,
        "both outcomes exercised ({accepted} accepted, {rejected} rejected)"
    );
}
