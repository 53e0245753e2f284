//! Pure-Rust ext4 writer (placeholder until the ext4 writer lands).
