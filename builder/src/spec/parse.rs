//! Reading a spec: the file (TOML or JSON) into one generic tree, then every table's fields,
//! with the seed's defaults.

use super::keys::{CONTENTS_KEYS, SYSTEM_KEYS, TOP_KEYS, normalise};
use super::table::{Table, as_table};
use super::*;

impl Spec {
    /// Reads a spec file (`.toml` or `.json`), taking SOURCE_DATE_EPOCH from the environment
    /// when the spec does not set it.
    pub fn load(path: &Path) -> Result<Spec, SpecError> {
        let env = std::env::var("SOURCE_DATE_EPOCH").ok();
        Spec::load_with_env(path, env.as_deref())
    }

    /// [`Spec::load`] with the SOURCE_DATE_EPOCH environment value passed in (for tests).
    pub fn load_with_env(path: &Path, env_epoch: Option<&str>) -> Result<Spec, SpecError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| SpecError::Read { path: path.to_path_buf(), error })?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        let value = match ext.as_str() {
            "json" => serde_json::from_str::<Value>(&text).map_err(|e| SpecError::Syntax {
                path: path.to_path_buf(),
                format: "JSON",
                message: e.to_string(),
            })?,
            "toml" => {
                let t: toml::Table = toml::from_str(&text).map_err(|e| SpecError::Syntax {
                    path: path.to_path_buf(),
                    format: "TOML",
                    message: e.to_string().trim_end().to_string(),
                })?;
                serde_json::to_value(t).map_err(|e| SpecError::Syntax {
                    path: path.to_path_buf(),
                    format: "TOML",
                    message: e.to_string(),
                })?
            }
            _ => return Err(SpecError::UnknownFormat { path: path.to_path_buf(), ext }),
        };
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut spec = Spec::from_value(value, &base, env_epoch)?;
        spec.path = path.to_path_buf();
        spec.check_files()?;
        Ok(spec)
    }

    /// Builds a spec from a parsed document. Checks everything except that files exist.
    pub fn from_value(value: Value, base: &Path, env_epoch: Option<&str>) -> Result<Spec, SpecError> {
        let (map, written) = normalise(as_table(value, "", "the document")?, TOP_KEYS, "")?;
        let mut t = Table { map, written, location: "" };

        let layout = t.choice("partition_table_type", &Layout::ALL.map(|l| (l.name(), l)), Layout::Legacy)?;
        let disk_size = match t.map.remove("disk_size") {
            None => DiskSize::Auto,
            Some(Value::String(s)) if s == "auto" => DiskSize::Auto,
            Some(Value::Number(n)) => match n.as_u64() {
                Some(m) if m > 0 => DiskSize::Mib(m),
                _ => {
                    return Err(t.invalid(
                        "disk_size",
                        format!("is {n}: it must be \"auto\" or a positive whole number of MiB"),
                    ));
                }
            },
            // The seed runs `truncate -s ${diskSize}M`: bare digits are MiB, as an integer is.
            Some(Value::String(s))
                if !s.trim().is_empty() && s.trim().bytes().all(|b| b.is_ascii_digit()) =>
            {
                match s.trim().parse::<u64>() {
                    Ok(m) if m > 0 => DiskSize::Mib(m),
                    _ => {
                        return Err(t.invalid(
                            "disk_size",
                            format!("is \"{s}\": it must be \"auto\" or a positive whole number of MiB"),
                        ));
                    }
                }
            }
            Some(Value::String(s)) => {
                let bytes = size::parse_iec(&s).map_err(|error| SpecError::BadSize {
                    location: String::new(),
                    key: t.name("disk_size"),
                    value: format!("\"{s}\""),
                    error,
                })?;
                if bytes == 0 || bytes % (1 << 20) != 0 {
                    return Err(t.invalid("disk_size", format!("is \"{s}\" = {bytes} bytes: it must be a positive whole number of MiB (the seed runs `truncate -s <diskSize>M`)")));
                }
                DiskSize::Mib(bytes >> 20)
            }
            Some(v) => {
                return Err(
                    t.invalid("disk_size", format!("must be \"auto\" or a whole number of MiB, not {v}"))
                );
            }
        };
        let additional_space = t.iec_size("additional_space", "512M")?;
        let boot_size = t.iec_size("boot_size", "256M")?;
        let install_boot_loader: Option<bool> = t.get("install_boot_loader", "true or false")?;
        let touch_efi_vars = t.bool("touch_efi_vars", false)?;
        let efi_firmware = t.path("efi_firmware", base)?;
        let efi_variables = t.path("efi_variables", base)?;
        let fs_type = t.string("fs_type")?.unwrap_or_else(|| "ext4".into());
        let label: Option<String> = t.string("label")?;
        let config_file = t.path("config_file", base)?;
        let post_vm = t.string("post_vm")?.unwrap_or_default();
        let mem_size: u64 = t.get("mem_size", "a whole number of MiB")?.unwrap_or(1024);
        let only_nix_store = t.bool("only_nix_store", false)?;
        let name = t.string("name")?.unwrap_or_else(|| "nixos-disk-image".into());
        let format = t.choice("format", &Format::ALL, Format::Raw)?;
        let base_name = t.string("base_name")?.unwrap_or_else(|| "nixos".into());
        let deterministic = t.bool("deterministic", true)?;
        let root_gpuid = t.guid("root_gpuid")?.unwrap_or(SEED_ROOT_GPUID);
        // A missing rootFSUID defaults to rootGPUID (for ext4); an explicit null stays null.
        let root_fsuid = match t.map.get("root_fsuid") {
            Some(Value::Null) => {
                t.map.remove("root_fsuid");
                None
            }
            _ => Some(t.guid("root_fsuid")?.unwrap_or(root_gpuid)),
        };
        let copy_channel = t.bool("copy_channel", true)?;
        let additional_paths: Vec<String> =
            t.get("additional_paths", "a list of strings")?.unwrap_or_default();
        let timestamps = t.choice(
            "timestamps",
            &[
                ("clamp", Timestamps::Clamp),
                ("source-date-epoch", Timestamps::SourceDateEpoch),
                ("keep", Timestamps::Keep),
            ],
            Timestamps::Clamp,
        )?;
        let owners = t.choice("owners", &[("keep", Owners::Keep), ("root", Owners::Root)], Owners::Keep)?;
        let auto_sizing = t.choice(
            "auto_sizing",
            &[("exact", AutoSizing::Exact), ("seed", AutoSizing::Seed)],
            AutoSizing::Exact,
        )?;
        let disk_guid = t.guid("disk_guid")?.unwrap_or(SEED_DISK_GUID);
        let vpc_subformat = t.choice(
            "vpc_subformat",
            &[("dynamic", VpcSubformat::Dynamic), ("fixed", VpcSubformat::Fixed)],
            VpcSubformat::Dynamic,
        )?;
        let package_root = t.path("package_root", base)?;
        let spec_epoch = match t.map.remove("source_date_epoch") {
            None => None,
            Some(Value::Number(n)) => Some(n.as_i64().ok_or_else(|| {
                t.invalid(
                    "source_date_epoch",
                    format!("is {n}: it must be a whole number of seconds since 1970"),
                )
            })?),
            Some(Value::String(s)) => Some(parse_epoch(&s).ok_or_else(|| {
                t.invalid(
                    "source_date_epoch",
                    format!("is \"{s}\": it must be a whole number of seconds since 1970"),
                )
            })?),
            Some(v) => {
                return Err(t.invalid(
                    "source_date_epoch",
                    format!("must be a whole number of seconds since 1970, not {v}"),
                ));
            }
        };
        let source_date_epoch = match (spec_epoch, env_epoch) {
            (Some(value), _) => SourceDateEpoch { value, origin: EpochOrigin::Spec },
            (None, Some(s)) => SourceDateEpoch {
                value: parse_epoch(s).ok_or_else(|| SpecError::Invalid {
                    location: String::new(),
                    key: "$SOURCE_DATE_EPOCH".into(),
                    message: format!(
                        "is \"{s}\": it must be a whole number of seconds since 1970 (unset it or fix it)"
                    ),
                })?,
                origin: EpochOrigin::Environment,
            },
            (None, None) => {
                SourceDateEpoch { value: DEFAULT_SOURCE_DATE_EPOCH, origin: EpochOrigin::Default }
            }
        };

        let system = match t.map.remove("system") {
            None => None,
            Some(v) => Some(parse_system(as_table(v, "", "system")?, base)?),
        };
        let contents = match t.map.remove("contents") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| parse_content(v, i, base))
                .collect::<Result<Vec<_>, _>>()?,
            Some(v) => {
                return Err(t.invalid(
                    "contents",
                    format!("must be a list of tables ([[contents]] in TOML), not {v}"),
                ));
            }
        };
        debug_assert!(
            t.map.is_empty(),
            "every normalised key is read: {:?}",
            t.map.keys().collect::<Vec<_>>()
        );

        let label = label.unwrap_or_else(|| if only_nix_store { "nix-store".into() } else { "nixos".into() });
        // The seed's default is true, but without a system there is nothing to boot: only an
        // explicit `installBootLoader = true` without a system table is an error.
        let install_boot_loader = match (install_boot_loader, &system) {
            (Some(true), None) => {
                return Err(SpecError::Assertion(
                    "installBootLoader = true needs a [system] table (a root tree with a kernel): add one, or set installBootLoader = false".into(),
                ));
            }
            (Some(b), _) => b,
            (None, s) => s.is_some(),
        };

        let spec = Spec {
            path: PathBuf::new(),
            base_dir: base.to_path_buf(),
            partition_table_type: layout,
            disk_size,
            additional_space,
            boot_size,
            contents,
            install_boot_loader,
            touch_efi_vars,
            efi_firmware,
            efi_variables,
            fs_type,
            label,
            config_file,
            post_vm,
            mem_size,
            only_nix_store,
            name,
            format,
            base_name,
            deterministic,
            root_gpuid,
            root_fsuid,
            copy_channel,
            additional_paths,
            system,
            source_date_epoch,
            timestamps,
            owners,
            auto_sizing,
            disk_guid,
            vpc_subformat,
            package_root,
        };
        spec.check_assertions()?;
        Ok(spec)
    }
}

