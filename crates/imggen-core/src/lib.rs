//! One API over three paid, asynchronous image APIs — runblob, gptimg.co and runbase — with
//! the guarantees that make paid generation safe: **never pay twice, never lose what was paid
//! for, never wait forever.**
//!
//! ```no_run
//! use imggen_core::{DownloadOptions, GenerateOptions, GenerationRequest, Imggen};
//! use imggen_types::AspectRatio;
//!
//! # async fn run() -> Result<(), imggen_core::Error> {
//! let imggen = Imggen::from_env()?; // every provider whose *_API_KEY is set
//! let request = GenerationRequest::new("A lighthouse on a cliff at dusk")
//!     .aspect_ratio(AspectRatio::Landscape16x9);
//! let options = GenerateOptions::default().download(DownloadOptions::to_dir("out"));
//! let generation = imggen.generate(&request, &options).await?;
//! for image in &generation.images {
//!     println!("{:?} {} {:?}x{:?}", image.data, image.media_type, image.width, image.height);
//! }
//! println!("cost: {}", generation.cost);
//! # Ok(()) }
//! ```
//!
//! For long tasks, keep the receipt and resume from it — in another process, later:
//!
//! ```no_run
//! use imggen_core::{GenerateOptions, GenerationRequest, Imggen, TaskHandle, SubmitOptions};
//!
//! # async fn run() -> Result<(), imggen_core::Error> {
//! let imggen = Imggen::from_env()?;
//! let submission = imggen
//!     .submit(&GenerationRequest::new("A ceramic lamp"), &SubmitOptions::default())
//!     .await?;
//! let saved: Vec<String> = submission.handles.iter().map(TaskHandle::to_json).collect();
//! // … store `saved`; then, any time later:
//! let handles: Vec<TaskHandle> = saved
//!     .iter()
//!     .map(|json| TaskHandle::from_json(json))
//!     .collect::<Result<_, _>>()
//!     .map_err(|err| imggen_core::Error::from(err))?;
//! let generation = imggen.resume(&handles, &GenerateOptions::default()).await?;
//! # let _ = generation;
//! # Ok(()) }
//! ```
//!
//! - **Plan** ([`Imggen::plan`]): a [`GenerationRequest`] is checked against the provider's
//!   [`capabilities`]; a setting it cannot honour is an error (strict) or
//!   dropped with a [`Warning`] (lenient), never silently.
//! - **Submit** ([`Imggen::submit`]): one create per task, retried only when the answer proves
//!   nothing was charged ([`policy`]); each [`TaskHandle`] is handed to
//!   [`SubmitOptions::on_handle`] the moment it exists. A create whose answer was lost is
//!   [`Error::CreateOutcomeUnknown`], never resubmitted. A fallback list moves on only when a
//!   provider provably did not accept the task.
//! - **Wait** ([`Imggen::wait`]): polls on a per-provider [`PollSchedule`] inside the key's
//!   [request budget](budget), with a deadline and cancellation; webhooks shorten it.
//! - **Collect** ([`Imggen::download`]): safe downloads, types sniffed from bytes, atomic
//!   files — converted to PNG, JPEG or WebP on request (`convert`, feature `convert`), the
//!   provider's bytes saved first so a failed conversion loses nothing.
//! - **Batch** (`batch`, feature `batch`): many requests with bounded concurrency and a
//!   SQLite journal written before and after every paid step; running the batch again resumes
//!   it, and a create whose answer was lost is settled through the provider's task list
//!   ([`Imggen::find_lost_tasks`]) where there is one.

/// The README's examples, compiled as doc tests so they cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

/// The repository README's examples (the SDK's front page), compiled here too.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct RepositoryReadmeExamples;

#[cfg(feature = "batch")]
pub mod batch;
pub mod budget;
pub mod builtin;
mod call;
pub mod capabilities;
#[cfg(feature = "convert")]
pub mod convert;
pub mod cost;
pub mod download;
pub mod error;
mod generate;
pub mod handle;
pub mod naming;
pub mod plan;
pub mod policy;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod provider;
pub mod reconcile;
pub mod request;
pub mod spend;
pub mod status;
mod submit;
pub mod wait;
pub mod webhook;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use imggen_http::time::{Clock, Sleeper, SystemClock, TokioSleeper};
use imggen_types::Usd;

