//! `efi-vars.fd` for `touchEFIVars`: a `Boot0000` load option and `BootOrder` written into an
//! edk2 (OVMF) variable store template.
//!
//! # On-disk layout of `OVMF_VARS_4M.fd`
//!
//! All integers are little-endian; GUIDs are stored in the UEFI mixed-endian form (the first
//! three fields little-endian). Offsets are those of Debian 12's `OVMF_VARS_4M.fd` (540672
//! bytes); the writer reads every one of them from the headers instead of assuming it.
//!
//! ```text
//! 0x00000  EFI_FIRMWARE_VOLUME_HEADER (PI spec, PiFirmwareVolume.h), 0x48 bytes here
//!          0x00 ZeroVector[16]
//!          0x10 FileSystemGuid   EFI_SYSTEM_NV_DATA_FV_GUID fff12b8d-7696-4c8b-a985-2747075b4f50
//!          0x20 FvLength u64     0x84000: the whole volume, header included
//!          0x28 Signature u32    "_FVH"
//!          0x2c Attributes u32   EFI_FVB2_* bits (0x0004feff)
//!          0x30 HeaderLength u16 0x48: this header with its block map
//!          0x32 Checksum u16     the header's u16 words (HeaderLength bytes) sum to 0 mod 2^16
//!          0x34 ExtHeaderOffset u16, 0x36 Reserved u8, 0x37 Revision u8 (2)
//!          0x38 BlockMap         {NumBlocks u32, Length u32} runs ending with {0, 0}:
//!                                0x84 blocks of 0x1000 bytes = FvLength
//! 0x00048  VARIABLE_STORE_HEADER (edk2 VariableFormat.h), 0x1c bytes
//!          0x00 Signature GUID   aaf32c78-947b-439a-a180-2e144ec37792 (authenticated variables)
//!          0x10 Size u32         0x3ffb8: the store with this header, up to 0x40000
//!          0x14 Format u8 0x5a (formatted), 0x15 State u8 0xfe (healthy)
//!          0x16 Reserved u16, 0x18 Reserved1 u32
//! 0x00064  variables, each 4-byte aligned (relative to the volume, which is itself aligned):
//!          AUTHENTICATED_VARIABLE_HEADER, 0x3c bytes
//!          0x00 StartId u16 0x55aa   0x02 State u8   0x03 Reserved u8
//!          0x04 Attributes u32       0x08 MonotonicCount u64
//!          0x10 TimeStamp EFI_TIME (16 bytes)         0x20 PubKeyIndex u32
//!          0x24 NameSize u32 (bytes, NUL included)    0x28 DataSize u32
//!          0x2c VendorGuid
//!          then the UCS-2 name (NameSize bytes), the data (DataSize bytes), and 0xff padding
//!          to the next multiple of 4. The list ends at the first header whose StartId is not
//!          0x55aa (erased flash reads 0xffff) or that would not fit in the store.
//! 0x40000  the rest of the volume, outside the variable store: in OVMF a 4 KiB event-log
//!          area, the fault-tolerant-write (FTW) working block at 0x41000 (signature
//!          9e58292b-7c68-497d-a0ce-6500fd9f1b95) and the FTW spare area at 0x42000. The
//!          writer copies all of it from the template unchanged.
//! ```
//!
//! Flash erases to 0xff and a write can only clear bits, so a variable's `State` goes from
//! 0xff through `VAR_HEADER_VALID_ONLY` (0x7f: header written, data not) to `VAR_ADDED`
//! (0x3f). Updating a variable clears `VAR_IN_DELETED_TRANSITION` (bit 0) in the old copy,
//! adds the new one, then clears `VAR_DELETED` (bit 1) in the old copy. A copy is live when its
//! state is 0x3f, or 0x3e (in deleted transition) when no 0x3f copy of the same name and GUID
//! exists: the update was interrupted after the old copy was marked and before the new one
//! was complete, and edk2 then keeps the old copy.
//!
//! # What the writer does with the template
//!
//! It rewrites the variable area compactly instead of appending and marking old copies
//! deleted: the output holds exactly the template's live variables in their order (header,
//! name and data copied byte for byte, an in-transition survivor's state set to 0x3f),
//! without the template's `Boot0000` and `BootOrder`, followed by ours, then 0xff up to the
//! end of the store. So the output is a function of the template's live variables only: two
//! templates that differ only in deleted garbage give the same store, and nothing in it
//! depends on how the template got there. The FV header (and so its checksum) and the store
//! header are unchanged.
//!
//! Our variables, both under EFI_GLOBAL_VARIABLE 8be4df61-93ca-11d2-aa0d-00e098032b8c, with
//! attributes NV+BS+RT (0x7), monotonic count, timestamp and public key index zero:
//! - `Boot0000`: an EFI_LOAD_OPTION (UEFI spec 3.1.3): Attributes u32 = LOAD_OPTION_ACTIVE
//!   (1), FilePathListLength u16, the description as NUL-terminated UCS-2, then the device
//!   path: a hard drive media node (type 4, subtype 1, 42 bytes: partition number u32, start
//!   LBA u64, size in LBAs u64, the GPT partition GUID, partition format 2 = GPT, signature
//!   type 2 = GUID), a file path media node (type 4, subtype 4: the loader's path as
//!   NUL-terminated UCS-2, backslashes) and the end-of-entire-path node (0x7f, 0xff, 4 bytes).
//!   No optional data. A template's own `Boot0000` is replaced.
//! - `BootOrder`: u16 option numbers, ours (0) first, then those of the template's
//!   `BootOrder` other than 0, in their order.
//!
//! A template that is not an edk2 authenticated variable store (bad FV signature, file system
//! GUID, length, block map or checksum; bad store GUID, size, format or state; a variable
//! header that overruns the store or has a bad name) or has too little room for our variables
//! is refused with an [`EfiVarsError`] that says what is wrong and where.
//!
//! # The fault-tolerant-write areas
//!
//! They are copied as they are, so edk2 must not find an unfinished write there: at boot it
//! would finish it by copying the spare area over the variable store, and what we wrote would
//! be gone. The writer looks for the FTW working block on every 4 KiB boundary after the
//! store (signature 9e58292b-7c68-497d-a0ce-6500fd9f1b95, or fff12b8d-... in old builds):
//!
//! ```text
//! working block header (0x20)  Signature GUID, Crc u32, 0x14 flags u8 (bit 0 valid,
//!                              stored inverted), 3 reserved, 0x18 WriteQueueSize u64
//! write queue                  write headers (0x28): 0x00 flags u8 (bit 0 HeaderAllocated,
//!                              bit 1 WritesAllocated, bit 2 Complete; a set flag is a
//!                              cleared bit), 0x04 CallerId GUID, 0x18 NumberOfWrites u64,
//!                              0x20 PrivateDataSize u64; each followed by NumberOfWrites
//!                              records of 0x28 + PrivateDataSize bytes; an erased (0xff)
//!                              flags byte ends the queue
//! ```
//!
//! A header that is allocated and not complete is an unfinished write: the template is
//! refused ([`EfiVarsError::PendingFtwWrite`]). Debian's templates, and stores OVMF saved
//! after ordinary variable updates (which QEMU's flash takes in place), have an empty queue.

