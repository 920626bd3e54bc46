//! A faithful async client for the [gptimg.co](https://gptimg.co) gpt-image-2 API.
//!
//! ```no_run
//! use imggen_gptimg::{AspectRatio, Client, GenerateRequest, TaskStatus, WaitOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::from_env()?; // GPTIMG_API_KEY, optional GPTIMG_BASE_URL
//! let request = GenerateRequest::new("A lighthouse on a cliff at dusk")
//!     .aspect_ratio(AspectRatio::Landscape16x9);
//! // Charged at the create; polled on gptimg's schedule until done, for 10 minutes at most.
//! let task = client.create_and_wait(&request, &WaitOptions::new()).await?;
//! if task.status == TaskStatus::Completed {
//!     for url in task.image_urls() { println!("{url}"); }
//! }
//! # Ok(()) }
//! ```
//!
//! - [`Client::create`] checks every documented limit before sending (prompt, one of the 13
//!   ratios, `n` 1–4, at most 4 `https://` reference URLs) and sends the create **once**: a
//!   create is charged when it is accepted, so a lost answer is reported
//!   ([`Error::may_have_been_charged`](imggen_http::Error::may_have_been_charged)), never
//!   resubmitted.
//! - [`Client::status`] polls with `data.task_id` (the typed [`TaskId`] keeps `data.id` out) and
//!   retries 429s and gateway errors, obeying `Retry-After`.
//! - [`Client::wait`] polls on gptimg's [`POLL_SCHEDULE`] until the task ends, within a
//!   deadline ([`DEFAULT_DEADLINE`]), cancellable; [`Client::create_and_wait`] does both. A
//!   wait that stops returns the task id: the task goes on, and is paid for.
//! - Unknown statuses, codes and fields from a newer API version parse, as `Other(..)`.

#[cfg(feature = "provider")]
pub mod provider;

use std::time::Duration;

use imggen_http::{
    ApiClient, ClientBuilder, DownloadOptions, Downloaded, Operation, ProviderInfo, Transport,
};

pub use imggen_http::{CancellationToken, PollSchedule, RetryPolicy, WaitOptions, reqwest};
pub use imggen_types::AspectRatio;
pub use imggen_types::gptimg::{
    ASPECT_RATIOS, CREDITS_PER_IMAGE, CreatedTask, ErrorBody, ErrorCode, GenerateRequest, Image,
    MAX_N, MAX_REFERENCE_IMAGES, RowId, Task, TaskId, TaskStatus, TaskType,
};
pub use imggen_types::money::Credits;

/// Everything that can go wrong in a call to gptimg.
pub type Error = imggen_http::Error<ErrorBody>;
/// Why a [`Client::wait`] stopped before the task ended (the task id is in it).
pub type WaitError = imggen_http::WaitError<ErrorBody>;
/// Why a [`Client::create_and_wait`] stopped.
pub type CreateAndWaitError = imggen_http::CreateAndWaitError<ErrorBody>;

/// When to poll a gptimg task: a "45-second round trip", about 45–60 s, so the first poll
/// comes at 35 s (jitter included, before the fastest finish); then every 5 s; slower after
/// 3 minutes, up to every 30 s. gptimg calls no webhooks.
pub const POLL_SCHEDULE: PollSchedule = PollSchedule::new(
    Duration::from_secs(35),
    Duration::from_secs(5),
    Duration::from_secs(180),
    Duration::from_secs(30),
);

/// How long a wait lasts unless told otherwise: ten times the typical round trip.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10 * 60);

/// The production base URL.
pub const DEFAULT_BASE_URL: &str = "https://gptimg.co";
/// The variable [`Client::from_env`] reads the key from.
pub const API_KEY_ENV: &str = "GPTIMG_API_KEY";
/// The variable that overrides the base URL.
pub const BASE_URL_ENV: &str = "GPTIMG_BASE_URL";

const GENERATE: Operation = Operation::create("create");
const STATUS: Operation = Operation::read("status");
const GENERATE_PATH: &str = "/api/v1/images/generate";

/// A gptimg.co client. Cheap to clone (clones share one connection pool); `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Client {
    transport: Transport<ErrorBody>,
}

impl ApiClient for Client {
    type ErrorBody = ErrorBody;
    const INFO: ProviderInfo = ProviderInfo {
        name: "gptimg",
        api_key_env: API_KEY_ENV,
        base_url_env: BASE_URL_ENV,
        default_base_url: DEFAULT_BASE_URL,
        rate_limit: None,
        client_name: env!("CARGO_PKG_NAME"),
        client_version: env!("CARGO_PKG_VERSION"),
    };

    fn from_transport(transport: Transport<ErrorBody>) -> Self {
        Client { transport }
    }
}

impl Client {
    /// A builder: `Client::builder().api_key("...").build()?`.
    pub fn builder() -> ClientBuilder<Client> {
        ClientBuilder::new()
    }

