//! The contract a provider implements ([`Provider`]) and what it exchanges with core: re-exported
//! from [`imggen_provider`], where each provider crate implements it.

pub use imggen_provider::id::{InvalidProviderName, ProviderId};
pub use imggen_provider::provider::*;
