//! What generations cost, summed exactly: re-exported from [`imggen_provider`].

pub use imggen_provider::cost::*;
