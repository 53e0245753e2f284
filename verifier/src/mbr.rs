//! mbr reader (placeholder until the verifier readers land).
