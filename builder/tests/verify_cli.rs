//! `reprodisk verify` and `reprodisk diff` on things that are not images: bad input, exit 2,
//! at once (a FIFO must not block the open or a read).

use std::time::{Duration, Instant};

/// Runs reprodisk with a deadline, so that a hang fails the test instead of stalling CI.
fn run_bounded(args: &[&str]) -> (i32, String) {
    let start = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reprodisk"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the reprodisk binary runs");
    loop {
        if let Some(status) = child.try_wait().expect("waiting for reprodisk") {
            let out = child.wait_with_output().expect("reading stderr");
            return (status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned());
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("reprodisk {args:?} hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn verify_and_diff_refuse_a_fifo_and_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo (coreutils) runs");
    assert!(made.success());
    let img = dir.path().join("ok.img");
    std::fs::write(&img, vec![0u8; 4096]).unwrap();
    let (fifo, d, img) = (fifo.to_str().unwrap(), dir.path().to_str().unwrap(), img.to_str().unwrap());
    for (args, what) in [
        (vec!["verify", fifo], "a FIFO"),
        (vec!["verify", d], "a directory"),
        (vec!["diff", fifo, img], "a FIFO"),
        (vec!["diff", img, d], "a directory"),
    ] {
        let (code, err) = run_bounded(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.starts_with("error: opening image"), "{args:?}: {err}");
        assert!(err.contains(&format!("{what}, not a disk image")), "{args:?}: {err}");
    }
}
