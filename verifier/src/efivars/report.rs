//! `reprodisk verify efi-vars.fd`: the listing of a variable store, its checks and lints.
//!
//! Checks (a failure sets exit code 1): the store parses; every `Boot####` and `BootOrder`
//! of EFI_GLOBAL_VARIABLE decodes; `BootOrder` names options that exist; the
//! fault-tolerant-write queue holds no unfinished write. Lints (warnings):
//! bytes after the last variable that are not erased; a live `Boot####` or `BootOrder` with a
//! timestamp or monotonic count (reprodisk writes zeros, so a non-zero one came from a clock).

use super::devpath::{self, LoadOption};
use super::{GLOBAL_VARIABLE, VarStore};
use crate::guid::Guid;
use std::fmt::Write;

/// One variable as `verify` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VarEntry {
    pub name: String,
    pub guid: Guid,
    pub offset: u64,
    pub state: &'static str,
    pub live: bool,
    pub attributes: u32,
    pub data_size: usize,
    /// `Boot####`, `Driver####`, `SysPrep####`: the decoded load option.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_option: Option<LoadOption>,
    /// `BootOrder`, `DriverOrder`: the option numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<Vec<u16>>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// "error" fails the check, "warning" does not.
    pub severity: &'static str,
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EfiVarsReport {
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreSummary>,
    pub variables: Vec<VarEntry>,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoreSummary {
    pub fv_length: u64,
    pub fv_header_length: u16,
    pub store_offset: u64,
    pub store_size: u32,
    pub authenticated: bool,
    pub free_bytes: u64,
}

fn option_number(name: &str) -> Option<u16> {
    ["Boot", "Driver", "SysPrep"]
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .filter(|n| n.len() == 4 && n.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()))
        .and_then(|n| u16::from_str_radix(n, 16).ok())
}

fn error(code: &'static str, message: String) -> Problem {
    Problem { severity: "error", code, message }
}

impl EfiVarsReport {
    /// Reads `file` and lists every variable; never fails (a corrupt store is a problem).
    pub fn inspect(file: &[u8], path: Option<&str>) -> EfiVarsReport {
        let mut r = EfiVarsReport {
            path: path.map(str::to_string),
            store: None,
            variables: vec![],
            problems: vec![],
        };
        match super::parse(file) {
            Ok(s) => r.fill(&s),
            Err(e) => r.problems.push(error("efivars.corrupt", e.to_string())),
        }
        r
    }

    fn fill(&mut self, s: &VarStore) {
        self.store = Some(StoreSummary {
            fv_length: s.fv.fv_length,
            fv_header_length: s.fv.header_length,
            store_offset: s.store.offset,
            store_size: s.store.size,
            authenticated: s.store.authenticated,
            free_bytes: s.free_bytes,
        });
        if let Some(at) = s.ftw.as_ref().and_then(|f| f.pending_at) {
            self.problems.push(error(
                "efivars.ftw-pending",
                format!("the fault-tolerant-write queue holds an unfinished write at byte {at:#x}: the firmware will replay it over this store at boot"),
            ));
        }
        if let Some(at) = s.not_erased_at {
            self.problems.push(Problem {
                severity: "warning",
                code: "efivars.not-erased",
                message: format!("byte {at:#x} after the last variable is not erased (0xff)"),
            });
        }
        for v in &s.variables {
            let live = v.is_live(&s.variables);
            let global = v.guid == GLOBAL_VARIABLE;
            let mut e = VarEntry {
                name: v.name.clone(),
                guid: v.guid,
                offset: v.offset,
                state: v.state.as_str(),
                live,
                attributes: v.attributes,
                data_size: v.data.len(),
                load_option: None,
                order: None,
            };
            if global && live && option_number(&v.name).is_some() {
                match devpath::parse_load_option(&v.data) {
                    Ok(o) => e.load_option = Some(o),
                    Err(err) => self.problems.push(error(
                        "efivars.load-option",
                        format!("{} at byte {:#x}: {err}", v.name, v.offset),
                    )),
                }
            }
            if global && live && (v.name == "BootOrder" || v.name == "DriverOrder") {
                if !v.data.len().is_multiple_of(2) {
                    self.problems.push(error(
                        "efivars.order",
                        format!("{} has {} bytes, not a list of 16-bit numbers", v.name, v.data.len()),
                    ));
                } else {
                    e.order =
                        Some(v.data.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect());
                }
            }
            let ours = v.name == "BootOrder" || v.name.starts_with("Boot");
            if global && live && ours && (v.timestamp != [0; 16] || v.monotonic_count != 0) {
                self.problems.push(Problem {
                    severity: "warning",
                    code: "efivars.time",
                    message: format!(
                        "{} carries a timestamp or monotonic count: it was not written reproducibly",
                        v.name
                    ),
                });
            }
            self.variables.push(e);
        }
        self.check_boot_order();
    }

