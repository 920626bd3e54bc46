//! A faithful async client for the [runbase](https://runbase.net) runs API: `openai/gpt-image-1`,
//! `openai/gpt-image-1.5`, `openai/gpt-image-2` with typed inputs, and any other model with raw
//! JSON.
//!
//! ```no_run
//! use imggen_runbase::{AspectRatio, Client, GptImage2Input, Resolution, RunStatus, WaitOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::from_env()?; // RUNBASE_API_KEY, optional RUNBASE_BASE_URL
//! let input = GptImage2Input::new("A cinematic product photo of a ceramic lamp")
//!     .aspect_ratio(AspectRatio::Landscape16x9)
//!     .resolution(Resolution::TwoK);
//! // Charged at the create; polled on runbase's schedule, inside the key's 20 requests per
//! // 10 s, until done, for 10 minutes at most.
//! let run = client.create_and_wait(&input, &WaitOptions::new()).await?;
//! match run.status {
//!     RunStatus::Succeeded => run.output_urls().iter().for_each(|url| println!("{url}")),
//!     _ => println!("failed: {:?}", run.error_message()),
//! }
//! if let Some(cost) = run.cost_usd { println!("cost: {}", cost.to_usd()); } // exact: $0.07
//! # Ok(()) }
//! ```
//!
//! Any other model takes raw JSON, sent as given:
//!
//! ```no_run
//! # async fn run(client: imggen_runbase::Client) -> Result<(), imggen_runbase::Error> {
//! use imggen_runbase::{CreateRunRequest, Model};
//! let input = serde_json::json!({"prompt": "A cozy bookshop, watercolor", "aspect_ratio": "1:1"});
//! let request = CreateRunRequest::new(Model::from_wire("google/nano-banana-2"), input);
//! let created = client.create_raw(&request).await?;
//! # Ok(()) }
//! ```
//!
//! - **Rate limit: [`RATE_LIMIT`] — 20 requests per 10 seconds per API key, creates and polls
//!   together**, with no `Retry-After` documented. Every request of a client waits for that
//!   budget ([`RequestBudget`]), shared by all its clones, so many runs polled at once earn no
//!   `429 RATE_LIMITED`. The docs advise polling every 1–2 seconds.
//! - [`Client::create`] (typed) and [`Client::create_raw`] (raw JSON) check the model's
//!   documented limits before sending — prompt length, that model's own ratios,
//!   `quality`/`resolution` and reference image count — and send the create **once**: runbase
//!   charges when the run is created, so a lost answer is reported
//!   ([`Error::may_have_been_charged`](imggen_http::Error::may_have_been_charged)), never
//!   resubmitted. A value written as `Other(..)` is sent deliberately, unchecked.
//! - [`Client::status`] reads a run and retries `429 RATE_LIMITED` and gateway errors, obeying
//!   `Retry-After` when one comes; `429 USAGE_EXCEEDED` (an exhausted quota) is not retried.
//! - [`Client::wait`] polls on runbase's [`POLL_SCHEDULE`] until the run ends, within a
//!   deadline ([`DEFAULT_DEADLINE`]), cancellable; [`Client::create_and_wait`] does both. A
//!   wait that stops returns the run id: the run goes on, and is paid for.
//! - `costUsd` is integer micro-USD ([`MicroUsd`]): `40000` is exactly `$0.04`.
//! - Unknown statuses, models, codes and fields from a newer API version parse, as `Other(..)`.

#[cfg(feature = "provider")]
pub mod provider;

use std::time::Duration;

use imggen_http::{
    ApiClient, ClientBuilder, DownloadOptions, Downloaded, Operation, ProviderInfo, Transport,
};

pub use imggen_http::{
    CancellationToken, PollSchedule, RequestBudget, RetryPolicy, WaitOptions, reqwest,
};
pub use imggen_types::AspectRatio;
pub use imggen_types::money::{MicroUsd, Usd};
pub use imggen_types::runbase::{
    CreateRunRequest, ErrorBody, ErrorCode, ErrorObject, GPT_IMAGE_1, GPT_IMAGE_1_5, GPT_IMAGE_2,
    GptImage1Input, GptImage2Input, GptImage15Input, MODELS, Model, ModelInput, ModelSpec,
    PROMPT_MAX_CHARS, Quality, RATE_LIMIT, RATE_LIMIT_REQUESTS, RATE_LIMIT_WINDOW, Resolution, Run,
    RunId, RunOutput, RunStatus,
};
/// Re-exported so raw inputs are built with the same `serde_json` the client sends.
pub use serde_json;

