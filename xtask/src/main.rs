//! `cargo xtask`: maintainers' commands.
fn main() {}
