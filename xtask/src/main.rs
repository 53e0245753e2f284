//! `cargo xtask`: project automation (verify, bench, fixtures, ci); this file only dispatches.

fn main() -> anyhow::Result<()> {
    Ok(())
}