fn parse_epoch(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().enumerate().all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-')) {
        return None;
    }
    s.parse().ok()
}

fn parse_system(map: Map<String, Value>, base: &Path) -> Result<System, SpecError> {
    let (map, written) = normalise(map, SYSTEM_KEYS, "system.")?;
    let mut t = Table { map, written, location: "system." };
    let root = t
        .path("root", base)?
        .ok_or_else(|| t.invalid("root", "is missing: name the root tree, a directory or a tar archive"))?;
    let kernel = t.string("kernel")?;
    let initrd = t.string("initrd")?;
    let kernel_params: Vec<String> = t.get("kernel_params", "a list of strings")?.unwrap_or_default();
    if let Some(p) = kernel_params.iter().find(|p| p.starts_with("root=")) {
        return Err(t.invalid(
            "kernel_params",
            format!("holds `{p}`: reprodisk adds root= itself from the deterministic IDs, remove it"),
        ));
    }
    let bootloader = t.choice(
        "bootloader",
        &[("auto", Bootloader::Auto), ("grub", Bootloader::Grub), ("systemd-boot", Bootloader::SystemdBoot)],
        Bootloader::Auto,
    )?;
    let root_device = t.choice(
        "root_device",
        &[("uuid", RootDevice::Uuid), ("partuuid", RootDevice::Partuuid)],
        RootDevice::Uuid,
    )?;
    Ok(System { root, kernel, initrd, kernel_params, bootloader, root_device })
}

fn parse_content(v: Value, i: usize, base: &Path) -> Result<ContentEntry, SpecError> {
    let location = format!("contents[{i}].");
    let (map, written) = normalise(as_table(v, "", &format!("contents[{i}]"))?, CONTENTS_KEYS, &location)?;
    let mut t = Table { map, written, location: &location };
    let source = t
        .path("source", base)?
        .ok_or_else(|| t.invalid("source", "is missing: name the file or folder to copy"))?;
    let target = t.string("target")?.ok_or_else(|| {
        t.invalid("target", "is missing: name where the file goes in the image, e.g. \"/etc/motd\"")
    })?;
    let mode = t.string("mode")?;
    let user = t.string("user")?;
    let group = t.string("group")?;
    Ok(ContentEntry { source, target, mode, user, group })
}
