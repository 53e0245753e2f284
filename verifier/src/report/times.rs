//! The time lints: every time an image carries against SOURCE_DATE_EPOCH and the spec's
//! `timestamps` policy.

use super::*;
use std::collections::BTreeMap;

impl VerifyReport {
    pub(super) fn lint_times(&mut self, epoch: Option<i64>, policy: &str, lint: Severity) {
        let epoch = match epoch {
            Some(e) => e,
            None => match self.inferred_epoch() {
                Some(e) => {
                    self.push(
                        Severity::Info,
                        "epoch-inferred",
                        format!(
                            "SOURCE_DATE_EPOCH not given: judging times against {e}, the most common one"
                        ),
                        None,
                    );
                    e
                }
                None => return,
            },
        };
        let mut findings = Vec::new();
        for t in &self.times {
            let (code, why): (&str, &str) = match t.rule {
                TimeRule::Epoch => ("time-not-epoch", "should be SOURCE_DATE_EPOCH"),
                TimeRule::ZeroOrEpoch => ("time-not-epoch", "should be 0 or SOURCE_DATE_EPOCH"),
                TimeRule::LastMount => ("last-mount-time", "should be 0: the image was never mounted"),
                TimeRule::LastWrite => {
                    ("last-write-time", "should be SOURCE_DATE_EPOCH, not the build's clock")
                }
                TimeRule::File => match policy {
                    "keep" => continue,
                    "source-date-epoch" => {
                        ("time-not-epoch", "should be SOURCE_DATE_EPOCH (timestamps policy)")
                    }
                    _ => {
                        ("file-time-after-epoch", "should not be later than SOURCE_DATE_EPOCH (clamp policy)")
                    }
                },
            };
            let ok = |v: i64| match t.rule {
                TimeRule::Epoch => v == epoch,
                TimeRule::ZeroOrEpoch | TimeRule::LastWrite => v == 0 || v == epoch,
                TimeRule::LastMount => v == 0,
                TimeRule::File => match policy {
                    "source-date-epoch" => v == epoch,
                    _ => v <= epoch,
                },
            };
            let bad: Vec<(i64, u64)> =
                t.values.iter().filter(|(v, _)| !ok(**v)).map(|(v, n)| (*v, *n)).collect();
            if bad.is_empty() {
                continue;
            }
            let total: u64 = bad.iter().map(|(_, n)| n).sum();
            let examples: Vec<String> = bad
                .iter()
                .take(MAX_EXAMPLES)
                .map(|(v, _)| format!("{v} at {}", t.first_seen.get(v).map_or("?", String::as_str)))
                .collect();
            let location = match t.partition {
                Some(p) => format!("partition {p} {}", t.class),
                None => t.class.clone(),
            };
            findings.push(Finding::new(
                lint,
                code,
                format!("{total} of these times {why} ({epoch}): {}", examples.join(", ")),
                Some(location),
            ));
        }
        self.findings.extend(findings);
    }

    /// The most common non-zero structure time, as a stand-in for an unknown epoch.
    pub(super) fn inferred_epoch(&self) -> Option<i64> {
        let mut votes: BTreeMap<i64, u64> = BTreeMap::new();
        for t in self.times.iter().filter(|t| t.rule != TimeRule::File) {
            for (&v, &n) in t.values.iter().filter(|(v, _)| **v != 0) {
                *votes.entry(v).or_default() += n;
            }
        }
        votes.into_iter().max_by_key(|&(v, n)| (n, std::cmp::Reverse(v))).map(|(v, _)| v)
    }
}