pub use budget::{LocalSharedBudget, SharedBudget, SharedBudgetError, Taken};
pub use capabilities::{ModelCapabilities, ProviderCapabilities};
#[cfg(feature = "convert")]
pub use convert::{Conversion, ConvertError, DEFAULT_JPEG_QUALITY, ImageFormat, ImageFormatError};
pub use cost::Cost;
pub use download::{DownloadOptions, GeneratedImage, ImageData, Output};
pub use error::{CallError, CallErrorKind, CallOperation, Error, ProviderAttempt};
pub use generate::{GenerateOptions, Generation};
pub use handle::{HandleError, RequestSummary, TaskHandle};
pub use imggen_provider::RateLimit;
pub use naming::{FileNames, FileNamesError, NameFields};
pub use plan::{Plan, PlanError, PlanOptions, PlannedTask, Strictness, Warning};
pub use policy::RetryConfig;
pub use provider::{Created, Provider, ProviderId, RecentTask, Registration};
pub use reconcile::{LostTaskSearch, LostTasks};
pub use request::{GenerationRequest, OptionError, ProviderOptions, Reference};
pub use spend::{CostCap, Spending, SpendingCapError, SpendingCapKind};
pub use status::{ImageRef, RawObject, TaskState, TaskStatus};
pub use submit::{FallbackReport, HandleCallback, Submission, SubmitOptions};
pub use wait::{PollSchedule, StatusCallback, WaitOptions};
pub use webhook::{WebhookEvent, WebhookHub};

/// Re-exported so callers can build the built-in providers' clients with the same versions.
#[cfg(feature = "gptimg")]
pub use imggen_gptimg;
/// The contract every provider implements.
pub use imggen_provider;
#[cfg(feature = "runbase")]
pub use imggen_runbase;
#[cfg(feature = "runblob")]
pub use imggen_runblob;
/// Re-exported for [`WaitOptions::cancel`] and [`GenerateOptions::cancel`].
pub use tokio_util::sync::CancellationToken;

use budget::Scheduler;

/// The entry point: the configured providers, their budgets and schedules. Cheap to clone;
/// share one per program so every task on a key shares that key's request budget.
#[derive(Clone)]
pub struct Imggen {
    inner: Arc<Inner>,
}

struct Inner {
    providers: Vec<Arc<dyn Provider>>,
    /// Each provider's id, at the same index: found without a call through the trait.
    ids: Vec<ProviderId>,
    strictness: Strictness,
    allow_extra_tasks: bool,
    max_concurrent_tasks: usize,
    schedules: HashMap<ProviderId, PollSchedule>,
    budgets: HashMap<ProviderId, RateLimit>,
    shared_budget: Option<Arc<dyn SharedBudget>>,
    credit_price: Option<Usd>,
    sleeper: Arc<dyn Sleeper>,
    clock: Arc<dyn Clock>,
    retry: RetryConfig,
    /// One scheduler per configured provider (one provider per id, one key per provider), at
    /// the provider's index in `providers`: started on first use, inside the caller's runtime.
    schedulers: Vec<SchedulerSlot>,
}

/// Where a provider's scheduler is kept: read without a lock or a reference count on every
/// call once started; replaced (under the lock) only if the runtime it ran on has gone.
#[derive(Default)]
struct SchedulerSlot {
    first: OnceLock<Scheduler>,
    restarted: Mutex<Option<Scheduler>>,
}

