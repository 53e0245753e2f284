//! Typed reads of one spec table: each field taken out by its canonical key, with errors that
//! name the key as the spec wrote it.

use super::keys::closest;
use super::{InputPath, SpecError, size};
use crate::ids::Guid;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::path::Path;

/// Reads fields of one table with errors that name the key.
pub(super) struct Table<'a> {
    pub(super) map: Map<String, Value>,
    /// Canonical key to the name the spec used (its alias, if it used one).
    pub(super) written: Map<String, Value>,
    pub(super) location: &'a str,
}

impl Table<'_> {
    /// The key as the user wrote it, for messages.
    pub(super) fn name(&self, key: &str) -> String {
        self.written.get(key).and_then(Value::as_str).unwrap_or(key).to_string()
    }

    pub(super) fn invalid(&self, key: &str, message: impl Into<String>) -> SpecError {
        SpecError::Invalid {
            location: self.location.to_string(),
            key: self.name(key),
            message: message.into(),
        }
    }

    pub(super) fn get<T: DeserializeOwned>(
        &mut self,
        key: &str,
        expected: &str,
    ) -> Result<Option<T>, SpecError> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(v) => serde_json::from_value(v.clone())
                .map(Some)
                .map_err(|_| self.invalid(key, format!("must be {expected}, not {v}"))),
        }
    }

    pub(super) fn bool(&mut self, key: &str, default: bool) -> Result<bool, SpecError> {
        Ok(self.get(key, "true or false")?.unwrap_or(default))
    }

    pub(super) fn string(&mut self, key: &str) -> Result<Option<String>, SpecError> {
        self.get(key, "a string")
    }

    /// One of `choices` (by name), suggesting the closest on a miss.
    pub(super) fn choice<T: Copy>(
        &mut self,
        key: &str,
        choices: &[(&str, T)],
        default: T,
    ) -> Result<T, SpecError> {
        let Some(s) = self.string(key)? else { return Ok(default) };
        match choices.iter().find(|(n, _)| *n == s) {
            Some((_, v)) => Ok(*v),
            None => {
                let names: Vec<String> = choices.iter().map(|(n, _)| format!("\"{n}\"")).collect();
                let near = closest(&s, choices.iter().map(|(n, _)| *n))
                    .map(|n| format!(" (did you mean \"{n}\"?)"))
                    .unwrap_or_default();
                Err(self.invalid(key, format!("is \"{s}\": it must be one of {}{near}", names.join(", "))))
            }
        }
    }

    /// A size in bytes: a numfmt string, or an integer number of bytes.
    pub(super) fn iec_size(&mut self, key: &str, default: &str) -> Result<u64, SpecError> {
        let v = self.map.remove(key).unwrap_or(Value::String(default.to_string()));
        match &v {
            Value::Number(n) => n.as_u64().ok_or_else(|| {
                self.invalid(
                    key,
                    format!("must be a size such as \"512M\" or a non-negative number of bytes, not {v}"),
                )
            }),
            Value::String(s) => size::parse_iec(s).map_err(|error| SpecError::BadSize {
                location: self.location.to_string(),
                key: self.name(key),
                value: v.to_string(),
                error,
            }),
            _ => Err(self.invalid(key, format!("must be a size such as \"512M\", not {v}"))),
        }
    }

    pub(super) fn path(&mut self, key: &str, base: &Path) -> Result<Option<InputPath>, SpecError> {
        match self.string(key)? {
            // An empty path would resolve to the spec's own folder and copy it silently.
            Some(w) if w.is_empty() => {
                Err(self.invalid(key, "is empty: name a file or folder (relative to the spec's folder)"))
            }
            w => Ok(w.map(|w| resolve(base, &w))),
        }
    }
}

pub(super) fn resolve(base: &Path, written: &str) -> InputPath {
    InputPath { written: written.to_string(), resolved: base.join(written) }
}

pub(super) fn as_table(v: Value, location: &str, key: &str) -> Result<Map<String, Value>, SpecError> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(SpecError::Invalid {
            location: location.to_string(),
            key: key.to_string(),
            message: format!("must be a table, not {other}"),
        }),
    }
}

impl Table<'_> {
    pub(super) fn guid(&mut self, key: &str) -> Result<Option<Guid>, SpecError> {
        match self.string(key)? {
            None => Ok(None),
            Some(s) => {
                s.parse().map(Some).map_err(|e: crate::ids::GuidError| self.invalid(key, e.to_string()))
            }
        }
    }
}
