//! The ext4 part of the `verify` report: the lints on what the superblock and the journal
//! say about the image's history (mounts, writes, a journal to replay).

use crate::report::{Finding, Severity, VerifyReport};

impl VerifyReport {
    pub(crate) fn lint_ext4(&mut self, lint: Severity) {
        let mut findings = Vec::new();
        for fs in &self.filesystems {
            let Some(x) = &fs.ext4 else { continue };
            let at = |field: &str| Some(format!("{} superblock {field}", fs.location()));
            if x.mount_count != 0 {
                findings.push(Finding::new(
                    lint,
                    "ext4-mount-count",
                    format!(
                        "the mount count is {}: an image fresh from the builder was never mounted",
                        x.mount_count
                    ),
                    at("s_mnt_count"),
                ));
            }
            if !x.last_mounted.is_empty() {
                findings.push(Finding::new(
                    lint,
                    "ext4-last-mounted",
                    format!(
                        "the last mount point is {:?}: the host's mount leaked into the image",
                        x.last_mounted
                    ),
                    at("s_last_mounted"),
                ));
            }
            if x.kbytes_written != 0 {
                findings.push(Finding::new(
                    lint,
                    "ext4-kbytes-written",
                    format!(
                        "s_kbytes_written is {}: it counts a writer's I/O, set it to 0",
                        x.kbytes_written
                    ),
                    at("s_kbytes_written"),
                ));
            }
            if x.needs_recovery || x.journal_clean == Some(false) {
                findings.push(Finding::new(
                    Severity::Error,
                    "ext4-journal-dirty",
                    "the journal holds transactions to replay: unmount cleanly or run e2fsck",
                    Some(format!("{} journal", fs.location())),
                ));
            }
            if x.state & 1 == 0 {
                findings.push(Finding::new(
                    Severity::Error,
                    "ext4-not-clean",
                    format!("s_state is {:#06x}, not cleanly unmounted", x.state),
                    at("s_state"),
                ));
            }
        }
        self.findings.extend(findings);
    }
}
