//! ext4 reader (placeholder until the verifier readers land).