use crate::boot::esp::{EspFacts, UefiLoader};
use crate::boot::inputs::{InputError, PackageFile, PackageRoots};
use crate::ids::Guid;
use crate::spec::Spec;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// EFI_SYSTEM_NV_DATA_FV_GUID, the file system GUID of a variable firmware volume.
const NV_DATA_FV_GUID: &str = "FFF12B8D-7696-4C8B-A985-2747075B4F50";
/// EFI_AUTHENTICATED_VARIABLE_GUID, the signature of an authenticated variable store.
const AUTH_STORE_GUID: &str = "AAF32C78-947B-439A-A180-2E144EC37792";
/// EFI_VARIABLE_GUID, the signature of a store without authenticated variables.
const PLAIN_STORE_GUID: &str = "DDCF3616-3275-4164-98B6-FE85707FFE7D";
/// EFI_GLOBAL_VARIABLE, the vendor GUID of `Boot####` and `BootOrder`.
pub const EFI_GLOBAL_VARIABLE: &str = "8BE4DF61-93CA-11D2-AA0D-00E098032B8C";

const FVH_SIGNATURE: &[u8; 4] = b"_FVH";
/// The fixed part of EFI_FIRMWARE_VOLUME_HEADER, before the block map.
const FV_HEADER_FIXED: usize = 0x38;
const STORE_HEADER_LEN: usize = 0x1c;
const STORE_FORMATTED: u8 = 0x5a;
const STORE_HEALTHY: u8 = 0xfe;
const VAR_HEADER_LEN: usize = 0x3c;
const VAR_START_ID: u16 = 0x55aa;
const VAR_ADDED: u8 = 0x3f;
const VAR_IN_DELETED_TRANSITION: u8 = 0xfe;
const HEADER_ALIGNMENT: usize = 4;
const ERASED: u8 = 0xff;

