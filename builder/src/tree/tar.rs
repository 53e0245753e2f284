//! Tree ingestion: tar (placeholder until tree ingestion lands).
