//! The one request type, whichever provider serves it: re-exported from [`imggen_provider`].

pub use imggen_provider::request::*;
