//! `reprodisk audit --json`: the whole [`AuditReport`] as pretty-printed JSON.

use super::AuditReport;

/// The report as JSON (every field, the structural diffs included).
pub fn render(r: &AuditReport) -> String {
    // The report holds only strings, numbers and enums: serialising it cannot fail.
    serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