/// EFI_VARIABLE_NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS.
pub const ATTR_NV_BS_RT: u32 = 0x7;
const LOAD_OPTION_ACTIVE: u32 = 0x1;

/// The boot entry to write: where the loader is and what the menu calls it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootEntry {
    /// Shown by the firmware's boot menu, e.g. "Linux Boot Manager".
    pub description: String,
    /// The ESP: its GPT partition number (from 1), first LBA, size in LBAs and unique GUID.
    pub partition_number: u32,
    pub start_lba: u64,
    pub size_lba: u64,
    pub partition_guid: Guid,
    /// The loader's path on the ESP with backslashes, e.g. `\EFI\systemd\systemd-bootx64.efi`.
    pub loader_path: String,
}

/// Why a template was refused. `offset` is a byte offset in the template file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EfiVarsError {
    #[error(
        "efi variable template is {len} bytes, too short for a firmware volume header; use an OVMF variable store such as OVMF_VARS_4M.fd (Debian package ovmf)"
    )]
    TooShort { len: usize },
    #[error(
        "efi variable template: no firmware volume signature `_FVH` at byte 0x28 (found {found:02x?}); it is not an edk2 variable store such as OVMF_VARS_4M.fd (Debian package ovmf)"
    )]
    FvSignature { found: [u8; 4] },
    #[error(
        "efi variable template: firmware volume file system guid is {found}, expected {NV_DATA_FV_GUID} (EFI_SYSTEM_NV_DATA_FV_GUID): not a variable store; pass OVMF_VARS_4M.fd, not OVMF_CODE_4M.fd"
    )]
    FvFileSystem { found: Guid },
    #[error(
        "efi variable template: firmware volume length {fv_length:#x} does not fit the {file_len:#x}-byte file or is shorter than its headers"
    )]
    FvLength { fv_length: u64, file_len: usize },
    #[error(
        "efi variable template: firmware volume header length {header_length:#x} is invalid (must be even, at least 0x48 and inside the volume)"
    )]
    FvHeaderLength { header_length: u16 },
    #[error(
        "efi variable template: firmware volume block map covers {covered:#x} bytes, the volume has {fv_length:#x}"
    )]
    FvBlockMap { covered: u64, fv_length: u64 },
    #[error(
        "efi variable template: firmware volume header checksum is wrong (its 16-bit words sum to {sum:#06x}, expected 0); the file is corrupt"
    )]
    FvChecksum { sum: u16 },
    #[error(
        "efi variable template: variable store at byte {offset:#x} is signed {found}, expected {AUTH_STORE_GUID} (authenticated variables)"
    )]
    StoreSignature { offset: usize, found: Guid },
    #[error(
        "efi variable template: variable store at byte {offset:#x} holds non-authenticated variables ({PLAIN_STORE_GUID}); reprodisk writes only the authenticated format OVMF uses"
    )]
    PlainStore { offset: usize },
    #[error(
        "efi variable template: variable store at byte {offset:#x} claims {size:#x} bytes, but only {room:#x} are left in the firmware volume"
    )]
    StoreSize { offset: usize, size: u32, room: usize },
    #[error("efi variable template: variable store format is {found:#04x}, expected 0x5a (formatted)")]
    StoreFormat { found: u8 },
    #[error("efi variable template: variable store state is {found:#04x}, expected 0xfe (healthy)")]
    StoreState { found: u8 },
    #[error(
        "efi variable template: variable at byte {offset:#x} ({name_size} name bytes, {data_size} data bytes) runs past the end of the store at {store_end:#x}"
    )]
    VariableOverrun { offset: usize, name_size: u32, data_size: u32, store_end: usize },
    #[error(
        "efi variable template: variable at byte {offset:#x} has a bad name ({why}); the store is corrupt"
    )]
    VariableName { offset: usize, why: &'static str },
    #[error(
        "efi variable template: the variable store has {available} free bytes, {needed} are needed for Boot0000 and BootOrder; use a template with fewer variables"
    )]
    NoSpace { needed: usize, available: usize },
    #[error(
        "efi variable template: the fault-tolerant-write queue at byte {offset:#x} holds an unfinished write; the firmware would replay it over the variable store at boot: use a template saved after a clean shutdown, or Debian's OVMF_VARS_4M.fd"
    )]
    PendingFtwWrite { offset: usize },
    #[error("efi variable template: the template's BootOrder has an odd length ({len} bytes)")]
    BootOrderLength { len: usize },
    #[error("boot entry: {what} is empty or holds a NUL character")]
    EntryText { what: &'static str },
}