/// Everything that can go wrong in a call to runbase.
pub type Error = imggen_http::Error<ErrorBody>;
/// Why a [`Client::wait`] stopped before the run ended (the run id is in it).
pub type WaitError = imggen_http::WaitError<ErrorBody>;
/// Why a [`Client::create_and_wait`] stopped.
pub type CreateAndWaitError = imggen_http::CreateAndWaitError<ErrorBody>;

/// When to poll a run: the docs advise every 1–2 s; imggen takes 2 s (creates and polls share
/// 20 requests per 10 s) after a first poll at 3 s; slower after 2 minutes, up to every 15 s.
/// runbase calls no webhooks.
pub const POLL_SCHEDULE: PollSchedule = PollSchedule::new(
    Duration::from_secs(3),
    Duration::from_secs(2),
    Duration::from_secs(120),
    Duration::from_secs(15),
);

/// How long a wait lasts unless told otherwise (runbase documents no typical time; gptimg's
/// ten minutes are used).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10 * 60);

/// The production base URL. Paths under `/api/v1` are appended to it.
pub const DEFAULT_BASE_URL: &str = "https://runbase.net";
/// The variable [`Client::from_env`] reads the key from.
pub const API_KEY_ENV: &str = "RUNBASE_API_KEY";
/// The variable that overrides the base URL.
pub const BASE_URL_ENV: &str = "RUNBASE_BASE_URL";

const CREATE: Operation = Operation::create("create");
const STATUS: Operation = Operation::read("status");
const RUNS_PATH: &str = "/api/v1/runs";

/// What to do about an error code, as runbase's error reference advises; `None` for a code
/// this version does not know. The same text as [`ErrorCode::advice`].
///
/// ```
/// use imggen_runbase::{ErrorCode, advice};
/// assert_eq!(
///     advice(&ErrorCode::InsufficientBalance),
///     Some("top up your balance in Settings → Credits")
/// );
/// ```
pub fn advice(code: &ErrorCode) -> Option<&'static str> {
    code.advice()
}

/// A runbase client. Cheap to clone (clones share one connection pool); `Send + Sync`.
///
/// Every request waits for the key's [`RATE_LIMIT`] budget, which every clone shares: many
/// tasks polled through clones of one client earn no 429 ([`Client::with_budget`] to share
/// it with a client built separately, or to turn it off).
#[derive(Clone, Debug)]
pub struct Client {
    transport: Transport<ErrorBody>,
}

impl ApiClient for Client {
    type ErrorBody = ErrorBody;
    const INFO: ProviderInfo = ProviderInfo {
        name: "runbase",
        api_key_env: API_KEY_ENV,
        base_url_env: BASE_URL_ENV,
        default_base_url: DEFAULT_BASE_URL,
        rate_limit: Some(RATE_LIMIT),
        client_name: env!("CARGO_PKG_NAME"),
        client_version: env!("CARGO_PKG_VERSION"),
    };

    fn from_transport(transport: Transport<ErrorBody>) -> Self {
        Client { transport }
    }
}

impl Client {
    /// A builder: `Client::builder().api_key("sk-...").build()?`.
    pub fn builder() -> ClientBuilder<Client> {
        ClientBuilder::new()
    }

    /// A client configured from `RUNBASE_API_KEY` and, if set, `RUNBASE_BASE_URL`.
    pub fn from_env() -> Result<Client, Error> {
        ClientBuilder::from_env().build()
    }

    /// Creates a run of one of the OpenAI models imggen knows: `POST /api/v1/runs` with
    /// `{"model": input.model(), "input": input}`.
    ///
    /// Validated against that model's own limits first; nothing is sent if one is broken. Sent
    /// once and never retried: the run is charged ([`ModelInput::price`]) when it is created.
    /// Poll [`Run::id`] with [`status`](Self::status).
    pub async fn create<I: ModelInput>(&self, input: &I) -> Result<Run, Error> {
        input
            .validate()
            .map_err(|error| self.transport.invalid(CREATE, RUNS_PATH, error))?;
        self.send_create(&CreateRunRequest::from_input(input)).await
    }

    /// Creates a run of any model from raw JSON input: `POST /api/v1/runs` with
    /// `{"model", "input"}` (`CreateRunRequest::new(model, json!({...}))`).
    ///
    /// `input` must be a JSON object. For a model imggen knows it is also checked against that
    /// model's documented schema (prompt, ratios, quality/resolution, reference count; a field
    /// the schema does not name is sent as given); any other model's input is sent unchecked.
    /// Sent once and never retried.
    pub async fn create_raw(&self, request: &CreateRunRequest) -> Result<Run, Error> {
        request
            .validate()
            .map_err(|error| self.transport.invalid(CREATE, RUNS_PATH, error))?;
        self.send_create(request).await
    }

