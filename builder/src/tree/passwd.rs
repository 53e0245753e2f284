//! Tree ingestion: passwd (placeholder until tree ingestion lands).
