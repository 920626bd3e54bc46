//! What each provider and model can do, as data a caller can read (and `imggen providers`
//! prints): the types are [`imggen_provider`]'s, each provider crate fills them.

pub use imggen_provider::capabilities::*;

/// The capabilities of every provider imggen is built with, whether configured or not, in
/// the default order.
pub fn all() -> Vec<ProviderCapabilities> {
    crate::builtin::registrations()
        .iter()
        .map(|registration| (registration.capabilities)())
        .collect()
}