fn le16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}
fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}
fn le64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}
fn guid_at(b: &[u8], off: usize) -> Guid {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[off..off + 16]);
    Guid::from_gpt_bytes(a)
}
fn known(text: &str) -> Guid {
    // The constants above are well-formed; a unit test parses each one.
    text.parse().unwrap_or(Guid([0; 16]))
}
fn align_up(x: usize) -> usize {
    x.div_ceil(HEADER_ALIGNMENT) * HEADER_ALIGNMENT
}

/// One variable of the template: where its bytes are and what it is called.
#[derive(Debug, Clone)]
struct TemplateVar {
    /// Header offset in the template.
    offset: usize,
    /// Header, name and data (no padding).
    len: usize,
    state: u8,
    name: Vec<u16>,
    guid: Guid,
}

/// The checked geometry of a template: where its variable area is.
#[derive(Debug, Clone)]
struct Store {
    /// First byte after the store header: where the first variable goes.
    vars_start: usize,
    /// One past the store's last byte.
    end: usize,
    vars: Vec<TemplateVar>,
}

fn parse(t: &[u8]) -> Result<Store, EfiVarsError> {
    if t.len() < FV_HEADER_FIXED + 16 {
        return Err(EfiVarsError::TooShort { len: t.len() });
    }
    let sig: [u8; 4] = [t[0x28], t[0x29], t[0x2a], t[0x2b]];
    if &sig != FVH_SIGNATURE {
        return Err(EfiVarsError::FvSignature { found: sig });
    }
    let fs_guid = guid_at(t, 0x10);
    if fs_guid != known(NV_DATA_FV_GUID) {
        return Err(EfiVarsError::FvFileSystem { found: fs_guid });
    }
    let fv_length = le64(t, 0x20);
    let header_length = le16(t, 0x30);
    let hl = usize::from(header_length);
    if !hl.is_multiple_of(2) || hl < FV_HEADER_FIXED + 16 || hl > t.len() {
        return Err(EfiVarsError::FvHeaderLength { header_length });
    }
    let fv_len = usize::try_from(fv_length)
        .ok()
        .filter(|&l| l <= t.len() && l >= hl + STORE_HEADER_LEN)
        .ok_or(EfiVarsError::FvLength { fv_length, file_len: t.len() })?;
    let sum = t[..hl].chunks_exact(2).fold(0u16, |s, w| s.wrapping_add(u16::from_le_bytes([w[0], w[1]])));
    if sum != 0 {
        return Err(EfiVarsError::FvChecksum { sum });
    }
    let mut covered = 0u64;
    let mut off = FV_HEADER_FIXED;
    while off + 8 <= hl {
        let (n, len) = (le32(t, off), le32(t, off + 4));
        if n == 0 && len == 0 {
            break;
        }
        covered = covered.saturating_add(u64::from(n) * u64::from(len));
        off += 8;
    }
    if covered != fv_length {
        return Err(EfiVarsError::FvBlockMap { covered, fv_length });
    }

    let store = hl;
    let store_guid = guid_at(t, store);
    if store_guid == known(PLAIN_STORE_GUID) {
        return Err(EfiVarsError::PlainStore { offset: store });
    }
    if store_guid != known(AUTH_STORE_GUID) {
        return Err(EfiVarsError::StoreSignature { offset: store, found: store_guid });
    }
    let size = le32(t, store + 0x10);
    let room = fv_len - store;
    let end = usize::try_from(size)
        .ok()
        .filter(|&s| s <= room && s >= STORE_HEADER_LEN)
        .map(|s| store + s)
        .ok_or(EfiVarsError::StoreSize { offset: store, size, room })?;
    if t[store + 0x14] != STORE_FORMATTED {
        return Err(EfiVarsError::StoreFormat { found: t[store + 0x14] });
    }
    if t[store + 0x15] != STORE_HEALTHY {
        return Err(EfiVarsError::StoreState { found: t[store + 0x15] });
    }

    check_ftw(t, end, fv_len)?;

    let vars_start = align_up(store + STORE_HEADER_LEN);
    let mut vars = Vec::new();
    let mut at = vars_start;
    while at + VAR_HEADER_LEN <= end && le16(t, at) == VAR_START_ID {
        let name_size = le32(t, at + 0x24);
        let data_size = le32(t, at + 0x28);
        let overrun = EfiVarsError::VariableOverrun { offset: at, name_size, data_size, store_end: end };
        let len = (VAR_HEADER_LEN as u64 + u64::from(name_size) + u64::from(data_size)) as usize;
        if at.checked_add(len).is_none_or(|e| e > end) {
            return Err(overrun);
        }
        let name_bytes = &t[at + VAR_HEADER_LEN..at + VAR_HEADER_LEN + name_size as usize];
        let bad = |why| EfiVarsError::VariableName { offset: at, why };
        if name_bytes.len() < 2 || !name_bytes.len().is_multiple_of(2) {
            return Err(bad("its size is not a positive even number of bytes"));
        }
        let mut name: Vec<u16> =
            name_bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        if name.pop() != Some(0) || name.contains(&0) {
            return Err(bad("it is not one NUL-terminated UCS-2 string"));
        }
        vars.push(TemplateVar { offset: at, len, state: t[at + 2], name, guid: guid_at(t, at + 0x2c) });
        at = align_up(at + len);
    }
    Ok(Store { vars_start, end, vars })
}

