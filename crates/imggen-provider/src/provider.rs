//! The one trait a provider implements, and what it exchanges with the orchestrator.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use imggen_http::PollSchedule;
use imggen_types::ValidationError;
use serde_json::{Map, Value};

use crate::capabilities::ProviderCapabilities;
use crate::cost::Cost;
use crate::error::{CallError, CallErrorKind, CallOperation};
use crate::id::ProviderId;
use crate::plan::{Plan, PlanError, PlanOptions, PlannedTask};
use crate::rate_limit::RateLimit;
use crate::request::{GenerationRequest, Reference};
use crate::status::TaskStatus;

pub use imggen_http::Downloaded;

/// A boxed, sendable future: what [`Provider`]'s methods return, so the trait can be used as
/// `dyn Provider` without a macro crate.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a create answered: the task id and what it cost.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Created {
    /// The id to poll.
    pub task_id: String,
    /// What the create charged, as the answer (or the provider's documented price) says.
    pub cost: Option<Cost>,
    /// The model that serves the task, when known.
    pub model: Option<String>,
}

impl Created {
    /// A created task.
    pub fn new(task_id: impl Into<String>, cost: Option<Cost>, model: Option<String>) -> Self {
        Created {
            task_id: task_id.into(),
            cost,
            model,
        }
    }
}

/// One entry of a provider's own list of the key's recent tasks: what
/// [`Provider::recent_tasks`] returns, newest first.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RecentTask {
    /// The provider's task id.
    pub task_id: String,
    /// The prompt the task was created with, when the list says.
    pub prompt: Option<String>,
    /// Where the task is.
    pub status: TaskStatus,
}

impl RecentTask {
    /// An entry of the list.
    pub fn new(task_id: impl Into<String>, prompt: Option<String>, status: TaskStatus) -> Self {
        RecentTask {
            task_id: task_id.into(),
            prompt,
            status,
        }
    }
}

/// Limits for one download.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadLimits {
    /// The largest file accepted, in bytes.
    pub max_bytes: u64,
    /// Redirects followed before giving up.
    pub max_redirects: u8,
    /// An attempt that receives no byte for this long ends.
    pub stall_timeout: Duration,
}

impl DownloadLimits {
    /// Limits of one download.
    pub fn new(max_bytes: u64, max_redirects: u8, stall_timeout: Duration) -> Self {
        DownloadLimits {
            max_bytes,
            max_redirects,
            stall_timeout,
        }
    }
}

