//! Planning a request for one provider, before anything is sent: the types and the shared
//! [`Planner`] steps are [`imggen_provider`]'s, and each provider plans for itself
//! ([`Provider::plan`](crate::Provider::plan)). [`Imggen::plan`](crate::Imggen::plan) plans with
//! the configured strictness.

pub use imggen_provider::plan::*;