impl fmt::Debug for Imggen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imggen")
            .field("providers", &self.providers())
            .field("strictness", &self.inner.strictness)
            .field("allow_extra_tasks", &self.inner.allow_extra_tasks)
            .field("max_concurrent_tasks", &self.inner.max_concurrent_tasks)
            .field("credit_price", &self.inner.credit_price)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Imggen`].
pub struct ImggenBuilder {
    providers: Vec<Arc<dyn Provider>>,
    problems: Vec<String>,
    strictness: Strictness,
    allow_extra_tasks: bool,
    max_concurrent_tasks: usize,
    schedules: HashMap<ProviderId, PollSchedule>,
    budgets: HashMap<ProviderId, RateLimit>,
    shared_budget: Option<Arc<dyn SharedBudget>>,
    credit_price: Option<Usd>,
    sleeper: Arc<dyn Sleeper>,
    clock: Arc<dyn Clock>,
    retry: RetryConfig,
}

impl fmt::Debug for ImggenBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImggenBuilder")
            .field(
                "providers",
                &self.providers.iter().map(|p| p.id()).collect::<Vec<_>>(),
            )
            .field("strictness", &self.strictness)
            .finish_non_exhaustive()
    }
}

impl Default for ImggenBuilder {
    fn default() -> Self {
        ImggenBuilder {
            providers: Vec::new(),
            problems: Vec::new(),
            strictness: Strictness::Lenient,
            allow_extra_tasks: false,
            max_concurrent_tasks: 4,
            schedules: HashMap::new(),
            budgets: HashMap::new(),
            shared_budget: None,
            credit_price: None,
            sleeper: Arc::new(TokioSleeper),
            clock: Arc::new(SystemClock),
            retry: RetryConfig::standard(),
        }
    }
}

impl ImggenBuilder {
    /// Adds (or replaces) a provider: a provider crate's implementation over its client
    /// (`imggen_gptimg::provider::GptimgProvider::new(client)`), or any other [`Provider`] — a
    /// fake in tests, a provider of your own. Providers are tried in the order added when a
    /// submission names none.
    pub fn provider(self, provider: impl Provider) -> Self {
        self.provider_arc(Arc::new(provider))
    }

    /// Adds (or replaces) a provider already shared.
    pub fn provider_arc(mut self, provider: Arc<dyn Provider>) -> Self {
        self.providers.retain(|p| p.id() != provider.id());
        self.providers.push(provider);
        self
    }

    /// Adds every registered provider whose key is set (for the built-in ones,
    /// `GPTIMG_API_KEY`, `RUNBLOB_API_KEY`, `RUNBASE_API_KEY`, each with its optional
    /// `*_BASE_URL`), in the default order ([`builtin::registrations`]).
    pub fn from_env(self) -> Self {
        self.from_env_of(&builtin::registrations())
    }

    /// Adds every provider of `registrations` whose key is set, in that order.
    pub fn from_env_of(mut self, registrations: &[Registration]) -> Self {
        for registration in registrations {
            if !registration.key_set() {
                continue;
            }
            match (registration.from_env)() {
                Ok(provider) => self = self.provider_arc(provider),
                Err(problem) => self.problems.push(problem),
            }
        }
        self
    }

    /// What planning refuses rather than drops or sends unchecked (default
    /// [`Strictness::Lenient`]): [`Strictness::Exact`] refuses a setting a provider cannot
    /// honour, [`Strictness::Strict`] every warning too (what `imggen --strict` means).
    pub fn strictness(mut self, strictness: Strictness) -> Self {
        self.strictness = strictness;
        self
    }

    /// Whether `n` above a provider's per-task maximum may become several tasks, each
    /// charged (default: no).
    pub fn allow_extra_tasks(mut self, allow: bool) -> Self {
        self.allow_extra_tasks = allow;
        self
    }

    /// How many creates of one submission may be in flight at once (default 4).
    pub fn max_concurrent_tasks(mut self, max: usize) -> Self {
        self.max_concurrent_tasks = max;
        self
    }

    /// A provider's poll schedule (default: its own, [`Provider::poll_schedule`]).
    pub fn poll_schedule(mut self, provider: ProviderId, schedule: PollSchedule) -> Self {
        self.schedules.insert(provider, schedule);
        self
    }

    /// A provider's per-key request budget, creates and polls together. Default: the
    /// provider's documented one ([`Provider::rate_limit`]; runbase's 20 per 10 s), grown back
    /// after a 429 tightens it; none where none is documented (a 429 then teaches one). A
    /// budget set here is paused by a 429 but never tightened.
    pub fn budget(mut self, provider: ProviderId, limit: RateLimit) -> Self {
        self.budgets.insert(provider, limit);
        self
    }

    /// Keeps every key's documented or configured request budget in `budget`, shared by every
    /// process that uses the key (replicas of a service, workers of a batch): together they
    /// stay inside it. The key is known there only by its fingerprint
    /// ([`Provider::key_fingerprint`]). See [`budget::SharedBudget`]; PostgreSQL keeps one
    /// with the `postgres` feature.
    pub fn shared_budget(mut self, budget: Arc<dyn SharedBudget>) -> Self {
        self.shared_budget = Some(budget);
        self
    }

    /// [`shared_budget`](Self::shared_budget) in the PostgreSQL database at `url`
    /// ([`postgres::PgStore`]; its tables are set up on first use). A URL that cannot be
    /// read fails [`build`](Self::build).
    #[cfg(feature = "postgres")]
    pub fn postgres(mut self, url: &str) -> Self {
        match postgres::PgStore::connect(url) {
            Ok(store) => self.shared_budget(Arc::new(store.budget())),
            Err(error) => {
                self.problems.push(error.to_string());
                self
            }
        }
    }

    /// The price of one gptimg credit in dollars, to report totals in dollars.
    pub fn credit_price(mut self, price: Usd) -> Self {
        self.credit_price = Some(price);
        self
    }

    /// How core sleeps (tests inject `imggen_http::time::ManualTime`).
    pub fn sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// Which clock core reads.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The retry loop's limits.
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Checks the configuration.
    pub fn build(self) -> Result<Imggen, Error> {
        if let Some(problem) = self.problems.first() {
            return Err(Error::config(problem.clone()));
        }
        if self.providers.is_empty() {
            let variables: Vec<&str> = builtin::registrations()
                .iter()
                .map(|registration| registration.api_key_env)
                .collect();
            return Err(Error::config(format!(
                "no provider configured: set {}, or add one with .provider(..)",
                variables.join(", ")
            )));
        }
        if self.max_concurrent_tasks == 0 {
            return Err(Error::config("max_concurrent_tasks must be at least 1"));
        }
        for (provider, limit) in &self.budgets {
            if limit.requests == 0 || limit.window.is_zero() {
                return Err(Error::config(format!(
                    "the {provider} budget {limit} allows nothing; give at least 1 request per window"
                )));
            }
        }
        for (provider, schedule) in &self.schedules {
            if schedule.interval.is_zero() {
                return Err(Error::config(format!(
                    "the {provider} poll interval must be longer than zero"
                )));
            }
        }
        let schedulers = self
            .providers
            .iter()
            .map(|_| SchedulerSlot::default())
            .collect();
        Ok(Imggen {
            inner: Arc::new(Inner {
                ids: self.providers.iter().map(|p| p.id()).collect(),
                providers: self.providers,
                strictness: self.strictness,
                allow_extra_tasks: self.allow_extra_tasks,
                max_concurrent_tasks: self.max_concurrent_tasks,
                schedules: self.schedules,
                budgets: self.budgets,
                shared_budget: self.shared_budget,
                credit_price: self.credit_price,
                sleeper: self.sleeper,
                clock: self.clock,
                retry: self.retry,
                schedulers,
            }),
        })
    }
}

impl From<HandleError> for Error {
    fn from(error: HandleError) -> Self {
        Error::invalid(None, error.to_string(), None)
    }
}

pub(crate) fn duration_since(now: SystemTime, earlier: SystemTime) -> Duration {
    now.duration_since(earlier).unwrap_or(Duration::ZERO)
}

impl Imggen {
    /// Runs a provider call so that every request it sends ends by `until` (on the injected
    /// clock), as well as by its own timeout: a trickling body, an answer that never comes.
    /// The transport's timers are real ones, so the time left is carried over to the real
    /// clock when the call starts.
    pub(crate) async fn bounded<F: Future>(&self, until: Option<Instant>, call: F) -> F::Output {
        match until {
            Some(until) => {
                let left = until.saturating_duration_since(self.inner.clock.now());
                imggen_http::deadline::within(Instant::now() + left, call).await
            }
            None => call.await,
        }
    }

    /// `now + deadline` on the injected clock.
    pub(crate) fn deadline_from_now(&self, deadline: Option<Duration>) -> Option<Instant> {
        deadline.map(|deadline| self.inner.clock.now() + deadline)
    }
}

impl Imggen {
    /// A builder.
    pub fn builder() -> ImggenBuilder {
        ImggenBuilder::default()
    }

    /// Every provider whose `*_API_KEY` is set, with the defaults.
    pub fn from_env() -> Result<Imggen, Error> {
        ImggenBuilder::default().from_env().build()
    }

    /// The configured providers, in order.
    pub fn providers(&self) -> Vec<ProviderId> {
        self.inner.ids.clone()
    }

    /// The capabilities of the configured providers.
    pub fn capabilities(&self) -> Vec<ProviderCapabilities> {
        self.inner
            .providers
            .iter()
            .map(|provider| provider.capabilities())
            .collect()
    }

    /// A configured provider.
    pub fn provider_named(&self, id: ProviderId) -> Option<&Arc<dyn Provider>> {
        self.inner
            .providers
            .iter()
            .find(|provider| provider.id() == id)
    }

    /// Sets `key=value` among `request`'s options for `provider`, as that provider reads it.
    pub fn set_option(
        &self,
        request: &mut GenerationRequest,
        provider: ProviderId,
        key: &str,
        value: &str,
    ) -> Result<(), Error> {
        let found = self.provider_ref(provider)?;
        request
            .options
            .set(provider, key, value, |options, key, value| {
                found.set_option(options, key, value)
            })
            .map_err(|error| Error::invalid(Some(provider), error.to_string(), None))
    }

    /// The configured price of a gptimg credit.
    pub fn credit_price(&self) -> Option<Usd> {
        self.inner.credit_price
    }

    /// Plans `request` for `provider` with the configured strictness: the tasks it takes,
    /// what is dropped, what it should cost. Nothing is sent.
    pub fn plan(&self, request: &GenerationRequest, provider: ProviderId) -> Result<Plan, Error> {
        let _span = tracing::info_span!("imggen.plan", %provider).entered();
        let plan = self.provider_ref(provider)?.plan(
            request,
            PlanOptions {
                strictness: self.inner.strictness,
                allow_extra_tasks: self.inner.allow_extra_tasks,
            },
        )?;
        for warning in &plan.warnings {
            tracing::info!(%warning, "plan warning");
        }
        Ok(plan)
    }

    pub(crate) fn provider(&self, id: ProviderId) -> Result<Arc<dyn Provider>, Error> {
        self.provider_ref(id).cloned()
    }

    /// The configured provider `id`, borrowed.
    pub(crate) fn provider_ref(&self, id: ProviderId) -> Result<&Arc<dyn Provider>, Error> {
        self.inner
            .ids
            .iter()
            .position(|configured| *configured == id)
            .map(|index| &self.inner.providers[index])
            .ok_or_else(|| {
                let how = builtin::registration(id).map_or_else(
                    || "add it with .provider(..)".to_owned(),
                    |registration| format!("set {}", registration.api_key_env),
                );
                Error::config(format!("{id} is not configured: {how}"))
            })
    }

    pub(crate) fn schedule_of(&self, provider: &Arc<dyn Provider>) -> PollSchedule {
        self.inner
            .schedules
            .get(&provider.id())
            .copied()
            .unwrap_or_else(|| provider.poll_schedule())
    }

    /// The scheduler of a provider's key, started on first use.
    pub(crate) fn scheduler(&self, provider: &Arc<dyn Provider>) -> Result<Scheduler, Error> {
        self.scheduler_ref(provider).map(Cow::into_owned)
    }

    /// The scheduler of a provider's key, borrowed when it can be: started on first use (and
    /// again if the runtime it ran on has gone). Looked up by the provider's id alone — one
    /// provider per id, one key per provider — so no key label is computed per call.
    pub(crate) fn scheduler_ref(
        &self,
        provider: &Arc<dyn Provider>,
    ) -> Result<Cow<'_, Scheduler>, Error> {
        let id = provider.id();
        let index = self
            .inner
            .ids
            .iter()
            .position(|configured| *configured == id)
            .ok_or_else(|| Error::config(format!("{id} is not configured")))?;
        let slot = &self.inner.schedulers[index];
        let running = |scheduler: &&Scheduler| !scheduler.is_closed();
        if let Some(scheduler) = slot.first.get().filter(running) {
            return Ok(Cow::Borrowed(scheduler));
        }
        let mut restarted = slot
            .restarted
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Again under the lock: another call may have just started it.
        if let Some(scheduler) = slot.first.get().filter(running) {
            return Ok(Cow::Borrowed(scheduler));
        }
        if let Some(scheduler) = restarted.as_ref().filter(running) {
            return Ok(Cow::Owned(scheduler.clone()));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::config("imggen must run inside a tokio runtime"));
        }
        let (limit, configured) = match self.inner.budgets.get(&id) {
            Some(limit) => (Some(*limit), true),
            None => (provider.rate_limit(), false),
        };
        let scheduler = Scheduler::start(
            format!("{id}:{}", provider.key_label()),
            limit,
            configured,
            self.inner
                .shared_budget
                .as_ref()
                .map(|budget| (Arc::clone(budget), provider.key_fingerprint())),
            Arc::clone(&self.inner.sleeper),
            Arc::clone(&self.inner.clock),
        );
        if slot.first.set(scheduler.clone()).is_ok() {
            return Ok(Cow::Owned(scheduler));
        }
        *restarted = Some(scheduler.clone());
        Ok(Cow::Owned(scheduler))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn building_without_a_provider_says_how_to_add_one() {
        let err = Imggen::builder().build().unwrap_err();
        assert!(err.to_string().contains("RUNBLOB_API_KEY"), "{err}");
    }

    #[cfg(feature = "runbase")]
    #[test]
    fn the_clients_keys_never_reach_debug() {
        let client = imggen_runbase::Client::builder()
            .api_key("sk-very-secret-key-123")
            .build()
            .unwrap();
        let imggen = Imggen::builder()
            .provider(imggen_runbase::provider::RunbaseProvider::new(client))
            .build()
            .unwrap();
        let debug = format!("{imggen:?} {:?}", imggen.inner.providers);
        assert!(!debug.contains("very-secret"), "{debug}");
        assert_eq!(imggen.providers(), [imggen_runbase::provider::ID]);
    }
}
