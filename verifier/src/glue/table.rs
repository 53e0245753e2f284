//! The partition table section of an inspection: the table's report entry and the regions of
//! the MBR, the GPT headers and entry arrays, and every partition's extent.

use crate::bytes::ReadAt;
use crate::disk::{Disk, Layout as DiskLayout};
use crate::expect::TableKind;
use crate::fields;
use crate::regions::{Label, Records, Region, RegionMapBuilder};
use crate::report::{Finding, PartitionInfo, Severity, VerifyReport};

/// The partition table: report section and regions (MBR, GPT headers and entry arrays,
/// every partition's extent as a fallback label).
pub(super) fn table_section<'a>(
    d: &Disk<'a, dyn ReadAt + 'a>,
    rep: &mut VerifyReport,
    map: &mut RegionMapBuilder,
) {
    rep.table.kind = match d.layout {
        DiskLayout::Gpt => TableKind::Gpt,
        DiskLayout::Mbr => TableKind::Mbr,
        DiskLayout::None => TableKind::None,
    };
    rep.table.mbr_signature = d.mbr.as_ref().map(|m| m.unique_mbr_disk_signature);
    rep.table.boot_code = d.mbr.as_ref().map(|m| match &m.boot_code {
        crate::mbr::BootCode::Empty => "empty".to_string(),
        crate::mbr::BootCode::Grub { kernel_sector, .. } => {
            format!("grub boot.img, core.img at sector {kernel_sector}")
        }
        crate::mbr::BootCode::Other { sha256 } => format!("other (sha256 {sha256})"),
    });
    if d.mbr.is_some() {
        map.add(Region::structure(0, None, &fields::MBR));
    }
    if let Some(g) = &d.gpt {
        rep.table.disk_guid = Some(g.primary.disk_guid.to_string());
        rep.table.first_usable_lba = Some(g.primary.first_usable_lba);
        rep.table.last_usable_lba = Some(g.primary.last_usable_lba);
        let ss = g.sector_size;
        let mut headers = vec![("primary", &g.primary)];
        headers.extend(g.backup.as_ref().map(|b| ("backup", b)));
        for (which, h) in headers {
            map.add(
                Region::structure(h.my_lba.saturating_mul(ss), None, &fields::GPT_HEADER)
                    .with_label(Label::new(None, format!("gpt header ({which})"))),
            );
            map.add(Region::array(
                h.partition_entry_lba.saturating_mul(ss),
                u64::from(h.number_of_partition_entries),
                u64::from(h.size_of_partition_entry),
                Label::new(None, format!("gpt entry array ({which})")),
                Records { table: &fields::GPT_ENTRY, first: 1, what: "entry" },
            ));
        }
    }
    if d.layout == DiskLayout::None {
        rep.findings.extend(d.findings.iter().map(from_table_finding));
        return;
    }
    for p in &d.partitions {
        let ss = d.sector_size;
        let entry = d.gpt.as_ref().and_then(|g| g.entries.iter().find(|e| e.index == p.number));
        let record = d.mbr.as_ref().and_then(|m| m.partitions().find(|r| r.number == p.number));
        let (start_lba, sectors) = match (entry, record) {
            (Some(e), _) => (e.starting_lba, e.sectors()),
            (None, Some(r)) if d.layout == DiskLayout::Mbr => (r.starting_lba, u64::from(r.size_in_lba)),
            _ => (p.start / ss, p.len / ss),
        };
        rep.table.partitions.push(PartitionInfo {
            number: p.number,
            start_lba,
            sectors,
            type_id: match (p.type_guid, p.mbr_type) {
                (Some(g), _) => g.to_string(),
                (None, Some(t)) => format!("{t:#04x}"),
                (None, None) => String::new(),
            },
            type_name: p.type_name.unwrap_or_default().to_string(),
            name: p.name.clone(),
            guid: p.unique_guid.map(|g| g.to_string()),
            bootable: p.bootable,
            attributes: entry.map_or(0, |e| e.attributes.raw),
        });
        map.add(Region::new(p.start, p.len, Label::new(Some(p.number), "partition data")));
    }
    rep.findings.extend(d.findings.iter().map(from_table_finding));
}

pub(super) fn from_table_finding(f: &crate::lints::Finding) -> Finding {
    let severity = match f.severity {
        crate::lints::Severity::Error => Severity::Error,
        crate::lints::Severity::Warning => Severity::Warning,
        crate::lints::Severity::Info => Severity::Info,
    };
    Finding::new(severity, f.code, f.message.clone(), Some(f.location.to_string()))
}
