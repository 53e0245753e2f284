//! Host glob matching (placeholder).
