//! The providers imggen is built with — one feature each, all on by default — and the default
//! order among them. The only place in imggen-core that names a provider: everything else
//! works through [`Provider`](crate::Provider) with whatever is registered.

use imggen_provider::{ProviderId, Registration};

/// Every built-in provider, in the default order: the first whose key is set serves a request
/// that names none.
pub fn registrations() -> Vec<Registration> {
    vec![
        #[cfg(feature = "gptimg")]
        imggen_gptimg::provider::registration(),
        #[cfg(feature = "runblob")]
        imggen_runblob::provider::registration(),
        #[cfg(feature = "runbase")]
        imggen_runbase::provider::registration(),
    ]
}

/// The built-in provider named `id`.
pub fn registration(id: ProviderId) -> Option<Registration> {
    registrations()
        .into_iter()
        .find(|registration| registration.id == id)
}
