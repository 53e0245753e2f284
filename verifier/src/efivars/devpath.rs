//! EFI load options (`Boot####`) and device paths, decoded to the UEFI text form, e.g.
//! `HD(1,GPT,1C06F03B-704E-4657-B9CD-681A087A2FDC,0x4000,0x7C000)/\EFI\BOOT\BOOTX64.EFI`,
//! upper-case hex as edk2 prints it (`BdsDxe: loading Boot0000 ... from HD(...)`), so a
//! listing can be compared with the firmware's own log.
//!
//! UEFI spec 3.1.3: EFI_LOAD_OPTION is Attributes u32, FilePathListLength u16, Description
//! (NUL-terminated UCS-2), FilePathList (FilePathListLength bytes of device path), then
//! optional data up to the end of the variable. UEFI spec 10.3: every device path node starts
//! with Type u8, SubType u8, Length u16 (the whole node); a path ends with the node 0x7f/0xff.
//! Nodes decoded here: hard drive (4/1), file path (4/4), end (0x7f/0xff, 0x7f/0x01); others
//! print as `Path(type,subtype,hex)`, as the specification's text form does.

use super::ucs2z;
use crate::bytes::Le;
use crate::guid::Guid;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "node", rename_all = "snake_case")]
pub enum Node {
    HardDrive {
        partition: u32,
        start: u64,
        size: u64,
        signature: HdSignature,
    },
    FilePath {
        path: String,
    },
    /// End of this instance (0x7f/0x01): another path follows.
    EndInstance,
    Other {
        node_type: u8,
        sub_type: u8,
        data: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HdSignature {
    /// Partition format 2 (GPT), signature type 2 (GUID).
    Gpt {
        guid: Guid,
    },
    /// Partition format 1 (MBR), signature type 1 (32-bit disk signature).
    Mbr {
        signature: u32,
    },
    Other {
        format: u8,
        signature_type: u8,
        raw: [u8; 16],
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DevPathError {
    #[error("device path node at byte {at} has length {len}, shorter than 4 or past the path's end")]
    NodeLength { at: usize, len: u16 },
    #[error("device path node at byte {at} ({kind}) has length {len}, expected {expected}")]
    NodeSize { at: usize, kind: &'static str, len: u16, expected: &'static str },
    #[error("file path node at byte {at} is not a NUL-terminated UCS-2 string")]
    FilePath { at: usize },
    #[error("device path has no end node")]
    NoEnd,
    #[error("device path has {extra} bytes after its end node")]
    TrailingBytes { extra: usize },
    #[error("load option is {len} bytes, shorter than its header, description and {path_len}-byte path")]
    LoadOptionLength { len: usize, path_len: u16 },
    #[error("load option description is not a NUL-terminated UCS-2 string")]
    Description,
}

/// Decodes one whole device path (which must end with its end node and nothing after it).
pub fn parse_path(p: &[u8]) -> Result<Vec<Node>, DevPathError> {
    let b = Le(p);
    let mut nodes = Vec::new();
    let mut at = 0;
    while at + 4 <= p.len() {
        let (t, st, len) = (b.u8(at), b.u8(at + 1), b.u16(at + 2));
        let l = usize::from(len);
        if l < 4 || at + l > p.len() {
            return Err(DevPathError::NodeLength { at, len });
        }
        let body = &p[at + 4..at + l];
        match (t, st) {
            (0x7f, 0xff) => {
                if at + l != p.len() {
                    return Err(DevPathError::TrailingBytes { extra: p.len() - at - l });
                }
                return Ok(nodes);
            }
            (0x7f, 0x01) => nodes.push(Node::EndInstance),
            (4, 1) => {
                if l != 42 {
                    return Err(DevPathError::NodeSize { at, kind: "hard drive", len, expected: "42" });
                }
                let n = Le(body);
                let raw: [u8; 16] = n.array(20);
                let signature = match (n.u8(36), n.u8(37)) {
                    (2, 2) => HdSignature::Gpt { guid: Guid::from_disk(raw) },
                    (1, 1) => HdSignature::Mbr { signature: n.u32(20) },
                    (format, signature_type) => HdSignature::Other { format, signature_type, raw },
                };
                nodes.push(Node::HardDrive {
                    partition: n.u32(0),
                    start: n.u64(4),
                    size: n.u64(12),
                    signature,
                });
            }
            (4, 4) => {
                let path = ucs2z(body).ok_or(DevPathError::FilePath { at })?;
                nodes.push(Node::FilePath { path });
            }
            (node_type, sub_type) => nodes.push(Node::Other { node_type, sub_type, data: body.to_vec() }),
        }
        at += l;
    }
    Err(DevPathError::NoEnd)
}

/// The UEFI text form of a device path (the end node is not printed).
pub fn path_text(nodes: &[Node]) -> String {
    let parts: Vec<String> = nodes
        .iter()
        .map(|n| match n {
            Node::HardDrive { partition, start, size, signature } => {
                let sig = match signature {
                    HdSignature::Gpt { guid } => format!("GPT,{guid}"),
                    HdSignature::Mbr { signature } => format!("MBR,0x{signature:08X}"),
                    HdSignature::Other { format, signature_type, raw } => {
                        format!("{format},{signature_type},{}", hex(raw))
                    }
                };
                format!("HD({partition},{sig},0x{start:X},0x{size:X})")
            }
            Node::FilePath { path } => path.clone(),
            Node::EndInstance => ",".to_string(),
            Node::Other { node_type, sub_type, data } => {
                format!("Path({node_type},{sub_type},{})", hex(data))
            }
        })
        .collect();
    parts.join("/").replace("/,/", ",")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// A decoded EFI_LOAD_OPTION.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoadOption {
    pub attributes: u32,
    pub description: String,
    pub path: Vec<Node>,
    /// The path's text form.
    pub path_text: String,
    pub optional_data: Vec<u8>,
}

impl LoadOption {
    /// LOAD_OPTION_ACTIVE.
    pub fn active(&self) -> bool {
        self.attributes & 1 != 0
    }
}

pub fn parse_load_option(d: &[u8]) -> Result<LoadOption, DevPathError> {
    let b = Le(d);
    let path_len = b.u16(4);
    if d.len() < 6 {
        return Err(DevPathError::LoadOptionLength { len: d.len(), path_len });
    }
    // The description ends at the first NUL UCS-2 unit after the 6-byte header.
    let nul = (6..d.len().saturating_sub(1))
        .step_by(2)
        .find(|&o| b.u16(o) == 0)
        .ok_or(DevPathError::Description)?;
    let description = ucs2z(&d[6..nul + 2]).ok_or(DevPathError::Description)?;
    let path_start = nul + 2;
    let path_end = path_start + usize::from(path_len);
    if path_end > d.len() {
        return Err(DevPathError::LoadOptionLength { len: d.len(), path_len });
    }
    let path = parse_path(&d[path_start..path_end])?;
    Ok(LoadOption {
        attributes: b.u32(0),
        description,
        path_text: path_text(&path),
        path,
        optional_data: d[path_end..].to_vec(),
    })
}
