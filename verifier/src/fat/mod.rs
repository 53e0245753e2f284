//! FAT12/16/32 reader (placeholder until the verifier readers land).