    async fn send_create(&self, request: &CreateRunRequest) -> Result<Run, Error> {
        // Any 2xx is success: the docs do not say whether a create answers 200 or 201.
        let response = self
            .transport
            .post::<_, Run>(CREATE, RUNS_PATH, request)
            .await?;
        Ok(response.value)
    }

    /// Reads a run: `GET /api/v1/runs/{id}`. `output.urls` holds the results once it has
    /// succeeded. Retried on `429 RATE_LIMITED` and gateway errors per the client's
    /// [`RetryPolicy`]; every attempt counts against [`RATE_LIMIT`].
    pub async fn status(&self, id: &RunId) -> Result<Run, Error> {
        id.validate()
            .map_err(|error| self.transport.invalid(STATUS, "/api/v1/runs/{id}", error))?;
        let path = format!("{RUNS_PATH}/{id}");
        let response = self.transport.get::<Run>(STATUS, &path).await?;
        Ok(response.value)
    }

    /// [`status`](Self::status) sent once (no retries: the caller retries), its result handed
    /// to `finish`, as one boxed future — what a caller that boxes its future anyway (the
    /// `provider` feature's trait object) uses, so a call allocates once. The id is checked
    /// as its type's `validate` does, without building one.
    pub fn status_then<'a, R: Send + 'a>(
        &'a self,
        id: &str,
        finish: impl FnOnce(Result<Run, Error>) -> R + Send + 'a,
    ) -> std::pin::Pin<Box<dyn Future<Output = R> + Send + 'a>> {
        if let Err(error) = imggen_types::validation::check_opaque_id("id", id) {
            let error = self.transport.invalid(STATUS, "/api/v1/runs/{id}", error);
            return Box::pin(std::future::ready(finish(Err(error))));
        }
        self.transport.get_once_then(
            STATUS,
            "/api/v1/runs/{id}",
            &format!("{RUNS_PATH}/{id}"),
            |result: Result<imggen_http::Response<Run>, Error>| {
                finish(result.map(|response| response.value))
            },
        )
    }

    /// Waits until the run ends — `succeeded` or `failed` — polling on [`POLL_SCHEDULE`] (or
    /// `options.schedule`) inside the key's budget, within `options.deadline` (default
    /// [`DEFAULT_DEADLINE`]); every status call ends by the deadline too. A run of unknown
    /// age (no `options.created_at`) is polled at once. A wait that stops first returns the
    /// run id in its [`WaitError`]: the run goes on, and is paid for.
    pub async fn wait(&self, id: &RunId, options: &WaitOptions) -> Result<Run, WaitError> {
        self.transport
            .wait(
                id.as_str(),
                POLL_SCHEDULE,
                DEFAULT_DEADLINE,
                options,
                || self.status(id),
                |run: &Run| (!run.status.is_terminal()).then(|| run.status.to_string()),
            )
            .await
    }

    /// [`create`](Self::create), then [`wait`](Self::wait) from the moment the run was
    /// created. A create whose answer was lost is [`CreateAndWaitError::Create`] and may have
    /// been charged (never resent); once created, an error carries the run id. Drop this
    /// future only if losing the id is acceptable: to persist it first, call the two apart.
    pub async fn create_and_wait<I: ModelInput>(
        &self,
        input: &I,
        options: &WaitOptions,
    ) -> Result<Run, CreateAndWaitError> {
        let created = self
            .create(input)
            .await
            .map_err(CreateAndWaitError::Create)?;
        let mut options = options.clone();
        options.created_at = options.created_at.or(Some(self.transport.clock().wall()));
        self.wait(&created.id, &options)
            .await
            .map_err(CreateAndWaitError::Wait)
    }

    /// The same client (same connection pool and key) spending `budget` instead of its own:
    /// pass a clone of another client's [`budget`](Self::budget) to share it with a client
    /// built separately, or [`RequestBudget::unlimited`] when something else schedules every
    /// request of the key (imggen-core does).
    pub fn with_budget(&self, budget: RequestBudget) -> Self {
        Client {
            transport: self.transport.with_budget(budget),
        }
    }

    /// The budget this client's requests wait for (every clone shares it).
    pub fn budget(&self) -> &RequestBudget {
        self.transport.budget()
    }

    /// Downloads a result file (no API key is sent to the CDN), capped at 64 MiB, https only
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
