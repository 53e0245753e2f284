//! Tree ingestion: contents (placeholder until tree ingestion lands).