    /// A client configured from `GPTIMG_API_KEY` and, if set, `GPTIMG_BASE_URL`.
    pub fn from_env() -> Result<Client, Error> {
        ClientBuilder::from_env().build()
    }

    /// Submits a generation task: `POST /api/v1/images/generate`.
    ///
    /// Validated first; nothing is sent if a documented limit is broken. Sent once and never
    /// retried: the task is charged (2 credits per image) when it is accepted. Poll
    /// [`CreatedTask::task_id`] with [`status`](Self::status).
    pub async fn create(&self, request: &GenerateRequest) -> Result<CreatedTask, Error> {
        request
            .validate()
            .map_err(|error| self.transport.invalid(GENERATE, GENERATE_PATH, error))?;
        let response = self
            .transport
            .post::<_, imggen_types::gptimg::CreateResponse>(GENERATE, GENERATE_PATH, request)
            .await?;
        Ok(response.value.data)
    }

    /// Reads a task: `GET /api/v1/images/task/{task_id}`. `images` is `None` while it is
    /// processing. Retried on 429 and gateway errors.
    pub async fn status(&self, task_id: &TaskId) -> Result<Task, Error> {
        let path = format!("/api/v1/images/task/{task_id}");
        task_id.validate().map_err(|error| {
            self.transport
                .invalid(STATUS, "/api/v1/images/task/{task_id}", error)
        })?;
        let response = self
            .transport
            .get::<imggen_types::gptimg::TaskResponse>(STATUS, &path)
            .await?;
        Ok(response.value.data)
    }

    /// [`status`](Self::status) sent once (no retries: the caller retries), its result handed
    /// to `finish`, as one boxed future — what a caller that boxes its future anyway (the
    /// `provider` feature's trait object) uses, so a call allocates once.
    /// The id is checked as [`TaskId::validate`] does, without building one.
    pub fn status_then<'a, R: Send + 'a>(
        &'a self,
        task_id: &str,
        finish: impl FnOnce(Result<Task, Error>) -> R + Send + 'a,
    ) -> std::pin::Pin<Box<dyn Future<Output = R> + Send + 'a>> {
        if let Err(error) = imggen_types::validation::check_opaque_id("task_id", task_id) {
            let error = self
                .transport
                .invalid(STATUS, "/api/v1/images/task/{task_id}", error);
            return Box::pin(std::future::ready(finish(Err(error))));
        }
        self.transport.get_once_then(
            STATUS,
            "/api/v1/images/task/{task_id}",
            &format!("/api/v1/images/task/{task_id}"),
            |result: Result<imggen_http::Response<imggen_types::gptimg::TaskResponse>, Error>| {
                finish(result.map(|response| response.value.data))
            },
        )
    }

    /// Waits until the task ends — `completed` or `failed` — polling on [`POLL_SCHEDULE`]
    /// (or `options.schedule`) within `options.deadline` (default [`DEFAULT_DEADLINE`]); every
    /// status call ends by the deadline too. A task of unknown age (no
    /// `options.created_at`) is polled at once. A wait that stops first returns the task id in
    /// its [`WaitError`]: the task goes on, and is paid for.
    pub async fn wait(&self, task_id: &TaskId, options: &WaitOptions) -> Result<Task, WaitError> {
        self.transport
            .wait(
                task_id.as_str(),
                POLL_SCHEDULE,
                DEFAULT_DEADLINE,
                options,
                || self.status(task_id),
                |task: &Task| (!task.status.is_terminal()).then(|| task.status.to_string()),
            )
            .await
    }

    /// [`create`](Self::create), then [`wait`](Self::wait) from the moment the task was
    /// created. A create whose answer was lost is [`CreateAndWaitError::Create`] and may have
    /// been charged (never resent); once created, an error carries the task id. Drop this
    /// future only if losing the id is acceptable: to persist it first, call the two apart.
    pub async fn create_and_wait(
        &self,
        request: &GenerateRequest,
        options: &WaitOptions,
    ) -> Result<Task, CreateAndWaitError> {
        let created = self
            .create(request)
            .await
            .map_err(CreateAndWaitError::Create)?;
        let mut options = options.clone();
        options.created_at = options.created_at.or(Some(self.transport.clock().wall()));
        self.wait(&created.task_id, &options)
            .await
            .map_err(CreateAndWaitError::Wait)
    }

    /// Downloads a result image (no API key is sent to the CDN), capped at 64 MiB, https only
    /// unless the base URL itself is http.
    pub async fn download(&self, url: &str) -> Result<Downloaded, Error> {
        self.transport
            .download(url, self.transport.download_options())
            .await
    }

    /// Downloads with explicit limits.
    pub async fn download_with(
        &self,
        url: &str,
        options: DownloadOptions,
    ) -> Result<Downloaded, Error> {
        self.transport.download(url, options).await
    }

    /// The shared transport (base URL, sleeper, clock).
    pub fn transport(&self) -> &Transport<ErrorBody> {
        &self.transport
    }
}

/// Compiles the README's examples as doc tests, so the README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
