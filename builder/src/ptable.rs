//! (placeholder, filled in by the foundation work: see ARCHITECTURE.md)
