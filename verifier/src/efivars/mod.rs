//! Reader of edk2 (OVMF) variable stores such as `efi-vars.fd`: the firmware volume header,
//! the variable store header and every variable with its state, attributes, GUID, name and
//! data; load options and device paths decoded to text in [`devpath`], the `verify` listing in
//! [`report`].
//!
//! Written from edk2's `MdePkg/Include/Pi/PiFirmwareVolume.h` and
//! `MdeModulePkg/Include/Guid/VariableFormat.h` and the UEFI specification (3.1.3 load
//! options, 10.3 device path nodes), not from the builder's writer.
//!
//! ```text
//! firmware volume header    0x10 FileSystemGuid, 0x20 FvLength u64, 0x28 "_FVH",
//!                           0x2c Attributes u32, 0x30 HeaderLength u16, 0x32 Checksum u16
//!                           (the header's u16 words sum to 0), 0x37 Revision u8,
//!                           0x38 block map {NumBlocks u32, Length u32}..., {0, 0}
//! variable store header     at HeaderLength: Signature GUID, Size u32 (from the store
//!                           header to the store's end), Format u8 (0x5a), State u8 (0xfe)
//! variables                 4-byte aligned from store + 0x1c, until StartId != 0x55aa:
//!   authenticated header    StartId u16, State u8, Reserved u8, Attributes u32,
//!   (0x3c bytes)            MonotonicCount u64, TimeStamp EFI_TIME, PubKeyIndex u32,
//!                           NameSize u32, DataSize u32, VendorGuid; then name (UCS-2, NUL),
//!                           data
//! ```
//!
//! The plain (non-authenticated) store format, whose variable header lacks MonotonicCount,
//! TimeStamp and PubKeyIndex (0x20 bytes), is read too.

pub mod devpath;
pub mod report;

use crate::bytes::Le;
use crate::guid::Guid;

/// EFI_SYSTEM_NV_DATA_FV_GUID.
pub const NV_DATA_FV: Guid =
    guid(0xfff12b8d, 0x7696, 0x4c8b, [0xa9, 0x85, 0x27, 0x47, 0x07, 0x5b, 0x4f, 0x50]);
/// EFI_AUTHENTICATED_VARIABLE_GUID.
pub const AUTHENTICATED_STORE: Guid =
    guid(0xaaf32c78, 0x947b, 0x439a, [0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92]);
/// EFI_VARIABLE_GUID.
pub const PLAIN_STORE: Guid =
    guid(0xddcf3616, 0x3275, 0x4164, [0x98, 0xb6, 0xfe, 0x85, 0x70, 0x7f, 0xfe, 0x7d]);
/// EFI_GLOBAL_VARIABLE.
pub const GLOBAL_VARIABLE: Guid =
    guid(0x8be4df61, 0x93ca, 0x11d2, [0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c]);

const fn guid(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Guid {
    let a = d1.to_be_bytes();
    let b = d2.to_be_bytes();
    let c = d3.to_be_bytes();
    Guid([
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5], d4[6],
        d4[7],
    ])
}

/// What is wrong with a variable store. Offsets are bytes from the start of the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VarsError {
    #[error("efi variable store: the file has {len} bytes, a firmware volume header needs {needed}")]
    Truncated { len: u64, needed: u64 },
    #[error("efi variable store: no `_FVH` signature at byte 0x28 (found {found:02x?})")]
    FvSignature { found: [u8; 4] },
    #[error("efi variable store: firmware volume file system guid is {found}, expected {NV_DATA_FV}")]
    FvFileSystem { found: Guid },
    #[error(
        "efi variable store: firmware volume header length {value:#x} is not even, below 0x48 or past the file"
    )]
    FvHeaderLength { value: u16 },
    #[error(
        "efi variable store: firmware volume length {value:#x} is past the end of the {file_len:#x}-byte file"
    )]
    FvLength { value: u64, file_len: u64 },
    #[error("efi variable store: firmware volume header words sum to {sum:#06x}, expected 0 (bad checksum)")]
    FvChecksum { sum: u16 },
    #[error("efi variable store: the block map covers {covered:#x} bytes, the volume has {fv_length:#x}")]
    FvBlockMap { covered: u64, fv_length: u64 },
    #[error(
        "efi variable store: store header at byte {offset:#x} is signed {found}, not a variable store guid"
    )]
    StoreSignature { offset: u64, found: Guid },
    #[error(
        "efi variable store: store at byte {offset:#x} claims {size:#x} bytes, the volume leaves {room:#x}"
    )]
    StoreSize { offset: u64, size: u32, room: u64 },
    #[error("efi variable store: store format is {found:#04x}, expected 0x5a")]
    StoreFormat { found: u8 },
    #[error("efi variable store: store state is {found:#04x}, expected 0xfe (healthy)")]
    StoreState { found: u8 },
    #[error(
        "efi variable store: variable at byte {offset:#x} has state {state:#04x}, which no edk2 update produces"
    )]
    VariableState { offset: u64, state: u8 },
    #[error(
        "efi variable store: variable at byte {offset:#x} ({name_size}-byte name, {data_size}-byte data) runs past the store end {store_end:#x}"
    )]
    VariableOverrun { offset: u64, name_size: u32, data_size: u32, store_end: u64 },
    #[error("efi variable store: variable at byte {offset:#x}: name is not one NUL-terminated UCS-2 string")]
    VariableName { offset: u64 },
}