    fn check_boot_order(&mut self) {
        let Some(order) =
            self.variables.iter().find(|v| v.live && v.name == "BootOrder").and_then(|v| v.order.clone())
        else {
            return;
        };
        for n in order {
            let name = format!("Boot{n:04X}");
            if !self.variables.iter().any(|v| v.live && v.guid == GLOBAL_VARIABLE && v.name == name) {
                self.problems.push(error(
                    "efivars.boot-order",
                    format!("BootOrder names {name}, which does not exist"),
                ));
            }
        }
    }

    pub fn failed(&self) -> bool {
        self.problems.iter().any(|p| p.severity == "error")
    }

    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn render_text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "efi variable store {}", self.path.as_deref().unwrap_or("-"));
        if let Some(s) = &self.store {
            let kind = if s.authenticated { "authenticated" } else { "plain" };
            let _ = writeln!(
                t,
                "  firmware volume {:#x} bytes, header {:#x}; {kind} store at {:#x}, {:#x} bytes, {} free",
                s.fv_length, s.fv_header_length, s.store_offset, s.store_size, s.free_bytes
            );
        }
        for v in &self.variables {
            let state = if v.live { String::new() } else { format!(" [{}]", v.state) };
            let guid = if v.guid == GLOBAL_VARIABLE { "global".to_string() } else { v.guid.to_string() };
            let _ = write!(t, "  {} ({guid}) attr {:#x} {} bytes{state}", v.name, v.attributes, v.data_size);
            if let Some(o) = &v.load_option {
                let active = if o.active() { "active" } else { "inactive" };
                let _ = write!(t, ": {active} \"{}\" {}", o.description, o.path_text);
            }
            if let Some(order) = &v.order {
                let list: Vec<String> = order.iter().map(|n| format!("{n:04X}")).collect();
                let _ = write!(t, ": {}", list.join(","));
            }
            t.push('\n');
        }
        for p in &self.problems {
            let _ = writeln!(t, "{}: {} [{}]", p.severity, p.message, p.code);
        }
        let _ = writeln!(t, "{}", if self.failed() { "FAILED" } else { "ok" });
        t
    }
}

/// The largest file read as a variable store (OVMF's are 128 KiB to 4 MiB).
const MAX_STORE_FILE: u64 = 64 << 20;

/// If `path` is a variable store (by its first bytes), its report; `None` for anything else.
pub fn inspect_file(path: &std::path::Path) -> std::io::Result<Option<EfiVarsReport>> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let mut head = Vec::new();
    f.take(0x48).read_to_end(&mut head)?;
    if !super::looks_like(&head) || std::fs::metadata(path)?.len() > MAX_STORE_FILE {
        return Ok(None);
    }
    let bytes = std::fs::read(path)?;
    Ok(Some(EfiVarsReport::inspect(&bytes, Some(&path.display().to_string()))))
}

/// The `efi-vars.fd` a build wrote beside `image`, if there is one.
pub fn beside(image: &std::path::Path) -> Option<std::path::PathBuf> {
    let p = image.with_file_name("efi-vars.fd");
    (p != image && p.is_file()).then_some(p)
}