/// EDKII_WORKING_BLOCK_SIGNATURE_GUID.
const FTW_WORKING_BLOCK_GUID: &str = "9E58292B-7C68-497D-A0CE-6500FD9F1B95";
const FTW_BLOCK: usize = 0x1000;
const FTW_HEADER_LEN: usize = 0x20;
const FTW_WRITE_HEADER_LEN: usize = 0x28;
const FTW_RECORD_LEN: u64 = 0x28;

/// Refuses a template whose FTW write queue holds an unfinished write (see the module doc).
fn check_ftw(t: &[u8], store_end: usize, fv_len: usize) -> Result<(), EfiVarsError> {
    let sigs = [known(FTW_WORKING_BLOCK_GUID), known(NV_DATA_FV_GUID)];
    let first = store_end.div_ceil(FTW_BLOCK) * FTW_BLOCK;
    let Some(wb) = (first..fv_len.saturating_sub(FTW_HEADER_LEN))
        .step_by(FTW_BLOCK)
        .find(|&o| sigs.contains(&guid_at(t, o)))
    else {
        return Ok(());
    };
    let queue_end = usize::try_from(le64(t, wb + 0x18))
        .ok()
        .and_then(|q| (wb + FTW_HEADER_LEN).checked_add(q))
        .map_or(fv_len, |e| e.min(fv_len));
    let mut at = wb + FTW_HEADER_LEN;
    while at + FTW_WRITE_HEADER_LEN <= queue_end && t[at] != ERASED {
        let (allocated, complete) = (t[at] & 0x1 == 0, t[at] & 0x4 == 0);
        if allocated && !complete {
            return Err(EfiVarsError::PendingFtwWrite { offset: at });
        }
        let records = le64(t, at + 0x18).saturating_mul(FTW_RECORD_LEN.saturating_add(le64(t, at + 0x20)));
        let next = (FTW_WRITE_HEADER_LEN as u64).saturating_add(records);
        at = match usize::try_from(next).ok().and_then(|n| at.checked_add(n)) {
            Some(n) => n,
            None => break,
        };
    }
    Ok(())
}

