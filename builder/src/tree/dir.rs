//! Tree ingestion: dir (placeholder until tree ingestion lands).
