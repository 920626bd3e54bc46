//! Where a task is, in one vocabulary for every provider: re-exported from [`imggen_provider`].

pub use imggen_provider::status::*;