/// The template's live variables, in store order (see the module doc for the state rule).
fn live(vars: &[TemplateVar]) -> Vec<&TemplateVar> {
    let added =
        |v: &TemplateVar| vars.iter().any(|w| w.state == VAR_ADDED && w.name == v.name && w.guid == v.guid);
    vars.iter()
        .filter(|v| v.state == VAR_ADDED || (v.state == VAR_ADDED & VAR_IN_DELETED_TRANSITION && !added(v)))
        .collect()
}

fn ucs2z(s: &str, what: &'static str) -> Result<Vec<u8>, EfiVarsError> {
    if s.is_empty() || s.contains('\0') {
        return Err(EfiVarsError::EntryText { what });
    }
    Ok(s.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect())
}

/// The device path of `entry`: HD(), file path, end of entire path.
pub fn device_path(entry: &BootEntry) -> Result<Vec<u8>, EfiVarsError> {
    let mut p = Vec::with_capacity(128);
    // Hard drive media device path: type 4, subtype 1, 42 bytes.
    p.extend_from_slice(&[4, 1]);
    p.extend_from_slice(&42u16.to_le_bytes());
    p.extend_from_slice(&entry.partition_number.to_le_bytes());
    p.extend_from_slice(&entry.start_lba.to_le_bytes());
    p.extend_from_slice(&entry.size_lba.to_le_bytes());
    p.extend_from_slice(&entry.partition_guid.to_gpt_bytes());
    p.extend_from_slice(&[0x02, 0x02]); // GPT partition table, GUID signature
    // File path media device path: type 4, subtype 4.
    let path = ucs2z(&entry.loader_path, "loader path")?;
    let node_len =
        u16::try_from(4 + path.len()).map_err(|_| EfiVarsError::EntryText { what: "loader path" })?;
    p.extend_from_slice(&[4, 4]);
    p.extend_from_slice(&node_len.to_le_bytes());
    p.extend_from_slice(&path);
    // End of entire device path.
    p.extend_from_slice(&[0x7f, 0xff, 4, 0]);
    Ok(p)
}

/// The EFI_LOAD_OPTION bytes of `entry`.
pub fn load_option(entry: &BootEntry) -> Result<Vec<u8>, EfiVarsError> {
    let path = device_path(entry)?;
    let path_len = u16::try_from(path.len()).map_err(|_| EfiVarsError::EntryText { what: "loader path" })?;
    let mut o = Vec::with_capacity(6 + path.len() + 2 * entry.description.len() + 2);
    o.extend_from_slice(&LOAD_OPTION_ACTIVE.to_le_bytes());
    o.extend_from_slice(&path_len.to_le_bytes());
    o.extend_from_slice(&ucs2z(&entry.description, "description")?);
    o.extend_from_slice(&path);
    Ok(o)
}