/// A variable's state byte, decoded (flash clears bits as an update goes on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VarState {
    /// 0x7f: the header was written, the data was not: not a variable.
    HeaderValidOnly,
    /// 0x3f: live.
    Added,
    /// 0x3e: being replaced; live only while no added copy exists.
    InDeletedTransition,
    /// 0x3d, 0x3c, 0x7d, 0x7c: obsolete.
    Deleted,
}

impl VarState {
    fn decode(state: u8) -> Option<VarState> {
        Some(match state {
            0x7f => VarState::HeaderValidOnly,
            0x3f => VarState::Added,
            0x3e => VarState::InDeletedTransition,
            0x3d | 0x3c | 0x7d | 0x7c => VarState::Deleted,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            VarState::HeaderValidOnly => "header-valid-only",
            VarState::Added => "added",
            VarState::InDeletedTransition => "in-deleted-transition",
            VarState::Deleted => "deleted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FvHeader {
    pub file_system_guid: Guid,
    pub fv_length: u64,
    pub attributes: u32,
    pub header_length: u16,
    pub checksum: u16,
    pub revision: u8,
    /// (NumBlocks, Length) runs.
    pub block_map: Vec<(u32, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoreHeader {
    pub offset: u64,
    pub authenticated: bool,
    pub size: u32,
    pub format: u8,
    pub state: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Variable {
    /// Offset of the header in the file.
    pub offset: u64,
    pub state: VarState,
    pub attributes: u32,
    /// Zero in a plain store.
    pub monotonic_count: u64,
    /// The raw EFI_TIME (16 bytes), zero in a plain store.
    pub timestamp: [u8; 16],
    pub pub_key_index: u32,
    pub guid: Guid,
    pub name: String,
    pub data: Vec<u8>,
}

impl Variable {
    /// Whether the firmware would return this copy (see [`VarState`]).
    pub fn is_live(&self, all: &[Variable]) -> bool {
        match self.state {
            VarState::Added => true,
            VarState::InDeletedTransition => {
                !all.iter().any(|v| v.state == VarState::Added && v.name == self.name && v.guid == self.guid)
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VarStore {
    pub fv: FvHeader,
    pub store: StoreHeader,
    pub variables: Vec<Variable>,
    /// Offset just past the last variable (aligned): where the next one would go.
    pub end_of_variables: u64,
    /// Bytes from `end_of_variables` to the end of the store.
    pub free_bytes: u64,
    /// The first byte after the variables that is not erased (0xff), if any.
    pub not_erased_at: Option<u64>,
    /// The fault-tolerant-write working block, when one follows the store.
    pub ftw: Option<FtwState>,
}

/// The FTW working block (edk2 `SystemNvDataGuid.h`, `WorkingBlockHeader.h`): a 0x20-byte
/// header (signature GUID, Crc u32, flags u8 at 0x14, WriteQueueSize u64 at 0x18) and a queue
/// of write headers (0x28 bytes: flags u8 with HeaderAllocated bit 0, Complete bit 2, both
/// set by clearing the bit; NumberOfWrites u64 at 0x18, PrivateDataSize u64 at 0x20), each
/// followed by NumberOfWrites records of 0x28 + PrivateDataSize bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FtwState {
    pub offset: u64,
    /// Write headers in the queue, finished or not.
    pub writes: u32,
    /// The first write header that is allocated and not complete: edk2 finishes that write
    /// at boot by copying the spare area over the store, so this store is not what the
    /// firmware will use.
    pub pending_at: Option<u64>,
}

/// EDKII_WORKING_BLOCK_SIGNATURE_GUID (older builds sign it with EFI_SYSTEM_NV_DATA_FV_GUID).
pub const FTW_WORKING_BLOCK: Guid =
    guid(0x9e58292b, 0x7c68, 0x497d, [0xa0, 0xce, 0x65, 0x00, 0xfd, 0x9f, 0x1b, 0x95]);

/// Finds the working block on the 4 KiB boundaries between the store and the volume's end.
fn ftw_state(file: &[u8], store_end: usize, fv_len: usize) -> Option<FtwState> {
    let b = Le(file);
    let start = store_end.div_ceil(0x1000) * 0x1000;
    let wb = (start..fv_len.saturating_sub(0x20))
        .step_by(0x1000)
        .find(|&o| matches!(Guid::from_disk(b.array(o)), g if g == FTW_WORKING_BLOCK || g == NV_DATA_FV))?;
    let queue = wb + 0x20;
    let end = usize::try_from(b.u64(wb + 0x18))
        .ok()
        .and_then(|q| queue.checked_add(q))
        .map_or(fv_len, |e| e.min(fv_len));
    let mut state = FtwState { offset: wb as u64, writes: 0, pending_at: None };
    let mut at = queue;
    while at + 0x28 <= end && b.u8(at) != 0xff {
        state.writes += 1;
        let flags = b.u8(at);
        if flags & 0x1 == 0 && flags & 0x4 != 0 && state.pending_at.is_none() {
            state.pending_at = Some(at as u64);
        }
        let each = 0x28u64.saturating_add(b.u64(at + 0x20));
        let len = b.u64(at + 0x18).saturating_mul(each).saturating_add(0x28);
        match usize::try_from(len).ok().and_then(|l| at.checked_add(l)) {
            Some(n) => at = n,
            None => break,
        }
    }
    Some(state)
}

/// Whether `head` (the first bytes of a file) starts like a variable firmware volume.
pub fn looks_like(head: &[u8]) -> bool {
    let b = Le(head);
    b.bytes(0x28, 4) == b"_FVH" && Guid::from_disk(b.array(0x10)) == NV_DATA_FV
}

const AUTH_HEADER: usize = 0x3c;
const PLAIN_HEADER: usize = 0x20;

fn align4(x: usize) -> usize {
    x.div_ceil(4) * 4
}

/// Reads and checks a whole variable store file.
pub fn parse(file: &[u8]) -> Result<VarStore, VarsError> {
    let b = Le(file);
    let len = file.len() as u64;
    if file.len() < 0x48 {
        return Err(VarsError::Truncated { len, needed: 0x48 });
    }
    let found = b.array::<4>(0x28);
    if &found != b"_FVH" {
        return Err(VarsError::FvSignature { found });
    }
    let fs = Guid::from_disk(b.array(0x10));
    if fs != NV_DATA_FV {
        return Err(VarsError::FvFileSystem { found: fs });
    }
    let header_length = b.u16(0x30);
    let hl = usize::from(header_length);
    if !hl.is_multiple_of(2) || hl < 0x48 || hl > file.len() {
        return Err(VarsError::FvHeaderLength { value: header_length });
    }
    let fv_length = b.u64(0x20);
    if fv_length > len {
        return Err(VarsError::FvLength { value: fv_length, file_len: len });
    }
    let sum = (0..hl).step_by(2).fold(0u16, |s, o| s.wrapping_add(b.u16(o)));
    if sum != 0 {
        return Err(VarsError::FvChecksum { sum });
    }
    let mut block_map = Vec::new();
    let mut covered = 0u64;
    for o in (0x38..hl.saturating_sub(7)).step_by(8) {
        let (n, l) = (b.u32(o), b.u32(o + 4));
        if n == 0 && l == 0 {
            break;
        }
        block_map.push((n, l));
        covered = covered.saturating_add(u64::from(n) * u64::from(l));
    }
    if covered != fv_length {
        return Err(VarsError::FvBlockMap { covered, fv_length });
    }
    let fv = FvHeader {
        file_system_guid: fs,
        fv_length,
        attributes: b.u32(0x2c),
        header_length,
        checksum: b.u16(0x32),
        revision: b.u8(0x37),
        block_map,
    };

    // The store header follows the volume header.
    let so = hl;
    if file.len() < so + 0x1c {
        return Err(VarsError::Truncated { len, needed: (so + 0x1c) as u64 });
    }
    let sig = Guid::from_disk(b.array(so));
    let authenticated = match sig {
        s if s == AUTHENTICATED_STORE => true,
        s if s == PLAIN_STORE => false,
        found => return Err(VarsError::StoreSignature { offset: so as u64, found }),
    };
    let size = b.u32(so + 0x10);
    let room = fv_length.saturating_sub(so as u64);
    if u64::from(size) > room || (size as usize) < 0x1c {
        return Err(VarsError::StoreSize { offset: so as u64, size, room });
    }
    let store = StoreHeader {
        offset: so as u64,
        authenticated,
        size,
        format: b.u8(so + 0x14),
        state: b.u8(so + 0x15),
    };
    if store.format != 0x5a {
        return Err(VarsError::StoreFormat { found: store.format });
    }
    if store.state != 0xfe {
        return Err(VarsError::StoreState { found: store.state });
    }

    let end = so + size as usize;
    let header = if authenticated { AUTH_HEADER } else { PLAIN_HEADER };
    let mut variables = Vec::new();
    let mut at = align4(so + 0x1c);
    while at + header <= end && b.u16(at) == 0x55aa {
        let offset = at as u64;
        let state_byte = b.u8(at + 2);
        let state =
            VarState::decode(state_byte).ok_or(VarsError::VariableState { offset, state: state_byte })?;
        let attributes = b.u32(at + 4);
        let (monotonic_count, timestamp, pub_key_index, sizes) = if authenticated {
            (b.u64(at + 8), b.array::<16>(at + 0x10), b.u32(at + 0x20), at + 0x24)
        } else {
            (0, [0; 16], 0, at + 8)
        };
        let (name_size, data_size) = (b.u32(sizes), b.u32(sizes + 4));
        let guid = Guid::from_disk(b.array(sizes + 8));
        let total = header as u64 + u64::from(name_size) + u64::from(data_size);
        if offset + total > end as u64 {
            return Err(VarsError::VariableOverrun { offset, name_size, data_size, store_end: end as u64 });
        }
        let name_bytes = b.bytes(at + header, name_size as usize);
        let data = b.bytes(at + header + name_size as usize, data_size as usize).to_vec();
        let name = ucs2z(name_bytes).ok_or(VarsError::VariableName { offset })?;
        variables.push(Variable {
            offset,
            state,
            attributes,
            monotonic_count,
            timestamp,
            pub_key_index,
            guid,
            name,
            data,
        });
        at = align4(at + total as usize);
    }
    let end_of_variables = at.min(end);
    let not_erased_at =
        file[end_of_variables..end].iter().position(|&x| x != 0xff).map(|p| (end_of_variables + p) as u64);
    Ok(VarStore {
        fv,
        store,
        variables,
        end_of_variables: end_of_variables as u64,
        free_bytes: (end - end_of_variables) as u64,
        not_erased_at,
        ftw: ftw_state(file, end, fv_length as usize),
    })
}

/// A NUL-terminated UCS-2 string that fills `bytes` exactly.
pub(crate) fn ucs2z(bytes: &[u8]) -> Option<String> {
    if bytes.len() < 2 || !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units: Vec<u16> = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    let (last, body) = units.split_last()?;
    if *last != 0 || body.contains(&0) {
        return None;
    }
    String::from_utf16(body).ok()
}

impl VarStore {
    /// The live copy of a variable, as the firmware would return it.
    pub fn get(&self, name: &str, guid: Guid) -> Option<&Variable> {
        self.variables.iter().find(|v| v.name == name && v.guid == guid && v.is_live(&self.variables))
    }
}
