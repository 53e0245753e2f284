//! The checks a parsed spec passes before it is used: the seed's assertions, then that every
//! input file exists.

use super::*;

impl Spec {
    /// The seed's assertions, in the seed's order and with its wording, then reprodisk's own.
    pub(super) fn check_assertions(&self) -> Result<(), SpecError> {
        let a = |m: &str| Err(SpecError::Assertion(m.to_string()));
        let ext4 = self.fs_type == "ext4";
        if ext4 && self.deterministic && self.root_fsuid.is_none() {
            return a(
                "in deterministic mode with an ext4 partition, rootFSUID must be non-null (by default it equals rootGPUID): remove `rootFSUID = null` or set deterministic = false",
            );
        }
        if self.partition_table_type != Layout::None && !ext4 {
            return a(&format!(
                "fsType = \"{}\" with partitionTableType = \"{}\": a partition table needs fsType = \"ext4\" (the seed needs mkfs's -E offset, which only e2fsprogs has)",
                self.fs_type,
                self.partition_table_type.name()
            ));
        }
        if !ext4 {
            return Err(SpecError::Unsupported {
                key: "fsType".into(),
                why: format!(
                    "\"{}\": reprodisk writes ext4 root filesystems only; use fsType = \"ext4\"",
                    self.fs_type
                ),
            });
        }
        if self.touch_efi_vars && !self.partition_table_type.is_gpt() {
            return a(
                "touchEFIVars = true needs a GPT layout: EFI variables can be used only with partitionTableType hybrid, efi, efixbootldr or legacy+gpt",
            );
        }
        if self.only_nix_store
            && (!self.contents.is_empty() || self.config_file.is_some() || self.install_boot_loader)
        {
            return a(
                "onlyNixStore = true: the contents must be empty, no configFile may be given and installBootLoader must be false",
            );
        }
        if let Some(i) = self.contents.iter().position(|c| c.user.is_some() != c.group.is_some()) {
            return a(&format!(
                "contents[{i}] (target `{}`): set both of user and group, or neither",
                self.contents[i].target
            ));
        }
        if let Some(p) = self.additional_paths.iter().find(|p| !p.starts_with('/')) {
            return Err(SpecError::Unsupported {
                key: "additionalPaths".into(),
                why: format!(
                    "`{p}` is not absolute: each path is copied to the same absolute path in the image, as the seed copies store paths"
                ),
            });
        }
        if self.base_name.is_empty()
            || self.base_name.contains('/')
            || self.base_name == "."
            || self.base_name == ".."
        {
            return a(&format!(
                "baseName = \"{}\": it must be a plain file name without `/`",
                self.base_name
            ));
        }
        if self.label.len() > 16 {
            return a(&format!(
                "label = \"{}\" is {} bytes: an ext4 label holds at most 16 bytes",
                self.label,
                self.label.len()
            ));
        }
        for (i, c) in self.contents.iter().enumerate() {
            if !c.target.starts_with('/') {
                return a(&format!(
                    "contents[{i}]: target `{}` must be an absolute path in the image (start it with `/`)",
                    c.target
                ));
            }
        }
        Ok(())
    }

    /// Checks that every input file the spec names exists.
    pub(super) fn check_files(&self) -> Result<(), SpecError> {
        let missing = |location: &str, key: &str, p: &InputPath| SpecError::MissingFile {
            location: location.to_string(),
            key: key.to_string(),
            path: p.resolved.clone(),
            base: self.base_dir.clone(),
        };
        let check = |location: &str, key: &str, p: &Option<InputPath>| match p {
            Some(p) if !p.resolved.exists() => Err(missing(location, key, p)),
            _ => Ok(()),
        };
        check("", "efiFirmware", &self.efi_firmware)?;
        check("", "efiVariables", &self.efi_variables)?;
        check("", "configFile", &self.config_file)?;
        check("", "package_root", &self.package_root)?;
        if let Some(s) = &self.system {
            check("system.", "root", &Some(s.root.clone()))?;
        }
        for (i, c) in self.contents.iter().enumerate() {
            // A glob source is checked by its folder; the matches are found at ingestion.
            let p = if c.source.written.contains('*') {
                match c.source.resolved.parent() {
                    Some(parent) => {
                        InputPath { written: c.source.written.clone(), resolved: parent.to_path_buf() }
                    }
                    None => continue,
                }
            } else {
                c.source.clone()
            };
            check(&format!("contents[{i}]."), "source", &Some(p))?;
        }
        Ok(())
    }

    /// Every input file the spec names that exists as a regular file (for the manifest).
    pub fn input_files(&self) -> Vec<&InputPath> {
        let mut v: Vec<&InputPath> = Vec::new();
        v.extend(self.efi_firmware.iter());
        v.extend(self.efi_variables.iter());
        v.extend(self.config_file.iter());
        if let Some(s) = &self.system {
            v.push(&s.root);
        }
        v.extend(self.contents.iter().map(|c| &c.source));
        v
    }
}