/// One authenticated variable (header, name, data), attributes NV+BS+RT, everything else zero.
fn variable(name: &str, guid: Guid, data: &[u8]) -> Vec<u8> {
    let name: Vec<u8> = name.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect();
    let mut v = vec![0u8; VAR_HEADER_LEN];
    v[0..2].copy_from_slice(&VAR_START_ID.to_le_bytes());
    v[2] = VAR_ADDED;
    v[4..8].copy_from_slice(&ATTR_NV_BS_RT.to_le_bytes());
    // MonotonicCount (0x08), TimeStamp (0x10) and PubKeyIndex (0x20) stay zero.
    v[0x24..0x28].copy_from_slice(&(name.len() as u32).to_le_bytes());
    v[0x28..0x2c].copy_from_slice(&(data.len() as u32).to_le_bytes());
    v[0x2c..0x3c].copy_from_slice(&guid.to_gpt_bytes());
    v.extend_from_slice(&name);
    v.extend_from_slice(data);
    v
}

/// `template` with `entry` as `Boot0000` and first in `BootOrder`; same length as `template`.
pub fn write(template: &[u8], entry: &BootEntry) -> Result<Vec<u8>, EfiVarsError> {
    let store = parse(template)?;
    let global = known(EFI_GLOBAL_VARIABLE);
    let is = |v: &TemplateVar, n: &str| v.guid == global && v.name.iter().copied().eq(n.encode_utf16());
    let kept = live(&store.vars);

    let mut order: Vec<u8> = 0u16.to_le_bytes().to_vec();
    if let Some(old) = kept.iter().find(|v| is(v, "BootOrder")) {
        let data = &template[old.offset + VAR_HEADER_LEN + 2 * (old.name.len() + 1)..old.offset + old.len];
        if !data.len().is_multiple_of(2) {
            return Err(EfiVarsError::BootOrderLength { len: data.len() });
        }
        order.extend(data.chunks_exact(2).filter(|n| n != &[0, 0]).flatten());
    }
    let ours = [variable("Boot0000", global, &load_option(entry)?), variable("BootOrder", global, &order)];
    let copies: Vec<&TemplateVar> =
        kept.into_iter().filter(|v| !is(v, "Boot0000") && !is(v, "BootOrder")).collect();

    let used: usize = copies.iter().map(|v| align_up(v.len)).sum();
    let needed: usize = ours.iter().map(|v| align_up(v.len())).sum();
    let available = (store.end - store.vars_start).saturating_sub(used);
    if needed > available {
        return Err(EfiVarsError::NoSpace { needed, available });
    }

    let mut out = template.to_vec();
    out[store.vars_start..store.end].fill(ERASED);
    let mut at = store.vars_start;
    for v in copies {
        out[at..at + v.len].copy_from_slice(&template[v.offset..v.offset + v.len]);
        // An in-transition survivor becomes the one live copy.
        out[at + 2] = VAR_ADDED;
        at = align_up(at + v.len);
    }
    for v in &ours {
        out[at..at + v.len()].copy_from_slice(v);
        at = align_up(at + v.len());
    }
    Ok(out)
}

/// Debian's OVMF variable template, the default `efiVariables`.
pub const OVMF_VARS_4M: PackageFile = PackageFile { path: "usr/share/OVMF/OVMF_VARS_4M.fd", package: "ovmf" };

/// The output file's name in the output folder, as the seed names it.
pub const FILE_NAME: &str = "efi-vars.fd";

/// The firmware menu's name for the installed loader: systemd-boot's `bootctl install` says
/// "Linux Boot Manager"; GRUB, installed only at the removable path, gets "GRUB".
pub fn description(loader: UefiLoader) -> &'static str {
    match loader {
        UefiLoader::SystemdBoot => "Linux Boot Manager",
        UefiLoader::GrubEfi => "GRUB",
    }
}

/// The boot entry naming the loader the ESP plan installed.
pub fn entry_for(esp: &EspFacts) -> BootEntry {
    BootEntry {
        description: description(esp.loader).to_string(),
        partition_number: esp.partition_number,
        start_lba: esp.start_lba,
        size_lba: esp.size_lba,
        partition_guid: esp.partition_guid,
        loader_path: esp.loader_path.clone(),
    }
}

