//! rsync --chmod mode strings (placeholder).
