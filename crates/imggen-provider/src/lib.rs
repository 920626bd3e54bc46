//! The contract between an image provider and imggen's orchestrator.
//!
//! A provider crate (imggen-runblob, imggen-gptimg, imggen-runbase, or one of your own)
//! implements [`Provider`] over its client: what it can do ([`ProviderCapabilities`]), how a
//! [`GenerationRequest`] is planned for it ([`Plan`], with the shared [`plan::Planner`] steps),
//! how a [`PlannedTask`] is created and its status read ([`TaskStatus`]), what it costs
//! ([`Cost`]), when to poll and for how long, its request budget ([`RateLimit`]), and what its
//! errors mean for money ([`CallError`]). imggen-core orchestrates any provider that does —
//! planning across providers, one retry loop, the per-key request budget, fallback, downloads
//! and batches — without knowing any of them by name.
//!
//! This crate knows no particular provider: a [`ProviderId`] is an open name.

pub mod capabilities;
pub mod cost;
pub mod error;
pub mod id;
pub mod plan;
pub mod provider;
pub mod rate_limit;
pub mod request;
pub mod status;

pub use capabilities::{
    ModelCapabilities, Price, ProviderCapabilities, ReferenceCapabilities, TypicalDuration,
};
pub use cost::Cost;
pub use error::{CallError, CallErrorKind, CallOperation};
pub use id::{InvalidProviderName, ProviderId};
pub use plan::{Plan, PlanError, PlanOptions, PlannedTask, Planner, Strictness, Warning};
pub use provider::{
    BoxFuture, Built, Created, DownloadLimits, Downloaded, Provider, RecentTask, Registration,
};
pub use rate_limit::RateLimit;
pub use request::{
    GenerationRequest, OptionError, OptionReader, ProviderOptions, Reference, no_options,
};
pub use status::{ImageRef, RawObject, TaskState, TaskStatus};

/// Re-exported: a provider's poll schedule is one of these.
pub use imggen_http::PollSchedule;