/// `efi-vars.fd` of a build: the template with the entry of the installed UEFI loader, or,
/// when no UEFI loader is installed (`installBootLoader = false`, `legacy+gpt`), the template
/// unchanged after the same checks, as the seed copies it.
pub fn efi_vars_for(template: &[u8], entry: Option<&BootEntry>) -> Result<Vec<u8>, EfiVarsError> {
    match entry {
        Some(e) => write(template, e),
        None => parse(template).map(|_| template.to_vec()),
    }
}

/// Where the template came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateRecord {
    /// The host path read.
    pub path: PathBuf,
    /// `efiVariables` (the spec) or the Debian package found in a package root.
    pub origin: String,
    pub bytes: u64,
    pub sha256: String,
}

/// What `plan` and the manifest say about `efi-vars.fd`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EfiVarsReport {
    pub file: &'static str,
    pub template: TemplateRecord,
    /// `Boot0000`, first in `BootOrder`; `None` when no UEFI loader is installed.
    pub boot0000: Option<BootEntry>,
    pub sha256: String,
}

/// `efi-vars.fd`, made before anything is written.
#[derive(Debug, Clone)]
pub struct EfiVarsPlan {
    pub bytes: Vec<u8>,
    pub report: EfiVarsReport,
}

#[derive(Debug, thiserror::Error)]
pub enum EfiVarsBuildError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("efiVariables `{path}`: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("`{path}`: {error}")]
    Template { path: PathBuf, error: EfiVarsError },
}

/// Plans `efi-vars.fd` for `touchEFIVars = true` (`None` otherwise): the template is the
/// spec's `efiVariables`, else `OVMF_VARS_4M.fd` from the package roots (package `ovmf`).
pub fn plan(
    spec: &Spec,
    roots: &PackageRoots,
    esp: Option<&EspFacts>,
) -> Result<Option<EfiVarsPlan>, EfiVarsBuildError> {
    if !spec.touch_efi_vars {
        return Ok(None);
    }
    let (path, origin) = match &spec.efi_variables {
        Some(p) => (p.resolved.clone(), "efiVariables".to_string()),
        None => {
            let used = roots.find(OVMF_VARS_4M)?;
            (used.host_path(), format!("Debian package {}", used.package))
        }
    };
    let template =
        std::fs::read(&path).map_err(|error| EfiVarsBuildError::Read { path: path.clone(), error })?;
    let entry = esp.map(entry_for);
    let bytes = efi_vars_for(&template, entry.as_ref())
        .map_err(|error| EfiVarsBuildError::Template { path: path.clone(), error })?;
    let report = EfiVarsReport {
        file: FILE_NAME,
        template: TemplateRecord {
            path,
            origin,
            bytes: template.len() as u64,
            sha256: crate::manifest::hex(&Sha256::digest(&template)),
        },
        boot0000: entry,
        sha256: crate::manifest::hex(&Sha256::digest(&bytes)),
    };
    Ok(Some(EfiVarsPlan { bytes, report }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_the_installed_loader() {
        let esp = EspFacts {
            partition_number: 1,
            start_lba: 8 << 11,
            size_lba: 249 << 11,
            partition_guid: crate::ids::SEED_PARTITION1_GUID,
            loader_path: r"\EFI\BOOT\BOOTX64.EFI".into(),
            loader: UefiLoader::GrubEfi,
        };
        let e = entry_for(&esp);
        assert_eq!((e.description.as_str(), e.partition_number, e.size_lba), ("GRUB", 1, 249 << 11));
        assert_eq!(description(UefiLoader::SystemdBoot), "Linux Boot Manager");
    }

    #[test]
    fn guid_constants_parse() {
        for g in [NV_DATA_FV_GUID, AUTH_STORE_GUID, PLAIN_STORE_GUID, EFI_GLOBAL_VARIABLE] {
            assert!(g.parse::<Guid>().is_ok(), "{g}");
        }
    }
}