/// One provider behind the unified model — everything the orchestrator needs to know about it,
/// in one place: what it can do and how to plan for it, how to create, read and download, how
/// often to poll and for how long, its request budget, what its failure codes mean.
///
/// A provider's crate implements it over its client (imggen's three do, behind their default
/// `provider` feature); a test can implement it for a fake. It only maps — the unified
/// [`PlannedTask`] to the wire request, the answers and errors back; it never retries, sleeps or
/// schedules (the orchestrator's one retry loop and request budget do), so its client must not
/// retry either.
pub trait Provider: Send + Sync + fmt::Debug + 'static {
    /// Which provider this is.
    fn id(&self) -> ProviderId;

    /// What it and each of its models can do and cost.
    fn capabilities(&self) -> ProviderCapabilities;

    /// Plans `request` for this provider: the tasks it takes (each charged), what is dropped
    /// (lenient) or refused (strict), what it should cost. Pure: nothing is sent. Most
    /// providers run the shared [`Planner`](crate::plan::Planner) steps and add their own.
    fn plan(&self, request: &GenerationRequest, options: PlanOptions) -> Result<Plan, PlanError>;

    /// Sets one of this provider's own options from `KEY=VALUE` text, into `options` (this
    /// provider's part of [`ProviderOptions`](crate::ProviderOptions)). The default: the
    /// provider has none.
    fn set_option(
        &self,
        options: &mut Map<String, Value>,
        key: &str,
        value: &str,
    ) -> Result<(), String> {
        crate::request::no_options(options, key, value)
    }

    /// Checks a task id before it goes into a URL: the provider's own format where it
    /// documents one. The default refuses only what would address another resource (`/`,
    /// `?`, `#`, `%`, whitespace, an empty id).
    fn check_task_id(&self, task_id: &str) -> Result<(), ValidationError> {
        imggen_types::validation::check_opaque_id("task_id", task_id)
    }

    /// When to poll one of its tasks.
    fn poll_schedule(&self) -> PollSchedule;

    /// How long a wait lasts unless the caller says.
    fn default_deadline(&self) -> Duration;

    /// The documented per-key request budget, creates and polls together; `None` where none
    /// is documented (a 429 then teaches the orchestrator one).
    fn rate_limit(&self) -> Option<RateLimit> {
        None
    }

    /// What to do about a failed task's code, as the provider documents it.
    fn failure_advice(&self, code: &str) -> Option<&'static str> {
        let _ = code;
        None
    }

    /// A short label of the API key, never the key: work on one key shares one request budget.
    fn key_label(&self) -> String;

    /// A fingerprint of the API key that tells keys apart and reveals nothing of them (the
    /// built-in providers give SHA-256 of it): processes that share a request budget kept
    /// elsewhere find each other by it. By default, the provider's name and
    /// [`key_label`](Self::key_label) — enough to share, but two keys may then share a budget.
    fn key_fingerprint(&self) -> String {
        format!("{}:{}", self.id(), self.key_label())
    }

    /// Whether result URLs may be `http://`: only when the API itself is reached over http (a
    /// local emulator or proxy).
    fn allows_http_downloads(&self) -> bool;

    /// Turns reference images into what the provider sends, once per submission and before
    /// its first create (reading files, encoding bytes), so a missing file fails the whole
    /// submission before anything is sent. The default passes them through.
    fn prepare<'a>(
        &'a self,
        references: &'a [Reference],
    ) -> BoxFuture<'a, Result<Vec<Reference>, CallError>> {
        Box::pin(std::future::ready(Ok(references.to_vec())))
    }

    /// Creates (and pays for) one task. Sent once: the caller decides whether an error may be
    /// retried.
    fn create<'a>(&'a self, task: &'a PlannedTask) -> BoxFuture<'a, Result<Created, CallError>>;

    /// Reads a task's status.
    fn status<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<TaskStatus, CallError>>;

    /// Downloads a result file without sending the API key.
    fn download<'a>(
        &'a self,
        url: &'a str,
        limits: DownloadLimits,
    ) -> BoxFuture<'a, Result<Downloaded, CallError>>;

    /// Whether the provider keeps a list of the key's recent tasks that
    /// [`recent_tasks`](Self::recent_tasks) reads: what lets a create whose answer was lost be
    /// found, or proved never to have arrived. The default: it keeps none.
    fn lists_recent_tasks(&self) -> bool {
        false
    }

    /// One page of the key's recent tasks, **newest first**: `limit` entries after skipping
    /// `offset`. A provider may return fewer than `limit` (its own cap); an empty page is the
    /// end of the list. Only called when [`lists_recent_tasks`](Self::lists_recent_tasks) is
    /// true; the default answers that the provider keeps no such list.
    fn recent_tasks(
        &self,
        offset: u32,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<RecentTask>, CallError>> {
        let _ = (offset, limit);
        Box::pin(std::future::ready(Err(CallError::new(
            self.id(),
            CallOperation::Status,
            CallErrorKind::Config,
        )
        .with_message(format!(
            "{} keeps no list of recent tasks imggen can read",
            self.id()
        )))))
    }

    /// Reads a webhook body this provider sent (a task's new status), for a provider that
    /// calls webhooks: `(task id, status as the provider named it)`. The default: it calls
    /// none.
    fn parse_webhook(&self, body: &[u8]) -> Result<(String, String), String> {
        let _ = body;
        Err(format!("{} calls no webhooks", self.id()))
    }
}

/// A provider built, or why it could not be (the message never holds a key).
pub type Built = Result<Arc<dyn Provider>, String>;

/// How to build a provider from the environment, without holding one: what a provider crate
/// registers with the orchestrator (`imggen_core::ImggenBuilder::from_env`), and what a
/// program lists to show every provider it could use.
#[derive(Clone, Copy)]
pub struct Registration {
    /// The provider.
    pub id: ProviderId,
    /// The variable its key is read from.
    pub api_key_env: &'static str,
    /// The variable that overrides its base URL.
    pub base_url_env: &'static str,
    /// What it can do, without a key.
    pub capabilities: fn() -> ProviderCapabilities,
    /// Builds it from its variables (the key must be set).
    pub from_env: fn() -> Built,
    /// Builds it with a key and a base URL (an emulator, a proxy).
    pub connect: fn(api_key: &str, base_url: &str) -> Built,
    /// Reads one of its options from text, as its [`Provider::set_option`] does (an option
    /// can be set before any provider is built: a batch file is read first).
    pub set_option: crate::request::OptionReader,
}

impl Registration {
    /// Whether its key variable is set (and not blank).
    pub fn key_set(&self) -> bool {
        std::env::var(self.api_key_env).is_ok_and(|value| !value.trim().is_empty())
    }
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("id", &self.id)
            .field("api_key_env", &self.api_key_env)
            .field("base_url_env", &self.base_url_env)
            .finish_non_exhaustive()
    }
}
